"""An endless, resumable stream of training batches.

Each epoch's order is a permutation drawn from ``(seed, epoch)`` alone, and the stream's position is
``(epoch, batches taken this epoch)``. A checkpoint stores that position, and a resumed run starts
the same permutation at the same batch, so ``--resume`` sees exactly the batches an uninterrupted
run would have seen. In-memory datasets are sliced a whole batch at a time; others go through a
``DataLoader`` whose sampler yields the rest of the epoch's permutation.
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


class _RestOfEpoch(Sampler[int]):
    """Yields the current epoch's permutation from the stream's position on."""

    def __init__(self, stream: BatchStream) -> None:
        self.stream = stream

    def __iter__(self) -> Iterator[int]:
        s = self.stream
        perm = epoch_permutation(len(s.dataset), s.seed, s.epoch)
        return iter(perm[s.batch * s.batch_size : s.batches_per_epoch * s.batch_size].tolist())

    def __len__(self) -> int:
        s = self.stream
        return (s.batches_per_epoch - s.batch) * s.batch_size


class BatchStream:
    """``next(stream)`` gives the next batch (a dict of tensors), epoch after epoch, without end."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0, pin_memory: bool = False
    ) -> None:
        n = len(dataset)  # type: ignore[arg-type]
        if n < batch_size:
            raise DataError(
                f"the dataset has {n} items, fewer than train.batch_size={batch_size}; "
                "lower train.batch_size or add data."
            )
        self.dataset = dataset
        self.batch_size = batch_size
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
                batch_size=batch_size,
                sampler=_RestOfEpoch(self),
                num_workers=num_workers,
                pin_memory=pin_memory,
                drop_last=True,
                persistent_workers=num_workers > 0,
            )

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
            self._iter, self._perm = None, None
        if self._loader is None:
            if self._perm is None:
                self._perm = epoch_permutation(len(self.dataset), self.seed, self.epoch)
            idx = self._perm[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
            out = self.dataset.batch(idx)  # type: ignore[attr-defined]
        else:
            if self._iter is None:
                self._iter = iter(self._loader)
            out = next(self._iter)
        self.batch += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iter, self._perm = None, None
