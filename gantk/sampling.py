"""Sampling from trained generators: samples per seed, per class, latent walks, style-mixing grids.

The generator comes from :func:`gantk.io.generators.load_generator` (a checkpoint or export folder);
images come back as tensors in [-1, 1], which :mod:`gantk.io.images` writes as grids or files.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gantk.errors import GantkError
from gantk.plugin import generate_in_chunks


@torch.no_grad()
def sample(
    plugin, G: nn.Module, n: int, seed: int, device: str | torch.device = "cpu", **conditions: Any
) -> torch.Tensor:
    """``n`` images in [-1, 1]; the same seed gives the same images."""
    inputs = sample_inputs_for(plugin, n, torch.Generator().manual_seed(seed), **conditions)
    return generate_in_chunks(plugin, G, inputs, device)


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
    return generate_in_chunks(plugin, G, inputs, device)


def sample_inputs_for(plugin, n: int, generator: torch.Generator, **conditions: Any) -> dict[str, torch.Tensor]:
    """``plugin.sample_inputs`` with a clear error for a generator that needs an input image."""
    try:
        return plugin.sample_inputs(n, generator, **conditions)
    except NotImplementedError as exc:
        raise GantkError(f"{exc}; this plugin's generator needs an input (see its README).") from None


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
        rows.append(generate_in_chunks(plugin, G, plugin.interpolate(a, b, t), device))
    return torch.cat(rows)


@torch.no_grad()
def traverse(
    plugin, G: nn.Module, code: str, steps: int, seed: int, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, int]:
    """The grid that varies latent code ``code`` along each row (InfoGAN's figure 2); ``(images, row length)``."""
    codes = plugin.latent_codes()
    if not codes:
        raise GantkError(f"--traverse {code}: the {plugin.name} plugin has no named latent codes to vary.")
    inputs, nrow = plugin.traversal_inputs(code, steps, torch.Generator().manual_seed(seed))
    return generate_in_chunks(plugin, G, inputs, device), nrow


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
    return generate_in_chunks(plugin, G, plugin.interpolate(a, b, torch.linspace(0, 1, steps)), device)


@torch.no_grad()
def style_mix(
    plugin, G: nn.Module, rows: int, cols: int, seed: int, device: str | torch.device = "cpu", **conditions: Any
) -> tuple[torch.Tensor, int]:
    """The style-mixing figure of Karras et al. (2019, fig. 3); ``(images, row length)``.

    The top row holds ``cols`` column sources, the left column ``rows`` row sources, and cell (r, c) the
    image with row r's coarse styles and column c's fine ones; the corner is left white.
    """
    if "style_mix" not in plugin.sample_options:
        raise GantkError(
            f"--style-mix: the {plugin.name} plugin has no per-layer styles to mix (style-based models such as "
            "stylegan2 have); drop --style-mix."
        )
    inputs = plugin.style_mix_inputs(rows, cols, torch.Generator().manual_seed(seed), **conditions)
    col_sources, row_sources, mixes = generate_in_chunks(plugin, G, inputs, device).split([cols, rows, rows * cols])
    cells = [torch.ones_like(col_sources[:1]), col_sources]
    for r in range(rows):
        cells += [row_sources[r : r + 1], mixes[r * cols : (r + 1) * cols]]
    return torch.cat(cells), cols + 1
