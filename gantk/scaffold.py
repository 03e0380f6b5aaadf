"""``gantk plugins new NAME``: write a working, installable plugin package to start from.

The package holds a small DCGAN-style GAN that trains as written. Its pyproject declares the
``gantk.plugins`` entry point, and its test runs the conformance kit. Rename, then replace the
networks and losses.
"""

from __future__ import annotations

import re
from pathlib import Path

from gantk import __version__
from gantk.errors import GantkError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

PYPROJECT = """[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "gantk-{dist}"
version = "0.1.0"
description = "{name}: a gantk plugin"
requires-python = ">=3.10"
dependencies = ["gantk>={gantk_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# gantk finds the plugin through this entry point once the package is installed
[project.entry-points."gantk.plugins"]
{name} = "{package}.plugin:{cls}"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["defaults.yaml"]
"""

INIT = '''"""{name}: a gantk plugin."""

from {package}.plugin import {cls}

__all__ = ["{cls}"]
'''

PLUGIN = '''"""{name}: a gantk plugin.

A small DCGAN-style GAN to start from. It trains as written. Replace the networks and the losses,
keep the contract: build_networks, phases, loss functions returning named terms, sample_inputs.
See gantk's docs/plugins.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, EvalContext, GanPlugin, Phase, StepContext
from gantk.config import Width
from gantk.metrics import sample_metrics


@dataclass
class Model:  # every number has a range (gantk.config): a bad value is refused before any work
    nz: Width = 64  # length of the noise vector
    width: Width = 32  # channels of the widest hidden layer


@dataclass
class {cls}Config(Config):
    model: Model = field(default_factory=Model)


def generator(nz: int, width: int, channels: int) -> nn.Module:
    """z -> 4x4 -> 8x8 -> 16x16 -> 32x32 image in [-1, 1]."""
    return nn.Sequential(
        nn.Unflatten(1, (nz, 1, 1)),
        nn.ConvTranspose2d(nz, width, 4, 1, 0), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.BatchNorm2d(width // 2), nn.ReLU(True),
        nn.ConvTranspose2d(width // 2, width // 4, 4, 2, 1), nn.BatchNorm2d(width // 4), nn.ReLU(True),
        nn.ConvTranspose2d(width // 4, channels, 4, 2, 1), nn.Tanh(),
    )


def discriminator(width: int, channels: int) -> nn.Module:
    """32x32 image -> one logit."""
    return nn.Sequential(
        nn.Conv2d(channels, width // 4, 4, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width // 4, width // 2, 4, 2, 1), nn.BatchNorm2d(width // 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width // 2, width, 4, 2, 1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width, 1, 4, 1, 0), nn.Flatten(0),
    )


class {cls}(GanPlugin):
    name = "{name}"
    description = "{name}: a small DCGAN-style GAN made by gantk plugins new"
    config_class = {cls}Config

    cfg: {cls}Config

    def build_networks(self) -> dict[str, nn.Module]:
        m, channels = self.cfg.model, self.cfg.data.channels
        return {{"G": generator(m.nz, m.width, channels), "D": discriminator(m.width, channels)}}

    def phases(self) -> list[Phase]:
        # one D step, then one G step with D frozen. Other rhythms (gantk's docs/plugins.md):
        #   Phase.alternating(self.d_loss, self.g_loss, d_repeat=5)        WGAN's 5 critic steps
        #   Update(("G", "Q"), self.g_loss, freeze=("D",), optimizer="G")  one optimizer over two networks
        return [Phase.alternating(self.d_loss, self.g_loss)]

    # Frozen modules a loss needs (a feature network for a perceptual loss) are built here, placed on the
    # device by the engine and read in the losses as ctx.aux["name"]; never build them inside a loss:
    # def build_aux(self) -> dict[str, nn.Module]:
    #     return {{"features": load_my_frozen_feature_network()}}

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        real = batch["image"]
        fake = ctx.nets["G"](ctx.randn(len(real), self.cfg.model.nz))
        ctx.scratch["fake"] = fake
        real_logits, fake_logits = ctx.nets["D"](real), ctx.nets["D"](fake.detach())
        ctx.observe_real(real_logits)  # lets train.augment.adaptive (ADA) steer its p
        return {{
            "real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
        }}

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        logits = ctx.nets["D"](ctx.scratch.pop("fake"))
        return {{"adv": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}}

    def sample_inputs(self, n: int, generator: torch.Generator, **conditions) -> dict[str, torch.Tensor]:
        return {{"z": torch.randn(n, self.cfg.model.nz, generator=generator)}}

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """FID/KID of samples with eval.fid_weights (docs/metrics.md); kid_pixels without (train.eval_every)."""
        return sample_metrics(self, nets["G"], ctx)
'''

DEFAULTS = """# {name} defaults
data:
  name: mnist            # a dataset name or any image folder
  image_size: 32         # the networks in plugin.py are built for 32x32
  channels: 0            # 0: as the data is
train:
  batch_size: 64
  max_steps: 5000
  sample_every: 500
  checkpoint_every: 1000
optim:
  G: {{name: adam, lr: 2.0e-4, betas: [0.5, 0.999]}}
  D: {{name: adam, lr: 2.0e-4, betas: [0.5, 0.999]}}
model:
  nz: 64
  width: 32
"""

TEST = '''"""The gantk conformance kit on this plugin, with tiny settings so it runs in seconds."""

from pathlib import Path

import numpy as np
from PIL import Image

from gantk.testing import check_plugin


def test_{name}_conforms(tmp_path: Path):
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"{{i}}.png")
    check_plugin(
        "{name}", data=data, overrides=["model.width=8", "model.nz=8", "train.batch_size=4"], workdir=tmp_path
    )
'''

README = """# gantk-{dist}

A gantk plugin, made by `gantk plugins new {name}`.

```
pip install -e .                 # registers the entry point gantk.plugins: {name}
gantk plugins                    # lists {name} as installed
gantk train {name} --data mnist --max-steps 200
pytest tests                     # the gantk conformance kit
```

Edit `{package}/plugin.py` (networks, losses, sampling) and `{package}/defaults.yaml`.
"""


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def scaffold(name: str, folder: Path) -> list[Path]:
    """Write the package for plugin ``name`` into ``folder``; returns the files written."""
    if not NAME.match(name):
        raise GantkError(
            f"plugin name {name!r} is not valid: use lower-case letters, digits and underscores, starting with "
            "a letter (it becomes a Python package and an entry-point name)."
        )
    if folder.exists() and not folder.is_dir():
        raise GantkError(f"--dir {folder} is a file; choose a folder. Nothing was written.")
    if folder.exists() and any(folder.iterdir()):
        raise GantkError(f"{folder} exists and is not empty; choose another --dir. Nothing was written.")
    package = f"gantk_{name}"
    fields = {
        "name": name,
        "dist": name.replace("_", "-"),
        "package": package,
        "cls": camel(name),
        "gantk_version": __version__,
    }
    files = {
        "pyproject.toml": PYPROJECT,
        f"{package}/__init__.py": INIT,
        f"{package}/plugin.py": PLUGIN,
        f"{package}/defaults.yaml": DEFAULTS,
        f"tests/test_{name}.py": TEST,
        "README.md": README,
    }
    written = []
    try:
        for rel, template in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**fields), encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise GantkError(f"cannot write the plugin into {folder}: {exc.strerror or exc} ({exc.filename}).") from None
    return written
