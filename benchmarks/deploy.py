"""Latency per image and peak memory of the shipped generators: PyTorch eager against ONNX Runtime.

Exports each shipped checkpoint to ONNX (``gantk export --format onnx``), then times batch-1 requests
in a fresh process per runtime, so each process's peak resident memory (``ru_maxrss``) is its own:
CGAN draws one 32x32 digit; the SR model upscales one 128x128 LR image to 512x512. Median of
``--repeats`` after ``--warmup`` calls, one thread per process by default (like one app request).
Measures; asserts nothing.

    python benchmarks/deploy.py
    python benchmarks/deploy.py --threads 2 --repeats 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = {"cgan-mnist": "apps/checkpoints/cgan-mnist", "srresnet-x4": "apps/checkpoints/srresnet-x4"}

# Times one runtime on one exported folder in this process; prints JSON: median ms, peak RSS MB.
CHILD = """
import json, resource, statistics, sys, time
import numpy as np
runtime, folder, checkpoint, threads, warmup, repeats = sys.argv[1:7]
threads, warmup, repeats = int(threads), int(warmup), int(repeats)
info = json.load(open(folder + "/export.json"))
feeds = {}
rng = np.random.default_rng(0)
for spec in info["inputs"]:
    shape = [1, *spec["example_shape"][1:]]
    if len(shape) == 4:
        shape[2:] = [128, 128]
    feeds[spec["name"]] = (rng.random(shape) * 2 - 1).astype("float32") if spec["dtype"] == "float32" else \\
        np.zeros(shape, dtype=spec["dtype"])
if runtime == "onnxruntime":
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(folder + "/generator.onnx", options, providers=["CPUExecutionProvider"])
    call = lambda: session.run(None, feeds)
else:
    import torch
    from gantk.io.generators import load_generator
    torch.set_num_threads(threads)
    plugin, G = load_generator(checkpoint)
    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    def call():
        with torch.no_grad():
            return plugin.generate(G, tensors)
for _ in range(warmup):
    call()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    call()
    times.append(time.perf_counter() - start)
print(json.dumps({"ms": 1000 * statistics.median(times), "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<14} {'runtime':<14} {'ms / image':>11} {'peak RSS MB':>12}")
        for name, checkpoint in MODELS.items():
            folder = Path(tmp) / name
            subprocess.run(
                [sys.executable, "-m", "gantk", "export", checkpoint, "--format", "onnx", "-o", str(folder)],
                check=True, cwd=REPO, capture_output=True,
            )  # fmt: skip
            for runtime in ("pytorch", "onnxruntime"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, runtime, str(folder), checkpoint, str(args.threads),
                     str(args.warmup), str(args.repeats)],
                    check=True, cwd=REPO, capture_output=True, text=True,
                )  # fmt: skip
                result = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{name:<14} {runtime:<14} {result['ms']:>11.2f} {result['peak_mb']:>12.0f}")


if __name__ == "__main__":
    main()
