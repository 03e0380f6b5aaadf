"""``gantk push`` and ``hf://NAME[@revision]`` against a stand-in Hub on 127.0.0.1 (tests/helpers/hub_server.py),
with huggingface_hub pointed at it by HF_ENDPOINT, as a user's command would run: a subprocess.

Download is tested through the endpoints the library uses for it (the file list, HEAD and GET of each
file). Upload is tested as far as a local server can: repository creation, the card's metadata check, the
pre-upload query and the NDJSON commit with the files inline; the large-file transfer the real Hub uses for
big files (LFS, Xet) is not served, and the stand-in answers every file as small."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from gantk.engine import Trainer
from tests.helpers import REPO, tiny_dcgan, write_image_folder
from tests.helpers.hub_server import FakeHub

pytest.importorskip("huggingface_hub")


def gantk_env(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gantk", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=300
    )


@pytest.fixture
def hub(tmp_path):
    with FakeHub() as server:
        server.env = {
            **os.environ,
            "COLUMNS": "200",
            "HF_ENDPOINT": server.url,
            "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
            "HF_TOKEN": "hf_local_test_token",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        yield server


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    _, plugin = tiny_dcgan(
        write_image_folder(root / "img", n=16, size=16),
        train={"max_steps": 4, "sample_every": 2, "eval_every": 2},
        eval={"fid_samples": 8},
    )
    Trainer(plugin, root / "run").fit()
    return root / "run"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_uploads_the_export_and_a_card_and_hf_loads_it_back_verified(hub, dcgan_run, tmp_path):
    pushed = gantk_env(hub.env, "push", str(dcgan_run), "--repo", "me/tiny-dcgan", "-o", str(tmp_path / "kept"))
    assert pushed.returncode == 0, pushed.stderr
    assert "load it with hf://me/tiny-dcgan" in pushed.stderr and "HTTP Request" not in pushed.stderr
    commit, files = hub.repos["me/tiny-dcgan"][-1]
    assert sorted(files) == [
        "G.safetensors", "README.md", "config.json", "manifest.json", "samples.png", "training-config.yaml",
    ]  # fmt: skip
    assert all(files[name] == (tmp_path / "kept" / name).read_bytes() for name in files)  # -o kept what went up
    card = files["README.md"].decode()
    assert card.startswith("---\nlibrary_name: gantk\n") and "pipeline_tag: unconditional-image-generation" in card
    assert "| plugin | `dcgan` (built-in) |" in card and "4 steps at batch 8" in card and "16x16" in card
    assert "| kid_pixels |" in card and "- real_sha256: `" in card  # the metric with its protocol
    assert "![samples from step 4](samples.png)" in card and "gantk train dcgan --config training-config.yaml" in card
    assert files["samples.png"] == (dcgan_run / "samples" / "step_00000004.png").read_bytes()

    out = tmp_path / "grid.png"
    sampled = gantk_env(hub.env, "sample", "hf://me/tiny-dcgan", "-n", "4", "--seed", "3", "-o", str(out))
    assert sampled.returncode == 0, sampled.stderr
    local = gantk_env(
        hub.env, "sample", str(tmp_path / "kept"), "-n", "4", "--seed", "3", "-o", str(tmp_path / "l.png")
    )
    assert local.returncode == 0 and out.read_bytes() == (tmp_path / "l.png").read_bytes()
    snapshot = tmp_path / "hub-cache" / "models--me--tiny-dcgan" / "snapshots" / commit
    assert _sha(snapshot / "G.safetensors") == hashlib.sha256(files["G.safetensors"]).hexdigest()
    assert not (snapshot / "README.md").exists()  # only what the manifest lists is downloaded
    assert all(r.split()[1].startswith(("/api/", "/me/")) for r in hub.requests)


def test_a_revision_picks_that_commit(hub, dcgan_run, tmp_path):
    assert gantk_env(hub.env, "push", str(dcgan_run), "--repo", "me/m").returncode == 0
    first = hub.repos["me/m"][-1][0]
    (tmp_path / "newer").mkdir()
    hub.add_commit("me/m", {"G.safetensors": b"not the weights"})  # a later, broken commit on main
    broken = gantk_env(hub.env, "sample", "hf://me/m", "-n", "2", "-o", str(tmp_path / "a.png"))
    assert broken.returncode == 2 and "is corrupt" in broken.stderr and "manifest.json" in broken.stderr
    pinned = gantk_env(hub.env, "sample", f"hf://me/m@{first}", "-n", "2", "-o", str(tmp_path / "b.png"))
    assert pinned.returncode == 0, pinned.stderr


def test_an_onnx_export_goes_up_and_comes_back_through_the_hub_cache(hub, dcgan_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pushed = gantk_env(hub.env, "push", str(dcgan_run), "--repo", "me/onnx", "--format", "onnx")
    assert pushed.returncode == 0, pushed.stderr
    assert {"export.json", "generator.onnx"} <= set(hub.repos["me/onnx"][-1][1])
    sampled = gantk_env(hub.env, "sample", "hf://me/onnx", "-n", "2", "-o", str(tmp_path / "o.png"))
    assert sampled.returncode == 0, sampled.stderr


def test_a_repository_with_a_pickle_is_refused_before_anything_is_downloaded(hub, tmp_path):
    manifest = json.dumps({"sha256": {"config.json": "0" * 64}}).encode()
    hub.add_commit("evil/model", {"manifest.json": manifest, "config.json": b"{}", "pytorch_model.bin": b"\x80\x04"})
    out = gantk_env(hub.env, "sample", "hf://evil/model", "-o", str(tmp_path / "x.png"))
    assert out.returncode == 2 and "pytorch_model.bin: pickle files" in out.stderr and "Traceback" not in out.stderr
    assert not [r for r in hub.requests if "/resolve/" in r]
    missing = gantk_env(hub.env, "sample", "hf://nobody/nothing", "-o", str(tmp_path / "y.png"))
    assert missing.returncode == 2 and "hf://nobody/nothing" in missing.stderr and "Traceback" not in missing.stderr
    bad = gantk_env(hub.env, "sample", "hf://just-a-name", "-o", str(tmp_path / "z.png"))
    assert bad.returncode == 2 and "hf://OWNER/NAME" in bad.stderr
