"""Data-parallel training on PyTorch's own stack: torchrun launches, DistributedDataParallel syncs.

gantk never launches processes itself. ``torchrun`` (or ``gantk train --nproc N``, which hands off to
it) starts one process per device and sets ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE``; :func:`init`
reads them. The rules that make an N-process run the same computation as one process at the same
global batch:

* ``train.batch_size`` is the *global* batch. Each rank takes its contiguous slice of every global
  batch of the epoch's shared permutation (:class:`gantk.data.loader.BatchStream`), so the data order
  does not depend on the process count, and a run resumes on a different count at the same place.
* Batch norm is synchronised across ranks: statistics over the global batch, as in one process.
  PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only; :class:`CpuSyncBatchNorm` does the same
  computation for CPU tensors (gloo), so the equivalence is testable on any machine.
* Noise drawn with ``StepContext.randn`` / ``rand`` is drawn for the global batch and sliced per
  rank. Everything else random (dropout, ``cpu_noise`` augmentation) has per-rank seeds, so ranks never
  repeat each other.
* DDP averages gradients; losses are means over the local batch, so the average is the global mean.

Control messages (stop requests, errors, checkpoint RNG states) go over a separate gloo group on the
CPU, so they never wait on, or force a sync of, the GPU stream.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from gantk.errors import GantkError

T = TypeVar("T")


class PeerFailed(GantkError):
    """Raised on the other ranks when one rank failed in a step they take together.

    The failing rank prints its own error; the CLI stays quiet for this one, so the message appears once.
    """


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The ranks torchrun sets; a plain ``python`` or ``gantk`` process is rank 0 of 1."""
    try:
        return World(
            rank=int(os.environ.get("RANK", 0)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
            size=int(os.environ.get("WORLD_SIZE", 1)),
        )
    except ValueError:
        raise GantkError(
            "RANK / LOCAL_RANK / WORLD_SIZE in the environment are not integers; they are set by torchrun, "
            "launch with `torchrun ... -m gantk train` or `gantk train --nproc N`."
        ) from None


_control: dist.ProcessGroup | None = None  # gloo group for control messages


def init(world: World, device: torch.device, timeout_s: float) -> bool:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); True if this call created it."""
    global _control
    if not world.distributed:
        return False
    if dist.is_initialized():
        if _control is None:
            _control = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    _control = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return True


def shutdown() -> None:
    global _control
    if dist.is_initialized():
        dist.destroy_process_group()
    _control = None


def broadcast(obj: T, world: World) -> T:
    """Rank 0's ``obj`` on every rank (pickled in memory between our own processes, never from a file)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def gather(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj, group=_control)
    return out


def main_first(fn: Callable[[], T], world: World, then_all: bool = False) -> T:
    """Run ``fn`` on rank 0 and share its result, or its failure, with every rank.

    With ``then_all`` the other ranks run ``fn`` themselves once rank 0 has succeeded (a dataset that
    rank 0 downloads once and every rank then reads). A failure on rank 0 raises the same message on
    rank 0 and :class:`PeerFailed` on the others, so no rank is left waiting.
    """
    if not world.distributed:
        return fn()
    status: tuple[str, Any] = ("ok", None)
    error: BaseException | None = None
    if world.is_main:
        try:
            result = fn()
            status = ("ok", None if then_all else result)
        except Exception as exc:  # shared, then re-raised below
            error = exc
            status = ("error", str(exc))
    status = broadcast(status, world)
    if error is not None:
        raise error
    if status[0] == "error":
        raise PeerFailed(f"rank 0 failed: {status[1]}")
    if world.is_main:
        return result
    return fn() if then_all else status[1]


class StopFlag:
    """Agree across ranks whether to stop after this step (a signal may reach ranks at different steps).

    ``start(local)`` sends this rank's flag without waiting; ``result(local)`` at the end of the step
    gives the maximum over ranks, so the all-reduce runs while the step computes. In a single process
    it is simply ``local``.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self._value = torch.zeros(1, dtype=torch.int32)
        self._work = None

    def start(self, local: int) -> None:
        if self.world.distributed:
            self._value.fill_(local)
            self._work = dist.all_reduce(self._value, op=dist.ReduceOp.MAX, group=_control, async_op=True)

    def result(self, local: int) -> int:
        if self._work is None:
            return local
        self._work.wait()
        self._work = None
        return int(self._value.item())


def all_finite(flag: torch.Tensor, world: World) -> torch.Tensor:
    """A 0-dim bool tensor true where ``flag`` is true on every rank; decided on the device, never read.

    The non-finite loss check: a rank that skipped an update alone would leave the ranks' weights apart.
    """
    if not world.distributed:
        return flag
    value = flag.to(torch.int32).reshape(1)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return value.reshape(()).bool()


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= world.size
    return values


# ----------------------------------------------------------------------------------------- batch norm

_sync_enabled = True


@contextlib.contextmanager
def local_batchnorm() -> Iterator[None]:
    """Batch norm without syncing inside the block: rank 0 sampling or evaluating alone must not wait."""
    global _sync_enabled
    saved, _sync_enabled = _sync_enabled, False
    try:
        yield
    finally:
        _sync_enabled = saved


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward pass is the all-reduce (sum) of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def _syncing(module: nn.Module) -> bool:
    return (
        _sync_enabled
        and module.training
        and dist.is_available()
        and dist.is_initialized()
        and dist.get_world_size(module.process_group) > 1
    )


class SyncBatchNorm(nn.SyncBatchNorm):
    """PyTorch's ``nn.SyncBatchNorm`` (CUDA), which :func:`local_batchnorm` can switch off."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _syncing(self):
            return nn.modules.batchnorm._BatchNorm.forward(self, x)
        return super().forward(x)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """The same computation for CPU tensors over gloo, which ``nn.SyncBatchNorm`` does not run.

    The mean and then the variance are summed over ranks with autograd-aware all-reduces, so the
    backward pass sums the statistics' gradients over ranks as PyTorch's CUDA kernel does; with DDP's
    gradient average this is batch norm over the global batch.
    """

    process_group: dist.ProcessGroup | None = None

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _syncing(self):
            return super().forward(x)
        return self._synced_forward(x)

    @torch.compiler.disable  # collectives: eager, between the compiled pieces around it
    def _synced_forward(self, x: torch.Tensor) -> torch.Tensor:
        group = self.process_group or dist.group.WORLD
        dims = [0, *range(2, x.dim())]
        shape = (1, -1, *([1] * (x.dim() - 2)))
        xf = x.float()
        count = torch.tensor([xf.numel() / xf.size(1)], dtype=torch.float32)
        sums = _SumOverRanks.apply(torch.cat([xf.sum(dims), count]), group)
        n = sums[-1].detach()
        mean = sums[:-1] / n
        centred = xf - mean.view(shape)
        var = _SumOverRanks.apply((centred * centred).sum(dims), group) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * n / max(float(n) - 1.0, 1.0), factor)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every batch-norm layer in ``module`` by a synchronised one, keeping weights and stats."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (nn.SyncBatchNorm, CpuSyncBatchNorm)
    ):
        cls = CpuSyncBatchNorm if device.type == "cpu" else SyncBatchNorm
        out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out.to(device)
    for name, child in module.named_children():
        new = convert_sync_batchnorm(child, device)
        if new is not child:
            setattr(module, name, new)
    return module
