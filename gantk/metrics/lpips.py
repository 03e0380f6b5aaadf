"""LPIPS (Zhang et al. 2018), the learned perceptual distance SR papers report beside PSNR and SSIM.

LPIPS compares two images in the feature maps of an ImageNet network (AlexNet, the paper's default, or
VGG16), each channel weighted by a linear layer trained on human judgements. It is torchmetrics'
implementation (``_LPIPS``), built here without any download: the linear layers are the v0.1 ones that
ship inside torchmetrics, and the ImageNet backbone comes from ``eval.lpips_weights``, torchvision's own
file (``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``, read with ``weights_only=True``, or a
``.safetensors`` copy; the ``features.*`` part is enough) or ``torchvision`` for torchvision's loader (its
cache under ``$TORCH_HOME``, else a download). Random backbone features would give numbers that look like
LPIPS and mean nothing, so weights that cannot be had are refused, never replaced.

Lower is closer; 0 for identical images. Inputs are quantised to 8 bits first (as saved files are) and
scored whole, without a border crop, as the LPIPS reference script does.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from gantk.errors import CheckpointError, ConfigError
from gantk.io.weights import read_state_dict

#: the torchvision ImageNet files each backbone's features come from
BACKBONES = {"alex": ("alexnet", "alexnet-owt-7be5be79.pth"), "vgg": ("vgg16", "vgg16-397923af.pth")}


def load_lpips(weights: str, net: Literal["alex", "vgg"] = "alex") -> nn.Module:
    """torchmetrics' LPIPS network with the backbone from ``weights`` (a file or ``"torchvision"``) and
    the packaged linear layers, in eval mode and frozen. Refuses (one paragraph) anything it cannot build."""
    import torchvision
    from torchmetrics.functional.image import lpips as tm_lpips

    arch, file = BACKBONES[net]
    if not weights:
        raise ConfigError(
            f"LPIPS needs ImageNet {arch} weights: set eval.lpips_weights to torchvision's {file} (or a "
            ".safetensors copy), or to 'torchvision' for its loader; leave eval.lpips off without them."
        )
    if weights == "torchvision":
        try:
            default = getattr(torchvision.models, tm_lpips._weight_map[arch]).DEFAULT
            state = default.get_state_dict(progress=False)
        except Exception as exc:  # offline, proxy, corrupt cache
            raise ConfigError(
                f"eval.lpips_weights is 'torchvision', but torchvision could not provide the {arch} ImageNet "
                f"weights ({type(exc).__name__}: {str(exc)[:200]}). Put {file} in $TORCH_HOME/hub/checkpoints "
                "or set eval.lpips_weights=PATH."
            ) from None
    else:
        state = read_state_dict(Path(weights).expanduser(), f"{arch} ImageNet weights", "eval.lpips_weights")

    model = tm_lpips._LPIPS(pretrained=False, net=net, pnet_rand=True)  # random backbone: no download
    shipped = Path(tm_lpips.__file__).parent / "lpips_models" / f"{net}.pth"
    lins = read_state_dict(shipped, "torchmetrics' LPIPS linear layers", "shipped with torchmetrics")
    model.load_state_dict(lins, strict=False)  # the linear layers only; the backbone is copied in below
    with torch.no_grad():  # the slices keep torchvision's indices: net.slice1.0.weight is features.0.weight
        for name, param in model.net.named_parameters():
            _, index, kind = name.split(".")
            key = f"features.{index}.{kind}"
            value = state.get(key)
            if value is None or value.shape != param.shape:
                found = "missing" if value is None else f"of shape {tuple(value.shape)}"
                raise CheckpointError(
                    f"{weights} is not torchvision's {arch} ImageNet state dict (eval.lpips_weights, for LPIPS with "
                    f"eval.lpips_net={net}): {key} is {found}, expected {tuple(param.shape)}. Use {file}."
                )
            param.copy_(value)
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=2)
def lpips_model(weights: str, net: Literal["alex", "vgg"] = "alex") -> nn.Module:
    """:func:`load_lpips`, built once per process and weights (not at every evaluation)."""
    return load_lpips(weights, net)


@torch.no_grad()
def lpips(model: nn.Module, a: Tensor, b: Tensor) -> Tensor:
    """LPIPS per image between ``a`` and ``b``, (N, 3, H, W) in [0, 1] (quantised to 8 bits first)."""
    a, b = (x.clamp(0, 1).mul(255).round().div(127.5).sub(1).float() for x in (a, b))
    return model(a, b).flatten()
