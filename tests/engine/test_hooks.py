"""Hooks: what runs every N steps is a list that the engine, the plugin and the user extend alike."""

from __future__ import annotations

import pytest

from gantk import Hook
from gantk.engine import Trainer
from gantk.engine.health import HealthWatch
from gantk.engine.hooks import Evaluate, SampleGrid
from gantk.errors import PluginError, RunFailed
from gantk.io.checkpoint import step_checkpoints
from tests.helpers import tiny_dcgan, write_image_folder


class Record(Hook):
    """Notes the step and whether the sampling generator is in eval mode when the hook runs."""

    def __init__(self, every: int, at_end: bool = True) -> None:
        super().__init__(every, at_end)
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, trainer) -> None:
        with trainer.eval_mode():
            self.calls.append((trainer.step, trainer.sampling_generator().training))


def test_due_counts_steps_done_and_the_last_one():
    hook = Hook(every=3)
    assert [s for s in range(1, 8) if hook.due(s, 7)] == [3, 6, 7]
    assert [s for s in range(1, 8) if Hook(every=3, at_end=False).due(s, 7)] == [3, 6]
    assert not any(Hook(every=0).due(s, 7) for s in range(1, 8))


def test_engine_plugin_and_user_hooks_run_in_order_at_their_cadence(tmp_path):
    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8), train={"max_steps": 5})
    from_plugin, from_user = Record(every=2), Record(every=4, at_end=False)
    plugin.hooks = lambda: [from_plugin]
    trainer = Trainer(plugin, tmp_path / "run", spec, hooks=[from_user])
    trainer.fit()
    trainer.close()
    # the training-health alarms come last, so a plugin's and a user's hooks keep their saved positions
    assert [type(h) for h in trainer.hooks] == [SampleGrid, Evaluate, Record, Record, HealthWatch]
    assert trainer.hooks[2] is from_plugin and trainer.hooks[3] is from_user
    assert from_plugin.calls == [(2, False), (4, False), (5, False)]  # in eval mode, and after the last step
    assert from_user.calls == [(4, False)]
    # the engine's own sample grid is a hook too: every 3 steps (tiny_dcgan) and at the end
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step_00000003.png",
        "step_00000005.png",
    ]


def test_a_failing_hook_stops_the_run_with_its_step_saved(tmp_path):
    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8), train={"max_steps": 6})

    class Broken(Hook):
        def __call__(self, trainer) -> None:
            raise ValueError("report server unreachable")

    with pytest.raises(RunFailed, match="report server unreachable.*checkpoint .*step_00000002"):
        Trainer(plugin, tmp_path / "run", spec, hooks=[Broken(every=2)]).fit()
    assert [p.name for p in step_checkpoints(tmp_path / "run")] == ["step_00000002"]


def test_every_score_carries_its_protocol_and_best_is_never_compared_across_protocols(tmp_path):
    import json

    data = write_image_folder(tmp_path / "images")
    cache = str(tmp_path / "cache")

    def plugin(steps: int, fid_samples: int):
        eval_ = {"fid_samples": fid_samples, "fid_cache": cache}
        return tiny_dcgan(data, train={"eval_every": 2, "max_steps": steps}, eval=eval_)[1]

    run = tmp_path / "run"
    Trainer(plugin(4, 8), run).fit()
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval_protocol" in r]
    card = evals[-1]["eval_protocol"]
    assert card["generated"] == 8 and card["real"] == 8 and card["generator"] == "raw" and card["seed"] == 0
    assert card["features"].startswith("pixels") and len(card["real_sha256"]) == 64 and card["gantk"]
    assert card["reference"] == f"{data} (train)"
    best = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert best["eval_protocol"]["generated"] == 8
    # resumed with another sample count: its scores cannot be compared with the best's, and it says why
    with pytest.raises(RunFailed, match=r"measured differently \(generated: 8 != 12; real: 8 != 12"):
        Trainer(plugin(6, 12), run, resume=True).fit()
    Trainer(plugin(6, 8), run, resume=True).fit()  # the same protocol: compared and kept as before
    assert json.loads((run / "checkpoints" / "best" / "config.json").read_text())["eval_protocol"] == card


class Counter(Hook):
    """A stateful hook: how many times it ran, and the steps it saw."""

    def __init__(self, every: int) -> None:
        super().__init__(every)
        self.steps: list[int] = []

    def __call__(self, trainer) -> None:
        self.steps.append(trainer.step)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = list(state["steps"])


def test_a_stateful_hook_keeps_its_state_across_a_resume(tmp_path):
    """Its state is saved with each checkpoint (as the checkpoint is written, before that step's hooks)
    and given back on --resume, as if the run had not stopped."""
    data = write_image_folder(tmp_path / "img", n=8)
    first = Counter(every=2)
    spec, plugin = tiny_dcgan(data, train={"max_steps": 4, "checkpoint_every": 2})
    Trainer(plugin, tmp_path / "run", spec, hooks=[first]).fit()
    assert first.steps == [2, 4]
    again = Counter(every=2)
    spec, plugin = tiny_dcgan(data, train={"max_steps": 8, "checkpoint_every": 2})
    Trainer(plugin, tmp_path / "run", spec, hooks=[again], resume=True).fit()
    assert again.steps == [2, 4, 6, 8]  # what an uninterrupted run of 8 steps would hold


def test_a_hook_state_that_json_cannot_hold_is_refused_naming_the_hook(tmp_path):
    class Opaque(Hook):
        def __call__(self, trainer) -> None:
            pass

        def state_dict(self) -> dict:
            return {"seen": {1, 2}}  # a set

    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8), train={"max_steps": 2})
    with pytest.raises(PluginError, match=r"hook .*Opaque.state_dict\(\) returned what JSON cannot hold"):
        Trainer(plugin, tmp_path / "run", spec, hooks=[Opaque(every=1)]).fit()


def test_hooks_stopped_midway_after_a_checkpoint_run_again_on_resume(tmp_path):
    """Killed in the hooks after checkpoint 4 (its evaluation, a report): --resume runs the hooks due at
    step 4 again, from their state as the checkpoint was written, before training on."""
    data = write_image_folder(tmp_path / "img", n=8)

    class KilledAt4(Hook):
        def __call__(self, trainer) -> None:
            if trainer.step == 4:
                raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this point runs

    first = Counter(every=2)
    spec, plugin = tiny_dcgan(data, train={"max_steps": 6, "checkpoint_every": 2})
    with pytest.raises(KeyboardInterrupt):
        Trainer(plugin, tmp_path / "run", spec, hooks=[first, KilledAt4(every=2)]).fit()
    assert first.steps == [2, 4]
    again = Counter(every=2)
    spec, plugin = tiny_dcgan(data, train={"max_steps": 6, "checkpoint_every": 2})
    Trainer(plugin, tmp_path / "run", spec, hooks=[again, Hook(every=0)], resume=True).fit()
    assert again.steps == [2, 4, 6]  # step 4's hooks once more, then on


def test_a_hook_gets_a_read_only_view_of_the_trainer(tmp_path):
    seen = []

    class Meddler(Hook):
        def __call__(self, run) -> None:
            for attempt in (lambda: setattr(run, "step", 0), lambda: run.nets.__setitem__("G", None)):
                with pytest.raises((AttributeError, TypeError)):
                    attempt()
            seen.append((run.step, sorted(run.nets), run.cfg.plugin, run.eval_context().run_dir))

    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8), train={"max_steps": 2})
    trainer = Trainer(plugin, tmp_path / "run", spec, hooks=[Meddler(every=2)])
    trainer.fit()
    assert seen == [(2, ["D", "G"], "dcgan", tmp_path / "run")]
    assert trainer.step == 2 and trainer.nets["G"] is not None
