"""What FID/KID cost: feature extraction, the statistics, and one DCGAN evaluation (issue 18).

    python benchmarks/metrics.py --device cpu [--weights weights-inception-2015-12-05-6726825d.pth] [--images 64]

Times (best of ``--reps``):

* the FID Inception network's features, images per second (299x299 inside the network whatever the
  input size, so the rate is the same for MNIST and facades). Without ``--weights`` the network gets
  random weights of the right shapes: the same arithmetic, so the same time;
* the weight-free ``kid_pixels`` features;
* torchmetrics' FID and KID on ``--features`` feature vectors a side (2,048-d for Inception);
* one default DCGAN evaluation without weights (``eval.fid_samples`` samples + kid_pixels), real side cached.

Prints one JSON line; asserts nothing. Figures go in benchmarks/README.md with their machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers: random FID weights

from gantk import registry  # noqa: E402
from gantk.engine import select_device  # noqa: E402
from gantk.metrics import FeatureSpace, distances  # noqa: E402
from gantk.metrics.samples import sample_metrics  # noqa: E402
from gantk.plugin import EvalContext  # noqa: E402


def best_of(reps: int, fn) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default="", help="the FID Inception weights; default: random ones")
    parser.add_argument("--images", type=int, default=64, help="images per feature-extraction timing")
    parser.add_argument("--features", type=int, default=5000, help="feature vectors a side for FID/KID")
    parser.add_argument("--samples", type=int, default=5000, help="eval.fid_samples of the DCGAN evaluation")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    device = select_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="gantk-metrics-bench-"))
    weights = args.weights
    if not weights:
        from tests.helpers.fid import fid_inception_file

        weights = str(fid_inception_file(tmp / "random-inception.safetensors"))
    images = torch.rand(args.images, 3, 64, 64)
    inception = FeatureSpace(weights, device, tmp / "cache")
    pixels = FeatureSpace("", device, tmp / "cache")

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    inception.features(images[:8])  # warm-up
    t_inc = best_of(args.reps, lambda: (inception.features(images), sync()))
    t_pix = best_of(args.reps, lambda: (pixels.features(images), sync()))
    g = torch.Generator().manual_seed(0)
    a = torch.rand(args.features, 2048, generator=g, dtype=torch.float64)
    b = torch.rand(args.features, 2048, generator=g, dtype=torch.float64) + 0.01
    t_stats = best_of(1, lambda: distances(a, b))

    spec, cls = registry.load("dcgan")
    layer = {"data": {"channels": 1}, "eval": {"fid_samples": args.samples, "fid_cache": str(tmp / "cache")}}
    plugin = cls(registry.make_config(spec, cls, [(layer, "bench")]))
    G = plugin.build_networks()["G"].to(device).eval()
    real = torch.rand(args.samples, 1, 64, 64)
    ctx = EvalContext(device, 0, tmp / "eval")
    with torch.no_grad():
        sample_metrics(plugin, G, ctx, real=real)  # the first computes and caches the real side
        t_eval = best_of(args.reps, lambda: sample_metrics(plugin, G, ctx, real=real))
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads",
                "device": str(device),
                "torch": torch.__version__,
                "weights": "given" if args.weights else "random (same cost)",
                "inception_images_per_s": round(args.images / t_inc, 1),
                "pixel_images_per_s": round(args.images / t_pix, 1),
                "fid_kid_seconds": round(t_stats, 2),
                "fid_kid_features_a_side": args.features,
                "dcgan_eval_seconds_without_weights": round(t_eval, 2),
                "dcgan_eval_samples": args.samples,
            }
        )
    )


if __name__ == "__main__":
    main()
