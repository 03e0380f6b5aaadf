"""The command line, run as a user runs it: a subprocess, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import REPO, write_image_folder


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
        (["train", "dcgan", "--set", "train.batch_size=big"], "must be a whole number"),
        (["train", "dcgan", "--data", "/nonexistent/folder/x"], "neither an existing folder"),
        (["sample", "/nonexistent/run"], "does not exist"),
        (["train", "dcgan", "--nproc", "0"], "--nproc must be at least 1; got 0"),
        (["train", "dcgan", "--resume", ""], "--resume was given an empty checkpoint name"),
        (["train", "--resume"], "gantk train needs a plugin"),
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
    out = gantk("train", "--resume", "dcgan", "--out", str(run), "--max-steps", "3")  # a bare --resume first
    assert out.returncode == 0, out.stderr
    assert "resuming from checkpoints/step_00000002 at step 2" in out.stderr
    assert (run / "checkpoints" / "step_00000003").is_dir()
    out = gantk("train", "dcgan", "--out", str(run), "--resume", "step_00000002", "--max-steps", "3")
    assert out.returncode == 0, out.stderr
    assert "resuming from checkpoints/step_00000002 at step 2" in out.stderr and "superseded" in out.stderr
    assert (run / "checkpoints" / "superseded" / "step_00000003").is_dir()

    grid = tmp_path / "grid.png"
    assert gantk("sample", str(run), "-n", "4", "--seed", "1", "-o", str(grid)).returncode == 0
    assert Image.open(grid).size == (2 * 18 + 2, 2 * 18 + 2)
    folder = tmp_path / "many"
    assert gantk("sample", str(run), "-n", "3", "-o", str(folder)).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
    walk = tmp_path / "walk.png"
    assert gantk("sample", str(run), "--interpolate", "5", "-n", "2", "-o", str(walk)).returncode == 0
    assert Image.open(walk).size == (5 * 18 + 2, 2 * 18 + 2)


def test_print_config_shows_resolved_values(tmp_path):
    out = gantk("train", "dcgan", "--set", "train.batch_size=64", "--set", "model.ngf=32", "--print-config")
    assert out.returncode == 0
    assert "batch_size: 64" in out.stdout and "ngf: 32" in out.stdout
    grey = write_image_folder(tmp_path / "grey", n=4, size=16, mode="L")
    out = gantk("train", "dcgan", "--data", str(grey), "--print-config")
    assert out.returncode == 0, out.stderr
    assert "kind: image_folder" in out.stdout and "channels: 1" in out.stdout  # filled in from the data


def test_nproc_hands_the_rest_of_the_command_to_torchrun():
    from gantk.commands.train import _strip_nproc

    argv = ["train", "plugins/dcgan", "--nproc", "2", "--set", "train.batch_size=8", "--nproc=4", "--resume"]
    assert _strip_nproc(argv) == ["train", "plugins/dcgan", "--set", "train.batch_size=8", "--resume"]


# ---- issue 16: hostile values on the command line, refused before any work, in one paragraph


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from gantk.engine import Trainer
    from tests.helpers import tiny_dcgan

    root = tmp_path_factory.mktemp("cli-run")
    _, plugin = tiny_dcgan(write_image_folder(root / "img", n=16, size=16))
    Trainer(plugin, root / "run").fit()
    return root / "run"


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "RUN", "-n", "1000000000", "-o", "TMP/a.png"], "-n must be between 1 and 10,000"),
        (["sample", "RUN", "--interpolate", "1000000", "-o", "TMP/a.png"], "--interpolate must be between 2 and 1,000"),
        (["sample", "RUN", "--interpolate", "100", "-n", "500", "-o", "TMP/a.png"], "-n must be between 1 and 100"),
        (["sample", "RUN", "--seed", str(2**70), "-o", "TMP/a.png"], "--seed must be between"),
        (["sample", "RUN", "-o", "TMP/file/a.png"], "TMP/file is a file, so nothing can be written under it"),
        (["sample", "RUN", "-o", "TMP/file"], "-o TMP/file is an existing file; this writes a folder"),
        (["eval", "RUN", "-o", "TMP/file/x"], "TMP/file is a file"),
        (["export", "RUN", "-o", "TMP/file/x"], "TMP/file is a file"),
        (["translate", "RUN", "TMP/file", "-o", "TMP/file/y.png"], "TMP/file is a file"),
        (["train", "dcgan", "--max-steps", "-5"], "--max-steps must be 0 or more; got -5"),
        (["classifier", "--image-size", "0", "-o", "TMP/c"], "--image-size must be between 8 and 1,024"),
        (["sample", "RUN", "-o", ""], "-o is empty"),
        (["train", "pix2pix", "--out", "RUN", "--resume"], "was trained with plugin 'dcgan', not 'pix2pix'"),
        (["translate", "RUN", "TMP", "-o", "TMP/out.png"], "names an image file, but the input"),
        (["plugins", "new", "ok_name", "--dir", "TMP/file/pkg"], "cannot write the plugin into"),
        (["eval", "RUN", "--set", "model.ngf=8", "-o", "TMP/e"], "only eval.* and data.* keys can change"),
    ],
)
def test_bad_command_line_values_are_one_paragraph_before_any_work(tiny_run, tmp_path, capsys, args, message):
    from gantk.cli import main

    (tmp_path / "file").write_text("not a folder")
    args = [a.replace("RUN", str(tiny_run)).replace("TMP", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message.replace("TMP", str(tmp_path)) in " ".join(err.split()), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing was written


def test_datasets_says_how_many_facades_pairs_there_are(capsys):
    from gantk.cli import main

    assert main(["datasets"]) == 0
    said = capsys.readouterr()
    text = " ".join((said.out + said.err).split())
    assert "facades" in text and "400 CMP facade photos" in text


def test_translate_refuses_a_model_that_does_not_declare_it(tiny_run, tmp_path, capsys):
    from gantk.cli import main
    from tests.helpers import write_image_folder

    source = write_image_folder(tmp_path / "in", n=1) / "0.png"
    assert main(["translate", str(tiny_run), str(source), "-o", str(tmp_path / "out.png")]) == 2
    assert "does not translate images (it serves sample)" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out.png").exists()


def test_eval_says_an_exported_ema_generator_is_the_ema(tmp_path):
    """A generator-only export stores the EMA weights under G's own name; the protocol card still says ema."""
    import json

    from gantk.cli import main
    from gantk.engine import Trainer
    from gantk.io.checkpoint import export_generator
    from tests.helpers import tiny_dcgan

    _, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=16, size=16), train={"ema": {"enabled": True}})
    Trainer(plugin, tmp_path / "run").fit()
    export_generator(tmp_path / "run", tmp_path / "shipped")
    cards = {}
    for name, source, extra in (("export", "shipped", []), ("raw", "run", ["--no-ema"]), ("ema", "run", [])):
        assert main(["eval", str(tmp_path / source), *extra, "--device", "cpu", "-o", str(tmp_path / name)]) == 0
        cards[name] = json.loads((tmp_path / name / "metrics.json").read_text())["protocol"]["generator"]
    assert cards == {"export": "ema", "raw": "raw", "ema": "ema"}


@pytest.mark.parametrize("method", ["resolve", "build_networks"])
def test_a_plugin_that_raises_is_one_paragraph_naming_its_file_and_line(tmp_path, image_folder, method):
    """A plugin whose resolve or build_networks raised printed a traceback (issue 30)."""
    folder = tmp_path / "broken"
    folder.mkdir()
    signature = "self, dataset" if method == "resolve" else "self"
    (folder / "plugin.py").write_text(
        "from gantk.plugins.dcgan.plugin import DCGAN\n\n\n"
        f"class Broken(DCGAN):\n    name = 'broken'\n\n    def {method}({signature}):\n"
        f"        raise ValueError('{method} broke')\n"
    )
    out = gantk("train", str(folder), "--data", str(image_folder), "--out", str(tmp_path / "run"), *TINY)
    assert out.returncode == 1, out.stderr
    assert (
        f"plugin code raised ValueError: {method} broke (in {folder / 'plugin.py'}, line 8, {method}())" in out.stderr
    )
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


def test_every_verb_is_one_module_in_gantk_commands_listed_once():
    """A new verb is one file in gantk/commands plus one line in VERBS; the parser is built from the list."""
    import importlib

    from gantk.cli import build_parser
    from gantk.commands import VERBS

    folder = REPO / "gantk" / "commands"
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "common"))
    assert sorted(VERBS) == modules and len(set(VERBS)) == len(VERBS)
    for verb in VERBS:
        module = importlib.import_module(f"gantk.commands.{verb}")
        assert callable(module.add_parser) and callable(module.run), verb
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == list(VERBS)
    for verb, parser in sub.choices.items():
        assert parser.get_default("run") is not None, verb
