"""The cyclegan plugin: see plugin.py."""
