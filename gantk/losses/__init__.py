"""Loss functions shared by plugins."""

from gantk.losses.vgg import VGGContentLoss, load_vgg19_features

__all__ = ["VGGContentLoss", "load_vgg19_features"]
