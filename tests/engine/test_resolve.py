"""The resolve step: the config is completed from the data once, checked, frozen, and then the networks built."""

from __future__ import annotations

import pytest

from gantk.config import FrozenConfigError, is_frozen
from gantk.engine import Trainer
from gantk.engine.resolve import resolve_run
from gantk.errors import ConfigError
from gantk.io.checkpoint import read_meta
from tests.helpers import tiny_dcgan, write_image_folder


def test_data_values_are_filled_then_the_config_is_frozen(tmp_path):
    _, plugin = tiny_dcgan(write_image_folder(tmp_path / "grey", n=8, mode="L"))
    assert plugin.cfg.data.channels == 0 and not is_frozen(plugin.cfg)
    dataset = resolve_run(plugin)
    assert len(dataset) == 8
    assert plugin.cfg.data.channels == 1 and plugin.cfg.data.kind == "image_folder"
    assert is_frozen(plugin.cfg)
    with pytest.raises(FrozenConfigError, match="GanPlugin.resolve"):
        plugin.cfg.train.max_steps = 1
    with pytest.raises(FrozenConfigError):
        plugin.cfg.optim["G"] = plugin.cfg.optim["D"]


def test_the_networks_are_built_from_what_resolve_returned(tmp_path):
    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8))
    plugin.resolve = lambda dataset: {"model.ngf": 2 * len(dataset), "train.max_steps": 2}
    trainer = Trainer(plugin, tmp_path / "run", spec)
    final = trainer.fit()
    trainer.close()
    # ngf = 2 x 8 images: the networks were built after resolve (DCGAN at 16x16 starts at 2 x ngf)
    assert trainer.nets["G"].net[0].out_channels == 2 * 16
    saved = read_meta(final)["config"]
    assert saved["model"]["ngf"] == 16 and saved["train"]["max_steps"] == 2 and saved["data"]["channels"] == 3


def test_a_resolved_value_is_checked_like_a_set_value(tmp_path):
    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8))
    plugin.resolve = lambda dataset: {"train.batch_size": 0}
    with pytest.raises(ConfigError, match=r"train\.batch_size.*resolve step"):
        Trainer(plugin, tmp_path / "run", spec).setup()
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_a_plugin_that_changes_the_config_after_resolve_is_stopped(tmp_path):
    spec, plugin = tiny_dcgan(write_image_folder(tmp_path / "img", n=8))
    build = plugin.build_networks

    def build_and_change():
        plugin.cfg.model.ngf = 8  # too late: the networks must follow the saved config
        return build()

    plugin.build_networks = build_and_change
    with pytest.raises(FrozenConfigError, match="model|ngf"):
        Trainer(plugin, tmp_path / "run", spec).setup()
