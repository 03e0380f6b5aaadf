"""``gantk plugins``: list the plugins gantk can find; ``gantk plugins new NAME``: scaffold one."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plugins", help="list the plugins gantk can find, or make a new one", description="List or create plugins."
    )
    p.set_defaults(run=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    new = actions.add_parser(
        "new", help="write a working plugin package to start from", description="Scaffold a plugin package."
    )
    new.add_argument("name", help="plugin name: lower case, digits, underscores")
    new.add_argument("--dir", help="where to write the package (default: ./gantk-NAME)")
    new.set_defaults(run=run_new)


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from gantk import registry
    from gantk.console import console

    table = Table(title="gantk plugins")
    for col in ("name", "source", "description"):
        table.add_column(col)
    specs = registry.all_specs() + registry.local_specs()
    names = [s.name for s in specs]
    for spec in specs:
        where = spec.source if spec.source != "installed" else f"installed: {spec.dist} {spec.version}"
        if spec.source == "path":
            where = f"path: {spec.location}"
        try:
            cls = spec.load()
            registry.check_defaults(spec, cls)
            description = cls.description or ""
        except Exception as exc:  # listed as broken, whatever its code raised; the other plugins still load
            reason = str(exc) if isinstance(exc, GantkError) else f"{type(exc).__name__}: {exc}"
            description = f"[red]broken:[/red] {escape(reason)}"
        if names.count(spec.name) > 1:
            description += " [yellow](name clash: pick by path or dist:name)[/yellow]"
        table.add_row(spec.name, where, description)
    console.print(table)
    return 0


def run_new(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.scaffold import scaffold

    folder = Path(args.dir or f"gantk-{args.name.replace('_', '-')}")
    written = scaffold(args.name, folder)
    console.print(f"wrote plugin '{args.name}' to {folder}/ ({len(written)} files)", highlight=False)
    console.print(f"next: pip install -e {folder} && gantk plugins && pytest {folder}/tests", highlight=False)
    return 0
