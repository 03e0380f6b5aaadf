"""The plugin conformance kit: ``check_plugin`` runs the contract checks a plugin author needs.

Use it from pytest in any plugin package::

    from gantk.testing import check_plugin

    def test_my_plugin_conforms(tmp_path):
        check_plugin("my_plugin", data="path/to/small/images", overrides=["model.width=8"], workdir=tmp_path)

Each check runs on the CPU with the plugin's defaults plus ``overrides`` (keep them small). A failed
check raises :class:`PluginCheckError`, which names every check that failed and why. Checks whose
prerequisites failed are reported as skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from gantk import registry
from gantk.config import Config
from gantk.errors import ConfigError, GantkError
from gantk.plugin import GanPlugin
from gantk.registry import PluginSpec

CHECKS = (
    "loads",
    "config rejects unknown keys",
    "networks build from the defaults",
    "training steps run and change the weights",
    "the training step reads no tensor value on the host (CUDA-graph capturable)",
    "generator output matches the data",
    "checkpoint round-trips through safetensors + config.json",
    "sampling is deterministic under a seed",
)


class PluginCheckError(AssertionError):
    """One or more contract checks failed; the message lists them."""


@dataclass
class CheckResult:
    name: str
    status: str  # "passed", "failed" or "skipped"
    detail: str = ""


def _spec_for(plugin: str | type[GanPlugin]) -> tuple[PluginSpec, type[GanPlugin]]:
    if isinstance(plugin, str):
        return registry.load(plugin)
    import inspect

    folder = Path(inspect.getfile(plugin)).parent
    return PluginSpec(name=plugin.name or plugin.__name__.lower(), source="path", location=str(folder)), plugin


def _parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Learnable parameters only: buffers such as batch-norm statistics move without any learning."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def check_plugin(
    plugin: str | type[GanPlugin],
    *,
    data: str | Path | None = None,
    overrides: list[str] | None = None,
    steps: int = 2,
    workdir: str | Path | None = None,
) -> list[CheckResult]:
    """Run every contract check on ``plugin`` (a name, path or class); raise if any fails."""
    results: list[CheckResult] = []
    state: dict = {}
    overrides = list(overrides or [])
    if data is not None:
        overrides.append(f"data.name={data}")
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="gantk-check-")
        workdir = tmp.name
    run = Path(workdir) / "check-run"

    def check(name: str, needs: tuple[str, ...], fn: Callable[[], str | None]) -> None:
        failed = [r.name for r in results if r.name in needs and r.status != "passed"]
        if failed:
            results.append(CheckResult(name, "skipped", f"needs: {', '.join(failed)}"))
            return
        try:
            results.append(CheckResult(name, "passed", fn() or ""))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised mid-way
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (GantkError, AssertionError)):
                detail += "\n" + "".join(traceback.format_exception(exc)[-3:])
            results.append(CheckResult(name, "failed", detail))

    def loads() -> str:
        state["spec"], state["cls"] = _spec_for(plugin)
        return f"{state['cls'].__module__}.{state['cls'].__name__}"

    def rejects_unknown() -> str:
        cls, spec = state["cls"], state["spec"]
        sections = [f.name for f in dataclasses.fields(cls.config_class) if f.name not in {"plugin"}]
        sections = [s for s in sections if dataclasses.is_dataclass(_field_type(cls.config_class, s))]
        for key in ["gantk_check_no_such_key", *(f"{s}.gantk_check_no_such_key" for s in sections)]:
            try:
                registry.make_config(spec, cls, overrides=[*overrides, f"{key}=1"])
            except ConfigError:
                continue
            raise AssertionError(f"the config accepted the unknown key '{key}'")
        return f"checked {1 + len(sections)} sections"

    def builds() -> str:
        cls, spec = state["cls"], state["spec"]
        cfg = registry.make_config(spec, cls, [({"train": {"device": "cpu", "max_steps": steps}}, "check")], overrides)
        cfg.train.device, cfg.train.max_steps, cfg.train.tensorboard = "cpu", steps, False
        cfg.train.checkpoint_every, cfg.train.sample_every = 0, steps
        from gantk.engine import Trainer

        trainer = Trainer(cls(cfg), run, spec)
        trainer.setup()
        state["trainer"] = trainer
        for name, module in trainer.aux.items():  # build_aux: placed by the engine, frozen, in eval mode
            if module.training or any(p.requires_grad for p in module.parameters()):
                raise AssertionError(f"auxiliary module '{name}' is not frozen in eval mode after set-up")
        return ", ".join(f"{k}: {sum(p.numel() for p in n.parameters()):,} params" for k, n in trainer.nets.items())

    def trains() -> str:
        from gantk.engine.syncs import forbid_host_reads

        trainer = state["trainer"]
        before = {k: _parameters(n) for k, n in trainer.nets.items()}
        found = state["host_reads"] = []
        runner = trainer.runner

        def watched(phase, raws, index):  # the first step may set things up lazily: watch the others
            with forbid_host_reads(trainer.device, found.append) if index else contextlib.nullcontext():
                runner(phase, raws, index)

        trainer.runner = watched
        try:
            state["final"] = trainer.fit()
        finally:
            trainer.runner = runner
        trained = sorted(n for networks in trainer.optimizer_groups.values() for n in networks)
        after = {k: _parameters(trainer.nets[k]) for k in trained}
        still = [k for k in trained if all(torch.equal(v, after[k][n]) for n, v in before[k].items())]
        if still:
            raise AssertionError(f"{steps} training steps left the weights of {still} unchanged")
        return f"{steps} steps changed {trained}"

    def capturable() -> str:
        reason = state["trainer"].plugin.capturable_reason()
        if reason:
            return f"the plugin declares its step not capturable: {reason}"
        if state["host_reads"]:
            raise AssertionError(f"{state['host_reads'][0]} (and {len(state['host_reads']) - 1} more)")
        return f"steps 2..{steps} read nothing on the host" if steps > 1 else "one step only: nothing to watch"

    def output_shape() -> str:
        trainer = state["trainer"]
        cfg = trainer.cfg
        if trainer.sample_inputs is None:
            return "no sample inputs (the plugin does not sample); skipped the shape check"
        inputs = {k: v[:2] for k, v in trainer.sample_inputs.items()}
        with trainer.eval_mode():
            out = trainer.plugin.generate(trainer.sampling_generator(), inputs).float()
        if out.dim() != 4 or out.shape[1] != cfg.data.channels:
            raise AssertionError(f"generator output {tuple(out.shape)} does not have data.channels={cfg.data.channels}")
        if not torch.isfinite(out).all():
            raise AssertionError("generator output has non-finite values")
        return f"output {tuple(out.shape)}"

    def round_trip() -> str:
        from gantk.io.generators import load_generator

        trainer, final = state["trainer"], state["final"]
        if not (final / "config.json").is_file():
            raise AssertionError(f"{final} has no config.json")
        spec = state["spec"]  # a plugin folder is named, as a user names it (--plugin DIR)
        where = spec.location if spec.source == "path" else None
        plugin_back, G = load_generator(final, plugin=where)
        state["loaded"] = (plugin_back, G)
        directions = {None: trainer.plugin.generator, **trainer.plugin.directions}  # every generator it samples
        count = 0
        for direction, name in directions.items():
            loaded = G if direction is None else load_generator(final, plugin=where, direction=direction)[1]
            expected = trainer.sampling_generator(name).state_dict()
            for key, value in loaded.state_dict().items():
                if not torch.equal(value.cpu(), expected[key].cpu()):
                    raise AssertionError(f"tensor {key} of '{name}' differs after the round trip")
            count += len(expected)
        return f"{count} tensors identical ({', '.join(dict.fromkeys(directions.values()))})"

    def deterministic() -> str:
        from gantk.sampling import sample

        plugin_back, G = state["loaded"]
        try:
            a, b = sample(plugin_back, G, 2, seed=0), sample(plugin_back, G, 2, seed=0)
        except GantkError:  # image-to-image plugins: translate a fixed image instead
            x = torch.rand(1, plugin_back.cfg.data.channels, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
            try:
                a, b = plugin_back.translate(G, x), plugin_back.translate(G, x)
            except NotImplementedError:
                return "the plugin neither samples nor translates; nothing to check"
        if not torch.equal(a, b):
            raise AssertionError("the same seed gave different images")
        return "same seed, same images"

    check(CHECKS[0], (), loads)
    check(CHECKS[1], (CHECKS[0],), rejects_unknown)
    check(CHECKS[2], (CHECKS[0],), builds)
    check(CHECKS[3], (CHECKS[2],), trains)
    check(CHECKS[4], (CHECKS[3],), capturable)
    check(CHECKS[5], (CHECKS[3],), output_shape)
    check(CHECKS[6], (CHECKS[3],), round_trip)
    check(CHECKS[7], (CHECKS[6],), deterministic)
    if tmp is not None:
        tmp.cleanup()
    bad = [r for r in results if r.status != "passed"]
    if bad:
        lines = "\n".join(f"- {r.name}: {r.status}: {r.detail}" for r in bad)
        raise PluginCheckError(f"plugin {plugin!r} failed {sum(r.status == 'failed' for r in bad)} check(s):\n{lines}")
    return results


def _field_type(cls: type[Config], name: str):
    import typing

    return typing.get_type_hints(cls)[name]
