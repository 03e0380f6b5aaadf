"""gantk.console: long passes show progress on the console training uses, joining its live bar."""

from __future__ import annotations

import io

import torch
from rich.console import Console
from rich.progress import Progress

from gantk import console as gconsole
from gantk.metrics import FeatureSpace


def _capture(monkeypatch, terminal: bool) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(gconsole, "console", Console(file=out, force_terminal=terminal, width=200))
    return out


def test_off_a_terminal_a_pass_prints_its_start_rate_eta_and_end(monkeypatch):
    out = _capture(monkeypatch, terminal=False)
    monkeypatch.setattr(gconsole, "PLAIN_EVERY", 0.0)
    with gconsole.progress("features", 30) as advance:
        for _ in range(3):
            advance(10)
    lines = out.getvalue().splitlines()
    assert lines[0] == "features: 30 images"
    assert lines[1].startswith("features: 10/30 images, ") and "images/s, ETA 0:00:0" in lines[1]
    assert lines[-1].startswith("features: 30 images in 0:00:00 (") and lines[-1].endswith("images/s)")


def test_a_pass_joins_the_live_training_bar_and_leaves_it_as_it_was(monkeypatch):
    _capture(monkeypatch, terminal=True)
    bar = Progress(console=gconsole.console)
    bar.add_task("train", total=10, rate="", losses="")
    bar.start()
    gconsole.set_live(bar)
    try:
        with gconsole.progress("features", 4) as advance:
            assert [t.description for t in bar.tasks] == ["train", "features"]  # one display, two lines
            advance(4)
            assert bar.tasks[1].completed == 4 and bar.tasks[1].fields["rate"].endswith("images/s")
        assert [t.description for t in bar.tasks] == ["train"]
    finally:
        gconsole.set_live(None)
        bar.stop()
    with gconsole.progress("alone", 2) as advance:  # no live bar: a display of its own, stopped after
        advance(2)
    assert gconsole._live is None


def test_inception_passes_show_progress_and_pixel_passes_do_not(monkeypatch, fid_weights, tmp_path):
    out = _capture(monkeypatch, terminal=False)
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    FeatureSpace("", "cpu", tmp_path).features(images)
    assert out.getvalue() == ""
    space = FeatureSpace(fid_weights, "cpu", tmp_path)
    space.reference(images)
    space.features(images, batch=4)
    text = out.getvalue()
    assert "Inception features of real (reference) images: 6 images" in text
    assert "Inception features of generated images: 6 images in " in text
