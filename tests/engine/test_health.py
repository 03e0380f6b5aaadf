"""Training-health alarms: they fire on a deliberately collapsed generator and stay quiet on a healthy
DCGAN; each once, each value in metrics.jsonl, their state kept across a resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from gantk.plugins.dcgan.plugin import DCGAN
from torch import nn

from gantk.config import AlarmsConfig
from gantk.engine.health import HealthWatch
from gantk.engine.trainer import Trainer, train
from tests.helpers import SHARED_DATA, tiny_dcgan, tiny_plugin


class _IgnoresNoise(nn.Module):
    """G fed zeros whatever its noise: every sample is the same image (a collapsed generator)."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z * 0)


class CollapsedDCGAN(DCGAN):
    def build_networks(self) -> dict[str, nn.Module]:
        nets = super().build_networks()
        nets["G"] = _IgnoresNoise(nets["G"])
        return nets


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_collapsed_generator_raises_collapse_and_d_wins_once_each_and_resume_keeps_them_raised(
    image_folder, tmp_path
):
    alarms = {"start": 0, "d_wins_steps": 20, "d_wins_logit": -3.0}
    schedule = {"max_steps": 300, "log_every": 10, "sample_every": 0, "alarms": alarms}
    optim = {"D": {"lr": 0.01}}  # a strong D: it soon rejects the one fake image
    plugin = CollapsedDCGAN(tiny_dcgan(image_folder, train=schedule, optim=optim)[1].cfg)
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    records = _records(run)
    raised = [(r["step"], r["alarm"]) for r in records if "alarm" in r]
    assert [name for _, name in raised] == ["collapse", "d_wins"], raised
    assert raised[0][0] == 10  # the first interval looked at: the batch's samples are all one image
    logged = {r["step"]: r for r in records if "health/diversity" in r}
    assert logged[10]["health/diversity"] == pytest.approx(0.0, abs=1e-6)
    collapse = next(r for r in records if r.get("alarm") == "collapse")
    assert collapse["value"] == pytest.approx(0.0, abs=1e-6) and collapse["limit"] == 0.1
    d_wins = next(r for r in records if r.get("alarm") == "d_wins")
    assert d_wins["value"] < -3.0 and d_wins["steps"] >= 20
    assert all(logged[s]["health/fake_logit"] < -3.0 for s in range(d_wins["step"] - 20 + 10, d_wins["step"] + 1, 10))

    resumed = CollapsedDCGAN(tiny_dcgan(image_folder, train={**schedule, "max_steps": 320}, optim=optim)[1].cfg)
    Trainer(resumed, run, resume=True).fit()
    assert [r["alarm"] for r in _records(run) if "alarm" in r] == ["collapse", "d_wins"]  # not raised again


def test_the_alarms_say_what_to_try_in_one_paragraph(image_folder, tmp_path, capsys):
    alarms = {"start": 0}
    plugin = CollapsedDCGAN(tiny_dcgan(image_folder, train={"max_steps": 4, "log_every": 2, "alarms": alarms})[1].cfg)
    Trainer(plugin, tmp_path / "run").fit()
    err = capsys.readouterr().err
    line = next(line for line in err.replace("\n", " ").split("warning: ")[1:] if "collapsing" in line)
    assert "step 2: generated samples are collapsing" in line and "Try:" in line


def test_g_loss_explosion_is_measured_against_its_lowest_interval_and_resets_with_the_phase():
    watch = HealthWatch(10, AlarmsConfig(start=0))
    assert watch.check(10, {"health/g_loss": 2.0}, 10) == {}
    assert watch.check(20, {"health/g_loss": 11.9}, 10) == {}  # under 2 + 10: noise, not an explosion
    raised = watch.check(30, {"health/g_loss": 25.0}, 10)
    assert raised["g_explodes"]["lowest"] == 2.0 and raised["g_explodes"]["limit"] == 20.0
    watch.raised.append("g_explodes")
    assert watch.check(40, {"health/g_loss": 99.0}, 10) == {}  # once a run
    restored = HealthWatch(10, AlarmsConfig(start=0))
    restored.load_state_dict(json.loads(json.dumps(watch.state_dict())))
    assert restored.state_dict() == watch.state_dict()
    view = SimpleNamespace(
        step=50,
        cfg=SimpleNamespace(train=SimpleNamespace(log_every=10)),
        logger=SimpleNamespace(last_interval=(50, "srgan", {"health/g_loss": 500.0}), write=None, message=None),
    )
    fresh = HealthWatch(10, AlarmsConfig(start=0))
    fresh.lowest_g, fresh.phase = 0.01, "srresnet"
    fresh(view)  # a new phase: its own baseline, no alarm from the jump
    assert fresh.lowest_g == 500.0 and fresh.raised == []


def test_d_wins_needs_the_whole_stretch_and_a_recovery_restarts_it():
    watch = HealthWatch(10, AlarmsConfig(start=0, d_wins_steps=30, d_wins_logit=-6.0))
    assert watch.check(10, {"health/fake_logit": -7.0}, 10) == {}
    assert watch.check(20, {"health/fake_logit": -2.0}, 10) == {}  # recovered: the stretch starts again
    assert watch.check(30, {"health/fake_logit": -7.0}, 10) == {}
    assert watch.check(40, {"health/fake_logit": -7.0}, 10) == {}
    assert watch.check(50, {"health/fake_logit": -8.0}, 10)["d_wins"]["steps"] == 30


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="needs the shared MNIST")
def test_a_healthy_dcgan_raises_no_alarm_from_its_first_step(tmp_path, monkeypatch):
    """DCGAN at width 32 on MNIST for 600 steps (its samples are digits by then): measured from step 1."""
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))  # the shared copy, never a download
    spec, plugin = tiny_plugin(
        "dcgan",
        {
            "data": {"name": "mnist", "image_size": 32, "limit": 2048},
            "model": {"ngf": 32, "ndf": 32, "nz": 32},
            "train": {
                "batch_size": 32,
                "max_steps": 600,
                "device": "cpu",
                "log_every": 50,
                "sample_every": 0,
                "eval_every": 0,
                "tensorboard": False,
                "checkpoint_every": 0,
                "alarms": {"start": 0},
            },
        },
        {},
    )
    run = tmp_path / "run"
    train(plugin, run, spec)
    records = [r for r in _records(run) if "health/diversity" in r]
    assert not [r for r in _records(run) if "alarm" in r]
    assert records[-1]["health/diversity"] > 0.5  # G's samples spread like the data's
    assert all(-6 < r["health/fake_logit"] < 0 for r in records[1:])  # D leads, never wins outright
