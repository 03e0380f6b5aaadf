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
