"""Shared by the benchmark scripts: train a plugin briefly and read its measured rate back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from gantk.engine import Trainer


def steps_per_second_after(plugin, warmup: int) -> float:
    """Train ``plugin`` in a temporary run folder; steps/s over the steps after ``warmup``.

    Set ``train.log_every`` to ``warmup`` (or the timed steps): each logged interval's rate was taken
    after a device sync, so summing the intervals past the warm-up times exactly the timed steps.
    """
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(plugin, Path(tmp) / "run").fit()
        records = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in records if r["step"] > warmup]
    # each rate covers the steps since the record before it: the first timed interval starts at the last
    # record of the warm-up (step == warmup), not at the first record of the run (step 1)
    start = [r for r in records if r["step"] <= warmup][-1]
    seconds = sum((r["step"] - p["step"]) / r["steps_per_s"] for p, r in zip([start, *timed], timed, strict=False))
    return (timed[-1]["step"] - warmup) / seconds
