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
