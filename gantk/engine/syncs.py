"""Catch host reads of tensor values inside a training step.

A training step that never reads a tensor's value on the host can be queued on the GPU without waiting
for it, and captured once as a CUDA graph and replayed (``gantk.engine.graph``). One ``.item()``, one
``if loss > x:`` or one ``.tolist()`` breaks both: it makes the CPU wait for the GPU, and under capture
it either fails or bakes the value seen at capture time into every replay.

:func:`forbid_host_reads` turns such reads into a :class:`HostSyncError` that names the operation and
the line of plugin code that asked for it. The engine runs one warm-up step under it before it
captures a graph (so a plugin that cannot be captured falls back to eager with a reason), the tests run
every built-in plugin's steps under it on the CPU, and ``gantk.testing.check_plugin`` checks third-party
plugins with it.

What counts as a host read: ``aten::_local_scalar_dense`` (``.item()``, ``bool()``, ``int()``,
``float()`` of a tensor, Python ``if`` on a tensor), ``Tensor.tolist()`` and ``Tensor.numpy()``, ops whose
output shape depends on the values (``nonzero``, boolean-mask indexing, ``unique``, ...), and, when the
step runs on a GPU, copies between the GPU and the CPU.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gantk.errors import GantkError

#: ops whose output size depends on tensor values: the host must wait to learn it
VALUE_SHAPED = {
    "aten::nonzero",
    "aten::masked_select",
    "aten::_unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::repeat_interleave",
    "aten::bincount",
}


class HostSyncError(GantkError):
    """A training step read a tensor value on the host (see the module docstring for what counts)."""


def _caller() -> str:
    """The innermost frame outside torch and this module: the line that asked for the value."""
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace("\\", "/")
        if "/torch/" in path or path.endswith("gantk/engine/syncs.py") or "/contextlib.py" in path:
            continue
        return f"{frame.filename}:{frame.lineno} ({frame.line})"
    return "unknown location"


def _error(what: str) -> HostSyncError:
    return HostSyncError(
        f"{what} at {_caller()}: a training step must not read tensor values on the host. It makes the CPU "
        "wait for the GPU every step and cannot be captured as a CUDA graph. Keep the value on the device "
        "(torch.where instead of if, a masked update instead of a skipped one), or draw on the device "
        "with ctx.rand / ctx.randn instead of on the CPU."
    )


class _HostReadDetector(TorchDispatchMode):
    def __init__(self, device: torch.device, report: Callable[[HostSyncError], None]) -> None:
        super().__init__()
        self.device = device
        self.report = report

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name == "aten::_local_scalar_dense":
            self.report(
                _error("a tensor value was read with .item() / bool() / int() / float() (or a Python if on a tensor)")
            )
        if name in VALUE_SHAPED:
            self.report(_error(f"{name} has an output size that depends on tensor values"))
        if name == "aten::index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else ())
        ):
            self.report(_error("boolean-mask indexing has an output size that depends on tensor values"))
        if self.device.type != "cpu" and name in ("aten::_to_copy", "aten::copy_"):
            self._check_copy(name, args, kwargs)
        return func(*args, **kwargs)

    def _check_copy(self, name: str, args, kwargs) -> None:
        src = args[1] if name == "aten::copy_" else args[0]
        dst_device = args[0].device if name == "aten::copy_" else kwargs.get("device") or src.device
        if not isinstance(src, torch.Tensor):
            return
        devices = {torch.device(src.device).type, torch.device(dst_device).type}
        if "cpu" in devices and len(devices) > 1:
            self.report(_error(f"a copy between {src.device} and {dst_device} ({name})"))


def _raise(error: HostSyncError) -> None:
    raise error


@contextlib.contextmanager
def forbid_host_reads(
    device: torch.device | str = "cpu", report: Callable[[HostSyncError], None] | None = None
) -> Iterator[None]:
    """Inside the block, a host read of a tensor value raises :class:`HostSyncError`.

    With ``report``, each read is passed to it instead and the block runs on (the engine's warm-up
    step records why a step cannot be captured without stopping halfway through an update).
    """
    device = torch.device(device)
    report = report or _raise
    patched = {}

    def watched(method: str, original):
        def call(tensor, *args, **kwargs):
            report(_error(f"Tensor.{method}() read a tensor's values"))
            return original(tensor, *args, **kwargs)

        return call

    for method in ("tolist", "numpy"):
        patched[method] = getattr(torch.Tensor, method)
        setattr(torch.Tensor, method, watched(method, patched[method]))
    try:
        with _HostReadDetector(device, report):
            yield
    finally:
        for method, original in patched.items():
            setattr(torch.Tensor, method, original)
