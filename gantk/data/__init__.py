"""gantk's data layer: named datasets (cards), dataset kinds, lookup, download and batching.

Lookup order for ``data.name`` (``--data``):

1. an existing path;
2. ``$GANTK_DATA/<name>``;
3. ``datasets/<name>/`` in the gantk checkout (an installed gantk: ``~/.cache/gantk/datasets/<name>/``,
   :data:`gantk.data.cards.DATA_DIR`);
4. download, verify and extract into that folder using the card ``datasets/<name>.yaml``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gantk.config import DataConfig, height_width, with_values
from gantk.data import cards
from gantk.data.cards import DatasetCard, load_cards
from gantk.data.datasets import KINDS, ImageFileDataset, TensorDataset
from gantk.data.download import download_dataset
from gantk.errors import DataError

__all__ = ["ImageFileDataset", "TensorDataset", "load_cards", "load_dataset", "load_rows", "locate"]

log = logging.getLogger("gantk")

PRELOAD_LIMIT_BYTES = 2 << 30  # data.preload=auto keeps datasets up to 2 GiB of uint8 pixels in memory


def _non_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def locate(name: str, kind: str = "", download: bool = True) -> tuple[Path, str]:
    """Find (or fetch) the data for ``name``; returns its folder and loader kind."""
    if not name:
        raise DataError("no dataset given: set data.name in the config or pass --data NAME_OR_PATH.")
    known = load_cards()
    path = Path(name).expanduser()
    if path.exists() and (name not in known or "/" in name or name.startswith(".")):
        if not path.is_dir():
            raise DataError(f"--data {name}: expected a folder of images (or of MNIST idx files), got a file.")
        return path, kind or _detect_kind(path)
    card: DatasetCard | None = known.get(name)
    if card is None:
        raise DataError(
            f"--data {name!r} is neither an existing folder nor a known dataset. Known datasets: "
            f"{', '.join(sorted(known)) or 'none'} (cards in {cards.CARDS_DIR})."
        )
    candidates = []
    if os.environ.get("GANTK_DATA"):
        candidates.append(Path(os.environ["GANTK_DATA"]).expanduser() / name)
    local = cards.DATA_DIR / name
    candidates.append(local)
    for candidate in candidates:
        if _non_empty(candidate):
            return candidate, kind or card.kind
    hint = "" if os.environ.get("GANTK_DATA") else " (is GANTK_DATA set to the folder that holds the datasets?)"
    if not download:
        raise DataError(f"dataset '{name}' not found in {' or '.join(map(str, candidates))}{hint}.")
    if not card.files:  # nothing to fetch: say where it was looked for, not "downloading"
        raise DataError(
            f"dataset '{name}' not found in {' or '.join(map(str, candidates))}{hint}, and its card {card.path} "
            "lists nothing to download; place it there, laid out as the card describes."
        )
    log.info(
        "dataset '%s' not found in %s%s; downloading into %s", name, " or ".join(map(str, candidates)), hint, local
    )
    return download_dataset(card, local), kind or card.kind


def _detect_kind(path: Path) -> str:
    for folder in (path / "raw", path / "MNIST" / "raw", path):
        if any(folder.glob("train-images*idx3-ubyte*")):
            return "mnist"
    if (path / "trainA").is_dir() and (path / "trainB").is_dir():  # junyanz's unpaired layout
        return "unpaired"
    return "image_folder"


def load_dataset(cfg: DataConfig, split: str | None = None) -> Dataset:
    """Build the dataset ``cfg`` describes, preloaded into memory when it fits (``data.preload``)."""
    root, kind = locate(cfg.name, cfg.kind)
    if kind not in KINDS:
        raise DataError(f"data.kind {kind!r} is not a dataset kind gantk knows; choose one of {', '.join(KINDS)}.")
    dataset = KINDS[kind](root, cfg.image_size, cfg.channels, split or cfg.split)
    if cfg.limit:
        dataset = _limited(dataset, cfg.limit)
    dropped: list[str] = []
    if isinstance(dataset, ImageFileDataset) and cfg.on_error == "skip":
        dataset, dropped = dataset.readable()
        if dropped:
            log.warning(
                "data.on_error=skip: skipped %d unreadable file(s) of %s, e.g. %s",
                len(dropped), cfg.name, "; ".join(dropped[:3]),
            )  # fmt: skip
        if not len(dataset):
            raise DataError(f"every file of {cfg.name} failed to read (data.on_error=skip); first: {dropped[0]}")
    if isinstance(dataset, ImageFileDataset):
        planes = dataset.channels * (2 if kind == "paired" else 1)
        size = len(dataset) * planes * math.prod(height_width(cfg.image_size))
        if cfg.preload == "always" or (cfg.preload == "auto" and size <= PRELOAD_LIMIT_BYTES):
            log.info("decoding %s into memory (%.1f MB)", dataset.description, size / 1e6)
            dataset = dataset.preload()
    dataset.skipped = len(dropped)  # files left out by data.on_error=skip
    return dataset


def _limited(dataset: Dataset, n: int) -> Dataset:
    if isinstance(dataset, TensorDataset):
        return TensorDataset({k: v[:n] for k, v in dataset.tensors.items()}, dataset.channels, dataset.class_names)
    if isinstance(dataset, ImageFileDataset):
        return ImageFileDataset(
            dataset.items[:n], dataset.read, dataset.channels, dataset.class_names, dataset.description
        )
    raise DataError(f"data.limit is not supported for {type(dataset).__name__}.")


def load_rows(cfg: DataConfig, split: str, rows: slice) -> TensorDataset:
    """The items ``rows`` of the dataset ``cfg`` names (``slice(-40, None)``: the last 40), decoded from
    their files alone: a few held-out pairs or preview images without reading the rest of a large set
    into memory. The same tensors as those rows of the preloaded dataset; ``rows`` must hold an item."""
    dataset = load_dataset(with_values(cfg, {"preload": "never"}, "a few rows of the data"), split)
    if isinstance(dataset, TensorDataset):  # decoded in memory anyway (MNIST)
        return TensorDataset({k: v[rows] for k, v in dataset.tensors.items()}, dataset.channels, dataset.class_names)
    items = [dataset[i] for i in range(len(dataset))[rows]]
    if not items:
        raise DataError(f"rows {rows.start}:{rows.stop} of {cfg.name} ({split}) hold no item of its {len(dataset)}.")
    tensors = {k: torch.stack([item[k] for item in items]) for k in items[0]}
    return TensorDataset(tensors, dataset.channels, dataset.class_names)
