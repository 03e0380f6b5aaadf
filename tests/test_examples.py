"""The external example: examples/wgan_gp installs as its own package and trains through gantk."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantk.io.checkpoint import find_checkpoint, read_training_state
from tests.helpers import REPO, install_package, run_python, write_image_folder

TINY = ["--set", "model.ngf=4", "--set", "model.ndf=4", "--set", "model.nz=8", "--set", "data.image_size=16"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The package installed into a private folder (the test environment itself is not modified)."""
    return install_package(REPO / "examples" / "wgan_gp", tmp_path_factory.mktemp("wgan"))


def test_installed_plugin_is_listed_with_its_version(site):
    out = run_python(site, "-m", "gantk", "plugins")
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "wgan_gp" in text and "gantk-wgan-gp 0.1.0" in text


def test_trains_through_gantk_with_five_critic_steps_per_g_step(site, tmp_path):
    data = write_image_folder(tmp_path / "img", n=40, mode="L")
    run_dir = tmp_path / "run"
    out = run_python(
        site,
        "-m",
        "gantk",
        "train",
        "wgan_gp",
        "--data",
        str(data),
        "--out",
        str(run_dir),
        "--max-steps",
        "3",
        "--set",
        "train.batch_size=4",
        *TINY,
    )
    assert out.returncode == 0, out.stderr
    assert "D/wasserstein" in out.stderr and "D/gp" in out.stderr and "G/adv" in out.stderr
    state = read_training_state(find_checkpoint(run_dir))
    g_steps = int(state["optimizers"]["G"]["state"][0]["step"])
    d_steps = int(state["optimizers"]["D"]["state"][0]["step"])
    assert (g_steps, d_steps) == (3, 15)
    assert state["data"]["epoch"] * 10 + state["data"]["batch"] == 15  # 5 batches per step: 1 shared + 4 fresh


def test_the_packages_own_test_passes(site, tmp_path):
    out = run_python(
        site, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "examples" / "wgan_gp" / "tests"), cwd=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
