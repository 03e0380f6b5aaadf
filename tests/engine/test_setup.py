"""Contract 2 in the engine: one optimizer over several networks, generators per direction with their own
EMA, frozen auxiliary modules placed by the engine; and the refusals of rhythms that cannot be meant."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gantk import Phase, Update
from gantk.engine import Trainer, preflight
from gantk.engine.setup import check_phases, place_aux
from gantk.errors import ConfigError, GantkError, PluginError
from tests.engine.test_step import _watch_every_step
from tests.helpers import tiny_dcgan
from tests.helpers.twogen import TwoGenerators


def two_generators(image_folder, **train) -> TwoGenerators:
    plugin = tiny_dcgan(image_folder, train={"sample_every": 0, **train})[1]
    return TwoGenerators(plugin.cfg)


def _state(folder, names=("G", "G2", "D", "G_ema", "G2_ema")):
    return {f"{n}.{k}": v for n in names for k, v in load_file(folder / f"{n}.safetensors").items()}


def test_one_optimizer_steps_both_generators_and_logs_under_its_name(image_folder, tmp_path):
    plugin = two_generators(image_folder, log_every=1, max_steps=3)
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.setup()
    assert sorted(trainer.optimizers) == ["D", "G"]
    assert trainer.optimizer_groups == {"D": ("D",), "G": ("G", "G2")}
    stepped = {id(p) for group in trainer.optimizers["G"].param_groups for p in group["params"]}
    assert stepped == {id(p) for n in ("G", "G2") for p in trainer.nets[n].parameters()}
    before = {n: [p.clone() for p in trainer.nets[n].parameters()] for n in ("G", "G2")}
    trainer.fit()
    for name, params in before.items():
        assert not all(torch.equal(a, b) for a, b in zip(params, trainer.nets[name].parameters(), strict=True)), name
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"G/adv", "G/adv2", "G/matching", "G/loss", "D/fake2", "lr/G", "lr/D"} <= set(record)


def test_aux_modules_are_placed_frozen_and_stay_out_of_checkpoints(image_folder, tmp_path):
    trainer = Trainer(two_generators(image_folder, max_steps=2), tmp_path / "run")
    final = trainer.fit()
    feat = trainer.aux["feat"]
    assert not feat.training and not any(p.requires_grad for p in feat.parameters())
    assert torch.equal(feat.weight, TwoGenerators.build_aux(trainer.plugin)["feat"].weight)  # never trained
    assert not any("feat" in p.name for p in final.iterdir())


def test_aux_modules_move_to_the_training_device():
    tc = type("TC", (), {"compile": "off"})()
    placed = place_aux({"feat": nn.Conv2d(1, 2, 3)}, torch.device("meta"), torch.preserve_format, tc)
    assert placed["feat"].weight.device.type == "meta" and not placed["feat"].weight.requires_grad
    with pytest.raises(PluginError, match="build_aux.*'feat'.*not an nn.Module"):
        place_aux({"feat": "vgg.pth"}, torch.device("cpu"), torch.preserve_format, tc)


def test_the_memory_check_counts_aux_modules(image_folder):
    plugin = two_generators(image_folder)
    with torch.device("meta"):
        huge = nn.Linear(1 << 20, 1 << 20)  # 4 TB of float32 weights, on the meta device: nothing allocated
    with pytest.raises(ConfigError, match=r"aux vgg .* GB"):
        preflight.check_resources(plugin, torch.device("cpu"), {"G", "G2", "D"}, {"G", "D"}, {"vgg": huge})
    preflight.check_resources(plugin, torch.device("cpu"), {"G", "G2", "D"}, {"G", "D"}, {})


def test_each_direction_has_its_own_ema_and_resume_is_exact(image_folder, tmp_path):
    ema = {"enabled": True, "decay": 0.9}
    straight = Trainer(two_generators(image_folder, max_steps=6, ema=ema), tmp_path / "straight")
    a = _state(straight.fit())
    assert set(straight.emas) == {"G", "G2"}
    assert straight.sampling_generator("G2") is straight.emas["G2"].module
    Trainer(two_generators(image_folder, max_steps=3, ema=ema), tmp_path / "resumed").fit()
    b = _state(Trainer(two_generators(image_folder, max_steps=6, ema=ema), tmp_path / "resumed", resume=True).fit())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]


def test_a_grouped_update_reads_nothing_on_the_host(image_folder, tmp_path):
    trainer = Trainer(two_generators(image_folder, max_steps=4, ema={"enabled": True}), tmp_path / "run")
    assert _watch_every_step(trainer) == [0, 1, 2, 3]


def _nets():
    return {n: nn.Linear(1, 1) for n in ("G", "G2", "D", "Q")}


def _loss(batch, ctx):
    return {}


@pytest.mark.parametrize(
    "updates, match",
    [
        (
            (Update("D", _loss), Update(("G", "D"), _loss, optimizer="G")),
            "network 'D' is stepped by optimizers 'D' and 'G'",
        ),
        ((Update(("G", "Q"), _loss, optimizer="G"), Update(("G", "G2"), _loss, optimizer="G")), "optimizer 'G' steps"),
        ((Update(("G", "G"), _loss, optimizer="G"),), r"names \('G', 'G'\)"),
        ((Update(("G", "X"), _loss, optimizer="G"),), "names network 'X'"),
    ],
)
def test_rhythms_that_cannot_be_meant_are_refused(image_folder, updates, match):
    cfg = tiny_dcgan(image_folder)[1].cfg
    with pytest.raises(PluginError, match=match):
        check_phases(cfg, [Phase("gan", updates)], _nets())


def test_a_group_without_its_optimizer_section_names_it(image_folder):
    cfg = tiny_dcgan(image_folder)[1].cfg
    with pytest.raises(GantkError, match=r"networks G2, Q \(optimizer 'GQ'\) are trained .* add optim\.GQ"):
        check_phases(cfg, [Phase("gan", (Update(("G2", "Q"), _loss, optimizer="GQ"),))], _nets())


def test_an_unknown_optim_section_is_refused_but_a_group_name_is_accepted(image_folder):
    plugin = two_generators(image_folder)
    preflight.check_resources(plugin, torch.device("cpu"), {"G", "G2", "D"}, {"G", "D"})  # optim.G steps G, G2
    plugin.cfg.optim["Gx"] = plugin.cfg.optim["G"]
    with pytest.raises(ConfigError, match=r"'optim\.Gx'.*its updates step D, G"):
        preflight.check_resources(plugin, torch.device("cpu"), {"G", "G2", "D"}, {"G", "D"})
