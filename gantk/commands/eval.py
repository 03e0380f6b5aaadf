"""``gantk eval RUN -o DIR``: a checkpoint scored the way training scores it, printed and saved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, check_output, which


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="run a plugin's evaluation on a checkpoint and print the metrics",
        description="Evaluate a checkpoint the way training does (the plugin's evaluate()), with the "
        "checkpoint's own config; --set changes eval keys such as eval.classifier=DIR. A model with one "
        "generator per direction (CycleGAN) is evaluated in every direction its checkpoint holds.",
    )
    add_checkpoint_args(p, direction=False)
    p.set_defaults(run=run)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("-o", "--output", required=True, help="folder for the reports and metrics.json")


def run(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.device import select_device
    from gantk.metrics.checkpoint import check_eval_overrides, evaluate_checkpoint

    out = Path(args.output)
    check_output(out, folder=True)
    check_eval_overrides(args.overrides)
    scores = evaluate_checkpoint(
        args.checkpoint, out, select_device(args.device), which(args), not args.no_ema, args.plugin, args.overrides
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(scores.record(str(args.checkpoint)), indent=2))
    console.print(metrics_table(scores.metrics, f"{scores.plugin} at step {scores.step}"))
    if set(scores.protocol) - {"generator", "gantk"}:  # the metric functions described how they scored
        console.print(
            "protocol: " + "; ".join(f"{k} {v}" for k, v in _flat(scores.protocol).items() if v not in (None, "")),
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"wrote {out / 'metrics.json'}", highlight=False)
    return 0


def _flat(card: dict, prefix: str = "") -> dict:
    """A protocol card with its per-direction (or per-set) parts as ``part.key`` entries, for printing."""
    out = {}
    for k, v in card.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def metrics_table(metrics: dict[str, float], title: str):
    """A rich table of metrics. Names that all read ``row/column`` (SR: ``Set5/psnr_y``,
    ``Set5/bicubic/psnr_y``) become a grid with one row per prefix; other names a two-column list."""
    from rich.table import Table

    table = Table(title=title)
    if metrics and all("/" in name for name in metrics):
        rows: dict[str, dict[str, float]] = {}
        for name, value in metrics.items():
            row, column = name.rsplit("/", 1)
            rows.setdefault(row, {})[column] = value
        columns = list(dict.fromkeys(c for r in rows.values() for c in r))
        table.add_column("")
        for column in columns:
            table.add_column(column, justify="right")
        for row, values in rows.items():
            table.add_row(row, *(f"{values[c]:.4f}" if c in values else "" for c in columns))
        return table
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    return table
