"""The ``gantk`` commands: one module per verb, each with ``add_parser(sub)`` (which sets ``run``) and
``run(args) -> int``.

A new verb is one new module here and one line in :data:`VERBS`; ``gantk.cli`` builds the parser from
the list and maps errors to exit codes for all of them. A module imports what its command needs inside
``run``, so ``gantk --help`` or ``gantk datasets`` does not load the engine's trainer.
"""

from __future__ import annotations

import argparse
import importlib

#: the verbs in the order ``gantk --help`` lists them
VERBS = (
    "plugins",
    "datasets",
    "train",
    "sample",
    "arithmetic",
    "translate",
    "upscale",
    "classifier",
    "probe",
    "export",
    "push",
    "eval",
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add every verb's parser to ``sub``."""
    for verb in VERBS:
        importlib.import_module(f"gantk.commands.{verb}").add_parser(sub)
