"""The infogan plugin: see plugin.py."""
