"""Exported generators read back: an ONNX export folder run by ONNX Runtime behind the generator's call.

``gantk export`` (:mod:`gantk.deploy`) writes the folder; this module only reads it, so inference
(``gantk sample``, ``translate``, ``upscale``, the apps) loads an export without the exporter's code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantk.errors import GantkError
from gantk.io.checkpoint import EXPORT_INFO  # the description an export folder carries beside its model file


class OnnxGenerator(nn.Module):
    """An exported ONNX generator behind the call a plugin makes on its generator: ``G(z)``, ``G(z, label)``,
    ``G(image)``. Positional tensors go to the graph's inputs in export order; the output comes back as a
    CPU tensor. It holds no weights of its own; its one empty parameter only tells callers that ask for
    ``next(G.parameters()).device`` that it runs on the CPU.
    """

    def __init__(self, folder: Path) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise GantkError(
                f"{folder} is an ONNX export; running it needs onnxruntime: pip install 'gantk[onnx]'."
            ) from None
        info = read_export_info(folder)
        self.names = [i["name"] for i in info["inputs"]]
        self.session = onnxruntime.InferenceSession(str(folder / info["model"]), providers=["CPUExecutionProvider"])
        self.device_anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        feeds = {name: t.detach().cpu().numpy() for name, t in zip(self.names, tensors, strict=True)}
        return torch.from_numpy(self.session.run(None, feeds)[0])


def read_export_info(folder: Path) -> dict[str, Any]:
    """``export.json`` of an export folder, checked for what loading needs."""
    try:
        info = json.loads((Path(folder) / EXPORT_INFO).read_text(encoding="utf-8"))
        if not (isinstance(info, dict) and isinstance(info.get("inputs"), list) and info.get("model")):
            raise ValueError("'inputs' or 'model' is missing")
        return info
    except (OSError, ValueError) as exc:
        raise GantkError(f"{folder}/export.json is not a gantk export description: {exc}") from None


def is_onnx_export(path: Path) -> bool:
    """True for a folder written by ``gantk export --format onnx``."""
    try:
        return json.loads((Path(path) / EXPORT_INFO).read_text(encoding="utf-8")).get("format") == "onnx"
    except (OSError, ValueError, AttributeError):
        return False
