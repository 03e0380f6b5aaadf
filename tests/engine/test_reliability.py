"""Crash safety: non-finite losses, diverged weights, SIGTERM, and SIGKILL at random moments."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gantk.engine import Trainer
from gantk.errors import NonFiniteError
from gantk.io.checkpoint import step_checkpoints
from tests.helpers import REPO, tiny_dcgan, write_image_folder
from tests.helpers.pairs import write_side_by_side


def _nan_at_step(plugin, step: int) -> None:
    original = plugin.d_loss

    def d_loss(batch, ctx):
        terms = original(batch, ctx)
        if ctx.step == step:
            terms["real"] = terms["real"] * float("nan")
        return terms

    plugin.d_loss = d_loss


def test_nonfinite_loss_is_skipped_and_counted(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    _nan_at_step(plugin, 2)
    final = Trainer(plugin, tmp_path / "run").fit()
    for tensor in load_file(final / "D.safetensors").values():
        assert torch.isfinite(tensor.float()).all()
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["nonfinite_skipped"] == 1


def test_nonfinite_loss_stops_and_keeps_the_checkpoints(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"nonfinite": "stop", "checkpoint_every": 1})
    _nan_at_step(plugin, 3)
    with pytest.raises(NonFiniteError, match="not finite at step 4.*intact"):  # the 4th step (ctx.step 3)
        Trainer(plugin, tmp_path / "run").fit()
    assert [p.name for p in step_checkpoints(tmp_path / "run")] == ["step_00000002", "step_00000003"]


def test_diverged_weights_are_never_saved(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2, "keep_checkpoints": 1})
    trainer = Trainer(plugin, tmp_path / "run")
    good = trainer.fit()
    before = {p.name: p.stat().st_mtime_ns for p in good.iterdir()}
    with torch.no_grad():
        next(trainer.nets["G"].parameters()).fill_(float("nan"))
    trainer.step += 1
    with pytest.raises(NonFiniteError, match="no checkpoint was written"):
        trainer.save()
    assert step_checkpoints(tmp_path / "run") == [good]  # the good one was not rotated out
    assert {p.name: p.stat().st_mtime_ns for p in good.iterdir()} == before


def _train_cmd(data: Path, run: Path, steps: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gantk",
        "train",
        "dcgan",
        "--data",
        str(data),
        "--out",
        str(run),
        "--max-steps",
        str(steps),
        "--device",
        "cpu",
        "--set",
        "model.ngf=8",
        "--set",
        "model.ndf=8",
        "--set",
        "model.nz=16",
        "--set",
        "data.image_size=32",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.checkpoint_every=1",
        "--set",
        "train.log_every=1",
        "--set",
        "train.sample_every=0",
        "--set",
        "train.tensorboard=false",
        *extra,
    ]


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, after: int, timeout: float = 120) -> bool:
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        done = step_checkpoints(run)
        if done and int(done[-1].name.split("_")[1]) > after:
            return True
        time.sleep(0.02)
    return False


def test_sigterm_saves_and_resume_finishes(tmp_path):
    data = write_image_folder(tmp_path / "img", n=32, size=32)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _train_cmd(data, run, 100000), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert _wait_for_checkpoint(run, proc, 0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    assert "error" not in err  # a requested stop is reported as a stop
    stopped_at = int(step_checkpoints(run)[-1].name.split("_")[1])
    done = subprocess.run(_train_cmd(data, run, stopped_at + 2, "--resume"), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert step_checkpoints(run)[-1].name == f"step_{stopped_at + 2:08d}"


def _pix2pix_cmd(data: Path, run: Path, steps: int, *extra: str) -> list[str]:
    sets = {
        "data.image_size": 32, "data.load_size": 36, "data.holdout": 4, "model.ngf": 4, "model.ndf": 4,
        "model.num_downs": 5, "train.checkpoint_every": 1, "train.log_every": 1, "train.sample_every": 0,
        "train.eval_every": 0, "train.tensorboard": "false",
    }  # fmt: skip
    args = [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    return [
        sys.executable, "-m", "gantk", "train", "pix2pix", "--data", str(data), "--out", str(run),
        "--max-steps", str(steps), "--device", "cpu", *args, *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("plugin", ["dcgan", "pix2pix"])
def test_a_preempted_job_rerun_with_the_same_command_until_done_matches_an_uninterrupted_run(tmp_path, plugin):
    """A cluster job's life: the same command (with --resume) is started, SIGKILLed at random moments
    (before the first checkpoint too, and often mid-write: one is written every step) and started again
    until it finishes. The result equals a run that was never interrupted, bit for bit."""
    if plugin == "dcgan":
        data, command, steps = write_image_folder(tmp_path / "img", n=32, size=32), _train_cmd, 60
    else:
        data, command, steps = write_side_by_side(tmp_path / "pairs", n=12, size=32), _pix2pix_cmd, 24
    straight = subprocess.run(command(data, tmp_path / "straight", steps), cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    same_command = command(data, run, steps, "--resume")
    rng = random.Random(0)
    kills, starts, restarts_without_checkpoint = 0, 0, 0
    while True:
        starts += 1
        assert starts < 40, "the job never finished"
        reached = int(step_checkpoints(run)[-1].name.split("_")[1]) if step_checkpoints(run) else 0
        proc = subprocess.Popen(same_command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < 5:
            if kills == 0:  # the first kill lands after setup, before any checkpoint exists
                while not (run / "config.yaml").exists() and proc.poll() is None:
                    time.sleep(0.002)
            elif _wait_for_checkpoint(run, proc, reached):
                time.sleep(rng.uniform(0.0, 0.15))
            proc.kill()
        _, err = proc.communicate(timeout=300)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            restarts_without_checkpoint += not step_checkpoints(run)
            continue
        assert proc.returncode == 0, err
        break
    # a run may finish before a late kill lands: at least three real kills, one before any checkpoint
    assert kills >= 3 and restarts_without_checkpoint >= 1  # --resume also served as the first start
    a = step_checkpoints(tmp_path / "straight")[-1]
    b = step_checkpoints(run)[-1]
    assert a.name == b.name == f"step_{steps:08d}"
    for net in ("G", "D"):
        wa, wb = load_file(a / f"{net}.safetensors"), load_file(b / f"{net}.safetensors")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not list((run / "checkpoints").glob(".*"))  # no temporary folders left behind
    logged = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines() if '"phase"' in x]
    assert logged == list(range(1, steps + 1))  # metrics of redone steps are not duplicated


def test_too_little_disk_space_is_refused_before_training(image_folder, tmp_path, monkeypatch):
    import shutil as shutil_module
    from collections import namedtuple

    from gantk.errors import GantkError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    _, plugin = tiny_dcgan(image_folder)
    with pytest.raises(GantkError, match=r"not enough free disk space for run folder .* 1 MB are"):
        Trainer(plugin, tmp_path / "run").fit()
    assert step_checkpoints(tmp_path / "run") == []


def test_disk_full_mid_run_keeps_the_last_good_checkpoint(image_folder, tmp_path, monkeypatch):
    import errno

    from gantk.errors import GantkError
    from gantk.io import checkpoint as ckpt

    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6, "checkpoint_every": 3})
    real_save = ckpt._save_tensors

    def save_tensors(path, tensors):
        if "step_00000006" in str(path.parent.name):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, tensors)

    monkeypatch.setattr(ckpt, "_save_tensors", save_tensors)
    run = tmp_path / "run"
    with pytest.raises(GantkError, match="No space left on device.*last good checkpoint is .*step_00000003"):
        Trainer(plugin, run).fit()
    assert [p.name for p in step_checkpoints(run)] == ["step_00000003"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no temporary left
    monkeypatch.setattr(ckpt, "_save_tensors", real_save)
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6, "checkpoint_every": 3})
    assert Trainer(plugin, run, resume=True).fit().name == "step_00000006"
