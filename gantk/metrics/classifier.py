"""Classification accuracy score of a class-conditional generator.

A small CNN is trained on the *real* training images; the score is its accuracy on *generated* images
against the labels the generator was asked for, overall and per class (Ravuri & Vinyals' CAS idea, in
its usual cheap form: the classifier is trained on real data and judges fakes). A generator that ignores
its label, or draws some classes badly, scores low on those classes even when its images look sharp.

The classifier is saved like every gantk model: ``config.json`` + ``classifier.safetensors`` in one
folder, so a score can be re-measured later with the very same judge.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from gantk.config import DataConfig
from gantk.data import load_dataset, locate
from gantk.data.datasets import SPLIT_KINDS
from gantk.errors import CheckpointError, ConfigError, DataError
from gantk.io.checkpoint import load_weights
from gantk.io.images import from_uint8

log = logging.getLogger("gantk")

CONFIG = "config.json"
WEIGHTS = "classifier.safetensors"


@dataclass
class ClassifierSpec:
    """What rebuilds the classifier: its input format and its classes."""

    channels: int
    image_size: int
    class_names: tuple[str, ...]
    width: int = 32

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class Classifier(nn.Module):
    """Two conv stages and a linear head; images in [-1, 1] at ``spec.image_size``."""

    def __init__(self, spec: ClassifierSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.features = nn.Sequential(
            *block(spec.channels, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Dropout(0.3),
        )  # fmt: skip
        self.head = nn.Linear(2 * w * 16, spec.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.spec.image_size or x.shape[-2] != self.spec.image_size:
            x = F.interpolate(x, size=(self.spec.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.features(x))


def _as_float(images: Tensor) -> Tensor:
    return from_uint8(images) if images.dtype == torch.uint8 else images.float()


def train_classifier(
    dataset,
    *,
    steps: int = 1500,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    width: int = 32,
    holdout: float = 0.1,
) -> tuple[Classifier, float]:
    """Train a classifier on a labelled gantk dataset (``image`` uint8, ``label`` int64 items).

    A random ``holdout`` fraction of the images is kept out of training; the accuracy on it is returned
    with the model, so the judge itself is checked before it judges a generator. Random shifts of up to
    2 pixels keep it from keying on exact pixel positions, which generated images do not reproduce.
    """
    class_names = tuple(getattr(dataset, "class_names", ()) or ())
    if not class_names:
        raise DataError("the classifier needs labelled data: a folder with one sub-folder per class, or MNIST.")
    # Its own RNG stream and grad mode: training the judge in the middle of a GAN run (under the
    # engine's no-grad eval) must not change the run's random state, or exact resume would break.
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), torch.enable_grad(), torch.autocast(device.type, enabled=False):
        torch.manual_seed(seed)
        return _train(dataset, class_names, steps, batch_size, lr, seed, device, width, holdout)


def _train(dataset, class_names, steps, batch_size, lr, seed, device, width, holdout) -> tuple[Classifier, float]:
    first = dataset[0]["image"]
    spec = ClassifierSpec(channels=first.shape[0], image_size=first.shape[-1], class_names=class_names, width=width)
    model = Classifier(spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=g)
    n_held = int(len(dataset) * holdout) if len(dataset) > 1 else 0
    held, train = order[:n_held], order[n_held:]
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        idx = train[torch.randint(len(train), (min(batch_size, len(train)),), generator=g)]
        batch = _gather(dataset, idx)
        x = _as_float(batch["image"]).to(device)
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        loss = F.cross_entropy(model(x), batch["label"].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0:
            log.info("classifier step %d/%d: loss %.4f", step + 1, steps, loss.item())
    model.eval()
    held_acc = dataset_accuracy(model, dataset, held)[0] if n_held else float("nan")
    log.info(
        "trained the classifier for %d steps in %.0f s; accuracy on %d held-out images: %.4f",
        steps, time.perf_counter() - start, n_held, held_acc,
    )  # fmt: skip
    return model, held_acc


def _gather(dataset, idx: Tensor) -> dict[str, Tensor]:
    if hasattr(dataset, "batch"):
        return dataset.batch(idx)
    items = [dataset[int(i)] for i in idx]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


@torch.no_grad()
def predict(model: Classifier, images: Tensor, batch_size: int = 500) -> Tensor:
    """Predicted class of each image (uint8 or float in [-1, 1])."""
    device = next(model.parameters()).device
    model.eval()
    out = [
        model(_as_float(images[i : i + batch_size]).to(device)).argmax(1).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def accuracy(predicted: Tensor, labels: Tensor, num_classes: int) -> tuple[float, list[float]]:
    """Overall accuracy and the accuracy of each class (NaN for a class with no sample)."""
    correct = (predicted == labels).float()
    per_class = [
        correct[labels == k].mean().item() if bool((labels == k).any()) else float("nan") for k in range(num_classes)
    ]
    return correct.mean().item(), per_class


@torch.no_grad()
def dataset_accuracy(model: Classifier, dataset, idx: Tensor | None = None) -> tuple[float, list[float]]:
    """Accuracy on a labelled dataset (or the items ``idx`` of it), to check the judge itself."""
    idx = torch.arange(len(dataset)) if idx is None else idx
    batch = _gather(dataset, idx)
    return accuracy(predict(model, batch["image"]), batch["label"], model.spec.num_classes)


def train_judge(
    data: DataConfig,
    folder: str | Path,
    steps: int = 1500,
    seed: int = 0,
    device: str | torch.device = "cpu",
    width: int = 32,
) -> dict:
    """``gantk classifier``: train on ``data``'s training split, measure the held-out share and, for a
    dataset with a test split (MNIST), the test set too; save the classifier with what was measured in
    ``folder`` and return that record."""
    dataset = load_dataset(data, split="train")
    model, held = train_classifier(dataset, steps=steps, seed=seed, device=device, width=width)
    info = {"data": data.name, "steps": steps, "seed": seed, "heldout_accuracy": held}
    if locate(data.name, data.kind)[1] in SPLIT_KINDS:  # without one, the held-out share stands in for it
        info["test_accuracy"] = dataset_accuracy(model, load_dataset(data, split="test"))[0]
    save_classifier(model, folder, info)
    return info


def save_classifier(model: Classifier, folder: str | Path, info: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    spec = asdict(model.spec)
    spec["class_names"] = list(spec["class_names"])
    (folder / CONFIG).write_text(json.dumps({"classifier": spec, **(info or {})}, indent=2), encoding="utf-8")
    return folder


def load_classifier(folder: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """A classifier saved by :func:`save_classifier` (safetensors + JSON; nothing is unpickled)."""
    folder = Path(folder)
    try:
        raw = json.loads((folder / CONFIG).read_text(encoding="utf-8"))["classifier"]
        spec = ClassifierSpec(
            channels=int(raw["channels"]),
            image_size=int(raw["image_size"]),
            class_names=tuple(str(c) for c in raw["class_names"]),
            width=int(raw.get("width", 32)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{folder} is not a gantk classifier folder (expected {CONFIG} with a 'classifier' section and "
            f"{WEIGHTS}): {exc}"
        ) from None
    model = Classifier(spec)
    load_weights(model, folder / WEIGHTS)
    return model.to(device).eval()


def run_judge(
    classifier: str, run_dir: Path, train_data, *, steps: int, seed: int, data_name: str, device: torch.device
) -> Classifier | None:
    """The classifier that scores a run's samples: the folder ``classifier`` (``eval.classifier``) when given,
    else the run's own in ``<run_dir>/classifier``, trained once on ``train_data()`` (real, labelled images)
    and cached there. ``train_data`` is called only when a classifier must be trained; it returns None when
    the data has no labels, and then so does this."""
    if classifier:
        folder = Path(classifier)
        if not folder.exists():
            raise ConfigError(
                f"eval.classifier {folder} does not exist (a relative path from a checkpoint is looked up beside "
                f"the checkpoint, then in the current directory {Path.cwd()}). Give the folder with --set "
                "eval.classifier=DIR."
            )
        if not (folder / CONFIG).exists():
            raise ConfigError(f"eval.classifier {folder} is not a classifier folder (no {CONFIG} in it).")
        return load_classifier(folder, device)
    folder = run_dir / "classifier"
    if (folder / WEIGHTS).exists():
        return load_classifier(folder, device)
    data = train_data()
    if data is None:
        return None
    log.info("training the evaluation classifier on the real training images (cached in %s)", folder)
    model, held = train_classifier(data, steps=steps, seed=seed, device=device)
    save_classifier(model, folder, {"data": data_name, "heldout_accuracy": held})
    return model


def matched_accuracy(predicted: Tensor, codes: Tensor, num_codes: int, num_classes: int) -> tuple[float, list[int]]:
    """Accuracy of an unsupervised code against classes under the best one-to-one matching of code values
    to classes (the Hungarian algorithm on the code x class counts), and the class each code value got.

    This is how InfoGAN's categorical code is scored (Chen et al. 2016 report 5 % error on MNIST): the
    code never saw a label, so which value means which digit is arbitrary, and only a matching that
    maps different values to different digits is fair (a many-to-one map would score a code that draws
    one digit for every value as well as the classifier's accuracy on that digit).
    """
    from scipy.optimize import linear_sum_assignment

    counts = torch.zeros(num_codes, num_classes, dtype=torch.int64)
    counts.index_put_(
        (codes.long().cpu(), predicted.long().cpu()), torch.ones(len(codes), dtype=torch.int64), accumulate=True
    )
    rows, cols = linear_sum_assignment(counts.numpy(), maximize=True)
    matched = int(counts[torch.as_tensor(rows), torch.as_tensor(cols)].sum())
    assignment = [-1] * num_codes
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        assignment[r] = c
    return matched / max(1, len(codes)), assignment
