"""The synthesis app: through its API (gradio_client) and in a real headless browser (chromium)."""

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

synthesis = load_app("synthesis")
app_common = load_app("app_common")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_cgan_checkpoint(tmp_path_factory.mktemp("app") / "cgan")


@pytest.fixture(scope="module")
def client(checkpoint):
    from gradio_client import Client

    app = synthesis.build_app(synthesis.Synthesizer(checkpoint))
    port = free_port()
    synthesis.launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(url)
    yield Client(url, verbose=False)
    app.close()


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_same_seed_same_image_other_seed_other_image(client):
    first = _pixels(client.predict("light", 6, 5, api_name="/generate"))
    again = _pixels(client.predict("light", 6, 5, api_name="/generate"))
    other = _pixels(client.predict("light", 6, 6, api_name="/generate"))
    assert first.shape[1] >= synthesis.DISPLAY_WIDTH
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_identical_concurrent_requests_all_get_the_whole_image(client):
    """Many users asking for the same picture at once (the defaults): no truncated download, no error."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    # six users at once, each with their own connection asking five times (one gradio_client Client shared
    # by threads races in its own message handling and cancels a finished job: not the app's doing)
    clients = [Client(client.src, verbose=False) for _ in range(6)]
    with ThreadPoolExecutor(len(clients)) as pool:
        runs = list(pool.map(lambda c: [c.predict("dark", 16, 0, api_name="/generate") for _ in range(5)], clients))
    paths = [path for run in runs for path in run]
    first = _pixels(paths[0])
    assert all(np.array_equal(_pixels(p), first) for p in paths)


def test_every_view_answers(client):
    walk = _pixels(client.predict("dark", 1, 2, 5, api_name="/walk"))
    same = _pixels(client.predict(3, 4, api_name="/every_class"))
    every = _pixels(client.predict(synthesis.EVERY_CLASS, 6, 0, api_name="/generate"))
    # grids of 16 px images with 2 px padding, enlarged by a whole factor
    assert walk.shape[1] / walk.shape[0] == pytest.approx((2 + 5 * 18) / (2 + 18))
    assert same.shape[1] / same.shape[0] == pytest.approx((2 + 4 * 18) / (2 + 3 * 18))  # 3 classes, 4 codes
    assert every.shape[1] / every.shape[0] == pytest.approx((2 + 3 * 18) / (2 + 2 * 18))  # rows of 3 classes


@pytest.mark.parametrize(
    "args, api, message",
    [
        (
            ("zebra", 4, 0),
            "/generate",
            r"zebra is not in the list of choices: \['every class', 'dark', 'light', 'mid'\]",
        ),
        (("dark", 5000, 0), "/generate", "Value 5000 is greater than maximum value 100"),  # gradio's slider check
        (("dark", 4, -3), "/generate", "seed must be a whole number from 0 to 2147483647; got -3"),
        (
            ("dark", 4, "many"),
            "/generate",
            "Expected a `float | None`, but the value passed to the event handler was: 'many'",
        ),
        ((synthesis.EVERY_CLASS, 0, 1, 4), "/walk", "every class is not in the list of choices"),
        (("dark", 0, 10**12, 4), "/walk", "seed B must be a whole number from 0 to 2147483647"),
        (("dark", 0, 1, 99), "/walk", "Value 99 is greater than maximum value 16"),
    ],
)
def test_wrong_inputs_give_a_message_and_the_app_keeps_serving(client, args, api, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=api)
    assert _pixels(client.predict("mid", 2, 0, api_name="/generate")).size > 0


def test_arithmetic_tab_numbered_grid_click_and_result(client, checkpoint):
    """The tab's API: the numbered grid (4x4 cells of 16 px enlarged to 64), a result figure, and the
    expression's errors as messages; a click on a cell adds its index to the expression."""
    from types import SimpleNamespace

    import gradio as gr
    from gradio_client.exceptions import AppError

    grid = _pixels(client.predict("dark", 3, 16, api_name="/numbered"))
    assert grid.shape[:2] == (2 + 4 * 66, 2 + 4 * 66)
    figure = _pixels(client.predict("dark", 3, 16, "0,1 - 2 + 3,4", api_name="/arithmetic"))
    assert figure.shape[1] > figure.shape[0] > 0
    with pytest.raises(AppError, match="index 16 is outside the grid of 16 samples"):
        client.predict("dark", 3, 16, "0 + 16", api_name="/arithmetic")
    synth = synthesis.Synthesizer(checkpoint)
    with pytest.raises(gr.Error, match="pick a class, not 'every class'"):
        synth.arithmetic(synthesis.EVERY_CLASS, 3, 16, "0")
    click = SimpleNamespace(index=[66 + 10, 2 * 66 + 10])  # row 2, column 1 of 4 per row: cell 9
    assert synth.pick("", 16, click) == "9"
    assert synth.pick("0,1", 16, click) == "0,1,9" and synth.pick("0 - ", 16, click) == "0 - 9"
    assert synth.pick("0", 16, SimpleNamespace(index=[66, 10])) == "0"  # the padding: nothing added


def test_an_unconditional_model_is_served_and_one_that_does_not_sample_is_refused(tmp_path, image_folder):
    import gradio as gr

    from gantk.engine import train
    from gantk.io.checkpoint import export_generator
    from tests.helpers import tiny_dcgan
    from tests.helpers.sr import tiny_sr_run

    spec, plugin = tiny_dcgan(image_folder, train={"max_steps": 1})
    train(plugin, tmp_path / "run", spec)
    export_generator(tmp_path / "run", tmp_path / "dcgan")
    synth = synthesis.Synthesizer(tmp_path / "dcgan")
    assert synth.classes == [] and _pixels(synth.generate(synthesis.EVERY_CLASS, 4, 0)).size > 0
    assert _pixels(synth.walk(synthesis.EVERY_CLASS, 0, 1, 3)).size > 0
    assert _pixels(synth.arithmetic(synthesis.EVERY_CLASS, 0, 9, "0,1 - 2 + 3")).size > 0
    with pytest.raises(gr.Error, match="not class-conditional"):
        synth.every_class(0, 2)
    synthesis.build_app(synth)  # the UI builds without the class pickers and the every-class tab

    sr_run = tiny_sr_run(tmp_path / "sr", steps=1)
    with pytest.raises(GantkError, match="does not sample from noise"):
        synthesis.Synthesizer(sr_run)


@pytest.mark.skipif(
    not browser_available(),
    reason="no chromium here (apt-get install chromium); .ci/run installs it and sets GANTK_REQUIRE_BROWSER=1",
)
def test_browser_click_through_one_generation(serve_script, tmp_path):
    """Started as a user starts it (the shipped MNIST checkpoint, default host): pick 7, generate, see it."""
    from playwright.sync_api import sync_playwright

    assert (synthesis.DEFAULT_CHECKPOINT / "G.safetensors").is_file()
    url = serve_script("synthesis")
    assert urlparse(url).hostname == "127.0.0.1"
    outside = []
    with sync_playwright() as pw:
        browser, page = open_page(pw, outside, height=900)
        page.goto(url)
        page.locator("#class input").click()
        page.get_by_role("option", name="7", exact=True).click()
        page.locator("#generate").click()
        image = page.locator("#grid img")
        image.wait_for(state="visible", timeout=60_000)
        page.wait_for_function(
            "() => { const i = document.querySelector('#grid img'); return i && i.naturalWidth > 0 }"
        )
        assert image.evaluate("i => i.naturalWidth") >= synthesis.DISPLAY_WIDTH
        shot = tmp_path / "synthesis.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert Image.open(shot).size[0] == 1200
    assert outside == []  # no CDN, fonts or analytics: every request stayed on this machine
    if os.environ.get("GANTK_SCREENSHOTS"):  # refresh the README's screenshot: GANTK_SCREENSHOTS=docs/images
        target = REPO / os.environ["GANTK_SCREENSHOTS"] / "synthesis-app.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


@pytest.mark.skipif(
    not browser_available(),
    reason="no chromium here (apt-get install chromium); .ci/run installs it and sets GANTK_REQUIRE_BROWSER=1",
)
def test_browser_arithmetic_picks_cells_by_clicking(serve_script):
    """In a real browser a click lands on the cell under the pointer, whatever size the grid is shown at."""
    from playwright.sync_api import sync_playwright

    url = serve_script("synthesis")
    outside = []
    with sync_playwright() as pw:
        browser, page = open_page(pw, outside, height=1400)
        page.goto(url)
        page.get_by_role("tab", name="Arithmetic").click()
        page.locator("#ar-count input[type=number]").fill("16")
        page.locator("#ar-count input[type=number]").press("Enter")
        page.locator("#show-grid").click()
        image = page.locator("#numbered img")
        image.wait_for(state="visible", timeout=60_000)
        page.wait_for_function(
            "() => { const i = document.querySelector('#numbered img'); return i && i.naturalWidth > 0 }"
        )
        natural = image.evaluate("i => i.naturalWidth")
        for index, expected in ((9, "9"), (2, "9,2")):  # 4 per row; cells of 64 px and 2 px apart
            row, col = divmod(index, 4)
            box = image.bounding_box()
            scale = box["width"] / natural
            image.click(position={"x": (2 + col * 66 + 32) * scale, "y": (2 + row * 66 + 32) * scale})
            page.wait_for_function(
                f"() => document.querySelector('#expr textarea').value === '{expected}'", timeout=30_000
            )
        page.locator("#plus").click()
        page.wait_for_function("() => document.querySelector('#expr textarea').value === '9,2 + '")
        page.locator("#expr textarea").press_sequentially("5")
        page.locator("#compute").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('#result img'); return i && i.naturalWidth > 0 }", timeout=60_000
        )
        assert page.locator("#expr textarea").input_value() == "9,2 + 5"
        browser.close()
    assert outside == []


def test_scratch_files_are_pruned_by_age_and_a_reused_one_is_kept(checkpoint):
    import time

    synth = synthesis.Synthesizer(checkpoint)
    old = Path(synth.generate("dark", 2, 0))
    os.utime(old, (time.time() - 2 * app_common.CACHE_SECONDS,) * 2)
    assert Path(synth.generate("dark", 2, 0)) == old and old.exists()  # handed out again: touched, kept
    os.utime(old, (time.time() - 2 * app_common.CACHE_SECONDS,) * 2)
    synth.files.pruned_at = 0.0
    fresh = Path(synth.generate("dark", 2, 1))
    assert not old.exists() and fresh.exists()


def test_an_infogan_checkpoint_gets_a_picker_and_sliders_for_its_codes(tmp_path):
    import gradio as gr

    from gantk.engine import Trainer
    from tests.helpers import write_mnist
    from tests.helpers.zoo import tiny_infogan

    Trainer(tiny_infogan(write_mnist(tmp_path / "mnist"), train={"max_steps": 1}), tmp_path / "run").fit()
    synth = synthesis.Synthesizer(tmp_path / "run")
    assert [c.name for c in synth.codes] == ["c1", "c2", "c3"]
    import torch

    with torch.no_grad():  # after one step G's output is near 0 everywhere (N(0, 0.02) init): make it respond
        for p in synth.G.parameters():
            p.mul_(20)
    first = _pixels(synth.coded(0, 4, 3, 1.5, -2.0))
    assert np.array_equal(first, _pixels(synth.coded(0, 4, 3, 1.5, -2.0)))
    assert not np.array_equal(first, _pixels(synth.coded(0, 4, 3, -1.5, -2.0)))  # c2 moves the images
    for bad, match in (((0, 4, 10, 0, 0), "c1"), ((0, 4, 3, 2.5, 0), "c2 must be between"), ((0, 4, 3), "3 latent")):
        with pytest.raises(gr.Error, match=match):
            synth.coded(*bad)
    app = synthesis.build_app(synth)
    assert "coded" in {d.get("api_name") for d in app.config["dependencies"]}


def test_a_stylegan2_model_gets_the_truncation_view(image_folder, tmp_path):
    import gradio as gr

    from gantk.engine import train
    from gantk.io.checkpoint import export_generator
    from gantk.registry import PluginSpec
    from tests.helpers.zoo import tiny_stylegan2

    plugin = tiny_stylegan2(image_folder, train={"max_steps": 2})
    train(plugin, tmp_path / "run", PluginSpec.of(plugin))
    export_generator(tmp_path / "run", tmp_path / "sg")
    synth = synthesis.Synthesizer(tmp_path / "sg")
    mean, full = _pixels(synth.truncated(0, 4, 0.0)), _pixels(synth.truncated(0, 4, 1.0))
    assert mean.shape == full.shape and not np.array_equal(mean, full)
    with pytest.raises(gr.Error, match="between 0 and 1; got 1.5"):
        synth.truncated(0, 4, 1.5)
    app = synthesis.build_app(synth)
    assert "truncated" in {d.api_name for d in app.fns.values()}
