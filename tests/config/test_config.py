from dataclasses import dataclass, field
from typing import Literal

import pytest

from gantk.config import Config, build, layered, parse_overrides, to_dict
from gantk.errors import ConfigError


@dataclass
class Model:
    width: int = 8
    mode: Literal["a", "b"] = "a"


@dataclass
class MyConfig(Config):
    model: Model = field(default_factory=Model)


def test_layers_merge_in_order_and_overrides_win():
    cfg = layered(
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
        layered(MyConfig, [], ["train.batch_sise=3"])
    msg = str(err.value)
    assert "train.batch_sise" in msg and "Did you mean 'train.batch_size'" in msg and "--set" in msg


def test_unknown_key_in_file_names_the_file():
    with pytest.raises(ConfigError, match=r"model\.widht.*my\.yaml.*model\.width"):
        layered(MyConfig, [({"model": {"widht": 3}}, "my.yaml")])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.batch_size=abc", "must be a whole number"),
        ("train.batch_size=1.5", "must be a whole number"),
        ("optim.G.lr=fast", "must be a number"),
        ("train.channels_last=maybe", "true or false"),
        ("model.mode=c", "one of 'a', 'b'"),
        ("optim.G.betas=[0.5]", "list of 2 values"),
        ("train=3", "is a section of keys"),
    ],
)
def test_wrong_types_are_rejected(override, expected):
    with pytest.raises(ConfigError, match=expected):
        layered(MyConfig, [], [override])


def test_yaml_float_without_dot_is_accepted():
    # YAML 1.1 reads 2e-4 as a string; a float field accepts it
    assert layered(MyConfig, [], ["optim.G.lr=2e-4"]).optim["G"].lr == pytest.approx(2e-4)


def test_malformed_override():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["train.batch_size"])


def test_round_trip_through_plain_dict():
    cfg = layered(MyConfig, [], ["model.width=5", "train.ema.enabled=true"])
    again = build(MyConfig, to_dict(cfg))
    assert again == cfg


def test_yaml_words_off_and_on_mean_the_word_in_a_field_of_words():
    # YAML 1.1 reads `off` as False: in a field whose choices are words, it is the word
    cfg = layered(Config, [], ["train.compile=off", "train.nonfinite=off", "train.cuda_graph=on"])
    assert (cfg.train.compile, cfg.train.nonfinite, cfg.train.cuda_graph) == ("off", "off", "on")
    with pytest.raises(ConfigError, match="must be one of 'fp32', 'bf16', 'fp16'; got 'yes'"):
        layered(Config, [], ["train.precision=yes"])  # no bool word among the choices: still refused


# --------------------------------------------------------------------------------------------------
# Values are read as the field's type, and every numeric field has its range checked (issue 16)
# --------------------------------------------------------------------------------------------------

BUILTINS = ("dcgan", "cgan", "pix2pix", "srgan")


def _config_class(name):
    from gantk import registry

    return registry.load(name)[1].config_class


def _leaf_fields(cls, prefix=""):
    """(dotted key, annotated type) of every leaf field of a config dataclass; optim via its G entry."""
    import dataclasses
    import typing

    from gantk.config import OptimConfig

    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            yield from _leaf_fields(tp, key + ".")
        elif typing.get_origin(tp) is dict:
            yield from _leaf_fields(OptimConfig, key + ".G.")
        else:
            yield key, tp


def _numeric_leaves(tp):
    """(Range or None, base type) of each number inside ``tp`` (a tuple or list has one per element)."""
    import typing

    from gantk.config import Range

    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(tp)
        ranges = [e for e in extras if isinstance(e, Range)]
        return [(ranges[0] if ranges else None, base)] if base in (int, float) else []
    if origin in (list, tuple):
        return [leaf for arg in typing.get_args(tp) for leaf in _numeric_leaves(arg)]
    return [(None, tp)] if tp in (int, float) else []


@pytest.mark.parametrize("plugin", BUILTINS)
def test_every_numeric_field_of_every_builtin_config_has_a_range(plugin):
    unranged = [key for key, tp in _leaf_fields(_config_class(plugin)) for rng, _ in _numeric_leaves(tp) if rng is None]
    assert not unranged, f"numeric config fields without a Range: {unranged}"


def _outside(rng, base):
    """Values just outside ``rng`` for a field of type ``base``."""
    step = 1 if base is int else 1e-9
    values = []
    if rng.lo is not None:
        values.append(rng.lo if rng.lo_open else rng.lo - step)
    if rng.hi is not None:
        values.append(rng.hi if rng.hi_open else rng.hi + step)
    if base is float:
        values.append(float("nan"))
    return values


def _range_cases():
    for plugin in BUILTINS:
        for key, tp in _leaf_fields(_config_class(plugin)):
            leaves = _numeric_leaves(tp)
            for index, (rng, base) in enumerate(leaves):
                for bad in _outside(rng, base):
                    yield plugin, key, index, len(leaves), tp, bad


@pytest.mark.parametrize("plugin, key, index, count, tp, bad", list(_range_cases()))
def test_a_value_outside_a_fields_range_is_refused_naming_the_field(plugin, key, index, count, tp, bad):
    import typing

    from gantk import registry

    spec, cls = registry.load(plugin)
    default = to_dict(registry.make_config(spec, cls))
    for part in key.split("."):
        default = default[part]
    if typing.get_origin(typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp) in (
        list,
        tuple,
    ):
        value = list(default) if count > 1 else [*default[:1], bad]
        if count > 1:
            value[index] = bad
        if not value:
            value = [bad]
        text = "[" + ", ".join(repr(v) if not isinstance(v, float) or v == v else ".nan" for v in value) + "]"
    else:
        text = ".nan" if bad != bad else repr(bad)
    with pytest.raises(ConfigError) as err:
        registry.make_config(spec, cls, [], [f"{key}={text}"])
    message = str(err.value)
    assert f"'{key}" in message and ("must be" in message), message


WORDS = ("off", "on", "yes", "no", "true", "false", "Off", "007", "1", "0", "abc")


def _word_cases():
    import typing

    for plugin in BUILTINS:
        for key, tp in _leaf_fields(_config_class(plugin)):
            if tp is bool or typing.get_origin(tp) is typing.Literal:
                for word in WORDS:
                    yield plugin, key, tp, word


@pytest.mark.parametrize("plugin, key, tp, word", list(_word_cases()))
def test_every_word_in_a_bool_or_choice_field_means_the_field_or_is_refused_naming_it(plugin, key, tp, word):
    import typing

    from gantk import registry

    spec, cls = registry.load(plugin)
    for source in ("set", "file"):
        try:
            if source == "set":
                cfg = registry.make_config(spec, cls, [], [f"{key}={word}"])
            else:
                from gantk.config import parse_yaml

                *parents, leaf = key.split(".")
                text = (
                    "".join(f"{'  ' * i}{p}:\n" for i, p in enumerate(parents))
                    + f"{'  ' * len(parents)}{leaf}: {word}\n"
                )
                cfg = registry.make_config(spec, cls, [(parse_yaml(text), "my.yaml")])
        except ConfigError as exc:
            message = str(exc)
            assert f"'{key}'" in message, message
            if tp is bool:
                assert "true or false" in message
            else:
                assert all(repr(c) in message for c in typing.get_args(tp)), message
            continue
        value = cfg
        for part in key.split("."):
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        if tp is bool:
            assert value is (word.lower() in ("on", "yes", "true", "1"))
            assert word.lower() in ("on", "off", "yes", "no", "true", "false")  # 1, 0, 007, abc are refused
        else:
            choices = typing.get_args(tp)
            assert value in choices
            assert str(value) == word or (isinstance(value, int) and value == int(word)), (word, value)


def test_a_string_field_gets_the_text_as_written():
    cfg = layered(MyConfig, [], ["data.name=007", "data.split=off", "data.kind=1e3"])
    assert (cfg.data.name, cfg.data.split, cfg.data.kind) == ("007", "off", "1e3")
    from gantk.config import parse_yaml

    cfg = layered(MyConfig, [(parse_yaml("data:\n  name: 007\n  split: yes\n"), "my.yaml")])
    assert (cfg.data.name, cfg.data.split) == ("007", "yes")


def test_a_number_written_with_a_leading_zero_is_decimal():
    assert layered(MyConfig, [], ["train.batch_size=010"]).train.batch_size == 10


def test_an_empty_section_sets_nothing_and_a_plain_value_for_a_section_is_refused():
    from gantk.config import parse_yaml

    base = ({"train": {"batch_size": 8}}, "defaults.yaml")
    cfg = layered(MyConfig, [base, (parse_yaml("train:\n"), "my.yaml")])
    assert cfg.train.batch_size == 8  # "train:" with nothing under it keeps what was set below it
    with pytest.raises(ConfigError, match=r"'train' \(from my.yaml\) is a section"):
        layered(MyConfig, [base, (parse_yaml("train: 5\n"), "my.yaml")])


@pytest.mark.parametrize("content", [b"\xff\xfe t\x00r\x00a\x00i\x00n\x00", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8"])
def test_a_config_file_that_is_not_utf8_text_is_one_clear_error(tmp_path, content):
    from gantk.config import load_yaml

    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"bad.yaml is not UTF-8 text"):
        load_yaml(path)


def test_a_key_given_twice_in_a_config_file_is_refused_naming_both_lines(tmp_path):
    from gantk.config import load_yaml

    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  batch_size: 4\n  batch_size: 8\n")
    with pytest.raises(ConfigError, match=r"twice.yaml .*'batch_size' is given twice \(lines 2 and 3\)"):
        load_yaml(path)


def test_relative_paths_from_a_checkpoint_are_looked_up_beside_it_first(tmp_path):

    from gantk.config import PathStr, rebase_paths

    @dataclass
    class Inner:
        weights: PathStr = ""
        label: str = ""

    @dataclass
    class Outer:
        inner: Inner = field(default_factory=Inner)
        transforms: PathStr = ""
        missing: PathStr = ""
        absolute: PathStr = ""

    (tmp_path / "judge").mkdir()
    (tmp_path / "aug.yaml").write_text("{}")
    cfg = Outer(Inner("judge", "judge"), "aug.yaml", "nowhere/x", str(tmp_path / "judge"))
    assert sorted(rebase_paths(cfg, tmp_path)) == ["inner.weights", "transforms"]
    assert cfg.inner.weights == str((tmp_path / "judge").resolve()) and cfg.inner.label == "judge"  # not a path
    assert cfg.transforms == str((tmp_path / "aug.yaml").resolve())
    assert cfg.missing == "nowhere/x" and cfg.absolute == str(tmp_path / "judge")  # as written
