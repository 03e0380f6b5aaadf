"""The srgan plugin: see plugin.py."""
