"""The ``gantk`` command line: ``plugins``, ``datasets``, ``train``, ``sample``, ``arithmetic``, ``translate``,
``upscale``, ``classifier``, ``probe``, ``export``, ``eval``.

Errors a user can fix print one paragraph and exit with code 2; there is no traceback unless
``GANTK_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from gantk import __version__
from gantk.errors import GantkError, TrainingStopped


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a plugin",
        description="Train PLUGIN (a folder such as plugins/dcgan, a registered name, or an installed plugin).",
    )
    p.add_argument("plugin", nargs="?", help="plugin folder, registered name, or dist:name")
    p.add_argument("--data", help="dataset name (mnist, facades, att_faces, ...) or a folder; sets data.name")
    p.add_argument("--out", help="run folder (default: runs/<plugin>)")
    p.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="YAML file layered over the plugin defaults"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. train.batch_size=64",
    )
    p.add_argument("--max-steps", type=int, help="stop after N generator steps (sets train.max_steps)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue the newest checkpoint in --out, or the one named (step_00000400, best); later ones are "
        "moved to checkpoints/superseded/",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="sets train.device")
    p.add_argument("--seed", type=int, help="sets train.seed")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes on this machine, one per GPU (gloo on CPU): hands off to "
        "`torchrun --standalone --nproc_per_node N -m gantk train ...`; train.batch_size stays the global batch",
    )


def _add_checkpoint_args(p: argparse.ArgumentParser, device: bool = True, direction: bool = True) -> None:
    """What every command that loads a trained generator takes (``device``: it also runs the generator;
    ``direction``: it uses one generator of a plugin that has one per direction)."""
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
        p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a trained generator",
        description="Sample from a run folder (its newest checkpoint) or a checkpoint folder.",
    )
    _add_checkpoint_args(p)
    p.add_argument(
        "-n",
        type=int,
        help="number of samples (default 64; per class for a class-conditional model without --label, default 8),"
        " or of walks with --interpolate (default 8)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "-o", "--output", default="samples.png", help="a .png file (one grid) or a folder (one PNG per sample)"
    )
    p.add_argument(
        "--interpolate",
        type=int,
        metavar="STEPS",
        help="latent walks of STEPS images between random points (in W, a straight line, for StyleGAN2)",
    )
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    p.add_argument(
        "--label",
        help="class-conditional models: draw only this class (name or index); default: one row per class",
    )
    p.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="style-based models (StyleGAN2): pull each w towards the mean w, 1 none, 0 the mean image "
        "(0.7 is the usual trade of variety for quality)",
    )
    p.add_argument(
        "--style-mix",
        type=_grid_shape,
        metavar="ROWSxCOLS",
        help="style-based models (StyleGAN2): the style-mixing grid, e.g. 3x5: row sources down the left, "
        "column sources along the top, each cell the row's coarse styles with the column's fine ones",
    )
    p.add_argument(
        "--fine-from",
        type=int,
        metavar="RES",
        help="with --style-mix: the resolution where the column's (fine) styles begin (default 16: the rows "
        "give the 4x4 and 8x8 styles, pose and shape; a higher RES gives the columns less, colour at most)",
    )
    p.add_argument(
        "--traverse",
        metavar="CODE",
        help="models with named latent codes (InfoGAN: c1, c2, ...): vary CODE along each row, -n values "
        "(default 10), everything else fixed",
    )
    p.add_argument(
        "--numbered",
        action="store_true",
        help="write each cell's index into the grid (and the indices beside it, in OUTPUT.json), to pick "
        "exemplars for 'gantk arithmetic' with the same -n and --seed",
    )


def _grid_shape(text: str) -> tuple[int, int]:
    """``3x5`` -> (3, 5), for ``--style-mix``."""
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 32 and 1 <= int(cols) <= 32):
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS with 1 to 32 of each, such as 3x5, got '{text}'")
    return int(rows), int(cols)


def _add_arithmetic(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "arithmetic",
        help="vector arithmetic on z with exemplars from a numbered grid (DCGAN paper, figure 7)",
        description="Average the z of each group of exemplars (indices into the grid of 'gantk sample -n N "
        "--seed S --numbered'), add and subtract the averages, and render the result with jittered "
        "variations beside the exemplars and their averages.",
    )
    _add_checkpoint_args(p)
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


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="D as a feature extractor: a linear L2-SVM on its features vs a random D (DCGAN paper, 5.1)",
        description="Max-pool each of the trained discriminator's convolutional layers to 4x4, concatenate, fit "
        "a linear L2-SVM (scikit-learn's LinearSVC, C by cross-validation) on labelled training images and "
        "report test accuracy, beside the same probe on a randomly initialised D of the same shape.",
    )
    _add_checkpoint_args(p)
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


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a generator-only checkpoint to ship",
        description="Copy a run's generator (EMA weights when present) and its config into a small checkpoint "
        "folder with no discriminator or training state; sample, translate and the apps load it as usual.",
    )
    _add_checkpoint_args(p, device=False)
    p.add_argument("--no-ema", action="store_true", help="export the raw generator even when EMA weights exist")
    p.add_argument(
        "--format",
        choices=("safetensors", "onnx", "torchscript"),
        default="safetensors",
        help="safetensors (default: a gantk checkpoint), onnx or torchscript (a model file checked against "
        "PyTorch on the spot; export.json documents its inputs and the check)",
    )
    p.add_argument("-o", "--output", required=True, help="folder to write")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="run a plugin's evaluation on a checkpoint and print the metrics",
        description="Evaluate a checkpoint the way training does (the plugin's evaluate()), with the "
        "checkpoint's own config; --set changes eval keys such as eval.classifier=DIR. A model with one "
        "generator per direction (CycleGAN) is evaluated in every direction its checkpoint holds.",
    )
    _add_checkpoint_args(p, direction=False)
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even when EMA weights exist")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("-o", "--output", required=True, help="folder for the reports and metrics.json")


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with an image-to-image model (pix2pix)",
        description="Translate an image file, or every image in a folder, with a trained image-to-image model.",
    )
    _add_checkpoint_args(p)
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, help="output file (for one input) or folder")
    p.add_argument(
        "--train-mode",
        action="store_true",
        help="keep dropout and batch statistics at test time, as the pix2pix paper does (default: eval mode)",
    )


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="super-resolve images with a super-resolution model (srgan)",
        description="Upscale an image file, or every image in a folder, with a trained super-resolution model. "
        "Any size works: the image is processed in overlapping tiles, so memory is bounded by the tile; grey "
        "stays grey and an alpha channel is kept (upscaled with bicubic).",
    )
    _add_checkpoint_args(p)
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, help="output file (for one input) or folder")
    p.add_argument("--tile", type=int, help="LR tile side in pixels (default: the model's eval.tile, 128)")


def _add_classifier(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classifier",
        help="train the classifier that scores class-conditional generators",
        description="Train a small CNN on the real images of a labelled dataset and save it (config.json + "
        "classifier.safetensors); pass the folder as eval.classifier=DIR to CGAN runs.",
    )
    p.add_argument("--data", default="mnist", help="labelled dataset name or folder (one sub-folder per class)")
    p.add_argument("--image-size", type=int, default=32, help="side the images are resized to (default 32)")
    p.add_argument("--channels", type=int, default=0, choices=(0, 1, 3), help="1 grey, 3 RGB, 0 as the data is")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv stage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("-o", "--output", required=True, help="folder to write the classifier to")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gantk", description="A PyTorch toolkit for GANs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins = sub.add_parser(
        "plugins", help="list the plugins gantk can find, or make a new one", description="List or create plugins."
    )
    plugin_sub = plugins.add_subparsers(dest="action", metavar="ACTION")
    new = plugin_sub.add_parser(
        "new", help="write a working plugin package to start from", description="Scaffold a plugin package."
    )
    new.add_argument("name", help="plugin name: lower case, digits, underscores")
    new.add_argument("--dir", help="where to write the package (default: ./gantk-NAME)")
    sub.add_parser("datasets", help="list named datasets and where they are", description="List the dataset cards.")
    _add_train(sub)
    _add_sample(sub)
    _add_arithmetic(sub)
    _add_translate(sub)
    _add_upscale(sub)
    _add_classifier(sub)
    _add_probe(sub)
    _add_export(sub)
    _add_eval(sub)
    return parser


# ----------------------------------------------------------------------------------------------- checks

#: the most images one ``gantk sample`` call draws (a grid of 10,000 64x64 images is a 6400x6400 PNG)
MAX_SAMPLES = 10_000
MAX_WALK_STEPS = 1_000
MAX_SEED = 2**63 - 1
#: the config sections ``gantk eval --set`` may change: how to evaluate, and where the data is
EVAL_SECTIONS = ("eval", "data")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def load_checkpoint_generator(args: argparse.Namespace, device, **kwargs):
    """``(plugin, G)`` for the checkpoint arguments every generating command takes (``_add_checkpoint_args``)."""
    from gantk.io.generators import load_generator

    return load_generator(
        args.checkpoint,
        device,
        use_ema=not getattr(args, "no_ema", False),
        which="best" if args.best else "last",
        plugin=args.plugin,
        direction=args.direction,
        **kwargs,
    )


def check_range(flag: str, value: int | None, lo: int, hi: int) -> None:
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


# ----------------------------------------------------------------------------------------------- commands


def cmd_plugins(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "new":
        return cmd_plugins_new(args)
    from rich.markup import escape
    from rich.table import Table

    from gantk import registry
    from gantk.engine.logger import console

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


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from gantk.engine.logger import console
    from gantk.scaffold import scaffold

    folder = Path(args.dir or f"gantk-{args.name.replace('_', '-')}")
    written = scaffold(args.name, folder)
    console.print(f"wrote plugin '{args.name}' to {folder}/ ({len(written)} files)", highlight=False)
    console.print(f"next: pip install -e {folder} && gantk plugins && pytest {folder}/tests", highlight=False)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from rich.table import Table

    from gantk.data import load_cards, locate
    from gantk.engine.logger import console

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


def _strip_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def launch_torchrun(nproc: int, argv: list[str], device: str | None = None) -> int:
    """Run ``gantk`` on ``nproc`` local processes under torchrun's launcher (in this process); returns
    the exit code of the first process that failed, 0 when all finished.

    Each process prints its own message (rank 0 for all, in gantk's words); torchrun's own report of
    the failure (an ERROR log line, a ``ChildFailedError`` traceback and a box naming the ranks) would
    only repeat it with a traceback, so it is left out (``GANTK_DEBUG=1`` keeps it)."""
    if os.environ.get("WORLD_SIZE"):
        raise GantkError("--nproc was given inside a torchrun job; drop it (torchrun already set the processes).")
    import logging

    import torch
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    rest = _strip_nproc(argv)
    gpus = torch.cuda.device_count() if device != "cpu" else 0
    cores = os.cpu_count() or 1
    if gpus:
        print(f"gantk: --nproc {nproc}: {nproc} processes, one per GPU (NCCL) of the {gpus} here", file=sys.stderr)
    else:
        print(
            f"gantk: --nproc {nproc}: {nproc} CPU processes on this machine (gloo; "
            f"{'no GPU here' if device != 'cpu' else '--device cpu'}), each with 1/{nproc} of train.batch_size",
            file=sys.stderr,
        )
        if nproc > cores:
            warnings.warn(
                f"--nproc {nproc} starts more processes than the {cores} CPU core(s) here: they compete for the "
                "cores, and the run is slower than with fewer. Data-parallel training on a CPU pays off only "
                "with a core (or more) per process.",
                stacklevel=2,
            )
    # torchrun sets 1 thread per process (with a warning) unless told; a CPU run splits the cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(1 if gpus else max(1, cores // nproc)))
    print(f"gantk: torchrun --standalone --nproc_per_node={nproc} -m gantk {' '.join(rest)}", file=sys.stderr)
    sys.stderr.flush()
    launcher = get_args_parser().parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "gantk", *rest])
    debug = bool(os.environ.get("GANTK_DEBUG"))
    if not debug:
        logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(launcher)
    except SignalException as exc:  # SIGTERM/SIGINT to this process: passed on, the ranks said how they stopped
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        if debug:
            raise
        codes = [failure.exitcode for _, failure in sorted(exc.failures.items())]
        first = next((c for c in codes if c), 1)
        return first if first > 0 else 128 - first  # killed by signal N: the shell's 128 + N
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.plugin is None and isinstance(args.resume, str):  # gantk train --resume plugins/x: a bare --resume
        args.plugin, args.resume = args.resume, True
    if isinstance(args.resume, str) and not args.resume.strip():
        raise GantkError("--resume was given an empty checkpoint name; give one (step_00000400, best) or none.")
    if args.plugin is None:
        raise GantkError("gantk train needs a plugin: a folder such as plugins/dcgan, a registered name, or dist:name.")
    if args.nproc is not None:
        if args.nproc < 1:
            raise GantkError(f"--nproc must be at least 1; got {args.nproc}.")
        if args.nproc > 1 and not args.print_config:
            return launch_torchrun(args.nproc, args.argv, args.device)
    from gantk import registry
    from gantk.config import to_dict
    from gantk.engine import train

    if args.max_steps is not None and args.max_steps < 0:
        raise GantkError(f"--max-steps must be 0 or more; got {args.max_steps}.")
    spec, cls = registry.load(args.plugin)
    out = Path(args.out or Path("runs") / spec.name)
    flags = {
        "data.name": args.data or None,
        "train.max_steps": args.max_steps,
        "train.device": args.device,
        "train.seed": args.seed,
    }
    cfg = registry.make_config(
        spec,
        cls,
        resumed_run=out if args.resume else None,
        files=args.config,
        values={key: value for key, value in flags.items() if value is not None},
        overrides=args.overrides,
    )
    plugin = cls(cfg)
    if args.print_config:  # resolved as training resolves it: the data fills data.channels, data.kind, ...
        import yaml

        from gantk.engine.resolve import resolve_run

        try:
            resolve_run(plugin)
        except GantkError as exc:  # still show the config: the data is what is wrong, and this says so
            print(f"gantk: note: data.* not resolved from the data: {exc}", file=sys.stderr)
        print(yaml.safe_dump(to_dict(plugin.cfg), sort_keys=False), end="")
        return 0
    train(plugin, out, spec, resume=args.resume)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gantk.engine import select_device
    from gantk.engine.logger import console
    from gantk.io.images import save_each, save_grid
    from gantk.sampling import interpolate, sample, sample_per_class, style_mix, traverse

    check_range("--interpolate", args.interpolate, 2, MAX_WALK_STEPS)
    check_range("-n", args.n, 1, MAX_SAMPLES if args.interpolate is None else MAX_SAMPLES // args.interpolate)
    check_range("--seed", args.seed, 0, MAX_SEED)
    out = Path(args.output)
    check_output(out, folder=out.suffix.lower() not in IMAGE_SUFFIXES)
    if args.numbered and (args.interpolate is not None or out.suffix.lower() != ".png"):
        raise GantkError("--numbered draws one grid of samples: give -o FILE.png and no --interpolate.")
    if args.fine_from is not None and args.style_mix is None:
        raise GantkError(
            f"--fine-from {args.fine_from} says where a style-mixing grid's fine styles begin: give --style-mix too."
        )
    if args.style_mix is not None:
        others = [
            flag
            for flag, given in [
                ("--interpolate", args.interpolate is not None),
                ("--traverse", args.traverse is not None),
                ("--numbered", args.numbered),
                ("--label", args.label is not None),
                ("-n", args.n is not None),
            ]
            if given
        ]
        if others or out.suffix.lower() not in IMAGE_SUFFIXES:
            raise GantkError(
                "--style-mix draws one grid of its own: give it with -o FILE.png (and --truncation, --fine-from, "
                f"--seed if wanted){', without ' + ', '.join(others) if others else ''}."
            )
    device = select_device(args.device)
    plugin, G = load_checkpoint_generator(args, device)
    classes = plugin.class_names()
    if args.label is not None and not classes:
        raise GantkError(f"--label {args.label}: this {plugin.name} model is not class-conditional; drop --label.")
    conditions = {"label": args.label} if args.label is not None else {}
    if args.truncation is not None:
        if "truncation" not in plugin.sample_options:
            raise GantkError(
                f"--truncation {args.truncation}: this {plugin.name} model has no mean w to truncate towards "
                "(style-based models such as stylegan2 have); drop --truncation."
            )
        check_range("--truncation", args.truncation, 0.0, 2.0)
        conditions["truncation"] = args.truncation
    if args.numbered:
        return _numbered_sample(args, plugin, G, device, conditions, out)
    if args.style_mix is not None:
        if args.fine_from is not None:
            conditions["fine_from"] = args.fine_from
        images, nrow = style_mix(plugin, G, *args.style_mix, args.seed, device, **conditions)
    elif args.traverse is not None:
        if args.interpolate is not None or conditions:
            raise GantkError("--traverse draws its own grid: give it without --interpolate and --label.")
        check_range("-n (values along a row)", args.n, 2, 100)
        images, nrow = traverse(plugin, G, args.traverse, args.n or 10, args.seed, device)
    elif args.interpolate is not None:
        images = interpolate(plugin, G, args.n or 8, args.interpolate, args.seed, device, **conditions)
        nrow = args.interpolate
    elif classes and args.label is None:  # one row per class, -n images each (default 8)
        per_class = args.n or 8
        check_range("-n (per class)", per_class, 1, MAX_SAMPLES // len(classes))
        images = sample_per_class(plugin, G, per_class, args.seed, device)
        nrow = per_class
    else:
        images = sample(plugin, G, args.n or 64, args.seed, device, **conditions)
        nrow = None
    if out.suffix.lower() in IMAGE_SUFFIXES:
        save_grid(images, out, nrow=nrow)
        console.print(f"wrote a grid of {len(images)} images to {out}", highlight=False)
    else:
        paths = save_each(images, out)
        console.print(f"wrote {len(paths)} images to {out}/", highlight=False)
    return 0


def _numbered_sample(args, plugin, G, device, conditions: dict, out: Path) -> int:
    """One flat grid of -n samples with each cell's index drawn in, and OUTPUT.json beside it."""
    import json

    from gantk.arithmetic import grid_columns, numbered_grid
    from gantk.engine.logger import console
    from gantk.sampling import sample

    if plugin.class_names() and not conditions:
        raise GantkError(
            f"--numbered: this {plugin.name} model is class-conditional; give --label so that every cell (and "
            "the arithmetic done on its indices) uses one class."
        )
    n = args.n or 64
    images = sample(plugin, G, n, args.seed, device, **conditions)
    nrow = grid_columns(n)
    out.parent.mkdir(parents=True, exist_ok=True)
    numbered_grid(images).save(out)
    record = {
        "checkpoint": str(args.checkpoint),
        "n": n,
        "seed": args.seed,
        **conditions,
        "columns": nrow,
        "cells": [{"index": i, "row": i // nrow, "column": i % nrow} for i in range(n)],
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    console.print(
        f"wrote a numbered grid of {n} samples to {out} (indices 0-{n - 1}, row by row, {nrow} per row; listed "
        f"in {out.with_suffix('.json')}). Pick exemplars with: gantk arithmetic {args.checkpoint} -n {n} --seed "
        f"{args.seed} --expr 'a,b,c - d,e,f + g,h,i'",
        highlight=False,
    )
    return 0


def cmd_arithmetic(args: argparse.Namespace) -> int:
    import json

    from gantk.arithmetic import arithmetic, describe, figure
    from gantk.engine import select_device
    from gantk.engine.logger import console

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
    plugin, G = load_checkpoint_generator(args, device)
    if plugin.class_names() and args.label is None:
        raise GantkError(
            f"this {plugin.name} model is class-conditional: give --label (the class of the numbered grid the "
            "indices come from) so that only z changes."
        )
    conditions = {"label": args.label} if args.label is not None else {}
    if not plugin.serves("sample"):
        raise GantkError(f"the {plugin.name} plugin does not sample from noise, so it has no z to do arithmetic on.")
    result = arithmetic(plugin, G, args.expr, args.seed, args.n, device, args.variations, args.jitter, **conditions)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure(result).save(out)
    record = {
        "checkpoint": str(args.checkpoint),
        **conditions,
        **describe(result, args.expr, args.seed, args.n, args.jitter),
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    console.print(
        f"wrote {out}: {len(result.groups)} groups averaged and combined, the result and "
        f"{len(result.results) - 1} variations (jitter {args.jitter:g}); the groups are in {out.with_suffix('.json')}",
        highlight=False,
    )
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from rich.table import Table

    from gantk.engine import select_device
    from gantk.engine.logger import console
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
    which = "best" if args.best else "last"
    plugin, D = load_network(args.checkpoint, "D", device, which, args.plugin)
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


def cmd_export(args: argparse.Namespace) -> int:
    from gantk.engine.logger import console
    from gantk.io import checkpoint as ckpt

    check_output(Path(args.output), folder=True)
    which = "best" if args.best else "last"
    if args.format != "safetensors":
        from gantk.deploy import export_model

        info = export_model(
            Path(args.checkpoint), Path(args.output), args.format, which, not args.no_ema, args.plugin, args.direction
        )
        inputs = ", ".join(f"{i['name']} {i['dtype']} {i['example_shape']}" for i in info["inputs"])
        worst = max(info["parity"]["max_abs_diff"].values())
        console.print(
            f"exported the generator to {args.output}/{info['model']} ({args.format}); inputs: {inputs}. Checked "
            f"with {info['parity']['runtime']} against PyTorch: max difference {worst:.2g} (tolerance "
            f"{info['parity']['tolerance']:g})",
            highlight=False,
        )
        return 0
    network = None
    if args.direction:  # the plugin says which network serves it (an unknown direction is refused there)
        from gantk.io.generators import load_plugin_from_meta

        source = ckpt.find_checkpoint(Path(args.checkpoint), which)
        network = load_plugin_from_meta(ckpt.read_meta(source), source, args.plugin).network_for(args.direction)
    folder = ckpt.export_generator(
        Path(args.checkpoint), Path(args.output), which, use_ema=not args.no_ema, network=network
    )
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    console.print(f"exported the generator to {folder} ({size:.1f} MB)", highlight=False)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    import torch

    from gantk.engine import select_device
    from gantk.engine.logger import console
    from gantk.io import checkpoint as ckpt
    from gantk.io.generators import load_generators
    from gantk.plugin import EvalContext

    out = Path(args.output)
    check_output(out, folder=True)
    for item in args.overrides:  # the networks are the checkpoint's: only how they are evaluated may change
        if item.partition("=")[0].strip().split(".")[0] not in EVAL_SECTIONS:
            raise GantkError(
                f"gantk eval --set {item}: only {' and '.join(f'{s}.*' for s in EVAL_SECTIONS)} keys can change "
                "at evaluation; the rest of the config belongs to the checkpoint (its networks were built with it)."
            )
    device = select_device(args.device)
    which = "best" if args.best else "last"
    plugin, nets = load_generators(
        args.checkpoint, device, use_ema=not args.no_ema, which=which, plugin=args.plugin, overrides=args.overrides
    )
    folder = ckpt.find_checkpoint(Path(args.checkpoint), which)
    meta = ckpt.read_meta(folder)
    step = int(meta.get("step") or 0)
    ctx = EvalContext(device, step, out / "eval")
    used = ckpt.generator_weights(folder, plugin.generator, use_ema=not args.no_ema)
    # a generator-only export of the EMA weights stores them under the plain name, and says so in its meta
    ema = used.name.endswith("_ema.safetensors") or bool((meta.get("exported") or {}).get("ema"))
    ctx.protocol.update(generator="ema" if ema else "raw", gantk=__version__)
    with torch.no_grad():
        metrics = plugin.evaluate(nets, ctx)
    if not metrics:
        raise GantkError(f"the {plugin.name} plugin defines no evaluation metrics.")
    out.mkdir(parents=True, exist_ok=True)
    record = {"checkpoint": str(args.checkpoint), "step": step, **metrics, "protocol": ctx.protocol}
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    console.print(metrics_table(metrics, f"{plugin.name} at step {step}"))
    if set(ctx.protocol) - {"generator", "gantk"}:  # the metric functions described how they scored
        console.print(
            "protocol: " + "; ".join(f"{k} {v}" for k, v in _flat(ctx.protocol).items() if v not in (None, "")),
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


def cmd_translate(args: argparse.Namespace) -> int:
    from gantk.data.images import read_image
    from gantk.engine import select_device
    from gantk.engine.logger import console
    from gantk.io.images import from_uint8, save_image_file

    device = select_device(args.device)
    plugin, G = load_checkpoint_generator(args, device)
    pairs, out = _input_output_pairs(Path(args.input), Path(args.output)), Path(args.output)
    if not plugin.serves("translate"):
        raise GantkError(
            f"{args.checkpoint} holds a {plugin.name} model, which does not translate images (it serves "
            f"{', '.join(sorted(plugin.tasks))}); use gantk sample for a model that generates from noise."
        )
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


def _input_output_pairs(source: Path, out: Path) -> list[tuple[Path, Path]]:
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


def cmd_upscale(args: argparse.Namespace) -> int:
    import time

    from gantk.data.images import open_image
    from gantk.engine import select_device
    from gantk.engine.logger import console
    from gantk.upscale import load_upscaler, upscale_image

    if args.tile is not None:
        check_range("--tile", args.tile, 8, 8192)
    plugin, G = load_upscaler(
        args.checkpoint,
        select_device(args.device),
        "best" if args.best else "last",
        plugin_ref=args.plugin,
        overrides=[f"eval.tile={args.tile}"] if args.tile is not None else None,
    )
    pairs = _input_output_pairs(Path(args.input), Path(args.output))
    for src, dst in pairs:
        start = time.perf_counter()
        image = upscale_image(plugin, G, open_image(src))
        dst.parent.mkdir(parents=True, exist_ok=True)
        image.save(dst)
        console.print(
            f"{src} -> {dst} ({image.width}x{image.height}, {time.perf_counter() - start:.1f}s)", highlight=False
        )
    return 0


def cmd_classifier(args: argparse.Namespace) -> int:
    from gantk.config import DataConfig
    from gantk.data import load_dataset, locate
    from gantk.engine import select_device
    from gantk.engine.logger import console
    from gantk.metrics import classifier as clf

    check_range("--steps", args.steps, 1, 10_000_000)
    check_range("--width", args.width, 1, 1024)
    check_range("--image-size", args.image_size, 8, 1024)
    check_range("--seed", args.seed, 0, MAX_SEED)
    check_output(Path(args.output), folder=True)
    data = DataConfig(name=args.data, image_size=args.image_size, channels=args.channels)
    dataset = load_dataset(data, split="train")
    model, held = clf.train_classifier(
        dataset, steps=args.steps, seed=args.seed, device=select_device(args.device), width=args.width
    )
    info = {"data": args.data, "steps": args.steps, "seed": args.seed, "heldout_accuracy": held}
    shown = ""
    if locate(args.data)[1] == "mnist":  # a folder has no test split; the held-out share stands in for it
        info["test_accuracy"] = clf.dataset_accuracy(model, load_dataset(data, split="test"))[0]
        shown = f", test {info['test_accuracy']:.4f}"
    clf.save_classifier(model, args.output, info)
    console.print(f"wrote the classifier to {args.output} (held-out accuracy {held:.4f}{shown})", highlight=False)
    return 0


COMMANDS = {
    "plugins": cmd_plugins,
    "datasets": cmd_datasets,
    "train": cmd_train,
    "sample": cmd_sample,
    "arithmetic": cmd_arithmetic,
    "probe": cmd_probe,
    "translate": cmd_translate,
    "upscale": cmd_upscale,
    "classifier": cmd_classifier,
    "export": cmd_export,
    "eval": cmd_eval,
}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gantk: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.version:
        print(f"gantk {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    from gantk.engine.distributed import PeerFailed, world_from_env

    world = world_from_env()
    rank = f"[rank {world.rank}] " if world.distributed else ""
    level = logging.INFO if world.is_main else logging.WARNING  # progress notes once, not once per rank
    logging.basicConfig(level=level, format="gantk: %(message)s", stream=sys.stderr)
    warnings.showwarning = _show_warning
    if not world.is_main:  # every rank runs the same code: rank 0 says each warning once for all
        warnings.simplefilter("ignore")
    try:
        if getattr(args, "output", None) is not None and not args.output.strip():
            raise GantkError("-o is empty; give a file or folder to write.")
        return COMMANDS[args.command](args)
    except GantkError as exc:
        if os.environ.get("GANTK_DEBUG"):
            raise
        if not isinstance(exc, PeerFailed) and (world.is_main or not exc.same_on_every_rank):
            kind = "" if isinstance(exc, TrainingStopped) else "error: "  # a requested stop is not an error
            print(f"gantk: {kind}{rank}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gantk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("GANTK_DEBUG"):
            raise
        print(f"gantk: error: {rank}{_unexpected(exc, world.distributed)}", file=sys.stderr)
        return 1


def _unexpected(exc: Exception, distributed: bool) -> str:
    """One paragraph for an exception no check turned into a GantkError: a lost peer, a file system
    refusal, plugin code that raised (named by file and line: the plugin's bug, not the user's input),
    or, last, gantk's own."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if isinstance(exc, RuntimeError) and distributed and _lost_peer(exc):
        return (
            "lost contact with the other processes of this job (one of them failed or was stopped; its own "
            f"message is above): {first or type(exc).__name__}"
        )
    if isinstance(exc, OSError):  # a file system refusal no check foresaw (permissions, a vanished folder, a full disk)
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}. GANTK_DEBUG=1 shows where."
    frame = _plugin_frame(exc)
    if frame is not None:
        return (
            f"plugin code raised {what} (in {frame.filename}, line {frame.lineno}, {frame.name}()). That is a bug "
            "in the plugin, or an input it does not handle; GANTK_DEBUG=1 shows the traceback."
        )
    return f"unexpected {what}. This is a gantk bug: GANTK_DEBUG=1 shows the traceback to report."


def _plugin_frame(exc: BaseException):
    """The innermost frame of ``exc``'s traceback that runs plugin code (a plugin folder, a built-in
    plugin, or a package a plugin came from), as a ``traceback.FrameSummary``; None if none does."""
    import traceback

    from gantk.registry import plugin_modules

    packages = plugin_modules()
    found = None
    tb = exc.__traceback__
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name.startswith(("gantk_plugins.", "gantk.plugins.")) or name.partition(".")[0] in packages:
            found = tb
        tb = tb.tb_next
    if found is None:
        return None
    return traceback.extract_tb(found, limit=1)[0]


#: how gloo and NCCL report that another rank went away (it prints its own error)
LOST_PEER = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted")


def _lost_peer(exc: RuntimeError) -> bool:
    import torch.distributed as dist

    return isinstance(exc, dist.DistError) or any(marker in str(exc) for marker in LOST_PEER)


if __name__ == "__main__":
    sys.exit(main())
