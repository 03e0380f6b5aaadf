"""Scores of an image-to-image generator on held-out images, shared by pix2pix and CycleGAN.

:func:`pair_scores` compares outputs with their targets where the data has pairs (L1, PSNR and SSIM on
images in [0, 1], kornia's). :func:`distribution_scores` is FID and KID of the outputs against the target
images with the FID Inception network from ``eval.fid_weights``; without weights it warns once and reports
nothing, since a paired L1 is already there to judge by. Given the evaluation's protocol card
(``EvalContext.protocol``, or a per-direction part of it), both write how they scored into it.
"""

from __future__ import annotations

import functools
import warnings

import kornia
import torch
from torch import Tensor, nn

from gantk.metrics.fid import FeatureSpace, distances, feature_protocol, images_sha256

NO_WEIGHTS = (
    "FID and KID skipped: no eval.fid_weights given (the FID Inception weights file, see docs/metrics.md); "
    "L1, PSNR and SSIM are still reported where the held-out images are pairs."
)


PAIR_METRICS = "L1, PSNR (peak 1) and SSIM (11x11 Gaussian, kornia) on [0, 1], mean over pairs"


def pair_scores(out: Tensor, target: Tensor, protocol: dict | None = None) -> dict[str, float]:
    """Mean L1, PSNR and SSIM (11x11 window) of outputs against targets, both (N, C, H, W) in [-1, 1]."""
    if protocol is not None:
        protocol.update(pairs=len(out), pair_metrics=PAIR_METRICS, real_sha256=images_sha256(target))
    out01, tgt01 = (out * 0.5 + 0.5).clamp(0, 1), (target * 0.5 + 0.5).clamp(0, 1)
    psnr = torch.stack([kornia.metrics.psnr(o, t, 1.0) for o, t in zip(out01, tgt01, strict=True)])
    return {
        "l1": (out01 - tgt01).abs().mean().item(),
        "psnr": psnr.mean().item(),
        "ssim": kornia.metrics.ssim(out01, tgt01, 11).mean().item(),
    }


@functools.lru_cache(maxsize=2)
def _feature_space(weights: str, device: str) -> FeatureSpace:
    """One per weights file and device: the Inception network loads once per process, not per evaluation."""
    return FeatureSpace(weights, device)


def distribution_scores(
    fake: Tensor, real: Tensor, weights: str, device: torch.device, protocol: dict | None = None
) -> dict[str, float]:
    """``{"fid", "kid"}`` of ``fake`` against ``real`` (both in [-1, 1]); ``{}`` with a warning when ``weights``
    is empty (one line, raised here: Python's default filter shows it once per process)."""
    if not weights:
        warnings.warn(NO_WEIGHTS, stacklevel=2)
        return {}
    space = _feature_space(weights, str(device))
    if protocol is not None:
        protocol.update(feature_protocol(space, fake, real), seed=0)
    d = distances(space.reference(real), space.features(fake, what="translated"))  # targets: cached
    return {"fid": d["fid"], "kid": d["kid"]}


@torch.no_grad()
def translate_all(G: nn.Module, images: Tensor, device: torch.device, chunk: int = 8) -> Tensor:
    """``G`` over ``images`` (float, on the CPU), ``chunk`` at a time on ``device``; outputs on the CPU."""
    return torch.cat([G(images[i : i + chunk].to(device)).float().cpu() for i in range(0, len(images), chunk)])
