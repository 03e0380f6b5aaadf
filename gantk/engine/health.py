"""Training-health alarms: "is my GAN diverging?" answered from numbers the step already keeps.

A plugin's losses report, on the device and inside the step, what the alarms read
(:meth:`gantk.StepContext.observe_real`, :meth:`~gantk.StepContext.observe_fake`,
:meth:`~gantk.StepContext.observe_samples`): D's mean logit on real and generated images, and how far
apart the generated images of a batch are against the real ones. They are summed with the losses in the
step's meter and read back with them once per log interval (``health/*`` in ``metrics.jsonl``), so the
step gains no host read. After each logged interval :class:`HealthWatch` looks at them and warns, once
per run each, with what to try. None is looked at before ``train.alarms.start`` steps: a GAN's first
steps are neither healthy nor sick (a new generator's outputs are all alike, and G's loss rises while D
learns).

* **D wins outright**: D's logit on generated images stays under ``train.alarms.d_wins_logit`` (it gives
  them almost no chance of being real) for ``train.alarms.d_wins_steps`` steps in a row; G's gradient
  then vanishes (Goodfellow et al. 2014, sec. 3; Arjovsky & Bottou 2017).
* **G's loss explodes**: an interval's mean of G's total loss rises over ``train.alarms.g_loss_factor``
  times its lowest interval mean so far (and by at least 10) within one phase, the usual sign of a run that is
  diverging.
* **Samples collapse**: the generated images of a batch lie closer together than
  ``train.alarms.collapse_ratio`` times the real images' mean pairwise distance (mode collapse).

Each alarm is written to ``metrics.jsonl`` (``alarm`` with its name, the value and the threshold) and to
the console. The watch is a :class:`gantk.Hook` like any other: its state (the alarms already raised, the
running stretch, G's lowest loss) is saved in every checkpoint, so a resumed run neither repeats an alarm
nor forgets a stretch.
"""

from __future__ import annotations

import math
from typing import Any

from gantk.plugin import Hook, RunView

#: what the step logs for the alarms: D's mean logits, the samples' spread, G's total loss (its main update)
REAL, FAKE, DIVERSITY, G_LOSS = "health/real_logit", "health/fake_logit", "health/diversity", "health/g_loss"

ADVICE = {
    "d_wins": (
        "D wins outright: its mean logit on generated images has been {value:.3g} (under {limit:g}) for {steps} "
        "steps, so G's gradient is vanishing. Try: a lower D learning rate (optim.D.lr) or fewer D updates per "
        "step, label smoothing or instance noise, augmentation of D's inputs (train.augment), or a "
        "non-saturating/hinge loss if the plugin has a choice."
    ),
    "g_explodes": (
        "G's loss is exploding: its interval mean is {value:.4g}, over {limit:.4g} ({factor:g}x its lowest, "
        "{lowest:.4g}). The run is likely diverging. Try: a lower G learning rate (optim.G.lr), gradient "
        "clipping (train.grad_clip), train.precision=fp32 if it is fp16, or resuming from an earlier checkpoint."
    ),
    "collapse": (
        "generated samples are collapsing: within a batch they are {value:.3g}x as far apart as the real images "
        "(under {limit:g}x): G is producing nearly the same image whatever its input (mode collapse). Try: "
        "a lower G learning rate, minibatch discrimination or spectral norm in D, a larger batch, or "
        "augmentation of D's inputs (train.augment)."
    ),
}


class HealthWatch(Hook):
    """Reads each logged interval's ``health/*`` values and G's loss, and raises each alarm once per run."""

    def __init__(self, every: int, limits: Any) -> None:
        super().__init__(every=every, at_end=True)
        self.limits = limits  # train.alarms
        self.raised: list[str] = []
        self.losing_since: int | None = None  # first step of the current stretch of D winning
        self.lowest_g: float | None = None
        self.phase = ""

    def __call__(self, run: RunView) -> None:
        step, phase, values = run.logger.last_interval
        if step != run.step or step < self.limits.start or not self.limits.enabled:
            return
        if phase != self.phase:  # a new phase (SRGAN's adversarial one) has losses of its own
            self.phase, self.lowest_g, self.losing_since = phase, None, None
        alarms = self.check(step, values, run.cfg.train.log_every)
        for name, record in alarms.items():
            self.raised.append(name)
            run.logger.write(step, {"alarm": name, **record})
            run.logger.message(f"warning: step {step}: " + ADVICE[name].format(**record))

    def check(self, step: int, values: dict[str, float], interval: int) -> dict[str, dict[str, Any]]:
        """The alarms this interval raises (not raised before), each with the numbers its advice names."""
        limits, out = self.limits, {}
        fake = values.get(FAKE)
        if fake is not None and math.isfinite(fake) and fake < limits.d_wins_logit:
            if self.losing_since is None:
                self.losing_since = max(self.limits.start, step - interval)  # the interval's mean: from its start
            steps = step - self.losing_since
            if steps >= limits.d_wins_steps:
                out["d_wins"] = {"value": fake, "limit": limits.d_wins_logit, "steps": steps}
        else:
            self.losing_since = None
        loss = values.get(G_LOSS)
        if loss is not None and math.isfinite(loss):
            lowest = self.lowest_g
            limit = None if lowest is None else max(limits.g_loss_factor * abs(lowest), abs(lowest) + 10.0)
            if limit is not None and loss > limit:
                out["g_explodes"] = {"value": loss, "limit": limit, "factor": limits.g_loss_factor, "lowest": lowest}
            self.lowest_g = loss if lowest is None else min(lowest, loss)
        diversity = values.get(DIVERSITY)
        if diversity is not None and math.isfinite(diversity) and diversity < limits.collapse_ratio:
            out["collapse"] = {"value": diversity, "limit": limits.collapse_ratio}
        return {k: v for k, v in out.items() if k not in self.raised}

    def state_dict(self) -> dict[str, Any]:
        return {
            "raised": list(self.raised),
            "losing_since": self.losing_since,
            "lowest_g": self.lowest_g,
            "phase": self.phase,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.raised = list(state.get("raised", []))
        self.losing_since = state.get("losing_since")
        self.lowest_g = state.get("lowest_g")
        self.phase = state.get("phase", "")
