"""Hooks that plugins implement (hookspecs) and the manager that loads them with error isolation."""
