"""Checkpoint folders: one ``.safetensors`` per network, ``config.json``, training state, a manifest.

A checkpoint folder looks like::

    checkpoints/step_00001000/
        config.json                  plugin + resolved config: rebuilds the networks with nothing else
        G.safetensors  D.safetensors one file per network (G_ema.safetensors when EMA is on)
        training_state.json          optimizers, schedulers, scalers, RNG, step, data position ...
        training_state.safetensors   ... their tensors
        manifest.json                written last: a folder without it is incomplete and ignored

It is written into a hidden temporary folder, every file flushed to disk, and then renamed into place
in one step, so a crash never leaves a half-written folder under a valid name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gantk import staging
from gantk.errors import CheckpointError
from gantk.io.state import pack, unpack

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXPORT_INFO = "export.json"  # what gantk export writes beside an ONNX or TorchScript model
CONFIG = "config.json"
STATE = "training_state"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".bin")
STEP_NAME = re.compile(r"step_(\d+)")  # the engine's step_00001000: a copy or a renamed folder is not one


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(path))
    except SafetensorError as exc:  # safetensors reports a full disk this way: the same path as any OSError
        full = "StorageFull" in str(exc) or "No space" in str(exc)
        raise OSError(errno.ENOSPC if full else errno.EIO, "No space left on device" if full else str(exc)) from exc
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def sha256(path: Path) -> str:
    """The file's SHA-256, read in 8 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(8 << 20):
            digest.update(piece)
    return digest.hexdigest()


def save_checkpoint(
    folder: Path,
    *,
    meta: dict[str, Any],
    networks: dict[str, dict[str, torch.Tensor]],
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint to ``folder`` (replacing an older one of the same name)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging.remove_stale(folder)  # what a killed write of the same name left
    tmp = staging.staging_folder(folder)
    try:
        files = {}
        for name, state in networks.items():
            _save_tensors(tmp / f"{name}.safetensors", state)
            files[name] = f"{name}.safetensors"
        _write_json(tmp / CONFIG, {"format": FORMAT_VERSION, **meta, "networks": files})
        if training_state is not None:
            tree, tensors = pack(training_state)
            _save_tensors(tmp / f"{STATE}.safetensors", tensors)
            _write_json(tmp / f"{STATE}.json", tree)
        write_manifest(tmp, meta.get("step"))
        staging.apply_umask(tmp)  # mkdtemp's 0700 and safetensors' 0600 would keep an export to one account
        _fsync_dir(tmp)
        if folder.exists():
            old = staging.staging_folder(folder, "old")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def write_manifest(folder: Path, step: int | None = None) -> None:
    """``manifest.json``, written last: the size and SHA-256 of every file now in ``folder``."""
    written = sorted(p for p in folder.iterdir() if p.name != MANIFEST)
    sizes = {p.name: p.stat().st_size for p in written}
    sums = {p.name: sha256(p) for p in written}
    _write_json(folder / MANIFEST, {"format": FORMAT_VERSION, "step": step, "files": sizes, "sha256": sums})


def is_complete(folder: Path) -> bool:
    """True when the manifest exists and every file it lists is there with its recorded size."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return all((folder / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def recorded_step(folder: Path) -> int | None:
    """The step a checkpoint's manifest records (None for an unreadable one)."""
    try:
        step = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def step_checkpoints(run: Path) -> list[Path]:
    """Complete ``checkpoints/step_<digits>`` folders of a run, oldest first by the step their manifest
    records (the name only breaks ties). Anything else there (``step_backup``, ``step_00000004.corrupt``,
    ``best``) is the user's: never resumed from, never rotated out."""
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        match = STEP_NAME.fullmatch(p.name)
        if match and p.is_dir() and is_complete(p):
            step = recorded_step(p)
            found.append((int(match.group(1)) if step is None else step, p.name, p))
    return [p for _, _, p in sorted(found)]


def find_checkpoint(path: Path, which: str = "last") -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (``which``: last or best)."""
    path = Path(path)
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path} is a pickle file; gantk loads checkpoints only from safetensors + JSON folders, because "
            "unpickling can run arbitrary code."
        )
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; expected a run folder or a checkpoint folder.")
    if (path / EXPORT_INFO).is_file():
        raise CheckpointError(_export_message(path))
    if (path / MANIFEST).exists() or (path / CONFIG).exists():
        if not is_complete(path):
            raise CheckpointError(f"checkpoint {path} is incomplete (missing or short files against {MANIFEST}).")
        return path
    if which == "best":
        best = path / "checkpoints" / "best"
        if is_complete(best):
            return best
        raise CheckpointError(f"run {path} has no complete best checkpoint (checkpoints/best).")
    found = step_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path} holds no complete checkpoint (looked for {path}/checkpoints/step_*/{MANIFEST}).")
    return found[-1]


def _export_message(path: Path) -> str:
    try:
        info = json.loads((path / EXPORT_INFO).read_text(encoding="utf-8"))
        fmt, source = str(info.get("format", "?")), str(info.get("from", ""))
    except (OSError, ValueError, AttributeError):
        fmt, source = "?", ""
    return (
        f"{path} is an export (gantk export --format {fmt}: the generator for another runtime), not a checkpoint. "
        "gantk sample, translate, upscale and the apps run an ONNX export; evaluation, probing, exporting and "
        f"resuming need the checkpoint it was exported from{f' ({source})' if source else ''}."
    )


def read_meta(folder: Path) -> dict[str, Any]:
    """``config.json``: what the checkpoint was trained with. Its shape is checked here, so a hand-edited
    or foreign file is one clear error rather than a KeyError somewhere later."""
    verify(folder / CONFIG)
    try:
        meta = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {folder / CONFIG}: {exc}") from None
    problems = []
    if not isinstance(meta, dict):
        problems.append(f"it holds a {type(meta).__name__}, not an object")
    else:
        if not isinstance(meta.get("config"), dict):
            problems.append("'config' (the resolved training config) is missing or not an object")
        plugin = meta.get("plugin")
        if not (isinstance(plugin, dict) and isinstance(plugin.get("name"), str) and plugin.get("name")):
            problems.append("'plugin.name' is missing")
        if not isinstance(meta.get("generator", "G"), str):
            problems.append("'generator' is not a network name")
    if problems:
        raise CheckpointError(
            f"{folder / CONFIG} is not a gantk checkpoint config: {'; '.join(problems)}. A checkpoint folder is "
            "written by gantk train or gantk export."
        )
    return meta


def verify(path: Path) -> None:
    """Check a checkpoint file against the SHA-256 its folder's manifest recorded (older manifests have
    none: then only the sizes were checked). A bit flipped on disk or in a copy is refused by name."""
    try:
        recorded = json.loads((path.parent / MANIFEST).read_text(encoding="utf-8")).get("sha256", {})
    except (OSError, ValueError, AttributeError):
        return
    expected = recorded.get(path.name) if isinstance(recorded, dict) else None
    if expected and sha256(path) != expected:
        raise CheckpointError(
            f"{path} is corrupt: its content does not match the SHA-256 in {path.parent / MANIFEST} (the file "
            "changed after it was written: a disk or copy error, or an edit). Use another checkpoint of the run."
        )


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    verify(path)
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read tensors from {path}: {exc}") from None


def read_training_state(folder: Path) -> dict[str, Any]:
    verify(folder / f"{STATE}.json")
    try:
        tree = json.loads((folder / f"{STATE}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder} has no readable training state: {exc}") from None
    return unpack(tree, read_tensors(folder / f"{STATE}.safetensors"))


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load a safetensors file into ``module``, listing every mismatch in one clear error."""
    state = read_tensors(path)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
        if shapes:
            parts.append(f"shape mismatch {'; '.join(shapes[:8])}{' ...' if len(shapes) > 8 else ''}")
        raise CheckpointError(f"weights in {path} do not match the network built from its config: {'; '.join(parts)}.")
    module.load_state_dict(state)


def generator_weights(folder: Path, generator: str, use_ema: bool = True) -> Path:
    """The generator's weights file in a checkpoint folder: its EMA copy when asked for and present."""
    ema = folder / f"{generator}_ema.safetensors"
    return ema if use_ema and ema.exists() else folder / f"{generator}.safetensors"


def export_generator(
    source: Path, dest: Path, which: str = "last", use_ema: bool = True, network: str | None = None
) -> Path:
    """Write a generator-only checkpoint: ``config.json`` + the generator's weights, no training state.

    This is what gets shipped (apps, model hubs): a few MB instead of G + D + optimizer moments, and it
    loads with :func:`gantk.io.generators.load_generator` like any checkpoint. EMA weights are exported as
    the generator when the run has them (``use_ema``), since they are the ones that sample best.
    ``network`` exports another generator than the one ``config.json`` names (one direction of several).
    """
    dest = Path(dest)
    _check_export_destination(dest)
    folder = find_checkpoint(source, which)
    meta = read_meta(folder)
    gen = network or meta.get("generator", "G")
    if not (folder / f"{gen}.safetensors").is_file():
        raise CheckpointError(f"{folder} holds no network '{gen}' ({gen}.safetensors is missing).")
    meta["generator"] = gen
    weights = generator_weights(folder, gen, use_ema)
    ema = weights.name == f"{gen}_ema.safetensors"
    meta = {k: v for k, v in meta.items() if k not in ("format", "networks")}
    meta["exported"] = {"from": str(folder), "ema": ema, "generator_only": True}
    if meta.get("plugin", {}).get("source") == "built-in":
        meta["plugin"]["location"] = ""  # found by name wherever gantk is installed
    return save_checkpoint(Path(dest), meta=meta, networks={gen: read_tensors(weights)})


def _check_export_destination(dest: Path) -> None:
    """An export writes a new folder or replaces an earlier export; it never deletes anything else."""
    if dest.exists() and not dest.is_dir():
        raise CheckpointError(f"-o {dest} is an existing file; an export is a folder. Choose a new path.")
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    try:
        earlier = json.loads((dest / CONFIG).read_text(encoding="utf-8")).get("exported", {}).get("generator_only")
    except (OSError, ValueError, AttributeError):
        earlier = False
    allowed = {CONFIG, MANIFEST} | {p.name for p in dest.glob("*.safetensors")}
    if not earlier or any(p.name not in allowed for p in dest.iterdir()):
        raise CheckpointError(
            f"-o {dest} already holds files and is not an earlier export (a run folder, or other files); "
            "exporting there would delete them. Choose a new folder, or an empty one."
        )
