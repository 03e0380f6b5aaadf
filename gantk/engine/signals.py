"""Stopping a run cleanly: the first SIGINT or SIGTERM (Ctrl-C, a scheduler's preemption notice) lets the
step finish and the run save a checkpoint; a second one stops at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_after_step(ask: Callable[[int], None]) -> dict[int, Any]:
    """Install handlers that call ``ask(signum)`` on the first stop signal and raise KeyboardInterrupt on
    the next; returns the previous handlers for :func:`restore` (none off the main thread, where Python
    cannot set them)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    asked = []

    def handler(signum: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)
        ask(signum)

    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers :func:`stop_after_step` replaced."""
    for sig, old in previous.items():
        signal.signal(sig, old)
