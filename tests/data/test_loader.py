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
