"""CGAN: the label joins the inputs of both networks; sampling, the accuracy score and its errors."""

import subprocess
import sys

import pytest
import torch
from PIL import Image
from torch import nn

from gantk import registry
from gantk.config import FrozenConfigError
from gantk.engine.resolve import resolve_run
from gantk.errors import ConfigError, DataError
from gantk.io.generators import load_generator
from gantk.metrics import classifier as clf
from gantk.plugin import EvalContext
from gantk.sampling import sample, sample_per_class
from tests.helpers import write_image_folder
from tests.helpers.labels import level_of, write_grey_levels


def _plugin(classes=("a", "b", "c"), size=16, channels=1, **model):
    spec, cls = registry.load("cgan")
    model = {"ngf": 4, "ndf": 4, "nz": 8, "hidden": [16, 32], "class_names": list(classes), **model}
    layer = {"data": {"image_size": size, "channels": channels}, "model": model}
    return cls(registry.make_config(spec, cls, [(layer, "test")]))


@pytest.mark.parametrize("arch", ["conv", "mlp"])
@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3)])
def test_shapes(arch, size, channels):
    nets = _plugin(size=size, channels=channels, arch=arch).build_networks()
    y = torch.tensor([0, 2])
    x = nets["G"](torch.randn(2, 8), y)
    assert x.shape == (2, channels, size, size)
    assert nets["D"](x, y).shape == (2,)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_the_label_is_concatenated_into_both_inputs(arch):
    torch.manual_seed(0)
    nets = _plugin(arch=arch).build_networks()
    G, D = nets["G"].eval(), nets["D"].eval()
    first = next(m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    width = first.in_channels if arch == "conv" else first.in_features
    assert width == (1 + 3 if arch == "conv" else 16 * 16 + 3)  # image planes / pixels + one per class
    z = torch.randn(1, 8).expand(3, 8)
    fakes = G(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(fakes[0], fakes[1]) and not torch.allclose(fakes[1], fakes[2])
    image = fakes[:1].expand(3, -1, -1, -1)
    logits = D(image, torch.tensor([0, 1, 2]))
    assert len(set(logits.tolist())) == 3  # same image, different label, different verdict


def test_labels_by_name_or_index_and_a_clear_range_error():
    plugin = _plugin()
    assert plugin.label_index("b") == 1 and plugin.label_index(2) == 2 and plugin.label_index("0") == 0
    with pytest.raises(ConfigError, match="3 classes, 0 to 2"):
        plugin.label_index(3)
    with pytest.raises(ConfigError, match="3 classes, 0 to 2"):
        plugin.label_index(-1)
    with pytest.raises(ConfigError, match="not a class of this model; classes: a, b, c"):
        plugin.label_index("zebra")


def test_sample_inputs_one_class_or_every_class_in_turn():
    plugin = _plugin()
    g = torch.Generator().manual_seed(0)
    assert plugin.sample_inputs(5, g)["label"].tolist() == [0, 1, 2, 0, 1]
    assert plugin.sample_inputs(4, g, label="c")["label"].tolist() == [2, 2, 2, 2]


def test_same_z_every_class_keeps_z_and_changes_only_the_label():
    plugin = _plugin()
    nets = plugin.build_networks()
    seen = []
    plugin.generate = lambda G, inputs: seen.append(inputs) or torch.zeros(len(inputs["z"]), 1, 16, 16)
    sample_per_class(plugin, nets["G"], 4, seed=7, same_z=True)
    sample_per_class(plugin, nets["G"], 4, seed=7, same_z=False)
    same, mixed = seen
    assert same["label"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(same["z"][:4], same["z"][4:8]) and torch.equal(same["z"][:4], same["z"][8:])
    assert not torch.equal(mixed["z"][:4], mixed["z"][4:8])


def test_unlabelled_data_is_refused(tmp_path):
    plugin = _plugin(classes=())
    plugin.cfg.data.name = str(write_image_folder(tmp_path / "flat", n=4))
    with pytest.raises(DataError, match="CGAN needs labelled data"):
        resolve_run(plugin)


def test_classes_come_from_the_dataset(tmp_path):
    plugin = _plugin(classes=())
    plugin.cfg.data.name = str(write_grey_levels(tmp_path / "levels", per_class=2))
    resolve_run(plugin)
    assert plugin.class_names() == ("dark", "light", "mid")
    with pytest.raises(FrozenConfigError):  # resolved from the data once: the config does not change after
        plugin.cfg.model.class_names = ["x", "y", "z"]
    plugin = _plugin(classes=["x", "y", "z"])
    plugin.cfg.data.name = str(write_grey_levels(tmp_path / "levels", per_class=2))
    with pytest.raises(ConfigError, match="does not match the classes"):
        resolve_run(plugin)


class _Painter(nn.Module):
    """A fake generator that paints each class's grey level (or always ``fixed``'s, ignoring y)."""

    def __init__(self, names, fixed=None):
        super().__init__()
        self.levels = torch.tensor([level_of(n) for n in names])
        self.fixed = fixed

    def forward(self, z, y):
        y = torch.full_like(y, self.fixed) if self.fixed is not None else y
        return self.levels[y].view(-1, 1, 1, 1).expand(-1, 1, 16, 16) + 0.01 * z[:, :1, None, None]


def test_accuracy_score_rewards_following_the_label(tmp_path):
    root = write_grey_levels(tmp_path / "levels", per_class=16)
    plugin = _plugin(classes=())
    plugin.cfg.data.name = str(root)
    names = list(plugin.build_dataset().class_names)
    judge, held = clf.train_classifier(plugin.build_dataset(), steps=60, batch_size=16, width=4, holdout=0.25)
    assert held == 1.0
    plugin.cfg.eval.classifier = str(clf.save_classifier(judge, tmp_path / "judge"))
    plugin.cfg.eval.samples_per_class = 8
    resolve_run(plugin)
    ctx = EvalContext(torch.device("cpu"), 5, tmp_path / "run" / "eval")

    good = plugin.evaluate({"G": _Painter(names)}, ctx)
    assert good["accuracy"] == 1.0 and good["accuracy_min"] == 1.0
    accuracy = {"accuracy", "accuracy_min", "accuracy/dark", "accuracy/light", "accuracy/mid"}
    assert set(good) == accuracy | {"kid_pixels"} == set(plugin.metric_names())  # + FID/KID's stand-in
    assert (ctx.out_dir / "step_00000005.png").is_file()

    ignores_label = plugin.evaluate({"G": _Painter(names, fixed=names.index("mid"))}, ctx)
    assert ignores_label["accuracy"] == pytest.approx(1 / 3)
    assert ignores_label["accuracy/mid"] == 1.0 and ignores_label["accuracy/dark"] == 0.0
    assert ignores_label["accuracy_min"] == 0.0
    assert ignores_label["kid_pixels"] > max(0.0, good["kid_pixels"])  # one grey level is not the three of the data


def _gantk(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gantk", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny CGAN trained through the CLI on a 3-class folder, evaluated with a run-cached classifier."""
    tmp = tmp_path_factory.mktemp("cgan")
    root = write_grey_levels(tmp / "levels", per_class=8)
    out = tmp / "run"
    sets = [
        "data.image_size=16", "model.ngf=4", "model.ndf=4", "model.nz=8", "train.batch_size=8",
        "train.eval_every=4", "train.checkpoint_every=4", "train.sample_every=4", "train.sample_count=6",
        "train.tensorboard=false", "eval.classifier_steps=5", "eval.samples_per_class=4",
    ]  # fmt: skip
    args = ["train", "plugins/cgan", "--data", str(root), "--out", str(out), "--max-steps", "4", "--device", "cpu"]
    result = _gantk(*args, *[a for s in sets for a in ("--set", s)])
    assert result.returncode == 0, result.stderr
    return out


def test_run_records_classes_and_caches_its_classifier(run):
    plugin, _ = load_generator(run)
    assert plugin.class_names() == ("dark", "light", "mid")
    assert (run / "classifier" / clf.WEIGHTS).is_file()
    assert (run / "checkpoints" / "best").is_dir()  # kept by the accuracy score


def test_sample_one_class_and_one_row_per_class(run, tmp_path):
    result = _gantk("sample", str(run), "--label", "light", "-n", "4", "-o", str(tmp_path / "light.png"))
    assert result.returncode == 0, result.stderr
    result = _gantk("sample", str(run), "-n", "5", "-o", str(tmp_path / "rows.png"))
    assert result.returncode == 0, result.stderr
    width, height = Image.open(tmp_path / "rows.png").size
    assert (width, height) == (2 + 5 * 18, 2 + 3 * 18)  # 5 columns, 3 rows (classes) of 16 px + padding


def test_label_out_of_range_is_a_clear_cli_error(run, tmp_path):
    result = _gantk("sample", str(run), "--label", "7", "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "label 7 is out of range: this model has 3 classes, 0 to 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_ships_only_the_generator_and_samples_the_same(run, tmp_path):
    result = _gantk("export", str(run), "--best", "-o", str(tmp_path / "shipped"))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "shipped").iterdir()}
    assert names == {"config.json", "G.safetensors", "manifest.json"}
    plugin, G = load_generator(run, which="best")
    shipped_plugin, shipped_G = load_generator(tmp_path / "shipped")
    assert shipped_plugin.class_names() == plugin.class_names()
    expected = sample(plugin, G, 6, seed=3, label="mid")
    assert torch.equal(sample(shipped_plugin, shipped_G, 6, seed=3, label="mid"), expected)


def test_label_on_an_unconditional_model_is_refused(tmp_path, image_folder):
    out = tmp_path / "dc"
    sets = ["data.image_size=16", "model.ngf=4", "model.ndf=4", "model.nz=8", "train.batch_size=8"]
    args = ["train", "plugins/dcgan", "--data", str(image_folder), "--out", str(out), "--max-steps", "1"]
    assert _gantk(*args, *[a for s in sets for a in ("--set", s)]).returncode == 0
    result = _gantk("sample", str(out), "--label", "1", "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "not class-conditional" in result.stderr


def test_eval_command_scores_a_checkpoint_with_a_given_judge(run, tmp_path):
    import json

    out = tmp_path / "scored"
    judge = run / "classifier"
    result = _gantk("eval", str(run), "--best", "--set", f"eval.classifier={judge}", "-o", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "accuracy_min", "accuracy/dark", "accuracy/light", "accuracy/mid"} <= set(metrics)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    at_best = next(r for r in logged if r.get("step") == metrics["step"] and "eval/accuracy" in r)
    assert metrics["accuracy"] == pytest.approx(at_best["eval/accuracy"])  # the same score training logged
    result = _gantk("eval", str(run), "--set", "eval.classifier=/nowhere", "-o", str(out))
    assert result.returncode == 2 and "eval.classifier /nowhere does not exist" in result.stderr
    result = _gantk("eval", str(run), "--set", f"eval.classifier={tmp_path}", "-o", str(out))
    assert result.returncode == 2 and f"eval.classifier {tmp_path} is not a classifier folder" in result.stderr


def test_intra_class_fid_compares_each_class_with_its_own_real_images(tmp_path, fid_weights):
    from gantk.metrics import samples

    root = write_grey_levels(tmp_path / "levels", per_class=16)
    plugin = _plugin(classes=())
    plugin.cfg.data.name = str(root)
    plugin.cfg.eval.fid_weights = str(fid_weights)
    plugin.cfg.eval.fid_cache = str(tmp_path / "cache")
    names = list(plugin.build_dataset().class_names)
    resolve_run(plugin)
    ctx = EvalContext(torch.device("cpu"), 0, tmp_path / "eval")
    good = sample_per_class(plugin, _Painter(names), 8, seed=0)
    ignores = sample_per_class(plugin, _Painter(names, fixed=names.index("mid")), 8, seed=0)
    follows = samples.intra_class_fid(plugin, good, 8, ctx)
    wrong = samples.intra_class_fid(plugin, ignores, 8, ctx)
    assert set(follows) == {"intra_fid", "intra_fid_max"} and ctx.protocol["intra_fid_images_per_class"] == 8
    assert follows["intra_fid_max"] >= follows["intra_fid"] > 0
    assert wrong["intra_fid"] > follows["intra_fid"]  # dark and light samples of the wrong grey score worse
    assert "intra_fid" in plugin.metric_names()
    bare = _plugin()  # no eval.fid_weights: no intra-class FID, and none announced
    assert samples.intra_class_fid(bare, good, 8, ctx) == {} and "intra_fid" not in bare.metric_names()
