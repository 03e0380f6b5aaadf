"""A run's checkpoints, written from and restored into its explicit state.

:mod:`gantk.engine.snapshot` knows how the state's tensors become files and back; this module knows what
else a checkpoint of a *run* is: its ``config.json`` (the plugin's origin, the resolved config, the step,
the ``data.transforms`` file's hash, the hooks' states), every rank's random state gathered to rank 0,
the EMA copies as they sample, and on restore what the run folder must do about checkpoints written after
the resumed one and hooks that did not finish after it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gantk import __version__
from gantk.config import to_dict
from gantk.engine import distributed, snapshot
from gantk.engine.hooks import hook_states, restore_hook_states
from gantk.engine.logger import console
from gantk.engine.run_folder import RunFolder
from gantk.engine.sampler import TrainingSampler
from gantk.io import checkpoint as ckpt
from gantk.plugin import GanPlugin, Hook
from gantk.registry import PluginSpec


@dataclass
class Checkpoints:
    """Writes the checkpoints of the run in ``folder`` and restores one; every rank holds one."""

    plugin: GanPlugin
    spec: PluginSpec  # how to find the plugin again, recorded in every checkpoint
    folder: RunFolder
    state: snapshot.RunState
    world: distributed.World
    sampler: TrainingSampler
    transforms_sha256: str = ""  # of the data.transforms file: a resume says when it changed
    hooks: list[Hook] = field(default_factory=list)  # their states are saved and restored

    @property
    def run(self) -> Path:
        return self.folder.path

    def meta(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A checkpoint's ``config.json``: the plugin, the resolved config, the step, the hooks' states."""
        hooks = hook_states(self.hooks)
        return {
            "gantk_version": __version__,
            "plugin": self.spec.to_meta(),
            "generator": self.plugin.generator,
            "step": self.state.step,
            "config": to_dict(self.plugin.cfg),
            **({"data_transforms_sha256": self.transforms_sha256} if self.transforms_sha256 else {}),
            **({"hooks": hooks} if hooks else {}),
            **(extra or {}),
        }

    def write(self, folder: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write ``checkpoints/step_XXXXXXXX`` (or ``folder``). Collective: every rank calls it and hands in
        its random state; rank 0 writes, and the others wait for it."""
        rngs = distributed.gather(snapshot.rng_state(self.state), self.world)
        step = self.state.step

        def write() -> Path:
            ema_modules = {name: self.sampler.generator(name, step) for name in self.state.emas}
            return snapshot.write(
                folder or self.run / "checkpoints" / f"step_{step:08d}",
                self.state,
                meta=self.meta(extra),
                rngs=rngs,
                ema_modules=ema_modules,
                run=self.run,
                keep=self.plugin.cfg.train.keep_checkpoints,
            )

        return distributed.main_first(write, self.world)

    def restore(self, folder: Path, device: torch.device) -> None:
        """Load ``folder`` into the state. Rank 0 then says what differs from the run that wrote it (the
        ``data.transforms`` file) and sets the run's later checkpoints aside: training goes on from here."""
        note = snapshot.restore(folder, self.state, device, self.world.rank, self.world.size)
        if not self.world.is_main:
            return
        recorded = ckpt.read_meta(folder).get("data_transforms_sha256")
        if recorded and recorded != self.transforms_sha256:
            warnings.warn(
                f"data.transforms={self.plugin.cfg.data.transforms or '(none)'} is not the pipeline checkpoint "
                f"{folder} was trained with (SHA-256 {recorded[:12]}... then, "
                f"{(self.transforms_sha256 or 'none')[:12]}... now): the file was edited or replaced since, so the "
                "resumed run is not the one an uninterrupted run would have been. Restore the file to continue it "
                "exactly.",
                stacklevel=3,
            )
        if note:
            console.print(note, highlight=False)
        aside = self.folder.set_aside_after(self.state.step)
        if aside is not None:
            console.print(
                f"--resume {folder.name}: the later checkpoints of this run were moved to {aside} (kept, not "
                "deleted); training continues from this one and writes new ones under their names",
                highlight=False,
            )
        self.folder.tidy(self.state.step)
        print_path = folder.relative_to(self.run) if folder.is_relative_to(self.run) else folder
        console.print(f"resuming from {print_path} at step {self.state.step}", highlight=False)

    def restore_hooks(self, folder: Path) -> bool:
        """The hooks' states as they were after the hooks of the resumed checkpoint's step ran. When that is
        not recorded (killed in them, or an older checkpoint resumed), as the checkpoint was written; then
        returns True: the hooks due at that step must run again first."""
        done = distributed.broadcast(self.folder.hooks_done(), self.world)
        pending = not (done is not None and done[0] == self.state.step)
        saved = (ckpt.read_meta(folder).get("hooks") or {}) if pending else done[1]
        for key in restore_hook_states(self.hooks, saved):
            if self.world.is_main:
                warnings.warn(
                    f"checkpoint {folder} holds the state of hook {key.partition(':')[2]} (position "
                    f"{key.partition(':')[0]}), which this run does not have there: that state is not restored.",
                    stacklevel=3,
                )
        return pending

    def mark_hooks_done(self) -> None:
        """After a checkpoint step's hooks all ran: the record that a resume neither repeats nor loses them."""
        if self.world.is_main:
            self.folder.mark_hooks_done(self.state.step, hook_states(self.hooks))
