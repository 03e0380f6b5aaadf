"""Lazy updates (``Update(..., every=k)``): when they run, how the engine compensates and logs them, and
that resume and graph replay stay exact at every point of their cycle."""

from __future__ import annotations

import json

import pytest
import torch

from gantk.engine import Trainer
from gantk.engine.ema import EmaGenerator
from gantk.engine.graph import WARMUP
from gantk.engine.optim import build_optimizer
from gantk.engine.setup import lazy_ratios
from gantk.errors import PluginError
from gantk.plugin import Phase, Update
from tests.engine.test_graph import _with_graphs
from tests.helpers import saved_networks, tiny_dcgan


def _noop(batch, ctx):
    return {}


def r1(batch, ctx):
    """R1 on the reals (what StyleGAN2 runs every 16 D steps), small enough for a tiny D."""
    real = batch["image"].detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(ctx.nets["D"](real).sum(), real, create_graph=True)
    return {"r1": grad.square().sum([1, 2, 3]).mean()}


def _lazy_dcgan(image_folder, calls: list[int] | None = None, **train):
    """Tiny DCGAN with a lazy R1 on D (every 4) and a lazy second D term (every 16)."""
    _, plugin = tiny_dcgan(image_folder, train={"log_every": 1, "sample_every": 0, **train})

    def r1_every_4(batch, ctx):
        if calls is not None:
            calls.append(ctx.step)
        return r1(batch, ctx)

    def r1_every_16(batch, ctx):
        return {"r1b": 0.5 * r1(batch, ctx)["r1"]}

    d, g = plugin.d_loss, plugin.g_loss
    plugin.phases = lambda: [
        Phase(
            "gan",
            (
                Update("D", d),
                Update("D", r1_every_4, every=4, freeze=()),
                Update("D", r1_every_16, every=16),
                Update("G", g, freeze=("D",)),
            ),
        )
    ]
    return plugin


def test_a_lazy_update_runs_on_the_first_step_and_then_every_k_steps():
    lazy = Update("D", r1, every=4)
    phase = Phase("gan", (Update("D", _noop), lazy, Update("G", _noop)))
    assert [s for s in range(13) if lazy.runs_at(s)] == [0, 4, 8, 12]
    assert phase.updates_at(1) == (phase.updates[0], phase.updates[2])
    assert phase.updates_at(8) == phase.updates
    assert phase.variant(3) == "gan" and phase.variant(4) == "gan+D:r1"
    # counted on the host for the log: steps 0..9 hold 0, 4, 8; steps 5..9 hold 8 alone
    assert phase.lazy_runs(0, 10) == {"D:r1": 3} and phase.lazy_runs(5, 10) == {"D:r1": 1}
    assert phase.lazy_runs(9, 12) == {"D:r1": 0}


def test_the_paper_compensation_scales_lr_and_betas_of_the_optimizers_with_lazy_updates():
    phase = Phase("gan", (Update("D", _noop), Update("D", r1, every=16), Update("G", _noop)))
    ratios = lazy_ratios([phase, phase])  # a lazy update listed by two phases counts once
    assert ratios == {"D": pytest.approx(16 / 17)}
    two = Phase("gan", (Update("D", _noop), Update("D", r1, every=16), Update("D", _noop.__call__, every=4)))
    assert lazy_ratios([two])["D"] == pytest.approx(1 / (1 + 1 / 16 + 1 / 4))

    from gantk.config import OptimConfig

    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], OptimConfig(lr=0.0025, betas=(0.5, 0.99)), "cpu", 0.8)
    group = opt.param_groups[0]
    assert float(group["lr"]) == pytest.approx(0.002)
    assert group["betas"] == pytest.approx((0.5**0.8, 0.99**0.8))


def test_lazy_updates_run_when_due_and_are_counted_in_the_log(image_folder, tmp_path):
    calls: list[int] = []
    plugin = _lazy_dcgan(image_folder, calls, max_steps=10, log_every=5)
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.fit()
    assert calls == [0, 4, 8]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "phase" in r]
    # the first step is logged on its own, then steps 2..5 and 6..10
    assert [r["step"] for r in logged] == [1, 5, 10]
    assert [r["runs/D:r1_every_4"] for r in logged] == [1, 1, 1]
    assert [r["runs/D:r1_every_16"] for r in logged] == [1, 0, 0]
    assert [r["kimg"] for r in logged] == [0.008, 0.04, 0.08]  # batch 8
    assert "D/r1" in logged[0] and "D/r1" in logged[1] and "D/r1b" not in logged[1]
    lr = float(plugin.cfg.optim["D"].lr)
    assert logged[-1]["lr/D"] == pytest.approx(lr / (1 + 1 / 4 + 1 / 16), rel=1e-6)
    assert logged[-1]["lr/G"] == pytest.approx(float(plugin.cfg.optim["G"].lr), rel=1e-6)


def test_resume_at_every_point_of_the_16_step_cycle_is_exact(image_folder, tmp_path):
    ema = {"enabled": True, "half_life_kimg": 0.02, "rampup": 0.05}
    straight = Trainer(_lazy_dcgan(image_folder, max_steps=18, ema=ema), tmp_path / "straight").fit()
    run = tmp_path / "chain"
    for stop in range(1, 19):  # stop after every step 1..17 and resume: each point of the cycle once
        Trainer(_lazy_dcgan(image_folder, max_steps=stop, ema=ema), run, resume=stop > 1).fit()
    a, b = saved_networks(straight), saved_networks(run / "checkpoints" / "step_00000018")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_variant_of_a_lazy_phase_is_captured_once_and_replays_what_eager_runs(image_folder, tmp_path):
    steps = 16 * WARMUP + 2  # the every-16 variant warms up on steps 0, 16, 32 and is captured at 48
    eager = Trainer(_lazy_dcgan(image_folder, max_steps=steps), tmp_path / "eager").fit()
    trainer = Trainer(_lazy_dcgan(image_folder, max_steps=steps), tmp_path / "graph")
    runner = _with_graphs(trainer)
    graph = trainer.fit()
    # plain, +R1 (every 4), +R1 +the every-16 term: three graphs, however long the run
    assert sorted(runner.graphs) == ["gan", "gan+D:r1_every_4", "gan+D:r1_every_4+D:r1_every_16"]
    a, b = saved_networks(eager), saved_networks(graph)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_update_interval_that_is_not_a_whole_number_is_refused(image_folder, tmp_path):
    plugin = _lazy_dcgan(image_folder)
    d = plugin.d_loss
    plugin.phases = lambda: [Phase("gan", (Update("D", d, every=0), Update("G", plugin.g_loss)))]
    with pytest.raises(PluginError, match="every=0; it takes a whole number >= 1"):
        Trainer(plugin, tmp_path / "run").setup()


def test_ema_half_life_in_images_with_rampup_follows_the_stylegan2_rule():
    ema = EmaGenerator(torch.nn.Linear(2, 2), decay=0.999, start_step=0, half_life=10_000, rampup=0.05, batch=32)
    for step in (2, 50, 10_000):
        shown = (step - 1) * 32
        expected = 1 - 0.5 ** (32 / min(10_000, shown * 0.05))
        assert float(ema.weight(torch.tensor(step))) == pytest.approx(expected, rel=1e-5)
    assert float(ema.weight(torch.tensor(1))) == 1.0  # the first step copies
    plain = EmaGenerator(torch.nn.Linear(2, 2), decay=0.999, start_step=0)
    assert float(plain.weight(torch.tensor(5))) == pytest.approx(0.001)
