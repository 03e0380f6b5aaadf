"""Sampling from trained generators: image grids, one file per sample, latent walks.

:func:`load_generator` rebuilds a generator from a checkpoint folder alone: ``config.json`` names the
plugin and holds the resolved config, and the weights are read from safetensors. Nothing from training
has to be repeated at sampling time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.utils import make_grid, save_image

from gantk.errors import CheckpointError, GantkError


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return (images.float() * 0.5 + 0.5).clamp_(0, 1)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] as one PNG grid (square-ish unless ``nrow`` is given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    save_image(make_grid(to_unit(images.cpu()), nrow=nrow, padding=2), path)
    return path


def save_image_file(image: torch.Tensor, path: str | Path) -> Path:
    """Save one image (C, H, W) in [-1, 1] as a file; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(to_unit(image.cpu()), path)
    return path


def save_each(images: torch.Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """Save images in [-1, 1] as one PNG each in ``folder``."""
    return [save_image_file(img, Path(folder) / f"{prefix}_{i:05d}.png") for i, img in enumerate(images)]


def load_plugin_from_meta(meta: dict[str, Any], where: Path):
    """The plugin instance a checkpoint was trained with, configured from its ``config.json``."""
    from gantk import registry
    from gantk.config import build

    info = meta.get("plugin") or {}
    name, source, location = info.get("name", ""), info.get("source", ""), info.get("location", "")
    try:
        if source == "path" and location and Path(location).is_dir():
            cls = registry.find(location).load()
        else:
            cls = registry.find(name).load()
    except GantkError as exc:
        raise CheckpointError(
            f"checkpoint {where} was trained with plugin '{name}' ({source} {location}), which cannot be "
            f"loaded here: {exc}"
        ) from None
    cfg = build(cls.config_class, meta["config"])
    return cls(cfg)


def load_generator(path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True, which: str = "last"):
    """Load ``(plugin, generator)`` from a run or checkpoint folder; prefers EMA weights when present."""
    from gantk.engine import checkpoint as ckpt

    folder = ckpt.find_checkpoint(Path(path), which)
    meta = ckpt.read_meta(folder)
    plugin = load_plugin_from_meta(meta, folder)
    gen_name = meta.get("generator", plugin.generator)
    nets = plugin.build_networks()
    G: nn.Module = nets[gen_name]
    weights = folder / f"{gen_name}_ema.safetensors"
    if not (use_ema and weights.exists()):
        weights = folder / f"{gen_name}.safetensors"
    ckpt.load_weights(G, weights)
    return plugin, G.to(device).eval()


@torch.no_grad()
def sample(
    plugin, G: nn.Module, n: int, seed: int, device: str | torch.device = "cpu", **conditions: Any
) -> torch.Tensor:
    """``n`` images in [-1, 1]; the same seed gives the same images."""
    try:
        inputs = plugin.sample_inputs(n, torch.Generator().manual_seed(seed), **conditions)
    except NotImplementedError as exc:
        raise GantkError(f"{exc}; this plugin's generator needs an input (see its README).") from None
    return plugin.generate(G, {k: v.to(device) for k, v in inputs.items()}).float().cpu()


@torch.no_grad()
def interpolate(
    plugin, G: nn.Module, walks: int, steps: int, seed: int, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """``walks`` latent walks of ``steps`` images each, between random endpoints; rows are walks."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, steps)
    rows = []
    for _ in range(walks):
        a = plugin.sample_inputs(1, g)
        b = plugin.sample_inputs(1, g)
        inputs = plugin.interpolate(a, b, t)
        rows.append(plugin.generate(G, {k: v.to(device) for k, v in inputs.items()}).float().cpu())
    return torch.cat(rows)
