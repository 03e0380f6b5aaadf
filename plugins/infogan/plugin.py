"""InfoGAN (Chen, Duan, Houthooft, Schulman, Sutskever & Abbeel, 2016): "InfoGAN: Interpretable
Representation Learning by Information Maximizing Generative Adversarial Nets", NeurIPS.

G draws from noise z and a structured code c: one categorical code ``c1`` of ``model.categorical`` values
and ``model.continuous`` codes ``c2, c3, ...`` uniform in [-1, 1] (the paper's MNIST setting: 62 noise
dimensions, 10 values, 2 continuous codes). No label is ever seen. A head Q on D's body predicts c from
the image, and G and Q maximise a lower bound of the mutual information I(c; G(z, c)):

    D:       BCE(D(x), 1) + BCE(D(G(z, c)), 0)                          (optimizer D, 2e-4)
    G and Q: BCE(D(G(z, c)), 1) + lambda_cat * CE(Q_cat, c1)
             + lambda_cont * 0.5 * |c_cont - Q_mean|^2                   (optimizer G, 1e-3, one update)

The continuous part is the negative log-likelihood of a unit-variance Gaussian, up to a constant; the
paper sets lambda 1 for discrete codes and smaller for continuous ones (0.1 here). One ``Update`` steps G
and Q together (contract 2); D's body is frozen there, so it learns from D's loss alone.

Evaluation, the paper's number: the project's MNIST classifier labels ``eval.samples_per_code`` samples
of each categorical value, code values are matched one-to-one to digits (Hungarian matching), and the
matched accuracy is ``cat_accuracy`` (the paper reports about 5 % error). ``gantk sample RUN --traverse
c2`` draws the paper's figure: rows are c1's values, columns vary c2 from -2 to 2, all else fixed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, EvalConfig, EvalContext, GanPlugin, Phase, StepContext, Update
from gantk.config import NonNegative, PathStr, PositiveInt, Range, Width
from gantk.errors import ConfigError
from gantk.init import normal_init
from gantk.io.images import save_grid
from gantk.metrics import classifier as clf
from gantk.metrics import samples
from gantk.plugin import LatentCode, generate_in_chunks

from .networks import InfoDiscriminator, InfoGenerator, QHead, code_vector


@dataclass
class InfoGANModel:
    nz: Annotated[int, Range(0, 4096)] = 62  # incompressible noise z
    categorical: Annotated[int, Range(0, 1000)] = 10  # values of the categorical code c1; 0: none
    continuous: Annotated[int, Range(0, 64)] = 2  # continuous codes c2, c3, ... uniform in [-1, 1]
    width: Width = 64  # G's last and D's first conv width (the paper: 64; 128 next to the FC layers)


@dataclass
class InfoGANLoss:
    lambda_cat: NonNegative = 1.0  # the paper: 1 for discrete codes
    lambda_cont: NonNegative = 0.1  # smaller for continuous codes, so both terms are of a size


@dataclass
class InfoGANEval(EvalConfig):  # + fid_weights, fid_samples, fid_cache, seed
    classifier: PathStr = ""  # a saved classifier folder; empty: <run>/classifier, trained on first use
    classifier_steps: PositiveInt = 500
    samples_per_code: Annotated[int, Range(1, 100_000)] = 200


@dataclass
class InfoGANConfig(Config):
    model: InfoGANModel = field(default_factory=InfoGANModel)
    loss: InfoGANLoss = field(default_factory=InfoGANLoss)
    eval: InfoGANEval = field(default_factory=InfoGANEval)


class InfoGAN(GanPlugin):
    name = "infogan"
    description = (
        "InfoGAN (Chen et al. 2016): a categorical and continuous latent code learnt without labels, via Q on D."
    )
    config_class = InfoGANConfig
    best_mode = "max"

    cfg: InfoGANConfig

    def best_metric(self) -> str:
        return "cat_accuracy"

    # ---- the code ---------------------------------------------------------------------------------
    def latent_codes(self) -> tuple[LatentCode, ...]:
        """The paper's names: ``c1`` the categorical code (when there is one), then ``c2, c3, ...``."""
        m = self.cfg.model
        first = 2 if m.categorical else 1
        cat = (LatentCode("c1", "categorical", m.categorical),) if m.categorical else ()
        return cat + tuple(LatentCode(f"c{first + i}", "continuous") for i in range(m.continuous))

    def coded_inputs(self, n: int, generator: torch.Generator, codes: dict[str, float]) -> dict[str, torch.Tensor]:
        """``n`` inputs whose codes named in ``codes`` are fixed (``{"c1": 3, "c2": 1.5}``), the rest drawn."""
        names = [c.name for c in self.latent_codes()]
        unknown = sorted(set(codes) - set(names))
        if unknown:
            raise ConfigError(f"latent code {unknown[0]!r} is not one of this model's: {', '.join(names)}.")
        inputs = self.sample_inputs(n, generator, code=int(codes["c1"]) if "c1" in codes else None)
        offset = 1 if self.cfg.model.categorical else 0
        for i, name in enumerate(names[offset:]):
            if name in codes:
                inputs["c_cont"][:, i] = float(codes[name])
        return inputs

    def check_config(self) -> None:
        m, d = self.cfg.model, self.cfg.data
        if d.image_size % 4 or d.image_size < 8:
            raise ConfigError(
                f"data.image_size={d.image_size}: InfoGAN's networks halve the image twice, so it must be a "
                "multiple of 4 and at least 8 (MNIST: 28)."
            )
        if not m.categorical and not m.continuous:
            raise ConfigError("model.categorical and model.continuous are both 0: InfoGAN needs a latent code.")
        if m.categorical == 1:
            raise ConfigError("model.categorical=1 is a constant, not a code: use 0 (none) or at least 2 values.")

    # ---- networks and losses ----------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        m, d = self.cfg.model, self.cfg.data
        self.check_config()
        nets = {
            "G": InfoGenerator(m.nz + m.categorical + m.continuous, d.channels, d.image_size, m.width),
            "D": InfoDiscriminator(d.channels, d.image_size, m.width),
            "Q": QHead(m.categorical, m.continuous),
        }
        for net in nets.values():
            net.apply(normal_init)
        return nets

    def phases(self) -> list[Phase]:
        # G and Q share one optimizer (optim.G); D's body is frozen while they learn
        return [Phase("gan", (Update("D", self.d_loss), Update(("G", "Q"), self.g_loss, freeze=("D",), optimizer="G")))]

    def _draw_codes(self, n: int, ctx: StepContext) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        c_cat = (ctx.rand(n) * m.categorical).long().clamp_(max=max(0, m.categorical - 1))
        return {"z": ctx.randn(n, m.nz), "c_cat": c_cat, "c_cont": ctx.rand(n, m.continuous) * 2 - 1}

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        real = batch["image"]
        codes = self._draw_codes(len(real), ctx)
        fake = self.generate(G, codes)
        ctx.scratch.update(fake=fake, codes=codes)  # the G and Q update of this step reuses them
        real_logits, _ = D(real)
        fake_logits, _ = D(fake.detach())
        ctx.observe_real(real_logits)  # and the fakes': what ADA and the training-health alarms read
        ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, real)
        return {
            "real": F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        m, loss = self.cfg.model, self.cfg.loss
        fake, codes = ctx.scratch.pop("fake"), ctx.scratch.pop("codes")
        logits, features = ctx.nets["D"](fake)
        cat_logits, means = ctx.nets["Q"](features)
        terms = {"adv": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}
        if m.categorical:  # cross-entropy as a sum over the one-hot: no host check of the targets
            target = codes["c_cat"][:, None] == torch.arange(m.categorical, device=fake.device)
            log_q = F.log_softmax(cat_logits.float(), 1)
            terms["info_cat"] = -loss.lambda_cat * (log_q * target).sum(1).mean()
            ctx.log("Q/cat_agreement", (cat_logits.argmax(1) == codes["c_cat"]).float())
        if m.continuous:
            terms["info_cont"] = loss.lambda_cont * 0.5 * (means.float() - codes["c_cont"]).pow(2).sum(1).mean()
        return terms

    # ---- sampling ---------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, code: int | None = None, **conditions: Any):
        """``n`` inputs: z ~ N(0, 1), c2.. ~ U(-1, 1), and c1's values in turn (or all ``code``), so a grid of
        ``k * categorical`` samples has one categorical value per column."""
        m = self.cfg.model
        z = torch.randn(n, m.nz, generator=generator)
        c_cont = torch.rand(n, m.continuous, generator=generator) * 2 - 1
        if code is None:
            c_cat = torch.arange(n) % max(1, m.categorical)
        else:
            if not 0 <= int(code) < max(1, m.categorical):
                raise ConfigError(f"categorical code value {code} is out of range 0..{m.categorical - 1}.")
            c_cat = torch.full((n,), int(code), dtype=torch.int64)
        return {"z": z, "c_cat": c_cat, "c_cont": c_cont}

    def generate(self, G: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return G(code_vector(inputs["z"], inputs["c_cat"], inputs["c_cont"], self.cfg.model.categorical))

    def traversal_inputs(
        self, code: str, steps: int, generator: torch.Generator, span: float = 2.0
    ) -> tuple[dict[str, torch.Tensor], int]:
        """The paper's figure: for a continuous code, rows are c1's values and columns take the code from
        -``span`` to ``span`` (beyond the [-1, 1] it trained on), z and the other codes fixed (one z, other
        continuous codes 0); for c1, rows are ``steps`` draws of z and columns are c1's values. Returns the
        inputs and the row length."""
        m, codes = self.cfg.model, tuple(c.name for c in self.latent_codes())
        if code not in codes:
            raise ConfigError(f"--traverse {code}: this model's latent codes are {', '.join(codes)}.")
        rows = max(1, m.categorical)
        if code == "c1" and m.categorical:
            z = torch.randn(steps, m.nz, generator=generator).repeat_interleave(m.categorical, 0)
            c_cat = torch.arange(m.categorical).repeat(steps)
            return {"z": z, "c_cat": c_cat, "c_cont": torch.zeros(len(z), m.continuous)}, m.categorical
        index = codes.index(code) - (1 if m.categorical else 0)
        z = torch.randn(1, m.nz, generator=generator).expand(rows * steps, -1).clone()
        c_cont = torch.zeros(rows * steps, m.continuous)
        c_cont[:, index] = torch.linspace(-span, span, steps).repeat(rows)
        c_cat = torch.arange(rows).repeat_interleave(steps)
        return {"z": z, "c_cat": c_cat, "c_cont": c_cont}, steps

    # ---- evaluation -------------------------------------------------------------------------------
    def metric_names(self) -> tuple[str, ...]:
        accuracy = ("cat_accuracy",) if self.cfg.model.categorical else ()
        return (*accuracy, *samples.metric_names(self.cfg.eval))

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        metrics = self.code_accuracy(nets["G"], ctx) if self.cfg.model.categorical else {}
        return metrics | samples.sample_metrics(self, nets["G"], ctx)

    def code_accuracy(self, G: nn.Module, ctx: EvalContext) -> dict[str, float]:
        """``cat_accuracy``: samples of each c1 value classified by a classifier of real labelled images,
        code values matched one-to-one to classes; a grid ``codes_XXXXXXXX.png`` with one row per code value,
        ordered by the class it was matched to."""
        e, k = self.cfg.eval, self.cfg.model.categorical

        def labelled_train():  # read only when the run's own classifier must be trained
            train = self.build_dataset("train")
            return train if getattr(train, "class_names", None) else None

        judge = clf.run_judge(
            e.classifier,
            ctx.run_dir,
            labelled_train,
            steps=e.classifier_steps,
            seed=e.seed,
            data_name=self.cfg.data.name,
            device=ctx.device,
        )
        if judge is None:  # said once: Python shows a warning once per place
            warnings.warn(
                f"cat_accuracy skipped: --data {self.cfg.data.name} has no labels and eval.classifier is "
                "empty, so nothing can say which class a sample is.",
                stacklevel=2,
            )
            return {}
        g = torch.Generator().manual_seed(e.seed)
        per_code = [self.sample_inputs(e.samples_per_code, g, code=c) for c in range(k)]
        inputs = {key: torch.cat([p[key] for p in per_code]) for key in per_code[0]}
        images = generate_in_chunks(self, G, inputs, ctx.device)
        predicted = clf.predict(judge, images)
        accuracy, assignment = clf.matched_accuracy(predicted, inputs["c_cat"], k, judge.spec.num_classes)
        order = sorted(range(k), key=lambda c: (assignment[c] < 0, assignment[c]))
        shown = images.view(k, e.samples_per_code, *images.shape[1:])[order, :10].flatten(0, 1)
        save_grid(shown, ctx.out_dir / f"codes_{ctx.step:08d}.png", nrow=min(10, e.samples_per_code))
        return {"cat_accuracy": accuracy}
