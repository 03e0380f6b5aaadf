"""Sampling while training: the generator that samples and evaluates (its EMA copy, batch norm
re-estimated, when EMA is on) and eval mode that leaves the training untouched.

Eval mode keeps sampling free of side effects (no batch-norm statistics updated, no dropout noise drawn,
training's random streams restored), so when or how often samples are taken never changes the training.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from gantk.engine import distributed
from gantk.engine.assembly import RunParts
from gantk.engine.ema import recalibrate_batchnorm
from gantk.engine.step import autocast
from gantk.plugin import GanPlugin


class TrainingSampler:
    """What hooks and checkpoints sample with during a run of ``plugin`` on ``parts``; ``preview`` is
    the preview grid's inputs (None: the plugin has none, so EMA's batch norm is not re-estimated)."""

    def __init__(self, plugin: GanPlugin, parts: RunParts, device: torch.device, preview: dict | None) -> None:
        self.plugin, self.parts, self.device, self.preview = plugin, parts, device, preview
        self._calibrated_at: int | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.parts.step.autocast_dtype)

    def generator(self, name: str | None, step: int) -> nn.Module:
        """The generator ``name`` (default: the plugin's ``generator``) at ``step``: its EMA copy (batch norm
        calibrated once per step) when EMA is on, else the trained network."""
        name = name or self.plugin.generator
        emas = self.parts.state.emas
        if name not in emas:
            return self.parts.nets[name]
        if name == self.plugin.generator and self._calibrated_at != step:
            self._calibrate()  # preview inputs feed the main generator; other directions keep their stats
            self._calibrated_at = step
        return emas[name].module

    def _calibrate(self) -> None:
        tc = self.plugin.cfg.train
        if not tc.ema.calibration_batches or self.preview is None:
            return  # no inputs to draw: the raw generator's statistics stay
        g = torch.Generator().manual_seed(tc.seed + 2)  # the same batches every time: deterministic
        batches = (self.plugin.preview_inputs(tc.batch_size, g) for _ in range(tc.ema.calibration_batches))
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.no_grad(), self.autocast():
            recalibrate_batchnorm(
                self.parts.state.emas[self.plugin.generator].module,
                batches,
                lambda G, inputs: self.plugin.generate(G, {k: v.to(self.device) for k, v in inputs.items()}),
            )

    @contextlib.contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Networks in eval mode without gradients, training's random streams untouched; training mode is
        restored afterwards."""
        nets = self.parts.nets
        modes = {k: n.training for k, n in nets.items()}
        for n in nets.values():
            n.eval()
        for ema in self.parts.state.emas.values():
            ema.module.eval()
        # random draws in here (a plugin's evaluation) must not move training's streams: the checkpoint of
        # this step is written before samples and evaluation, and a resumed run does not repeat them
        cuda = [self.device] if self.device.type == "cuda" else []
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:  # rank 0 alone: batch norm in train mode (pix2pix's test mode) must not wait for the others
            with torch.random.fork_rng(devices=cuda), torch.no_grad(), self.autocast(), distributed.local_batchnorm():
                yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            for k, n in nets.items():
                n.train(modes[k])

    def stepped(self) -> None:
        """The weights moved: the EMA copy's batch norm is re-estimated before it samples again."""
        self._calibrated_at = None
