"""``gantk export RUN -o DIR``: a generator-only checkpoint to ship, or an ONNX / TorchScript model file
checked against PyTorch on the spot."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, check_output, which


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a generator-only checkpoint to ship",
        description="Copy a run's generator (EMA weights when present) and its config into a small checkpoint "
        "folder with no discriminator or training state; sample, translate and the apps load it as usual.",
    )
    add_checkpoint_args(p, device=False)
    p.set_defaults(run=run)
    p.add_argument("--no-ema", action="store_true", help="export the raw generator even when EMA weights exist")
    p.add_argument(
        "--format",
        choices=("safetensors", "onnx", "torchscript"),
        default="safetensors",
        help="safetensors (default: a gantk checkpoint), onnx or torchscript (a model file checked against "
        "PyTorch on the spot; export.json documents its inputs and the check)",
    )
    p.add_argument("-o", "--output", required=True, help="folder to write")


def run(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.deploy import export_checkpoint, export_model

    check_output(Path(args.output), folder=True)
    source, out = Path(args.checkpoint), Path(args.output)
    if args.format == "safetensors":
        folder = export_checkpoint(source, out, which(args), not args.no_ema, args.plugin, args.direction)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        console.print(f"exported the generator to {folder} ({size:.1f} MB)", highlight=False)
        return 0
    info = export_model(source, out, args.format, which(args), not args.no_ema, args.plugin, args.direction)
    inputs = ", ".join(f"{i['name']} {i['dtype']} {i['example_shape']}" for i in info["inputs"])
    worst = max(info["parity"]["max_abs_diff"].values())
    console.print(
        f"exported the generator to {out}/{info['model']} ({args.format}); inputs: {inputs}. Checked with "
        f"{info['parity']['runtime']} against PyTorch: max difference {worst:.2g} (tolerance "
        f"{info['parity']['tolerance']:g})",
        highlight=False,
    )
    return 0
