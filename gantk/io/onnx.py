"""Exported generators read back: an ONNX export folder run by ONNX Runtime behind the generator's call.

``gantk export`` (:mod:`gantk.deploy`) writes the folder; this module only reads it, so inference
(``gantk sample``, ``translate``, ``upscale``, the apps) loads an export without the exporter's code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantk.errors import GantkError
from gantk.io.checkpoint import EXPORT_INFO  # the description an export folder carries beside its model file
from gantk.io.hub import is_cached_blob


class OnnxGenerator(nn.Module):
    """An exported ONNX generator behind the call a plugin makes on its generator: ``G(z)``, ``G(z, label)``,
    ``G(image)``. Positional tensors go to the graph's inputs in export order; the output comes back as a
    CPU tensor. It holds no weights of its own; its one empty parameter only tells callers that ask for
    ``next(G.parameters()).device`` that it runs on the CPU.

    The folder is checked like a checkpoint before ONNX Runtime sees it (:func:`check_export`), and the
    graph's inputs against ``expected`` (what the plugin feeds, from its config) once loaded.
    """

    def __init__(self, folder: Path, expected: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise GantkError(
                f"{folder} is an ONNX export; running it needs onnxruntime: pip install 'gantk[onnx]'."
            ) from None
        info, model = check_export(Path(folder))
        self.names = [i["name"] for i in info["inputs"]]
        try:
            self.session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        except Exception as exc:  # a graph the runtime cannot take: its own words, one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GantkError(f"{model} cannot be loaded by ONNX Runtime: {first}") from None
        _check_graph_inputs(self.session, info, model, expected)
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        feeds = {name: t.detach().cpu().numpy() for name, t in zip(self.names, tensors, strict=True)}
        return torch.from_numpy(self.session.run(None, feeds)[0])


def read_export_info(folder: Path) -> dict[str, Any]:
    """``export.json`` of an export folder, checked for what loading needs: a model file named by a plain
    file name, and a list of inputs with a name and a dtype each."""
    where = Path(folder) / EXPORT_INFO
    try:
        info = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GantkError(f"{where} is not a gantk export description: {exc}") from None
    problems = []
    if not isinstance(info, dict):
        problems.append(f"it holds a {type(info).__name__}, not an object")
    else:
        model = info.get("model")
        if not (isinstance(model, str) and model and Path(model).name == model and model not in (".", "..")):
            problems.append(f"'model' must name a file in the folder by its name alone, not {model!r}")
        inputs = info.get("inputs")
        if not (
            isinstance(inputs, list)
            and inputs
            and all(isinstance(i, dict) and isinstance(i.get("name"), str) and i.get("dtype") in DTYPES for i in inputs)
        ):
            problems.append(f"'inputs' must list each input with a name and a dtype ({', '.join(DTYPES)})")
    if problems:
        raise GantkError(
            f"{where} is not a gantk export description: {'; '.join(problems)}. Export folders are written by "
            "gantk export."
        )
    return info


#: export.json's input dtypes and the ONNX type each must have in the graph
DTYPES = {"float32": "tensor(float)", "int64": "tensor(int64)", "float16": "tensor(float16)"}


def check_export(folder: Path) -> tuple[dict[str, Any], Path]:
    """``(export.json, the model file)`` of an export folder, checked like a checkpoint: the model is a
    regular file inside the folder (no symlink out of it, but for the hub cache's own links from a snapshot to
    its blobs: ``hf://`` models), every file matches the SHA-256 of the
    manifest written at export, and the graph keeps its weights inside (no external-data paths)."""
    from gantk.io import checkpoint as ckpt

    info = read_export_info(folder)
    model = folder / info["model"]
    if (model.is_symlink() and not is_cached_blob(model)) or not model.is_file():
        what = "a symbolic link" if model.is_symlink() else "missing"
        raise GantkError(f"{model}, the model file {folder / EXPORT_INFO} names, is {what}; export again.")
    manifest = folder / ckpt.MANIFEST
    if manifest.is_file():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8")).get("sha256", {})
        except (OSError, ValueError, AttributeError):
            recorded = None
        if not isinstance(recorded, dict) or info["model"] not in recorded or EXPORT_INFO not in recorded:
            raise GantkError(f"{manifest} does not list the export's files; export again.")
        for name in recorded:
            if Path(name).name != name or not (folder / name).is_file():
                raise GantkError(f"{manifest} lists {name!r}, which is not a file of {folder}; export again.")
            try:
                ckpt.verify(folder / name)
            except GantkError as exc:
                raise GantkError(str(exc).replace("Use another checkpoint of the run.", "Export again.")) from None
    else:
        warnings.warn(
            f"{folder} has no {ckpt.MANIFEST} (an export from before gantk recorded one): its files cannot be "
            "checked for changes since the export.",
            stacklevel=3,
        )
    _check_no_external_data(model)
    return info, model


def _check_no_external_data(model: Path) -> None:
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors, uses_external_data
    except ImportError:
        raise GantkError(f"{model}: checking an ONNX export needs onnx: pip install 'gantk[onnx]'.") from None
    try:
        graph = onnx.load(str(model), load_external_data=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GantkError(f"{model} is not a readable ONNX model: {first}") from None
    external = [t.name for t in _get_all_tensors(graph) if uses_external_data(t)]
    if external:
        raise GantkError(
            f"{model} keeps tensors in external data files ({', '.join(external[:3])}{' ...' if len(external) > 3 else ''}); "
            "gantk exports keep every weight inside the model file, and never read files a model names."
        )


def _check_graph_inputs(
    session: Any, info: dict[str, Any], model: Path, expected: dict[str, torch.Tensor] | None
) -> None:
    """The graph takes what export.json says, and what the plugin will feed (names, types, fixed sizes)."""
    graph = [(i.name, i.type, list(i.shape)) for i in session.get_inputs()]
    recorded = [(i["name"], DTYPES[i["dtype"]]) for i in info["inputs"]]
    if [(n, t) for n, t, _ in graph] != recorded:
        raise GantkError(
            f"{model} takes inputs {[(n, t) for n, t, _ in graph]}, but {model.parent / EXPORT_INFO} describes "
            f"{recorded}: the model file is not the one exported with it. Export again."
        )
    if expected is None:
        return
    if list(expected) != [n for n, _, _ in graph]:
        raise GantkError(f"{model} takes inputs {[n for n, _, _ in graph]}; the plugin feeds {list(expected)}.")
    for (name, _, dims), tensor in zip(graph, expected.values(), strict=True):
        fixed = [(axis, d) for axis, d in enumerate(dims) if isinstance(d, int)]
        wrong = [(axis, d) for axis, d in fixed if axis >= tensor.dim() or tensor.shape[axis] != d]
        if len(dims) != tensor.dim() or wrong:
            raise GantkError(
                f"{model}: input '{name}' has shape {dims} in the graph, but the config beside it (config.json) "
                f"makes the plugin feed {list(tensor.shape)}: the model and its config disagree (an edited "
                "config.json, or files from two exports). Export again."
            )


def is_onnx_export(path: Path) -> bool:
    """True for a folder written by ``gantk export --format onnx``."""
    try:
        return json.loads((Path(path) / EXPORT_INFO).read_text(encoding="utf-8")).get("format") == "onnx"
    except (OSError, ValueError, AttributeError):
        return False
