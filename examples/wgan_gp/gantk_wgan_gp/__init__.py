"""WGAN-GP as a separately installed gantk plugin."""

from gantk_wgan_gp.plugin import WGANGP

__all__ = ["WGANGP"]
