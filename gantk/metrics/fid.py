"""Fréchet Inception Distance from torchvision's Inception v3, with weights taken from a file.

No weights are downloaded: pass the path of Inception v3 ImageNet weights, as safetensors or as
torchvision's ``inception_v3_google-*.pth``. A ``.pth`` is read with ``torch.load(weights_only=True)``,
which refuses pickled code. Without weights, callers skip FID with a warning rather than report a
number from a random network.

These features come from torchvision's Inception, not the TensorFlow graph that published FIDs use,
so gantk's FID compares runs within gantk and not with numbers in papers. With few images (pix2pix's
40 held-out pairs) the covariance is rank-deficient and FID is strongly biased upwards; compare
like with like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gantk.errors import CheckpointError
from gantk.io.weights import read_state_dict

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def load_inception(path: str | Path) -> nn.Module:
    """Inception v3 returning 2048-d pool features, with weights from ``path``."""
    from torchvision.models import inception_v3

    state = read_state_dict(path, "Inception weights", "eval.fid_weights")
    model = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is not an Inception v3 state dict: missing {missing[:4]}, unexpected {unexpected[:4]}."
        )
    model.fc = nn.Identity()
    return model.eval()


@torch.no_grad()
def features(model: nn.Module, images: torch.Tensor, batch: int = 16) -> np.ndarray:
    """Pool features of images in [0, 1], resized to 299 and ImageNet-normalised."""
    device = next(model.parameters()).device
    mean = torch.tensor(_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=device).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(images), batch):
        x = images[start : start + batch].to(device).float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        out.append(model((x - mean) / std).double().cpu())
    return torch.cat(out).numpy()


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1) + Tr(C2) - 2 Tr(sqrt(C1 C2)).

    The last trace is computed as the sum of sqrt(eig(sqrt(C1) C2 sqrt(C1))). That matrix is symmetric
    and PSD, so this stays stable when the covariances are rank-deficient (fewer images than
    dimensions), where a general matrix square root of C1 C2 does not.
    """
    vals, vecs = np.linalg.eigh(cov1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = root1 @ cov2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


class FIDScorer:
    """Holds the Inception model and the reference statistics of one fixed set of real images."""

    def __init__(self, weights: str | Path, real: torch.Tensor, device: torch.device) -> None:
        self.model = load_inception(weights).to(device)
        f = features(self.model, real)
        self.mu, self.cov = f.mean(0), np.cov(f, rowvar=False)

    def __call__(self, fake: torch.Tensor) -> float:
        f = features(self.model, fake)
        return frechet_distance(f.mean(0), np.cov(f, rowvar=False), self.mu, self.cov)
