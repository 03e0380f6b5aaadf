"""VGG19 feature ("perceptual" / content) loss: MSE between ImageNet-VGG19 feature maps.

SRGAN (Ledig et al. 2017) calls it the VGG loss phi_{i,j}: the feature map after the j-th convolution
(and its ReLU) before the i-th max-pool. phi_{5,4} is torchvision's ``vgg19().features[:36]``.

The features only mean something with ImageNet weights, which cannot always be had (offline machines,
air-gapped clusters). :func:`load_vgg19_features` takes them from a file (safetensors, or a torchvision
``.pth`` read with ``torch.load(weights_only=True)``) or from torchvision's own loader (its cache under
``$TORCH_HOME``, else a download). It returns ``None`` and warns when neither works, so the caller can
fall back to a pixel loss openly instead of training against random features.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from gantk.errors import CheckpointError, ConfigError
from gantk.io.weights import read_state_dict

# (block, conv) -> how many modules of torchvision's vgg19().features to keep (up to that conv's ReLU)
VGG19_LAYERS = {(2, 2): 9, (3, 4): 18, (4, 4): 27, (5, 4): 36}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_vgg19_features(weights: str, layer: tuple[int, int] = (5, 4)) -> nn.Sequential | None:
    """VGG19's convolutional trunk up to ``layer`` with ImageNet weights, frozen; ``None`` (with a warning)
    when ``weights`` is empty or torchvision's loader cannot provide them.

    ``weights``: a file path, ``"torchvision"`` for torchvision's loader, or ``""`` for none.
    """
    from torchvision.models import VGG19_Weights, vgg19

    if layer not in VGG19_LAYERS:
        raise ConfigError(f"VGG layer phi{layer} is not offered; choose one of {sorted(VGG19_LAYERS)}.")
    if not weights:
        warnings.warn(
            "no VGG19 weights (loss.vgg_weights is empty): the content loss falls back to pixel MSE, which "
            "trains SRGAN-MSE, not the paper's SRGAN-VGG54. Set loss.vgg_weights to a VGG19 file or to "
            "'torchvision'.",
            stacklevel=2,
        )
        return None
    if weights == "torchvision":
        try:
            model = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
        except Exception as exc:  # offline, proxy, corrupt cache: say so and let the caller fall back
            warnings.warn(
                f"torchvision could not provide the VGG19 ImageNet weights ({type(exc).__name__}: {exc}); the "
                "content loss falls back to pixel MSE (SRGAN-MSE, not SRGAN-VGG54). Put vgg19-dcbb9e9d.pth in "
                "$TORCH_HOME/hub/checkpoints or set loss.vgg_weights=PATH.",
                stacklevel=2,
            )
            return None
    else:
        path = Path(weights).expanduser()
        state = read_state_dict(path, "VGG19 weights", "loss.vgg_weights")
        model = vgg19(weights=None)
        features_only = all(k.startswith("features.") for k in state)
        target = _Wrapper(model.features) if features_only else model
        try:
            missing, unexpected = target.load_state_dict(state, strict=False)
            problem = ""
        except RuntimeError as exc:  # right keys, wrong shapes
            missing, unexpected, problem = [], [], str(exc).splitlines()[-1].strip()
        missing = [k for k in missing if k.startswith("features.")]
        if missing or unexpected or problem:
            raise CheckpointError(
                f"{path} is not a VGG19 state dict: "
                + (problem or f"missing {missing[:4]}, unexpected {unexpected[:4]}")
                + " (expected torchvision's vgg19 keys and shapes, such as features.0.weight of 64x3x3x3)."
            )
    trunk = model.features[: VGG19_LAYERS[layer]].eval()
    trunk.requires_grad_(False)
    return trunk


class _Wrapper(nn.Module):
    """Lets a features-only state dict (``features.N.*`` keys) load into ``vgg19().features``."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features


class VGGContentLoss(nn.Module):
    """``scale * MSE(phi(sr), phi(hr))`` for images in [-1, 1], normalised as ImageNet VGG expects.

    SRGAN rescales the VGG feature maps by 1/12.75 so the loss is comparable in size with pixel MSE,
    which is ``scale = 1 / 12.75**2`` on the squared error.
    """

    def __init__(self, trunk: nn.Sequential, scale: float = 1 / 12.75**2) -> None:
        super().__init__()
        self.trunk = trunk
        self.scale = scale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, images: Tensor) -> Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.trunk(((images + 1) * 0.5 - self.mean) / self.std)

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return self.scale * torch.nn.functional.mse_loss(self.features(sr), target)
