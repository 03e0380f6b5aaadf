"""``gantk push``: a run's generator on the Hugging Face Hub, with a model card that says what it is.

What is uploaded is a gantk export (:func:`gantk.deploy.export_checkpoint`, or ``--format onnx``):
``config.json``, the generator's weights and ``manifest.json`` with each file's SHA-256, which
``hf://NAME`` checks on the way back (:mod:`gantk.io.hub`). Beside it: ``README.md``, the model card
(the plugin, the data, the training steps, the metrics with the protocol they were measured under, a
sample grid, how to use it and how to reproduce it), ``samples.png`` (the run's newest grid up to the
exported step) and ``training-config.yaml`` (the resolved config the card's reproduce command reads).

Uploading goes through huggingface_hub's ``HfApi`` (``HF_TOKEN`` or ``hf auth login`` as for any Hub
user; ``HF_ENDPOINT`` for a private Hub).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gantk import __version__
from gantk.config import height_width
from gantk.errors import GantkError
from gantk.io import checkpoint as ckpt
from gantk.io.hub import require_hub

PIPELINE_TAGS = {"sample": "unconditional-image-generation", "translate": "image-to-image", "upscale": "image-to-image"}


@dataclass
class Published:
    repo: str
    url: str
    commit: str
    files: list[str]


def run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint folder belongs to (``<run>/checkpoints/<name>``), or None for an export."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None


def latest_evaluation(run: Path | None, step: int) -> tuple[dict[str, float], dict[str, Any], int] | None:
    """``(metrics, protocol, step)`` of the run's newest evaluation at or before ``step``, from metrics.jsonl."""
    path = run / "metrics.jsonl" if run else None
    if path is None or not path.is_file():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        scores = {k[5:]: v for k, v in record.items() if k.startswith("eval/") and isinstance(v, (int, float))}
        if scores and int(record.get("step", 0)) <= step:
            found = (scores, record.get("eval_protocol") or {}, int(record["step"]))
    return found


def latest_grid(run: Path | None, step: int) -> Path | None:
    grids = sorted((run / "samples").glob("step_*.png")) if run else []
    grids = [g for g in grids if g.stem[5:].isdigit() and int(g.stem[5:]) <= step]
    return grids[-1] if grids else None


def model_card(repo: str, meta: dict[str, Any], evaluation, grid: bool, fmt: str, tasks: frozenset[str]) -> str:
    """The model card (``README.md``): YAML metadata the Hub reads, then what the model is and how to use it."""
    cfg = meta["config"]
    plugin, data, train = cfg.get("plugin", "?"), cfg.get("data", {}), cfg.get("train", {})
    task = next((t for t in ("translate", "upscale", "sample") if t in tasks), "sample")
    h, w = height_width(data.get("image_size", 0) or 0)
    header = {
        "library_name": "gantk",
        "tags": ["gan", plugin],
        "pipeline_tag": PIPELINE_TAGS[task],
        **({"datasets": [data["name"]]} if data.get("name") and "/" not in str(data["name"]) else {}),
    }
    step = int(meta.get("step", 0))
    ema = meta.get("exported", {}).get("ema")
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).strip(),
        "---",
        "",
        f"# {repo.split('/')[-1]}",
        "",
        f"A **{plugin}** generator trained with [gantk](https://pypi.org/project/gantk/) {meta.get('gantk_version', '')}"
        f" and published by `gantk push` (gantk {__version__}).",
        "",
        "| model | |",
        "|---|---|",
        f"| plugin | `{plugin}` ({meta.get('plugin', {}).get('source', '?')}) |",
        f"| data | `{data.get('name', '?')}`, {h}x{w}, {data.get('channels', '?')} channel(s) |",
        f"| training | {step:,} steps at batch {train.get('batch_size', '?')} ({step * int(train.get('batch_size', 0)) / 1000:g}"
        " kimg), seed " + f"{train.get('seed', '?')}, precision {train.get('precision', '?')} |",
        f"| weights | {'EMA of the generator' if ema else 'the generator'} (`{meta.get('generator', 'G')}`), {fmt} |",
        "",
        "## Metrics",
        "",
    ]
    if evaluation:
        scores, protocol, at = evaluation
        lines += [f"Measured at step {at:,} by the run's own evaluation:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in scores.items()]
        if protocol:
            lines += ["", "Protocol (how the numbers were made; compare only numbers made the same way):", ""]
            lines += [f"- {k}: {_shown(v)}" for k, v in protocol.items()]
    else:
        lines.append("No evaluation was recorded for this checkpoint (`gantk eval hf://" + repo + "` measures one).")
    if grid:
        lines += ["", "## Samples", "", f"![samples from step {step:,}](samples.png)"]
    use = {
        "sample": f"gantk sample hf://{repo} -n 64 --seed 1 -o grid.png",
        "translate": f"gantk translate hf://{repo} input.png -o output.png",
        "upscale": f"gantk upscale hf://{repo} photo.png -o photo-x4.png",
    }[task]
    lines += [
        "",
        "## Use",
        "",
        "```",
        "pip install 'gantk[hub]'",
        use,
        "```",
        "",
        "gantk downloads the files `manifest.json` lists into the hub's cache and checks each against its "
        "SHA-256 before building anything; it never loads a pickle.",
        "",
        "## Reproduce",
        "",
        "```",
        f"gantk train {plugin} --config training-config.yaml",
        "```",
        "",
        "`training-config.yaml` is the run's resolved config (data paths as they were on the training machine: "
        "point `data.name` at your copy).",
        "",
    ]
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if value in (None, "", [], {}):
        return "none"
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def push(
    source: Path,
    repo: str,
    which: str = "last",
    use_ema: bool = True,
    plugin: str | None = None,
    direction: str | None = None,
    fmt: str = "safetensors",
    private: bool = False,
    keep: Path | None = None,
) -> Published:
    """Export ``source``'s generator with its model card into a temporary folder and upload it to ``repo``;
    ``keep`` also keeps a copy of what was uploaded there."""
    hub = require_hub()
    from gantk.deploy import export_checkpoint, export_model
    from gantk.io.generators import load_plugin_from_meta

    folder = ckpt.find_checkpoint(source, which)
    meta = ckpt.read_meta(folder)
    run = run_folder_of(folder)
    step = int(meta.get("step", 0))
    with tempfile.TemporaryDirectory(prefix="gantk-push-") as tmp:
        model = Path(tmp) / "model"
        if fmt == "safetensors":
            export_checkpoint(source, model, which, use_ema, plugin, direction)
        else:
            export_model(source, model, fmt, which, use_ema, plugin, direction)
        exported = json.loads((model / ckpt.CONFIG).read_text(encoding="utf-8"))
        tasks = type(load_plugin_from_meta(exported, model, plugin)).tasks
        grid = latest_grid(run, step)
        if grid is not None:
            shutil.copyfile(grid, model / "samples.png")
        (model / "training-config.yaml").write_text(
            yaml.safe_dump(exported["config"], sort_keys=False), encoding="utf-8"
        )
        card = model_card(repo, exported, latest_evaluation(run, step), grid is not None, fmt, tasks)
        (model / "README.md").write_text(card, encoding="utf-8")
        api = hub.HfApi()
        try:
            url = api.create_repo(repo, exist_ok=True, private=private)
            commit = api.upload_folder(
                repo_id=repo,
                folder_path=str(model),
                commit_message=f"gantk push: {exported['config']['plugin']} step {step}",
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GantkError(f"could not push to the Hub repository {repo}: {first}") from None
        files = sorted(p.name for p in model.iterdir())
        if keep is not None:
            shutil.copytree(model, keep, dirs_exist_ok=False)
    return Published(repo, str(url), str(getattr(commit, "oid", "") or ""), files)
