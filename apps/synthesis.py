"""Synthesis from noise: a Gradio app over a gantk checkpoint that samples (CGAN, DCGAN, third-party).

    python apps/synthesis.py                            # the shipped MNIST CGAN, http://127.0.0.1:7860
    python apps/synthesis.py --checkpoint runs/cgan     # any CGAN run or checkpoint folder
    python apps/synthesis.py --checkpoint runs/dcgan    # an unconditional model: no class to pick

Views of one generator G(z) or G(z, y):

* **Generate**: a grid from a seed (of one class, or every class in turn).
* **Latent walk**: z moving from one seed's code to another's (``gantk sample --interpolate``); with a
  class-conditional model the class stays put while the style morphs.
* **Same z, every class** (class-conditional models): each column keeps one z while the label runs down
  the rows; stroke, slant and thickness stay, the class changes.
* **Arithmetic**: vector arithmetic on z (``gantk arithmetic``, DCGAN paper figure 7): click cells of a
  numbered grid (or type their indices) to make groups, join groups with + and -.
* **Latent codes** (models with named codes, InfoGAN): a picker for the categorical code and a slider per
  continuous code; every sample keeps those values while its noise differs.

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

from gantk import arithmetic as zmath
from gantk.errors import GantkError
from gantk.io.generators import load_generator
from gantk.io.images import grid_image
from gantk.plugin import generate_in_chunks
from gantk.sampling import sample, sample_per_class, walk_between_seeds

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "cgan-mnist"
DEFAULT_PORT = 7860  # the other app takes 7861: both can run side by side
EVERY_CLASS = "every class"
MAX_IMAGES = 100  # per request: keeps one request to well under a second on a CPU
MAX_WALK_STEPS = 16
MAX_SEED = 2**31 - 1
DISPLAY_WIDTH = 512  # grids are enlarged (nearest) to at least this many pixels across
CELL_SIDE = 64  # numbered-grid cells are enlarged to at least this, so that their index fits
MAX_EXPRESSION = 200  # characters
CODE_SPAN = 2.0  # continuous codes' sliders reach beyond the [-1, 1] they trained on, as InfoGAN's figures do


class Synthesizer:
    """A loaded generator that samples from noise and the views the app shows."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu") -> None:
        self.plugin, self.G = load_generator(checkpoint, device, task="sample")
        self.device = device
        self.files = ScratchFiles("gantk-synthesis-")
        self.classes = list(self.plugin.class_names())
        self.codes = self.plugin.latent_codes()
        side = self.plugin.cfg.data.image_size
        self.cell = side * zmath.enlargement(side, CELL_SIDE)  # a numbered-grid cell, in pixels

    # ---- input checks: the API is reachable without the UI, so every value is checked here -------
    def _label(self, label: str | int) -> int | None:
        if label == EVERY_CLASS or not self.classes:  # an unconditional model has no class to pick
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
        """z moves from ``seed_a``'s code to ``seed_b``'s in ``steps`` images (in one class, if any)."""
        conditions = self._one_class(label, "a latent walk keeps one class fixed")
        a, b = self._int(seed_a, "seed A", 0, MAX_SEED), self._int(seed_b, "seed B", 0, MAX_SEED)
        steps = self._int(steps, "steps", 2, MAX_WALK_STEPS)
        images = walk_between_seeds(self.plugin, self.G, a, b, steps, self.device, **conditions)
        return self.files.save_png(grid_image(images, nrow=steps, min_width=DISPLAY_WIDTH))

    def _one_class(self, label: str, why: str) -> dict:
        """The conditions of a view that keeps one class (none for an unconditional model)."""
        y = self._label(label)
        if y is None and self.classes:
            raise gr.Error(f"{why}: pick a class, not 'every class'.")
        return {} if y is None else {"label": y}

    def numbered(self, label: str, seed, count):
        """The grid the arithmetic picks from: ``count`` samples of ``seed``, each cell showing its index."""
        conditions = self._one_class(label, "arithmetic moves z within one class")
        n = self._int(count, "grid size", 2, MAX_IMAGES)
        seed = self._int(seed, "seed", 0, MAX_SEED)
        images = sample(self.plugin, self.G, n, seed, self.device, **conditions)
        return self.files.save_png(zmath.numbered_grid(images, CELL_SIDE))

    def pick(self, expr: str, count, evt: gr.SelectData) -> str:
        """A click on the numbered grid appends that cell's index to the expression (a comma within a group)."""
        n = self._int(count, "grid size", 2, MAX_IMAGES)
        index = zmath.cell_at(evt.index[0], evt.index[1], n, self.cell, self.cell)
        if index is None:
            return expr
        text = (expr or "").rstrip()
        joiner = "," if text and text[-1].isdigit() else (" " if text else "")
        return f"{text}{joiner}{index}"

    def arithmetic(self, label: str, seed, count, expr: str):
        """The figure of ``gantk arithmetic``: groups averaged and combined, the result and its variations."""
        conditions = self._one_class(label, "arithmetic moves z within one class")
        n = self._int(count, "grid size", 2, MAX_IMAGES)
        seed = self._int(seed, "seed", 0, MAX_SEED)
        if not isinstance(expr, str) or len(expr) > MAX_EXPRESSION:
            raise gr.Error(f"the expression must be text of at most {MAX_EXPRESSION} characters.")
        try:
            result = zmath.arithmetic(self.plugin, self.G, expr, seed, n, self.device, **conditions)
        except GantkError as exc:
            raise gr.Error(str(exc).replace("--expr", "the expression")) from None
        return self.files.save_png(zmath.figure(result, CELL_SIDE))

    def coded(self, seed, count, *values):
        """``count`` samples with each latent code at its picker's or slider's value (in ``latent_codes`` order)."""
        if len(values) != len(self.codes):
            raise gr.Error(f"this model has {len(self.codes)} latent codes; got {len(values)} values.")
        seed = self._int(seed, "seed", 0, MAX_SEED)
        n = self._int(count, "number of images", 1, MAX_IMAGES)
        fixed = {}
        for code, value in zip(self.codes, values, strict=True):
            if code.kind == "categorical":
                fixed[code.name] = self._int(value, code.name, 0, code.values - 1)
            else:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise gr.Error(f"{code.name} must be a number; got {value!r}.") from None
                if not -CODE_SPAN <= number <= CODE_SPAN:
                    raise gr.Error(f"{code.name} must be between {-CODE_SPAN} and {CODE_SPAN}; got {number}.")
                fixed[code.name] = number
        inputs = self.plugin.coded_inputs(n, torch.Generator().manual_seed(seed), fixed)
        images = generate_in_chunks(self.plugin, self.G, inputs, self.device)
        return self.files.save_png(grid_image(images, min_width=DISPLAY_WIDTH))

    def truncated(self, seed, count, psi):
        """``count`` samples with each w pulled towards the mean w by ``psi`` (style-based models: 1 none,
        0 every sample the mean image); the same seed at several psi shows the trade of variety for quality."""
        if "truncation" not in self.plugin.sample_options:
            raise gr.Error(f"this {self.plugin.name} model has no mean w to truncate towards.")
        seed = self._int(seed, "seed", 0, MAX_SEED)
        n = self._int(count, "number of images", 1, MAX_IMAGES)
        try:
            psi = float(psi)
        except (TypeError, ValueError):
            raise gr.Error(f"truncation must be a number; got {psi!r}.") from None
        if not 0.0 <= psi <= 1.0:
            raise gr.Error(f"truncation must be between 0 and 1; got {psi}.")
        images = sample(self.plugin, self.G, n, seed, self.device, truncation=psi)
        return self.files.save_png(grid_image(images, min_width=DISPLAY_WIDTH))

    def every_class(self, seed, count):
        """Rows are classes, columns are ``count`` latent codes shared by every row."""
        if not self.classes:
            raise gr.Error("this model is not class-conditional: it has no classes to show.")
        seed = self._int(seed, "seed", 0, MAX_SEED)
        n = self._int(count, "number of codes", 1, max(1, MAX_IMAGES // len(self.classes)))
        images = sample_per_class(self.plugin, self.G, n, seed, self.device, same_z=True)
        return self.files.save_png(grid_image(images, nrow=n, min_width=DISPLAY_WIDTH))


def build_app(synth: Synthesizer) -> gr.Blocks:
    """The Gradio UI; the API names (``/generate``, ``/walk``, ``/every_class``, ``/coded``, ``/truncated``,
    ``/numbered``, ``/arithmetic``) are what clients call. Without classes the class pickers are hidden (and ignored)."""
    classes = [*synth.classes]
    conditional = bool(classes)
    choices = classes or [EVERY_CLASS]
    with gr.Blocks(
        title="gantk: synthesis",
        analytics_enabled=False,
        delete_cache=(CACHE_SECONDS, CACHE_SECONDS),  # Gradio's copies of the images: bounded too
    ) as app:
        about = f"{len(classes)} classes: {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}"
        gr.Markdown(
            f"## {'Label-conditioned synthesis' if conditional else 'Synthesis'}\n{synth.plugin.description}  \n"
            + (about if conditional else "An unconditional model: every image comes from its seed alone.")
        )
        with gr.Tab("Generate"):
            with gr.Row():
                label = gr.Dropdown(
                    [EVERY_CLASS, *classes] if conditional else choices,
                    value=choices[0],
                    label="class",
                    elem_id="class",
                    visible=conditional,
                )
                count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="number of images", elem_id="count")
                seed = gr.Number(0, precision=0, label="seed", elem_id="seed")
            go = gr.Button("Generate", variant="primary", elem_id="generate")
            grid = gr.Image(label="samples", type="filepath", elem_id="grid", interactive=False, buttons=IMAGE_BUTTONS)
            go.click(synth.generate, [label, count, seed], grid, api_name="generate")
        with gr.Tab("Latent walk"):
            with gr.Row():
                walk_label = gr.Dropdown(choices, value=choices[0], label="class", visible=conditional)
                seed_a = gr.Number(0, precision=0, label="seed A")
                seed_b = gr.Number(1, precision=0, label="seed B")
                steps = gr.Slider(2, MAX_WALK_STEPS, value=10, step=1, label="steps")
            walk_go = gr.Button("Walk", variant="primary")
            walk_out = gr.Image(label="walk", type="filepath", interactive=False, buttons=IMAGE_BUTTONS)
            walk_go.click(synth.walk, [walk_label, seed_a, seed_b, steps], walk_out, api_name="walk")
        if conditional:
            with gr.Tab("Same z, every class"):
                gr.Markdown("Each column keeps one latent code z; each row is one class.")
                with gr.Row():
                    same_seed = gr.Number(0, precision=0, label="seed")
                    codes = gr.Slider(1, max(1, MAX_IMAGES // len(classes)), value=8, step=1, label="number of codes")
                same_go = gr.Button("Show", variant="primary")
                same_out = gr.Image(
                    label="same z, every class", type="filepath", interactive=False, buttons=IMAGE_BUTTONS
                )
                same_go.click(synth.every_class, [same_seed, codes], same_out, api_name="every_class")
        if synth.codes:
            with gr.Tab("Latent codes"):
                gr.Markdown(
                    "Each latent code is fixed at the value chosen here; only the noise differs between samples. "
                    "Continuous codes trained on [-1, 1]; the sliders go to +-2, as the InfoGAN paper's figures do."
                )
                controls = []
                with gr.Row():
                    for code in synth.codes:
                        if code.kind == "categorical":
                            controls.append(
                                gr.Dropdown(list(range(code.values)), value=0, label=f"{code.name} (categorical)")
                            )
                        else:
                            controls.append(gr.Slider(-CODE_SPAN, CODE_SPAN, value=0.0, step=0.1, label=code.name))
                with gr.Row():
                    code_seed = gr.Number(0, precision=0, label="seed")
                    code_count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="number of images")
                code_go = gr.Button("Generate", variant="primary")
                code_out = gr.Image(label="samples", type="filepath", interactive=False, buttons=IMAGE_BUTTONS)
                code_go.click(synth.coded, [code_seed, code_count, *controls], code_out, api_name="coded")
        if "truncation" in synth.plugin.sample_options:
            with gr.Tab("Truncation"):
                gr.Markdown("Each w is pulled towards the mean w: 1 keeps every sample's own, 0 gives the mean image.")
                with gr.Row():
                    trunc_seed = gr.Number(0, precision=0, label="seed")
                    trunc_count = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="number of images")
                    psi = gr.Slider(0.0, 1.0, value=0.7, step=0.05, label="truncation psi", elem_id="psi")
                trunc_go = gr.Button("Generate", variant="primary")
                trunc_out = gr.Image(label="samples", type="filepath", interactive=False, buttons=IMAGE_BUTTONS)
                trunc_go.click(synth.truncated, [trunc_seed, trunc_count, psi], trunc_out, api_name="truncated")
        with gr.Tab("Arithmetic"):
            gr.Markdown(
                "Vector arithmetic on z (DCGAN paper, figure 7). Show the numbered grid, click cells to add "
                "their index to the expression (or type indices), start the next group with **+** or **-**. "
                "Each group's z is averaged; the result is shown with variations of jittered z."
            )
            with gr.Row():
                ar_label = gr.Dropdown(choices, value=choices[0], label="class", visible=conditional)
                ar_seed = gr.Number(3, precision=0, label="seed", elem_id="ar-seed")
                ar_count = gr.Slider(2, MAX_IMAGES, value=64, step=1, label="grid size", elem_id="ar-count")
            show = gr.Button("Show numbered grid", elem_id="show-grid")
            numbered = gr.Image(
                label="numbered grid: click cells", type="filepath", interactive=False, elem_id="numbered"
            )
            expr = gr.Textbox(label="expression", placeholder="12,17,40 - 5,9,33 + 22,31,50", elem_id="expr")
            with gr.Row():
                plus, minus = gr.Button("+ group", elem_id="plus"), gr.Button("- group", elem_id="minus")
                clear = gr.Button("clear")
            compute = gr.Button("Compute", variant="primary", elem_id="compute")
            result = gr.Image(
                label="result", type="filepath", interactive=False, elem_id="result", buttons=IMAGE_BUTTONS
            )
            show.click(synth.numbered, [ar_label, ar_seed, ar_count], numbered, api_name="numbered")
            numbered.select(synth.pick, [expr, ar_count], expr, api_name=False)
            # in the browser alone: no round trip that could land after the user typed on
            plus.click(None, expr, expr, js="(e) => (e || '').trimEnd() + ' + '", api_name=False)
            minus.click(None, expr, expr, js="(e) => (e || '').trimEnd() + ' - '", api_name=False)
            clear.click(None, None, expr, js="() => ''", api_name=False)
            compute.click(synth.arithmetic, [ar_label, ar_seed, ar_count, expr], result, api_name="arithmetic")
    return app.queue(**QUEUE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Synthesis with a gantk checkpoint that samples (CGAN, DCGAN, InfoGAN, StyleGAN2)."
    )
    parser.add_argument(
        "--checkpoint", default=str(DEFAULT_CHECKPOINT), help="run or checkpoint folder (default: the MNIST CGAN)"
    )
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
