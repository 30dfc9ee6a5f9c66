"""Plugins bundled with baas (imported as baas_plugins); each also serves as an example for plugin authors."""
