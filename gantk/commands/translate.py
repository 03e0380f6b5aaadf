"""``gantk translate RUN INPUT``: image-to-image translation of a file or a folder of images."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, input_output_pairs, load_checkpoint_generator
from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with an image-to-image model (pix2pix)",
        description="Translate an image file, or every image in a folder, with a trained image-to-image model.",
    )
    add_checkpoint_args(p)
    p.set_defaults(run=run)
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, help="output file (for one input) or folder")
    p.add_argument(
        "--train-mode",
        action="store_true",
        help="keep dropout and batch statistics at test time, as the pix2pix paper does (default: eval mode)",
    )


def run(args: argparse.Namespace) -> int:
    from gantk.console import console
    from gantk.data.images import read_image
    from gantk.device import select_device
    from gantk.io.images import from_uint8, save_image_file

    device = select_device(args.device)
    pairs, out = input_output_pairs(Path(args.input), Path(args.output)), Path(args.output)
    plugin, G = load_checkpoint_generator(args, device, task="translate")
    channels = plugin.cfg.data.channels or 3
    for src, dst in pairs:
        x = from_uint8(read_image(src, channels))[None]
        try:
            y = plugin.translate(G, x, train_mode=args.train_mode or None)
        except NotImplementedError as exc:
            raise GantkError(f"{exc}.") from None
        save_image_file(y[0], dst)
    console.print(f"translated {len(pairs)} image(s) into {out}", highlight=False)
    return 0
