"""The one console every gantk command writes to (stderr), and progress for long passes on it.

Training's progress bar (:class:`gantk.engine.logger.RunLogger`) and an evaluation's feature passes
share this console. Rich allows one live display at a time, so a pass that starts while training's bar
is live adds its own line to that bar (:func:`progress`) instead of opening a second one. Off a terminal
(CI, a log file) a pass prints a line when it starts, one at most every 30 seconds, and one at the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)

#: the live progress display (training's bar) that a pass adds its task to; None when none is live
_live: Progress | None = None

#: seconds between two progress lines off a terminal
PLAIN_EVERY = 30.0


def format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


def bar_columns() -> tuple[ProgressColumn, ...]:
    """The columns of every progress bar: description, bar, count, rate, elapsed time, ETA (training adds
    its losses after them); each task carries a ``rate`` field."""
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )


def set_live(display: Progress | None) -> None:
    """Register (or with None, unregister) the live display that passes should join."""
    global _live
    _live = display


@contextlib.contextmanager
def progress(description: str, total: int, unit: str = "images") -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``: ``n`` more of ``total`` done. Shows a bar with the rate and an ETA."""
    start = time.perf_counter()
    done = 0
    if console.is_terminal:
        display = _live if _live is not None else Progress(*bar_columns(), console=console, transient=True)
        own = display is not _live
        if own:
            display.start()
        task = display.add_task(description, total=total, rate="", losses="")

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.perf_counter() - start, 1e-9)
            display.update(task, completed=done, rate=f"{rate:.1f} {unit}/s")

        try:
            yield advance
        finally:
            display.remove_task(task)
            if own:
                display.stop()
    else:
        console.print(f"{description}: {total} {unit}", highlight=False, soft_wrap=True)
        last = start

        def advance(n: int) -> None:
            nonlocal done, last
            done += n
            now = time.perf_counter()
            if now - last >= PLAIN_EVERY and done < total:
                last = now
                rate = done / (now - start)
                console.print(
                    f"{description}: {done}/{total} {unit}, {rate:.1f} {unit}/s, ETA {format_seconds((total - done) / rate)}",
                    highlight=False,
                    soft_wrap=True,
                )

        yield advance
    seconds = time.perf_counter() - start
    console.print(
        f"{description}: {done} {unit} in {format_seconds(seconds)} ({done / max(seconds, 1e-9):.1f} {unit}/s)",
        highlight=False,
        soft_wrap=True,
    )
