"""The super-resolution app: through its API (gradio_client) and in a real headless browser (chromium)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from gantk.errors import GantkError
from tests.helpers import REPO
from tests.helpers.apps import browser_available, free_port, load_app, open_page, wait_until_up
from tests.helpers.labels import tiny_cgan_checkpoint
from tests.helpers.sr import tiny_sr_run
from tests.test_upscale import _png_claiming

superres = load_app("superres")
LIMIT = 40 * 40  # the test app's pixel limit


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_sr_run(tmp_path_factory.mktemp("superres"), steps=1)


@pytest.fixture(scope="module")
def client(checkpoint):
    from gradio_client import Client

    app = superres.build_app(superres.Upscaler(checkpoint, max_pixels=LIMIT))
    port = free_port()
    superres.launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, max_file_size=superres.MAX_UPLOAD)
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(url)
    yield Client(url, verbose=False)
    app.close()


def _call(client, path: Path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/upscale")


def test_upscale_gives_bicubic_and_model_at_4x_and_the_download_is_the_model(client, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    (bicubic, model), download = _call(client, tmp_path / "in.png")
    bic, sr, dl = (Image.open(p) for p in (bicubic, model, download))
    assert bic.size == sr.size == dl.size == (52, 36) and Path(download).name == "in-x4.png"
    assert np.array_equal(np.asarray(sr), np.asarray(dl))
    assert not np.array_equal(np.asarray(bic), np.asarray(sr))


def test_grey_stays_grey(client, tmp_path):
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "grey.png")
    (_, model), _ = _call(client, tmp_path / "grey.png")
    assert Image.open(model).mode == "L"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: Image.new("RGB", (41, 40)).save(p), "41x40 = 1,640 pixels; the limit is 1,600 pixels"),
        (lambda p: _png_claiming(p, 5000, 5000), "5000x5000 = 25,000,000 pixels; the limit is 1,600"),
        (lambda p: p.write_bytes(b"not an image at all"), "cannot be decoded"),
    ],
    ids=["over-the-limit", "bomb-header", "not-an-image"],
)
def test_bad_uploads_give_a_message_and_the_app_keeps_serving(client, tmp_path, make, message):
    from gradio_client.exceptions import AppError

    bad = tmp_path / "bad.png"
    make(bad)
    with pytest.raises(AppError, match=message) as info:
        _call(client, bad)
    assert "Traceback" not in str(info.value) and str(tmp_path) not in str(info.value)
    Image.new("RGB", (6, 6), (10, 200, 30)).save(tmp_path / "ok.png")
    assert Image.open(_call(client, tmp_path / "ok.png")[1]).size == (24, 24)


def test_a_model_that_is_not_super_resolution_is_refused(tmp_path):
    with pytest.raises(GantkError, match="not a super-resolution one"):
        superres.Upscaler(tiny_cgan_checkpoint(tmp_path / "cgan"))


def test_the_examples_are_shipped_small_and_documented():
    assert len(superres.EXAMPLES) >= 2
    readme = (REPO / "apps" / "examples" / "README.md").read_text()
    for example in superres.EXAMPLES:
        assert example.name in readme
        assert Image.open(example).width * Image.open(example).height <= superres.MAX_PIXELS


@pytest.mark.skipif(not browser_available(), reason="no chromium here; .ci/run installs it")
def test_browser_upscales_an_example(serve_script, tmp_path):
    """Started as a user starts it (the shipped checkpoint, default host): pick an example, upscale, see it."""
    from playwright.sync_api import sync_playwright

    assert (superres.DEFAULT_CHECKPOINT / "G.safetensors").is_file()
    url = serve_script("superres")
    assert urlparse(url).hostname == "127.0.0.1"
    outside = []
    with sync_playwright() as pw:
        browser, page = open_page(pw, outside, height=1000)
        page.goto(url)
        page.locator("#examples button").first.click()  # the first example
        page.locator("#source img").wait_for(state="visible", timeout=30_000)
        page.locator("#upscale").click()
        page.wait_for_function(
            "() => { const i = document.querySelectorAll('#compare img');"
            " return i.length >= 2 && [...i].every(x => x.complete && x.naturalWidth > 0) }",
            timeout=120_000,
        )
        widths = page.locator("#compare img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        page.locator("#result a").first.wait_for(state="visible", timeout=30_000)
        shot = tmp_path / "superres.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    example = Image.open(superres.EXAMPLES[0])
    assert set(widths) == {4 * example.width}  # both sides of the slider are the 4x image
    assert outside == []  # no CDN, fonts or analytics: every request stayed on this machine
    if os.environ.get("GANTK_SCREENSHOTS"):
        target = REPO / os.environ["GANTK_SCREENSHOTS"] / "superres-app.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


@pytest.mark.parametrize("mode", ["CMYK", "F", "LAB", "I"])
def test_uploads_in_any_mode_are_served_as_png(client, tmp_path, mode):
    """CMYK / F / LAB uploads failed after the model ran: 'cannot write mode CMYK as PNG' (issue 33)."""
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8))
    image = rgb.convert("L").convert(mode) if mode in ("F", "I") else rgb.convert(mode)
    image.save(tmp_path / "in.tif")
    (bicubic, model), download = _call(client, tmp_path / "in.tif")
    sizes = {Image.open(p).size for p in (bicubic, model, download)}
    assert sizes == {(44, 36)}
    assert Image.open(model).mode == ("L" if mode in ("F", "I") else "RGB")
