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
    overrides = list(overrides or [])
    if data is not None:
        overrides.append(f"data.name={data}")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gantk-check-"))
        results = _Checks(plugin, overrides, steps, Path(workdir) / "check-run").run()
    bad = [r for r in results if r.status != "passed"]
    if bad:
        lines = "\n".join(f"- {r.name}: {r.status}: {r.detail}" for r in bad)
        raise PluginCheckError(f"plugin {plugin!r} failed {sum(r.status == 'failed' for r in bad)} check(s):\n{lines}")
    return results


class _Checks:
    """The checks of :data:`CHECKS` in order, one method each; what one finds (the trainer, the final
    checkpoint) the next uses, and a check whose prerequisite failed is skipped."""

    def __init__(self, plugin: str | type[GanPlugin], overrides: list[str], steps: int, run: Path) -> None:
        self.plugin, self.overrides, self.steps, self.run_folder = plugin, overrides, steps, run
        self.results: list[CheckResult] = []
        self.host_reads: list[str] = []

    def run(self) -> list[CheckResult]:
        plan = [
            (self.loads, ()),
            (self.rejects_unknown, (0,)),
            (self.builds, (0,)),
            (self.trains, (2,)),
            (self.capturable, (3,)),
            (self.output_shape, (3,)),
            (self.round_trip, (3,)),
            (self.deterministic, (6,)),
        ]
        for name, (fn, needs) in zip(CHECKS, plan, strict=True):
            self._check(name, tuple(CHECKS[i] for i in needs), fn)
        return self.results

    def _check(self, name: str, needs: tuple[str, ...], fn: Callable[[], str | None]) -> None:
        failed = [r.name for r in self.results if r.name in needs and r.status != "passed"]
        if failed:
            self.results.append(CheckResult(name, "skipped", f"needs: {', '.join(failed)}"))
            return
        try:
            self.results.append(CheckResult(name, "passed", fn() or ""))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised mid-way
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (GantkError, AssertionError)):
                detail += "\n" + "".join(traceback.format_exception(exc)[-3:])
            self.results.append(CheckResult(name, "failed", detail))

    def loads(self) -> str:
        self.spec, self.cls = _spec_for(self.plugin)
        return f"{self.cls.__module__}.{self.cls.__name__}"

    def rejects_unknown(self) -> str:
        sections = [f.name for f in dataclasses.fields(self.cls.config_class) if f.name not in {"plugin"}]
        sections = [s for s in sections if dataclasses.is_dataclass(_field_type(self.cls.config_class, s))]
        for key in ["gantk_check_no_such_key", *(f"{s}.gantk_check_no_such_key" for s in sections)]:
            try:
                registry.make_config(self.spec, self.cls, overrides=[*self.overrides, f"{key}=1"])
            except ConfigError:
                continue
            raise AssertionError(f"the config accepted the unknown key '{key}'")
        return f"checked {1 + len(sections)} sections"

    def builds(self) -> str:
        from gantk.engine import Trainer

        steps = self.steps
        layer = [({"train": {"device": "cpu", "max_steps": steps}}, "check")]
        cfg = registry.make_config(self.spec, self.cls, layer, self.overrides)
        cfg.train.device, cfg.train.max_steps, cfg.train.tensorboard = "cpu", steps, False
        cfg.train.checkpoint_every, cfg.train.sample_every = 0, steps
        # every step after the first (which may set things up lazily) runs watched for host reads
        self.trainer = trainer = Trainer(self.cls(cfg), self.run_folder, self.spec, step_context=self._watch)
        trainer.setup()
        for name, module in trainer.aux.items():  # build_aux: placed by the engine, frozen, in eval mode
            if module.training or any(p.requires_grad for p in module.parameters()):
                raise AssertionError(f"auxiliary module '{name}' is not frozen in eval mode after set-up")
        return ", ".join(f"{k}: {sum(p.numel() for p in n.parameters()):,} params" for k, n in trainer.nets.items())

    def _watch(self, step: int) -> contextlib.AbstractContextManager:
        from gantk.engine.syncs import forbid_host_reads

        return forbid_host_reads(self.trainer.device, self.host_reads.append)

    def trains(self) -> str:
        trainer = self.trainer
        before = {k: _parameters(n) for k, n in trainer.nets.items()}
        self.final = trainer.fit()
        trained = sorted(n for networks in trainer.optimizer_groups.values() for n in networks)
        after = {k: _parameters(trainer.nets[k]) for k in trained}
        still = [k for k in trained if all(torch.equal(v, after[k][n]) for n, v in before[k].items())]
        if still:
            raise AssertionError(f"{self.steps} training steps left the weights of {still} unchanged")
        return f"{self.steps} steps changed {trained}"

    def capturable(self) -> str:
        reason = self.trainer.plugin.capturable_reason()
        if reason:
            return f"the plugin declares its step not capturable: {reason}"
        if self.host_reads:
            raise AssertionError(f"{self.host_reads[0]} (and {len(self.host_reads) - 1} more)")
        return (
            f"steps 2..{self.steps} read nothing on the host" if self.steps > 1 else "one step only: nothing to watch"
        )

    def output_shape(self) -> str:
        trainer = self.trainer
        channels = trainer.cfg.data.channels
        if trainer.sample_inputs is None:
            return "no sample inputs (the plugin does not sample); skipped the shape check"
        inputs = {k: v[:2] for k, v in trainer.sample_inputs.items()}
        with trainer.eval_mode():
            out = trainer.plugin.generate(trainer.sampling_generator(), inputs).float()
        if out.dim() != 4 or out.shape[1] != channels:
            raise AssertionError(f"generator output {tuple(out.shape)} does not have data.channels={channels}")
        if not torch.isfinite(out).all():
            raise AssertionError("generator output has non-finite values")
        return f"output {tuple(out.shape)}"

    def round_trip(self) -> str:
        from gantk.io.generators import load_generator

        trainer, final = self.trainer, self.final
        if not (final / "config.json").is_file():
            raise AssertionError(f"{final} has no config.json")
        where = self.spec.location if self.spec.source == "path" else None  # named as a user names it
        self.loaded = plugin_back, G = load_generator(final, plugin=where)
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

    def deterministic(self) -> str:
        from gantk.sampling import sample

        plugin_back, G = self.loaded
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


def _field_type(cls: type[Config], name: str):
    import typing

    return typing.get_type_hints(cls)[name]
