"""``gantk push RUN --repo NAME``: the run's generator and a model card on the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, check_output, which


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="publish a run's generator with a model card on the Hugging Face Hub",
        description="Export the generator (EMA weights when present; safetensors or ONNX) with config.json, its "
        "manifest of SHA-256 sums, a model card, the newest sample grid and the training config, and upload "
        "them to a Hub model repository (huggingface_hub: HF_TOKEN or `hf auth login`; HF_ENDPOINT for a "
        "private Hub). Load it back anywhere a checkpoint is taken: hf://NAME[@revision].",
    )
    add_checkpoint_args(p, device=False)
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the Hub model repository (created if new)")
    p.add_argument("--no-ema", action="store_true", help="push the raw generator even when EMA weights exist")
    p.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors", help="the weights' format")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("-o", "--output", help="also keep a copy of what was uploaded in this folder (new)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.io.hub import PREFIX, parse
    from gantk.publish import push

    repo = parse(PREFIX + args.repo)[0]  # OWNER/NAME, checked before any work
    keep = Path(args.output) if args.output else None
    if keep is not None:
        check_output(keep, folder=True)
    done = push(
        Path(args.checkpoint), repo, which(args), not args.no_ema, args.plugin, args.direction, args.format,
        args.private, keep,
    )  # fmt: skip
    console.print(
        f"pushed {', '.join(done.files)} to {done.url} (commit {done.commit[:12]}); load it with hf://{repo}",
        highlight=False,
    )
    return 0
