"""Weight initialisation shared by the built-in networks.

Radford et al. (2015) initialise every weight from N(0, 0.02); pix2pix and the CGAN follow them. Batch
norm's scale starts at N(1, 0.02) and its shift at 0, as in pytorch/examples' DCGAN. Use it with
``module.apply(normal_init)``.
"""

from __future__ import annotations

from torch import nn

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Convolutions and linear layers: weights ~ N(0, std), biases 0; batch norm: scale ~ N(1, std), shift 0."""
    if isinstance(module, _WEIGHTED):
        nn.init.normal_(module.weight, 0.0, std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _NORMS):
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)
