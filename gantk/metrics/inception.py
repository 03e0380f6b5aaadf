"""The FID Inception network, read from a file, and the Inception Score computed from its logits.

The network is the Inception v3 graph of the TensorFlow FID code as torch-fidelity ported it
(``weights-inception-2015-12-05-6726825d.pth``): 2048-d pool features from uint8 images resized inside
the network as TensorFlow does. Nothing is downloaded: ``eval.fid_weights`` names the file, read with the
one safe reader (:func:`gantk.io.weights.read_state_dict`), and torch-fidelity gets our own
re-serialisation of the plain tensors read, never the user's file.

The Inception Score needs the 1008-way logits layer; copies that stop at the pool features (``fc.weight``
all zeros, as the offline one in ``../shared/weights``) are refused before any work, never scored.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from gantk.errors import CheckpointError, ConfigError
from gantk.io.weights import read_state_dict

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
FEATURES = 2048


def _require_torch_fidelity() -> None:
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise ConfigError(
            "eval.fid_weights: the FID Inception network comes from torch-fidelity: pip install 'gantk[metrics]'."
        ) from None


def load_fid_inception(path: str | Path) -> nn.Module:
    """The FID Inception network (torchmetrics' ``NoTrainInceptionV3``) with weights from ``path``.

    Input: uint8 images, N x 3 x H x W, any size. Output: N x 2048 pool features.
    """
    _require_torch_fidelity()
    from torchmetrics.image.fid import NoTrainInceptionV3

    state = read_state_dict(path, "FID Inception weights", "eval.fid_weights")
    fc = state.get("fc.weight")
    if fc is None or tuple(fc.shape) != (1008, FEATURES):
        hint = (
            " This looks like torchvision's ImageNet Inception (1000 classes, aux logits): FID needs the TensorFlow "
            "FID graph's weights instead."
            if fc is not None and fc.shape[0] == 1000
            else ""
        )
        raise CheckpointError(
            f"{path} is not the FID Inception network's weights (expected fc.weight of shape 1008 x 2048).{hint} "
            f"Use {WEIGHTS_FILE} from {WEIGHTS_URL} (see docs/metrics.md)."
        )
    # torch-fidelity unpickles whatever it is given; it gets our own re-serialisation of plain tensors that
    # were read safely above, never the user's file.
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in state.items()}, buffer)
    buffer.seek(0)
    try:
        return NoTrainInceptionV3("inception-v3-compat", [str(FEATURES)], feature_extractor_weights_path=buffer)
    except RuntimeError as exc:  # missing / unexpected keys
        raise CheckpointError(f"{path} does not fit the FID Inception network: {str(exc)[:400]}") from None


def no_logits_message(path: str | Path) -> str:
    return (
        f"config key 'eval.inception_score' is true, but the FID Inception weights {path} have no logits layer "
        "(fc.weight is all zeros: a copy that stops at the 2048-d pool features). The Inception Score is a "
        "function of those logits, so it cannot be computed from this file. Use torch-fidelity's "
        f"{WEIGHTS_FILE} (it has the 1008-way logits; docs/metrics.md), or set eval.inception_score=false: "
        "FID, KID, precision and recall need only the pool features and are still reported."
    )


NO_WEIGHTS_FOR_IS = (
    "config key 'eval.inception_score' is true, but eval.fid_weights is empty: the Inception Score needs the FID "
    "Inception network's weights with their logits layer (docs/metrics.md)."
)


def check_inception_score(weights: str | Path, samples: int) -> None:
    """What ``eval.inception_score`` needs, checked from the config and the file before any work: weights
    whose logits layer is not all zeros, and samples enough for the 10 splits."""
    if not weights:
        raise ConfigError(NO_WEIGHTS_FOR_IS)
    if samples < 10:
        raise ConfigError(
            f"config key 'eval.inception_score' is true, but eval.fid_samples is {samples}: the score is averaged "
            "over 10 splits of the samples, so it needs at least 10 (papers use 50,000)."
        )
    fc = read_state_dict(weights, "FID Inception weights", "eval.fid_weights").get("fc.weight")
    if fc is None or not bool(fc.any()):
        raise ConfigError(no_logits_message(weights))


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> dict[str, float]:
    """Inception Score of generated images from their logits (torchmetrics' estimator): exp of the mean KL
    between p(y|x) and the split's marginal p(y), averaged over ``splits`` splits (the images shuffled with
    ``seed`` first, so a score is reproducible), and its spread over the splits."""
    from torchmetrics.image.inception import InceptionScore

    if len(logits) < splits:
        raise ConfigError(
            f"the Inception Score over {splits} splits needs at least {splits} images, got {len(logits)}."
        )
    with warnings.catch_warnings():  # "will save all extracted features" (they are held anyway); one split's std
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=Precomputed(logits.shape[1]), splits=splits, sync_on_compute=False)
        metric.update(logits.double())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mean, std = metric.compute()
    std = std if splits > 1 else torch.zeros(())  # one split has no spread (torch would say nan)
    return {"inception_score": float(mean), "inception_score_std": float(std)}


class Precomputed(nn.Module):
    """Hands torchmetrics features that were extracted already (and perhaps cached)."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.num_features = dims

    def forward(self, features: Tensor) -> Tensor:
        return features
