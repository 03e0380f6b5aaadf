"""Shared by the per-plugin benchmarks: engine vs a plain PyTorch loop, and how far each is from the machine.

Each script (``dcgan.py``, ``cgan.py``, ``pix2pix.py``, ``srgan.py``, ``infogan.py``, ``cyclegan.py``,
``stylegan2.py``) describes one :class:`Case`: the
plugin's config, synthetic in-memory uint8 data of the real shape, and one training step of the same
networks written as a plain PyTorch loop. :func:`main` then

* times the engine (``gantk.engine.Trainer`` on the plugin) and the plain loop, alternating, ``--reps``
  times, with the same speed switches (``--precision``, ``--channels-last``, ``--compile``,
  ``--cuda-graph``) on both. With CUDA graphs the plain loop is the ceiling: the same networks and
  losses written by hand, the whole step (data index included) captured in one ``torch.cuda.CUDAGraph``
  with fused capturable Adam;
* counts one step's FLOPs (``torch.utils.flop_counter``) and estimates its memory traffic from below
  (every tensor autograd saves is written once and read once, plus Adam's 28 bytes per trained weight);
* measures the machine's own matmul rate and copy bandwidth, and prints the step's share of each.

It prints one JSON line; it asserts nothing. Results go in benchmarks/README.md with their machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from _timing import steps_per_second_after
from torch.utils.flop_counter import FlopCounterMode

from gantk import registry
from gantk.data import TensorDataset
from gantk.engine import select_device
from gantk.engine.graph import resolve_graph_mode
from gantk.engine.setup import COMPILE_MODES, DTYPES
from gantk.io.images import from_uint8


@dataclass
class Plain:
    """What a plain loop's step gets: the networks, their optimizers, autocast and one scaler per optimizer."""

    nets: dict[str, torch.nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    device: torch.device
    precision: str
    channels_last: bool
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)
    cache: bool = True  # autocast's weight cache (off inside a CUDA graph)
    step_index: int = 0  # steps before this one (0: the first), as ``Update.runs_at`` counts: lazy updates

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = DTYPES.get(self.precision)
        if not dtype:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=self.cache)

    def step(self, name: str, loss: torch.Tensor) -> None:
        """backward + optimizer step of network ``name`` (through its fp16 scaler when there is one)."""
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(name)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 -> float in [-1, 1] on the device, as the engine does."""
        x = from_uint8(x.to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


@dataclass
class Case:
    plugin: str
    layer: dict  # config layer over the plugin's defaults: data / model / train sizes
    data: Callable[[], TensorDataset]  # synthetic uint8 data of the real shape, in memory
    plain_step: Callable[[Plain, dict[str, torch.Tensor]], None]  # one step of the plain loop
    images_per_step: int
    trained: tuple[str, ...] = ("G", "D")
    # optimizers over several networks (contract 2): {optimizer: networks}; default one per trained network
    groups: dict[str, tuple[str, ...]] | None = None
    configure: Callable[[object], None] | None = None  # last touches on the engine's plugin instance
    # lazy updates: which kind of step a step number is (captured as one CUDA graph per kind, as the
    # engine does), and the steps of one whole cycle, over which a step's FLOPs and bytes are averaged
    variant: Callable[[int], object] | None = None
    cycle: int = 1


def make_plugin(case: Case, args: argparse.Namespace, steps: int):
    spec, cls = registry.load(case.plugin)
    train = {
        "max_steps": steps,
        "device": args.device,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "cuda_graph": args.cuda_graph,
        "log_every": args.warmup,
        "sample_every": 0,
        "eval_every": 0,
        "checkpoint_every": 0,
        "tensorboard": False,
        "nonfinite": "off",  # the plain loop does not check either
    }
    layer = {**case.layer, "train": {**case.layer.get("train", {}), **train}}
    plugin = cls(registry.make_config(spec, cls, [(layer, "benchmark")]))
    if case.configure:
        case.configure(plugin)
    return plugin


def engine_rate(case: Case, args: argparse.Namespace, data: TensorDataset) -> float:
    plugin = make_plugin(case, args, args.warmup + args.steps)
    plugin.build_dataset = lambda split="train": data
    return steps_per_second_after(plugin, args.warmup)


def graphs_on(args: argparse.Namespace) -> bool:
    """Whether the engine runs this setting from CUDA graphs (the plain loop then captures too)."""
    device = select_device(args.device)
    return resolve_graph_mode(args.cuda_graph, device, False, args.compile, "")[0] == "on"


def plain_loop(case: Case, args: argparse.Namespace, data: TensorDataset) -> tuple[Plain, Callable[[], None]]:
    device = select_device(args.device)
    graph = graphs_on(args)
    plugin = make_plugin(case, args, 1)
    plugin.cfg.data.channels = data.channels
    torch.manual_seed(0)
    fmt = torch.channels_last if args.channels_last else torch.preserve_format
    nets = {k: v.to(device, memory_format=fmt) for k, v in plugin.build_networks().items()}
    fused = {"fused": True} if device.type == "cuda" else {}
    opts = {}
    for name, networks in (case.groups or {n: (n,) for n in case.trained}).items():
        o = plugin.cfg.optim[name]
        params = [p for net in networks for p in nets[net].parameters()]
        opts[name] = torch.optim.Adam(params, lr=o.lr, betas=o.betas, capturable=graph, **fused)
    if args.compile != "off":
        nets = {k: torch.compile(v, mode=COMPILE_MODES[args.compile]) for k, v in nets.items()}
    plain = Plain(nets, opts, device, args.precision, args.channels_last)
    if args.precision == "fp16":
        plain.scalers = {k: torch.amp.GradScaler(device.type) for k in opts}
    n = len(data)
    g = torch.Generator().manual_seed(0)
    batch_size = plugin.cfg.train.batch_size

    def step() -> None:
        idx = torch.randint(0, n, (batch_size,), generator=g)
        case.plain_step(plain, data.batch(idx))
        plain.step_index += 1

    if not graph:
        return plain, step
    plain.cache = False  # autocast's weight cache is not allowed inside a captured graph
    on_device = data.to(device)
    index = torch.zeros(batch_size, dtype=torch.long, device=device)
    kind_of = case.variant or (lambda number: None)
    graphs: dict[object, torch.cuda.CUDAGraph] = {}

    def capture() -> torch.cuda.CUDAGraph:
        """The whole step of the current step's kind, warmed up on a side stream and captured (own pool)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                case.plain_step(plain, on_device.batch(index))
        torch.cuda.current_stream().wait_stream(side)
        captured = torch.cuda.CUDAGraph()
        with torch.cuda.graph(captured):
            case.plain_step(plain, on_device.batch(index))
        return captured

    def replay() -> None:
        kind = kind_of(plain.step_index)
        if kind not in graphs:  # first met in the warm-up when it is at least one cycle long
            graphs[kind] = capture()
        index.copy_(torch.randint(0, n, (batch_size,), generator=g).pin_memory(), non_blocking=True)
        graphs[kind].replay()
        plain.step_index += 1

    return plain, replay


def plain_rate(case: Case, args: argparse.Namespace, data: TensorDataset) -> float:
    plain, step = plain_loop(case, args, data)
    for _ in range(args.warmup):
        step()
    sync(plain.device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync(plain.device)
    return args.steps / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class _TotalsOnly:
    """Stands in for FlopCounterMode's per-module tracker: only the total is read here, and the tracker's
    backward hooks fail on a view of a parameter made under ``no_grad`` (StyleGAN2's constant input in the
    step's ``no_grad`` generation for D)."""

    parents = ("Global",)

    def __enter__(self) -> _TotalsOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def step_cost(case: Case, args: argparse.Namespace, data: TensorDataset) -> tuple[float, float]:
    """(FLOPs, bytes) of one eager plain step, averaged over ``case.cycle`` steps; bytes is a lower bound
    (saved activations + Adam)."""
    eager = argparse.Namespace(**{**vars(args), "compile": "off", "cuda_graph": "off"})
    plain, step = plain_loop(case, eager, data)
    step()  # optimizer state exists from here on
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    total = 0
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalsOnly()
    with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for _ in range(case.cycle):  # the steps after the first, a whole cycle: each kind of step in its share
            step()
            total += sum(saved.values())
            saved.clear()
    weights = sum(p.numel() for opt in plain.opts.values() for g in opt.param_groups for p in g["params"])
    return float(counter.get_total_flops()) / case.cycle, 2.0 * total / case.cycle + 28.0 * weights


def _best_rate(fn: Callable[[], None], work: float, device: torch.device, trials: int = 5, reps: int = 5) -> float:
    """``work`` per call of ``fn`` over the best of ``trials`` timings: the machine's peak, not its noise."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - start) / reps)
    return work / best


def machine_rates(device: torch.device, precision: str) -> tuple[float, float]:
    """(matmul FLOP/s in the run's precision, copy bandwidth in bytes/s), measured here and now."""
    dtype = DTYPES.get(precision, torch.float32)
    n = 8192 if device.type == "cuda" else 1536
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    flops = _best_rate(lambda: a @ b, 2.0 * n**3, device)
    x = torch.empty(64 << 20, device=device)  # 256 MB of fp32
    y = torch.empty_like(x)
    bandwidth = _best_rate(lambda: y.copy_(x), 2.0 * x.numel() * 4, device)
    return flops, bandwidth


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--steps", type=int, default=10, help="timed steps per repetition (a multiple of --warmup)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", default="off", choices=["off", "default", "reduce-overhead", "max-autotune"])
    p.add_argument("--cuda-graph", default="auto", choices=["auto", "on", "off"], help="train.cuda_graph")
    return p


def print_machine_rates() -> None:
    """``python benchmarks/_harness.py``: the machine's matmul rates and copy bandwidth alone."""
    device = select_device("auto")
    for precision in ("fp32", "bf16"):
        flops, bandwidth = machine_rates(device, precision)
        print(
            json.dumps(
                {
                    "device": str(device),
                    "precision": precision,
                    "matmul_tflop_s": round(flops / 1e12, 3),
                    "bandwidth_gb_s": round(bandwidth / 1e9, 1),
                }
            )
        )


def main(case: Case, args: argparse.Namespace) -> dict:
    if args.steps % args.warmup:
        raise SystemExit("--steps must be a multiple of --warmup (both are logging intervals)")
    device = select_device(args.device)
    machine = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else f"{platform.machine()}, {torch.get_num_threads()} threads"
    )
    data = case.data()
    engine, plain = [], []
    for rep in range(args.reps):
        engine.append(engine_rate(case, args, data))
        plain.append(plain_rate(case, args, data))
        print(f"rep {rep + 1}: engine {engine[-1]:.3f} steps/s, plain {plain[-1]:.3f} steps/s", flush=True)
    e, q = statistics.median(engine), statistics.median(plain)
    ratios = sorted(a / b for a, b in zip(engine, plain, strict=True))
    flops, nbytes = step_cost(case, args, data)
    peak_flops, bandwidth = machine_rates(device, args.precision)
    result = {
        "plugin": case.plugin,
        "machine": machine,
        "torch": torch.__version__,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "cuda_graph": "on" if graphs_on(args) else "off",
        "engine_steps_s": round(e, 3),
        "plain_steps_s": round(q, 3),
        "engine_images_s": round(e * case.images_per_step, 1),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_range": [round(ratios[0], 3), round(ratios[-1], 3)],
        "gflop_per_step": round(flops / 1e9, 2),
        "engine_tflop_s": round(flops * e / 1e12, 3),
        "matmul_tflop_s": round(peak_flops / 1e12, 3),
        "share_of_matmul_rate": round(flops * e / peak_flops, 3),
        "mb_per_step_lower_bound": round(nbytes / 1e6, 1),
        "bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "share_of_bandwidth": round(nbytes * e / bandwidth, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    print_machine_rates()
