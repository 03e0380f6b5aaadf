"""A run's parts, built in one function: the networks on the device, their EMA copies, optimizers,
schedules, scalers, the wrapped networks the losses call, the augmenter, the batch stream, and from
them the two views the engine works through: the :class:`~gantk.engine.snapshot.RunState` a checkpoint
saves and the :class:`~gantk.engine.step.StepParts` a training step runs on.

Each part is made once, here, and lives in one of those two places; nothing else keeps a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gantk.config import Config
from gantk.console import console
from gantk.data.loader import BatchStream
from gantk.engine import distributed, setup, snapshot
from gantk.engine.augment import AugmentedNetwork, Augmenter
from gantk.engine.ema import EmaGenerator
from gantk.engine.optim import build_optimizer, build_scheduler
from gantk.engine.step import StepParts
from gantk.errors import PluginError
from gantk.plugin import GanPlugin, Phase


@dataclass
class RunParts:
    """What :func:`assemble` built: the state a checkpoint saves, what a step runs on, which networks each
    optimizer steps, and the training data on its device."""

    state: snapshot.RunState
    step: StepParts
    optimizer_groups: dict[str, list[str]]  # optimizer name -> the networks it steps
    dataset: Any

    @property
    def nets(self) -> dict[str, nn.Module]:
        return self.state.nets


def assemble(
    plugin: GanPlugin,
    phases: list[Phase],
    aux: dict[str, nn.Module],
    dataset: Any,
    device: torch.device,
    world: distributed.World,
) -> RunParts:
    """Build every part of a run of ``plugin`` (its config resolved and frozen) on ``device``; ``aux`` are
    the plugin's frozen modules (``build_aux``), ``dataset`` the training data (``resolve_run``)."""
    cfg: Config = plugin.cfg
    tc = cfg.train
    trained = set().union(*(p.trained for p in phases))
    nets = plugin.build_networks()
    missing = [name for name in plugin.sampled_networks() if name not in nets]
    if missing:
        raise PluginError(
            f"plugin '{cfg.plugin}': build_networks() returned {sorted(nets)}, without its generator(s) "
            f"{', '.join(map(repr, missing))}."
        )
    memory_format = torch.channels_last if tc.channels_last else torch.preserve_format
    nets = {k: v.to(device, memory_format=memory_format) for k, v in nets.items()}
    placed_aux = setup.place_aux(aux, device, memory_format, tc)
    groups = setup.check_phases(cfg, phases, nets)  # optimizer name -> networks
    emas = _emas(plugin, nets, tc, world)  # copied before batch norm is synchronised: rank 0 samples alone
    if world.distributed and tc.sync_batchnorm:
        nets = {k: distributed.convert_sync_batchnorm(v, device) for k, v in nets.items()}
    ratios = setup.lazy_ratios(phases)  # the paper's compensation for lazy updates' extra steps
    if ratios and world.is_main:
        console.print(
            "lazy updates: "
            + "; ".join(f"optimizer {k}: lr x{r:.4f}, betas ^{r:.4f}" for k, r in sorted(ratios.items())),
            highlight=False,
        )
    optimizers = {
        name: build_optimizer(
            [q for net in networks for q in nets[net].parameters()],
            cfg.optim[name],
            device,
            ratio=ratios.get(name, 1.0),
        )
        for name, networks in sorted(groups.items())
    }
    schedulers = {k: build_scheduler(o, cfg.schedule, tc.max_steps) for k, o in optimizers.items()}
    scalers = {k: torch.amp.GradScaler(device.type) for k in optimizers} if tc.precision == "fp16" else {}
    step_nets, frozen_step_nets = setup.wrap_networks(nets, trained, world, device, tc)
    noise = torch.Generator(device=device).manual_seed(tc.seed)  # the same on every rank
    augmenter = _augmenter(plugin, nets, step_nets, frozen_step_nets, noise, device, world)
    on_device = setup.data_on_device(dataset, device)
    stream = BatchStream(
        on_device,
        tc.batch_size,
        tc.seed,
        cfg.data.num_workers,
        pin_memory=device.type == "cuda",
        rank=world.rank,
        world_size=world.size,
    )
    cpu_noise = torch.Generator().manual_seed(setup.rank_seed(tc.seed, world.rank) + 1)
    state = snapshot.RunState(
        nets=nets,
        emas=emas,
        optimizers=optimizers,
        schedulers=schedulers,
        scalers=scalers,
        stream=stream,
        noise=noise,
        cpu_noise=cpu_noise,
        augment=augmenter,
    )
    step = StepParts(
        plugin=plugin,
        nets=nets,
        step_nets=step_nets,
        frozen_step_nets=frozen_step_nets,
        optimizers=optimizers,
        scalers=scalers,
        emas=emas,
        device=device,
        noise=noise,
        cpu_noise=cpu_noise,
        world=world,
        autocast_dtype=setup.DTYPES.get(tc.precision),
        channels_last=tc.channels_last,
        grad_clip=tc.grad_clip,
        nonfinite=tc.nonfinite,
        max_steps=tc.max_steps,
        augment=augmenter,
        aux=placed_aux,
    )
    return RunParts(state, step, groups, on_device)


def _emas(plugin: GanPlugin, nets: dict[str, nn.Module], tc, world: distributed.World) -> dict[str, EmaGenerator]:
    """``train.ema``: an average of each generator the plugin samples with (none when off)."""
    if not tc.ema.enabled:
        return {}
    return {
        name: EmaGenerator(
            nets[name],
            tc.ema.decay,
            tc.ema.start_step,
            half_life=tc.ema.half_life_kimg * 1000,
            rampup=tc.ema.rampup,
            batch=tc.batch_size,  # the global batch already: every rank's share
        )
        for name in plugin.sampled_networks()
    }


def _augmenter(
    plugin: GanPlugin,
    nets: dict[str, nn.Module],
    step_nets: dict[str, nn.Module],
    frozen_step_nets: dict[str, nn.Module],
    noise: torch.Generator,
    device: torch.device,
    world: distributed.World,
) -> Augmenter | None:
    """``train.augment``: the augmenter, with the plugin's ``augment_network`` wrapped (in place, in the
    networks the losses call) so that every image it sees, real and generated, in every update, is
    augmented."""
    cfg, name = plugin.cfg, plugin.augment_network
    if not cfg.train.augment.policy:
        return None
    if name not in nets:
        raise PluginError(
            f"plugin '{cfg.plugin}': augment_network is '{name}', but build_networks() made only {sorted(nets)}."
        )
    augmenter = Augmenter(cfg.train.augment, cfg.data.channels, cfg.train.batch_size, device, noise, world)
    step_nets[name] = AugmentedNetwork(step_nets[name], augmenter)
    frozen_step_nets[name] = AugmentedNetwork(frozen_step_nets[name], augmenter)
    return augmenter
