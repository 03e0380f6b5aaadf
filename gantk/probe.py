"""The discriminator as a feature extractor (Radford et al. 2015, section 5.1).

The paper's test of what unsupervised GAN training learns: take D's convolutional features, max-pool
each layer's to a 4x4 grid, flatten and concatenate them, and fit a regularised linear L2-SVM on
labelled images. :func:`probe` does that for a trained D and, as the baseline that shows what training
added, for a randomly initialised D of the same shape (the plugin's own initialisation, seeded): a
linear classifier on random convolutional features is already far above chance, so only the gap
between the two says something about training.

The classifier is scikit-learn's ``LinearSVC`` (squared hinge loss, L2 penalty: the paper's L2-SVM)
on standardised features, with its C picked by 3-fold cross-validation on the labelled training
images unless given. ``labels_per_class`` keeps that many labelled images per class (the paper's
few-label setting); the test images are all of the test split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk.config import DataConfig
from gantk.errors import ConfigError, DataError, GantkError

log = logging.getLogger("gantk")

C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # LinearSVC's C, tried by cross-validation when none is given


@dataclass
class ProbeScore:
    """One probe: test accuracy of the linear classifier on one D's features."""

    accuracy: float
    C: float
    per_class: list[float] = field(default_factory=list)


@dataclass
class ProbeReport:
    data: str
    classes: list[str]
    labels_used: int
    labels_per_class: int  # 0: every labelled training image
    test_images: int
    feature_dim: int
    layers: list[str]
    trained: ProbeScore
    random: ProbeScore
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_layers(D: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """D's convolutions whose outputs are features: every ``Conv2d`` except a final one-channel logit map."""
    convs = [(name, m) for name, m in D.named_modules() if isinstance(m, nn.Conv2d)]
    if convs and convs[-1][1].out_channels == 1:
        convs = convs[:-1]
    if not convs:
        raise GantkError("the discriminator has no convolutional feature layers to probe.")
    return convs


@torch.no_grad()
def extract(D: nn.Module, images: Tensor, device: torch.device, batch: int = 256, grid: int = 4) -> np.ndarray:
    """Each feature layer max-pooled to ``grid`` x ``grid``, flattened and concatenated: N x dim, float32.

    ``images`` are uint8 (N, C, H, W); D sees them in [-1, 1] in eval mode, as it saw data in training.
    """
    layers = feature_layers(D)
    captured: list[Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: captured.append(out)) for _, m in layers]
    D.eval()
    chunks = []
    try:
        for start in range(0, len(images), batch):
            x = images[start : start + batch].to(device).float().div(127.5).sub(1.0)
            captured.clear()
            try:
                D(x)
            except TypeError as exc:
                raise GantkError(
                    f"the probe runs D on images alone, and this D needs more ({exc}); a class-conditional D "
                    "(CGAN's) would be handed the very label the probe predicts."
                ) from None
            except RuntimeError as exc:  # a D built for other inputs (a fixed size behind a linear layer)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise GantkError(
                    f"the probe's images ({tuple(x.shape[1:])}: channels, height, width) do not fit this D: "
                    f"{type(exc).__name__}: {first}. The probe needs a D that takes images like its training data."
                ) from None
            pooled = [F.adaptive_max_pool2d(f.float(), grid).flatten(1) for f in captured]
            chunks.append(torch.cat(pooled, 1).cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
    return np.concatenate(chunks).astype(np.float32, copy=False)


def few_labels(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random images of each class (all when ``per_class`` is 0), sorted."""
    if per_class <= 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise DataError(
                f"--labels-per-class {per_class}: class {c} has only {len(members)} labelled training images."
            )
        picked.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def fit_and_score(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, C: float | None, seed: int
) -> ProbeScore:
    """A standardised LinearSVC (C by 3-fold cross-validation when None); its accuracy on the test set."""
    try:
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC
    except ImportError:
        raise ConfigError("gantk probe fits scikit-learn's LinearSVC: pip install 'gantk[probe]'.") from None

    model = make_pipeline(StandardScaler(), LinearSVC(C=C or 1.0, max_iter=5000, random_state=seed))
    if C is None:
        folds = min(3, int(np.bincount(train_y).min()))
        if folds < 2:
            raise DataError("picking C needs at least 2 labelled images per class; give --C or more labels.")
        search = GridSearchCV(
            model, {"linearsvc__C": list(C_GRID)}, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)
        )
        model = search.fit(train_x, train_y).best_estimator_
        C = float(search.best_params_["linearsvc__C"])
    else:
        model.fit(train_x, train_y)
    predicted = model.predict(test_x)
    per_class = [float((predicted[test_y == c] == c).mean()) for c in np.unique(test_y)]
    return ProbeScore(float((predicted == test_y).mean()), float(C), per_class)


def labelled_splits(
    data: str, image_size: int, channels: int, test_fraction: float, seed: int
) -> tuple[Tensor, np.ndarray, Tensor, np.ndarray, list[str]]:
    """(train images, labels, test images, labels, class names) of a labelled dataset.

    A named dataset with a test split (MNIST) uses it; a folder with ``train/`` and ``test/`` inside uses
    those; any other folder of class sub-folders holds out ``test_fraction`` of each class, seeded.
    """
    from gantk.data import load_dataset, locate

    def load(name: str, split: str):
        cfg = DataConfig(name=name, image_size=image_size, channels=channels, split=split)
        dataset = load_dataset(cfg)
        if not getattr(dataset, "class_names", ()):
            raise DataError(f"--data {name}: no labels (put the images of each class in a sub-folder named after it).")
        items = [dataset[i] for i in range(len(dataset))]
        images = torch.stack([item["image"] for item in items])
        labels = np.array([int(item["label"]) for item in items])
        return images, labels, list(dataset.class_names)

    root, kind = locate(data)
    if kind == "mnist":
        tr_x, tr_y, names = load(data, "train")
        te_x, te_y, _ = load(data, "test")
        return tr_x, tr_y, te_x, te_y, names
    if (root / "train").is_dir() != (root / "test").is_dir():
        there, missing = ("train", "test") if (root / "train").is_dir() else ("test", "train")
        raise DataError(
            f"--data {data} has {there}/ but no {missing}/: give both (train/<class>/..., test/<class>/...), or a "
            "folder of class sub-folders, of which --test-fraction is held out."
        )
    if (root / "train").is_dir() and (root / "test").is_dir():
        tr_x, tr_y, names = load(str(root / "train"), "train")
        te_x, te_y, test_names = load(str(root / "test"), "train")
        if test_names != names:
            raise DataError(f"--data {data}: train/ has classes {names} but test/ has {test_names}.")
        return tr_x, tr_y, te_x, te_y, names
    x, y, names = load(data, "train")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test[members[: max(1, round(len(members) * test_fraction))]] = True
    if test.all():
        raise DataError(f"--data {data}: too few images per class to hold out a test set.")
    keep, held = np.flatnonzero(~test), np.flatnonzero(test)
    return x[keep], y[keep], x[held], y[held], names


def _check_unconditional(plugin, D: nn.Module) -> None:
    """The probe feeds D images of the data's channels alone; a D whose first convolution takes more
    (pix2pix's PatchGAN sees its input beside the image: 6 channels) is conditional and refused."""
    first = next((m for m in D.modules() if isinstance(m, nn.Conv2d)), None)
    channels = plugin.cfg.data.channels or 3
    if first is not None and first.in_channels != channels:
        raise GantkError(
            f"plugin '{plugin.cfg.plugin}''s D takes {first.in_channels}-channel inputs, not the data's {channels} "
            "channels: it is a conditional D (it sees an input beside the image, as pix2pix's does), and the probe "
            "runs D on images alone. Probe an unconditional GAN's D (DCGAN, StyleGAN2, InfoGAN)."
        )


def probe(
    plugin,
    D: nn.Module,
    data: str,
    device: torch.device | str = "cpu",
    labels_per_class: int = 0,
    C: float | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> ProbeReport:
    """The trained ``D`` and a random D of the same shape, each probed by a linear L2-SVM on ``data``."""
    start = time.perf_counter()
    device = torch.device(device)
    d = plugin.cfg.data
    _check_unconditional(plugin, D)
    tr_x, tr_y, te_x, te_y, names = labelled_splits(data, d.image_size, d.channels, test_fraction, seed)
    if len(names) < 2:
        raise DataError(f"--data {data}: one class ({', '.join(names)}); a classifier needs at least two classes.")
    picked = few_labels(tr_y, labels_per_class, seed)
    tr_x, tr_y = tr_x[picked], tr_y[picked]
    torch.manual_seed(seed)
    random_D = plugin.build_networks()["D"].to(device)  # the plugin's own initialisation, seeded
    scores = {}
    for which, net in (("trained", D.to(device)), ("random", random_D)):
        log.info("probe: %s D features of %d training and %d test images", which, len(tr_x), len(te_x))
        train_f, test_f = extract(net, tr_x, device), extract(net, te_x, device)
        scores[which] = fit_and_score(train_f, tr_y, test_f, te_y, C, seed)
    return ProbeReport(
        data=data,
        classes=names,
        labels_used=len(tr_y),
        labels_per_class=labels_per_class,
        test_images=len(te_y),
        feature_dim=int(train_f.shape[1]),
        layers=[name for name, _ in feature_layers(D)],
        trained=scores["trained"],
        random=scores["random"],
        seconds=time.perf_counter() - start,
    )


def report_markdown(report: ProbeReport, checkpoint: str) -> str:
    """The table ``probe.md`` holds."""
    return (
        f"# D as a feature extractor: {checkpoint} on {report.data}\n\n"
        f"Linear L2-SVM (LinearSVC) on D's convolutional features, each layer max-pooled to 4x4 "
        f"({report.feature_dim} dimensions from {', '.join(report.layers)}); {report.labels_used} labelled "
        f"training images ({report.labels_per_class or 'all'} per class), {report.test_images} test images.\n\n"
        "| D | test accuracy | C |\n|---|---|---|\n"
        f"| trained | {report.trained.accuracy:.4f} | {report.trained.C:g} |\n"
        f"| random init (baseline) | {report.random.accuracy:.4f} | {report.random.C:g} |\n"
    )


def write_report(report: ProbeReport, checkpoint: str, out: Path) -> None:
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps({"checkpoint": checkpoint, **report.to_dict()}, indent=1))
    (out / "probe.md").write_text(report_markdown(report, checkpoint))
