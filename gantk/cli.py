"""The ``gantk`` command line: the parser built from :mod:`gantk.commands` (one module per verb), and
the mapping of every command's errors to one paragraph and an exit code.

Errors a user can fix print one paragraph and exit with code 2; there is no traceback unless
``GANTK_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from gantk import __version__
from gantk.commands import add_parsers
from gantk.commands.common import fetch_hub_checkpoint
from gantk.errors import GantkError, TrainingStopped


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gantk", description="A PyTorch toolkit for GANs.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser


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
    for client in ("httpx", "httpx2"):  # huggingface_hub's HTTP client logs every request at INFO
        logging.getLogger(client).setLevel(logging.WARNING)
    warnings.showwarning = _show_warning
    if not world.is_main:  # every rank runs the same code: rank 0 says each warning once for all
        warnings.simplefilter("ignore")
    try:
        if getattr(args, "output", None) is not None and not args.output.strip():
            raise GantkError("-o is empty; give a file or folder to write.")
        fetch_hub_checkpoint(args)  # hf://NAME[@revision]: downloaded and verified before the command runs
        return args.run(args)
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
