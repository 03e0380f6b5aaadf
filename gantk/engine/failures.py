"""What the loop does when something fails: nothing trained is lost, and the message says what to do.

Three moments, three policies:

* **the first step of a process** (:func:`first_step`): a config the networks or the data cannot take
  fails here, after every range was checked but before anything was trained; it is explained in one
  paragraph and nothing needs saving;
* **between steps** (:func:`saved_on_failure`): a failing sample grid, evaluation or hook saves the
  step just finished and stops naming that checkpoint;
* **drawing a batch** (:func:`draw_batches`): a step's batches are taken whole; a failing draw puts
  the data position back, so the checkpoint saved for it resumes at the same batch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gantk.data.loader import BatchStream
from gantk.engine.augment import Augmenter
from gantk.engine.graph import StepRunner
from gantk.engine.snapshot import RunState
from gantk.engine.step import DeviceMeter
from gantk.errors import DataError, GantkError, NonFiniteError, RunFailed, StepFailed, TrainingStopped
from gantk.plugin import Batch, Phase


def first_step(
    runner: StepRunner, phase: Phase, raws: list[Batch], step: int, plugin: str, augmenter: Augmenter | None
) -> None:
    """Run the first training step of this process, its failure explained: nothing was trained by this
    command, so stopping loses nothing."""
    try:
        runner(phase, raws, step)
    except (GantkError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("GANTK_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise StepFailed(
            f"the first training step of plugin '{plugin}' failed: {type(exc).__name__}: {first}. "
            "Nothing was trained by this command, and no checkpoint changed. This is usually a combination of "
            "settings the networks cannot take (depths for the image size, sizes for the data); check the "
            "model.* and data.* values (GANTK_DEBUG=1 shows where it failed)."
        ) from exc
    if augmenter is not None and augmenter.adaptive and not augmenter.observed:
        raise StepFailed(
            f"train.augment.adaptive (ADA) steers p by D's logits on real images, and plugin '{plugin}' "
            "reports none: its D loss must call ctx.observe_real(real_logits). Nothing was trained by this "
            "command. Use a fixed train.augment.p instead, or report the logits."
        )


@contextlib.contextmanager
def saved_on_failure(step: int, last_saved: Path | None, save: Callable[[], Path], distributed: bool) -> Iterator[None]:
    """A failure in the block saves step ``step`` (unless ``last_saved`` is it) and stops with an error
    naming that checkpoint. Under torchrun it propagates as is: a save is collective, and the ranks cannot
    agree on one from here."""
    try:
        yield
    except (NonFiniteError, TrainingStopped, KeyboardInterrupt):
        raise
    except Exception as exc:
        if distributed:
            raise
        current = f"step_{step:08d}"
        kept = last_saved if last_saved is not None and last_saved.name == current else save()
        raise RunFailed(
            f"{type(exc).__name__ if not isinstance(exc, GantkError) else 'error'} after step {step}: "
            f"{exc} The training is saved: checkpoint {kept}. Fix the cause and continue with the same "
            "command and --resume."
        ) from exc


def draw_batches(
    stream: BatchStream,
    count: int,
    to_device: Callable[[Batch], Batch],
    on_error: str,
    guard: contextlib.AbstractContextManager | None,
) -> list[Batch]:
    """The ``count`` batches of the next step. A failing draw (an item that fails its transforms, a file
    deleted mid-run) puts the data position back to before this step and raises inside ``guard`` (which
    saves the steps trained so far; ``None`` for a process's first step, where nothing was trained)."""
    position = stream.state_dict()
    try:
        return [to_device(next(stream)) for _ in range(count)]
    except Exception as exc:
        stream.load_state_dict(position)  # a step's batches are taken whole: its checkpoint takes none
        error = exc
        if isinstance(exc, DataError) and on_error == "raise":
            error = DataError(f"{exc} (with data.on_error=skip such an item is replaced by the next one that reads)")
        with guard or contextlib.nullcontext():
            if error is exc:
                raise
            raise error from None


def check_nonfinite(meter: DeviceMeter, state: RunState, policy: str, say: Callable[[str], None], run: Path) -> None:
    """Read the device's count of updates skipped for a non-finite loss (one host read), add it to the
    run's count, and say so; under ``policy="stop"`` (``train.nonfinite``) stop instead.

    Called at log intervals, before every checkpoint and at the end. A skipped update changed nothing, so
    under ``stop`` the weights are still those of before the bad step, but no checkpoint is written past it.
    """
    for net, (count, first) in meter.skipped().items():
        state.nonfinite_skipped += count
        if policy == "stop":
            raise NonFiniteError(
                f"the loss of '{net}' is not finite at step {first}; stopped (train.nonfinite=stop). The "
                f"newest checkpoint in {run / 'checkpoints'} is intact."
            )
        say(
            f"step {first}: non-finite loss for '{net}'; update skipped"
            + (f" ({count} updates skipped by step {state.step})" if count > 1 else "")
        )
