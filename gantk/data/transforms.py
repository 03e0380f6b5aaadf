"""``data.transforms``: a user's albumentations pipeline, applied on the CPU to each item as it is drawn.

The pipeline is albumentations' own serialised format (``A.save(pipeline, "aug.yaml")``, YAML or
JSON), so anything albumentations can express and save is available without gantk knowing it. It runs
on uint8 HWC arrays, as albumentations expects, between decoding and batching. Paired data (``A`` and
``B``) goes through it together, ``B`` as an additional image target, so both get the same crop, flip
or colour change; labels pass through.

Every item's draw is seeded from the run's seed and the item's place in the data order (epoch and
position), so an item gets the same transform however many workers load it, and ``--resume`` repeats
exactly what an uninterrupted run would have drawn. Without ``data.transforms`` nothing here runs and
in-memory datasets keep their one-index-per-batch path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gantk.errors import ConfigError, DataError

IMAGE_KEYS = ("image", "A", "B")


def load_pipeline(path: str | Path) -> Any:
    """The albumentations pipeline saved in ``path`` (``.yaml``/``.yml`` or ``.json``), refused in one
    paragraph naming the file and the transform when it cannot be loaded."""
    path = Path(path).expanduser()
    where = f"data.transforms={path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file; expected an albumentations pipeline saved with A.save().")
    formats = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
    if path.suffix.lower() not in formats:
        raise ConfigError(f"{where}: expected a .yaml, .yml or .json file (albumentations' A.save formats).")
    try:
        import albumentations as A
    except ImportError:
        raise ConfigError(
            f"{where} needs albumentations, which is not installed: pip install 'gantk[transforms]'."
        ) from None
    try:
        pipeline = A.load(str(path), data_format=formats[path.suffix.lower()])
    except KeyError as exc:  # albumentations' registry lookup of __class_fullname__
        raise ConfigError(
            f"{where}: the pipeline names the transform {exc.args[0]!r}, which albumentations "
            f"{A.__version__} does not have (check its spelling and the albumentations version)."
        ) from None
    except Exception as exc:  # malformed YAML/JSON, a missing section, a bad argument of a transform
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(f"{where} is not a loadable albumentations pipeline: {type(exc).__name__}: {first}") from None
    if not hasattr(pipeline, "set_random_seed"):
        raise ConfigError(f"{where}: expected a pipeline (A.Compose) at the top, got {type(pipeline).__name__}.")
    return pipeline


class TransformedDataset(Dataset):
    """``dataset`` with ``pipeline`` applied to each item's images; items are drawn by ``(index, seed)``."""

    draws_with_seed = True  # the batch stream passes each draw's seed with its index

    def __init__(self, dataset: Dataset, pipeline: Any, image_size: int, source: str) -> None:
        self.dataset, self.pipeline, self.image_size, self.source = dataset, pipeline, image_size, source
        self.channels = getattr(dataset, "channels", 3)
        self.class_names = getattr(dataset, "class_names", ())
        self.num_classes = len(self.class_names)
        first = dataset[0]
        self.paired = "A" in first and "B" in first
        if self.paired:
            pipeline.add_targets({"B": "image"})
        elif "image" not in first:
            raise DataError(
                f"data.transforms={source} applies to images under 'image' (or pairs under 'A' and 'B'), and this "
                f"plugin's training items hold {', '.join(map(repr, first))}."
            )

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        item = dict(self.dataset[index])
        arrays = {k: item[k].permute(1, 2, 0).numpy() for k in IMAGE_KEYS if k in item}
        self.pipeline.set_random_seed(seed)
        try:
            if self.paired:
                out = self.pipeline(image=arrays["A"], B=arrays["B"])
                results = {"A": out["image"], "B": out["B"]}
            else:
                results = {"image": self.pipeline(image=arrays["image"])["image"]}
        except Exception as exc:
            raise DataError(
                f"data.transforms={self.source} failed on item {index}: {type(exc).__name__}: {exc}"
            ) from None
        for key_, array in results.items():
            item[key_] = self._tensor(array, item[key_])
        return item

    def _tensor(self, array: np.ndarray, before: torch.Tensor) -> torch.Tensor:
        """HWC back to uint8 CHW of the same shape: batches must stack, and D's input size is fixed."""
        if array.ndim == 2:
            array = array[:, :, None]
        if array.dtype != np.uint8:
            raise DataError(
                f"data.transforms={self.source} returned {array.dtype} pixels; gantk keeps images as uint8 "
                "(leave out ToFloat / Normalize / ToTensorV2: the engine converts on the device)."
            )
        out = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
        if out.shape != before.shape:
            raise DataError(
                f"data.transforms={self.source} turned a {tuple(before.shape)} image into {tuple(out.shape)} "
                f"(channels, height, width); every image must keep data.image_size={self.image_size} and its "
                "channels (end a resizing pipeline with a crop or resize to that size)."
            )
        return out
