"""Shared fixtures."""

from pathlib import Path

import pytest

from tests.helpers import write_image_folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def fid_weights(tmp_path_factory) -> Path:
    """The FID Inception network's weights with random values (95 MB, made once per test session)."""
    from tests.helpers.fid import fid_inception_file

    return fid_inception_file(tmp_path_factory.mktemp("fid") / "pt_inception-random.safetensors")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Caches that default to ~/.cache (the FID reference features) go to a folder of this session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield
