"""The graph runner's sequencing (warm-up, capture into static buffers, replay, fallback) and the mode switch.

A CUDA graph needs a GPU; the runner takes its recorder as an argument, so on the CPU the tests record
with :func:`replaying_recorder`: recording runs nothing, and each replay calls the step again on the
static input buffers, as a graph replays its kernels on them. What these tests prove is the runner's
plumbing: each step's batches reach the static buffers, no step is run twice or skipped, phases get
their own capture, a step that reads the host falls back to eager, and resume stays exact.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from gantk.config import OptimConfig
from gantk.engine import Trainer
from gantk.engine.graph import WARMUP, StepRunner, resolve_graph_mode
from gantk.engine.optim import build_optimizer, masked_step
from tests.helpers import tiny_dcgan
from tests.helpers.sr import tiny_srgan, write_sr_data


def replaying_recorder(fn):
    return fn  # nothing runs when recording; every replay runs the step on the static buffers


def _with_graphs(trainer: Trainer) -> StepRunner:
    trainer.setup()
    trainer.runner = StepRunner(trainer.train_step, replaying_recorder)
    return trainer.runner


def _weights(folder):
    return {f"{n}.{k}": v for n in ("G", "D") for k, v in load_file(folder / f"{n}.safetensors").items()}


def test_replayed_steps_equal_eager_steps_and_resume_exactly(image_folder, tmp_path):
    steps = WARMUP + 4
    _, eager = tiny_dcgan(image_folder, train={"max_steps": steps, "ema": {"enabled": True}})
    eager_final = Trainer(eager, tmp_path / "eager").fit()

    _, plugin = tiny_dcgan(image_folder, train={"max_steps": steps, "ema": {"enabled": True}})
    trainer = Trainer(plugin, tmp_path / "graph")
    runner = _with_graphs(trainer)
    graph_final = trainer.fit()
    assert runner.captured == 1 and runner.enabled
    a, b = _weights(eager_final), _weights(graph_final)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ema_a, ema_b = (load_file(f / "G_ema.safetensors") for f in (eager_final, graph_final))
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)

    # stop after 4 steps, resume (warm-up and capture again), finish: the same weights
    _, first = tiny_dcgan(image_folder, train={"max_steps": 4, "ema": {"enabled": True}})
    _with_graphs(resumed := Trainer(first, tmp_path / "resumed"))
    resumed.fit()
    _, second = tiny_dcgan(image_folder, train={"max_steps": steps, "ema": {"enabled": True}})
    again = Trainer(second, tmp_path / "resumed", resume=True)
    _with_graphs(again)
    c = _weights(again.fit())
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_each_phase_is_captured_on_its_own(tmp_path):
    plugin = tiny_srgan(write_sr_data(tmp_path / "sr"), phases={"srresnet": 5}, train={"max_steps": 10})
    trainer = Trainer(plugin, tmp_path / "run")
    runner = _with_graphs(trainer)
    trainer.fit()
    assert sorted(runner.graphs) == ["srgan", "srresnet"]


def test_a_step_that_reads_the_host_falls_back_to_eager_with_the_reason(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": WARMUP + 2})
    d_loss = plugin.d_loss
    plugin.d_loss = lambda batch, ctx: {k: v * (1.0 if float(v) < 1e9 else 0.0) for k, v in d_loss(batch, ctx).items()}
    trainer = Trainer(plugin, tmp_path / "run")
    runner = _with_graphs(trainer)
    with pytest.warns(
        UserWarning, match=r"CUDA graphs off, training eagerly: the step reads tensor values.*test_graph"
    ):
        trainer.fit()
    assert not runner.enabled and runner.captured == 0 and trainer.step == WARMUP + 2


def test_a_failed_capture_runs_the_step_eagerly_and_goes_on(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": WARMUP + 3})
    eager = Trainer(tiny_dcgan(image_folder, train={"max_steps": WARMUP + 3})[1], tmp_path / "eager").fit()

    def broken(fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    trainer = Trainer(plugin, tmp_path / "run")
    trainer.setup()
    trainer.runner = runner = StepRunner(trainer.train_step, broken)
    with pytest.warns(UserWarning, match="capturing step 'gan' failed: RuntimeError"):
        final = trainer.fit()
    assert not runner.enabled
    a, b = _weights(eager), _weights(final)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the step whose capture failed was run once, eagerly


def test_a_nan_inside_a_replayed_step_skips_that_update_only(image_folder, tmp_path):
    steps = WARMUP + 4
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": steps, "log_every": 100})
    d_loss = plugin.d_loss

    def poisoned(batch, ctx):  # on the device: the same kernels every step, NaN at step 5 only
        terms = d_loss(batch, ctx)
        terms["real"] = terms["real"] * torch.where(ctx.step_tensor == WARMUP + 1, float("nan"), 1.0)
        return terms

    plugin.d_loss = poisoned
    trainer = Trainer(plugin, tmp_path / "run")
    _with_graphs(trainer)
    final = trainer.fit()
    assert trainer.nonfinite_skipped == 1
    assert all(torch.isfinite(v).all() for v in _weights(final).values())
    state = trainer.optimizers["D"].state_dict()["state"][0]
    assert int(state["step"]) == steps - 1  # the fused optimizer skipped the whole update, count included
    assert int(trainer.optimizers["G"].state_dict()["state"][0]["step"]) == steps


@pytest.mark.parametrize(
    ("setting", "device", "distributed", "compile_mode", "plugin_reason", "mode", "why"),
    [
        ("auto", "cpu", False, "off", "", "off", ""),
        ("on", "cpu", False, "off", "", "off", "need a CUDA device"),
        ("auto", "cpu", False, "reduce-overhead", "", "off", "need a CUDA device"),
        ("auto", "cuda", False, "off", "", "on", ""),
        ("off", "cuda", False, "reduce-overhead", "", "off", ""),
        ("auto", "cuda", True, "off", "", "off", "data-parallel"),
        ("auto", "cuda", False, "off", "anneals on the host", "off", "anneals on the host"),
    ],
)
def test_graph_mode(setting, device, distributed, compile_mode, plugin_reason, mode, why):
    got, reason = resolve_graph_mode(setting, torch.device(device), distributed, compile_mode, plugin_reason)
    assert got == mode and (why in reason if why else reason == "")


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
def test_a_masked_step_changes_nothing_when_the_loss_was_not_finite(name):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = build_optimizer(net.parameters(), OptimConfig(name=name, lr=0.1, momentum=0.9), torch.device("cpu"))
    for finite in (True, False, True):  # a first real step creates the optimizer's state
        net(torch.randn(4, 3)).pow(2).mean().backward()
        before = [p.detach().clone() for p in net.parameters()]
        state = [t.clone() for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        masked_step(opt, torch.tensor(finite))
        after = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        moved = any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
        assert moved == finite
        if not finite:
            assert all(torch.equal(a, b) for a, b in zip(state, after, strict=True))
        opt.zero_grad()


@pytest.mark.parametrize("name", ["infogan", "cyclegan"])
def test_the_zoo_plugins_replay_exactly_what_they_run_eagerly(name, tmp_path):
    from tests.helpers import write_mnist
    from tests.helpers.pairs import write_side_by_side
    from tests.helpers.zoo import tiny_cyclegan, tiny_infogan

    def make():
        if name == "infogan":
            return tiny_infogan(
                write_mnist(tmp_path / f"mnist{len(list(tmp_path.iterdir()))}"), train={"max_steps": WARMUP + 3}
            )
        return tiny_cyclegan(
            write_side_by_side(tmp_path / f"pairs{len(list(tmp_path.iterdir()))}", 6, 20),
            train={"max_steps": WARMUP + 3},
        )

    eager = Trainer(make(), tmp_path / "eager").fit()
    trainer = Trainer(make(), tmp_path / "graph")
    runner = _with_graphs(trainer)
    graph = trainer.fit()
    assert runner.captured == 1 and runner.enabled
    for file in eager.glob("*.safetensors"):
        a, b = load_file(file), load_file(graph / file.name)
        assert all(torch.equal(a[k], b[k]) for k in a), file.name
