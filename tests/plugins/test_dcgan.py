"""DCGAN follows the paper's architecture rules (Radford et al. 2015)."""

import pytest
import torch
from torch import nn

from gantk import registry
from gantk.errors import ConfigError


def _nets(size=64, channels=3, **model):
    spec, cls = registry.load("dcgan")
    layer = {"data": {"image_size": size, "channels": channels}, "model": model}
    plugin = cls(registry.make_config(spec, cls, [(layer, "test")]))
    return plugin, plugin.build_networks()


@pytest.mark.parametrize("size, channels", [(64, 3), (32, 1), (64, 1), (32, 3)])
def test_shapes(size, channels):
    plugin, nets = _nets(size, channels, ngf=8, ndf=8)
    z = torch.randn(2, 100)
    x = nets["G"](z)
    assert x.shape == (2, channels, size, size)
    assert nets["D"](x).shape == (2,)


def test_paper_rules():
    _, nets = _nets()
    G, D = nets["G"], nets["D"]
    for net in (G, D):
        assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear)) for m in net.modules())
    g_layers, d_layers = list(G.net), list(D.net)
    # G: fractional-strided convs, BN except on the output, ReLU, tanh output
    assert all(isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.Tanh)) for m in g_layers)
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g_layers) == 4
    # D: strided convs, no BN right after the input conv, LeakyReLU(0.2)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert all(m.stride == (2, 2) for m in d_layers[:-1] if isinstance(m, nn.Conv2d))
    # 64x64: G 100 -> 512 -> 256 -> 128 -> 64 -> 3, as in the paper's figure 1
    widths = [m.out_channels for m in g_layers if isinstance(m, nn.ConvTranspose2d)]
    assert widths == [512, 256, 128, 64, 3]


def test_init_is_normal_0_02():
    torch.manual_seed(0)
    _, nets = _nets()
    w = torch.cat([m.weight.detach().flatten() for m in nets["G"].modules() if isinstance(m, nn.ConvTranspose2d)])
    assert w.mean().abs() < 1e-3 and w.std().item() == pytest.approx(0.02, rel=0.02)


def test_label_smoothing_and_instance_noise_change_the_loss():
    from gantk.plugin import StepContext

    plugin, nets = _nets(32, 1, ngf=4, ndf=4)
    batch = {"image": torch.rand(4, 1, 32, 32) * 2 - 1}

    def d_loss():
        g = torch.Generator().manual_seed(0)
        ctx = StepContext(nets, torch.device("cpu"), 0, 10, "gan", g, torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        return plugin.d_loss(batch, ctx)["real"].item()

    base = d_loss()
    plugin.cfg.loss.label_smoothing = 0.1
    assert d_loss() != base
    plugin.cfg.loss.label_smoothing = 0.0
    plugin.cfg.loss.instance_noise = 0.5
    assert d_loss() != base


def test_bad_image_size():
    with pytest.raises(ConfigError, match="power of two"):
        _nets(48)


def test_training_evaluates_keeps_the_best_and_gantk_eval_scores_it_again(image_folder, tmp_path):
    """Without Inception weights DCGAN scores kid_pixels (with a warning) and keeps the lowest as best."""
    import json
    import warnings

    from gantk.cli import main
    from gantk.engine import Trainer
    from tests.helpers import tiny_dcgan

    cache = str(tmp_path / "cache")
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 3}, eval={"fid_samples": 24, "fid_cache": cache})
    run = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(plugin, run).fit()
    assert any("FID and KID skipped" in str(w.message) for w in caught)
    evals = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/kid_pixels" in r]
    assert [r["step"] for r in evals] == [3, 6]
    best = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert best["best_metric"] == "kid_pixels"
    assert best["best_value"] == pytest.approx(min(r["eval/kid_pixels"] for r in evals))
    assert (run / "eval" / "samples_00000006.png").is_file()

    out = tmp_path / "score"
    assert main(["eval", str(run), "--device", "cpu", "--set", f"eval.fid_cache={cache}", "-o", str(out)]) == 0
    scored = json.loads((out / "metrics.json").read_text())
    assert scored["step"] == 6 and scored["kid_pixels"] == pytest.approx(evals[-1]["eval/kid_pixels"], rel=1e-6)
    assert scored["protocol"] == evals[-1]["eval_protocol"]  # the same card as training's last evaluation
