"""Optimizers and learning-rate schedules built from config."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from gantk.config import OptimConfig, ScheduleConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig, device: torch.device
) -> torch.optim.Optimizer:
    """One optimizer; on CUDA, Adam/AdamW use the fused kernels (one launch for all parameters)."""
    params = [p for p in params if p.requires_grad]
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **fused)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **fused)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(cfg.name)  # unreachable: the config is validated


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
