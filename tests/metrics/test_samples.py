"""The evaluation of a sampling plugin: FID/KID of its samples, kid_pixels without Inception weights."""

import pytest
import torch
from torch import nn

from gantk.metrics import samples
from gantk.plugin import EvalContext
from tests.helpers import tiny_dcgan


class Replay(nn.Module):
    """A 'generator' that returns given images whatever its z: scores then measure only the images."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[torch.arange(len(z)) % len(self.images)]


def _plugin(folder, **eval_):
    _, plugin = tiny_dcgan(folder, eval={"fid_samples": 16, **eval_})
    plugin.cfg.data.channels = 3
    return plugin


def test_real_images_are_a_seeded_subset_in_unit_range(image_folder):
    plugin = _plugin(image_folder)
    real = samples.real_images(plugin.build_dataset(), 16, seed=0)
    assert real.shape == (16, 3, 16, 16) and real.min() >= -1 and real.max() <= 1
    assert torch.equal(real, samples.real_images(plugin.build_dataset(), 16, seed=0))
    assert not torch.equal(real, samples.real_images(plugin.build_dataset(), 16, seed=1))
    assert len(samples.real_images(plugin.build_dataset(), 1000, seed=0)) == 32  # all of a smaller dataset


def test_without_weights_it_warns_and_reports_kid_pixels(image_folder, tmp_path):
    plugin = _plugin(image_folder, fid_samples=64, fid_cache=str(tmp_path / "cache"))
    levels = torch.rand(64, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    real = levels * torch.linspace(0.2, 1, 16).view(1, 1, 1, 16).expand(64, 3, 16, 16) * 2 - 1  # shaded greys
    ctx = EvalContext(torch.device("cpu"), 7, tmp_path / "eval")
    samples._scores_for.cache_clear()
    with pytest.warns(UserWarning, match="FID and KID skipped: no eval.fid_weights"):
        copied = samples.sample_metrics(plugin, Replay(real), ctx, real=real)
    flat = samples.sample_metrics(plugin, Replay(torch.full_like(real, real.mean())), ctx, real=real)
    assert set(copied) == {"kid_pixels"} == set(samples.metric_names(plugin.cfg.eval))
    assert abs(copied["kid_pixels"]) < flat["kid_pixels"] / 10  # the real images themselves score ~0
    assert (tmp_path / "eval" / "samples_00000007.png").is_file()
    again = samples.sample_metrics(plugin, Replay(torch.full_like(real, real.mean())), ctx, real=real)
    assert again == flat and plugin.best_metric() == "kid_pixels"  # seeded: repeatable


def test_with_weights_it_reports_fid_and_kid(image_folder, tmp_path, fid_weights):
    plugin = _plugin(image_folder, fid_samples=8, fid_weights=str(fid_weights), fid_cache=str(tmp_path / "c"))
    G = plugin.build_networks()["G"].eval()
    ctx = EvalContext(torch.device("cpu"), 0, tmp_path / "eval")
    metrics = samples.sample_metrics(plugin, G, ctx)
    assert set(metrics) == {"fid", "kid", "precision", "recall", "kid_pixels"} == set(plugin.metric_names())
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    from gantk.io.checkpoint import sha256

    card = ctx.protocol  # how these scores were made
    assert card["weights_sha256"] == sha256(fid_weights) and card["resize"].startswith("torch-fidelity")
    assert card["generated"] == 8 and card["real"] == 8 and card["precision_recall_k"] == 3
    assert metrics["fid"] > 0 and plugin.best_metric() == "fid"
    assert len(list((tmp_path / "c").glob("inception-*.safetensors"))) == 1


def test_a_plugin_whose_eval_section_is_not_an_eval_config_gets_a_clear_error(image_folder, tmp_path):
    from types import SimpleNamespace

    from gantk.errors import PluginError

    plugin = SimpleNamespace(cfg=SimpleNamespace(plugin="mine", eval=SimpleNamespace(tile=3)))
    with pytest.raises(PluginError, match="does not subclass gantk.EvalConfig"):
        samples.sample_metrics(plugin, None, EvalContext(torch.device("cpu"), 0, tmp_path))


def test_the_inception_score_is_reported_when_asked_for(image_folder, tmp_path, fid_weights):
    plugin = _plugin(
        image_folder, fid_samples=20, fid_weights=str(fid_weights), fid_cache=str(tmp_path / "c"), inception_score=True
    )
    ctx = EvalContext(torch.device("cpu"), 0, tmp_path / "eval")
    metrics = samples.sample_metrics(plugin, plugin.build_networks()["G"].eval(), ctx)
    assert set(metrics) == set(plugin.metric_names()) >= {"inception_score", "inception_score_std", "fid"}
    assert 1.0 <= metrics["inception_score"] <= 1008 and ctx.protocol["inception_score_splits"] == 10


def test_real_images_are_drawn_once_per_run_into_the_engines_cache(image_folder, tmp_path, monkeypatch):
    from gantk.engine import Trainer

    drawn = []
    real_images = samples.real_images
    monkeypatch.setattr(samples, "real_images", lambda *a, **k: drawn.append(1) or real_images(*a, **k))
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 2, "max_steps": 6}, eval={"fid_samples": 8})
    Trainer(plugin, tmp_path / "run").fit()
    assert len(drawn) == 1  # three evaluations, one draw
    assert set(vars(plugin)) == {"cfg"}  # nothing kept on the plugin (it held _eval_real)
