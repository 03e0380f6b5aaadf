"""The run folder: created when training is sure to start, owned by one process while it trains.

Two ``gantk train`` processes writing one folder would interleave their metrics and overwrite each
other's checkpoints while both report success, so a run folder has an owner: an exclusive ``flock`` on
``<run>/.lock``, held while training and released by the kernel when the process ends, however it
ends (a SIGKILLed job leaves no stale lock behind). A second process is refused, naming the owner.

``--resume`` on a folder with no complete checkpoint yet (a job preempted before its first save, or
not started at all) starts the run, so one command serves a cluster job's first start and every
restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from gantk.config import dump_yaml
from gantk.errors import GantkError
from gantk.io import checkpoint as ckpt

LOCK = ".lock"
FINISHED = "finished.json"  # written once the final checkpoint's samples and evaluation are done
HOOKS_DONE = "hooks.json"  # the last checkpoint step whose hooks all ran, and the hooks' states after them


class RunFolder:
    """``path`` as this process's run folder; :meth:`open` creates and locks it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.created = False  # this process made the folder: it removes it again if setup fails
        self._lock_file: Any = None

    def open(self, resume: bool | str) -> Path | None:
        """Create and lock the folder; returns the checkpoint to resume from (None: start at step 0).

        ``resume``: True for the newest checkpoint, or the name (``step_00000400``, ``best``) or path of
        one checkpoint of this run."""
        if self.path.exists() and not self.path.is_dir():
            raise GantkError(f"--out {self.path} is a file; a run folder is a folder. Choose another --out.")
        self.created = not self.path.exists()
        try:
            (self.path / "samples").mkdir(parents=True, exist_ok=True)
            self._lock()
            probe = self.path / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            self.close(failed=True)
            raise GantkError(f"cannot write to run folder {self.path}: {exc.strerror or exc}.") from None
        existing = ckpt.step_checkpoints(self.path)
        if isinstance(resume, str):
            return self._named(resume, existing)
        if resume:
            if not existing:
                from gantk.engine.logger import console

                console.print(
                    f"--resume: {self.path} holds no complete checkpoint yet; starting the run at step 0",
                    highlight=False,
                )
                self.tidy(0)
                return None
            return existing[-1]
        if existing:
            self.close()
            raise GantkError(
                f"run folder {self.path} already holds checkpoints (newest {existing[-1].name}); pass --resume to "
                "continue it, or choose another --out. Nothing was overwritten."
            )
        self.tidy(0)  # a run that never saved left metrics behind: they belong to no checkpoint
        return None

    def resume_target(self, resume: bool | str) -> Path | None:
        """The checkpoint :meth:`open` would return for ``resume``, found without creating or locking anything
        (``--resume --dry-run``); a named one that cannot be resumed is refused the same way."""
        existing = ckpt.step_checkpoints(self.path) if self.path.is_dir() else []
        if isinstance(resume, str):
            return self._named(resume, existing)
        return existing[-1] if resume and existing else None

    def _named(self, name: str, existing: list[Path]) -> Path:
        """``--resume NAME``: a complete checkpoint of this run, with its training state."""
        root = self.path / "checkpoints"
        folder = root / name if (root / name).exists() else Path(name)
        problem = ""
        if not folder.is_dir():
            problem = "there is no such checkpoint"
        elif not folder.resolve().is_relative_to(root.resolve()):
            problem = f"it is not a checkpoint of this run (not under {root})"
        elif not ckpt.is_complete(folder):
            problem = f"it is incomplete (missing or short files against its {ckpt.MANIFEST})"
        elif not (folder / f"{ckpt.STATE}.json").is_file():
            problem = "it holds weights only, no training state to continue"
        if problem:
            self.close()
            names = [p.name for p in existing] + (["best"] if ckpt.is_complete(root / "best") else [])
            raise GantkError(
                f"--resume {name}: {problem}. The checkpoints of {self.path} are: "
                f"{', '.join(names) or 'none'} (give one of these names, or --resume alone for the newest)."
            )
        return folder

    def set_aside_after(self, step: int) -> Path | None:
        """Move the step checkpoints past ``step`` (a run resumed from an earlier one) to
        ``checkpoints/superseded/``, with their metrics lines: the resumed run writes new ones under the
        same names, and rotation would otherwise count the old ones as the newest. Nothing is deleted."""
        later = [p for p in ckpt.step_checkpoints(self.path) if (ckpt.recorded_step(p) or 0) > step]
        if not later:
            return None
        aside = self.path / "checkpoints" / "superseded"
        n = 1
        while aside.exists():
            n += 1
            aside = self.path / "checkpoints" / f"superseded-{n}"
        aside.mkdir(parents=True)
        for folder in later:
            os.replace(folder, aside / folder.name)
        metrics = self.path / "metrics.jsonl"
        if metrics.exists():
            past = [line for line in metrics.read_text(encoding="utf-8").splitlines() if _line_step(line) > step]
            (aside / "metrics.jsonl").write_text("".join(line + "\n" for line in past), encoding="utf-8")
        return aside

    def mark_finished(self, step: int) -> None:
        """Record that the run reached ``step`` with its final samples and evaluation done."""
        tmp = self.path / f".{FINISHED}.tmp"
        tmp.write_text(json.dumps({"step": step}) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / FINISHED)

    def mark_hooks_done(self, step: int, states: dict[str, Any]) -> None:
        """Record that every hook due after checkpoint ``step`` ran, and the hooks' states after them."""
        tmp = self.path / f".{HOOKS_DONE}.tmp"
        tmp.write_text(json.dumps({"step": step, "states": states}) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / HOOKS_DONE)

    def hooks_done(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, states)`` that :meth:`mark_hooks_done` recorded; None when nothing (readable) was."""
        try:
            record = json.loads((self.path / HOOKS_DONE).read_text(encoding="utf-8"))
            step, states = record["step"], record["states"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (step, states) if isinstance(step, int) and isinstance(states, dict) else None

    def finished_at(self) -> int | None:
        """The step :meth:`mark_finished` recorded (None: the run never finished, or was killed in its
        final evaluation, after the final checkpoint)."""
        try:
            step = json.loads((self.path / FINISHED).read_text(encoding="utf-8"))["step"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return step if isinstance(step, int) else None

    def _lock(self) -> None:
        fh = open(self.path / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held open while training
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "unknown"
            fh.close()
            raise GantkError(
                f"run folder {self.path} is in use by another gantk train process ({owner}); two runs in one "
                "folder would overwrite each other's checkpoints. Wait for it to finish, or choose another --out."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        fh.flush()
        self._lock_file = fh

    def close(self, failed: bool = False) -> None:
        """Release the lock; ``failed`` before anything was saved removes a folder this process created."""
        if failed and self.created and not ckpt.step_checkpoints(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def write_config(self, cfg: Any) -> None:
        """``config.yaml``, replaced in one rename: a refused resume never leaves it half-changed."""
        tmp = self.path / ".config.yaml.tmp"
        dump_yaml(cfg, tmp)
        os.replace(tmp, self.path / "config.yaml")

    def tidy(self, step: int) -> None:
        """Drop what a killed run left behind: temporary checkpoint folders, metrics past ``step``."""
        for tmp in (self.path / "checkpoints").glob(".*"):
            shutil.rmtree(tmp, ignore_errors=True)
        metrics = self.path / "metrics.jsonl"
        if not metrics.exists():
            return
        kept = [line for line in metrics.read_text(encoding="utf-8").splitlines() if -1 < _line_step(line) <= step]
        metrics.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _line_step(line: str) -> int:
    """The step of a ``metrics.jsonl`` line; -1 for a line cut short by a kill."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return -1
