"""train.augment measured: what it costs per step, and what it does on small data.

    python benchmarks/augment.py cost  --device cpu              # steps/s per policy, DCGAN and CGAN
    python benchmarks/augment.py cgan  --steps 2000 -o OUT       # CGAN on 1 % of MNIST, with and without
    python benchmarks/augment.py dcgan --steps 2000 -o OUT       # DCGAN on AT&T faces, with and without

``cgan`` trains the judge on all of MNIST once (OUT/judge), then CGAN runs on the first 600 training
images at equal steps: one plain, one with DiffAugment (color, translation, cutout), and with ``--ada``
one with ADA's adaptive p. It reports the
accuracy score and its per-class minimum for both, and D's logit gap (mean D(real) - mean D(fake))
over training, D's over-fitting signal. ``dcgan`` writes both runs' last sample grids side by side.
Set GANTK_DATA to the datasets folder. Nothing is asserted: the figures go to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from gantk import registry
from gantk.engine import Trainer

POLICY = ["color", "translation", "cutout"]


def plugin_for(name: str, layer: dict, overrides: list[str]):
    spec, cls = registry.load(name)
    return spec, cls(registry.make_config(spec, cls, [(layer, "benchmark")], overrides))


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def cost(args: argparse.Namespace) -> None:
    from _timing import steps_per_second_after

    cases = {
        "DCGAN 64x64, ngf=ndf=64, batch 128 (the paper's)": (
            "dcgan",
            {
                "data": {"name": "att_faces", "image_size": 64},
                "model": {"ngf": 64, "ndf": 64},
                "train": {"batch_size": 128},
            },
            args.dcgan_steps,
        ),
        "CGAN 32x32 MNIST, width 32, batch 64": ("cgan", {"data": {"name": "mnist"}}, args.cgan_steps),
    }
    policies = {
        "none": [],
        "color": ["color"],
        "translation": ["translation"],
        "cutout": ["cutout"],
        "all three": POLICY,
    }
    for title, (name, layer, steps) in cases.items():
        warmup = max(1, steps // 3)
        base = None
        for label, policy in policies.items():
            train = {"device": args.device, "max_steps": steps, "log_every": warmup, "sample_every": 0,
                     "eval_every": 0, "checkpoint_every": 0, "checkpoint_minutes": 0, "tensorboard": False,
                     "augment": {"policy": policy}}  # fmt: skip
            _, plugin = plugin_for(name, {**layer, "train": {**layer.get("train", {}), **train}}, [])
            rate = steps_per_second_after(plugin, warmup)
            base = base or rate
            print(f"{title} | {label} | {rate:.3g} steps/s | {base / rate:.2f}x the step time of none", flush=True)


VARIANTS = {
    "plain": {"policy": []},
    "diffaugment": {"policy": POLICY},  # p = 1: every transform on every image
    "ada": {"policy": POLICY, "adaptive": True, "p": 0.0},  # p from 0, steered by r_t (target 0.6)
}


def train_pair(name: str, layer: dict, out: Path, steps: int, device: str, ada: bool = False) -> dict[str, Path]:
    runs = {}
    for label, augment in VARIANTS.items():
        if label == "ada" and not ada:
            continue
        train = {**layer.get("train", {}), "device": device, "max_steps": steps, "augment": augment}
        spec, plugin = plugin_for(name, {**layer, "train": train}, [])
        run = out / label
        Trainer(plugin, run, spec).fit()
        runs[label] = run
    return runs


def logit_gaps(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["D/real_logit"] - r["D/fake_logit"]) for r in records(run) if "D/real_logit" in r]


def cgan(args: argparse.Namespace) -> None:
    from gantk.cli import main as gantk

    judge = args.output / "judge"
    if not (judge / "config.json").exists():
        gantk(["classifier", "--data", "mnist", "--steps", "1500", "--device", args.device, "-o", str(judge)])
    every = max(1, args.steps // 4)
    layer = {
        "data": {"name": "mnist", "limit": 600},
        "train": {"log_every": max(1, args.steps // 20), "eval_every": every, "sample_every": args.steps,
                  "checkpoint_every": 0, "tensorboard": False},
        "eval": {"classifier": str(judge)},
    }  # fmt: skip
    runs = train_pair("cgan", layer, args.output, args.steps, args.device, ada=args.ada)
    summary = {}
    for label, run in runs.items():
        evals = [r for r in records(run) if "eval/accuracy" in r]
        summary[label] = {
            "accuracy": [(r["step"], r["eval/accuracy"]) for r in evals],
            "accuracy_min": [(r["step"], r["eval/accuracy_min"]) for r in evals],
            "logit_gap": logit_gaps(run),
            "p": [(r["step"], r["augment/p"]) for r in records(run) if "augment/p" in r],
        }
    (args.output / "summary.json").write_text(json.dumps(summary, indent=1))
    for label, s in summary.items():
        print(f"{label}: accuracy {s['accuracy'][-1][1]:.3f}, per-class min {s['accuracy_min'][-1][1]:.3f}")
        print("  D logit gap by step: " + ", ".join(f"{step}: {gap:.2f}" for step, gap in s["logit_gap"]))


def dcgan(args: argparse.Namespace) -> None:
    layer = {
        "data": {"name": "att_faces", "image_size": args.image_size},
        "model": {"ngf": args.width, "ndf": args.width},
        "train": {"batch_size": 64, "log_every": max(1, args.steps // 20), "sample_every": args.steps,
                  "sample_count": 64, "checkpoint_every": 0, "tensorboard": False},
    }  # fmt: skip
    runs = train_pair("dcgan", layer, args.output, args.steps, args.device)
    grids = [Image.open(run / "samples" / f"step_{args.steps:08d}.png") for run in runs.values()]
    side = Image.new("RGB", (sum(g.width for g in grids) + 16, max(g.height for g in grids)), "white")
    side.paste(grids[0], (0, 0))
    side.paste(grids[1], (grids[0].width + 16, 0))
    side.save(args.output / "plain_vs_diffaugment.png")
    for label, run in runs.items():
        print(f"{label}: D logit gap by step: " + ", ".join(f"{s}: {g:.2f}" for s, g in logit_gaps(run)))
    print(f"wrote {args.output / 'plain_vs_diffaugment.png'} (left: plain, right: DiffAugment)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["cost", "cgan", "dcgan"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--dcgan-steps", type=int, default=6)
    parser.add_argument("--cgan-steps", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--ada", action="store_true", help="cgan: a third run with ADA's adaptive p")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/augment"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    sys.exit({"cost": cost, "cgan": cgan, "dcgan": dcgan}[args.what](args))
