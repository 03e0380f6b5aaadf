"""``gantk train --resume --dry-run``: what a resume would restore, and which config changes it would accept
or refuse, without training, locking or writing anything; the refusals are the ones a real resume makes."""

from __future__ import annotations

import pytest

from gantk import registry
from gantk.engine.resume_plan import differences, plan_resume
from gantk.engine.trainer import train
from gantk.errors import CheckpointError
from tests.helpers import tiny_dcgan
from tests.test_cli import gantk

TINY = [
    "--set", "data.image_size=16", "--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "train.batch_size=8",
    "--set", "train.tensorboard=false", "--set", "train.sample_every=0", "--device", "cpu",
]  # fmt: skip


def _trained(image_folder, run, steps=6):
    spec, plugin = tiny_dcgan(image_folder, train={"max_steps": steps, "sample_every": 0})
    train(plugin, run, spec)
    return spec


def _config(spec, run, **values):
    _, cls = registry.load("dcgan")
    return cls, registry.make_config(spec, cls, resumed_run=run, values=values)


def test_the_plan_names_the_checkpoint_step_data_position_and_sorts_the_changes(image_folder, tmp_path):
    run = tmp_path / "run"
    spec = _trained(image_folder, run)
    cls, cfg = _config(spec, run, **{"train.max_steps": 20, "optim.G.lr": 1e-4, "model.ngf": 8})
    plan = plan_resume(cls, cfg, run, True)
    assert plan.checkpoint == run / "checkpoints" / "step_00000006" and plan.step == 6
    assert plan.data == {"epoch": 1, "batch": 2}  # 32 images at batch 8: 4 a pass, 6 steps = one pass + 2
    assert plan.accepted == ["optim.G.lr: 0.0002 -> 0.0001", "train.max_steps: 6 -> 20"]
    assert plan.refused == ["model.ngf: 4 -> 8 (changes the networks' shapes: the weights would not load)"]
    text = plan.describe()
    assert "REFUSED      model.ngf" in text and "a resume would be refused" in text
    # what the plan refuses, a real resume refuses
    with pytest.raises(CheckpointError, match="do not match the network built from its config"):
        train(cls(cfg), run, spec, resume=True)


def test_dry_run_from_the_cli_writes_nothing_and_exits_2_only_when_it_would_refuse(image_folder, tmp_path):
    run = tmp_path / "run"
    _trained(image_folder, run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    ok = gantk("train", "dcgan", "--data", str(image_folder), "--out", str(run), "--resume", "--dry-run", *TINY,
               "--max-steps", "12")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "step         6 of train.max_steps=12" in ok.stdout and "train.max_steps: 6 -> 12" in ok.stdout
    refused = gantk("train", "dcgan", "--data", str(image_folder), "--out", str(run), "--resume", "step_00000006",
                    "--dry-run", *TINY, "--set", "data.channels=1")  # fmt: skip
    assert refused.returncode == 2 and "REFUSED      data.channels: 3 -> 1" in refused.stdout
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # no lock, no config.yaml, no tidying
    fresh = gantk("train", "dcgan", "--out", str(tmp_path / "none"), "--resume", "--dry-run", *TINY)
    assert fresh.returncode == 0 and "would start at step 0" in fresh.stdout
    assert not (tmp_path / "none").exists()
    alone = gantk("train", "dcgan", "--dry-run", *TINY)
    assert alone.returncode == 2 and "give it with --resume" in alone.stderr


def test_differences_are_dotted_keys_with_both_values():
    assert differences({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"b": 1, "c": [2]}, "d": 2, "e": 3}) == {
        "a.c": ([1], [2]),
        "e": (None, 3),
    }


def test_a_change_to_zero_is_listed_and_a_value_left_for_the_data_is_not_refused(image_folder, tmp_path):
    """``train.sample_every: 3 -> 0`` is a real change (it was hidden as if the data filled it in);
    ``data.channels: 3 -> 0`` is the value a resume fills from the data again, neither change nor refusal."""
    run = tmp_path / "run"
    spec, plugin = tiny_dcgan(image_folder, train={"max_steps": 2, "sample_every": 3})
    train(plugin, run, spec)
    _, cls = registry.load("dcgan")
    cfg = registry.make_config(spec, cls, resumed_run=run, overrides=["train.sample_every=0", "data.channels=0"])
    plan = plan_resume(cls, cfg, run, True)
    assert plan.accepted == ["train.sample_every: 3 -> 0"] and plan.refused == []
