"""pix2pix: the paper's networks, identical paired jitter, side-effect-free test mode, training, translate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gantk import registry
from gantk.engine import Trainer
from gantk.engine.resolve import resolve_run
from gantk.plugin import StepContext
from tests.helpers import REPO, SHARED_DATA
from tests.helpers.pairs import write_side_by_side


def make(dataset: Path | str = "facades", **sections):
    spec, cls = registry.load("pix2pix")
    cfg = registry.make_config(spec, cls, [(sections, "test")])
    cfg.data.name = str(dataset)
    return cls(cfg)


def tiny(data: Path, **train):
    """32x32 U-Net with 5 levels, 4 filters wide; 8 training pairs + 4 held out."""
    return make(
        data,
        data={"image_size": 32, "load_size": 36, "holdout": 4},
        model={"ngf": 4, "ndf": 4, "num_downs": 5},
        epochs={"constant": 1, "decay": 1},
        train={"device": "cpu", "log_every": 4, "sample_every": 8, "eval_every": 8, "tensorboard": False, **train},
    )


def test_unet_256_and_70x70_patchgan():
    plugin = make()
    plugin.cfg.data.channels = 3
    nets = plugin.build_networks()
    G, D = nets["G"], nets["D"]
    x = torch.randn(1, 3, 256, 256)
    G.eval()
    assert G(x).shape == (1, 3, 256, 256)
    assert D(torch.cat([x, x], 1)).shape == (1, 1, 30, 30)  # 70x70 PatchGAN: 30x30 patches on 256x256
    downs = [m for m in G.modules() if isinstance(m, nn.Conv2d)]
    assert len(downs) == 8 and downs[-1].out_channels == 512  # 8 halvings: 256 -> 1
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in G.modules()) == 3


def test_patchgan_variants_and_instance_norm():
    plugin = make(model={"n_layers": 0, "norm": "instance"})
    plugin.cfg.data.channels = 3
    D = plugin.build_networks()["D"]
    assert D(torch.randn(1, 6, 64, 64)).shape == (1, 1, 64, 64)  # PixelGAN: one logit per pixel
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_paired_jitter_is_identical_for_input_and_target(tmp_path):
    plugin = tiny(tmp_path)
    img = torch.rand(3, 3, 32, 32) * 2 - 1
    batch = {"A": img, "B": img.clone()}
    ctx = StepContext({}, torch.device("cpu"), 0, 1, "gan", torch.Generator(), torch.Generator().manual_seed(3))
    out = plugin.prepare_batch(batch, ctx)
    assert out["input"].shape == (3, 3, 32, 32)
    assert torch.equal(out["input"], out["target"])  # the same crop and flip on both
    assert not torch.equal(out["input"], img)  # and a jitter did happen (36 -> random 32 crop)


def test_direction_picks_input_side(tmp_path):
    plugin = tiny(tmp_path, batch_size=1)
    plugin.cfg.data.load_size, plugin.cfg.data.flip = 32, False
    a, b = torch.full((1, 3, 32, 32), -0.5), torch.full((1, 3, 32, 32), 0.5)
    ctx = StepContext({}, torch.device("cpu"), 0, 1, "gan", torch.Generator(), torch.Generator())
    assert plugin.prepare_batch({"A": a, "B": b}, ctx)["input"].mean() == 0.5  # BtoA: label map B is the input
    plugin.cfg.data.direction = "AtoB"
    assert plugin.prepare_batch({"A": a, "B": b}, ctx)["input"].mean() == -0.5


def _module():
    spec, cls = registry.load("pix2pix")
    return sys.modules[cls.__module__]


def test_train_mode_inference_keeps_dropout_but_not_state():
    paper_test_mode = _module().paper_test_mode
    plugin = make(model={"ngf": 4, "num_downs": 5}, data={"image_size": 32})
    plugin.cfg.data.channels = 3
    G = plugin.build_networks()["G"].eval()
    stats = {k: v.clone() for k, v in G.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    rng = torch.get_rng_state()
    with torch.no_grad():
        y1 = plugin.translate(G, x[:1], train_mode=True)
        y2 = plugin.translate(G, x[:1], train_mode=True)
        with paper_test_mode(G, torch.device("cpu")):
            G(x)
    y_eval = plugin.translate(G, x[:1], train_mode=False)
    assert not torch.allclose(y1, y_eval)  # dropout and batch statistics are on
    assert torch.equal(y1, y2)  # and reproducible: the global random state is restored each time
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in stats.items())  # running stats untouched
    assert torch.equal(rng, torch.get_rng_state()) and not G.training


def test_translate_any_size_returns_the_input_size():
    plugin = make(model={"ngf": 4, "num_downs": 5}, data={"image_size": 32})
    plugin.cfg.data.channels = 3
    G = plugin.build_networks()["G"].eval()
    y = plugin.translate(G, torch.rand(1, 3, 45, 70) * 2 - 1)
    assert y.shape == (1, 3, 45, 70) and y.abs().max() <= 1


def test_training_schedule_eval_report_and_translate_cli(tmp_path):
    data = write_side_by_side(tmp_path / "pairs", n=12)
    plugin = tiny(data)
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    # max_steps 0 -> (1 + 1) epochs x 8 training pairs at batch 1; decay from the second epoch on
    assert plugin.cfg.train.max_steps == 16 and plugin.cfg.schedule.decay_start == 8
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "eval/l1" in r]
    assert [r["step"] for r in evals] == [8, 16]
    assert {"eval/psnr", "eval/ssim"} <= set(evals[-1]) and 0 <= evals[-1]["eval/ssim"] <= 1
    assert lines[-2]["lr/G"] == pytest.approx(0.0)  # linear decay reached zero at the end
    assert (run / "eval" / "step_00000016.png").is_file() and (run / "eval" / "report.html").is_file()
    best = json.loads((run / "checkpoints" / "best" / "config.json").read_text())
    assert best["best_metric"] == "l1"
    report = Image.open(run / "eval" / "step_00000016.png")
    assert report.size == (12 * 34 + 2, 34 + 2)  # 4 held-out triplets in one row of 12 tiles

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (50, 37), (10, 200, 30)).save(src / "a.png")
    Image.new("L", (64, 64), 90).save(src / "b.jpg")
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "gantk", "translate", str(run), str(src), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 37)
    assert Image.open(tmp_path / "out" / "b.png").size == (64, 64)

    # gantk eval on a pix2pix run: the held-out pairs are read again from the data its config names
    from gantk.cli import main

    assert main(["eval", str(run), "--best", "--device", "cpu", "-o", str(tmp_path / "score")]) == 0
    scored = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert scored["l1"] == pytest.approx(evals[0]["eval/l1"] if scored["step"] == 8 else evals[1]["eval/l1"], abs=1e-6)


def test_a_large_image_is_translated_in_tiles_of_eval_tile(tmp_path):
    plugin = tiny(write_side_by_side(tmp_path / "p", n=4))
    plugin.cfg.data.channels = 3
    plugin.cfg.eval.tile = 64
    G = plugin.build_networks()["G"].eval()
    seen = []
    real_forward = G.forward
    G.forward = lambda x: seen.append(tuple(x.shape[-2:])) or real_forward(x)
    image = torch.rand(1, 3, 150, 100) * 2 - 1
    out = plugin.translate(G, image)
    assert out.shape == (1, 3, 150, 100)
    assert len(seen) == 6 and max(max(s) for s in seen) <= 64 + 2 * 8 + 32  # tile + context, padded to 2**5
    small = torch.rand(1, 3, 40, 60) * 2 - 1
    seen.clear()
    assert plugin.translate(G, small).shape == (1, 3, 40, 60) and len(seen) == 1  # whole, as before


def test_holdout_too_large(tmp_path):
    from gantk.errors import DataError

    plugin = tiny(write_side_by_side(tmp_path / "p", n=4))
    plugin.cfg.data.holdout = 4
    with pytest.raises(DataError, match="leaves no training pairs"):
        plugin.build_dataset()


@pytest.mark.skipif(not (SHARED_DATA / "facades").is_dir(), reason="no shared datasets here")
def test_default_config_is_the_paper_schedule_on_real_facades(monkeypatch):
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))
    plugin = make()
    train = resolve_run(plugin)
    assert len(train) == 360 and len(plugin.heldout_pairs()) == 40  # the last 40 of 400 are held out
    assert plugin.cfg.train.max_steps == 200 * 360 and plugin.cfg.schedule.decay_start == 100 * 360
    assert plugin.cfg.train.batch_size == 1 and plugin.cfg.optim["G"].lr == pytest.approx(2e-4)


def test_fid_with_weights_from_a_file_and_skipped_without(tmp_path, recwarn, fid_weights):
    """FID and KID come from gantk.metrics with the FID Inception weights (random ones, made in the test);
    without weights a warning says they are skipped."""
    plugin = tiny(write_side_by_side(tmp_path / "p", n=8))
    plugin.cfg.data.channels = 3
    plugin.build_dataset()
    G = plugin.build_networks()["G"].eval()
    from gantk.plugin import EvalContext

    with torch.no_grad():
        metrics = plugin.evaluate({"G": G}, EvalContext(torch.device("cpu"), 0, tmp_path / "eval"))
    assert "fid" not in metrics and any("FID and KID skipped" in str(w.message) for w in recwarn)
    plugin.cfg.eval.fid_weights = str(fid_weights)
    ctx = EvalContext(torch.device("cpu"), 0, tmp_path / "eval")
    with torch.no_grad():
        metrics = plugin.evaluate({"G": G}, ctx)
    assert metrics["fid"] > 0 and "kid" in metrics and set(plugin.metric_names()) == set(metrics)
    from gantk.io.checkpoint import sha256
    from gantk.metrics.fid import images_sha256

    card = ctx.protocol  # the held-out pairs and the network that scored them
    targets = plugin._inputs_targets(plugin.heldout_pairs())[1]
    assert card["reference"].endswith("the last 4 pairs (held out, never trained on)") and card["direction"] == "BtoA"
    assert card["pairs"] == card["real"] == card["generated"] == 4 and card["real_sha256"] == images_sha256(targets)
    assert card["weights_sha256"] == sha256(fid_weights) and card["test_mode"] == "eval"


def test_preview_inputs_are_the_held_out_label_maps_read_without_build_dataset(tmp_path):
    plugin = tiny(write_side_by_side(tmp_path / "p", n=12))
    preview = plugin.preview_inputs(3, torch.Generator())["input"]  # a fresh plugin: no build_dataset ran
    held = plugin._inputs_targets(plugin.heldout_pairs())[0]
    assert preview.shape == (3, 3, 32, 32) and torch.equal(preview, held[:3])
    with pytest.raises(NotImplementedError, match="gantk translate"):
        plugin.sample_inputs(3, torch.Generator())  # pix2pix does not sample from noise


def test_a_run_with_evaluations_leaves_nothing_on_the_plugin_but_its_config(tmp_path):
    """The held-out pairs are read once per run into the engine's evaluation cache, not kept on the plugin."""
    plugin = tiny(write_side_by_side(tmp_path / "p", n=12), max_steps=4, eval_every=2, sample_every=2)
    reads = []
    heldout = plugin.heldout_pairs
    plugin.heldout_pairs = lambda: reads.append(1) or heldout()
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.fit()
    evaluated = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evaluated if "eval/l1" in r] == [2, 4] and len(reads) == 1
    assert set(vars(plugin)) == {"cfg", "heldout_pairs"}  # the config, and the test's own wrapper
    assert "pix2pix: held-out pairs" in trainer.eval_cache
