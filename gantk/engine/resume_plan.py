"""``gantk train ... --resume --dry-run``: what a resume would restore, read without training or locking.

A resume continues one checkpoint: its weights, optimizer moments, schedules, data position, random
state and step. The config it continues with is the run's ``config.yaml`` under this command's
``--config``/``--set`` layers; a difference from the checkpoint's own config is either **accepted** (how
the run goes on: ``train.max_steps``, learning rates, logging) or **refused**, because the networks it
builds no longer have the checkpoint's shapes (``model.ngf``, ``data.channels``): loading the weights
would fail. Which is which is measured, not listed: the networks are built on PyTorch's ``meta`` device
(shapes only, no memory) from the checkpoint's config with each differing key changed alone, and
compared with the checkpoint's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gantk.config import Config, to_dict, with_values
from gantk.engine.run_folder import RunFolder
from gantk.errors import GantkError
from gantk.io import checkpoint as ckpt
from gantk.plugin import GanPlugin
from gantk.registry import saved_config


@dataclass
class ResumePlan:
    """What ``--resume`` would do for one run folder."""

    run: Path
    checkpoint: Path | None  # None: the run starts at step 0
    step: int = 0
    max_steps: int = 0
    data: dict[str, int] = field(default_factory=dict)  # the data position: epoch, batches taken in it
    accepted: list[str] = field(default_factory=list)  # "key: old -> new"
    refused: list[str] = field(default_factory=list)  # "key: old -> new (why)"

    def describe(self) -> str:
        """The plan in plain lines, as ``--dry-run`` prints it."""
        if self.checkpoint is None:
            return f"--resume --dry-run: {self.run} holds no complete checkpoint; a resume would start at step 0."
        lines = [
            f"--resume --dry-run: {self.run}",
            f"  checkpoint   {self.checkpoint}",
            f"  step         {self.step} of train.max_steps={self.max_steps}"
            + ("  (nothing left to train)" if self.step >= self.max_steps else ""),
            f"  data         epoch {self.data.get('epoch', 0)}, {self.data.get('batch', 0)} batches taken in it",
            "  restores     weights, EMA copies, optimizer moments, schedules, random state, counters",
        ]
        if not self.accepted and not self.refused:
            lines.append("  config       the checkpoint's, unchanged")
        lines += [f"  accepted     {change}" for change in self.accepted]
        lines += [f"  REFUSED      {change}" for change in self.refused]
        lines.append(
            "a resume would be refused: undo the refused changes (or train a new run with another --out)."
            if self.refused
            else "nothing was trained or written; run the same command without --dry-run to resume."
        )
        return "\n".join(lines)


def differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two plain configs, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new), key=str):
            out.update(differences(old.get(key), new.get(key), f"{prefix}{key}."))
        return out
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def network_shapes(cls: type[GanPlugin], cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every network tensor's shape, built on the meta device (nothing allocated, no random draw)."""
    plugin = cls(cfg)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        nets = plugin.build_networks()
    return {f"{n}.{k}": tuple(v.shape) for n, net in nets.items() for k, v in net.state_dict().items()}


def plan_resume(cls: type[GanPlugin], cfg: Config, run: Path, resume: bool | str) -> ResumePlan:
    """The checkpoint ``--resume`` (``resume``: True or a name) would continue in ``run``, and how ``cfg`` (the
    config this command layered) differs from the checkpoint's, each difference accepted or refused."""
    folder = RunFolder(run).resume_target(resume)
    plan = ResumePlan(run, folder, max_steps=cfg.train.max_steps)
    if folder is None:
        return plan
    meta = ckpt.read_meta(folder)
    state = ckpt.read_training_state(folder)
    plan.step, plan.data = int(state["step"]), dict(state.get("data") or {})
    saved = saved_config(cls, meta["config"], folder)
    changed = {k: v for k, v in differences(to_dict(saved), to_dict(cfg)).items() if k != "plugin"}
    if not changed:
        return plan
    shapes = network_shapes(cls, saved)
    for key, (old, new) in changed.items():
        try:
            same, why = network_shapes(cls, with_values(saved, {key: new}, "--dry-run")) == shapes, ""
        except (GantkError, RuntimeError, ValueError, TypeError) as exc:
            same, why = False, f"the networks cannot be built: {exc}"
        if same:
            plan.accepted.append(f"{key}: {old!r} -> {new!r}")
        elif not _placeholder(old, new):
            why = why or "changes the networks' shapes: the weights would not load"
            plan.refused.append(f"{key}: {old!r} -> {new!r} ({why})")
    return plan


def _placeholder(old: Any, new: Any) -> bool:
    """``data.channels: 3 -> 0``: the value left for the data to fill in, which a resume fills again as the
    checkpoint's run did (only where the networks need it; a 0 that builds the same is a real change)."""
    return new in (0, "") and old not in (0, "")
