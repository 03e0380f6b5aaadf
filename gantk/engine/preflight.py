"""Checks that run before any work: what a config asks for must be possible before a run folder exists.

A value can be in its field's range (``gantk.config.Range``) and still make no sense for this plugin: an
optimizer for a network the plugin does not train, a best metric its evaluation never reports, or
widths whose networks would not fit in the machine's memory. Each of those used to surface late (a
silently ignored setting, a crash at the first evaluation, an allocation that swaps the machine to a
halt); here they are refused up front, in one paragraph naming the key.

The size check (:mod:`gantk.memory`) builds the networks on PyTorch's ``meta`` device: shapes only, no
memory, so even an absurd ``model.ngf=10**9`` is measured in microseconds instead of being allocated.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch

from gantk import memory
from gantk.config import EvalConfig, height_width
from gantk.data.transforms import load_pipeline
from gantk.engine.trackers import check_installed
from gantk.errors import ConfigError
from gantk.plugin import GanPlugin


def check_config(plugin: GanPlugin) -> None:
    """Before the data is read: the plugin's own rules on combinations of values (an image size its
    architecture cannot take is refused now, not after decoding the dataset), and a best metric the plugin
    reports (not at the first evaluation)."""
    cfg = plugin.cfg
    if isinstance(cfg.data.image_size, tuple) and not plugin.any_aspect:  # [h, w], even [32, 32]: a square
        h, w = height_width(cfg.data.image_size)  # plugin's networks read one number
        raise ConfigError(
            f"config key 'data.image_size' is [{h}, {w}], but plugin '{cfg.plugin}' builds square images only (its "
            "architecture is fixed to one side: a dense layer or a fixed stack of upsamplings), so it takes one "
            f"number (data.image_size={max(h, w)}). The fully convolutional plugins (pix2pix, cyclegan) take "
            "[height, width]."
        )
    plugin.check_config()
    if cfg.data.transforms:
        load_pipeline(cfg.data.transforms)  # a file that cannot be loaded is refused before the data is read
    if cfg.train.augment.policy and not plugin.augment_network:
        raise ConfigError(
            f"config key 'train.augment.policy' asks for {', '.join(cfg.train.augment.policy)}, but plugin "
            f"'{cfg.plugin}' opts out of augmentation (its augment_network is empty: its losses need D to see "
            "images as they are). Leave train.augment.policy empty for it."
        )
    check_installed(list(cfg.train.loggers))  # a tracker listed but not installed: before any work
    augment = cfg.train.augment
    if augment.adaptive and not augment.policy:
        raise ConfigError(
            "config key 'train.augment.adaptive' is true, but train.augment.policy is empty: ADA steers the "
            "probability of the policy's transforms, and with none there is nothing to steer. Set a policy "
            "(train.augment.policy=[color,translation,cutout]) or leave adaptive false."
        )
    evaluation = getattr(cfg, "eval", None)
    weights = evaluation.fid_weights if isinstance(evaluation, EvalConfig) else ""
    if weights and cfg.train.eval_every and not Path(weights).is_file():  # not after eval_every steps of training
        raise ConfigError(
            f"config key 'eval.fid_weights' names {weights}, which is not a file; point it at the FID Inception "
            "weights (weights-inception-2015-12-05-6726825d.pth, see docs/metrics.md) or leave it empty for kid_pixels."
        )
    if isinstance(evaluation, EvalConfig) and evaluation.inception_score and cfg.train.eval_every:
        from gantk.metrics.inception import check_inception_score  # refused now, not hours in at the first evaluation

        check_inception_score(evaluation.fid_weights, evaluation.fid_samples)
    best = cfg.train.best_metric
    reported = plugin.metric_names()
    if best and reported and best not in reported:
        raise ConfigError(
            f"config key 'train.best_metric' is '{best}', but plugin '{cfg.plugin}' reports only "
            f"{', '.join(reported)} under this config; choose one of those (or leave it empty for "
            f"'{plugin.best_metric() or 'none'}')."
        )


def _check_optimizer_names(plugin: GanPlugin, optimizers: set[str], networks: list[str]) -> None:
    """``optim.<name>`` for an optimizer the plugin's updates never step would be silently ignored: refuse it.

    The names are the updates' optimizers (a network's name, or a group's: CycleGAN's ``G`` steps
    ``G_AB`` and ``G_BA``); a network the plugin builds but trains in no phase may still be configured."""
    known = sorted(optimizers | set(networks))
    unknown = sorted(set(plugin.cfg.optim) - set(known))
    if unknown:
        name = unknown[0]
        guess = difflib.get_close_matches(name, known, n=1, cutoff=0.0)
        hint = f" Did you mean 'optim.{guess[0]}'?" if guess else ""
        raise ConfigError(
            f"config key 'optim.{name}' sets an optimizer for '{name}', but plugin '{plugin.cfg.plugin}' "
            f"builds only {', '.join(networks)} and its updates step {', '.join(sorted(optimizers))}; the setting "
            f"would be ignored.{hint}"
        )


def check_resources(
    plugin: GanPlugin,
    device: torch.device,
    trained: set[str],
    optimizers: set[str],
    aux: dict[str, torch.nn.Module] | None = None,
) -> None:
    """Optimizer settings only for optimizers the plugin's updates step, and networks (with their gradients
    and optimizer state for the ``trained`` ones) plus its auxiliary modules that fit in ``device``'s memory."""
    sizes = memory.network_bytes(plugin)
    if sizes is None:
        return
    _check_optimizer_names(plugin, optimizers, sorted(sizes))
    extra = {f"aux {name}": memory.module_bytes(module) for name, module in (aux or {}).items()}
    memory.check_fits(plugin, device, trained, sizes={**sizes, **extra})
