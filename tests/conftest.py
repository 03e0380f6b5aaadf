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
