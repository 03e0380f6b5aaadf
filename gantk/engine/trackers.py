"""Experiment trackers: the run's numbers where its users already look (``train.loggers``).

``metrics.jsonl`` is always written (:class:`gantk.engine.logger.RunLogger`); each tracker listed beside it
gets the same things: every numeric value logged (losses, rates, ``health/*``, evaluation metrics) at its
step, the resolved config as parameters (dotted keys), every sample grid as an image, and the final
checkpoint's path. Each is an optional extra, imported only when listed; a missing package stops the run
before its first step with one paragraph naming the extra.

A resumed run continues the same tracker run: the id each tracker gave the run is kept in the run folder
(``trackers.json``) and handed back on ``--resume``.

* ``tensorboard``: event files in ``<run>/tb`` (``torch.utils.tensorboard``).
* ``mlflow``: a run in experiment ``gantk``, named after the run folder, under MLflow's own tracking URI
  (``MLFLOW_TRACKING_URI``: a server, ``sqlite:///mlflow.db``, or the local file store ``file:./mlruns``).
* ``wandb``: a run in project ``gantk`` (``WANDB_PROJECT`` to change it), its files under ``<run>``; with
  ``WANDB_MODE=offline`` it needs no account and no network, and ``wandb sync`` uploads it later.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

from gantk.errors import ConfigError

IDS_FILE = "trackers.json"
#: each tracker is its package's name and gantk's extra's name alike (pip install 'gantk[mlflow]')
EXTRAS = ("tensorboard", "mlflow", "wandb")


def check_installed(names: list[str]) -> None:
    """Refuse, before any work, a tracker whose package is not installed: one paragraph naming the extra."""
    for name in names:
        if name in EXTRAS and importlib.util.find_spec(name) is None:
            raise ConfigError(
                f"config key 'train.loggers' lists '{name}', but the {name} package is not installed. Install "
                f"it with pip install 'gantk[{name}]' (or pip install {name}), or leave '{name}' out of "
                "train.loggers; metrics.jsonl is written either way. Nothing was trained."
            )


def tracker_names(train: Any) -> list[str]:
    """The trackers a run opens: ``train.loggers`` (``jsonl`` is always written, not a tracker), and
    TensorBoard under ``train.tensorboard`` when it is installed (said once when it is not)."""
    names = [n for n in dict.fromkeys(train.loggers) if n != "jsonl"]
    if train.tensorboard and "tensorboard" not in names:
        if importlib.util.find_spec("tensorboard") is not None:
            names.insert(0, "tensorboard")
        else:
            warnings.warn(
                "tensorboard is not installed; metrics go to metrics.jsonl only (pip install 'gantk[tensorboard]', "
                "or set train.tensorboard=false).",
                stacklevel=2,
            )
    return names


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 0}}`` -> ``{"train.seed": 0}``; lists as JSON text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Tracker:
    """One experiment tracker. ``run_id`` is what a resumed run hands back to continue the same run."""

    name = ""
    run_id = ""

    def log_config(self, config: dict[str, Any]) -> None: ...
    def log_scalars(self, step: int, values: dict[str, float]) -> None: ...
    def log_image(self, step: int, key: str, path: Path) -> None: ...
    def log_checkpoint(self, path: Path) -> None: ...
    def close(self) -> None: ...


class TensorBoard(Tracker):
    name = "tensorboard"

    def __init__(self, run: Path, run_id: str = "") -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run / "tb"))

    def log_config(self, config: dict[str, Any]) -> None:
        text = "\n".join(f"    {k}: {v}" for k, v in flatten(config).items())  # indented: markdown code
        self.writer.add_text("config", text, 0)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def log_image(self, step: int, key: str, path: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            self.writer.add_image(key, np.asarray(image.convert("RGB")), step, dataformats="HWC")

    def log_checkpoint(self, path: Path) -> None:
        self.writer.add_text("checkpoint", str(path), 0)

    def close(self) -> None:
        self.writer.close()


class MLflow(Tracker):
    name = "mlflow"

    def __init__(self, run: Path, run_id: str = "") -> None:
        import mlflow

        self.client = mlflow.MlflowClient()
        if run_id:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
        else:
            experiment = self.client.get_experiment_by_name("gantk")
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("gantk")
            self.run_id = self.client.create_run(experiment_id, run_name=run.resolve().name).info.run_id

    def log_config(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]
        existing = self.client.get_run(self.run_id).data.params
        params = [p for p in params if p.key not in existing]  # a resumed run keeps its first values
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters in one batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(_mlflow_key(k), v, now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_image(self, step: int, key: str, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=key)

    def log_checkpoint(self, path: Path) -> None:
        self.client.set_tag(self.run_id, "gantk.checkpoint", str(Path(path).resolve()))

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _mlflow_key(key: str) -> str:
    """MLflow keys take letters, digits, ``_ - . / :`` and spaces: anything else becomes ``_``."""
    return "".join(c if c.isalnum() or c in "_-./: " else "_" for c in key)


class WandB(Tracker):
    name = "wandb"

    def __init__(self, run: Path, run_id: str = "") -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "gantk"),
            name=run.resolve().name,
            dir=str(run),
            id=run_id or None,
            resume="allow" if run_id else None,
            reinit="create_new",
        )
        self.run_id = self.run.id

    def log_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def log_image(self, step: int, key: str, path: Path) -> None:
        self.run.log({key: self.wandb.Image(str(path))}, step=step)

    def log_checkpoint(self, path: Path) -> None:
        self.run.summary["checkpoint"] = str(Path(path).resolve())

    def close(self) -> None:
        self.run.finish()


KINDS: dict[str, type[Tracker]] = {"tensorboard": TensorBoard, "mlflow": MLflow, "wandb": WandB}


def open_trackers(run: Path, names: list[str]) -> list[Tracker]:
    """The trackers ``names`` for the run folder ``run``, each continuing its run when the folder names one."""
    ids_file = run / IDS_FILE
    try:
        ids = json.loads(ids_file.read_text(encoding="utf-8")) if ids_file.is_file() else {}
    except (OSError, ValueError):
        ids = {}
    trackers = [KINDS[name](run, str(ids.get(name, ""))) for name in dict.fromkeys(names) if name in KINDS]
    if trackers:
        ids.update({t.name: t.run_id for t in trackers if t.run_id})
        ids_file.write_text(json.dumps(ids, indent=1) + "\n", encoding="utf-8")
    return trackers
