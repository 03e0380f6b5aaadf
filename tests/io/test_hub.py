"""hf:// references: parsed strictly, a missing huggingface_hub named as the extra to install, and the hub
cache's own snapshot links told from links out of a model folder. (Downloads: tests/test_publish.py.)"""

from __future__ import annotations

import builtins

import pytest

from gantk.errors import ConfigError
from gantk.io import hub


def test_references_name_an_owner_a_model_and_perhaps_a_revision():
    assert hub.parse("hf://me/model") == ("me/model", None)
    assert hub.parse("hf://me/model@v1.2") == ("me/model", "v1.2")
    for bad in ("hf://model", "hf://a/b/c", "hf://me/model@", "hf:///model"):
        with pytest.raises(ConfigError, match="hf://OWNER/NAME"):
            hub.parse(bad)
    assert hub.is_reference("hf://me/model") and not hub.is_reference("runs/dcgan") and not hub.is_reference(None)


def test_without_huggingface_hub_the_extra_is_named(monkeypatch):
    real = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name == "huggingface_hub":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(ConfigError, match=r"pip install 'gantk\[hub\]'"):
        hub.fetch("hf://me/model")


def test_only_the_caches_snapshot_to_blob_links_are_accepted(tmp_path):
    repo = tmp_path / "models--me--m"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "blobs" / "f00d").write_bytes(b"x")
    (tmp_path / "elsewhere").write_bytes(b"y")
    (repo / "snapshots" / "abc" / "generator.onnx").symlink_to(repo / "blobs" / "f00d")
    (repo / "snapshots" / "abc" / "other.onnx").symlink_to(tmp_path / "elsewhere")
    assert hub.is_cached_blob(repo / "snapshots" / "abc" / "generator.onnx")
    assert not hub.is_cached_blob(repo / "snapshots" / "abc" / "other.onnx")
