"""The dcgan plugin: see plugin.py."""
