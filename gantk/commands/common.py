"""What several commands share: the checkpoint arguments (``RUN``, ``--best``, ``--plugin``,
``--direction``, ``--device``), range and output-path checks, and input/output file pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.device import DEVICE_CHOICES
from gantk.errors import GantkError

#: the most images one ``gantk sample`` call draws (a grid of 10,000 64x64 images is a 6400x6400 PNG)
MAX_SAMPLES = 10_000
MAX_WALK_STEPS = 1_000
MAX_SEED = 2**63 - 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def add_checkpoint_args(p: argparse.ArgumentParser, device: bool = True, direction: bool = True) -> None:
    """What every command that loads a trained network takes (``device``: it also runs the network;
    ``direction``: it uses one generator of a plugin that has one per direction). Read them back with
    :func:`which` and :func:`load_checkpoint_generator`."""
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint instead of the newest")
    p.add_argument(
        "--plugin",
        metavar="DIR_OR_NAME",
        help="the plugin to rebuild the networks with; needed for a model trained with a plugin folder, since "
        "gantk never imports code from a path that a checkpoint names (default: the recorded built-in or "
        "installed plugin)",
    )
    if direction:
        p.add_argument(
            "--direction",
            metavar="NAME",
            help="for a model with one generator per direction (CycleGAN: AtoB, BtoA), the one to use "
            "(default: the plugin's main generator, AtoB for CycleGAN)",
        )
    if device:
        add_device_arg(p)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto")


def fetch_hub_checkpoint(args: argparse.Namespace) -> None:
    """A checkpoint argument ``hf://NAME[@revision]`` becomes the model's folder in the hub's cache, downloaded
    and verified before the command runs (:mod:`gantk.io.hub`): every command that takes a checkpoint takes one."""
    from gantk.io import hub

    if hub.is_reference(getattr(args, "checkpoint", None)):
        args.checkpoint = str(hub.fetch(args.checkpoint))


def which(args: argparse.Namespace) -> str:
    """The checkpoint of the run that ``--best`` picks: ``best`` or ``last`` (the newest)."""
    return "best" if args.best else "last"


def load_checkpoint_generator(args: argparse.Namespace, device, **kwargs):
    """``(plugin, G)`` for the checkpoint arguments (:func:`add_checkpoint_args`); ``task=`` refuses a
    model whose plugin does not serve it before any weights load."""
    from gantk.io.generators import load_generator

    return load_generator(
        args.checkpoint,
        device,
        use_ema=not getattr(args, "no_ema", False),
        which=which(args),
        plugin=args.plugin,
        direction=args.direction,
        **kwargs,
    )


def check_range(flag: str, value: int | float | None, lo: int | float, hi: int | float) -> None:
    """A command-line number outside ``[lo, hi]`` is one clear error naming the option."""
    if value is not None and not lo <= value <= hi:
        raise GantkError(f"{flag} must be between {lo:,} and {hi:,}; got {value:,}.")


def check_output(out: Path, folder: bool) -> None:
    """Refuse an output path that cannot be written before any work: a file where a folder is needed, a
    folder where a file is, or a path under an existing file."""
    for existing in (out, *out.parents):
        if not existing.exists():
            continue
        if existing == out and folder and not out.is_dir():
            raise GantkError(f"-o {out} is an existing file; this writes a folder there. Choose another path.")
        if existing == out and not folder and out.is_dir():
            raise GantkError(f"-o {out} is an existing folder; this writes one file there. Give a file name.")
        if existing != out and not existing.is_dir():
            raise GantkError(f"-o {out}: {existing} is a file, so nothing can be written under it.")
        return


def input_output_pairs(source: Path, out: Path) -> list[tuple[Path, Path]]:
    """(input, output) paths: one file to a file (or into a folder), or a folder's images to PNGs in ``out``."""
    from gantk.data.images import image_files

    if source.is_dir():
        if out.suffix.lower() in IMAGE_SUFFIXES:
            raise GantkError(f"-o {out} names an image file, but the input {source} is a folder; give a folder.")
        check_output(out, folder=True)
        pairs = [(p, out / p.relative_to(source).with_suffix(".png")) for p in image_files(source)]
        if not pairs:
            raise GantkError(f"input folder {source} holds no images.")
        return pairs
    if source.is_file():
        check_output(out, folder=not out.suffix)
        return [(source, out if out.suffix else out / (source.stem + ".png"))]
    raise GantkError(f"input {source} does not exist; expected an image file or a folder of images.")
