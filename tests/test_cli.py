"""The command line, run as a user runs it: a subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import REPO


def gantk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gantk", *args], capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=300
    )


TINY = ["--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "data.image_size=16", "--set", "train.batch_size=8"]


def test_plugins_table():
    out = gantk("plugins")
    assert out.returncode == 0
    assert "dcgan" in out.stderr + out.stdout and "built-in" in out.stderr + out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nosuchplugin"], "unknown plugin 'nosuchplugin'"),
        (["train", "dcgan", "--set", "train.batch_sise=3"], "Did you mean 'train.batch_size'"),
        (["train", "dcgan", "--set", "train.batch_size=big"], "must be an integer"),
        (["train", "dcgan", "--data", "/nonexistent/folder/x"], "neither an existing folder"),
        (["sample", "/nonexistent/run"], "does not exist"),
        (["train", "dcgan", "--nproc", "0"], "--nproc must be at least 1; got 0"),
    ],
)
def test_user_errors_exit_2_without_traceback(args, message):
    out = gantk(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_train_resume_sample(image_folder, tmp_path):
    run = tmp_path / "run"
    out = gantk("train", "plugins/dcgan", "--data", str(image_folder), "--out", str(run), "--max-steps", "2", *TINY)
    assert out.returncode == 0, out.stderr
    assert "step 2/2" in out.stderr and "ETA" in out.stderr
    out = gantk("train", "dcgan", "--out", str(run), "--resume", "--max-steps", "3")
    assert out.returncode == 0, out.stderr
    assert "resuming from checkpoints/step_00000002 at step 2" in out.stderr
    assert (run / "checkpoints" / "step_00000003").is_dir()

    grid = tmp_path / "grid.png"
    assert gantk("sample", str(run), "-n", "4", "--seed", "1", "-o", str(grid)).returncode == 0
    assert Image.open(grid).size == (2 * 18 + 2, 2 * 18 + 2)
    folder = tmp_path / "many"
    assert gantk("sample", str(run), "-n", "3", "-o", str(folder)).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
    walk = tmp_path / "walk.png"
    assert gantk("sample", str(run), "--interpolate", "5", "-n", "2", "-o", str(walk)).returncode == 0
    assert Image.open(walk).size == (5 * 18 + 2, 2 * 18 + 2)


def test_print_config_shows_resolved_values():
    out = gantk("train", "dcgan", "--set", "train.batch_size=64", "--set", "model.ngf=32", "--print-config")
    assert out.returncode == 0
    assert "batch_size: 64" in out.stdout and "ngf: 32" in out.stdout


def test_nproc_hands_the_rest_of_the_command_to_torchrun():
    from gantk.cli import _strip_nproc

    argv = ["train", "plugins/dcgan", "--nproc", "2", "--set", "train.batch_size=8", "--nproc=4", "--resume"]
    assert _strip_nproc(argv) == ["train", "plugins/dcgan", "--set", "train.batch_size=8", "--resume"]
