"""Set-up before the first step: the device, seeds, checks of what the plugin built, and the wrapped
networks the loss functions call (DDP, ``torch.compile``). Each is a function of what it is given."""

from __future__ import annotations

import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gantk.config import Config, TrainConfig
from gantk.data.datasets import TensorDataset
from gantk.device import select_device
from gantk.engine.distributed import World
from gantk.errors import GantkError, PluginError
from gantk.plugin import Phase

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: torch.compile mode per ``train.compile``: the engine captures whole steps as CUDA graphs itself, so
#: torch.compile's own graphs (reduce-overhead, max-autotune) are left off and ask for the engine's
COMPILE_MODES = {"default": "default", "reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}
#: in-memory datasets up to this size live on the GPU, so a batch is one index on the device
DEVICE_DATA_BYTES = 2 << 30


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random streams; rank 0 keeps ``seed`` (a single process is rank 0)."""
    return seed + 1_000_003 * rank


def rank_device(name: str, world: World) -> torch.device:
    """The device of this process: under torchrun on CUDA, the local rank's GPU."""
    device = select_device(name)
    if world.distributed and device.type == "cuda":  # one GPU per process: the local rank's
        if world.local_rank >= torch.cuda.device_count():
            raise GantkError(
                f"local rank {world.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc / --nproc_per_node)."
            )
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def check_phases(cfg: Config, phases: list[Phase], nets: dict[str, nn.Module]) -> dict[str, tuple[str, ...]]:
    """Every phase trains networks the plugin built, each with an optimizer in the config; returns the
    optimizers, ``{name: networks it steps}``.

    One optimizer always steps the same networks, and a network belongs to one optimizer: two optimizers
    stepping one network would each keep their own moments of it, which no GAN means to do.
    """
    if not phases:
        raise PluginError(f"plugin '{cfg.plugin}': phases() returned no phase.")
    groups: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for phase in phases:
        if not phase.updates:
            raise PluginError(f"plugin '{cfg.plugin}': phase '{phase.name}' has no updates.")
        for upd in phase.updates:
            networks, opt = upd.networks, upd.optimizer_name
            if not networks or len(set(networks)) != len(networks):
                raise PluginError(f"plugin '{cfg.plugin}': an update of phase '{phase.name}' names {networks}.")
            for name in (*networks, *upd.freeze):
                if name not in nets:
                    raise PluginError(
                        f"plugin '{cfg.plugin}': phase '{phase.name}' names network '{name}', but "
                        f"build_networks() made only {sorted(nets)}."
                    )
            if groups.setdefault(opt, networks) != networks:
                raise PluginError(
                    f"plugin '{cfg.plugin}': optimizer '{opt}' steps {groups[opt]} in one update and {networks} in "
                    f"another (phase '{phase.name}'); give the second its own Update(..., optimizer=NAME)."
                )
            for name in networks:
                if owner.setdefault(name, opt) != opt:
                    raise PluginError(
                        f"plugin '{cfg.plugin}': network '{name}' is stepped by optimizers '{owner[name]}' and "
                        f"'{opt}'; a network belongs to one optimizer."
                    )
            if opt not in cfg.optim:
                what = (
                    f"network '{opt}' is"
                    if networks == (opt,)
                    else f"networks {', '.join(networks)} (optimizer '{opt}') are"
                )
                raise GantkError(
                    f"{what} trained in phase '{phase.name}' but {'has' if networks == (opt,) else 'have'} no "
                    f"optimizer: add optim.{opt} to the config (for example --set optim.{opt}.lr=2e-4)."
                )
            for field in ("repeat", "every"):
                value = getattr(upd, field)
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise PluginError(
                        f"plugin '{cfg.plugin}': update of '{opt}' has {field}={value!r}; it takes a whole number >= 1."
                    )
    return groups


def lazy_ratios(phases: list[Phase]) -> dict[str, float]:
    """``{optimizer: r}`` for each optimizer that steps a lazy update (``Update(..., every=k)``).

    Karras et al. 2020 (StyleGAN2, section 3.1; ``mb_ratio`` in NVlabs' code): an optimizer that also
    steps on a regulariser every k steps makes 1 + 1/k steps per training step, so its learning rate
    is scaled by ``r = 1 / (1 + sum 1/k)`` and Adam's betas are raised to ``r``. Each lazy update counts
    once, however many phases list it.
    """
    lazy: dict[str, dict[str, int]] = {}
    for phase in phases:
        for upd in phase.updates:
            if upd.every > 1:
                lazy.setdefault(upd.optimizer_name, {})[upd.label] = upd.every
    return {name: 1.0 / (1.0 + sum(1.0 / k for k in ks.values())) for name, ks in lazy.items()}


def data_on_device(dataset, device: torch.device):
    """An in-memory dataset that fits moves to the GPU: each batch is then one index there."""
    if device.type != "cuda" or not isinstance(dataset, TensorDataset):
        return dataset
    size = sum(t.numel() * t.element_size() for t in dataset.tensors.values())
    if size > min(DEVICE_DATA_BYTES, torch.cuda.get_device_properties(device).total_memory // 8):
        return dataset
    return dataset.to(device)


def wrap_networks(
    nets: dict[str, nn.Module], trained: set[str], world: World, device: torch.device, tc: TrainConfig
) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """What the loss functions call: ``(step_nets, frozen_step_nets)``, DDP around each trained network,
    compiled when asked.

    A network frozen in an update (D during the G update) is called without its DDP wrapper: it
    computes no weight gradients there, so there is nothing to synchronise.
    """
    if tc.compile != "off" and tc.channels_last and device.type == "cuda" and world.is_main:
        warnings.warn(  # measured on an H100 with PyTorch 2.11; see benchmarks/README.md
            "train.compile with train.channels_last can fail in inductor's convolution backward on CUDA "
            "(a stride assertion); if it does, drop one of them. channels_last with train.cuda_graph "
            "(compile off) is the fastest measured setting.",
            stacklevel=3,
        )

    def compiled(module: nn.Module) -> nn.Module:
        return module if tc.compile == "off" else torch.compile(module, mode=COMPILE_MODES[tc.compile])

    step_nets: dict[str, nn.Module] = {}
    frozen_step_nets: dict[str, nn.Module] = {}
    for name, net in nets.items():
        if world.distributed and name in trained:
            ids = [device.index] if device.type == "cuda" else None
            step_nets[name] = compiled(DistributedDataParallel(net, device_ids=ids))
            frozen_step_nets[name] = compiled(net)
        else:
            step_nets[name] = frozen_step_nets[name] = compiled(net)
    return step_nets, frozen_step_nets


def place_aux(
    aux: dict[str, nn.Module], device: torch.device, memory_format: torch.memory_format, tc: TrainConfig
) -> dict[str, nn.Module]:
    """The plugin's auxiliary modules (``GanPlugin.build_aux``) on the training device: frozen, in eval
    mode, compiled under ``train.compile``. They are never trained, wrapped in DDP or saved."""
    placed = {}
    for name, module in aux.items():
        if not isinstance(module, nn.Module):
            raise PluginError(f"build_aux() returned {type(module).__name__} for '{name}', not an nn.Module.")
        module = module.to(device, memory_format=memory_format).eval().requires_grad_(False)
        placed[name] = module if tc.compile == "off" else torch.compile(module, mode=COMPILE_MODES[tc.compile])
    return placed


def checkpoint_bytes(nets: dict[str, nn.Module], trained: set[str], ema_modules: list[nn.Module]) -> int:
    """About how many bytes one checkpoint takes: every network, the EMA copies, Adam's two moments."""

    def size(tensors) -> int:
        return sum(t.numel() * t.element_size() for t in tensors)

    total = sum(size(n.state_dict().values()) for n in nets.values())
    total += sum(2 * size(nets[name].parameters()) for name in trained)
    total += sum(size(m.state_dict().values()) for m in ema_modules)
    return total


def check_disk_space(run: Path, one_checkpoint: int) -> None:
    """Refuse to start a run whose checkpoints cannot be written (a new one is written beside the old)."""
    need = 2 * one_checkpoint + (64 << 20)  # + slack for samples, logs, JSON
    free = shutil.disk_usage(run).free
    if free < need:
        raise GantkError(
            f"not enough free disk space for run folder {run}: a checkpoint takes about "
            f"{one_checkpoint / 1e6:.0f} MB and a new one is written beside the last before it "
            f"replaces it, so about {need / 1e6:.0f} MB must be free; {free / 1e6:.0f} MB are. Free some "
            "space or choose another --out."
        )
