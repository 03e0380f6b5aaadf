"""Optimizers and learning-rate schedules built from config.

Everything here keeps a training step free of host reads, so it can run ahead of the GPU and be
captured as a CUDA graph (``gantk.engine.graph``):

* Adam, AdamW and SGD use PyTorch's fused kernels, on the GPU and the CPU alike: one launch for all
  parameters, and a ``found_inf`` input that skips the whole update on the device.
* Learning rates are 0-dim tensors on the training device. The schedule writes them in place between
  steps (``LRScheduler`` fills a tensor rate), so a captured step reads the current rate.
* :func:`masked_step` steps an optimizer only where a device flag says the loss was finite; no branch
  on the host.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from gantk.config import OptimConfig, ScheduleConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig, device: torch.device, ratio: float = 1.0
) -> torch.optim.Optimizer:
    """One optimizer with its learning rate as a tensor on ``device``; fused where PyTorch has a kernel.

    ``ratio`` < 1 is the lazy-regularisation compensation (:func:`gantk.engine.setup.lazy_ratios`): the
    rate is multiplied by it and Adam's betas raised to it, so that the optimizer's extra steps on the
    lazy updates keep the effective step size and averaging horizon of the config's values.
    """
    params = [p for p in params if p.requires_grad]
    lr = torch.tensor(float(cfg.lr) * ratio, device=device)
    betas = (cfg.betas[0] ** ratio, cfg.betas[1] ** ratio)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, fused=True)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, fused=True)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)
    if cfg.name == "rmsprop":  # no fused kernel: capturable keeps its step count on the device
        return torch.optim.RMSprop(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, capturable=device.type == "cuda"
        )
    raise ValueError(cfg.name)  # unreachable: the config is validated


def rates_on_device(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Make every group's ``lr`` (and ``initial_lr``) a 0-dim tensor on ``device``, as built.

    ``load_state_dict`` puts back whatever the checkpoint held (a float in older checkpoints, a CPU
    tensor after unpacking); a captured step needs the rate where its kernels read it.
    """
    for group in opt.param_groups:
        for key in ("lr", "initial_lr"):
            if key in group:
                value = group[key]
                value = value.detach().float().cpu().item() if isinstance(value, torch.Tensor) else float(value)
                group[key] = torch.tensor(value, device=device)


def supports_found_inf(opt: torch.optim.Optimizer) -> bool:
    """Whether ``opt.step`` honours a ``found_inf`` tensor (PyTorch's fused Adam, AdamW and SGD do)."""
    return bool(opt.defaults.get("fused")) and isinstance(opt, (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD))


def masked_step(opt: torch.optim.Optimizer, finite: torch.Tensor | None) -> None:
    """``opt.step()`` where the 0-dim bool ``finite`` is true, and no change at all where it is false.

    Fused optimizers take the flag as ``found_inf`` and skip inside their kernel (step counts included).
    Others step, and every parameter and state tensor is put back where the flag is false; that costs a
    copy of each, which is why the common optimizers are fused.
    """
    if finite is None:
        opt.step()
        return
    if supports_found_inf(opt):
        opt.found_inf = (~finite).to(torch.float32)  # read by Adam/AdamW/SGD.step (as GradScaler does)
        try:
            opt.step()
        finally:
            del opt.found_inf
        return
    tensors = [p for g in opt.param_groups for p in g["params"]]
    tensors += [t for state in opt.state.values() for t in state.values() if isinstance(t, torch.Tensor)]
    before = [t.detach().clone() for t in tensors]
    opt.step()
    # state created by this first step (no "before"): left as it is; a skipped first step is rare
    with torch.no_grad():
        for t, old in zip(tensors, before, strict=True):
            t.copy_(torch.where(finite, t, old))


def lr_factor(cfg: ScheduleConfig, step: int, max_steps: int) -> float:
    """The multiplier of the base learning rate after ``step`` generator steps."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.name == "constant":
        return warm
    if cfg.name == "linear_decay":  # pix2pix: constant, then linearly to zero at max_steps
        if step < cfg.decay_start:
            return warm
        span = max(1, max_steps - cfg.decay_start)
        return warm * max(0.0, 1.0 - (step - cfg.decay_start) / span)
    if cfg.name == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(step, max_steps) / max(1, max_steps)))
    if cfg.name == "step":
        return warm * (cfg.gamma ** (step // cfg.step_size) if cfg.step_size else 1.0)
    raise ValueError(cfg.name)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, max_steps))
