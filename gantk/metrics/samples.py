"""The evaluation of a generator that samples from noise: FID/KID and precision/recall of its samples
against real images.

A sampling plugin's ``evaluate`` is one call, ``return sample_metrics(self, nets[self.generator], ctx)``
(DCGAN's is; CGAN adds it to its classifier score). It reads ``cfg.eval`` (:class:`gantk.config.EvalConfig`):
``fid_samples`` images drawn with ``seed`` from the plugin's ``sample_inputs``, against as many real
training images (all of them when the dataset is smaller), drawn once with the same seed.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from gantk.config import EvalConfig
from gantk.errors import PluginError
from gantk.io.images import from_uint8, save_grid
from gantk.metrics.fid import DistributionScores, distances
from gantk.plugin import generate_in_chunks

NO_WEIGHTS = (
    "FID and KID skipped: no eval.fid_weights given (the FID Inception weights file, "
    "weights-inception-2015-12-05-6726825d.pth; see docs/metrics.md). Reporting kid_pixels only, a weight-free "
    "check on 16x16 pixels that is no perceptual metric."
)


def metric_names(cfg: EvalConfig) -> tuple[str, ...]:
    if not cfg.fid_weights:
        return ("kid_pixels",)
    score = ("inception_score", "inception_score_std") if cfg.inception_score else ()
    return ("fid", "kid", "precision", "recall", *score, "kid_pixels")


def best_metric(cfg: EvalConfig) -> str:
    """FID when it is measured, else the pixel KID: lower is better for both."""
    return "fid" if cfg.fid_weights else "kid_pixels"


def _scores(cfg: EvalConfig, device: torch.device) -> DistributionScores:
    return _scores_for(cfg.fid_weights, str(device), cfg.fid_cache, cfg.seed, cfg.inception_score)


@functools.lru_cache(maxsize=2)
def _scores_for(weights: str, device: str, cache: str, seed: int, inception_score: bool) -> DistributionScores:
    """One per run and device: the Inception network loads once, not at every evaluation."""
    if not weights:
        warnings.warn(NO_WEIGHTS, stacklevel=5)
    return DistributionScores(weights, device, cache, seed, inception_score)


def real_images(dataset: torch.utils.data.Dataset, n: int, seed: int, key: str = "image") -> Tensor:
    """``n`` real images in [-1, 1] (all when there are fewer), a fixed random subset for ``seed``."""
    count = len(dataset)  # type: ignore[arg-type]
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[: min(n, count)]
    return images_at(dataset, order.sort().values, key)


def images_at(dataset: torch.utils.data.Dataset, indices: Tensor, key: str = "image") -> Tensor:
    """The dataset's images at ``indices``, as floats in [-1, 1]."""
    images = torch.stack([dataset[int(i)][key] for i in indices])
    return from_uint8(images) if images.dtype == torch.uint8 else images.float()


def generated_images(plugin, G: nn.Module, n: int, seed: int, device: torch.device) -> Tensor:
    """``n`` samples in [-1, 1] on the CPU, from ``sample_inputs`` drawn with ``seed``."""
    return generate_in_chunks(plugin, G, plugin.sample_inputs(n, torch.Generator().manual_seed(seed)), device)


def sample_metrics(plugin, G: nn.Module, ctx, real: Tensor | None = None) -> dict[str, float]:
    """FID and KID (with ``eval.fid_weights``) and the pixel KID of ``eval.fid_samples`` samples.

    ``real``: the reference images in [-1, 1]; by default drawn from ``plugin.build_dataset(data.split)``.
    Writes the first 64 samples to ``ctx.out_dir/samples_XXXXXXXX.png`` (XXXXXXXX: the step).
    """
    cfg = getattr(plugin.cfg, "eval", None)
    if not isinstance(cfg, EvalConfig):
        raise PluginError(
            f"sample_metrics reads cfg.eval.fid_weights, fid_samples, fid_cache and seed; plugin "
            f"'{plugin.cfg.plugin}' declares an eval section ({type(cfg).__name__}) that does not subclass "
            "gantk.EvalConfig. Subclass it to keep those keys."
        )
    scores = _scores(cfg, ctx.device)  # weights that cannot give what is asked: refused before data or sampling
    if real is None:  # read once per run: the engine keeps it in the run's evaluation cache
        real = ctx.cached(
            "sample_metrics: real images",
            lambda: real_images(plugin.build_dataset(plugin.cfg.data.split), cfg.fid_samples, cfg.seed),
        )
    fake = generated_images(plugin, G, cfg.fid_samples, cfg.seed, ctx.device)
    save_grid(fake[:64], Path(ctx.out_dir) / f"samples_{ctx.step:08d}.png", nrow=8)
    protocol = getattr(ctx, "protocol", None)
    if protocol is not None:  # the card: what the scores below mean, stored beside them
        data = plugin.cfg.data
        protocol.update(scores.protocol(fake, real))
        protocol.update(
            reference=f"{data.name} ({data.split})", truncation=1.0 if "truncation" in plugin.sample_options else None
        )
    return scores(fake, real)


def intra_class_fid(plugin, images: Tensor, per_class: int, ctx) -> dict[str, float]:
    """Intra-class FID (Miyato & Koyama 2018) of a class-conditional plugin's samples: the FID of each
    class's samples against that class's real images (as many, drawn with ``eval.seed``), averaged over
    the classes, and the worst class. ``images`` holds ``per_class`` samples of class 0, then of class 1,
    and so on (:func:`gantk.sampling.sample_per_class`). Needs ``eval.fid_weights``: empty without."""
    cfg = plugin.cfg.eval
    if not cfg.fid_weights:
        return {}
    reals = ctx.cached("intra_class_fid: real images", lambda: _real_per_class(plugin, per_class, cfg.seed))
    space = _scores(cfg, ctx.device).inception
    fids = []
    for k, (name, real) in enumerate(zip(plugin.class_names(), reals, strict=True)):
        fake = images[k * per_class : (k + 1) * per_class]
        fids.append(distances(space.reference(real), space.features(fake, what=f"class {name}"), cfg.seed)["fid"])
    protocol = getattr(ctx, "protocol", None)
    if protocol is not None:
        protocol["intra_fid_images_per_class"] = per_class
    return {"intra_fid": sum(fids) / len(fids), "intra_fid_max": max(fids)}


def _real_per_class(plugin, per_class: int, seed: int) -> list[Tensor]:
    """``per_class`` real images of each class (all when it has fewer), a fixed random subset for ``seed``."""
    dataset = plugin.build_dataset(plugin.cfg.data.split)
    tensors = getattr(dataset, "tensors", None)
    labels = tensors["label"] if tensors else torch.stack([dataset[i]["label"] for i in range(len(dataset))])
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, name in enumerate(plugin.class_names()):
        where = (labels == k).nonzero().flatten()
        pick = where[torch.randperm(len(where), generator=g)[:per_class]].sort().values
        if len(pick) < 2:
            raise PluginError(f"intra-class FID: class {name!r} has {len(pick)} real images in the data; it needs 2.")
        out.append(images_at(dataset, pick))
    return out
