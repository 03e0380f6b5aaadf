"""Dataset kinds: how a folder on disk becomes a dataset of uint8 image tensors.

Every dataset yields dicts of tensors (``{"image": uint8 (C, H, W), "label": int64}``, or ``{"A", "B"}``
for pairs) and carries ``channels`` and ``num_classes``, which the engine writes into the resolved
config so a checkpoint can rebuild its networks without the data. Small datasets are decoded once into
memory (:class:`TensorDataset`), so the data path costs one index per batch.
"""

from __future__ import annotations

import gzip
import logging
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gantk.config import height_width
from gantk.data.images import fit, image_files, native_channels, open_image, read_image, to_mode, to_tensor
from gantk.errors import DataError

log = logging.getLogger("gantk.data")


class TensorDataset(Dataset):
    """Items held in memory as stacked tensors; ``batch(idx)`` slices a whole batch at once."""

    def __init__(self, tensors: dict[str, torch.Tensor], channels: int, class_names: tuple[str, ...] = ()) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = tensors
        self.channels = channels
        self.class_names = class_names
        self.num_classes = len(class_names)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    def to(self, device: torch.device | str) -> TensorDataset:
        """The same items held on ``device`` (the engine keeps small datasets on the GPU)."""
        return TensorDataset({k: v.to(device) for k, v in self.tensors.items()}, self.channels, self.class_names)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        device = next(iter(self.tensors.values())).device
        if device.type == "cuda" and idx.device != device:  # held on the GPU: send the indices, never wait
            idx = idx.pin_memory().to(device, non_blocking=True)
        return {k: v[idx] for k, v in self.tensors.items()}


class ImageFileDataset(Dataset):
    """Images decoded from files on each access; ``preload()`` turns it into a TensorDataset."""

    def __init__(
        self,
        items: list,
        read: Callable[[object], dict[str, torch.Tensor]],
        channels: int,
        class_names: tuple[str, ...] = (),
        description: str = "",
    ) -> None:
        self.items = items
        self.read = read
        self.channels = channels
        self.class_names = class_names
        self.num_classes = len(class_names)
        self.description = description

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.read(self.items[i])

    def readable(self) -> tuple[ImageFileDataset, list[str]]:
        """This dataset without the items that fail to read, and one reason per dropped item.

        Reads every item once (``data.on_error=skip``); a reason names the file, as the error would.
        """
        kept, dropped = [], []
        for item in self.items:
            try:
                self.read(item)
                kept.append(item)
            except DataError as exc:
                dropped.append(str(exc))
        same = ImageFileDataset(kept, self.read, self.channels, self.class_names, self.description)
        return same, dropped

    def preload(self) -> TensorDataset:
        samples = [self.read(item) for item in self.items]
        tensors = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        return TensorDataset(tensors, self.channels, self.class_names)


class SubstituteFailures(Dataset):
    """``data.on_error=skip`` while training: a draw that fails (a file deleted or damaged mid-run, a
    ``data.transforms`` pipeline that fails on a few random draws) is replaced by the next item of the
    dataset that succeeds, with the next seed.

    The substitute follows from the failing draw alone, never from what failed before in this process,
    so a resumed run and any number of DataLoader workers see the same batches as an uninterrupted run,
    and every batch keeps its size (a fixed shape for batch norm and CUDA graphs). Files unreadable
    from the start were already left out when the dataset was built; this covers what fails later.
    """

    ATTEMPTS = 16  # after this many failing neighbours in a row the data is broken, not unlucky

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.draws_with_seed = getattr(dataset, "draws_with_seed", False)
        self.channels = getattr(dataset, "channels", 3)
        self.class_names = getattr(dataset, "class_names", ())
        self.num_classes = len(self.class_names)
        self.skipped = getattr(dataset, "skipped", 0)
        self.substituted = 0  # in this process (each DataLoader worker counts its own)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        first: DataError | None = None
        for k in range(self.ATTEMPTS):
            i = (index + k) % len(self)
            try:
                item = self.dataset[(i, (seed + k) % 2**32) if self.draws_with_seed else i]
            except DataError as exc:
                first = first or exc
                continue
            if k:
                self.substituted += 1
                log.warning("data.on_error=skip: item %d replaced by item %d: %s", index, i, first)
            return item
        raise DataError(
            f"{first} (data.on_error=skip tried the next {self.ATTEMPTS - 1} items as substitutes, and they "
            "failed too: the data is broken, not one item)"
        )


# --------------------------------------------------------------------------------------------------
# image_folder: a folder of images, searched recursively; sub-folders of the root are classes
# --------------------------------------------------------------------------------------------------


def image_folder(root: Path, image_size: int, channels: int) -> ImageFileDataset:
    files = image_files(root)
    if not files:
        raise DataError(
            f"dataset folder {root} holds no image files (searched recursively for "
            f"{', '.join(sorted(e for e in ('.png', '.jpg', '.jpeg', '.bmp', '.pgm', '.webp')))} and other "
            "formats Pillow reads)."
        )
    # Classes: when every image sits below a first-level sub-folder, that sub-folder is its label.
    tops = [p.relative_to(root).parts for p in files]
    class_names: tuple[str, ...] = ()
    labels: list[int] = []
    if all(len(parts) > 1 for parts in tops):
        class_names = tuple(sorted({parts[0] for parts in tops}, key=_natural_key))
        index = {name: i for i, name in enumerate(class_names)}
        labels = [index[parts[0]] for parts in tops]
    channels = channels or _first_native_channels(files)

    def read(item: tuple[Path, int]) -> dict[str, torch.Tensor]:
        path, label = item
        out = {"image": read_image(path, channels, image_size)}
        if class_names:
            out["label"] = torch.tensor(label, dtype=torch.int64)
        return out

    items = list(zip(files, labels or [-1] * len(files), strict=True))
    return ImageFileDataset(items, read, channels, class_names, description=f"{len(files)} images in {root}")


def _first_native_channels(files: list[Path]) -> int:
    """``data.channels: 0`` resolved from the first file that opens (bad ones are reported when read)."""
    for path in files[:50]:
        try:
            return native_channels(path)
        except DataError:
            continue
    return native_channels(files[0])  # raises, naming the file


def _natural_key(name: str) -> list:
    """Sort 's2' before 's10'."""
    import re

    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------------------------------
# mnist: the original idx files (gzipped or not)
# --------------------------------------------------------------------------------------------------

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(root: Path, stem: str) -> Path:
    for folder in (root / "raw", root / "MNIST" / "raw", root):
        for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"MNIST file {stem}(.gz) not found under {root} (looked in raw/, MNIST/raw/ and the folder itself)."
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (the MNIST format): big-endian magic, dimensions, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"MNIST file {path} cannot be read: {exc}") from None
    if len(data) < 4:
        raise DataError(f"MNIST file {path} is truncated ({len(data)} bytes).")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"MNIST file {path} is not an idx file of unsigned bytes (magic {data[:4].hex()}).")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"MNIST file {path} is truncated: header says {dims}, found {body.size} values.")
    return body.reshape(dims)


def mnist(root: Path, image_size: int, channels: int, split: str = "train") -> TensorDataset:
    if split not in _MNIST_FILES:
        raise DataError(f"MNIST has splits 'train' and 'test'; got data.split={split!r}.")
    img_stem, lbl_stem = _MNIST_FILES[split]
    images = torch.from_numpy(read_idx(_find_idx(root, img_stem)).copy())
    labels = torch.from_numpy(read_idx(_find_idx(root, lbl_stem)).astype(np.int64))
    if len(images) != len(labels):
        raise DataError(f"MNIST under {root}: {len(images)} images but {len(labels)} labels.")
    images = images[:, None]  # (N, 1, 28, 28)
    if image_size and height_width(image_size) != tuple(images.shape[-2:]):
        images = _resize_uint8(images, height_width(image_size))
    if channels == 3:
        images = images.expand(-1, 3, -1, -1).contiguous()
    return TensorDataset({"image": images, "label": labels}, channels or 1, tuple(str(i) for i in range(10)))


def _resize_uint8(images: torch.Tensor, size: tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Resize a uint8 (N, C, H, W) stack with antialiased bilinear filtering, in chunks."""
    out = []
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].float()
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------
# paired: side-by-side files (the pix2pix layout) or A/ and B/ folders with matching names
# --------------------------------------------------------------------------------------------------


def paired(root: Path, image_size: int, channels: int, split: str = "train") -> ImageFileDataset:
    base = root / split if (root / split).is_dir() else root
    a_dir, b_dir = base / "A", base / "B"
    channels = channels or 3
    if a_dir.is_dir() and b_dir.is_dir():
        a_files = {p.relative_to(a_dir): p for p in image_files(a_dir)}
        b_files = {p.relative_to(b_dir): p for p in image_files(b_dir)}
        missing = sorted(set(a_files) ^ set(b_files))
        if missing:
            side = "B" if missing[0] in a_files else "A"
            raise DataError(
                f"paired dataset {base}: {len(missing)} file(s) have no partner, e.g. {missing[0]} has no "
                f"match in {base / side}. Every file in A/ needs a file of the same name in B/."
            )
        items: list = [(a_files[k], b_files[k]) for k in sorted(a_files)]

        def read(item: tuple[Path, Path]) -> dict[str, torch.Tensor]:
            return {"A": read_image(item[0], channels, image_size), "B": read_image(item[1], channels, image_size)}

    else:
        items = sorted(image_files(base), key=lambda p: _natural_key(p.name))

        def read(item: Path) -> dict[str, torch.Tensor]:  # type: ignore[misc]
            img = to_mode(open_image(item), channels)
            w, h = img.size
            if w < 2 or w % 2:
                raise DataError(
                    f"paired image {item} is {w}x{h}; a side-by-side pair needs an even width (A left, B right)."
                )
            left, right = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))
            if image_size:
                left, right = fit(left, image_size), fit(right, image_size)
            return {"A": to_tensor(left), "B": to_tensor(right)}

    if not items:
        raise DataError(f"paired dataset folder {base} holds no images (side-by-side files, or A/ and B/ folders).")
    return ImageFileDataset(items, read, channels, description=f"{len(items)} pairs in {base}")


# --------------------------------------------------------------------------------------------------
# unpaired: two domains, A and B, with no correspondence (CycleGAN), in junyanz's layout
# --------------------------------------------------------------------------------------------------


class UnpairedDataset(TensorDataset):
    """Two unpaired image sets of any sizes, as items ``{"A": ..., "B": ...}``, held in memory.

    An epoch is ``max(len(A), len(B))`` items: item ``i`` is A's ``i mod len(A)``-th image and a B image
    drawn by a permutation of the epoch (``set_epoch``, called by the batch stream at every epoch start
    and on resume). The batch stream shuffles the items, so A and B are shuffled independently each epoch
    and no A image is tied to one B image (junyanz's ``UnalignedDataset`` draws B at random); the draw
    depends on ``(seed, epoch)`` alone, so ``--resume`` sees the same pairs.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, channels: int, seed: int = 0) -> None:
        if not len(a) or not len(b):
            raise DataError(f"an unpaired dataset needs images on both sides; got {len(a)} in A and {len(b)} in B.")
        self.tensors = {"A": a, "B": b}
        self.channels = channels
        self.class_names: tuple[str, ...] = ()
        self.num_classes = 0
        self.seed = seed
        self.set_epoch(0)

    def __len__(self) -> int:
        return max(len(self.tensors["A"]), len(self.tensors["B"]))

    def set_epoch(self, epoch: int) -> None:
        """B's order for ``epoch``: a permutation of the epoch's items, each mapped onto B's images."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 7)
        b = self.tensors["B"]
        self.b_index = (torch.randperm(len(self), generator=g) % len(b)).to(b.device)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a = self.tensors["A"]
        return {"A": a[i % len(a)], "B": self.tensors["B"][self.b_index[i]]}

    def to(self, device: torch.device | str) -> UnpairedDataset:
        out = UnpairedDataset(self.tensors["A"].to(device), self.tensors["B"].to(device), self.channels, self.seed)
        out.b_index = self.b_index.to(device)
        return out

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        a, b = self.tensors["A"], self.tensors["B"]
        if a.device.type == "cuda" and idx.device != a.device:  # held on the GPU: send the indices, never wait
            idx = idx.pin_memory().to(a.device, non_blocking=True)
        return {"A": a[idx % len(a)], "B": b[self.b_index[idx]]}


def unpaired(root: Path, image_size: int, channels: int, split: str = "train", seed: int = 0) -> UnpairedDataset:
    """``root/<split>A`` and ``root/<split>B`` (junyanz's layout: trainA, trainB, testA, testB), decoded into
    memory at ``image_size``."""
    folders = [root / f"{split}{side}" for side in "AB"]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise DataError(
            f"unpaired dataset {root}: no {' or '.join(missing)}; the layout is {split}A/ and {split}B/ folders of "
            "images (junyanz's CycleGAN layout), or give a paired set such as facades."
        )
    a = image_folder(folders[0], image_size, channels)
    b = image_folder(folders[1], image_size, channels or a.channels)
    return UnpairedDataset(a.preload().tensors["image"], b.preload().tensors["image"], a.channels, seed)


#: the kinds whose ``split`` picks separate files (MNIST's test set, ``test/``, ``testA``); an image
#: folder is one set whatever the split says
SPLIT_KINDS = ("mnist", "paired", "unpaired")

KINDS: dict[str, Callable[..., Dataset]] = {
    "image_folder": lambda root, size, ch, split: image_folder(root, size, ch),
    "mnist": mnist,
    "paired": paired,
    "unpaired": unpaired,
}
