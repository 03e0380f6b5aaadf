"""Load test of a gantk app: N concurrent gradio_client callers, R requests in all.

Starts the app as a user does (``python apps/NAME.py --port P``, its default checkpoint), then
``--callers`` threads, each with its own ``gradio_client.Client``, share ``--requests`` calls of the
endpoint. Reports errors, latency percentiles (client side: submit to result), throughput and the
server process's peak resident memory (VmHWM from /proc). Measures; asserts nothing.

    python benchmarks/app_load.py synthesis --callers 8 --requests 200
    python benchmarks/app_load.py superres --callers 8 --requests 200
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.apps import free_port, wait_until_up  # noqa: E402

# Each app's endpoint and a realistic request mix (arguments cycle per request).
WORKLOADS = {
    "synthesis": [
        ("/generate", ("7", 16, 0)),
        ("/generate", ("every class", 100, 1)),
        ("/walk", ("3", 0, 1, 10)),
        ("/every_class", (2, 8)),
    ],
    "superres": [  # the three shipped examples: 128x128, 112x75 and 150x100 inputs (Path: uploaded)
        ("/upscale", (path,)) for path in sorted((REPO / "apps" / "examples").glob("*.png"))
    ],
}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=sorted(WORKLOADS))
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "apps" / f"{args.app}.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, server)
        idle_mb = peak_rss_mb(server.pid)
        work = WORKLOADS[args.app]
        next_index, lock = [0], threading.Lock()
        latencies: list[float] = []
        errors: list[str] = []

        def caller() -> None:
            client = Client(url, verbose=False)
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= args.requests:
                    return
                api, call_args = work[i % len(work)]
                call_args = [handle_file(str(a)) if isinstance(a, Path) else a for a in call_args]
                start = time.perf_counter()
                try:
                    client.predict(*call_args, api_name=api)
                except Exception as exc:  # counted and reported, not raised: this is a measurement
                    with lock:
                        errors.append(f"{api}: {exc}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

        threads = [threading.Thread(target=caller) for _ in range(args.callers)]
        wall = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - wall
        peak_mb = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)

    ms = sorted(x * 1000 for x in latencies)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))] if ms else float("nan")  # noqa: E731
    print(f"app {args.app}: {args.callers} callers, {args.requests} requests, {len(errors)} errors")
    print(f"latency ms: p50 {statistics.median(ms):.0f}  p95 {p(0.95):.0f}  max {ms[-1]:.0f}")
    print(f"throughput {len(ms) / wall:.1f} requests/s over {wall:.1f} s")
    print(f"server memory: {idle_mb:.0f} MB after start, peak {peak_mb:.0f} MB (VmHWM)")
    for e in errors[:5]:
        print("error:", e)


if __name__ == "__main__":
    main()
