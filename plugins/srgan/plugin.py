"""SRGAN (Ledig et al. 2017): "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR. 4x super-resolution by default.

One run, two phases, both driven by the shared engine:

1. ``srresnet`` (``phases.srresnet`` steps): G alone on pixel MSE (``loss.pixel``). This is the paper's
   SRResNet, the PSNR-oriented model; ``checkpoints/best`` keeps its best Set5 PSNR (Y channel).
2. ``srgan`` (the remaining steps to ``train.max_steps``): G, initialised by phase 1, on
   content loss + 1e-3 adversarial loss against the VGG-style D. The content loss is VGG19 phi_{5,4}
   (``loss.vgg_weights``: a file or ``torchvision``); without weights it falls back to pixel MSE with a
   warning (the paper's SRGAN-MSE), never silently.

Data: HR tiles of the training folders (``data.train_sets`` under ``data.name``) held in memory as uint8.
Each batch takes a random ``data.patch`` crop of each tile with a random flip / 90-degree rotation, on the
device, and makes its LR input with antialiased bicubic (Keys a = -0.5, :func:`gantk.data.sr.bicubic_downscale`).
Evaluation: PSNR / SSIM on Set5 and Set14 with their given LR images, on Y with a 4-pixel border crop
(the paper) and on RGB with border = scale (BasicSR), bicubic reported alongside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, DataConfig, EvalContext, GanPlugin, Phase, StepContext, Update
from gantk.config import Count, NonNegative, PathStr, PositiveInt, Range, Side, Width
from gantk.data import TensorDataset, jitter, locate
from gantk.data.sr import SRPair, bicubic_downscale, hr_patches, load_sr_benchmark
from gantk.errors import ConfigError, DataError
from gantk.io.images import from_uint8, save_grid
from gantk.losses import VGGContentLoss, load_vgg19_features
from gantk.metrics import sr as srm
from gantk.metrics.lpips import lpips, lpips_model
from gantk.tiling import Progress, tiled_apply

from .networks import SRDiscriminator, SRResNet

log = logging.getLogger("gantk")


@dataclass
class SRData(DataConfig):
    name: str = "sr"
    train_sets: list[str] = field(default_factory=lambda: ["T91/HR", "BSDS200/HR"])  # under data.name; []: itself
    patch: Side = 96  # HR crop the networks train on (D's input size)
    tile: Side = 128  # HR tiles kept in memory; each batch crops a random patch from each tile
    stride: PositiveInt = 64  # distance between tiles
    augment: bool = True  # random flips and 90-degree rotations


@dataclass
class SRModel:
    scale: Literal[2, 4, 8] = 4
    width: Width = 64  # G's channels
    blocks: Annotated[int, Range(1, 256)] = 16  # G's residual blocks
    d_width: Width = 64  # D's first channels (64 ... 512 in the paper)
    skip: Literal["none", "bicubic"] = "none"  # "bicubic": add the bicubic upscale to G's output (not the paper)


@dataclass
class SRLoss:
    pixel: Literal["mse", "l1"] = "mse"  # phase 1 loss (the paper: MSE)
    content: Literal["vgg", "pixel"] = "vgg"  # phase 2 content loss
    vgg_weights: PathStr = "torchvision"  # a VGG19 file, "torchvision" (its loader), or "" (none: pixel fallback)
    vgg_layer: tuple[Annotated[int, Range(1, 5)], Annotated[int, Range(1, 4)]] = (5, 4)  # phi_{i,j}
    vgg_scale: NonNegative = 1 / 12.75**2  # the paper rescales VGG features by 1/12.75
    adversarial: NonNegative = 1e-3


@dataclass
class SRPhases:
    srresnet: Count = 1_000_000  # steps of phase 1; phase 2 runs from here to train.max_steps


@dataclass
class SREval:
    benchmarks: list[str] = field(default_factory=lambda: ["Set5", "Set14"])  # under data.name, or paths
    tile: Annotated[int, Range(1, 8192)] = 128  # LR tile side for whole-image inference (evaluation, gantk upscale)
    # LPIPS beside PSNR/SSIM (gantk.metrics.lpips): torchvision's ImageNet file of lpips_net's backbone
    # (alexnet-owt-7be5be79.pth / vgg16-397923af.pth), or "torchvision" (its loader); empty: no LPIPS
    lpips_weights: PathStr = ""
    lpips_net: Literal["alex", "vgg"] = "alex"


@dataclass
class SRGANConfig(Config):
    data: SRData = field(default_factory=SRData)
    model: SRModel = field(default_factory=SRModel)
    loss: SRLoss = field(default_factory=SRLoss)
    phases: SRPhases = field(default_factory=SRPhases)
    eval: SREval = field(default_factory=SREval)


class SRGAN(GanPlugin):
    name = "srgan"
    description = "SRGAN (Ledig et al. 2017): SRResNet G, then G + VGG-style D; 4x super-resolution, Set5/Set14 eval."
    config_class = SRGANConfig
    tasks = frozenset({"upscale", "translate"})
    # SR's D judges texture against the HR image's own pixels; translating or recolouring what it sees
    # would reward textures the HR image does not have
    augment_network = ""
    best_mode = "max"

    cfg: SRGANConfig

    def best_metric(self) -> str:
        return "Set5/psnr_y"

    # ---- data ---------------------------------------------------------------------------------------
    def data_root(self) -> Path:
        return locate(self.cfg.data.name, "sr")[0]

    def check_config(self) -> None:
        d = self.cfg.data
        if not d.patch <= d.tile:
            raise ConfigError(f"data.patch ({d.patch}) must be at most data.tile ({d.tile}).")
        if d.patch % self.cfg.model.scale:
            raise ConfigError(f"data.patch ({d.patch}) must be a multiple of model.scale ({self.cfg.model.scale}).")
        if self.cfg.eval.lpips_weights and self.cfg.train.eval_every:  # refused before training, not at its eval
            lpips_model(self.cfg.eval.lpips_weights, self.cfg.eval.lpips_net)

    def build_dataset(self, split: str = "train") -> TensorDataset:
        d = self.cfg.data
        self.check_config()
        root = self.data_root()
        folders = [root / s for s in d.train_sets] or [root]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise DataError(
                f"SR training folder(s) {', '.join(missing)} do not exist (data.train_sets={d.train_sets} under "
                f"data.name={d.name!r}); to train on the images of {root} itself, set data.train_sets=[]."
            )
        dataset = hr_patches(folders, d.tile, d.stride, d.channels or 3, d.limit)
        log.info(
            "SR training data: %d tiles of %dx%d from %s", len(dataset), d.tile, d.tile, ", ".join(map(str, folders))
        )
        return dataset

    def prepare_batch(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        """Random ``patch`` crop per tile, a random flip / 90-degree rotation per patch, then LR by bicubic."""
        d, scale = self.cfg.data, self.cfg.model.scale
        tiles = batch["image"]
        n = len(tiles)
        hr = jitter.crop(tiles, jitter.random_offsets(ctx.rand(n, 2), d.tile - d.patch + 1), d.patch)
        if d.augment:
            hr = jitter.dihedral(hr, ctx.rand(n, 3) < 0.5)
        lr = bicubic_downscale(hr, scale).clamp(-1, 1)
        return {"hr": hr.contiguous(), "lr": lr}

    # ---- networks and losses ------------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        m, c = self.cfg.model, self.cfg.data.channels or 3
        return {
            "G": SRResNet(m.scale, c, m.width, m.blocks, m.skip),
            "D": SRDiscriminator(c, self.cfg.data.patch, m.d_width),
        }

    def phases(self) -> list[Phase]:
        n1, total = self.cfg.phases.srresnet, self.cfg.train.max_steps
        srresnet = Phase("srresnet", (Update("G", self.pixel_loss),), steps=n1 if n1 < total else None)
        if n1 >= total:
            return [srresnet]
        srgan = Phase.alternating(self.d_loss, self.g_loss, name="srgan")
        return [srresnet, Phase(srgan.name, srgan.updates, keep_best=False)]

    def _pixel(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(sr, hr) if self.cfg.loss.pixel == "l1" else F.mse_loss(sr, hr)

    def pixel_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        return {self.cfg.loss.pixel: self._pixel(ctx.nets["G"](batch["lr"]), batch["hr"])}

    def build_aux(self) -> dict[str, nn.Module]:
        """The VGG content loss, as a frozen module the engine places (none: pixel MSE, SRGAN-MSE), built
        only when the adversarial phase that uses it will run."""
        if self.cfg.loss.content != "vgg" or self.cfg.phases.srresnet >= self.cfg.train.max_steps:
            log.info("SRGAN content loss: pixel MSE (SRGAN-MSE)")
            return {}
        trunk = load_vgg19_features(self.cfg.loss.vgg_weights, tuple(self.cfg.loss.vgg_layer))
        if trunk is None:
            log.info("SRGAN content loss: pixel MSE (SRGAN-MSE)")
            return {}
        log.info("SRGAN content loss: VGG19 phi%d,%d", *self.cfg.loss.vgg_layer)
        return {"content": VGGContentLoss(trunk, self.cfg.loss.vgg_scale)}

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        D = ctx.nets["D"]
        fake = ctx.nets["G"](batch["lr"])
        ctx.scratch["fake"] = fake
        real_logits, fake_logits = D(batch["hr"]), D(fake.detach())
        ctx.observe_real(real_logits)  # and the fakes': what the training-health alarms read
        ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, batch["hr"])
        return {
            "real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        fake, hr = ctx.scratch.pop("fake"), batch["hr"]
        logits = ctx.nets["D"](fake)
        content = ctx.aux.get("content")
        terms = {"content": content(fake, hr) if content is not None else F.mse_loss(fake, hr)}
        terms["adversarial"] = self.cfg.loss.adversarial * F.binary_cross_entropy_with_logits(
            logits, torch.ones_like(logits)
        )
        return terms

    # ---- inference ----------------------------------------------------------------------------------
    def upscale(self, G: nn.Module, lr: torch.Tensor, progress: Progress | None = None) -> torch.Tensor:
        """Any size LR image (1, C, h, w) in [-1, 1] -> (1, C, h*scale, w*scale) on the CPU, tiled with an
        overlap of G's receptive radius, so the result equals whole-image inference."""
        device = next(G.parameters()).device
        radius = G.receptive_radius() if isinstance(G, SRResNet) else 32
        with torch.no_grad():
            return tiled_apply(
                lambda x: G(x.to(device)).float(), lr, self.cfg.model.scale, self.cfg.eval.tile, radius, progress
            )

    def translate(self, G: nn.Module, image: torch.Tensor, train_mode: bool | None = None) -> torch.Tensor:
        return self.upscale(G, image)

    def preview_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """LR centre crops of the first benchmark's images (repeated to ``n``): sample grids show what G
        makes of the same inputs through training."""
        if not self.cfg.eval.benchmarks:
            raise NotImplementedError("no benchmark images to sample from (eval.benchmarks is empty)")
        side = self.cfg.data.patch // self.cfg.model.scale
        crops = []
        for pair in self._benchmark(self.cfg.eval.benchmarks[0]):  # the first set alone
            h, w = pair.lr.shape[-2:]
            if h >= side and w >= side:
                top, left = (h - side) // 2, (w - side) // 2
                crops.append(pair.lr[:, top : top + side, left : left + side])
        if not crops:
            raise NotImplementedError("no benchmark image is as large as one LR patch")
        crops = [crops[i % len(crops)] for i in range(n)]
        return {"lr": from_uint8(torch.stack(crops))}

    def export_inputs(self) -> dict[str, torch.Tensor]:
        """Two LR images of 24x24 (the exported model takes any height and width)."""
        c = self.cfg.data.channels or 3
        return {"lr": torch.rand(2, c, 24, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1}

    def generate(self, G: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return G(inputs["lr"])

    # ---- evaluation ---------------------------------------------------------------------------------
    def benchmarks(self) -> dict[str, list[SRPair]]:
        """The evaluation sets, read from disk: ``eval.benchmarks`` entries are paths or folders under data.name."""
        return {Path(entry).name: self._benchmark(entry) for entry in self.cfg.eval.benchmarks}

    def _benchmark(self, entry: str) -> list[SRPair]:
        """One ``eval.benchmarks`` entry: a folder, or a name under data.name."""
        path = Path(entry).expanduser()
        if not path.is_dir():
            path = self.data_root() / entry
        return load_sr_benchmark(path, self.cfg.model.scale, self.cfg.data.channels or 3)

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """``<set>/psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb`` for G and ``<set>/bicubic/...`` for bicubic."""
        scale, G, cfg = self.cfg.model.scale, nets["G"], self.cfg.eval
        judge = lpips_model(cfg.lpips_weights, cfg.lpips_net) if cfg.lpips_weights else None
        sets = ctx.cached("srgan: benchmarks", self.benchmarks)  # read and scored with bicubic once per run
        bicubic = ctx.cached(
            "srgan: bicubic scores",
            lambda: {
                name: _scores([_bicubic(p.lr, scale) for p in pairs], pairs, scale, judge)
                for name, pairs in sets.items()
            },
        )
        ctx.protocol.update(srm.protocol(scale))
        if judge is not None:
            ctx.protocol.update(lpips=f"{cfg.lpips_net}, v0.1 linear layers, RGB in [-1, 1], no border crop")
        metrics: dict[str, float] = {}
        crops = []
        for name, pairs in sets.items():
            ctx.protocol[name] = {"images": len(pairs), "sha256": srm.pairs_sha256([(p.hr, p.lr) for p in pairs])}
            outputs = [self.upscale(G, from_uint8(p.lr)[None])[0].mul(0.5).add(0.5) for p in pairs]
            metrics.update({f"{name}/{k}": v for k, v in _scores(outputs, pairs, scale, judge).items()})
            metrics.update({f"{name}/bicubic/{k}": v for k, v in bicubic[name].items()})
            crops += _centre_crops(_bicubic(pairs[0].lr, scale), outputs[0], pairs[0].hr)
        if crops:
            ctx.out_dir.mkdir(parents=True, exist_ok=True)
            save_grid(torch.stack(crops) * 2 - 1, ctx.out_dir / f"step_{ctx.step:08d}.png", nrow=3)
        return metrics


def _bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The usual baseline: bicubic upscaling (Keys a = -0.5 in PyTorch's form; MATLAB's uses a = -0.5 too)."""
    x = lr.float().div(255)[None]
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _scores(outputs: list[torch.Tensor], pairs: list[SRPair], scale: int, judge: nn.Module | None) -> dict[str, float]:
    """Mean PSNR / SSIM over a set, on Y (border 4, the SRGAN paper) and on RGB (border = scale, BasicSR),
    and LPIPS (whole RGB image) when ``judge`` is the LPIPS network."""
    rows: dict[str, list[float]] = {"psnr_y": [], "ssim_y": [], "psnr_rgb": [], "ssim_rgb": []}
    if judge is not None:
        rows["lpips"] = []
    for out, pair in zip(outputs, pairs, strict=True):
        sr, hr = out[None].double(), pair.hr[None].double() / 255
        for tag, y, border in (("y", True, 4), ("rgb", False, scale)):
            rows[f"psnr_{tag}"].append(float(srm.psnr(sr, hr, border, y)))
            rows[f"ssim_{tag}"].append(float(srm.ssim(sr, hr, border, y)))
        if judge is not None:  # grey images are seen as RGB, as the FID network sees them
            rows["lpips"].append(float(lpips(judge, sr.expand(-1, 3, -1, -1), hr.expand(-1, 3, -1, -1))[0]))
    return {k: (srm.mean_db(torch.tensor(v)) if k.startswith("psnr") else sum(v) / len(v)) for k, v in rows.items()}


def _centre_crops(bicubic: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor, side: int = 128) -> list[torch.Tensor]:
    """Bicubic | SR | HR centre crops in [0, 1], for the evaluation grid."""
    hr = hr.float() / 255
    h, w = hr.shape[-2:]
    side = min(side, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return [x[:, top : top + side, left : left + side].clamp(0, 1) for x in (bicubic, sr, hr)]
