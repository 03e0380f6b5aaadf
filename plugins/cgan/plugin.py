"""CGAN (Mirza & Osindero, 2014): "Conditional Generative Adversarial Nets", arXiv:1411.1784.

Both networks are conditioned on the class label y by concatenation: G(z, y) and D(x, y). D sees real
images with their true label and fakes with the label they were drawn for, so to pass D, G has to make
images that look like real members of *their* class, not just like real images.
The loss is DCGAN's (non-saturating BCE on logits); ``model.arch`` picks the DCGAN-shaped ``conv``
networks (default) or the paper's ``mlp`` (see ``networks.py``). The number of classes and their names
come from the dataset (MNIST, or a folder with one sub-folder per class) and are saved in the config,
so a checkpoint samples without the data.

Evaluation is the classification accuracy score (``gantk.metrics.classifier``): a small CNN trained on
the real training images classifies ``eval.samples_per_class`` generated images per class; the best
checkpoint is kept by the overall accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, EvalConfig, EvalContext, GanPlugin, Phase, StepContext
from gantk.config import PathStr, PositiveInt, Range, Width
from gantk.errors import ConfigError, DataError
from gantk.init import normal_init
from gantk.io.images import save_grid
from gantk.metrics import classifier as clf
from gantk.metrics import samples
from gantk.sampling import sample_per_class

from .networks import ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator


@dataclass
class CGANModel:
    arch: Literal["conv", "mlp"] = "conv"
    nz: Width = 100  # length of z
    ngf: Width = 32  # conv: G's channels at the last hidden layer
    ndf: Width = 32  # conv: D's channels at the first layer
    hidden: list[Width] = field(default_factory=lambda: [256, 512, 1024])  # mlp: G's widths; D uses them reversed
    dropout: Annotated[float, Range(0, 1, hi_open=True)] = 0.3  # mlp: D's dropout
    class_names: list[str] = field(default_factory=list)  # filled from the dataset when empty


@dataclass
class CGANEval(EvalConfig):  # + fid_weights, fid_samples, fid_cache, seed
    classifier: PathStr = ""  # a saved classifier folder; empty: <run>/classifier, trained on first use
    classifier_steps: PositiveInt = 500
    samples_per_class: Annotated[int, Range(1, 100_000)] = 100


@dataclass
class CGANConfig(Config):
    model: CGANModel = field(default_factory=CGANModel)
    eval: CGANEval = field(default_factory=CGANEval)


class CGAN(GanPlugin):
    name = "cgan"
    description = "Conditional GAN (Mirza & Osindero 2014): class label concatenated into G's and D's inputs."
    config_class = CGANConfig
    best_mode = "max"

    cfg: CGANConfig

    def best_metric(self) -> str:
        return "accuracy"

    # ---- data ---------------------------------------------------------------------------------------
    def resolve(self, dataset: torch.utils.data.Dataset) -> dict[str, list[str]]:
        """The class names, from the labelled data: saved with every checkpoint, so sampling needs no data."""
        names = [str(n) for n in getattr(dataset, "class_names", ())]
        if not names:
            raise DataError(
                f"CGAN needs labelled data, and --data {self.cfg.data.name} has no classes: use mnist, or a "
                "folder with one sub-folder of images per class."
            )
        known = self.cfg.model.class_names
        if known and known != names:
            raise ConfigError(
                f"model.class_names {known} does not match the classes of --data {self.cfg.data.name}: {names}."
            )
        return {"model.class_names": names}

    def class_names(self) -> tuple[str, ...]:
        return tuple(self.cfg.model.class_names)

    # ---- networks and losses ----------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        m, d, k = self.cfg.model, self.cfg.data, len(self.cfg.model.class_names)
        if k < 2:
            raise ConfigError("CGAN needs at least 2 classes (model.class_names is filled from the dataset).")
        if m.arch == "conv":
            G = ConvGenerator(m.nz, k, m.ngf, d.channels, d.image_size)
            D = ConvDiscriminator(k, m.ndf, d.channels, d.image_size)
        else:
            G = MLPGenerator(m.nz, k, m.hidden, d.channels, d.image_size)
            D = MLPDiscriminator(k, m.hidden[::-1], d.channels, d.image_size, m.dropout)
        G.apply(normal_init)
        D.apply(normal_init)
        return {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        return [Phase.alternating(self.d_loss, self.g_loss)]

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        real, y = batch["image"], batch["label"]
        fake = G(ctx.randn(len(real), self.cfg.model.nz), y)  # fakes drawn for the batch's labels
        ctx.scratch["fake"] = fake
        real_logits, fake_logits = D(real, y), D(fake.detach(), y)
        ctx.observe_real(real_logits)  # and the fakes': what ADA and the training-health alarms read
        ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, real)
        ctx.log("D/real_logit", real_logits)  # their gap is D's over-fitting signal
        ctx.log("D/fake_logit", fake_logits)
        return {
            "real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        logits = ctx.nets["D"](ctx.scratch.pop("fake"), batch["label"])
        return {"adv": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}

    # ---- sampling ---------------------------------------------------------------------------------
    def label_index(self, label: int | str) -> int:
        """A class given by name or index -> its index; a clear error names the valid ones."""
        names = self.class_names()
        if isinstance(label, str):
            if label in names:
                return names.index(label)
            try:
                label = int(label)
            except ValueError:
                raise ConfigError(
                    f"label {label!r} is not a class of this model; classes: {', '.join(names)}."
                ) from None
        if not 0 <= label < len(names):
            raise ConfigError(
                f"label {label} is out of range: this model has {len(names)} classes, 0 to {len(names) - 1} "
                f"({', '.join(names[:12])}{' ...' if len(names) > 12 else ''})."
            )
        return label

    def sample_inputs(
        self, n: int, generator: torch.Generator, label: Any = None, **conditions: Any
    ) -> dict[str, torch.Tensor]:
        """``n`` z vectors with one class (``label``) or, without one, classes 0, 1, ... in turn."""
        z = torch.randn(n, self.cfg.model.nz, generator=generator)
        if label is None:
            y = torch.arange(n) % len(self.class_names())
        else:
            y = torch.full((n,), self.label_index(label), dtype=torch.int64)
        return {"z": z, "label": y}

    def generate(self, G: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return G(inputs["z"], inputs["label"])

    # ---- evaluation -------------------------------------------------------------------------------
    def judge(self, run_dir: Path, device: torch.device) -> clf.Classifier:
        """The classifier that scores samples: ``eval.classifier``, or the run's own, trained once."""
        e = self.cfg.eval
        return clf.run_judge(
            e.classifier,
            run_dir,
            lambda: self.build_dataset("train"),
            steps=e.classifier_steps,
            seed=e.seed,
            data_name=self.cfg.data.name,
            device=device,
        )

    @torch.no_grad()
    def metric_names(self) -> tuple[str, ...]:
        names = self.cfg.model.class_names
        accuracy = ("accuracy", "accuracy_min", *(f"accuracy/{n}" for n in names))
        intra = ("intra_fid", "intra_fid_max") if self.cfg.eval.fid_weights else ()
        return (*accuracy, *intra, *samples.metric_names(self.cfg.eval)) if names else ()

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        judge = self.judge(ctx.run_dir, ctx.device)
        names, m = self.class_names(), self.cfg.eval.samples_per_class
        if tuple(judge.spec.class_names) != names:
            raise ConfigError(f"the classifier's classes {judge.spec.class_names} are not this model's {names}.")
        images = sample_per_class(self, nets["G"], m, self.cfg.eval.seed, ctx.device)
        labels = torch.arange(len(names)).repeat_interleave(m)
        overall, per_class = clf.accuracy(clf.predict(judge, images), labels, len(names))
        shown = images.view(len(names), m, *images.shape[1:])[:, :10].flatten(0, 1)
        save_grid(shown, ctx.out_dir / f"step_{ctx.step:08d}.png", nrow=min(m, 10))
        metrics = {"accuracy": overall, "accuracy_min": min(per_class)}
        metrics.update({f"accuracy/{name}": acc for name, acc in zip(names, per_class, strict=True)})
        metrics |= samples.intra_class_fid(self, images, m, ctx)  # with eval.fid_weights: per class, averaged
        return metrics | samples.sample_metrics(self, nets["G"], ctx)  # FID/KID over the classes in turn
