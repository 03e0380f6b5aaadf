"""``gantk datasets``: the dataset cards, and where each dataset is on this machine."""

from __future__ import annotations

import argparse

from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list named datasets and where they are", description="List the dataset cards.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from gantk.console import console
    from gantk.data import load_cards, locate

    table = Table(title="gantk datasets")
    for col in ("name", "kind", "found at", "description"):
        table.add_column(col)
    for name, card in sorted(load_cards().items()):
        try:
            where = str(locate(name, download=False)[0])
        except GantkError:
            where = "not here (downloads on first use)"
        table.add_row(name, card.kind, where, card.description)
    console.print(table)
    return 0
