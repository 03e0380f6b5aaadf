"""A wheel install is complete: the built-in plugins (with their defaults) and the dataset cards are in it,
registered the way a third-party plugin is, and it trains from any working directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gantk import registry
from tests.helpers import REPO, run_python
from tests.helpers.pairs import write_side_by_side


def _checkout_copy(dest: Path) -> Path:
    """The files git would commit (tracked and new, not ignored): what a release is built from."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    )
    for name in listed.stdout.splitlines():
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = _checkout_copy(root / "src")  # a build writes into its source folder: keep the checkout clean
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (found,) = root.glob("gantk-*.whl")
    return found


def test_the_wheel_holds_every_module_plugin_and_card(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"gantk/{p.relative_to(REPO / 'gantk').as_posix()}" for p in (REPO / "gantk").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    for plugin in ("cgan", "dcgan", "pix2pix", "srgan"):
        assert {f"gantk/plugins/{plugin}/plugin.py", f"gantk/plugins/{plugin}/defaults.yaml"} <= names
    cards = {f"gantk/datasets/{p.name}" for p in (REPO / "datasets").glob("*.yaml")}
    assert cards and cards <= names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{p} = gantk.plugins.{p}.plugin:" in text for p in ("cgan", "dcgan", "pix2pix", "srgan"))


def test_an_installed_wheel_trains_pix2pix_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run_python(
        site,
        "-c",
        "import gantk, gantk.plugins.pix2pix.plugin as p; print(gantk.__file__); print(p.__file__)",
        cwd=elsewhere,
    )
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout  # not the checkout
    listed = run_python(site, "-m", "gantk", "datasets", cwd=elsewhere)
    assert listed.returncode == 0 and "facades" in listed.stdout + listed.stderr, listed.stdout + listed.stderr
    data = write_side_by_side(tmp_path / "pairs", n=4)
    trained = run_python(
        site,
        *("-m", "gantk", "train", "pix2pix", "--data", str(data), "--device", "cpu", "--max-steps", "2"),
        "--out",
        "run",
        *(
            arg
            for value in (
                "data.image_size=32",
                "data.load_size=36",
                "data.holdout=0",
                "model.ngf=4",
                "model.ndf=4",
                "model.num_downs=5",
                "train.sample_every=0",
                "train.tensorboard=false",
            )
            for arg in ("--set", value)
        ),
        cwd=elsewhere,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    config = (elsewhere / "run" / "checkpoints" / "step_00000002" / "config.json").read_text()
    assert '"source": "built-in"' in config and "gantk.plugins.pix2pix.plugin:Pix2Pix" in config


def test_builtins_are_found_by_folder_when_gantk_metadata_has_none(monkeypatch):
    monkeypatch.setattr(registry, "_entry_point_specs", lambda: [])  # a checkout on sys.path, not installed
    specs = {s.name: s for s in registry.builtin_specs()}
    assert sorted(specs) == ["cgan", "cyclegan", "dcgan", "infogan", "pix2pix", "srgan", "stylegan2"]
    assert specs["dcgan"].load().__name__ == "DCGAN"
    assert registry.find(str(REPO / "plugins" / "pix2pix")) == specs["pix2pix"]
