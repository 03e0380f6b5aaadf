"""``gantk arithmetic RUN --expr ...``: vector arithmetic on z with exemplars picked from a numbered grid
(Radford et al. 2015, figure 7)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import (
    MAX_SAMPLES,
    MAX_SEED,
    add_checkpoint_args,
    check_output,
    check_range,
    load_checkpoint_generator,
)
from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "arithmetic",
        help="vector arithmetic on z with exemplars from a numbered grid (DCGAN paper, figure 7)",
        description="Average the z of each group of exemplars (indices into the grid of 'gantk sample -n N "
        "--seed S --numbered'), add and subtract the averages, and render the result with jittered "
        "variations beside the exemplars and their averages.",
    )
    add_checkpoint_args(p)
    p.set_defaults(run=run)
    p.add_argument(
        "--expr", required=True, help="groups of grid indices joined by + and -: '12,17,40 - 5,9,33 + 22,31,50'"
    )
    p.add_argument("-n", type=int, default=64, help="size of the numbered grid the indices come from (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the numbered grid the indices come from")
    p.add_argument("--variations", type=int, default=9, help="result images: the result and jittered copies (9)")
    p.add_argument("--jitter", type=float, default=0.25, help="uniform noise scale of the variations (paper: 0.25)")
    p.add_argument("--label", help="class-conditional models: the class every exemplar and the result use")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    p.add_argument("-o", "--output", default="arithmetic.png", help="a .png file; OUTPUT.json records the groups")


def run(args: argparse.Namespace) -> int:
    from gantk.arithmetic import arithmetic, save_figure
    from gantk.console import console
    from gantk.device import select_device

    check_range("-n", args.n, 1, MAX_SAMPLES)
    check_range("--seed", args.seed, 0, MAX_SEED - 1)
    check_range("--variations", args.variations, 1, 100)
    if not 0 <= args.jitter <= 10:
        raise GantkError(f"--jitter must be between 0 and 10; got {args.jitter}.")
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise GantkError(f"-o {out}: gantk arithmetic writes one PNG figure; give a file name ending in .png.")
    check_output(out, folder=False)
    device = select_device(args.device)
    plugin, G = load_checkpoint_generator(args, device, task="sample")
    if plugin.class_names() and args.label is None:
        raise GantkError(
            f"this {plugin.name} model is class-conditional: give --label (the class of the numbered grid the "
            "indices come from) so that only z changes."
        )
    conditions = {"label": args.label} if args.label is not None else {}
    result = arithmetic(plugin, G, args.expr, args.seed, args.n, device, args.variations, args.jitter, **conditions)
    save_figure(result, out, str(args.checkpoint), args.expr, args.seed, args.n, args.jitter, **conditions)
    console.print(
        f"wrote {out}: {len(result.groups)} groups averaged and combined, the result and "
        f"{len(result.results) - 1} variations (jitter {args.jitter:g}); the groups are in {out.with_suffix('.json')}",
        highlight=False,
    )
    return 0
