"""The EMA generator's batch-norm statistics are re-estimated for its own (averaged) weights."""

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gantk.engine import Trainer
from gantk.engine.ema import recalibrate_batchnorm
from gantk.io.generators import load_generator
from tests.helpers import tiny_dcgan


def test_recalibration_takes_the_cumulative_batch_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3))
    batches = [{"x": torch.randn(8, 3) * 2 + 1} for _ in range(5)]
    assert recalibrate_batchnorm(net, batches, lambda m, b: m(b["x"]))
    with torch.no_grad():
        hidden = [net[0](b["x"]) for b in batches]
    assert torch.allclose(net[1].running_mean, torch.cat(hidden).mean(0), atol=1e-5)
    assert torch.allclose(net[1].running_var, torch.stack([h.var(0) for h in hidden]).mean(0), atol=1e-5)
    assert net[1].momentum == 0.3 and not net.training


def test_a_module_without_batch_norm_is_left_alone():
    net = nn.Linear(2, 2)
    assert not recalibrate_batchnorm(net, [{"x": torch.randn(4, 2)}], lambda m, b: m(b["x"]))


def _eval_vs_batch_stats(G, plugin) -> float:
    """How far eval mode (running statistics) is from batch statistics on a large batch of inputs."""
    inputs = plugin.sample_inputs(512, torch.Generator().manual_seed(9))
    G.eval()
    with torch.no_grad():
        running = plugin.generate(G, inputs)
        G.train()
        batch = plugin.generate(G, inputs)
    G.eval()
    return (running - batch).abs().mean().item()


@pytest.mark.parametrize("batches", [16, 0])
def test_ema_generator_statistics_match_its_weights(image_folder, tmp_path, batches):
    ema = {"enabled": True, "decay": 0.7, "calibration_batches": batches}
    _, plugin = tiny_dcgan(image_folder, train={"ema": ema, "max_steps": 20}, optim={"G": {"lr": 0.01}})
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    plugin, G = load_generator(run)
    gap = _eval_vs_batch_stats(G, plugin)
    if batches:
        assert gap < 0.02
    else:  # the raw generator's statistics do not fit the averaged weights
        assert gap > 0.02


def test_resume_with_ema_is_exact(image_folder, tmp_path):
    ema = {"ema": {"enabled": True, "decay": 0.7}}
    _, plugin = tiny_dcgan(image_folder, train={**ema, "max_steps": 6})
    straight = Trainer(plugin, tmp_path / "straight").fit()
    _, plugin = tiny_dcgan(image_folder, train={**ema, "max_steps": 3})
    Trainer(plugin, tmp_path / "split").fit()
    _, plugin = tiny_dcgan(image_folder, train={**ema, "max_steps": 6})
    resumed = Trainer(plugin, tmp_path / "split", resume=True).fit()
    for name in ("G", "G_ema", "D"):
        a, b = load_file(straight / f"{name}.safetensors"), load_file(resumed / f"{name}.safetensors")
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"
