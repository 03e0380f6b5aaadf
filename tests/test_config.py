from dataclasses import dataclass, field
from typing import Literal

import pytest

from gantk.config import Config, build, parse_overrides, resolve, to_dict
from gantk.errors import ConfigError


@dataclass
class Model:
    width: int = 8
    mode: Literal["a", "b"] = "a"


@dataclass
class MyConfig(Config):
    model: Model = field(default_factory=Model)


def test_layers_merge_in_order_and_overrides_win():
    cfg = resolve(
        MyConfig,
        [
            ({"train": {"batch_size": 32}, "model": {"width": 4}}, "defaults.yaml"),
            ({"model": {"width": 6}}, "user.yaml"),
        ],
        ["train.batch_size=16", "optim.G.betas=[0.0, 0.9]"],
    )
    assert cfg.train.batch_size == 16
    assert cfg.model.width == 6
    assert cfg.optim["G"].betas == (0.0, 0.9)
    assert cfg.optim["D"].betas == (0.5, 0.999)  # untouched network keeps its defaults


def test_unknown_key_suggests_nearest_and_names_source():
    with pytest.raises(ConfigError) as err:
        resolve(MyConfig, [], ["train.batch_sise=3"])
    msg = str(err.value)
    assert "train.batch_sise" in msg and "Did you mean 'train.batch_size'" in msg and "--set" in msg


def test_unknown_key_in_file_names_the_file():
    with pytest.raises(ConfigError, match=r"model\.widht.*my\.yaml.*model\.width"):
        resolve(MyConfig, [({"model": {"widht": 3}}, "my.yaml")])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.batch_size=abc", "must be an integer"),
        ("train.batch_size=1.5", "must be an integer"),
        ("optim.G.lr=fast", "must be a number"),
        ("train.channels_last=maybe", "true or false"),
        ("model.mode=c", "one of 'a', 'b'"),
        ("optim.G.betas=[0.5]", "list of 2 values"),
        ("train=3", "must be a mapping"),
    ],
)
def test_wrong_types_are_rejected(override, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve(MyConfig, [], [override])


def test_yaml_float_without_dot_is_accepted():
    # YAML 1.1 reads 2e-4 as a string; a float field accepts it
    assert resolve(MyConfig, [], ["optim.G.lr=2e-4"]).optim["G"].lr == pytest.approx(2e-4)


def test_malformed_override():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["train.batch_size"])


def test_round_trip_through_plain_dict():
    cfg = resolve(MyConfig, [], ["model.width=5", "train.ema.enabled=true"])
    again = build(MyConfig, to_dict(cfg))
    assert again == cfg


def test_yaml_words_off_and_on_mean_the_word_in_a_field_of_words():
    # YAML 1.1 reads `off` as False: in a field whose choices are words, it is the word
    cfg = resolve(Config, [], ["train.compile=off", "train.nonfinite=off", "train.cuda_graph=on"])
    assert (cfg.train.compile, cfg.train.nonfinite, cfg.train.cuda_graph) == ("off", "off", "on")
    with pytest.raises(ConfigError, match="must be one of 'fp32', 'bf16', 'fp16'; got True"):
        resolve(Config, [], ["train.precision=yes"])  # no bool word among the choices: still refused
