"""``gantk sample RUN``: grids or files of samples, latent walks, traversals of named codes, style-mixing
grids, and numbered grids to pick exemplars for ``gantk arithmetic``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import (
    IMAGE_SUFFIXES,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_WALK_STEPS,
    add_checkpoint_args,
    check_output,
    check_range,
    load_checkpoint_generator,
)
from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a trained generator",
        description="Sample from a run folder (its newest checkpoint) or a checkpoint folder.",
    )
    add_checkpoint_args(p)
    p.set_defaults(run=run)
    p.add_argument(
        "-n",
        type=int,
        help="number of samples (default 64; per class for a class-conditional model without --label, default 8),"
        " or of walks with --interpolate (default 8)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-o", "--output", default="samples.png", help="a .png file (one grid) or a folder (one PNG per sample)"
    )
    p.add_argument(
        "--interpolate",
        type=int,
        metavar="STEPS",
        help="latent walks of STEPS images between random points (in W, a straight line, for StyleGAN2)",
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    p.add_argument(
        "--label",
        help="class-conditional models: draw only this class (name or index); default: one row per class",
    )
    p.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="style-based models (StyleGAN2): pull each w towards the mean w, 1 none, 0 the mean image "
        "(0.7 is the usual trade of variety for quality)",
    )
    p.add_argument(
        "--style-mix",
        type=_grid_shape,
        metavar="ROWSxCOLS",
        help="style-based models (StyleGAN2): the style-mixing grid, e.g. 3x5: row sources down the left, "
        "column sources along the top, each cell the row's coarse styles with the column's fine ones",
    )
    p.add_argument(
        "--fine-from",
        type=int,
        metavar="RES",
        help="with --style-mix: the resolution where the column's (fine) styles begin (default 16: the rows "
        "give the 4x4 and 8x8 styles, pose and shape; a higher RES gives the columns less, colour at most)",
    )
    p.add_argument(
        "--traverse",
        metavar="CODE",
        help="models with named latent codes (InfoGAN: c1, c2, ...): vary CODE along each row, -n values "
        "(default 10), everything else fixed",
    )
    p.add_argument(
        "--numbered",
        action="store_true",
        help="write each cell's index into the grid (and the indices beside it, in OUTPUT.json), to pick "
        "exemplars for 'gantk arithmetic' with the same -n and --seed",
    )


def _grid_shape(text: str) -> tuple[int, int]:
    """``3x5`` -> (3, 5), for ``--style-mix``."""
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 32 and 1 <= int(cols) <= 32):
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS with 1 to 32 of each, such as 3x5, got '{text}'")
    return int(rows), int(cols)


def run(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.device import select_device
    from gantk.io.images import save_each, save_grid

    out = Path(args.output)
    _check_flags(args, out)
    device = select_device(args.device)
    plugin, G = load_checkpoint_generator(args, device, task="sample")
    conditions = _conditions(args, plugin)
    if args.numbered:
        return _numbered(args, plugin, G, device, conditions, out)
    images, nrow = _draw(args, plugin, G, device, conditions)
    if out.suffix.lower() in IMAGE_SUFFIXES:
        save_grid(images, out, nrow=nrow)
        console.print(f"wrote a grid of {len(images)} images to {out}", highlight=False)
    else:
        paths = save_each(images, out)
        console.print(f"wrote {len(paths)} images to {out}/", highlight=False)
    return 0


def _check_flags(args: argparse.Namespace, out: Path) -> None:
    """What the flags alone can refuse, before a checkpoint is read."""
    check_range("--interpolate", args.interpolate, 2, MAX_WALK_STEPS)
    check_range("-n", args.n, 1, MAX_SAMPLES if args.interpolate is None else MAX_SAMPLES // args.interpolate)
    check_range("--seed", args.seed, 0, MAX_SEED)
    check_output(out, folder=out.suffix.lower() not in IMAGE_SUFFIXES)
    if args.numbered and (args.interpolate is not None or out.suffix.lower() != ".png"):
        raise GantkError("--numbered draws one grid of samples: give -o FILE.png and no --interpolate.")
    if args.fine_from is not None and args.style_mix is None:
        raise GantkError(
            f"--fine-from {args.fine_from} says where a style-mixing grid's fine styles begin: give --style-mix too."
        )
    if args.style_mix is None:
        return
    others = [
        flag
        for flag, given in [
            ("--interpolate", args.interpolate is not None),
            ("--traverse", args.traverse is not None),
            ("--numbered", args.numbered),
            ("--label", args.label is not None),
            ("-n", args.n is not None),
        ]
        if given
    ]
    if others or out.suffix.lower() not in IMAGE_SUFFIXES:
        raise GantkError(
            "--style-mix draws one grid of its own: give it with -o FILE.png (and --truncation, --fine-from, "
            f"--seed if wanted){', without ' + ', '.join(others) if others else ''}."
        )


def _conditions(args: argparse.Namespace, plugin) -> dict:
    """``label`` and ``truncation`` for ``sample_inputs``, each refused for a model that takes none."""
    if args.label is not None and not plugin.class_names():
        raise GantkError(f"--label {args.label}: this {plugin.name} model is not class-conditional; drop --label.")
    conditions = {"label": args.label} if args.label is not None else {}
    if args.truncation is not None:
        if "truncation" not in plugin.sample_options:
            raise GantkError(
                f"--truncation {args.truncation}: this {plugin.name} model has no mean w to truncate towards "
                "(style-based models such as stylegan2 have); drop --truncation."
            )
        check_range("--truncation", args.truncation, 0.0, 2.0)
        conditions["truncation"] = args.truncation
    return conditions


def _draw(args: argparse.Namespace, plugin, G, device, conditions: dict):
    """The images the flags ask for, and the grid's row length (None: the grid's default)."""
    from gantk.sampling import interpolate, sample, sample_per_class, style_mix, traverse

    classes = plugin.class_names()
    if args.style_mix is not None:
        if args.fine_from is not None:
            conditions["fine_from"] = args.fine_from
        return style_mix(plugin, G, *args.style_mix, args.seed, device, **conditions)
    if args.traverse is not None:
        if args.interpolate is not None or conditions:
            raise GantkError("--traverse draws its own grid: give it without --interpolate and --label.")
        check_range("-n (values along a row)", args.n, 2, 100)
        return traverse(plugin, G, args.traverse, args.n or 10, args.seed, device)
    if args.interpolate is not None:
        images = interpolate(plugin, G, args.n or 8, args.interpolate, args.seed, device, **conditions)
        return images, args.interpolate
    if classes and args.label is None:  # one row per class, -n images each (default 8)
        per_class = args.n or 8
        check_range("-n (per class)", per_class, 1, MAX_SAMPLES // len(classes))
        return sample_per_class(plugin, G, per_class, args.seed, device), per_class
    return sample(plugin, G, args.n or 64, args.seed, device, **conditions), None


def _numbered(args: argparse.Namespace, plugin, G, device, conditions: dict, out: Path) -> int:
    from gantk.arithmetic import save_numbered_grid
    from gantk.console import console

    n = args.n or 64
    record = save_numbered_grid(plugin, G, n, args.seed, device, out, str(args.checkpoint), **conditions)
    console.print(
        f"wrote a numbered grid of {n} samples to {out} (indices 0-{n - 1}, row by row, {record['columns']} per "
        f"row; listed in {out.with_suffix('.json')}). Pick exemplars with: gantk arithmetic {args.checkpoint} "
        f"-n {n} --seed {args.seed} --expr 'a,b,c - d,e,f + g,h,i'",
        highlight=False,
    )
    return 0
