"""CycleGAN (Zhu, Park, Isola & Efros, 2017): "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV.

Two generators translate between domains A and B that come with no pairs: ``G_AB`` (A -> B) and ``G_BA``
(B -> A). ``D_A`` tells real A images from ``G_BA``'s, ``D_B`` real B from ``G_AB``'s. Translating there and
back must return the input (cycle consistency), and a generator given an image of its target domain
should leave it alone (identity)::

    G (one optimizer over G_AB and G_BA, both D frozen):
        LSGAN(D_B(G_AB(a)), 1) + LSGAN(D_A(G_BA(b)), 1)
        + lambda_A |G_BA(G_AB(a)) - a| + lambda_B |G_AB(G_BA(b)) - b|                  (cycle, 10)
        + lambda_identity * (lambda_B |G_AB(b) - b| + lambda_A |G_BA(a) - a|)          (identity, 0.5)
    D (one optimizer over D_A and D_B):
        0.5 * (LSGAN(D_A(a), 1) + LSGAN(D_A(pool_A(G_BA(b))), 0)) + the same for D_B

as junyanz's ``cycle_gan_model.py`` computes it, G first, then D on the same fakes drawn through a history
of 50 generated images per discriminator (``ImagePool``, on the device and in checkpoints). The paper's
schedule: Adam 2e-4 (beta1 0.5), batch 1, 100 epochs constant then 100 decaying linearly to zero (an epoch
is max(|A|, |B|) images); jitter resizes to 286, crops 256 and flips, each domain on its own.

Data: junyanz's unpaired layout (``trainA/``, ``trainB/``, optional ``testA/``, ``testB/``), or a paired set
such as facades read as two unpaired domains (the last ``data.holdout`` pairs held out). Evaluation: L1,
PSNR and SSIM of each direction on held-out pairs where there are pairs, FID/KID of each direction's
translations against its held-out targets with ``eval.fid_weights``, and grids A -> B -> A, B -> A -> B.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from gantk.plugins.pix2pix.networks import PatchDiscriminator
from torch import nn

from gantk import Config, DataConfig, EvalContext, GanPlugin, Phase, StepContext, Update
from gantk.config import Count, ImageSize, NonNegative, PathStr, Range, Width, height_width
from gantk.data import jitter, load_dataset, load_rows, locate
from gantk.data.datasets import TensorDataset, UnpairedDataset, image_folder, unpaired
from gantk.errors import ConfigError, DataError
from gantk.init import normal_init
from gantk.io.images import example_images, from_uint8, save_grid
from gantk.metrics.translation import distribution_scores, pair_scores, translate_all
from gantk.tiling import tiled_apply

from .networks import ImagePool, ResnetGenerator

DIRECTIONS = {"AtoB": "G_AB", "BtoA": "G_BA"}


@dataclass
class CycleGANData(DataConfig):
    # jitter: resize to load_size, random-crop image_size; = image_size: no crop; [height, width] like image_size
    load_size: ImageSize = 286
    flip: bool = True
    holdout: Count = 40  # a paired set: the last N pairs are held out (evaluation only); unpaired: testA/testB


@dataclass
class CycleGANModel:
    ngf: Width = 64
    ndf: Width = 64
    n_blocks: Annotated[int, Range(0, 64)] = 0  # residual blocks; 0: the paper's 9 at >= 256 px, 6 below
    n_layers: Annotated[int, Range(1, 8)] = 3  # PatchGAN depth: 3 = 70x70
    pool_size: Annotated[int, Range(0, 10_000)] = 50  # generated images each D's history keeps; 0: none


@dataclass
class CycleGANLoss:
    gan_mode: Literal["lsgan", "vanilla"] = "lsgan"  # least squares (the paper), or BCE-with-logits
    lambda_A: NonNegative = 10.0  # cycle A -> B -> A
    lambda_B: NonNegative = 10.0  # cycle B -> A -> B
    lambda_identity: NonNegative = 0.5  # x the cycle weights; 0: no identity loss


@dataclass
class CycleGANEpochs:
    constant: Count = 100
    decay: Count = 100


@dataclass
class CycleGANEval:
    fid_weights: PathStr = ""  # the FID Inception weights (docs/metrics.md); empty: FID and KID skipped
    tile: Annotated[int, Range(64, 8192)] = 1024  # gantk translate: larger images go in overlapping tiles


@dataclass
class CycleGANConfig(Config):
    data: CycleGANData = field(default_factory=CycleGANData)
    model: CycleGANModel = field(default_factory=CycleGANModel)
    loss: CycleGANLoss = field(default_factory=CycleGANLoss)
    epochs: CycleGANEpochs = field(default_factory=CycleGANEpochs)
    eval: CycleGANEval = field(default_factory=CycleGANEval)


class CycleGAN(GanPlugin):
    name = "cyclegan"
    description = (
        "CycleGAN (Zhu et al. 2017): two ResNet generators, two PatchGANs, cycle + identity losses; unpaired A <-> B."
    )
    config_class = CycleGANConfig
    generator = "G_AB"
    directions = DIRECTIONS
    tasks = frozenset({"translate"})
    any_aspect = True  # fully convolutional: data.image_size may be [height, width]
    # two discriminators, each fed its own domain: ``train.augment`` wraps one network, so it is not offered
    augment_network = ""

    cfg: CycleGANConfig

    # ---- data ---------------------------------------------------------------------------------------
    def check_config(self) -> None:
        d = self.cfg.data
        (h, w), (load_h, load_w) = height_width(d.image_size), height_width(d.load_size)
        if h % 4 or w % 4:
            raise ConfigError(
                f"data.image_size={d.image_size} must be a multiple of 4 (the generator halves it twice), in height "
                "and width."
            )
        if load_h < h or load_w < w:
            raise ConfigError(f"data.load_size ({d.load_size}) must be at least data.image_size ({d.image_size}).")
        if min(h, w) // 2**self.cfg.model.n_layers < 4:
            raise ConfigError(
                f"model.n_layers={self.cfg.model.n_layers} is too deep for data.image_size={d.image_size}: the "
                "PatchGAN halves the image n_layers - 1 times and needs at least 4x4 left."
            )

    def build_dataset(self, split: str = "train") -> UnpairedDataset:
        """Two unpaired domains: ``trainA``/``trainB`` folders, or a paired set whose last ``data.holdout``
        pairs are held out and whose other pairs are read as two independent domains."""
        d, seed = self.cfg.data, self.cfg.train.seed
        self.check_config()
        root = self._root()
        if root is not None:
            return unpaired(root, d.image_size, d.channels, "train", seed)
        pairs = load_dataset(d, split)
        pairs = pairs if isinstance(pairs, TensorDataset) else pairs.preload()  # type: ignore[attr-defined]
        a, b = pairs.tensors["A"], pairs.tensors["B"]
        keep = len(a) - d.holdout
        if keep < 1:
            raise DataError(f"data.holdout={d.holdout} leaves no training pairs out of the {len(a)} in '{d.name}'.")
        return UnpairedDataset(a[:keep], b[:keep], pairs.channels, seed)

    def heldout_images(self) -> dict[str, torch.Tensor]:
        """The evaluation's images: ``"A"``, ``"B"`` and ``"paired"`` (1 when they are each other's partners:
        a paired set's last ``data.holdout`` pairs; 0 for ``testA``/``testB``); empty when there are none.
        Read alone, not with the training images."""
        d = self.cfg.data
        root = self._root()
        if root is not None:
            if not ((root / "testA").is_dir() and (root / "testB").is_dir()):
                return {}
            test = unpaired(root, d.image_size, d.channels, "test", self.cfg.train.seed).tensors
            return {"A": test["A"], "B": test["B"], "paired": torch.zeros(())}
        if not d.holdout:
            return {}
        held = load_rows(d, "train", slice(-d.holdout, None)).tensors
        return {"A": held["A"], "B": held["B"], "paired": torch.ones(())}

    def _root(self) -> Path | None:
        """The folder of junyanz's unpaired layout (``trainA``/``trainB``); None for a paired set; any other
        kind of data is refused, naming the two layouts CycleGAN reads."""
        d = self.cfg.data
        root, kind = locate(d.name, d.kind)
        if kind == "unpaired" or (root / "trainA").is_dir():
            return root
        if kind != "paired":
            raise DataError(
                f"CycleGAN needs two domains: --data {d.name} is a '{kind}' dataset. Give a folder with trainA/ and "
                "trainB/ (junyanz's layout), or a paired set such as facades (a folder of side-by-side pairs: "
                "--set data.kind=paired)."
            )
        return None

    def resolve(self, dataset: UnpairedDataset) -> dict[str, int]:
        """The paper's schedule in steps (an epoch is max(|A|, |B|) images) and its block count."""
        tc, epochs, values = self.cfg.train, self.cfg.epochs, {}
        per_epoch = len(dataset) // tc.batch_size
        if tc.max_steps == 0:
            values["train.max_steps"] = (epochs.constant + epochs.decay) * per_epoch
        if self.cfg.schedule.name == "linear_decay" and self.cfg.schedule.decay_start == 0:
            values["schedule.decay_start"] = epochs.constant * per_epoch
        if self.cfg.model.n_blocks == 0:
            values["model.n_blocks"] = 9 if min(height_width(self.cfg.data.image_size)) >= 256 else 6
        return values

    def prepare_batch(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """Resize to load_size, random crop, random flip, on the device; A and B each their own (unpaired)."""
        d = self.cfg.data
        out = {}
        for side in "AB":
            n = len(batch[side])
            offsets, flips = ctx.rand(n, 2), ctx.rand(n) < 0.5 if d.flip else None
            out[side] = jitter.resize_and_crop(batch[side], d.load_size, d.image_size, offsets, flips)
        return out

    # ---- networks and losses ------------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        m, d = self.cfg.model, self.cfg.data
        self.check_config()
        c, blocks = d.channels or 3, m.n_blocks or (9 if min(height_width(d.image_size)) >= 256 else 6)
        nets: dict[str, nn.Module] = {
            "G_AB": ResnetGenerator(c, c, m.ngf, blocks),
            "G_BA": ResnetGenerator(c, c, m.ngf, blocks),
            "D_A": PatchDiscriminator(c, m.ndf, m.n_layers, "instance"),
            "D_B": PatchDiscriminator(c, m.ndf, m.n_layers, "instance"),
        }
        for net in nets.values():
            net.apply(normal_init)
        # the histories are state, not networks: no update trains them, checkpoints keep them
        nets["pool_A"] = ImagePool(m.pool_size, c, d.image_size)
        nets["pool_B"] = ImagePool(m.pool_size, c, d.image_size)
        return nets

    def phases(self) -> list[Phase]:
        return [
            Phase(
                "cycle",
                (
                    Update(("G_AB", "G_BA"), self.g_loss, freeze=("D_A", "D_B"), optimizer="G"),
                    Update(("D_A", "D_B"), self.d_loss, optimizer="D"),
                ),
            )
        ]

    def gan_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.cfg.loss.gan_mode == "lsgan":
            return F.mse_loss(logits.float(), target.float())
        return F.binary_cross_entropy_with_logits(logits, target)

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        n, loss = ctx.nets, self.cfg.loss
        a, b = batch["A"], batch["B"]
        fake_b, fake_a = n["G_AB"](a), n["G_BA"](b)
        ctx.scratch.update(fake_a=fake_a.detach(), fake_b=fake_b.detach())  # D's update of this step uses them
        terms = {
            "gan_AB": self.gan_loss(n["D_B"](fake_b), True),
            "gan_BA": self.gan_loss(n["D_A"](fake_a), True),
            "cycle_A": loss.lambda_A * F.l1_loss(n["G_BA"](fake_b), a),
            "cycle_B": loss.lambda_B * F.l1_loss(n["G_AB"](fake_a), b),
        }
        if loss.lambda_identity > 0:
            terms["idt_A"] = loss.lambda_identity * loss.lambda_A * F.l1_loss(n["G_BA"](a), a)
            terms["idt_B"] = loss.lambda_identity * loss.lambda_B * F.l1_loss(n["G_AB"](b), b)
        return terms

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        n, terms = ctx.nets, {}
        slots = self.cfg.model.pool_size
        for side in "AB":
            fake = ctx.scratch.pop(f"fake_{side.lower()}")
            ctx.observe_samples(fake, batch[side])  # before the pool: this step's translations
            size = len(fake)
            fake = n[f"pool_{side}"](
                fake, ctx.rand(size), (ctx.rand(size) * slots).floor().clamp(max=max(0, slots - 1))
            )
            D = n[f"D_{side}"]
            real_logits, fake_logits = D(batch[side]), D(fake)
            ctx.log(f"D_{side}/real_logit", real_logits)
            if self.cfg.loss.gan_mode == "vanilla":  # logits: what the training-health alarms read
                ctx.observe_fake(fake_logits)
            terms[f"{side}_real"] = 0.5 * self.gan_loss(real_logits, True)
            terms[f"{side}_fake"] = 0.5 * self.gan_loss(fake_logits, False)
        return terms

    # ---- inference ----------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, **conditions) -> dict[str, torch.Tensor]:
        raise NotImplementedError("CycleGAN translates inputs; use 'gantk translate RUN input.png -o out.png'")

    def preview_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The first ``n`` held-out A images (training A images when there are none): the sample grids
        follow the same inputs through training, translated by G_AB."""
        heldout = self.heldout_images()
        if heldout:
            return {"input": from_uint8(heldout["A"][:n])}
        root, d = self._root(), self.cfg.data
        if root is None:  # a paired set with nothing held out: its first pairs' A sides
            return {"input": from_uint8(load_rows(d, "train", slice(0, n)).tensors["A"])}
        first = image_folder(root / "trainA", d.image_size, d.channels)
        return {"input": from_uint8(torch.stack([first[i]["image"] for i in range(min(n, len(first)))]))}

    def export_inputs(self) -> dict[str, torch.Tensor]:
        return {"input": example_images(2, self.cfg.data.channels or 3, self.cfg.data.image_size)}

    def generate(self, G: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return G(inputs["input"])

    def translate(self, G: nn.Module, image: torch.Tensor, train_mode: bool | None = None) -> torch.Tensor:
        """Any size: padded (reflect) to a multiple of 4 and cropped back; over ``eval.tile`` pixels a side, in
        overlapping tiles (memory bounded by the tile). Either direction: ``G`` is the one that was loaded."""
        if train_mode:
            raise ConfigError("--train-mode is pix2pix's test-time dropout; CycleGAN's generators have none.")
        tile = self.cfg.eval.tile
        if max(image.shape[-2:]) <= tile:
            return self._translate_whole(G, image)
        return tiled_apply(lambda x: self._translate_whole(G, x).float(), image, 1, tile, tile // 8)

    @staticmethod
    def _translate_whole(G: nn.Module, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        ph, pw = -h % 4, -w % 4
        mode = "reflect" if min(h, w) > 4 else "replicate"
        x = F.pad(image, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode) if ph or pw else image
        with torch.no_grad():
            y = G(x.to(next(G.parameters()).device))
        return y[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]

    # ---- evaluation -------------------------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        each = ("l1", "psnr", "ssim") + (("fid", "kid") if self.cfg.eval.fid_weights else ())
        return tuple(f"{d}/{m}" for d in DIRECTIONS for m in each)

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """Each direction that ``nets`` holds, on the held-out images: L1/PSNR/SSIM against the partners where
        they are pairs, FID/KID against the target domain with ``eval.fid_weights``; and the cycle grids."""
        held = ctx.cached("cyclegan: held-out images", self.heldout_images)  # read once per run
        if not held:
            warnings.warn("CycleGAN has no held-out images (data.holdout=0, no testA/testB): no metrics", stacklevel=2)
            return {}
        metrics, outputs = {}, {}
        for direction, (src, dst) in {"AtoB": ("A", "B"), "BtoA": ("B", "A")}.items():
            if DIRECTIONS[direction] not in nets:
                continue
            inputs, targets = from_uint8(held[src]), from_uint8(held[dst])
            out = translate_all(nets[DIRECTIONS[direction]], inputs, ctx.device)
            outputs[direction] = out
            card = ctx.protocol.setdefault(direction, {"reference": f"held-out {dst} images"})
            if bool(held["paired"]):
                metrics.update({f"{direction}/{k}": v for k, v in pair_scores(out, targets, card).items()})
            scores = distribution_scores(out, targets, self.cfg.eval.fid_weights, ctx.device, card)
            metrics.update({f"{direction}/{k}": v for k, v in scores.items()})
        if len(outputs) == 2:
            self._cycle_grid(nets, held, outputs, ctx)
        return metrics

    def _cycle_grid(self, nets, held, outputs, ctx: EvalContext, rows: int = 4) -> None:
        """``cycles_XXXXXXXX.png``: each row a -> G_AB(a) -> G_BA(G_AB(a)) | b -> G_BA(b) -> G_AB(G_BA(b))."""
        a, b = from_uint8(held["A"][:rows]), from_uint8(held["B"][:rows])
        fake_b, fake_a = outputs["AtoB"][:rows], outputs["BtoA"][:rows]
        back_a, back_b = (
            translate_all(nets["G_BA"], fake_b, ctx.device),
            translate_all(nets["G_AB"], fake_a, ctx.device),
        )
        k = min(len(a), len(b))
        cells = torch.stack([a[:k], fake_b[:k], back_a[:k], b[:k], fake_a[:k], back_b[:k]], 1).flatten(0, 1)
        save_grid(cells, ctx.out_dir / f"cycles_{ctx.step:08d}.png", nrow=6)
