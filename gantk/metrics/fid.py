"""FID and KID of generated images against real ones: torchmetrics' statistics, features from a file.

The features are those of the standard FID network: the Inception v3 graph of the TensorFlow FID code,
ported to PyTorch by torch-fidelity (``weights-inception-2015-12-05-6726825d.pth``, 2048-d pool features,
images as uint8 resized inside the network like TensorFlow does). With that file, gantk's FID is
comparable with published ones computed on the same number of images. Nothing is downloaded: the
user points ``eval.fid_weights`` at the file, as ``.pth`` (read with ``torch.load(weights_only=True)``,
which refuses pickled code) or ``.safetensors``; see docs/metrics.md for where it comes from.

The statistics are torchmetrics' ``FrechetInceptionDistance`` and ``KernelInceptionDistance``, fed
features that were already extracted. That is what lets the real side be computed once: a dataset's
reference features are cached in ``eval.fid_cache`` (``~/.cache/gantk/fid`` by default) under a key made
of the network's weights and the exact bytes of the real images, so a changed dataset or network never
reuses a stale cache, and every run and every evaluation on the same data reuses a valid one.

The Inception Score (Salimans et al. 2016) needs the network's 1008-way logits layer. It is computed
from the same pool features (logits = features x fc.weight, torch-fidelity's ``logits_unbiased``) only
when ``eval.inception_score`` asks for it and the file's ``fc.weight`` is not all zeros: copies that
stop at the pool features (as the offline one in ``../shared/weights``) are refused, never scored.

Without weights, :func:`pixel_features` gives a weight-free stand-in (images shrunk to 16x16): KID on
pixels catches gross failures (collapse, wrong contrast, blotches) but is no perceptual metric, and is
reported under its own name (``kid_pixels``) so it is never mistaken for the real thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk.console import progress
from gantk.errors import ConfigError
from gantk.io.checkpoint import sha256
from gantk.io.images import to_uint8
from gantk.io.weights import check_weights_file
from gantk.metrics.inception import (
    FEATURES,
    NO_WEIGHTS_FOR_IS,
    WEIGHTS_FILE,
    Precomputed,
    inception_score,
    load_fid_inception,
    no_logits_message,
)

log = logging.getLogger("gantk")

MIN_FEATURE_VARIANCE = 1e-6  # total over the 2048 dims; a trained Inception gives tens, random weights ~1e-15


class PixelFeatures(nn.Module):
    """The weight-free stand-in: uint8 images shrunk to 16x16 (area), flattened, in [0, 1]."""

    DIMS = 3 * 16 * 16  # of RGB images (uint8_rgb)

    def forward(self, images: Tensor) -> Tensor:
        x = F.interpolate(images.float() / 255.0, size=(16, 16), mode="area", antialias=False)
        return x.flatten(1)


def uint8_rgb(images: Tensor) -> Tensor:
    """Images in [-1, 1] as the uint8 RGB the FID network reads (grey repeated), as if saved as PNGs."""
    x = to_uint8(images)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gantk" / "fid"


class FeatureSpace:
    """One feature extractor (the FID Inception network, or pixels) and its cache of reference features."""

    def __init__(
        self, weights: str | Path = "", device: torch.device | str = "cpu", cache_dir: str | Path = ""
    ) -> None:
        self.device = torch.device(device)
        self.weights = str(weights)
        if weights:  # a FIFO or /dev/zero would be hashed until killed
            check_weights_file(weights, "FID Inception weights", "eval.fid_weights")
        self.weights_sha256 = sha256(Path(weights)) if weights else ""
        if weights:
            self.name = f"inception-{self.weights_sha256[:16]}"
            self.net: nn.Module = load_fid_inception(weights).to(self.device)
        else:
            self.name = "pixels16"
            self.net = PixelFeatures()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._memory: dict[str, Tensor] = {}

    @torch.no_grad()
    def features(self, images: Tensor, batch: int = 64, what: str = "generated") -> Tensor:
        """N x D float64 features (on the CPU) of images in [-1, 1]. The Inception passes show their
        progress (``what`` images, with the rate and an ETA): on a CPU thousands of them take minutes."""
        out = []
        shown = progress(f"Inception features of {what} images", len(images)) if self.weights_sha256 else None
        with shown or contextlib.nullcontext() as advance:
            for start in range(0, len(images), batch):
                x = uint8_rgb(images[start : start + batch]).to(self.device)
                out.append(self.net(x).double().cpu())
                if advance is not None:
                    advance(len(x))
        return torch.cat(out)

    @property
    def has_logits(self) -> bool:
        """Whether the weights hold a logits layer (``fc.weight`` not all zeros), as the Inception Score needs."""
        return bool(self.weights_sha256) and bool(self.net.fc.weight.any())

    def logits(self, features: Tensor) -> Tensor:
        """The 1008-way logits of pool ``features`` (torch-fidelity's ``logits_unbiased``: no bias), for the
        Inception Score; refused when the weights' logits layer is all zeros."""
        if not self.has_logits:
            raise ConfigError(no_logits_message(self.weights))
        return features.double() @ self.net.fc.weight.detach().double().cpu().T

    def reference(self, images: Tensor) -> Tensor:
        """Features of real images, from the cache when these exact images were seen with this network."""
        digest = hashlib.sha256(self.name.encode())
        digest.update(str(tuple(images.shape)).encode())
        digest.update(uint8_rgb(images).contiguous().numpy().tobytes())
        key = digest.hexdigest()[:32]
        if key in self._memory:
            return self._memory[key]
        path = self.cache_dir / f"{self.name}-{key}.safetensors"
        feats = _read_cache(path, len(images), self.dims)
        if feats is None:
            log.info("computing reference features of %d real images (cached in %s)", len(images), path)
            feats = self.features(images, what="real (reference)")
            self._check_varied(feats)
            _write_cache(path, feats)
        self._memory[key] = feats
        return feats

    @property
    def dims(self) -> int:
        return FEATURES if self.weights_sha256 else PixelFeatures.DIMS

    def _check_varied(self, feats: Tensor) -> None:
        """Features of different real images must differ: an untrained network of the right shape (random
        weights) maps every image to nearly the same point, and every FID is then 0.0000."""
        if len(feats) < 2 or not self.weights_sha256:
            return
        spread = float(feats.var(dim=0).sum())
        if not spread > MIN_FEATURE_VARIANCE:
            raise ConfigError(
                f"the FID network's features of {len(feats)} real images do not vary (total variance {spread:.3g}): "
                f"eval.fid_weights {self.weights} is not a trained FID Inception (random or damaged weights of the "
                "right shape give every model FID 0.0000), or the reference images are all the same. Use the TF "
                f"FID Inception weights ({WEIGHTS_FILE}, see docs/metrics.md)."
            )


#: how the FID network sees an image: torch-fidelity's TensorFlow-compatible resize, inside the network
RESIZE = "torch-fidelity TF-compatible bilinear to 299x299, from uint8"


def images_sha256(images: Tensor) -> str:
    """SHA-256 of images in [-1, 1] as the feature passes see them (uint8 RGB): a reference set's identity."""
    return hashlib.sha256(uint8_rgb(images).contiguous().numpy().tobytes()).hexdigest()


def _read_cache(path: Path, rows: int, dims: int) -> Tensor | None:
    """Cached reference features, or None (recompute) for an entry that fails its checks: a torn or
    foreign file, another shape than ``rows`` x ``dims``, values that are not finite, or all zeros."""
    if not path.is_file():
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        feats = load_file(str(path))["features"].double()
    except (OSError, SafetensorError, KeyError) as exc:  # a torn or foreign file: recompute, then replace it
        log.warning("ignoring unreadable reference-feature cache %s (%s); recomputing", path, exc)
        return None
    problem = ""
    if tuple(feats.shape) != (rows, dims):
        problem = f"shape {tuple(feats.shape)}, expected ({rows}, {dims})"
    elif not torch.isfinite(feats).all():
        problem = "values that are not finite"
    elif not feats.any():
        problem = "all zeros"
    if problem:
        log.warning("ignoring reference-feature cache %s (%s); recomputing", path, problem)
        return None
    return feats


def _write_cache(path: Path, feats: Tensor) -> None:
    """Written to a temporary name and renamed: a crash never leaves a half file under the real name."""
    from safetensors.torch import save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"features": feats.float().contiguous()}, str(tmp))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache still lets the run evaluate
        log.warning("cannot cache reference features in %s (%s)", path, exc)


def distances(real: Tensor, fake: Tensor, seed: int = 0, subsets: int = 100) -> dict[str, float]:
    """FID, KID and KID's spread over subsets between two feature sets (torchmetrics' estimators).

    KID uses subsets of min(1000, both set sizes) images, drawn with ``seed`` so that a score is
    reproducible. Fewer images than feature dimensions make FID's covariance rank-deficient and FID
    biased upwards: compare runs at the same image count.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ConfigError(f"FID and KID need at least 2 images on each side, got {len(real)} real and {len(fake)}.")
    # sync_on_compute off: gantk evaluates on one process (rank 0) while the others wait, and torchmetrics
    # would otherwise gather states from every process of a data-parallel run and hang it
    fid = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), sync_on_compute=False)
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    with warnings.catch_warnings():  # "will save all extracted features": they are held anyway
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(
            feature=Precomputed(real.shape[1]),
            subsets=subsets,
            subset_size=min(1000, len(real), len(fake)),
            sync_on_compute=False,
        )
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk: int = 1024) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) between two feature sets.

    Each set's manifold is the union of balls around its points, each ball reaching the point's k-th
    nearest neighbour in the same set. Precision is the share of generated points inside the real
    manifold (are the samples realistic?), recall the share of real points inside the generated one (is
    the data covered?). Distances are computed ``chunk`` rows at a time, so 50,000 points fit in memory.
    """
    if len(real) <= k or len(fake) <= k:
        raise ConfigError(
            f"precision and recall with k={k} need more than {k} images on each side, got {len(real)} real and "
            f"{len(fake)} generated."
        )
    real, fake = real.double(), fake.double()

    def radii(points: Tensor) -> Tensor:  # distance of each point to its k-th nearest neighbour, itself excluded
        return torch.cat(
            [
                torch.cdist(points[i : i + chunk], points).kthvalue(k + 1, dim=1).values
                for i in range(0, len(points), chunk)
            ]
        )

    def inside(queries: Tensor, points: Tensor, r: Tensor) -> float:
        hits = [(torch.cdist(queries[i : i + chunk], points) <= r[None]).any(1) for i in range(0, len(queries), chunk)]
        return float(torch.cat(hits).double().mean())

    return {"precision": inside(fake, real, radii(real)), "recall": inside(real, fake, radii(fake))}


def feature_protocol(space: FeatureSpace | None, fake: Tensor, real: Tensor) -> dict[str, object]:
    """The part of a protocol card that says how two image sets were turned into features and compared:
    shared by the samplers' scores and the translation plugins'. ``space`` None: pixels, no network."""
    return {
        "features": "FID Inception pool3, 2048-d" if space else "pixels 16x16 (no FID network)",
        "weights_sha256": space.weights_sha256 if space else "",
        "resize": RESIZE if space else "area to 16x16",
        "generated": len(fake),
        "real": len(real),
        "real_sha256": images_sha256(real),
        "kid_subsets": "100 of min(1000, n)",
    }


class DistributionScores:
    """FID/KID and precision/recall of generated images against a fixed real set, on the FID Inception
    network's features, with the weight-free pixel KID always beside (and the Inception Score on request).

    Built once per run (the networks load once, the reference features are cached); ``__call__`` scores
    one set of generated images.
    """

    def __init__(
        self,
        weights: str | Path,
        device: torch.device | str,
        cache_dir: str | Path = "",
        seed: int = 0,
        inception_score: bool = False,
    ) -> None:
        self.seed = seed
        self.pixels = FeatureSpace("", device, cache_dir)
        self.inception = FeatureSpace(weights, device, cache_dir) if weights else None
        if inception_score and self.inception is None:
            raise ConfigError(NO_WEIGHTS_FOR_IS)
        if inception_score and not self.inception.has_logits:  # refused now, not after the samples are drawn
            raise ConfigError(no_logits_message(weights))
        self.inception_score = inception_score

    def protocol(self, fake: Tensor, real: Tensor) -> dict[str, object]:
        """How :meth:`__call__` scores ``fake`` against ``real``: the part of the protocol card it owns."""
        card = feature_protocol(self.inception, fake, real)
        card.update(precision_recall_k=3 if self.inception else None, seed=self.seed)
        if self.inception_score:
            card["inception_score_splits"] = 10
        return card

    def __call__(self, fake: Tensor, real: Tensor) -> dict[str, float]:
        """Scores of ``fake`` against ``real`` (both images in [-1, 1])."""
        out = {"kid_pixels": distances(self.pixels.reference(real), self.pixels.features(fake), self.seed)["kid"]}
        if self.inception is not None:
            real_f, fake_f = self.inception.reference(real), self.inception.features(fake)
            d = distances(real_f, fake_f, self.seed)
            out.update(fid=d["fid"], kid=d["kid"], **precision_recall(real_f, fake_f))
            if self.inception_score:
                out.update(inception_score(self.inception.logits(fake_f), seed=self.seed))
        return out
