"""Non-square images: ``data.image_size: [height, width]`` for the fully convolutional plugins (pix2pix at
256x512, CycleGAN), through training, sample grids, evaluation, translation and export; refused in one
paragraph by the plugins whose architecture is square."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import registry
from gantk.config import height_width
from gantk.data import jitter
from gantk.deploy import export_model
from gantk.engine import Trainer
from gantk.errors import ConfigError
from tests.helpers import tiny_dcgan, tiny_plugin
from tests.test_cli import gantk


def _wide_pairs(root, n=6, h=64, w=128):
    """pix2pix pairs of h x w images side by side; B is a function of A."""
    rng = np.random.default_rng(3)
    (root / "train").mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / "train" / f"{i + 1}.png")
    return root


def test_pix2pix_trains_samples_evaluates_translates_and_exports_at_256x512(tmp_path):
    data = _wide_pairs(tmp_path / "pairs")
    run = tmp_path / "run"
    spec, plugin = tiny_plugin(
        "pix2pix",
        {
            "data": {"name": str(data), "image_size": [256, 512], "load_size": [264, 528], "holdout": 2},
            "model": {"ngf": 4, "ndf": 4},
            "train": {
                "device": "cpu", "max_steps": 2, "log_every": 1, "sample_every": 2, "sample_count": 2,
                "eval_every": 2, "tensorboard": False,
            },
        },
        {},
    )  # fmt: skip
    assert plugin.cfg.data.image_size == (256, 512)
    trainer = Trainer(plugin, run, spec)
    trainer.fit()
    trainer.close()
    assert trainer.dataset[0]["A"].shape == (3, 256, 512)  # decoded at the shape
    with Image.open(run / "samples" / "step_00000002.png") as grid:  # two cells side by side, 2-pixel borders
        assert grid.size == (2 + 2 * (512 + 2), 2 + 256 + 2)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluation = next(r for r in records if "eval/l1" in r)
    assert evaluation["step"] == 2 and {"eval/psnr", "eval/ssim"} <= set(evaluation)
    saved = json.loads((run / "checkpoints" / "step_00000002" / "config.json").read_text())
    assert saved["config"]["data"]["image_size"] == [256, 512]

    Image.fromarray(np.zeros((256, 512, 3), np.uint8)).save(tmp_path / "labels.png")
    out = gantk("translate", str(run), str(tmp_path / "labels.png"), "-o", str(tmp_path / "photo.png"))
    assert out.returncode == 0, out.stderr
    with Image.open(tmp_path / "photo.png") as photo:
        assert photo.size == (512, 256)

    info = export_model(run, tmp_path / "onnx", "onnx")
    assert info["parity"]["max_abs_diff"]["traced shapes"] <= 1e-4  # checked against PyTorch at that shape
    assert info["inputs"][0]["example_shape"][2:] == [256, 512]


def test_the_jitter_crops_height_and_width_each_in_its_own_range():
    images = torch.linspace(-1, 1, 2 * 10 * 20).view(2, 1, 10, 20)
    u = torch.tensor([[0.0, 0.999], [0.999, 0.0]])  # first image: top right; second: bottom left
    out = jitter.resize_and_crop(images, (10, 20), (8, 12), u, None)  # loaded at its own size: a crop alone
    assert out.shape == (2, 1, 8, 12)
    assert torch.allclose(out[0], images[0, :, 0:8, 8:20]) and torch.allclose(out[1], images[1, :, 2:10, 0:12])
    flipped = jitter.resize_and_crop(images, (10, 20), (8, 12), u, torch.tensor([True, False]))
    assert torch.allclose(flipped[0], images[0, :, 0:8, 8:20].flip(-1))
    same = jitter.resize_and_crop(images, (10, 20), (10, 20), u, None)  # load = crop: neither resized nor moved
    assert torch.equal(same, images)


def test_cyclegan_trains_on_non_square_crops(tmp_path):
    rng = np.random.default_rng(0)
    for side in "AB":
        (tmp_path / "u" / f"train{side}").mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "u" / f"train{side}" / f"{i}.png")
    spec, plugin = tiny_plugin(
        "cyclegan",
        {
            "data": {"name": str(tmp_path / "u"), "image_size": [16, 32], "load_size": [20, 36]},
            "model": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers": 2, "pool_size": 2},
            "train": {"device": "cpu", "max_steps": 2, "batch_size": 2, "sample_every": 2, "sample_count": 2,
                      "eval_every": 0, "tensorboard": False},
        },
        {},
    )  # fmt: skip
    trainer = Trainer(plugin, tmp_path / "run", spec)
    trainer.fit()
    trainer.close()
    assert trainer.nets["pool_A"].images.shape[-2:] == (16, 32)
    with Image.open(tmp_path / "run" / "samples" / "step_00000002.png") as grid:
        assert grid.size == (2 + 2 * (32 + 2), 2 + 16 + 2)


@pytest.mark.parametrize("name", ["dcgan", "cgan", "infogan", "stylegan2"])
def test_the_square_plugins_refuse_a_height_and_width_in_one_paragraph(name, image_folder, tmp_path):
    out = gantk("train", name, "--data", str(image_folder), "--out", str(tmp_path / "run"), "--device", "cpu",
                "--set", "data.image_size=[32,64]")  # fmt: skip
    assert out.returncode == 2
    assert f"plugin '{name}' builds square images only" in out.stderr and "[height, width]" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


def test_a_square_plugin_given_a_square_height_and_width_is_told_to_give_one_number(image_folder, tmp_path):
    """[32, 32] is a square, but DCGAN's networks read one number: refused up front (it crashed in them)."""
    out = gantk("train", "dcgan", "--data", str(image_folder), "--out", str(tmp_path / "run"), "--device", "cpu",
                "--set", "data.image_size=[32,32]")  # fmt: skip
    assert out.returncode == 2 and "takes one number (data.image_size=32)" in out.stderr


def test_a_size_is_one_side_or_a_height_and_width(image_folder):
    assert height_width(64) == (64, 64) and height_width([32, 48]) == (32, 48)
    _, plugin = tiny_dcgan(image_folder)
    spec, cls = registry.load("pix2pix")
    with pytest.raises(ConfigError, match=r"'data.image_size'.*must be a list of 2 values"):
        registry.make_config(spec, cls, overrides=["data.image_size=[256,512,3]"])
    with pytest.raises(ConfigError, match=r"'data.image_size'.*must be a whole number"):
        registry.make_config(spec, cls, overrides=["data.image_size=wide"])
