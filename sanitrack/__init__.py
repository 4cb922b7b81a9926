"""Sanitrack: the CLI, settings and process assembly."""
