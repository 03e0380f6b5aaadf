"""Label-conditioned synthesis: a Gradio app over a class-conditional gantk checkpoint (CGAN).

    python apps/synthesis.py                          # the shipped MNIST CGAN, http://127.0.0.1:7860
    python apps/synthesis.py --checkpoint runs/cgan   # any CGAN run or checkpoint folder

Three views of one generator G(z, y):

* **Generate**: a grid of one class (or every class in turn) from a seed.
* **Latent walk**: one class, z moving from one seed's code to another's; the digit's style morphs while
  its class stays put.
* **Same z, every class**: each column keeps one z while the label runs down the rows; stroke, slant and
  thickness stay, the class changes. The label and the latent code carry different things.

It runs on the CPU, binds 127.0.0.1 unless told otherwise, sends no analytics, and loads no script, font
or stylesheet from outside the app itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gradio as gr
import torch
from app_common import CACHE_SECONDS, IMAGE_BUTTONS, QUEUE, ScratchFiles, choose_port, launch, whole_number

from gantk.errors import GantkError
from gantk.io.generators import load_generator
from gantk.io.images import grid_image
from gantk.sampling import sample, sample_per_class, walk_between_seeds

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "cgan-mnist"
DEFAULT_PORT = 7860  # the other app takes 7861: both can run side by side
EVERY_CLASS = "every class"
MAX_IMAGES = 100  # per request: keeps one request to well under a second on a CPU
MAX_WALK_STEPS = 16
MAX_SEED = 2**31 - 1
DISPLAY_WIDTH = 512  # grids are enlarged (nearest) to at least this many pixels across


class Synthesizer:
    """A loaded class-conditional generator and the three views the app shows."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu") -> None:
        self.plugin, self.G = load_generator(checkpoint, device)
        self.device = device
        self.files = ScratchFiles("gantk-synthesis-")
        self.classes = list(self.plugin.class_names())
        if not self.classes:
            raise GantkError(
                f"{checkpoint} holds a {self.plugin.name} model, which is not class-conditional; the synthesis "
                "app needs one trained with a label (for example gantk train plugins/cgan)."
            )

    # ---- input checks: the API is reachable without the UI, so every value is checked here -------
    def _label(self, label: str | int) -> int | None:
        if label == EVERY_CLASS:
            return None
        if str(label) not in self.classes:
            raise gr.Error(f"class {label!r} is not one of this model's classes: {', '.join(self.classes)}.")
        return self.classes.index(str(label))

    _int = staticmethod(whole_number)

    # ---- views ------------------------------------------------------------------------------------
    def generate(self, label: str, count, seed):
        """``count`` images of one class, or of every class in turn, from ``seed``."""
        y = self._label(label)
        n = self._int(count, "number of images", 1, MAX_IMAGES)
        seed = self._int(seed, "seed", 0, MAX_SEED)
        conditions = {} if y is None else {"label": y}
        images = sample(self.plugin, self.G, n, seed, self.device, **conditions)
        nrow = len(self.classes) if y is None and n >= len(self.classes) else None
        return self.files.save_png(grid_image(images, nrow=nrow, min_width=DISPLAY_WIDTH))

    def walk(self, label: str, seed_a, seed_b, steps):
        """One class; z moves from ``seed_a``'s code to ``seed_b``'s in ``steps`` images."""
        y = self._label(label)
        if y is None:
            raise gr.Error("a latent walk keeps one class fixed: pick a class, not 'every class'.")
        a, b = self._int(seed_a, "seed A", 0, MAX_SEED), self._int(seed_b, "seed B", 0, MAX_SEED)
        steps = self._int(steps, "steps", 2, MAX_WALK_STEPS)
        images = walk_between_seeds(self.plugin, self.G, a, b, steps, self.device, label=y)
        return self.files.save_png(grid_image(images, nrow=steps, min_width=DISPLAY_WIDTH))

    def every_class(self, seed, count):
        """Rows are classes, columns are ``count`` latent codes shared by every row."""
        seed = self._int(seed, "seed", 0, MAX_SEED)
        n = self._int(count, "number of codes", 1, max(1, MAX_IMAGES // len(self.classes)))
        images = sample_per_class(self.plugin, self.G, n, seed, self.device, same_z=True)
        return self.files.save_png(grid_image(images, nrow=n, min_width=DISPLAY_WIDTH))


def build_app(synth: Synthesizer) -> gr.Blocks:
    """The Gradio UI; the API names (``/generate``, ``/walk``, ``/every_class``) are what clients call."""
    classes = [*synth.classes]
    with gr.Blocks(
        title="gantk: label-conditioned synthesis",
        analytics_enabled=False,
        delete_cache=(CACHE_SECONDS, CACHE_SECONDS),  # Gradio's copies of the images: bounded too
    ) as app:
        gr.Markdown(
            f"## Label-conditioned synthesis\n{synth.plugin.description}  \n"
            f"{len(classes)} classes: {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}"
        )
        with gr.Tab("Generate"):
            with gr.Row():
                label = gr.Dropdown([EVERY_CLASS, *classes], value=classes[0], label="class", elem_id="class")
                count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="number of images", elem_id="count")
                seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
            go = gr.Button("Generate", variant="primary", elem_id="generate")
            grid = gr.Image(label="samples", type="filepath", elem_id="grid", interactive=False, buttons=IMAGE_BUTTONS)
            go.click(synth.generate, [label, count, seed], grid, api_name="generate")
        with gr.Tab("Latent walk"):
            with gr.Row():
                walk_label = gr.Dropdown(classes, value=classes[0], label="class")
                seed_a = gr.Number(0, precision=0, label="seed A")
                seed_b = gr.Number(1, precision=0, label="seed B")
                steps = gr.Slider(2, MAX_WALK_STEPS, value=10, step=1, label="steps")
            walk_go = gr.Button("Walk", variant="primary")
            walk_out = gr.Image(label="walk", type="filepath", interactive=False, buttons=IMAGE_BUTTONS)
            walk_go.click(synth.walk, [walk_label, seed_a, seed_b, steps], walk_out, api_name="walk")
        with gr.Tab("Same z, every class"):
            gr.Markdown("Each column keeps one latent code z; each row is one class.")
            with gr.Row():
                same_seed = gr.Number(0, precision=0, label="seed")
                codes = gr.Slider(1, max(1, MAX_IMAGES // len(classes)), value=8, step=1, label="number of codes")
            same_go = gr.Button("Show", variant="primary")
            same_out = gr.Image(label="same z, every class", type="filepath", interactive=False, buttons=IMAGE_BUTTONS)
            same_go.click(synth.every_class, [same_seed, codes], same_out, api_name="every_class")
    return app.queue(**QUEUE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Label-conditioned synthesis with a gantk CGAN checkpoint.")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="CGAN run or checkpoint folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, help="port to serve on (default: 7860, or the next free one above it)")
    args = parser.parse_args(argv)
    port = choose_port(args.host, args.port, DEFAULT_PORT, "synthesis app")
    torch.set_grad_enabled(False)
    try:
        synth = Synthesizer(args.checkpoint)
    except GantkError as exc:
        print(f"synthesis app: error: {exc}", file=sys.stderr)
        return 2
    launch(build_app(synth), args.host, port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
