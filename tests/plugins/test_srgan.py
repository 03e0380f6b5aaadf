"""SRGAN plugin: the two phases, the content loss and its fallback, tiled inference, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from gantk.plugins.srgan.networks import SRResNet
from safetensors.torch import load_file, save_file
from torch import nn

from gantk.data.sr import bicubic_downscale
from gantk.engine import Trainer
from gantk.errors import ConfigError, DataError
from gantk.io.images import from_uint8
from gantk.losses import VGGContentLoss
from gantk.plugin import EvalContext, StepContext
from gantk.tiling import tiled_apply
from tests.helpers.sr import tiny_srgan, vgg_features_file, write_sr_data


@pytest.fixture
def sr_data(tmp_path: Path) -> Path:
    return write_sr_data(tmp_path / "sr")


def _float_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(path).items() if v.is_floating_point()}


def test_phase_one_trains_g_alone_then_phase_two_trains_both(sr_data, tmp_path):
    plugin = tiny_srgan(sr_data, train={"checkpoint_every": 2, "keep_checkpoints": 5})
    run = tmp_path / "run"
    trainer = Trainer(plugin, run)
    with pytest.warns(UserWarning, match="falls back to pixel MSE"):  # said at set-up, before any step
        trainer.setup()
    assert trainer.aux == {}
    d0 = {k: v.clone() for k, v in trainer.nets["D"].state_dict().items() if v.is_floating_point()}
    g0 = {k: v.clone() for k, v in trainer.nets["G"].state_dict().items() if v.is_floating_point()}
    trainer.fit()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in rows if "step" in r}
    assert "G/mse" in by_step[2] and not any(k.startswith("D/") for k in by_step[2])
    assert {"D/real", "D/fake", "G/content", "G/adversarial"} <= set(by_step[4])
    after_one = run / "checkpoints" / "step_00000002"
    d1, g1 = _float_state(after_one / "D.safetensors"), _float_state(after_one / "G.safetensors")
    assert all(torch.equal(d0[k], d1[k]) for k in d0)  # D untouched in phase 1
    assert not all(torch.equal(g0[k], g1[k]) for k in g0)
    d2 = _float_state(run / "checkpoints" / "step_00000004" / "D.safetensors")
    assert not all(torch.equal(d1[k], d2[k]) for k in d1)  # D trained in phase 2


def test_srresnet_only_when_phase_one_covers_the_run(sr_data):
    plugin = tiny_srgan(sr_data, phases={"srresnet": 10})
    assert [p.name for p in plugin.phases()] == ["srresnet"]
    plugin = tiny_srgan(sr_data)
    phases = plugin.phases()
    assert [(p.name, p.steps, p.keep_best) for p in phases] == [("srresnet", 2, True), ("srgan", None, False)]


def test_batches_are_random_patches_with_bicubic_lr(sr_data):
    plugin = tiny_srgan(sr_data)
    data = plugin.build_dataset()
    assert data.skipped == 1  # tiny.png is smaller than the 24 px tile
    tiles = from_uint8(data.tensors["image"][:4])
    ctx = StepContext({}, torch.device("cpu"), 0, 4, "srresnet", torch.Generator(), torch.Generator().manual_seed(1))
    a = plugin.prepare_batch({"image": tiles}, ctx)
    b = plugin.prepare_batch({"image": tiles}, ctx)
    assert a["hr"].shape == (4, 3, 16, 16) and a["lr"].shape == (4, 3, 4, 4)
    assert torch.allclose(a["lr"], bicubic_downscale(a["hr"], 4).clamp(-1, 1))
    assert not torch.equal(a["hr"], b["hr"])  # a new crop / flip each time


def test_missing_training_folder_names_the_setting(sr_data):
    plugin = tiny_srgan(sr_data, data={"train_sets": ["nope/HR"]})
    with pytest.raises(DataError, match=r"nope/HR.*data\.train_sets"):
        plugin.build_dataset()


# ---- content loss ----------------------------------------------------------------------------------


def test_srgan_phase_uses_vgg_when_weights_are_given(sr_data, tmp_path):
    path = vgg_features_file(tmp_path)
    plugin = tiny_srgan(sr_data, loss={"vgg_weights": str(path)}, phases={"srresnet": 1}, train={"max_steps": 2})
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.fit()
    content = trainer.aux["content"]  # built by the plugin's build_aux, placed by the engine
    assert isinstance(content, VGGContentLoss)
    assert not content.training and not any(p.requires_grad for p in content.parameters())


def _random_srresnet() -> SRResNet:
    torch.manual_seed(0)
    G = SRResNet(4, 3, width=8, blocks=2)
    for m in G.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return G.eval()


def test_tiled_inference_equals_whole_image_inference():
    G = _random_srresnet()
    x = torch.rand(1, 3, 23, 31) * 2 - 1
    with torch.no_grad():
        whole = G(x)
        tiled = tiled_apply(G, x, 4, tile=7, overlap=G.receptive_radius())
        short = tiled_apply(G, x, 4, tile=7, overlap=2)
    assert tiled.shape == whole.shape == (1, 3, 92, 124)
    assert torch.allclose(tiled, whole, atol=1e-5)
    assert not torch.allclose(short, whole, atol=1e-3)  # too little overlap shows at the seams


def test_plugin_upscale_is_tiled_and_reports_progress(sr_data):
    plugin = tiny_srgan(sr_data, model={"width": 8, "blocks": 2}, eval={"tile": 6})
    G = _random_srresnet()
    x = torch.rand(1, 3, 13, 20) * 2 - 1
    seen = []
    out = plugin.upscale(G, x, progress=lambda done, total: seen.append((done, total)))
    with torch.no_grad():
        assert torch.allclose(out, G(x), atol=1e-5)
    assert seen[-1] == (12, 12) and len(seen) == 12  # 3 x 4 tiles of 6 px


class BicubicG(nn.Module):
    """A 'generator' that is plain bicubic upscaling: its scores must equal the bicubic row."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)


def test_evaluate_reports_y_and_rgb_with_bicubic_alongside(sr_data, tmp_path):
    plugin = tiny_srgan(sr_data, eval={"tile": 64})
    metrics = plugin.evaluate({"G": BicubicG()}, EvalContext(torch.device("cpu"), 7, tmp_path / "eval"))
    for row in ("Bench", "Bench/bicubic"):
        assert {f"{row}/{m}" for m in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")} <= set(metrics)
    assert metrics["Bench/psnr_y"] == pytest.approx(metrics["Bench/bicubic/psnr_y"], abs=0.05)
    assert metrics["Bench/ssim_rgb"] == pytest.approx(metrics["Bench/bicubic/ssim_rgb"], abs=1e-3)
    assert 15 < metrics["Bench/bicubic/psnr_y"] < 60
    assert (tmp_path / "eval" / "step_00000007.png").is_file()
    zero = plugin.evaluate({"G": _random_srresnet()}, EvalContext(torch.device("cpu"), 8, tmp_path / "eval"))
    assert zero["Bench/psnr_y"] < metrics["Bench/psnr_y"] - 3  # an untrained G scores far below bicubic


def test_gantk_eval_scores_a_run_on_its_benchmarks(tmp_path):
    """gantk eval on an SRGAN run: the benchmark sets are read again from the data its config names."""
    import json

    from gantk.cli import main
    from tests.helpers.sr import tiny_sr_run

    run = tiny_sr_run(tmp_path, steps=2)
    assert main(["eval", str(run), "--device", "cpu", "-o", str(tmp_path / "score")]) == 0
    scored = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert scored["step"] == 2 and scored["Bench/psnr_y"] > 0 and "Bench/bicubic/psnr_y" in scored


def test_gantk_sample_refuses_a_super_resolution_model_naming_what_serves_it(tmp_path, capsys):
    from gantk.cli import main
    from tests.helpers.sr import tiny_sr_run

    run = tiny_sr_run(tmp_path, steps=1)
    assert main(["sample", str(run), "--device", "cpu", "-o", str(tmp_path / "g.png")]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert (
        "does not sample from noise (it serves translate, upscale); gantk translate or gantk upscale serves it" in said
    )
    assert not (tmp_path / "g.png").exists()


def test_evaluate_adds_lpips_with_weights_and_writes_the_protocol(sr_data, tmp_path):
    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    weights = tmp_path / "alexnet.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}, str(weights))
    plugin = tiny_srgan(sr_data, eval={"tile": 64, "lpips_weights": str(weights)})
    ctx = EvalContext(torch.device("cpu"), 7, tmp_path / "eval")
    metrics = plugin.evaluate({"G": BicubicG()}, ctx)
    assert metrics["Bench/lpips"] == pytest.approx(metrics["Bench/bicubic/lpips"], abs=1e-3)
    assert metrics["Bench/lpips"] > 0
    worse = plugin.evaluate({"G": _random_srresnet()}, EvalContext(torch.device("cpu"), 8, tmp_path / "eval"))
    assert worse["Bench/lpips"] > metrics["Bench/lpips"]
    card = ctx.protocol
    assert card["y"].startswith("PSNR/SSIM on BT.601") and "4-pixel" in card["rgb"] and card["lpips"].startswith("alex")
    assert card["Bench"]["images"] == len(plugin.benchmarks()["Bench"]) and len(card["Bench"]["sha256"]) == 64
    plain = tiny_srgan(sr_data, eval={"tile": 64})
    plain_ctx = EvalContext(torch.device("cpu"), 7, tmp_path / "eval")
    assert "Bench/lpips" not in plain.evaluate({"G": BicubicG()}, plain_ctx) and "lpips" not in plain_ctx.protocol
    with pytest.raises(ConfigError, match=r"nope.pth does not exist \(eval.lpips_weights\)"):
        tiny_srgan(sr_data, eval={"lpips_weights": str(tmp_path / "nope.pth")}, train={"eval_every": 5}).check_config()


def test_data_limit_keeps_the_first_tiles(tmp_path):
    """SRGAN ignored data.limit (issue 33)."""
    root = write_sr_data(tmp_path / "sr")
    full = len(tiny_srgan(root).build_dataset())
    limited = tiny_srgan(root, data={"limit": 3}).build_dataset()
    assert full > 3 and len(limited) == 3
    assert torch.equal(limited.tensors["image"], tiny_srgan(root).build_dataset().tensors["image"][:3])
