"""``gantk train PLUGIN``: train a plugin with the shared engine, on one process or, with ``--nproc N``,
on N local processes under torchrun's launcher."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from gantk.device import DEVICE_CHOICES
from gantk.errors import GantkError


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--device", choices=DEVICE_CHOICES, help="sets train.device")
    p.add_argument("--seed", type=int, help="sets train.seed")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="with --resume: print the checkpoint, step and data position a resume would restore, and which "
        "config changes it would accept or refuse; then exit without training",
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes on this machine, one per GPU (gloo on CPU): hands off to "
        "`torchrun --standalone --nproc_per_node N -m gantk train ...`; train.batch_size stays the global batch",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.plugin is None and isinstance(args.resume, str):  # gantk train --resume plugins/x: a bare --resume
        args.plugin, args.resume = args.resume, True
    if isinstance(args.resume, str) and not args.resume.strip():
        raise GantkError("--resume was given an empty checkpoint name; give one (step_00000400, best) or none.")
    if args.plugin is None:
        raise GantkError("gantk train needs a plugin: a folder such as plugins/dcgan, a registered name, or dist:name.")
    if args.dry_run and not args.resume:
        raise GantkError("--dry-run shows what a resume would restore: give it with --resume.")
    if args.nproc is not None:
        if args.nproc < 1:
            raise GantkError(f"--nproc must be at least 1; got {args.nproc}.")
        if args.nproc > 1 and not (args.print_config or args.dry_run):
            return launch_torchrun(args.nproc, args.argv, args.device)
    from gantk import registry
    from gantk.config import to_dict
    from gantk.engine.trainer import train

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
    if args.dry_run:
        from gantk.engine.resume_plan import plan_resume

        plan = plan_resume(cls, cfg, out, args.resume)
        print(plan.describe())
        return 2 if plan.refused else 0
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
    import torch
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

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
        torchrun(launcher)
    except SignalException as exc:  # SIGTERM/SIGINT to this process: passed on, the ranks said how they stopped
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        if debug:
            raise
        codes = [failure.exitcode for _, failure in sorted(exc.failures.items())]
        # a rank that exited with a code is the cause; the launcher then stops the others with SIGTERM (one
        # may be stopped just after printing its own message), so a signal counts only when no rank exited
        failed = next((c for c in codes if c > 0), None) or next((c for c in codes if c), 1)
        return failed if failed > 0 else 128 - failed  # killed by signal N: the shell's 128 + N
    return 0
