"""InfoGAN: the paper's networks and rates, G and Q in one update, exact resume, the traversal figure,
and the categorical code scored by Hungarian matching."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from gantk.engine import Trainer
from gantk.errors import ConfigError
from gantk.metrics.classifier import matched_accuracy
from gantk.sampling import traverse
from gantk.testing import check_plugin
from tests.helpers import REPO, write_mnist
from tests.helpers.zoo import tiny_infogan

MNIST_CLASSIFIER = REPO / "apps" / "checkpoints" / "mnist-classifier"  # the project's own (gantk classifier)


@pytest.fixture
def mnist(tmp_path):
    return write_mnist(tmp_path / "mnist", n=40)


def test_the_paper_settings_are_the_defaults(mnist):
    plugin = tiny_infogan(mnist, model={"width": 64, "nz": 62}, data={"image_size": 28})
    cfg = plugin.cfg
    assert (cfg.model.nz, cfg.model.categorical, cfg.model.continuous) == (62, 10, 2)
    assert (cfg.optim["D"].lr, cfg.optim["G"].lr) == (2e-4, 1e-3) and cfg.loss.lambda_cat == 1.0
    assert [(c.name, c.kind, c.values) for c in plugin.latent_codes()] == [
        ("c1", "categorical", 10),
        ("c2", "continuous", 0),
        ("c3", "continuous", 0),
    ]
    cfg.data.channels = 1
    nets = plugin.build_networks()
    assert nets["G"].fc[0].in_features == 74  # 62 + 10 + 2
    assert nets["G"](torch.zeros(2, 74)).shape == (2, 1, 28, 28)
    logit, features = nets["D"](torch.zeros(2, 1, 28, 28))
    assert logit.shape == (2,) and features.shape == (2, 1024)
    cat, means = nets["Q"](features)
    assert cat.shape == (2, 10) and means.shape == (2, 2)


def test_g_and_q_share_one_optimizer_and_d_learns_from_its_own_loss(mnist, tmp_path):
    trainer = Trainer(tiny_infogan(mnist), tmp_path / "run")
    trainer.setup()
    assert trainer.optimizer_groups == {"D": ("D",), "G": ("G", "Q")}
    q_before = [p.clone() for p in trainer.nets["Q"].parameters()]
    trainer.fit()
    assert not all(torch.equal(a, b) for a, b in zip(q_before, trainer.nets["Q"].parameters(), strict=True))
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"G/adv", "G/info_cat", "G/info_cont", "Q/cat_agreement", "D/real", "lr/G"} <= set(record)


def test_resume_is_exact(mnist, tmp_path):
    final = Trainer(tiny_infogan(mnist, train={"max_steps": 6}), tmp_path / "a").fit()
    Trainer(tiny_infogan(mnist, train={"max_steps": 3}), tmp_path / "b").fit()
    again = Trainer(tiny_infogan(mnist, train={"max_steps": 6}), tmp_path / "b", resume=True).fit()
    for net in ("G", "D", "Q"):
        a, b = load_file(final / f"{net}.safetensors"), load_file(again / f"{net}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), net


def test_the_traversal_grid_varies_one_code_along_rows(mnist):
    plugin = tiny_infogan(mnist)
    inputs, nrow = plugin.traversal_inputs("c3", 5, torch.Generator().manual_seed(0))
    assert nrow == 5 and len(inputs["z"]) == 50
    assert torch.equal(inputs["c_cat"], torch.arange(10).repeat_interleave(5))  # row k: c1 = k
    assert torch.equal(inputs["c_cont"][:, 1], torch.linspace(-2, 2, 5).repeat(10))  # c3 is the second one
    assert not inputs["c_cont"][:, 0].any() and (inputs["z"] == inputs["z"][0]).all()  # all else fixed
    inputs, nrow = plugin.traversal_inputs("c1", 3, torch.Generator().manual_seed(0))
    assert nrow == 10 and torch.equal(inputs["c_cat"], torch.arange(10).repeat(3))
    assert torch.equal(inputs["z"][0], inputs["z"][9]) and not torch.equal(inputs["z"][0], inputs["z"][10])
    with pytest.raises(ConfigError, match="latent codes are c1, c2, c3"):
        plugin.traversal_inputs("c4", 5, torch.Generator())


def test_coded_inputs_fix_the_named_codes_and_draw_the_rest(mnist):
    plugin = tiny_infogan(mnist)
    inputs = plugin.coded_inputs(4, torch.Generator().manual_seed(0), {"c1": 7, "c3": -1.5})
    assert (inputs["c_cat"] == 7).all() and (inputs["c_cont"][:, 1] == -1.5).all()
    assert len(set(inputs["c_cont"][:, 0].tolist())) == 4  # c2 drawn per sample
    with pytest.raises(ConfigError, match="'c7' is not one of this model's: c1, c2, c3"):
        plugin.coded_inputs(1, torch.Generator(), {"c7": 0})


def test_traverse_draws_the_figure_from_a_checkpoint(mnist, tmp_path):
    plugin = tiny_infogan(mnist)
    Trainer(plugin, tmp_path / "run").fit()
    from gantk.io.generators import load_generator

    loaded, G = load_generator(tmp_path / "run")
    images, nrow = traverse(loaded, G, "c2", 6, seed=1)
    again, _ = traverse(loaded, G, "c2", 6, seed=1)
    assert images.shape == (60, 1, 16, 16) and nrow == 6 and torch.equal(images, again)
    assert not torch.equal(images[0], images[5])  # c2 changes the picture along a row


def test_hungarian_matching_recovers_a_known_permutation():
    perm = torch.tensor([3, 0, 4, 1, 2])
    codes = torch.arange(5).repeat(20)
    predicted = perm[codes].clone()
    predicted[::10] = (predicted[::10] + 1) % 5  # 10 % wrong
    accuracy, assignment = matched_accuracy(predicted, codes, 5, 5)
    assert assignment == perm.tolist() and accuracy == pytest.approx(0.9)
    # a code that draws one class for every value cannot score more than 1/K
    accuracy, _ = matched_accuracy(torch.zeros(100, dtype=torch.long), codes, 5, 5)
    assert accuracy == pytest.approx(0.2)


def test_evaluation_reports_the_matched_code_accuracy(mnist, tmp_path):
    plugin = tiny_infogan(
        mnist,
        train={"eval_every": 2, "max_steps": 2},
        eval={"classifier": str(MNIST_CLASSIFIER), "samples_per_code": 4, "fid_samples": 16},
    )
    Trainer(plugin, tmp_path / "run").fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [r["eval/cat_accuracy"] for r in rows if "eval/cat_accuracy" in r]
    assert len(scores) == 1 and 0 <= scores[0] <= 1
    assert (tmp_path / "run" / "eval" / "codes_00000002.png").is_file()
    assert (tmp_path / "run" / "checkpoints" / "best").is_dir()  # kept by cat_accuracy


def test_infogan_conforms(mnist, tmp_path):
    overrides = ["model.width=4", "model.nz=6", "data.image_size=16", "train.batch_size=8"]
    assert all(r.status == "passed" for r in check_plugin("infogan", data=mnist, overrides=overrides, workdir=tmp_path))


def test_unlabelled_data_skips_the_code_accuracy_with_a_warning(image_folder, tmp_path):
    plugin = tiny_infogan(image_folder, eval={"fid_samples": 8, "samples_per_code": 2})
    from gantk.plugin import EvalContext

    with pytest.warns(UserWarning, match="cat_accuracy skipped: --data .* has no labels"):
        assert plugin.code_accuracy(plugin.build_networks()["G"].eval(), EvalContext("cpu", 0, tmp_path / "eval")) == {}
    assert not (tmp_path / "classifier").exists()  # nothing was trained on data without labels
