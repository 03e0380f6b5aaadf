"""A trained generator from its folder alone: the plugin, the config and the weights it was trained with.

``config.json`` names the plugin and holds the resolved config; the weights are read from safetensors
(or, for an ONNX export, the graph runs in ONNX Runtime). Nothing from training has to be repeated at
inference time: ``gantk sample``, ``translate``, ``upscale``, ``export`` and the apps all start here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantk import memory, registry
from gantk.config import freeze
from gantk.errors import CheckpointError, ConfigError, GantkError
from gantk.io import checkpoint as ckpt
from gantk.io.onnx import EXPORT_INFO, OnnxGenerator, is_onnx_export, read_export_info
from gantk.plugin import TASKS, GanPlugin

#: what a model that does not serve a task does not do, in the refusal
NOT_SERVED = {
    "sample": "does not sample from noise",
    "translate": "does not translate images",
    "upscale": "is not a super-resolution one",
}


def load_plugin_from_meta(
    meta: dict[str, Any], where: Path, plugin: str | None = None, overrides: list[str] | None = None
) -> GanPlugin:
    """The plugin instance a checkpoint was trained with, configured from its ``config.json``.

    A built-in or installed plugin is found by its registered name. A checkpoint can also have been
    trained with a plugin folder; its ``config.json`` records the folder, but gantk never imports code
    from a path that a file names: the user names the folder (``plugin``, ``--plugin DIR``), as they did
    to train. ``plugin`` also overrides the recorded plugin (a renamed or moved one).

    ``overrides`` (``["eval.tile=256"]``, as ``--set`` takes them) change how the model is used, never
    what was trained; the config comes back frozen.
    """
    recorded = registry.PluginSpec.from_meta(meta.get("plugin") or {})
    name, source, location = recorded.name, recorded.source, recorded.location
    if plugin is None and source == "path":
        raise CheckpointError(
            f"checkpoint {where} was trained with the plugin folder {location or name!r}, which is neither built in "
            "nor installed. gantk does not import code from a path that a checkpoint names; if you trust that "
            f"folder, name it yourself: --plugin {location or 'DIR'}."
        )
    try:
        if plugin is not None:
            cls = registry.find(plugin).load()
        else:  # by its recorded origin: a package's plugin of the same name never stands in for a built-in
            cls = registry.find(recorded.reference(), allow_path=False).load()
    except GantkError as exc:
        raise CheckpointError(
            f"checkpoint {where} was trained with plugin '{name}' ({source}), which cannot be loaded here: {exc}"
        ) from None
    try:
        cfg = registry.saved_config(cls, meta["config"], Path(where), overrides)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {where}: its config.json does not fit plugin '{name}': {exc}") from None
    return cls(freeze(cfg))


def load_generator(
    path: str | Path,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    which: str = "last",
    plugin: str | None = None,
    overrides: list[str] | None = None,
    direction: str | None = None,
    task: str | None = None,
) -> tuple[GanPlugin, nn.Module]:
    """Load ``(plugin, generator)`` from a run or checkpoint folder; prefers EMA weights when present.

    ``task`` (one of :data:`gantk.plugin.TASKS`) refuses a model whose plugin does not declare it, right
    after the plugin is known and before any weights are read.

    ``plugin`` names the plugin folder of a checkpoint trained with one, and ``overrides`` change how the
    model is used (``eval.*``); see :func:`load_plugin_from_meta`. ``direction`` picks the generator of
    a plugin with one per direction (CycleGAN's ``BtoA``: ``GanPlugin.directions``); by default the one
    ``config.json`` names.
    """
    if (Path(path) / EXPORT_INFO).is_file() and not is_onnx_export(Path(path)):
        read_export_info(Path(path))  # an unreadable description is refused as such; another format below
    if is_onnx_export(Path(path)):  # gantk export --format onnx: ONNX Runtime behind the usual call
        meta = ckpt.read_meta(Path(path))
        instance = load_plugin_from_meta(meta, Path(path), plugin, overrides)
        check_task(instance, task, path)
        _check_export_direction(instance, meta, Path(path), direction, one_generator=True)
        return instance, OnnxGenerator(Path(path), instance.export_inputs())
    folder = ckpt.find_checkpoint(Path(path), which)
    meta = ckpt.read_meta(folder)
    instance = load_plugin_from_meta(meta, folder, plugin, overrides)
    check_task(instance, task, path)
    if direction is None:
        gen_name = meta.get("generator", instance.generator)
        asked = f"{folder / ckpt.CONFIG} names generator '{gen_name}'"
    else:
        _check_export_direction(instance, meta, folder, direction)
        gen_name = instance.network_for(direction)
        asked = f"--direction {direction} asks for network '{gen_name}'"
    return instance, _build_one(
        instance, folder, gen_name, ckpt.generator_weights(folder, gen_name, use_ema), device, asked
    )


def check_task(instance: GanPlugin, task: str | None, where: str | Path) -> None:
    """Refuse a model whose plugin does not serve ``task`` (None: any), naming what it serves."""
    if task is None:
        return
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    if not instance.serves(task):
        served = sorted(instance.tasks)
        use = f"gantk {' or gantk '.join(served)} serves it" if served else "it serves no command"
        raise GantkError(
            f"{where} holds a {instance.name} model, which {NOT_SERVED[task]} (it serves "
            f"{', '.join(served) or 'nothing'}); {use}."
        )


def load_generators(
    path: str | Path,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    which: str = "last",
    plugin: str | None = None,
    overrides: list[str] | None = None,
) -> tuple[GanPlugin, dict[str, nn.Module]]:
    """Load ``(plugin, {name: generator})``: every generator the plugin samples with
    (:meth:`GanPlugin.sampled_networks`) that the folder holds, EMA weights preferred; what
    ``evaluate`` takes. An export holds one: the one its ``config.json`` names."""
    plugin_obj, G = load_generator(path, device, use_ema, which, plugin, overrides)
    if is_onnx_export(Path(path)):
        return plugin_obj, {plugin_obj.generator: G}
    folder = ckpt.find_checkpoint(Path(path), which)
    held = ckpt.read_meta(folder).get("generator", plugin_obj.generator)
    nets = {held: G}
    for name in plugin_obj.sampled_networks():
        if name not in nets and (folder / f"{name}.safetensors").is_file():
            weights = ckpt.generator_weights(folder, name, use_ema)
            nets[name] = _build_one(plugin_obj, folder, name, weights, device, f"network '{name}' was asked for")
    return plugin_obj, nets


def _check_export_direction(
    instance: GanPlugin, meta: dict[str, Any], folder: Path, direction: str | None, one_generator: bool = False
) -> None:
    """An export holds one generator: a ``direction`` it was not exported for is refused, naming its own."""
    if direction is None:
        return
    wanted = instance.network_for(direction)  # an unknown direction: the plugin's own error
    held = meta.get("generator", instance.generator)
    if (one_generator or meta.get("exported")) and held != wanted:
        mine = next((k for k, v in instance.directions.items() if v == held), held)
        raise CheckpointError(
            f"{folder} is an export of direction {mine} (network '{held}') alone; --direction {direction} needs "
            f"'{wanted}': export it with gantk export RUN --direction {direction}, or use the run's checkpoint."
        )


def _build_one(
    instance: GanPlugin, folder: Path, name: str, weights: Path, device: str | torch.device, asked: str
) -> nn.Module:
    """Network ``name`` of the plugin, sized and checked before it is built, with ``weights`` loaded;
    ``asked`` says who wanted ``name``, for the error when the plugin builds no such network."""
    try:
        memory.check_fits(instance, torch.device(device), only=name)  # a config.json asking for absurd widths
    except GantkError as exc:
        raise CheckpointError(f"checkpoint {folder}: {exc}") from None
    nets = instance.build_networks()
    if name not in nets:
        raise CheckpointError(f"{asked}, but plugin '{instance.cfg.plugin}' builds only {', '.join(sorted(nets))}.")
    ckpt.load_weights(nets[name], weights)
    return nets[name].to(device).eval()


def load_network(
    path: str | Path, name: str, device: str | torch.device = "cpu", which: str = "last", plugin: str | None = None
) -> tuple[GanPlugin, nn.Module]:
    """Load ``(plugin, network)`` for any network a checkpoint holds (``"D"`` for ``gantk probe``).

    Generator-only exports hold no discriminator; the error says to use the run's checkpoint instead.
    """
    folder = ckpt.find_checkpoint(Path(path), which)
    meta = ckpt.read_meta(folder)
    instance = load_plugin_from_meta(meta, folder, plugin)
    weights = folder / f"{name}.safetensors"
    if not weights.is_file():
        raise CheckpointError(
            f"{folder} holds no {name} network ({weights.name} is missing); an exported generator-only folder "
            f"has none, so give the training run or one of its checkpoints/ folders."
        )
    return instance, _build_one(instance, folder, name, weights, device, f"network '{name}' was asked for")
