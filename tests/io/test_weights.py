"""Third-party weights: safetensors or a weights-only torch file; a pickle with code is refused by name."""

import os

import pytest
import torch
from safetensors.torch import save_file

from gantk.errors import CheckpointError, ConfigError
from gantk.io.weights import read_state_dict


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_both_formats_are_read_and_code_is_refused(tmp_path):
    state = {"w": torch.arange(3.0)}
    save_file(state, str(tmp_path / "a.safetensors"))
    torch.save(state, tmp_path / "a.pth")
    for name in ("a.safetensors", "a.pth"):
        assert torch.equal(read_state_dict(tmp_path / name, "test weights", "loss.w")["w"], state["w"])
    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"cannot load test weights from .*evil.pth safely \(loss.w\)"):
        read_state_dict(tmp_path / "evil.pth", "test weights", "loss.w")
    with pytest.raises(ConfigError, match=r"test weights file .*missing.pth does not exist \(loss.w\)"):
        read_state_dict(tmp_path / "missing.pth", "test weights", "loss.w")
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read test weights"):
        read_state_dict(tmp_path / "bad.safetensors", "test weights", "loss.w")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: torch.save(torch.zeros(3), p), r"holds Tensor, not a state dict"),
        (lambda p: torch.save("weights", p), r"holds str, not a state dict"),
        (lambda p: torch.save([torch.zeros(3)], p), r"holds list, not a state dict"),
        (lambda p: torch.save({"w": torch.tensor([1.0, float("nan")])}, p), r"damaged: tensor 'w' holds NaN"),
        (lambda p: torch.save({"w": 3}, p), r"a dict with other values than tensors"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes"),
    ],
    ids=["tensor", "string", "list", "nan", "not-tensors", "empty"],
)
def test_a_file_that_is_not_a_finite_state_dict_is_refused_by_name(tmp_path, make, message):
    """These gave tracebacks, and NaN FID weights an MKL crash (exit 139) (issue 30)."""
    path = tmp_path / "w.pth"
    make(path)
    with pytest.raises(CheckpointError, match=rf"{path}.*{message}|{message}.*"):
        read_state_dict(path, "FID Inception weights", "eval.fid_weights")


def test_a_device_a_fifo_or_a_folder_is_refused_without_reading_it(tmp_path):
    """/dev/zero and a FIFO were read (hashed) until killed (issue 30)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "device or special file"), (fifo, "FIFO"), (tmp_path, "folder")):
        with pytest.raises(ConfigError, match=rf"{path} is a {kind}, not a regular file \(eval.fid_weights\)"):
            read_state_dict(path, "FID Inception weights", "eval.fid_weights")
