"""Dataset cards: ``datasets/<name>.yaml`` says where a named dataset comes from and how it is laid out.

A card holds the loader ``kind``, the files to download (URL, mirrors, sha256 or the publisher's md5),
what to check after extraction, the citation and the licence. The cards ship with gantk as package
data (``gantk.datasets``: the checkout's ``datasets/``). The data itself goes wherever
``$GANTK_DATA/<name>`` points, else into :data:`DATA_DIR`: the checkout's ``datasets/<name>/`` (ignored
by git), or for an installed gantk ``~/.cache/gantk/datasets/<name>/`` (``$XDG_CACHE_HOME`` honoured).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gantk.errors import DataError


def _cards_dir() -> Path:
    """The folder of package ``gantk.datasets`` (found without importing it)."""
    try:
        found = importlib.util.find_spec("gantk.datasets")
    except ImportError:
        found = None
    if found is not None and found.submodule_search_locations:
        return Path(list(found.submodule_search_locations)[0])
    return Path(__file__).resolve().parents[2] / "datasets"  # a checkout on sys.path, not installed


def _data_dir(cards_dir: Path) -> Path:
    if (cards_dir.parent / "pyproject.toml").is_file():  # a source checkout: beside the cards, as always
        return cards_dir
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "gantk" / "datasets"  # never inside site-packages


CARDS_DIR = _cards_dir()
DATA_DIR = _data_dir(CARDS_DIR)


@dataclass(frozen=True)
class RemoteFile:
    url: str
    mirrors: tuple[str, ...] = ()
    sha256: str = ""
    md5: str = ""  # only where the publisher gives md5 and no sha256
    extract: bool = False  # an archive to unpack, or a file to keep as it is
    strip: str = ""  # leading folder inside the archive to drop
    save_as: str = ""  # where a kept file goes, relative to the dataset folder


@dataclass(frozen=True)
class DatasetCard:
    name: str
    kind: str
    description: str
    files: tuple[RemoteFile, ...]
    expect: dict[str, int] = field(default_factory=dict)  # glob -> file count after download
    citation: str = ""
    license: str = ""
    path: Path | None = None


def load_card(path: Path) -> DatasetCard:
    """Parse one card file; a malformed card is a DataError naming it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        files = tuple(
            RemoteFile(
                url=f["url"],
                mirrors=tuple(f.get("mirrors", ())),
                sha256=f.get("sha256") or "",
                md5=f.get("md5") or "",
                extract=bool(f.get("extract", False)),
                strip=f.get("strip", "") or "",
                save_as=f.get("save_as", "") or "",
            )
            for f in raw.get("files", [])
        )
        return DatasetCard(
            name=raw["name"],
            kind=raw["kind"],
            description=raw.get("description", ""),
            files=files,
            expect={str(k): int(v) for k, v in (raw.get("expect") or {}).items()},
            citation=raw.get("citation", ""),
            license=raw.get("license", ""),
            path=path,
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"dataset card {path} is malformed: {type(exc).__name__}: {exc}") from None


def load_cards(folder: Path | None = None) -> dict[str, DatasetCard]:
    """Every card in ``folder`` (default: gantk's own, :data:`CARDS_DIR`), by dataset name."""
    folder = folder or CARDS_DIR
    if not folder.is_dir():
        return {}
    return {c.name: c for c in (load_card(p) for p in sorted(folder.glob("*.yaml")))}
