"""Checks that run before any work: what a config asks for must be possible before a run folder exists.

A value can be in its field's range (``gantk.config.Range``) and still make no sense for this plugin: an
optimizer for a network the plugin does not train, a best metric its evaluation never reports, or
widths whose networks would not fit in the machine's memory. Each of those used to surface late (a
silently ignored setting, a crash at the first evaluation, an allocation that swaps the machine to a
halt); here they are refused up front, in one paragraph naming the key.

The size check builds the networks on PyTorch's ``meta`` device: shapes only, no memory, so even an
absurd ``model.ngf=10**9`` is measured in microseconds instead of being allocated.
"""

from __future__ import annotations

import difflib
import os

import torch
from torch import nn

from gantk.errors import ConfigError, GantkError
from gantk.plugin import GanPlugin

#: float32 copies of every trained parameter while training: weights, gradients, Adam's two moments
TRAINING_COPIES = 4


def check_config(plugin: GanPlugin) -> None:
    """Before the data is read: the plugin's own rules on combinations of values (an image size its
    architecture cannot take is refused now, not after decoding the dataset), and a best metric the plugin
    reports (not at the first evaluation)."""
    cfg = plugin.cfg
    plugin.check_config()
    best = cfg.train.best_metric
    reported = plugin.metric_names()
    if best and reported and best not in reported:
        raise ConfigError(
            f"config key 'train.best_metric' is '{best}', but plugin '{cfg.plugin}' reports only "
            f"{', '.join(reported)} under this config; choose one of those (or leave it empty for "
            f"'{plugin.best_metric or 'none'}')."
        )


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
    return {name: _module_bytes(net) for name, net in nets.items()}


def _module_bytes(module: nn.Module) -> int:
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


def _check_optimizer_names(plugin: GanPlugin, networks: list[str]) -> None:
    """``optim.<name>`` for a network the plugin does not build would be silently ignored: refuse it."""
    unknown = sorted(set(plugin.cfg.optim) - set(networks))
    if unknown:
        name = unknown[0]
        guess = difflib.get_close_matches(name, networks, n=1, cutoff=0.0)
        hint = f" Did you mean 'optim.{guess[0]}'?" if guess else ""
        raise ConfigError(
            f"config key 'optim.{name}' sets an optimizer for network '{name}', but plugin '{plugin.cfg.plugin}' "
            f"builds only {', '.join(networks)}; the setting would be ignored.{hint}"
        )


def check_fits(plugin: GanPlugin, device: torch.device, trained: set[str] | None = None, only: str = "") -> None:
    """Refuse networks whose weights (and, for ``trained`` ones, gradients and Adam's moments) cannot fit
    in ``device``'s memory, and optimizer settings for networks the plugin does not build. ``only``
    measures one network (the generator, to sample)."""
    sizes = network_bytes(plugin)
    if sizes is None:
        return
    _check_optimizer_names(plugin, sorted(sizes))
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
