"""Which device a command or a run uses: the one choice every command and the engine share."""

from __future__ import annotations

import torch

from gantk.errors import GantkError

#: what ``--device`` and ``train.device`` accept
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GantkError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu or auto.")
    return torch.device(name)
