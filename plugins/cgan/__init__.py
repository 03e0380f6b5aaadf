"""The cgan plugin: see plugin.py."""
