"""train.augment: DiffAugment's transforms on everything D sees, ADA's adaptive p, exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from gantk import registry
from gantk.config import AugmentConfig
from gantk.engine import Trainer
from gantk.engine.augment import Augmenter
from gantk.engine.distributed import World
from gantk.engine.preflight import check_config
from gantk.engine.syncs import forbid_host_reads
from gantk.errors import ConfigError, StepFailed
from gantk.io.checkpoint import read_training_state, step_checkpoints
from tests.helpers import tiny_dcgan, write_image_folder

CPU = torch.device("cpu")


def augmenter(channels: int = 3, seed: int = 0, **cfg) -> Augmenter:
    noise = torch.Generator().manual_seed(seed)
    return Augmenter(AugmentConfig(**cfg), channels, 8, CPU, noise, World())


def test_translation_is_a_whole_pixel_shift_with_a_zero_border():
    aug = augmenter(policy=("translation",))
    x = torch.randn(6, 3, 16, 16)
    y = aug._translation(x)
    for a, b in zip(x, y, strict=True):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(b, torch.nn.functional.pad(a, (2, 2, 2, 2))[:, 2 - dy : 18 - dy, 2 - dx : 18 - dx])
        ]
        assert len(found) == 1  # exactly one shift of at most 16/8 = 2 pixels explains it


def test_cutout_zeroes_one_half_sized_square():
    aug = augmenter(policy=("cutout",))
    y = aug._cutout(torch.ones(16, 1, 8, 8))
    holes = (y == 0).squeeze(1)
    for hole in holes:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 4 and 0 < len(cols) <= 4  # a 4x4 square, cut where it overhangs the edge
        assert hole.sum() == len(rows) * len(cols)  # a rectangle: every row of it has the same columns
    assert holes.sum(dim=(1, 2)).float().mean() > 8


def test_a_paired_input_gets_the_same_transform_in_both_halves():
    aug = augmenter(policy=("color", "translation", "cutout"))
    image = torch.rand(5, 3, 16, 16) * 2 - 1
    out = aug(torch.cat([image, image], 1))  # pix2pix: input and output on the channels
    assert torch.equal(out[:, :3], out[:, 3:])
    assert not torch.equal(out[:, :3], image)


def test_p_zero_is_the_identity_and_gradients_pass_through():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    assert torch.equal(augmenter(policy=("color", "translation", "cutout"), p=0.0)(x), x)
    y = augmenter(policy=("color", "translation", "cutout"))(x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_no_host_read_and_ada_moves_p_towards_the_target():
    aug = augmenter(policy=("color", "translation", "cutout"), p=0.0, adaptive=True, interval=2, ada_kimg=0.016)
    steps = torch.zeros((), dtype=torch.int64)
    with forbid_host_reads():  # the step stays capturable
        aug(torch.randn(8, 3, 8, 8))
        for _ in range(2):
            aug.observe_real(torch.full((8, 1), 3.0))  # D sure of every real image: over-fitting
            steps.add_(1)
            aug.after_step(steps)
    assert aug.p.item() == pytest.approx(8 * 2 / 16)  # one adjustment of batch * interval / (ada_kimg * 1000)
    assert aug.sign_count.item() == 0  # the statistic restarts after each adjustment
    for _ in range(4):
        aug.observe_real(torch.full((8, 1), -1.0))  # D unsure: p goes down again, never below 0
        steps.add_(1)
        aug.after_step(steps)
    assert aug.p.item() == 0.0


def test_policy_and_p_are_checked_by_name():
    spec, cls = registry.load("dcgan")
    with pytest.raises(ConfigError, match=r"train\.augment\.policy.*'color', 'translation', 'cutout'"):
        registry.make_config(spec, cls, overrides=["train.augment.policy=[colour]"])
    with pytest.raises(ConfigError, match=r"train\.augment\.p.*<= 1"):
        registry.make_config(spec, cls, overrides=["train.augment.p=1.5"])
    spec, cls = registry.load("srgan")
    plugin = cls(registry.make_config(spec, cls, overrides=["train.augment.policy=[color]"]))
    with pytest.raises(ConfigError, match="opts out of augmentation"):
        check_config(plugin)


def _augmented_dcgan(tmp_path, steps: int):
    return tiny_dcgan(
        write_image_folder(tmp_path / "img", n=16),
        train={
            "max_steps": steps,
            "augment": {
                "policy": ["color", "translation", "cutout"],
                "p": 0.5,
                "adaptive": True,
                "interval": 1,
                "ada_kimg": 0.1,
            },
        },
    )


def test_an_augmented_run_logs_p_and_resumes_exactly(tmp_path):
    spec, plugin = _augmented_dcgan(tmp_path / "a", steps=4)
    straight = Trainer(plugin, tmp_path / "straight", spec).fit()
    lines = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert any("augment/p" in x and "augment/rt" in x for x in lines)
    spec, plugin = _augmented_dcgan(tmp_path / "b", steps=2)
    Trainer(plugin, tmp_path / "split", spec).fit()
    spec, plugin = _augmented_dcgan(tmp_path / "b", steps=4)
    resumed = Trainer(plugin, tmp_path / "split", spec, resume=True).fit()
    a, b = read_training_state(straight), read_training_state(resumed)
    assert a["augment"]["p"].item() != 0.5  # ADA moved p
    assert all(torch.equal(a["augment"][k], b["augment"][k]) for k in a["augment"])
    from safetensors.torch import load_file

    assert all(
        torch.equal(v, load_file(resumed / "D.safetensors")[k])
        for k, v in load_file(straight / "D.safetensors").items()
    )


def test_ada_without_real_logits_is_refused_at_the_first_step(tmp_path):
    spec, plugin = _augmented_dcgan(tmp_path, steps=2)
    plugin.d_loss = lambda batch, ctx, loss=plugin.d_loss: loss(batch, type(ctx)(**{**vars(ctx), "augment": None}))
    with pytest.raises(StepFailed, match="ctx.observe_real"):
        Trainer(plugin, tmp_path / "run", spec).fit()
    assert step_checkpoints(tmp_path / "run") == []


def test_ada_without_a_policy_is_refused_before_the_data_is_read(tmp_path):
    """adaptive=true with an empty policy was silently ignored (issue 33)."""
    _, plugin = tiny_dcgan(tmp_path / "no-such-data", train={"augment": {"adaptive": True}})
    with pytest.raises(ConfigError, match=r"train.augment.adaptive' is true, but train.augment.policy is empty"):
        check_config(plugin)
