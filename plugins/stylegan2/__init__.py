"""The stylegan2 plugin: see plugin.py."""
