import pytest
import torch

from gantk.data import TensorDataset
from gantk.data.loader import BatchStream
from gantk.errors import DataError
from tests.helpers import write_image_folder


def _ds(n=10):
    return TensorDataset({"image": torch.arange(n).view(n, 1, 1, 1).to(torch.uint8)}, channels=1)


def _ids(batch):
    return batch["image"].flatten().tolist()


def test_epochs_cover_the_data_and_reshuffle():
    s = BatchStream(_ds(10), batch_size=3, seed=0)  # 3 batches per epoch, 1 item dropped
    e0 = [i for _ in range(3) for i in _ids(next(s))]
    e1 = [i for _ in range(3) for i in _ids(next(s))]
    assert len(set(e0)) == 9 and e0 != e1 and s.epoch == 1


@pytest.mark.parametrize("lazy", [False, True])
def test_resume_mid_epoch_gives_the_same_batches(tmp_path, lazy):
    if lazy:
        from gantk.data.datasets import image_folder

        ds = image_folder(write_image_folder(tmp_path / "i", n=10, size=4), 4, 1)
    else:
        ds = _ds(10)
    a = BatchStream(ds, 3, seed=5)
    straight = [next(a)["image"] for _ in range(7)]
    b = BatchStream(ds, 3, seed=5)
    for _ in range(4):
        next(b)
    state = b.state_dict()
    c = BatchStream(ds, 3, seed=5)
    c.load_state_dict(state)
    resumed = [next(c)["image"] for _ in range(3)]
    for x, y in zip(straight[4:], resumed, strict=True):
        assert torch.equal(x, y)


def test_dataset_smaller_than_batch():
    with pytest.raises(DataError, match="fewer than train.batch_size=16"):
        BatchStream(_ds(10), 16, 0)


@pytest.mark.parametrize("lazy", [False, True])
def test_ranks_split_every_global_batch_and_reshuffle_each_epoch(tmp_path, lazy):
    """Like DistributedSampler: disjoint shards, new order per epoch; and the union is one process's batch."""
    if lazy:  # through the DataLoader and its sampler
        from gantk.data.datasets import image_folder

        ds = image_folder(write_image_folder(tmp_path / "i", n=13, size=4, mode="L"), 4, 1)
    else:
        ds = TensorDataset({"image": torch.arange(13).view(13, 1, 1, 1).to(torch.uint8)}, channels=1)
    one = BatchStream(ds, 6, seed=3)
    ranks = [BatchStream(ds, 6, seed=3, rank=r, world_size=3) for r in range(3)]
    for _ in range(5):  # 2 global batches an epoch: two and a half epochs
        whole = next(one)["image"]
        parts = [next(s)["image"] for s in ranks]
        assert all(len(p) == 2 for p in parts)
        assert torch.equal(torch.cat(parts), whole)  # rank r holds the r-th slice of the global batch
    assert [s.state_dict() for s in ranks] == [one.state_dict()] * 3  # the position is global


def test_global_batch_must_split_evenly_over_the_ranks():
    with pytest.raises(DataError, match="train.batch_size=8 is the global batch .* over the 3 processes"):
        BatchStream(_ds(10), 8, 0, rank=0, world_size=3)


class _FailsOn:
    """Items 0..n-1 as one-pixel images; item ``bad`` raises DataError, as a deleted file does."""

    def __init__(self, n: int, bad: set[int]) -> None:
        self.n, self.bad = n, bad

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if i in self.bad:
            raise DataError(f"image file item{i}.png does not exist.")
        return {"image": torch.tensor([[[i]]], dtype=torch.uint8)}


@pytest.mark.parametrize("workers", [0, 1])
def test_a_failure_in_a_worker_is_gantks_message_without_the_workers_traceback(workers):
    s = BatchStream(_FailsOn(8, {int(torch.randperm(8, generator=torch.Generator().manual_seed(0))[0])}), 4, 0, workers)
    with pytest.raises(DataError) as err:
        next(s)
    assert str(err.value).startswith("image file item") and "Traceback" not in str(err.value)


def test_on_error_skip_replaces_a_failing_item_by_the_next_that_reads_the_same_way_every_time():
    from gantk.data.datasets import SubstituteFailures

    data = SubstituteFailures(_FailsOn(6, {2, 3}))
    assert [int(data[i]["image"]) for i in range(6)] == [0, 1, 4, 4, 4, 5]
    assert data.substituted == 2
    with pytest.raises(DataError, match="item0.png does not exist.*tried the next 15 items"):
        SubstituteFailures(_FailsOn(20, set(range(20))))[0]
