"""Reading weights that gantk did not write (ImageNet VGG19, Inception v3): never unpickling code.

Users bring these files themselves (nothing is downloaded): a ``.safetensors`` file, or torchvision's
``.pth`` read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain data.
"""

from __future__ import annotations

import stat
from pathlib import Path

import torch
from torch import Tensor

from gantk.errors import CheckpointError, ConfigError


def check_weights_file(path: str | Path, what: str, key: str) -> Path:
    """``path`` as a regular file, or one error naming it and the config ``key``: a device (``/dev/zero``)
    or a FIFO would be read, or hashed, until killed."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise ConfigError(f"{what} file {path} does not exist ({key}).") from None
    if not stat.S_ISREG(mode):
        kind = "folder" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "device or special file"
        raise ConfigError(f"{what}: {path} is a {kind}, not a regular file ({key}); name the weights file itself.")
    return path


def read_state_dict(path: str | Path, what: str, key: str) -> dict[str, Tensor]:
    """The state dict in ``path``; ``what`` (``"VGG19 weights"``) and the config ``key`` that named the file
    go into the error, so a missing, unsafe or damaged file is refused by name: it must hold a mapping
    of names to tensors, every floating-point value finite (NaN weights crashed inside MKL)."""
    path = check_weights_file(path, what, key)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} file {path} is empty (0 bytes; {key}): a download or copy that did not finish?")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise CheckpointError(f"cannot read {what} from {path} ({key}): {exc}") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle with code in it, or not a state dict at all
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"cannot load {what} from {path} safely ({key}): {reason}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        held = type(state).__name__ if not isinstance(state, dict) else "a dict with other values than tensors"
        raise CheckpointError(f"{path} holds {held}, not a state dict of named tensors ({what}, {key}).")
    bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise CheckpointError(f"{path} is damaged: tensor {bad!r} holds NaN or infinite values ({what}, {key}).")
    return state
