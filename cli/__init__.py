"""The baas command-line tool (imported as baas_cli)."""
