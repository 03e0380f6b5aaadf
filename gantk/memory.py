"""How much memory a plugin's networks take, measured before any of them is allocated.

The networks are built on PyTorch's ``meta`` device: shapes only, no memory, so even an absurd
``model.ngf=10**9`` is measured in microseconds instead of swapping the machine to a halt. Training
(:mod:`gantk.engine.preflight`) and loading a generator (:mod:`gantk.io.generators`) both refuse a
config whose networks cannot fit.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from gantk.errors import ConfigError, GantkError
from gantk.plugin import GanPlugin

#: float32 copies of every trained parameter while training: weights, gradients, Adam's two moments
TRAINING_COPIES = 4


def network_bytes(plugin: GanPlugin) -> dict[str, int] | None:
    """Bytes of each network's parameters and buffers, measured on the meta device; None if the plugin's
    ``build_networks`` cannot run there (then the networks are simply built for real)."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):  # draws nothing, moves no stream
            nets = plugin.build_networks()
    except GantkError:
        raise  # the plugin's own refusal of the config: clear already
    except Exception:  # noqa: BLE001 - a plugin that needs real tensors to build; measured when built
        return None
    return {name: module_bytes(net) for name, net in nets.items()}


def module_bytes(module: nn.Module) -> int:
    """Bytes of ``module``'s parameters and buffers (real or on the meta device)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def device_memory(device: torch.device) -> int:
    """Total memory of ``device`` in bytes: the GPU's, or the machine's RAM for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: no check
        return 1 << 62


def check_fits(
    plugin: GanPlugin,
    device: torch.device,
    trained: set[str] | None = None,
    only: str = "",
    sizes: dict[str, int] | None = None,
) -> None:
    """Refuse networks whose weights (and, for ``trained`` ones, gradients and Adam's moments) cannot fit
    in ``device``'s memory. ``only`` measures one network (the generator, to sample); ``sizes`` are the
    :func:`network_bytes` already measured."""
    sizes = sizes if sizes is not None else network_bytes(plugin)
    if sizes is None:
        return
    if only:
        sizes = {only: sizes[only]} if only in sizes else sizes
    trained = trained or set()
    need = sum(size * (TRAINING_COPIES if name in trained else 1) for name, size in sizes.items())
    have = device_memory(device)
    if need > have:
        each = ", ".join(f"{name} {size / 1e9:.3g} GB" for name, size in sizes.items())
        what = "weights, gradients and optimizer state" if trained else "weights"
        raise ConfigError(
            f"the networks that plugin '{plugin.cfg.plugin}' builds from this config are too large: {each} of "
            f"parameters; with their {what} that is about {need / 1e9:.3g} GB, more than the "
            f"{have / 1e9:.3g} GB of this {device.type} device. Check the widths and depths under 'model' "
            "and data.image_size."
        )
