"""gantk plugins new: the scaffold installs, is listed, trains, and passes its own test."""

from pathlib import Path

from tests.helpers import install_package, run_python, write_image_folder


def test_fresh_scaffold_installs_lists_trains_and_passes_its_test(tmp_path: Path):
    pkg = tmp_path / "pkg"
    out = run_python(None, "-m", "gantk", "plugins", "new", "my_gan", "--dir", str(pkg))
    assert out.returncode == 0, out.stderr
    assert (pkg / "gantk_my_gan" / "plugin.py").is_file() and (pkg / "tests" / "test_my_gan.py").is_file()

    site = install_package(pkg, tmp_path / "install")
    listed = run_python(site, "-m", "gantk", "plugins")
    assert "my_gan" in listed.stdout + listed.stderr and "gantk-my-gan 0.1.0" in listed.stdout + listed.stderr

    data = write_image_folder(tmp_path / "img", n=12, size=32)
    run_dir = tmp_path / "run"
    trained = run_python(
        site,
        "-m",
        "gantk",
        "train",
        "my_gan",
        "--data",
        str(data),
        "--out",
        str(run_dir),
        "--max-steps",
        "2",
        "--set",
        "train.batch_size=4",
        "--set",
        "model.width=8",
    )
    assert trained.returncode == 0, trained.stderr
    assert (run_dir / "checkpoints" / "step_00000002" / "G.safetensors").is_file()

    tested = run_python(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests"), cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout


def test_bad_name_and_occupied_folder(tmp_path: Path):
    bad = run_python(None, "-m", "gantk", "plugins", "new", "My-GAN", "--dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "is not valid" in bad.stderr and not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    occupied = run_python(None, "-m", "gantk", "plugins", "new", "ok_name", "--dir", str(tmp_path / "full"))
    assert occupied.returncode == 2 and "not empty" in occupied.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
