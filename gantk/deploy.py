"""Exporting a trained generator to ONNX or TorchScript, checked on the spot.

An export is a folder: the model file (``generator.onnx`` or ``generator.pt``), the checkpoint's
``config.json`` beside it, and ``export.json``, which documents the inputs (names, dtypes, which axes
are dynamic), the output, and the parity check that was run: the exported model and PyTorch on the same
fixed inputs, at the traced shapes and at other ones (another batch size; another height and width for
image inputs), with the tolerance and the maximum difference measured. An export that does not match
is an error and leaves nothing under the output name: it is written into a temporary folder that is
renamed into place only after the check passed.

``gantk sample``, ``translate`` and ``upscale`` and the two apps take an ONNX export folder wherever they
take a checkpoint: :func:`gantk.io.generators.load_generator` then returns :class:`OnnxGenerator`, which runs
the graph in ONNX Runtime behind the generator's usual call.

The generator is exported in eval mode: batch norm uses its running statistics, dropout is off. A
checkpoint whose config asks for test-time dropout (pix2pix's ``eval.test_mode: train``) is refused,
because an exported graph would silently give eval-mode outputs instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantk import staging
from gantk.errors import GantkError
from gantk.io import checkpoint as ckpt
from gantk.io.generators import load_generator, load_plugin_from_meta

FORMATS = ("safetensors", "onnx", "torchscript")
MODEL_FILES = {"onnx": "generator.onnx", "torchscript": "generator.pt"}
#: the largest difference from PyTorch's output (images in [-1, 1]) an export may show
TOLERANCE = 1e-4


class ExportedGenerator(nn.Module):
    """The plugin's ``generate`` over positional inputs, in the order of ``names``: what gets exported."""

    def __init__(self, plugin: Any, G: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.plugin, self.G, self.names = plugin, G, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.plugin.generate(self.G, dict(zip(self.names, tensors, strict=True)))


def _other_shapes(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inputs of another batch size (3) and, for images, twice the width: what the dynamic axes promise."""
    g = torch.Generator().manual_seed(1)
    out = {}
    for name, t in inputs.items():
        shape = [3, *t.shape[1:]]
        if t.dim() == 4:
            shape[3] *= 2
        if t.is_floating_point():
            out[name] = torch.rand(shape, generator=g) * 2 - 1
        else:
            out[name] = torch.randint(int(t.min()), int(t.max()) + 1, shape, generator=g, dtype=t.dtype)
    return out


def _dynamic_axes(inputs: dict[str, torch.Tensor]) -> dict[str, dict[int, str]]:
    axes = {name: {0: "batch"} for name in inputs}
    for name, t in inputs.items():
        if t.dim() == 4:
            axes[name].update({2: "height", 3: "width"})
    axes["images"] = {0: "batch", 2: "height", 3: "width"}
    return axes


def _run_exported(fmt: str, path: Path, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream, and still loads
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(*inputs.values())


def export_model(
    source: Path,
    dest: Path,
    fmt: str,
    which: str = "last",
    use_ema: bool = True,
    plugin_ref: str | None = None,
    direction: str | None = None,
) -> dict[str, Any]:
    """Export the generator of checkpoint ``source`` (the one serving ``direction``, for a plugin with one
    per direction) as ``fmt`` into the new folder ``dest``; returns export.json."""
    if fmt not in MODEL_FILES:
        raise GantkError(f"--format {fmt!r} is not one gantk exports to; choose one of {', '.join(FORMATS)}.")
    if dest.exists():
        raise GantkError(f"-o {dest} exists; an export writes a new folder. Choose another path.")
    folder = ckpt.find_checkpoint(source, which)
    plugin, G = load_generator(folder, "cpu", use_ema=use_ema, plugin=plugin_ref, direction=direction)
    network = plugin.network_for(direction) if direction else ckpt.read_meta(folder).get("generator", plugin.generator)
    if getattr(getattr(plugin.cfg, "eval", None), "test_mode", "eval") == "train":
        raise GantkError(
            f"{folder} asks for test-time dropout and batch statistics (eval.test_mode: train); an exported graph "
            "runs in eval mode and would silently differ from gantk translate. Export is refused for it."
        )
    try:
        inputs = plugin.export_inputs()
    except NotImplementedError as exc:
        raise GantkError(f"plugin '{plugin.cfg.plugin}' cannot be exported to {fmt}: {exc}.") from None
    names = list(inputs)
    model = ExportedGenerator(plugin, G, names).eval()
    with torch.no_grad():
        expected = model(*inputs.values()).float()
    other = _other_shapes(inputs)
    with torch.no_grad():
        expected_other = model(*other.values()).float()

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.remove_stale(dest)  # what a killed export of the same name left
    tmp = staging.staging_folder(dest)
    try:
        path = tmp / MODEL_FILES[fmt]
        try:
            _write(fmt, model, inputs, path)
        except (GantkError, OSError):
            raise
        except Exception as exc:  # the exporter's own refusal (an op it cannot express): one paragraph
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise GantkError(
                f"the {fmt} exporter could not export the generator of plugin '{plugin.cfg.plugin}': "
                f"{type(exc).__name__}: {first} Nothing was written."
            ) from exc
        diffs = {
            "traced shapes": float((_run_exported(fmt, path, inputs).float() - expected).abs().max()),
            "other shapes": float((_run_exported(fmt, path, other).float() - expected_other).abs().max()),
        }
        worst = max(diffs.values())
        if not worst <= TOLERANCE:
            raise GantkError(
                f"the {fmt} export of {folder} does not match PyTorch: the largest difference is {worst:.3g} "
                f"({', '.join(f'{k} {v:.3g}' for k, v in diffs.items())}), over the tolerance {TOLERANCE:g}. "
                "Nothing was written."
            )
        info = {
            "format": fmt,
            "model": path.name,
            "from": str(folder),
            "ema": ckpt.generator_weights(folder, network, use_ema).name.endswith("_ema.safetensors"),
            "generator": network,
            **({"direction": direction} if direction else {}),
            "inputs": [
                {"name": n, "dtype": str(t.dtype).removeprefix("torch."), "example_shape": list(t.shape)}
                for n, t in inputs.items()
            ],
            "output": {"name": "images", "range": [-1, 1], "layout": "NCHW"},
            "dynamic_axes": {n: {str(i): a for i, a in axes.items()} for n, axes in _dynamic_axes(inputs).items()},
            "mode": "eval (batch norm running statistics, no dropout)",
            "parity": {"tolerance": TOLERANCE, "max_abs_diff": diffs, "runtime": _runtime(fmt)},
        }
        meta = json.loads((folder / ckpt.CONFIG).read_text(encoding="utf-8"))
        (tmp / ckpt.CONFIG).write_text(json.dumps({**meta, "generator": network}, indent=2), encoding="utf-8")
        (tmp / "export.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        ckpt.write_manifest(tmp)  # SHA-256 of each file: a load refuses a model file changed since
        staging.apply_umask(tmp)
        os.replace(tmp, dest)
    except OSError as exc:  # a full disk, a quota: nothing half-written stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise GantkError(f"could not write the export {dest}: {exc.strerror or exc}. Nothing was written.") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _runtime(fmt: str) -> str:
    if fmt == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    return f"torch.jit {torch.__version__}"


def _write(fmt: str, model: nn.Module, inputs: dict[str, torch.Tensor], path: Path) -> None:
    args = tuple(inputs.values())
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated upstream; the parity check decides
            traced = torch.jit.trace(model, args, check_trace=False)
            buffer = io.BytesIO()  # torch.jit.save to a path aborts the process (C++) on a full disk
            torch.jit.save(traced, buffer)
        with open(path, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        return
    try:
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
    except ImportError:
        raise GantkError(
            "ONNX export needs the onnx extra: pip install 'gantk[onnx]' (onnx, onnxscript, onnxruntime)."
        ) from None
    axes = _dynamic_axes(inputs)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's progress and advice: the parity check is the verdict
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=list(inputs),
            output_names=["images"],
            # one entry for forward's *tensors: per input, its dynamic axes; AUTO lets torch.export find the
            # constraints itself (a U-Net's sides are multiples of 2**num_downs)
            dynamic_shapes=(tuple(dict.fromkeys(axes[name], torch.export.Dim.AUTO) for name in inputs),),
            dynamo=True,
            external_data=False,
        )


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    which: str = "last",
    use_ema: bool = True,
    plugin_ref: str | None = None,
    direction: str | None = None,
) -> Path:
    """``gantk export``'s default format: a generator-only gantk checkpoint (safetensors + config.json),
    EMA weights when asked and present; ``direction`` picks the generator of a plugin with one per
    direction (the plugin names the network; an unknown direction is refused there)."""
    network = None
    if direction:
        source = ckpt.find_checkpoint(checkpoint, which)
        network = load_plugin_from_meta(ckpt.read_meta(source), source, plugin_ref).network_for(direction)
    return ckpt.export_generator(checkpoint, out, which, use_ema=use_ema, network=network)
