"""A saved checkpoint scored the way training scores it (the plugin's ``evaluate``), with its own config.

The networks belong to the checkpoint: only how they are evaluated (``eval.*``) and where the data is
(``data.*``) may change, so the scores stay comparable with the ones training logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gantk import __version__
from gantk.errors import GantkError
from gantk.io import checkpoint as ckpt
from gantk.io.generators import load_generators
from gantk.plugin import EvalContext

#: the config sections an evaluation of a checkpoint may change: how to evaluate, and where the data is
EVAL_SECTIONS = ("eval", "data")


@dataclass
class CheckpointScores:
    """What one evaluation of a checkpoint found: the metrics, and the protocol card that says how."""

    plugin: str
    step: int
    metrics: dict[str, float]
    protocol: dict[str, Any] = field(default_factory=dict)

    def record(self, source: str) -> dict[str, Any]:
        """``metrics.json``: the checkpoint, its step, the metrics and the protocol."""
        return {"checkpoint": source, "step": self.step, **self.metrics, "protocol": self.protocol}


def check_eval_overrides(overrides: list[str]) -> None:
    """Refuse a ``--set KEY=VALUE`` outside :data:`EVAL_SECTIONS`, naming it."""
    for item in overrides:
        if item.partition("=")[0].strip().split(".")[0] not in EVAL_SECTIONS:
            raise GantkError(
                f"gantk eval --set {item}: only {' and '.join(f'{s}.*' for s in EVAL_SECTIONS)} keys can change "
                "at evaluation; the rest of the config belongs to the checkpoint (its networks were built with it)."
            )


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: Path,
    device: torch.device,
    which: str = "last",
    use_ema: bool = True,
    plugin_ref: str | None = None,
    overrides: list[str] | None = None,
) -> CheckpointScores:
    """Run the plugin's evaluation on every generator it samples with that ``checkpoint`` holds; the
    plugin's reports go under ``out_dir / "eval"``."""
    check_eval_overrides(overrides or [])
    plugin, nets = load_generators(checkpoint, device, use_ema, which, plugin_ref, overrides)
    folder = ckpt.find_checkpoint(Path(checkpoint), which)
    meta = ckpt.read_meta(folder)
    step = int(meta.get("step") or 0)
    ctx = EvalContext(device, step, out_dir / "eval", run_dir=out_dir)
    used = ckpt.generator_weights(folder, plugin.generator, use_ema=use_ema)
    # a generator-only export of the EMA weights stores them under the plain name, and says so in its meta
    ema = used.name.endswith("_ema.safetensors") or bool((meta.get("exported") or {}).get("ema"))
    ctx.protocol.update(generator="ema" if ema else "raw", gantk=__version__)
    with torch.no_grad():
        metrics = plugin.evaluate(nets, ctx)
    if not metrics:
        raise GantkError(f"the {plugin.name} plugin defines no evaluation metrics.")
    return CheckpointScores(plugin.name, step, metrics, ctx.protocol)
