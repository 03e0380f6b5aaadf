"""Reading weights that gantk did not write (ImageNet VGG19, Inception v3): never unpickling code.

Users bring these files themselves (nothing is downloaded): a ``.safetensors`` file, or torchvision's
``.pth`` read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gantk.errors import CheckpointError, ConfigError


def read_state_dict(path: str | Path, what: str, key: str) -> dict[str, Tensor]:
    """The state dict in ``path``; ``what`` (``"VGG19 weights"``) and the config ``key`` that named the file
    go into the error, so a missing or unsafe file is refused by name."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist ({key}).")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise CheckpointError(f"cannot read {what} from {path} ({key}): {exc}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle with code in it, or not a state dict at all
        raise CheckpointError(f"cannot load {what} from {path} safely ({key}): {exc}") from None
