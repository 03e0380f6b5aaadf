"""Where training numbers go: ``metrics.jsonl``, the experiment trackers (TensorBoard, MLflow, W&B:
:mod:`gantk.engine.trackers`), and the console (bar or plain lines).

Loss terms are summed on the device by the training step (``gantk.engine.step.DeviceMeter``) and read
back only every ``log_every`` steps, so logging costs one synchronisation per interval. In a
data-parallel run the interval means are averaged over the ranks, and rank 0 alone writes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.progress import Progress, TextColumn

from gantk.console import bar_columns, console, format_seconds, set_live
from gantk.engine.trackers import Tracker, numbers

__all__ = ["RunLogger", "console", "format_seconds"]


class RunLogger:
    """``main=False`` (ranks other than 0) writes nothing."""

    def __init__(
        self,
        run: Path,
        start_step: int,
        max_steps: int,
        trackers: list[Tracker] | None = None,
        main: bool = True,
    ) -> None:
        self.run = run
        self.main = main
        self.jsonl = open(run / "metrics.jsonl", "a", encoding="utf-8") if main else None  # noqa: SIM115
        self.max_steps = max_steps
        self.last_step, self.last_time = start_step, time.perf_counter()
        self.start_step, self.start_time = start_step, self.last_time
        self.trackers = list(trackers or []) if main else []
        self.progress: Progress | None = None
        self.last_interval: tuple[int, str, dict[str, float]] = (-1, "", {})  # step, phase, values: the alarms read it
        if not main:
            return
        if console.is_terminal:
            self.progress = Progress(
                *bar_columns(),
                TextColumn("{task.fields[losses]}"),
                console=console,
                transient=False,
            )
            self.task = self.progress.add_task("train", total=max_steps, completed=start_step, rate="", losses="")
            self.progress.start()
            set_live(self.progress)  # an evaluation's feature passes add their line to this bar

    def log_interval(self, step: int, phase: str, values: dict[str, float]) -> dict[str, float]:
        """Write one interval's values (means over it, learning rates) everywhere, with the rate and ETA."""
        now = time.perf_counter()
        values = dict(values)
        self.last_interval = (step, phase, values)
        if not self.main:
            return values
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        self.write(step, {"phase": phase, "steps_per_s": rate, **values})
        done = step - self.start_step
        overall = done / max(now - self.start_time, 1e-9)
        eta = (self.max_steps - step) / overall if overall > 0 else 0.0
        losses = " ".join(f"{k} {v:.4g}" for k, v in values.items() if not k.startswith(("lr/", "runs/")))
        if self.progress is not None:
            self.progress.update(self.task, completed=step, rate=f"{rate:.2f} it/s", losses=losses)
        else:
            console.print(
                f"step {step}/{self.max_steps} [{phase}] {rate:.2f} it/s "
                f"elapsed {format_seconds(now - self.start_time)} ETA {format_seconds(eta)} | {losses}",
                highlight=False,
                soft_wrap=True,
            )
        return values

    def write(self, step: int, values: dict) -> None:
        if self.jsonl is None:
            return
        record = {"step": step, "time": time.time(), **values}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        scalars = numbers(values)
        for tracker in self.trackers:
            tracker.log_scalars(step, scalars)

    def config(self, config: dict) -> None:
        """The resolved config, as each tracker's parameters."""
        for tracker in self.trackers:
            tracker.log_config(config)

    def image(self, step: int, key: str, path: Path) -> None:
        """An image the run wrote (a sample grid), for each tracker."""
        for tracker in self.trackers:
            tracker.log_image(step, key, path)

    def checkpoint(self, path: Path) -> None:
        """The final checkpoint's folder, for each tracker."""
        for tracker in self.trackers:
            tracker.log_checkpoint(path)

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def message(self, text: str) -> None:
        if self.main:
            console.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            set_live(None)
            self.progress.stop()
        for tracker in self.trackers:
            tracker.close()
        if self.jsonl is not None:
            self.jsonl.close()


def interval_values(meter: Any, world: Any, optimizers: dict, phase: Any, since: int, step: int) -> dict[str, float]:
    """One log interval's numbers: the meter's means (one host read, averaged over the ranks), each
    optimizer's learning rate, and how often each lazy update ran since step ``since``. ``kimg`` (images
    shown to D) is the caller's: the global batch is in the config."""
    from gantk.engine import distributed

    values = meter.means(lambda means: distributed.mean_over_ranks(means, world))
    lrs = {f"lr/{k}": float(o.param_groups[0]["lr"]) for k, o in optimizers.items()}
    runs = {f"runs/{k}": n for k, n in phase.lazy_runs(since, step).items()}
    return {**values, **lrs, **runs}
