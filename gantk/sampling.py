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

from gantk.errors import CheckpointError, ConfigError, GantkError


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return (images.float() * 0.5 + 0.5).clamp_(0, 1)


def _tile(images: torch.Tensor, nrow: int | None, pad_value: float = 0.0) -> torch.Tensor:
    """Images in [-1, 1] -> one (3, H, W) grid in [0, 1], square-ish unless ``nrow`` is given."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    return make_grid(to_unit(images.cpu()), nrow=nrow, padding=2, pad_value=pad_value)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] as one PNG grid (square-ish unless ``nrow`` is given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(_tile(images, nrow), path)
    return path


def grid_image(images: torch.Tensor, nrow: int | None = None, min_width: int = 0):
    """Images in [-1, 1] as one PIL grid, enlarged by a whole factor (nearest) to at least ``min_width``.

    Whole-factor nearest enlargement keeps every generated pixel a crisp block, so small images (MNIST's
    32x32) are shown as they are rather than blurred.
    """
    from PIL import Image

    grid = _tile(images, nrow, pad_value=1.0)  # make_grid repeats a grey image into 3 equal planes
    pixels = grid.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[..., 0] if images.shape[1] == 1 else pixels)
    factor = max(1, math.ceil(min_width / image.width)) if min_width else 1
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    return image


def save_image_file(image: torch.Tensor, path: str | Path) -> Path:
    """Save one image (C, H, W) in [-1, 1] as a file; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(to_unit(image.cpu()), path)
    return path


def save_each(images: torch.Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """Save images in [-1, 1] as one PNG each in ``folder``."""
    return [save_image_file(img, Path(folder) / f"{prefix}_{i:05d}.png") for i, img in enumerate(images)]


def load_plugin_from_meta(meta: dict[str, Any], where: Path, plugin: str | None = None):
    """The plugin instance a checkpoint was trained with, configured from its ``config.json``.

    A built-in or installed plugin is found by its registered name. A checkpoint can also have been
    trained with a plugin folder; its ``config.json`` records the folder, but gantk never imports code
    from a path that a file names: the user names the folder (``plugin``, ``--plugin DIR``), as they did
    to train. ``plugin`` also overrides the recorded plugin (a renamed or moved one).
    """
    from gantk import registry
    from gantk.config import build

    info = meta.get("plugin") or {}
    name, source, location = info.get("name", ""), info.get("source", ""), info.get("location", "")
    if plugin is None and source == "path":
        raise CheckpointError(
            f"checkpoint {where} was trained with the plugin folder {location or name!r}, which is neither built in "
            "nor installed. gantk does not import code from a path that a checkpoint names; if you trust that "
            f"folder, name it yourself: --plugin {location or 'DIR'}."
        )
    try:
        cls = registry.find(plugin).load() if plugin is not None else registry.find(name, allow_path=False).load()
    except GantkError as exc:
        raise CheckpointError(
            f"checkpoint {where} was trained with plugin '{name}' ({source}), which cannot be loaded here: {exc}"
        ) from None
    try:
        cfg = build(cls.config_class, meta["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {where}: its config.json does not fit plugin '{name}': {exc}") from None
    return cls(cfg)


def load_generator(
    path: str | Path,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    which: str = "last",
    plugin: str | None = None,
):
    """Load ``(plugin, generator)`` from a run or checkpoint folder; prefers EMA weights when present.

    ``plugin`` names the plugin folder of a checkpoint trained with one (see :func:`load_plugin_from_meta`).
    """
    from gantk import deploy
    from gantk.engine import checkpoint as ckpt
    from gantk.engine.preflight import check_fits

    if deploy.is_onnx_export(Path(path)):  # gantk export --format onnx: ONNX Runtime behind the usual call
        meta = ckpt.read_meta(Path(path))
        return load_plugin_from_meta(meta, Path(path), plugin), deploy.OnnxGenerator(Path(path))
    folder = ckpt.find_checkpoint(Path(path), which)
    meta = ckpt.read_meta(folder)
    instance = load_plugin_from_meta(meta, folder, plugin)
    gen_name = meta.get("generator", instance.generator)
    try:
        check_fits(instance, torch.device(device), only=gen_name)  # a config.json asking for absurd widths
    except GantkError as exc:
        raise CheckpointError(f"checkpoint {folder}: {exc}") from None
    nets = instance.build_networks()
    if gen_name not in nets:
        raise CheckpointError(
            f"{folder / ckpt.CONFIG} names generator '{gen_name}', but plugin '{instance.cfg.plugin}' builds only "
            f"{', '.join(sorted(nets))}."
        )
    G: nn.Module = nets[gen_name]
    ckpt.load_weights(G, ckpt.generator_weights(folder, gen_name, use_ema))
    return instance, G.to(device).eval()


@torch.no_grad()
def sample(
    plugin, G: nn.Module, n: int, seed: int, device: str | torch.device = "cpu", **conditions: Any
) -> torch.Tensor:
    """``n`` images in [-1, 1]; the same seed gives the same images."""
    inputs = sample_inputs_for(plugin, n, torch.Generator().manual_seed(seed), **conditions)
    return _generate(plugin, G, inputs, device)


@torch.no_grad()
def sample_per_class(
    plugin, G: nn.Module, per_class: int, seed: int, device: str | torch.device = "cpu", same_z: bool = False
) -> torch.Tensor:
    """``per_class`` images of every class of a class-conditional plugin; row k is class k.

    With ``same_z`` column j uses one latent code in every row, so only the label changes down a
    column: what stays the same (stroke width, slant, ...) is what z encodes.
    """
    classes = plugin.class_names()
    if not classes:
        raise GantkError(f"the {plugin.name} plugin is not class-conditional; it has no classes to sample.")
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k in range(len(classes)):
        if same_z:
            g.manual_seed(seed)
        rows.append(sample_inputs_for(plugin, per_class, g, label=k))
    inputs = {key: torch.cat([r[key] for r in rows]) for key in rows[0]}
    return _generate(plugin, G, inputs, device)


def sample_inputs_for(plugin, n: int, generator: torch.Generator, **conditions: Any) -> dict[str, torch.Tensor]:
    """``plugin.sample_inputs`` with a clear error for a generator that needs an input image."""
    try:
        return plugin.sample_inputs(n, generator, **conditions)
    except NotImplementedError as exc:
        raise GantkError(f"{exc}; this plugin's generator needs an input (see its README).") from None


def _generate(plugin, G: nn.Module, inputs: dict[str, torch.Tensor], device, chunk: int = 256) -> torch.Tensor:
    n = len(next(iter(inputs.values())))
    out = [
        plugin.generate(G, {k: v[i : i + chunk].to(device) for k, v in inputs.items()}).float().cpu()
        for i in range(0, n, chunk)
    ]
    return torch.cat(out)


@torch.no_grad()
def interpolate(
    plugin, G: nn.Module, walks: int, steps: int, seed: int, device: str | torch.device = "cpu", **conditions: Any
) -> torch.Tensor:
    """``walks`` latent walks of ``steps`` images each, between random endpoints; rows are walks.

    A class-conditional model walks within one class: ``label`` when given, else class k for walk k.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, steps)
    classes = plugin.class_names()
    rows = []
    for w in range(walks):
        cond = dict(conditions)
        if classes and cond.get("label") is None:
            cond["label"] = w % len(classes)
        a = sample_inputs_for(plugin, 1, g, **cond)
        b = sample_inputs_for(plugin, 1, g, **cond)
        rows.append(_generate(plugin, G, plugin.interpolate(a, b, t), device))
    return torch.cat(rows)


@torch.no_grad()
def walk_between_seeds(
    plugin, G: nn.Module, seed_a: int, seed_b: int, steps: int, device: str | torch.device = "cpu", **conditions: Any
) -> torch.Tensor:
    """``steps`` images on the latent path from seed ``seed_a``'s input to seed ``seed_b``'s.

    The endpoints are exactly what :func:`sample` draws for ``n=1`` with those seeds, so a user can pick
    two samples they like and walk between them.
    """
    a = sample_inputs_for(plugin, 1, torch.Generator().manual_seed(seed_a), **conditions)
    b = sample_inputs_for(plugin, 1, torch.Generator().manual_seed(seed_b), **conditions)
    return _generate(plugin, G, plugin.interpolate(a, b, torch.linspace(0, 1, steps)), device)
