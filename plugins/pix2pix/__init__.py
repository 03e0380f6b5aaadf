"""The pix2pix plugin: see plugin.py."""
