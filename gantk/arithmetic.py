"""Vector arithmetic on z (Radford et al. 2015, section 6.3 and figure 7), and numbered sample grids.

The paper's recipe: single samples make the arithmetic unstable, so each concept ("smiling woman") is
the *average* z of three exemplars; the groups are added and subtracted, and the result is rendered
together with variations whose z is jittered by uniform noise of +-0.25, to show that the result is a
region of z rather than one lucky point.

Exemplars are picked by index from a numbered grid (``gantk sample RUN -n 64 --seed 3 --numbered``):
:func:`exemplar_inputs` draws exactly the inputs of that grid (``sample_inputs(n, seed)``), so index
``i`` here is cell ``i`` there. Any plugin whose ``sample_inputs`` returns a float ``z`` works; other
inputs (a CGAN's label, fixed with ``--label``) are taken from the first exemplar.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gantk.errors import GantkError
from gantk.io.images import pil_image
from gantk.plugin import generate_in_chunks

JITTER = 0.25  # the paper's uniform noise scale for the variations of the result
MAX_GROUPS = 8  # the paper's figures use 3 groups of 3; the figure has a row per group
MAX_GROUP_SIZE = 32  # exemplars in one row of the figure


@dataclass(frozen=True)
class Group:
    """One concept: the indices of its exemplars and whether it is added (+1) or subtracted (-1)."""

    sign: int
    indices: tuple[int, ...]


_TOKEN = re.compile(r"\s*([+-])?\s*([^+-]+)")


def parse_expression(expr: str, count: int) -> list[Group]:
    """``"12,17,40 - 5,9,33 + 22,31,50"`` -> three groups; indices must lie in [0, count)."""
    text = expr.strip()
    if not text:
        raise GantkError("--expr is empty; write groups of grid indices joined by + and -, e.g. '12,17,40 - 5,9,33'.")
    groups, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise GantkError(f"--expr '{expr}': expected a group of indices after '{text[pos:].strip()}'.")
        if groups and match.group(1) is None:
            raise GantkError(f"--expr '{expr}': expected + or - before '{text[pos:].strip()}'.")
        sign = -1 if match.group(1) == "-" else 1
        try:
            indices = tuple(int(part) for part in match.group(2).split(","))
        except ValueError:
            raise GantkError(
                f"--expr '{expr}': '{match.group(2).strip()}' is not a list of grid indices (whole numbers "
                "separated by commas)."
            ) from None
        bad = [i for i in indices if not 0 <= i < count]
        if bad:
            raise GantkError(
                f"--expr '{expr}': index {bad[0]} is outside the grid of {count} samples (0 to {count - 1}); "
                "use the -n and --seed of the numbered grid the indices come from."
            )
        if len(indices) > MAX_GROUP_SIZE:
            raise GantkError(
                f"--expr: a group of {len(indices)} indices; at most {MAX_GROUP_SIZE} per group (each is a cell "
                "of the figure's row; the paper averages 3)."
            )
        groups.append(Group(sign, indices))
        if len(groups) > MAX_GROUPS:
            raise GantkError(f"--expr: more than {MAX_GROUPS} groups (each is a row of the figure; the paper uses 3).")
        pos = match.end()
    return groups


def latent_key(inputs: dict[str, Tensor], plugin_name: str) -> str:
    """The noise input that arithmetic moves: ``z``, a float tensor."""
    z = inputs.get("z")
    if z is None or not z.is_floating_point():
        raise GantkError(
            f"the {plugin_name} plugin's sample_inputs has no float 'z' (it has {sorted(inputs)}); vector "
            "arithmetic needs a noise vector to average."
        )
    return "z"


@dataclass
class ArithmeticResult:
    groups: list[Group]
    exemplars: list[Tensor]  # per group: its exemplar images, in [-1, 1]
    averages: Tensor  # one image per group: G(average z of the group)
    results: Tensor  # the result first, then its jittered variations
    z: Tensor  # the result's z


def exemplar_inputs(plugin, n: int, seed: int, **conditions: Any) -> dict[str, Tensor]:
    """The inputs of the numbered grid ``gantk sample -n N --seed S`` draws (CPU, seeded)."""
    return plugin.sample_inputs(n, torch.Generator().manual_seed(seed), **conditions)


@torch.no_grad()
def arithmetic(
    plugin,
    G: nn.Module,
    expr: str,
    seed: int,
    n: int = 64,
    device: str | torch.device = "cpu",
    variations: int = 9,
    jitter: float = JITTER,
    **conditions: Any,
) -> ArithmeticResult:
    """Average each group's z, combine the averages with their signs, render the result and variations."""
    inputs = exemplar_inputs(plugin, n, seed, **conditions)
    key = latent_key(inputs, plugin.name)
    groups = parse_expression(expr, n)
    z = inputs[key]
    means = torch.stack([z[list(g.indices)].mean(0) for g in groups])
    signs = torch.tensor([float(g.sign) for g in groups]).view(-1, *[1] * (z.dim() - 1))
    result = (signs * means).sum(0)
    noise = torch.rand(variations - 1, *result.shape, generator=torch.Generator().manual_seed(seed + 1))
    zs = torch.cat([result[None], result[None] + (noise * 2 - 1) * jitter])

    def render(latents: Tensor) -> Tensor:
        rest = {k: v[:1].expand(len(latents), *v.shape[1:]) for k, v in inputs.items() if k != key}
        return generate_in_chunks(plugin, G, {key: latents, **rest}, device)

    exemplars = [render(z[list(g.indices)]) for g in groups]
    return ArithmeticResult(groups, exemplars, render(means), render(zs), result)


GRID_PAD = 2  # pixels between the cells of a numbered grid


def enlargement(width: int, min_side: int) -> int:
    """The whole factor that enlarges a cell ``width`` pixels wide to at least ``min_side``."""
    return max(1, -(-min_side // width))


def _cells(images: Tensor, side: int) -> list:
    """Images in [-1, 1] as PIL RGB cells enlarged (nearest, by a whole factor) to at least ``side``."""
    from PIL import Image

    out = []
    for image in images:
        cell = pil_image(image).convert("RGB")
        factor = enlargement(cell.width, side)
        out.append(cell.resize((cell.width * factor, cell.height * factor), Image.Resampling.NEAREST))
    return out


def grid_columns(n: int) -> int:
    """Cells per row of a numbered grid of ``n``: square-ish."""
    return max(1, round(n**0.5))


def cell_at(x: float, y: float, n: int, cell_width: int, cell_height: int) -> int | None:
    """The index of the numbered-grid cell under pixel (x, y), or None on the padding or outside."""
    nrow = grid_columns(n)
    col, dx = divmod(int(x) - GRID_PAD, cell_width + GRID_PAD)
    row, dy = divmod(int(y) - GRID_PAD, cell_height + GRID_PAD)
    if min(col, row) < 0 or col >= nrow or dx >= cell_width or dy >= cell_height:
        return None
    index = row * nrow + col
    return index if index < n else None


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def numbered_grid(images: Tensor, min_side: int = 64):
    """A grid whose cells carry their index (top-left, white on black), for picking exemplars; cells are
    enlarged to at least ``min_side`` pixels and laid out :func:`grid_columns` to a row."""
    from PIL import Image, ImageDraw

    cells = _cells(images, min_side)
    w, h, pad, nrow = cells[0].width, cells[0].height, GRID_PAD, grid_columns(len(images))
    rows = -(-len(cells) // nrow)
    canvas = Image.new("RGB", (nrow * (w + pad) + pad, rows * (h + pad) + pad), "white")
    draw, font = ImageDraw.Draw(canvas), _font(max(10, h // 6))
    for i, cell in enumerate(cells):
        x, y = pad + (i % nrow) * (w + pad), pad + (i // nrow) * (h + pad)
        canvas.paste(cell, (x, y))
        box = draw.textbbox((x + 2, y + 1), str(i), font=font)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill="black")
        draw.text((x + 2, y + 1), str(i), fill="white", font=font)
    return canvas


def figure(result: ArithmeticResult, min_side: int = 64):
    """The paper's figure 7 layout: one row per group (sign, exemplars, then their average, framed),
    '=' and the result with its variations in a square block on the right (the result top-left)."""
    from PIL import Image, ImageDraw

    widest = max(len(g.indices) for g in result.groups)
    exemplar_cells = [_cells(images, min_side) for images in result.exemplars]
    average_cells = _cells(result.averages, min_side)
    result_cells = _cells(result.results, min_side)
    w, h, pad = average_cells[0].width, average_cells[0].height, 4
    sign_w = w // 2
    cols = max(1, round(len(result_cells) ** 0.5))
    block_rows = -(-len(result_cells) // cols)
    left_w = sign_w + widest * (w + pad) + pad + w + 2 * pad
    width = left_w + sign_w + cols * (w + pad) + pad
    height = max(len(result.groups), block_rows) * (h + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(canvas), _font(max(12, h // 3))
    for r, (group, row) in enumerate(zip(result.groups, exemplar_cells, strict=True)):
        y = pad + r * (h + pad)
        draw.text((sign_w // 4, y + h // 3), "+" if group.sign > 0 else "-", fill="black", font=font)
        for c, cell in enumerate(row):
            canvas.paste(cell, (sign_w + c * (w + pad), y))
        x = sign_w + widest * (w + pad) + pad
        draw.rectangle((x - 2, y - 2, x + w + 1, y + h + 1), outline=(200, 0, 0), width=2)
        canvas.paste(average_cells[r], (x, y))
    draw.text((left_w + sign_w // 4, pad + h // 3), "=", fill="black", font=font)
    for i, cell in enumerate(result_cells):
        x = left_w + sign_w + (i % cols) * (w + pad)
        y = pad + (i // cols) * (h + pad)
        canvas.paste(cell, (x, y))
    x0, y0 = left_w + sign_w, pad
    draw.rectangle((x0 - 2, y0 - 2, x0 + w + 1, y0 + h + 1), outline=(200, 0, 0), width=2)
    return canvas


def describe(result: ArithmeticResult, expr: str, seed: int, n: int, jitter: float) -> dict[str, Any]:
    """What ``result.json`` records beside the figure: enough to redraw it."""
    return {
        "expr": expr,
        "seed": seed,
        "n": n,
        "groups": [{"sign": g.sign, "indices": list(g.indices)} for g in result.groups],
        "variations": len(result.results),
        "jitter": jitter,
        "layout": "rows: sign, exemplars, their average (framed); right: the result (framed) and its variations",
    }


def save_numbered_grid(
    plugin, G: nn.Module, n: int, seed: int, device, out: Path, source: str, **conditions: Any
) -> dict[str, Any]:
    """Draw ``n`` samples as ``sample_inputs(n, seed)`` gives them, save one flat grid with each cell's
    index drawn in at ``out`` and, beside it (``out`` with ``.json``), which cell holds which index; the
    record is returned. ``source`` names the checkpoint in the record."""
    from gantk.sampling import sample

    if plugin.class_names() and not conditions:
        raise GantkError(
            f"--numbered: this {plugin.name} model is class-conditional; give --label so that every cell (and "
            "the arithmetic done on its indices) uses one class."
        )
    images = sample(plugin, G, n, seed, device, **conditions)
    columns = grid_columns(n)
    out.parent.mkdir(parents=True, exist_ok=True)
    numbered_grid(images).save(out)
    record = {
        "checkpoint": source,
        "n": n,
        "seed": seed,
        **conditions,
        "columns": columns,
        "cells": [{"index": i, "row": i // columns, "column": i % columns} for i in range(n)],
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


def save_figure(
    result: ArithmeticResult, out: Path, source: str, expr: str, seed: int, n: int, jitter: float, **conditions: Any
) -> None:
    """Save the figure of ``result`` at ``out`` and, beside it (``.json``), the groups and what else
    redraws it (:func:`describe`); ``source`` names the checkpoint in the record."""
    out.parent.mkdir(parents=True, exist_ok=True)
    figure(result).save(out)
    record = {"checkpoint": source, **conditions, **describe(result, expr, seed, n, jitter)}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
