"""A tiny super-resolution dataset and SRGAN runs small enough for CPU tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from gantk.engine import Trainer
from tests.helpers import tiny_plugin


def _texture(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """Smooth colour gradients with a few stripes: something a 4x model can learn a little of."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for _ in range(3):
        a, b, f = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.1, 0.5)
        planes.append(127 + 60 * np.sin(f * (a * x + b * y)) + 40 * (x / w - y / h))
    return Image.fromarray(np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8))


def write_sr_data(root: Path, n_train: int = 6, size: int = 40) -> Path:
    """``root/train/HR`` (n_train images plus one too small to crop) and ``root/Bench`` with 2 HR/LR pairs."""
    rng = np.random.default_rng(0)
    (root / "train" / "HR").mkdir(parents=True)
    for i in range(n_train):
        _texture(rng, size, size + 4 * i).save(root / "train" / "HR" / f"img{i}.png")
    _texture(rng, 10, 10).save(root / "train" / "HR" / "tiny.png")
    for sub in ("HR", "LR_bicubic/X4"):
        (root / "Bench" / sub).mkdir(parents=True)
    for i in range(2):
        hr = _texture(rng, 32, 36)
        hr.save(root / "Bench" / "HR" / f"b{i}.png")
        hr.resize((9, 8), Image.Resampling.BICUBIC).save(root / "Bench" / "LR_bicubic" / "X4" / f"b{i}.png")
    return root


def tiny_srgan(root: Path, **sections):
    """SRGAN 4x with G 4 channels wide and 1 block, 16x16 HR patches from 24x24 tiles."""
    layer = {
        "data": {"name": str(root), "train_sets": ["train/HR"], "patch": 16, "tile": 24, "stride": 8},
        "model": {"width": 4, "blocks": 1, "d_width": 4},
        "loss": {"vgg_weights": ""},
        "phases": {"srresnet": 2},
        "eval": {"benchmarks": ["Bench"], "tile": 5},
        "train": {
            "batch_size": 4,
            "max_steps": 4,
            "device": "cpu",
            "log_every": 1,
            "sample_every": 0,
            "sample_count": 2,
            "eval_every": 0,
            "checkpoint_every": 100,
            "tensorboard": False,
        },
    }
    return tiny_plugin("srgan", layer, sections)[1]


def tiny_sr_run(root: Path, steps: int) -> Path:
    """A trained ``root/run`` of ``steps`` SRResNet-only steps on the tiny dataset written under ``root/sr``."""
    plugin = tiny_srgan(write_sr_data(root / "sr"), phases={"srresnet": steps}, train={"max_steps": steps})
    Trainer(plugin, root / "run").fit()
    return root / "run"


def vgg_features_file(tmp_path: Path) -> Path:
    """Random (not ImageNet) VGG19 trunk weights in torchvision's key layout: the loader's test input."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    state = {f"features.{k}": v.contiguous() for k, v in vgg19(weights=None).features.state_dict().items()}
    path = tmp_path / "vgg19-features.safetensors"
    save_file(state, str(path))
    return path
