"""pix2pix (Isola, Zhu, Zhou & Efros, 2017): "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR. Label map -> photo on the CMP facades set by default.

G is a U-Net; D is a PatchGAN that judges (input, output) pairs patch by patch. The loss is
the conditional GAN loss + lambda_L1 (100) * L1(G(x), y), and D's loss is halved. Training uses Adam
2e-4 with beta1 0.5 at batch 1, 100 epochs at a constant rate then 100 decaying linearly to 0. Jitter
resizes to 286, random-crops 256 and flips, identically for input and target. Dropout is G's only
noise. ``train.max_steps: 0`` means the paper's schedule, computed from the number of training pairs.
The last ``data.holdout`` pairs are never trained on: they give the evaluation (L1, PSNR, SSIM) and the
report of input / output / target.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, DataConfig, EvalContext, GanPlugin, Phase, StepContext
from gantk.config import Count, ImageSize, NonNegative, PathStr, Range, Width, height_width
from gantk.data import TensorDataset, jitter, load_dataset, load_rows
from gantk.errors import ConfigError, DataError
from gantk.init import normal_init
from gantk.io.images import example_images, from_uint8, save_grid
from gantk.metrics.translation import distribution_scores, pair_scores
from gantk.tiling import tiled_apply

from .networks import PatchDiscriminator, UNetGenerator


@dataclass
class Pix2PixData(DataConfig):
    direction: Literal["AtoB", "BtoA"] = "BtoA"  # facades: B (label map, right half) -> A (photo)
    # jitter: resize to load_size, random-crop image_size; = image_size: no crop; [height, width] like image_size
    load_size: ImageSize = 286
    flip: bool = True
    holdout: Count = 40  # the last N pairs: evaluation only, never trained on; 0: no evaluation


@dataclass
class Pix2PixModel:
    ngf: Width = 64
    ndf: Width = 64
    num_downs: Annotated[int, Range(1, 12)] = 8  # U-Net depth; inputs are padded to multiples of 2**num_downs
    n_layers: Annotated[int, Range(0, 8)] = 3  # PatchGAN depth: 3 = 70x70, 0 = 1x1 PixelGAN, 5 = 286x286
    norm: Literal["batch", "instance"] = "batch"
    dropout: Annotated[float, Range(0, 1, hi_open=True)] = 0.5


@dataclass
class Pix2PixLoss:
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"  # BCE-with-logits, or least squares
    lambda_l1: NonNegative = 100.0


@dataclass
class Pix2PixEpochs:
    constant: Count = 100  # epochs at the initial rate
    decay: Count = 100  # epochs of linear decay to zero


@dataclass
class Pix2PixEval:
    test_mode: Literal["eval", "train"] = "eval"  # "train": dropout on and batch statistics, as in the paper
    fid_weights: PathStr = ""  # the FID Inception weights (docs/metrics.md); empty: FID and KID skipped
    # gantk translate: images with a side over this are translated in overlapping tiles of this side
    # (memory bounded by the tile; each tile keeps its centre, with tile/8 pixels of context around it)
    tile: Annotated[int, Range(64, 8192)] = 1024


@dataclass
class Pix2PixConfig(Config):
    data: Pix2PixData = field(default_factory=Pix2PixData)
    model: Pix2PixModel = field(default_factory=Pix2PixModel)
    loss: Pix2PixLoss = field(default_factory=Pix2PixLoss)
    epochs: Pix2PixEpochs = field(default_factory=Pix2PixEpochs)
    eval: Pix2PixEval = field(default_factory=Pix2PixEval)


@contextlib.contextmanager
def paper_test_mode(G: nn.Module, device: torch.device):
    """Dropout on and batch statistics, as the paper tests, leaving G's running statistics and the
    global random state exactly as they were (so evaluation never changes training)."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    was_training = G.training
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            for m in norms:
                m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
            G.train()
            yield
        finally:
            for m, (momentum, tracked) in zip(norms, saved, strict=True):
                m.momentum = momentum
                m.num_batches_tracked.copy_(tracked)
            G.train(was_training)


class Pix2Pix(GanPlugin):
    name = "pix2pix"
    description = "pix2pix (Isola et al. 2017): U-Net G + 70x70 PatchGAN, label map -> photo on facades."
    config_class = Pix2PixConfig
    best_mode = "min"
    tasks = frozenset({"translate"})
    any_aspect = True  # fully convolutional: data.image_size may be [height, width]

    cfg: Pix2PixConfig

    def best_metric(self) -> str:
        return "l1"

    # ---- data ---------------------------------------------------------------------------------------
    def build_dataset(self, split: str = "train") -> TensorDataset:
        d = self.cfg.data
        self.check_config()
        pairs = load_dataset(d, split)  # in memory: pix2pix always keeps its data there
        pairs = pairs if isinstance(pairs, TensorDataset) else pairs.preload()  # type: ignore[attr-defined]
        n = len(pairs)
        if d.holdout >= n:
            raise DataError(f"data.holdout={d.holdout} leaves no training pairs out of the {n} in '{d.name}'.")
        return TensorDataset({k: v[: n - d.holdout] for k, v in pairs.tensors.items()}, pairs.channels)

    def resolve(self, dataset: TensorDataset) -> dict[str, int]:
        """The paper's schedule in steps: ``epochs.constant`` epochs at the full rate, then ``epochs.decay``
        decaying linearly to 0, each epoch one pass over the training pairs."""
        tc, epochs, values = self.cfg.train, self.cfg.epochs, {}
        per_epoch = len(dataset) // tc.batch_size
        if tc.max_steps == 0:
            values["train.max_steps"] = (epochs.constant + epochs.decay) * per_epoch
        if self.cfg.schedule.name == "linear_decay" and self.cfg.schedule.decay_start == 0:
            values["schedule.decay_start"] = epochs.constant * per_epoch
        return values

    def _split(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = batch["A"], batch["B"]
        return (b, a) if self.cfg.data.direction == "BtoA" else (a, b)

    def prepare_batch(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """Random jitter, the same for input and target: resize to load_size, crop, flip (on the device)."""
        d = self.cfg.data
        x = torch.cat(self._split(batch), dim=1)  # crop and flip the pair as one image
        n = len(x)
        offsets, flips = ctx.rand(n, 2), ctx.rand(n) < 0.5 if d.flip else None
        x = jitter.resize_and_crop(x, d.load_size, d.image_size, offsets, flips)
        c = x.shape[1] // 2
        return {"input": x[:, :c], "target": x[:, c:]}

    # ---- networks and losses ------------------------------------------------------------------------
    def check_config(self) -> None:
        d, m = self.cfg.data, self.cfg.model
        (h, w), (load_h, load_w) = height_width(d.image_size), height_width(d.load_size)
        if h % 2**m.num_downs or w % 2**m.num_downs:
            raise ConfigError(
                f"data.image_size={d.image_size} must be a multiple of 2**model.num_downs={2**m.num_downs} (the "
                "U-Net halves it num_downs times), in height and width."
            )
        if m.n_layers and min(h, w) // 2**m.n_layers < 4:
            raise ConfigError(
                f"model.n_layers={m.n_layers} is too deep for data.image_size={d.image_size}: the PatchGAN halves "
                f"the image n_layers times and needs at least 4x4 left (n_layers <= {(min(h, w) // 4).bit_length() - 1})."
            )
        if load_h < h or load_w < w:
            raise ConfigError(f"data.load_size ({d.load_size}) must be at least data.image_size ({d.image_size}).")

    def build_networks(self) -> dict[str, nn.Module]:
        m, c = self.cfg.model, self.cfg.data.channels
        self.check_config()
        G = UNetGenerator(c, c, m.ngf, m.num_downs, m.norm, m.dropout)
        D = PatchDiscriminator(2 * c, m.ndf, m.n_layers, m.norm)  # judges (input, output) pairs
        G.apply(normal_init)
        D.apply(normal_init)
        return {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        return [Phase.alternating(self.d_loss, self.g_loss)]

    def gan_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.cfg.loss.gan_mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        x, y = batch["input"], batch["target"]
        fake = G(x)
        ctx.scratch["fake"] = fake  # the G update of this step reuses it
        real_logits, fake_logits = D(torch.cat([x, y], 1)), D(torch.cat([x, fake.detach()], 1))
        ctx.observe_real(real_logits)
        if self.cfg.loss.gan_mode == "vanilla":  # logits: what the training-health alarms read (not LSGAN's)
            ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, y)  # different label maps should give different photos
        return {"real": 0.5 * self.gan_loss(real_logits, True), "fake": 0.5 * self.gan_loss(fake_logits, False)}

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        x, y = batch["input"], batch["target"]
        fake = ctx.scratch.pop("fake")
        return {
            "gan": self.gan_loss(ctx.nets["D"](torch.cat([x, fake], 1)), True),
            "l1": self.cfg.loss.lambda_l1 * F.l1_loss(fake, y),
        }

    def metric_names(self) -> tuple[str, ...]:
        return ("l1", "psnr", "ssim", "fid", "kid") if self.cfg.eval.fid_weights else ("l1", "psnr", "ssim")

    # ---- sampling, translation, evaluation -----------------------------------------------------------
    def _inputs_targets(self, pairs: TensorDataset) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = (from_uint8(t) for t in (pairs.tensors["A"], pairs.tensors["B"]))
        return (b, a) if self.cfg.data.direction == "BtoA" else (a, b)

    def heldout_pairs(self) -> TensorDataset:
        """The last ``data.holdout`` pairs of the data (at least one), never trained on: what evaluation
        scores; read alone, not with the training pairs."""
        return load_rows(self.cfg.data, self.cfg.data.split, slice(-self.cfg.data.holdout, None))

    def sample_inputs(self, n: int, generator: torch.Generator, **conditions) -> dict[str, torch.Tensor]:
        raise NotImplementedError("pix2pix translates inputs; use 'gantk translate RUN input.png -o out.png'")

    def preview_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The first ``n`` held-out inputs (the first training inputs when nothing is held out): sample
        grids follow the same label maps through training."""
        held = self.cfg.data.holdout
        rows = slice(-held, -held + n if n < held else None) if held else slice(0, n)
        return {"input": self._inputs_targets(load_rows(self.cfg.data, self.cfg.data.split, rows))[0]}

    def export_inputs(self) -> dict[str, torch.Tensor]:
        """Two input images of data.image_size (any multiple of 2**model.num_downs works once exported)."""
        return {"input": example_images(2, self.cfg.data.channels or 3, self.cfg.data.image_size)}

    def generate(self, G: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return G(inputs["input"])

    def translate(self, G: nn.Module, image: torch.Tensor, train_mode: bool | None = None) -> torch.Tensor:
        """Any size. Up to ``eval.tile`` pixels a side, the whole image at once; larger ones in overlapping
        tiles of that side (memory bounded by the tile: a 10000x10000 image is not one allocation), each
        keeping its centre, with tile/8 pixels of context on every side."""
        tile = self.cfg.eval.tile
        if max(image.shape[-2:]) <= tile:
            return self._translate_whole(G, image, train_mode)
        return tiled_apply(lambda x: self._translate_whole(G, x, train_mode).float(), image, 1, tile, tile // 8)

    def _translate_whole(self, G: nn.Module, image: torch.Tensor, train_mode: bool | None) -> torch.Tensor:
        """Pad (replicate) to a multiple of 2**num_downs, translate, crop back."""
        train_mode = self.cfg.eval.test_mode == "train" if train_mode is None else train_mode
        if train_mode and not any(isinstance(m, nn.Dropout) for m in G.modules()):
            raise ConfigError("--train-mode needs the PyTorch generator (an exported graph has no dropout to keep).")
        mult = 2**self.cfg.model.num_downs
        h, w = image.shape[-2:]
        ph, pw = -h % mult, -w % mult
        x = F.pad(image, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate") if ph or pw else image
        device = next(G.parameters()).device
        mode = paper_test_mode(G, device) if train_mode else contextlib.nullcontext()
        with torch.no_grad(), mode:
            y = G(x.to(device))
        return y[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """L1, PSNR and SSIM (kornia) on the held-out pairs, in [0, 1]; writes the report grid."""
        if not self.cfg.data.holdout:
            warnings.warn("data.holdout=0: no held-out pairs, so pix2pix reports no metrics", stacklevel=2)
            return {}
        pairs = ctx.cached("pix2pix: held-out pairs", self.heldout_pairs)  # read once per run
        inputs, targets = self._inputs_targets(pairs)
        G = nets["G"]
        outputs = []
        mode = paper_test_mode(G, ctx.device) if self.cfg.eval.test_mode == "train" else contextlib.nullcontext()
        with mode:
            for start in range(0, len(inputs), 8):
                outputs.append(G(inputs[start : start + 8].to(ctx.device)).float().cpu())
        out = torch.cat(outputs)
        data = self.cfg.data
        ctx.protocol.update(
            reference=f"{data.name}: the last {data.holdout} pairs (held out, never trained on)",
            direction=data.direction,
            test_mode=self.cfg.eval.test_mode,
        )
        metrics = pair_scores(out, targets, ctx.protocol)
        metrics.update(distribution_scores(out, targets, self.cfg.eval.fid_weights, ctx.device, ctx.protocol))
        write_report(ctx, inputs, out, targets, metrics)
        return metrics


def write_report(ctx: EvalContext, inputs, outputs, targets, metrics: dict[str, float]) -> None:
    """A PNG of input | output | target triplets (four per row) and an HTML page around it."""
    triplets = torch.stack([inputs, outputs, targets], dim=1).flatten(0, 1)
    name = f"step_{ctx.step:08d}.png"
    save_grid(triplets, ctx.out_dir / name, nrow=12)
    numbers = " ".join(f"<td>{k}</td><td>{v:.4f}</td>" for k, v in metrics.items())
    (ctx.out_dir / "report.html").write_text(
        "<!doctype html><meta charset=utf-8><title>pix2pix held-out report</title>"
        f"<h1>Held-out pairs at step {ctx.step}</h1><table><tr>{numbers}</tr></table>"
        "<p>Each triplet: input (label map) | output | target (photo).</p>"
        f'<img src="{name}" style="max-width:100%">',
        encoding="utf-8",
    )
