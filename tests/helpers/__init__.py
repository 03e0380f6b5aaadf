"""Test helpers: tiny synthetic datasets and a tiny DCGAN, so engine tests run in seconds.

One module per subject: ``sr`` (super-resolution data and runs), ``pairs`` (pix2pix pairs), ``labels``
(labelled data and a CGAN checkpoint), ``apps`` (loading the Gradio apps)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gantk import registry

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("GANTK_DATA", REPO.parent / "shared" / "datasets"))


def write_image_folder(root: Path, n: int = 32, size: int = 20, mode: str = "RGB", classes: int = 0) -> Path:
    """``n`` random images; in ``classes`` sub-folders when classes > 0."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % classes}" if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        shape = (size, size, 3) if mode == "RGB" else (size, size)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(1)
    raw = root / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", n), ("t10k", n // 2)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (count,)))
    return root


def tiny_dcgan(dataset: Path | str, /, **sections):
    """A DCGAN plugin instance, 16x16, 4 channels wide: a training step takes milliseconds on CPU."""
    layer = {
        "data": {"name": str(dataset), "image_size": 16},
        "model": {"ngf": 4, "ndf": 4, "nz": 8},
        "train": {
            "batch_size": 8,
            "max_steps": 6,
            "device": "cpu",
            "log_every": 2,
            "sample_every": 3,
            "sample_count": 4,
            "checkpoint_every": 100,
            "eval_every": 0,  # DCGAN evaluates every 2000 steps by default; tests that need it turn it on
            "tensorboard": False,
        },
    }
    return tiny_plugin("dcgan", layer, sections)


def tiny_plugin(name: str, layer: dict, sections: dict):
    """``(spec, plugin)`` for plugin ``name`` configured by ``layer``, with ``sections`` merged over it."""
    spec, cls = registry.load(name)
    for section, values in sections.items():
        layer.setdefault(section, {}).update(values)
    return spec, cls(registry.make_config(spec, cls, [(layer, "test")]))


def install_package(source: Path, root: Path) -> Path:
    """pip-install the package at ``source`` into ``root/site`` (not into the test environment)."""
    import shutil
    import subprocess
    import sys

    copy = shutil.copytree(source, root / "src")  # builds write into the source folder: keep the checkout clean
    target = root / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return target


def run_python(site: Path | None, *args: str, cwd: Path = REPO):
    """``python ARGS`` in a subprocess, with ``site`` on the path when given."""
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "200"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def trained_dcgan_run(tmp_path: Path, image_folder: Path) -> Path:
    """A tiny DCGAN trained for its six steps into ``tmp_path/run``."""
    from gantk.engine import Trainer

    _, plugin = tiny_dcgan(image_folder)
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    return run


def rewrite_checkpoint_config(folder: Path, meta: dict) -> None:
    """Edit a checkpoint's config.json on purpose, keeping the manifest's sizes (and dropping its checksum)."""
    import json

    (folder / "config.json").write_text(json.dumps(meta))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"].pop("config.json", None)
    manifest["files"]["config.json"] = (folder / "config.json").stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))


def saved_networks(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the G, D and G_ema files a checkpoint folder holds, as ``{"G.<key>": tensor}``: what
    two runs that should be bit-identical are compared on."""
    from safetensors.torch import load_file

    files = [f for f in (folder / f"{n}.safetensors" for n in ("G", "D", "G_ema")) if f.exists()]
    return {f"{f.stem}.{k}": v for f in files for k, v in load_file(f).items()}
