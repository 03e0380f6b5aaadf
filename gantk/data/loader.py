"""An endless, resumable stream of training batches.

Each epoch's order is a permutation drawn from ``(seed, epoch)`` alone, and the stream's position is
``(epoch, batches taken this epoch)``. A checkpoint stores that position, and a resumed run starts
the same permutation at the same batch, so ``--resume`` sees exactly the batches an uninterrupted
run would have seen. In-memory datasets are sliced a whole batch at a time (one with a ``set_epoch``
method, such as :class:`gantk.data.datasets.UnpairedDataset`, is told each epoch as it starts); others
go through a ``DataLoader`` whose sampler yields the rest of the epoch's permutation.

Under data-parallel training the stream is this rank's share of the same stream: every rank draws the
same permutation, and rank ``r`` of ``W`` takes the ``r``-th contiguous slice of each global batch.
Like ``DistributedSampler``, the ranks' shards of an epoch are disjoint and reshuffled every epoch;
unlike it, the global batches are exactly those of a single process, whatever the number of ranks, and
the position (global batches taken) means the same on any number of ranks.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gantk.data.datasets import TensorDataset
from gantk.errors import DataError


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def draw_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of one draw: the item at ``position`` of epoch ``epoch``'s order (``data.transforms``)."""
    return ((seed * 1_000_003 + epoch) * 4_294_967_291 + position) % 2**32


class _RestOfEpoch(Sampler[int]):
    """Yields the current epoch's permutation from the stream's position on; to a dataset that
    ``draws_with_seed`` (a CPU augmentation pipeline), ``(index, seed)`` with the seed of that draw."""

    def __init__(self, stream: BatchStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[int]:
        s = self.stream
        perm = epoch_permutation(len(s.dataset), s.seed, s.epoch)
        seeded = getattr(s.dataset, "draws_with_seed", False)
        for b in range(s.batch, s.batches_per_epoch):
            where = s.shard(b)
            for position, index in zip(range(where.start, where.stop), perm[where].tolist(), strict=True):
                yield (index, draw_seed(s.seed, s.epoch, position)) if seeded else index

    def __len__(self) -> int:
        s = self.stream
        return (s.batches_per_epoch - s.batch) * s.local_batch_size


class BatchStream:
    """``next(stream)`` gives the next batch (a dict of tensors), epoch after epoch, without end.

    ``batch_size`` is the global batch; with ``world_size`` > 1 each batch is rank ``rank``'s slice of it.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size:
            raise _everywhere(
                f"the dataset has {n} items, fewer than train.batch_size={batch_size}; "
                "lower train.batch_size or add data."
            )
        if batch_size % world_size:
            raise _everywhere(
                f"train.batch_size={batch_size} is the global batch and must split evenly over the "
                f"{world_size} processes; use a multiple of {world_size}."
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.local_batch_size = batch_size // world_size
        self.rank = rank
        self.seed = seed
        self.batches_per_epoch = n // batch_size  # the last partial batch is dropped (batch norm needs full ones)
        self.epoch = 0
        self.batch = 0
        self._iter: Iterator | None = None
        self._perm: torch.Tensor | None = None
        self._loader = None
        if not isinstance(dataset, TensorDataset):
            self._loader = DataLoader(
                dataset,
                batch_size=self.local_batch_size,
                sampler=_RestOfEpoch(self),
                num_workers=num_workers,
                pin_memory=pin_memory,
                drop_last=True,
                persistent_workers=num_workers > 0,
            )

    def shard(self, batch: int) -> slice:
        """Positions in the epoch's permutation of this rank's part of global batch ``batch``."""
        start = batch * self.batch_size + self.rank * self.local_batch_size
        return slice(start, start + self.local_batch_size)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
            self._iter, self._perm = None, None
        if self._loader is None:
            if self._perm is None:
                self._perm = epoch_permutation(len(self.dataset), self.seed, self.epoch)
                if hasattr(self.dataset, "set_epoch"):  # a dataset whose items change per epoch (unpaired)
                    self.dataset.set_epoch(self.epoch)
            idx = self._perm[self.shard(self.batch)]
            out = self.dataset.batch(idx)  # type: ignore[attr-defined]
        else:
            if self._iter is None:
                self._iter = iter(self._loader)
            try:
                out = next(self._iter)
            except DataError as exc:  # from a worker, its message is "Caught DataError in ..." + a traceback
                raise DataError(_worker_message(exc)) from None
        self.batch += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iter, self._perm = None, None


def _worker_message(exc: DataError) -> str:
    """gantk's own message inside a DataError that a DataLoader worker passed on."""
    text = str(exc)
    marker = "DataError: "
    return (
        text[text.rindex(marker) + len(marker) :].strip() if "Original Traceback" in text and marker in text else text
    )


def _everywhere(message: str) -> DataError:
    """A DataError every rank meets alike (sizes of the whole dataset and batch): rank 0 says it for all."""
    error = DataError(message)
    error.same_on_every_rank = True
    return error
