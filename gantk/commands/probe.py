"""``gantk probe RUN --data ...``: the trained discriminator as a feature extractor (Radford et al. 2015,
section 5.1): a linear L2-SVM on its features beside the same probe on a random D."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, check_output, check_range, which
from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="D as a feature extractor: a linear L2-SVM on its features vs a random D (DCGAN paper, 5.1)",
        description="Max-pool each of the trained discriminator's convolutional layers to 4x4, concatenate, fit "
        "a linear L2-SVM (scikit-learn's LinearSVC, C by cross-validation) on labelled training images and "
        "report test accuracy, beside the same probe on a randomly initialised D of the same shape.",
    )
    add_checkpoint_args(p)
    p.set_defaults(run=run)
    p.add_argument("--data", required=True, help="labelled data: mnist, or a folder of class sub-folders")
    p.add_argument(
        "--labels-per-class", type=int, default=0, help="labelled training images per class (default 0: all)"
    )
    p.add_argument("--C", type=float, dest="C", help="LinearSVC's C (default: picked by 3-fold cross-validation)")
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="held out per class from a folder without train/ and test/ inside (default 0.2)",
    )
    p.add_argument("--seed", type=int, default=0, help="the label subset, the held-out split and the random D")
    p.add_argument("-o", "--output", required=True, help="folder for probe.json and probe.md")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from gantk.console import console
    from gantk.device import select_device
    from gantk.io.generators import load_network
    from gantk.probe import probe, write_report

    check_range("--labels-per-class", args.labels_per_class, 0, 10**7)
    check_range("--seed", args.seed, 0, 2**32 - 1)
    if args.C is not None and not 0 < args.C < float("inf"):
        raise GantkError(f"--C must be a positive number; got {args.C}.")
    if not 0 < args.test_fraction < 1:
        raise GantkError(f"--test-fraction must lie between 0 and 1; got {args.test_fraction}.")
    out = Path(args.output)
    check_output(out, folder=True)
    device = select_device(args.device)
    plugin, D = load_network(args.checkpoint, "D", device, which(args), args.plugin)
    report = probe(plugin, D, args.data, device, args.labels_per_class, args.C, args.seed, args.test_fraction)
    write_report(report, str(args.checkpoint), out)
    table = Table(
        title=f"D as a feature extractor on {args.data} ({report.labels_used} labels, {report.test_images} test)"
    )
    for column in ("D", "test accuracy", "C"):
        table.add_column(column, justify="left" if column == "D" else "right")
    table.add_row("trained", f"{report.trained.accuracy:.4f}", f"{report.trained.C:g}")
    table.add_row("random init", f"{report.random.accuracy:.4f}", f"{report.random.C:g}")
    console.print(table)
    console.print(f"{report.feature_dim} features per image; wrote {out / 'probe.json'} and probe.md", highlight=False)
    return 0
