"""4x super-resolution: a Gradio app over a gantk SR checkpoint (SRGAN plugin; SRResNet by default).

    python apps/superres.py                            # the shipped 4x model, http://127.0.0.1:7860
    python apps/superres.py --checkpoint runs/srgan    # any SR run or checkpoint folder

Upload an image (or pick an example) and get it 4x larger: a slider compares the model with bicubic
upscaling, and the full-size PNG can be downloaded. Grey stays grey, transparency is kept.

Limits, so one upload cannot take the server down: at most ``--max-pixels`` input pixels (checked from
the file header before anything is decoded, so a decompression bomb is refused cheaply) and
``MAX_UPLOAD`` bytes per file; two requests run at a time and at most 64 wait. Large images are
processed in tiles, with a progress bar. It runs on the CPU, binds 127.0.0.1 unless told otherwise,
sends no analytics and loads nothing from outside the app.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gradio as gr
import torch
from app_common import CACHE_SECONDS, IMAGE_BUTTONS, QUEUE, ScratchFiles, choose_port, launch

from gantk.data.images import open_image
from gantk.errors import GantkError
from gantk.upscale import bicubic_image, displayable, load_upscaler, upscale_image

HERE = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = HERE / "checkpoints" / "srresnet-x4"
DEFAULT_PORT = 7861  # the other app takes 7860: both can run side by side
EXAMPLES = sorted((HERE / "examples").glob("*.png"))
MAX_PIXELS = 512 * 512  # input pixels per request: about 10 s on 2 CPU cores with the shipped model
MAX_PIXELS_LIMIT = 8192 * 8192  # the most --max-pixels may allow (a 4x output of 1 GB per request)
MAX_UPLOAD = "10mb"  # per uploaded file (Gradio refuses larger uploads before they reach the app)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def unopened_upload(**kwargs) -> gr.Image:
    """A ``gr.Image`` upload that hands the app the file's path, unopened.

    ``gr.Image`` runs Pillow on every upload before the app sees it, so a broken file fails with a
    message naming Gradio's temporary path, and a huge one is parsed by Gradio first. This one leaves
    every check to :meth:`Upscaler.upscale`. (An instance attribute rather than a subclass: Gradio
    writes a ``.pyi`` stub beside the source of every Component subclass.)
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)

    def preprocess(payload):
        if payload is None:
            return None
        if not payload.path:
            raise gr.Error("the upload arrived without a file; upload the image again.")
        return payload.path

    image.preprocess = preprocess
    return image


class Upscaler:
    """A loaded super-resolution generator and the one request the app serves."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", max_pixels: int = MAX_PIXELS) -> None:
        self.plugin, self.G = load_upscaler(checkpoint, device)
        self.scale = self.plugin.cfg.model.scale
        self.max_pixels = max_pixels
        self.files = ScratchFiles("gantk-superres-")

    def upscale(self, path: str | None, progress: gr.Progress = gr.Progress()):  # noqa: B008 (Gradio's idiom)
        """Returns ((bicubic, model) for the slider, the model's PNG for download)."""
        if not path:
            raise gr.Error("upload an image first (PNG, JPEG, WebP, ...), or pick an example.")
        name = Path(path).name
        try:
            size = os.path.getsize(path)
        except OSError:
            raise gr.Error(f"the uploaded file {name} cannot be read.") from None
        if size > MAX_UPLOAD_BYTES:
            raise gr.Error(f"{name} is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.1f} MB.")
        try:
            image = displayable(open_image(path, self.max_pixels))  # CMYK, LAB, float: shown and saved as PNG
        except GantkError as exc:
            raise gr.Error(str(exc).replace(str(Path(path).parent) + os.sep, "")) from None
        progress(0, desc="upscaling")
        result = upscale_image(
            self.plugin, self.G, image, lambda done, total: progress((done, total), desc="upscaling", unit="tiles")
        )
        bicubic = bicubic_image(image, self.scale)
        sr_file = self.files.save_png(result, f"{Path(name).stem[:64] or 'image'}-x{self.scale}.png")
        return (self.files.save_png(bicubic), sr_file), sr_file


def build_app(up: Upscaler) -> gr.Blocks:
    """The Gradio UI; clients call the API name ``/upscale`` with one image file."""
    side = int(up.max_pixels**0.5)
    with gr.Blocks(
        title="gantk: 4x super-resolution", analytics_enabled=False, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)
    ) as app:
        gr.Markdown(
            f"## {up.scale}x super-resolution\n{up.plugin.description}  \n"
            f"Inputs up to {up.max_pixels:,} pixels (about {side}x{side}); the slider compares bicubic (left) "
            "with the model (right)."
        )
        with gr.Row():
            source = unopened_upload(label="low-resolution input", sources=["upload"], elem_id="source")
            slider = gr.ImageSlider(
                label="bicubic | model", type="filepath", interactive=False, elem_id="compare", buttons=IMAGE_BUTTONS
            )
        go = gr.Button("Upscale", variant="primary", elem_id="upscale")
        result = gr.File(label=f"{up.scale}x result (PNG)", interactive=False, elem_id="result")
        if EXAMPLES:
            gr.Examples(
                [[str(p)] for p in EXAMPLES],
                inputs=[source],
                label="examples (public domain / CC0)",
                elem_id="examples",
            )
        go.click(up.upscale, [source], [slider, result], api_name="upscale")
    return app.queue(**QUEUE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="4x super-resolution with a gantk SR checkpoint.")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="SR run or checkpoint folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, help="port to serve on (default: 7861, or the next free one above it)")
    parser.add_argument(
        "--max-pixels", type=int, default=MAX_PIXELS, help=f"largest input, in pixels (default {MAX_PIXELS:,})"
    )
    args = parser.parse_args(argv)
    port = choose_port(args.host, args.port, DEFAULT_PORT, "super-resolution app")
    if not 1 <= args.max_pixels <= MAX_PIXELS_LIMIT:
        print(
            f"super-resolution app: error: --max-pixels must be between 1 and {MAX_PIXELS_LIMIT:,}; got "
            f"{args.max_pixels:,}.",
            file=sys.stderr,
        )
        return 2
    torch.set_grad_enabled(False)
    try:
        up = Upscaler(args.checkpoint, max_pixels=args.max_pixels)
    except GantkError as exc:
        print(f"super-resolution app: error: {exc}", file=sys.stderr)
        return 2
    launch(build_app(up), args.host, port, max_file_size=MAX_UPLOAD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
