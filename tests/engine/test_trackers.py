"""Experiment trackers (train.loggers), run for real: MLflow against its local file store, W&B in offline
mode (no account, no network), TensorBoard's event files. Each gets the same scalars, the config as
parameters, the sample grids and the final checkpoint, and a resumed run continues the same tracker run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gantk.engine.trackers import check_installed, flatten
from gantk.engine.trainer import train
from gantk.errors import ConfigError
from tests.helpers import tiny_dcgan, write_image_folder
from tests.helpers.wandb_log import read_run


def _metrics(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {(r["step"], k): v for r in lines for k, v in r.items() if k.startswith(("G/", "D/", "health/"))}


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this opt-in
    return store


def test_mlflow_gets_the_same_scalars_the_config_the_grids_and_the_checkpoint_and_resume_continues_it(
    tmp_path, mlflow_store
):
    import mlflow

    data = write_image_folder(tmp_path / "data", n=16, size=16)
    spec, plugin = tiny_dcgan(data, train={"loggers": ["jsonl", "mlflow"], "max_steps": 4, "sample_every": 2})
    run = tmp_path / "run"
    final = train(plugin, run, spec)
    run_id = json.loads((run / "trackers.json").read_text())["mlflow"]
    client = mlflow.MlflowClient()
    logged = client.get_run(run_id)
    assert logged.info.run_name == "run" and logged.info.status == "FINISHED"
    assert logged.data.params["train.batch_size"] == "8" and logged.data.params["model.ngf"] == "4"
    assert logged.data.tags["gantk.checkpoint"] == str(final.resolve())
    ours = _metrics(run)
    history = {(m.step, key): m.value for key in logged.data.metrics for m in client.get_metric_history(run_id, key)}
    assert {k: v for k, v in history.items() if k in ours} == pytest.approx(ours)
    assert {k for k in ours} <= set(history), "every logged loss reaches MLflow"
    assert ("health/fake_logit" in logged.data.metrics) and ("health/diversity" in logged.data.metrics)
    grids = sorted(a.path for a in client.list_artifacts(run_id, "samples"))
    assert grids == ["samples/step_00000002.png", "samples/step_00000004.png"]

    spec, plugin = tiny_dcgan(data, train={"loggers": ["jsonl", "mlflow"], "max_steps": 6, "sample_every": 2})
    train(plugin, run, spec, resume=True)
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == run_id  # the same MLflow run goes on
    steps = [m.step for m in client.get_metric_history(run_id, "D/loss")]
    assert max(steps) == 6 and min(steps) == 1
    assert len(client.search_runs([logged.info.experiment_id])) == 1


def test_wandb_offline_gets_the_scalars_config_and_grids_and_resume_continues_the_same_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    data = write_image_folder(tmp_path / "data", n=16, size=16)
    spec, plugin = tiny_dcgan(data, train={"loggers": ["wandb"], "max_steps": 4, "sample_every": 2})
    run = tmp_path / "run"
    train(plugin, run, spec)
    run_id = json.loads((run / "trackers.json").read_text())["wandb"]
    spec, plugin = tiny_dcgan(data, train={"loggers": ["wandb"], "max_steps": 6, "sample_every": 2})
    train(plugin, run, spec, resume=True)
    assert json.loads((run / "trackers.json").read_text())["wandb"] == run_id
    offline = sorted((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(offline) == 2, "the resumed run is written under the same W&B run id"
    history, config, summary = {}, {}, {}
    for folder in offline:  # what `wandb sync` would upload, read back from the run's .wandb files
        part = read_run(next(folder.glob("*.wandb")))
        history.update(part[0]), config.update(part[1]), summary.update(part[2])
    ours = _metrics(run)
    assert {(s, k): history[s][k] for (s, k) in ours} == pytest.approx(ours)
    assert sorted(s for s, row in history.items() if "samples/_type" in row) == [2, 4, 6]  # the grids
    assert config["train"]["batch_size"] == 8 and config["model"]["ngf"] == 4
    assert summary["checkpoint"] == str((run / "checkpoints" / "step_00000006").resolve())


def test_tensorboard_listed_gets_scalars_and_the_grids(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = write_image_folder(tmp_path / "data", n=16, size=16)
    spec, plugin = tiny_dcgan(data, train={"loggers": ["tensorboard"], "max_steps": 4, "sample_every": 2})
    train(plugin, tmp_path / "run", spec)
    events = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Scalars("D/loss")] == [1, 2, 4]
    assert [e.step for e in events.Images("samples")] == [2, 4]


def test_a_tracker_that_is_not_installed_is_one_paragraph_naming_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        check_installed(["jsonl", "wandb"])
    message = str(info.value)
    assert "train.loggers" in message and "pip install 'gantk[wandb]'" in message and "\n" not in message


def test_a_missing_tracker_package_is_refused_before_the_run_folder_exists(tmp_path):
    """In a fresh interpreter where importing mlflow fails: the CLI says so in one paragraph, exit 2."""
    data = write_image_folder(tmp_path / "data", n=8, size=16)
    code = (
        "import sys, importlib.util as u; real = u.find_spec; "
        "u.find_spec = lambda n, *a: None if n == 'mlflow' else real(n, *a); "
        "from gantk.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["train", "dcgan", "--data", str(data), "--out", str(tmp_path / "run"), "--set", "train.loggers=[mlflow]"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "gantk[mlflow]" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_config_is_flattened_to_dotted_parameters():
    assert flatten({"train": {"seed": 0, "ema": {"decay": 0.9}}, "optim": {}, "loggers": ["a"]}) == {
        "train.seed": 0,
        "train.ema.decay": 0.9,
        "optim": "{}",
        "loggers": '["a"]',
    }
