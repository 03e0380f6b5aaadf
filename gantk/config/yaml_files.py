"""Config files: YAML read with the text of every plain value kept (:class:`Plain`), so that the field's
type decides what ``off`` or ``007`` means, and a key given twice is refused; and YAML written back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gantk.config.schema import to_dict
from gantk.errors import ConfigError


class Plain(str):
    """A plain (unquoted) YAML scalar: its text as written, and what YAML 1.1 would read it as.

    YAML reads ``off`` as False, ``007`` as 7 and ``1e3`` as a string; which is meant depends on the
    field. :func:`build` decides by the field's type: a string field gets the text, a field of words
    (``Literal``) gets the text when it is one of the words, a number or bool field gets the value.
    """

    value: Any

    def __new__(cls, text: str, value: Any) -> Plain:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj


class _PlainLoader(yaml.SafeLoader):
    """YAML's safe loader, but bools, numbers and dates come back as :class:`Plain` (text + value), and a key
    given twice in one mapping is an error (YAML keeps the last silently; a config means one of them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key_node.value}' is given twice (lines {seen[key_node.value]} and {line})",
                        key_node.start_mark,
                    )  # fmt: skip
                seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _keeping_text(construct):
    def constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Plain:
        return Plain(node.value, construct(loader, node))

    return constructor


for _tag, _construct in (
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
    ("timestamp", yaml.SafeLoader.construct_yaml_timestamp),
):
    _PlainLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keeping_text(_construct))


def parse_yaml(text: str) -> Any:
    """Parse YAML text for a config: plain scalars other than strings and null come back as :class:`Plain`."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader subclass


def plain_value(value: Any) -> Any:
    """``value`` with every :class:`Plain` replaced by what YAML reads it as (for untyped fields)."""
    if isinstance(value, Plain):
        return value.value
    if isinstance(value, dict):
        return {plain_value(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} cannot be decoded); a config is a YAML file "
            "saved as UTF-8."
        ) from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}.")
    return data


def dump_yaml(cfg: Any, path: str | Path) -> None:
    """Write a config (dataclass or dict) as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
