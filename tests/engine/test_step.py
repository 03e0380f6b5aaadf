"""The training step: no host reads in any built-in plugin's step, and the same numbers as a plain loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gantk.data.loader import BatchStream
from gantk.engine import Trainer
from gantk.engine.syncs import HostSyncError, forbid_host_reads
from gantk.io.images import from_uint8
from tests.helpers import tiny_dcgan, tiny_plugin, write_mnist
from tests.helpers.pairs import write_side_by_side
from tests.helpers.sr import tiny_srgan, write_sr_data
from tests.helpers.zoo import tiny_cyclegan, tiny_infogan, tiny_stylegan2


def _watch_every_step(trainer: Trainer) -> list[int]:
    """Run each step (and the host work between steps) of ``trainer.fit()`` under forbid_host_reads."""
    trainer.setup()
    watched: list[int] = []
    runner, after = trainer.runner, trainer._after_step

    def step(phase, raws, index):
        with forbid_host_reads(trainer.device):
            runner(phase, raws, index)
        watched.append(index)

    def between():
        with forbid_host_reads(trainer.device):
            after()

    trainer.runner, trainer._after_step = step, between
    trainer.fit()
    return watched


def _pix2pix(root: Path):
    write_side_by_side(root, 10, 36)
    return tiny_plugin(
        "pix2pix",
        {
            "data": {"name": str(root), "image_size": 32, "load_size": 36, "holdout": 2},
            "model": {"ngf": 4, "ndf": 4, "num_downs": 5},
            "train": {"max_steps": 4, "batch_size": 2, "device": "cpu", "sample_every": 0, "tensorboard": False},
        },
        {},
    )[1]


def _cgan(root: Path):
    return tiny_plugin(
        "cgan",
        {
            "data": {"name": str(write_mnist(root)), "image_size": 16},
            "model": {"ngf": 4, "ndf": 4, "nz": 8},
            "train": {"max_steps": 4, "batch_size": 8, "device": "cpu", "sample_every": 0, "tensorboard": False},
        },
        {},
    )[1]


PLUGINS = {
    "dcgan": lambda tmp, images: tiny_dcgan(images, train={"sample_every": 0})[1],
    "dcgan+ema+clip+noise+bf16": lambda tmp, images: tiny_dcgan(
        images,
        train={"sample_every": 0, "grad_clip": 1.0, "precision": "bf16", "ema": {"enabled": True}},
        loss={"instance_noise": 0.1, "label_smoothing": 0.1},
    )[1],
    "dcgan+stop+sgd": lambda tmp, images: tiny_dcgan(
        images,
        train={"sample_every": 0, "nonfinite": "stop"},
        optim={"D": {"name": "sgd", "lr": 1e-2, "momentum": 0.9}},
    )[1],
    "dcgan+augment (ADA)": lambda tmp, images: tiny_dcgan(
        images,
        train={
            "sample_every": 0,
            "augment": {"policy": ["color", "translation", "cutout"], "adaptive": True, "interval": 2},
        },
    )[1],
    "cgan": lambda tmp, images: _cgan(tmp / "mnist"),
    "pix2pix": lambda tmp, images: _pix2pix(tmp / "pairs"),
    "srgan (both phases)": lambda tmp, images: tiny_srgan(write_sr_data(tmp / "sr"), train={"log_every": 2}),
    "infogan": lambda tmp, images: tiny_infogan(write_mnist(tmp / "mnist")),
    "stylegan2 (lazy R1 and path length, ADA)": lambda tmp, images: tiny_stylegan2(images, train={"max_steps": 5}),
    "cyclegan (pools)": lambda tmp, images: tiny_cyclegan(
        write_side_by_side(tmp / "pairs", 6, 20), train={"max_steps": 4}
    ),
}


@pytest.mark.parametrize("name", list(PLUGINS))
def test_no_step_of_a_builtin_plugin_reads_a_tensor_on_the_host(name, image_folder, tmp_path):
    plugin = PLUGINS[name](tmp_path, image_folder)
    trainer = Trainer(plugin, tmp_path / "run")
    steps = trainer.cfg.train.max_steps if "max_steps" in name else None
    watched = _watch_every_step(trainer)
    assert watched == list(range(steps or trainer.cfg.train.max_steps))
    assert trainer.nonfinite_skipped == 0


def test_a_host_read_in_a_loss_is_caught_and_named(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"sample_every": 0})
    d_loss = plugin.d_loss

    def chatty(batch, ctx):
        terms = d_loss(batch, ctx)
        if terms["real"] > 100:  # a Python branch on a tensor: a host read
            print("large loss")
        return terms

    plugin.d_loss = chatty
    with pytest.raises(HostSyncError, match=r"Python if on a tensor\) at .*test_step\.py:\d+"):
        _watch_every_step(Trainer(plugin, tmp_path / "run"))


def test_drawing_on_the_cpu_inside_a_step_is_caught(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"sample_every": 0})

    def cpu_jitter(batch, ctx):  # the old pix2pix jitter: offsets drawn on the CPU and read as a list
        offsets = torch.randint(0, 4, (len(batch["image"]),), generator=ctx.cpu_noise).tolist()
        return {"image": torch.stack([img.roll(o, -1) for img, o in zip(batch["image"], offsets, strict=True)])}

    plugin.prepare_batch = cpu_jitter
    with pytest.raises(HostSyncError, match="tolist"):
        _watch_every_step(Trainer(plugin, tmp_path / "run"))


def test_report_mode_records_reads_and_lets_the_code_run():
    found = []
    x = torch.tensor([1.0, 2.0])
    with forbid_host_reads("cpu", found.append):
        value = x.sum().item()
        as_list = x.tolist()
        kept = x[x > 1]  # boolean-mask indexing: value-dependent size
    assert value == 3.0 and as_list == [1.0, 2.0] and kept.tolist() == [2.0]
    assert len(found) == 3 and all(isinstance(e, HostSyncError) for e in found)
    assert x.tolist() == [1.0, 2.0]  # Tensor.tolist is restored after the block


def _plain_dcgan_loop(plugin, steps: int) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """DCGAN as pytorch/examples writes it, on the engine's data order, noise and optimizer settings."""
    cfg = plugin.cfg
    dataset = plugin.build_dataset("train")
    cfg.data.channels = dataset.channels
    torch.manual_seed(cfg.train.seed)  # the engine seeds, then builds: the same initial weights
    nets = plugin.build_networks()
    G, D = nets["G"], nets["D"]
    opt = {
        k: torch.optim.Adam(
            nets[k].parameters(), lr=torch.tensor(cfg.optim[k].lr), betas=cfg.optim[k].betas, fused=True
        )
        for k in ("G", "D")
    }
    stream = BatchStream(dataset, cfg.train.batch_size, cfg.train.seed)
    noise = torch.Generator().manual_seed(cfg.train.seed)
    losses = []
    for _ in range(steps):
        real = from_uint8(next(stream)["image"])
        fake = G(torch.randn((len(real), cfg.model.nz), generator=noise))
        out_real, out_fake = D(real), D(fake.detach())
        d_real = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
        d_fake = F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        opt["D"].zero_grad()
        (d_real + d_fake).backward()
        opt["D"].step()
        D.requires_grad_(False)
        out = D(fake)
        g_adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt["G"].zero_grad()
        g_adv.backward()
        opt["G"].step()
        D.requires_grad_(True)
        losses.append({"D/real": d_real.item(), "D/fake": d_fake.item(), "G/adv": g_adv.item()})
    weights = {f"{k}.{n}": v for k in ("G", "D") for n, v in nets[k].state_dict().items()}
    return weights, losses


def test_the_engine_step_computes_what_a_plain_loop_computes(image_folder, tmp_path):
    steps = 6
    _, plugin = tiny_dcgan(image_folder, train={"sample_every": 0, "log_every": 1, "max_steps": steps})
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.fit()
    engine = {f"{k}.{n}": v for k in ("G", "D") for n, v in trainer.nets[k].state_dict().items()}
    _, again = tiny_dcgan(image_folder)
    plain, plain_losses = _plain_dcgan_loop(again, steps)
    assert engine.keys() == plain.keys()
    for key, value in plain.items():
        assert torch.equal(engine[key], value), key  # bit for bit: the same kernels in the same order
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for record, expected in zip(logged, plain_losses, strict=True):
        for key, value in expected.items():
            assert record[key] == pytest.approx(value, rel=1e-6), (record["step"], key)
