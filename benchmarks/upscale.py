"""Peak memory and time of ``gantk upscale`` on a large image: tiled (the default) against one piece.

Makes a W x H input (bicubic enlargement of a shipped example, so it looks like a photo), then runs
``gantk upscale`` in a fresh process per setting and reads that process's peak resident memory
(the child's own ``ru_maxrss``). Measures; asserts nothing.

    python benchmarks/upscale.py                       # 1000x750 -> 4000x3000, shipped checkpoint
    python benchmarks/upscale.py --tiles 128 0         # 0: the whole image as one tile
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent


# Runs gantk's CLI in the child and prints the child's own peak resident memory (KB) last.
CHILD = """
import resource, sys
from gantk.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def run_once(checkpoint: str, image: Path, tile: int, out: Path) -> tuple[float, float]:
    """Seconds and peak MB of one ``gantk upscale`` process (tile 0: one tile covering the image)."""
    side = tile or max(Image.open(image).size)
    args = ["upscale", checkpoint, str(image), "-o", str(out), "--device", "cpu", "--tile", str(side)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(REPO / "apps" / "checkpoints" / "srresnet-x4"))
    parser.add_argument("--size", type=int, nargs=2, default=(1000, 750), metavar=("W", "H"))
    parser.add_argument("--tiles", type=int, nargs="+", default=[128, 256], help="LR tile sides; 0 = untiled")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "input.png"
        Image.open(REPO / "apps" / "examples" / "chelsea-x0.25.png").convert("RGB").resize(
            tuple(args.size), Image.Resampling.BICUBIC
        ).save(image)
        print(f"input {args.size[0]}x{args.size[1]} -> output {4 * args.size[0]}x{4 * args.size[1]}")
        for tile in args.tiles:
            seconds, peak = run_once(args.checkpoint, image, tile, Path(tmp) / f"out{tile}.png")
            print(f"tile {tile or 'whole image'}: {seconds:.1f} s, peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
