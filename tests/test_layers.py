"""The layering of docs/architecture.md, checked on every import in the tree (lazy ones inside functions
included), so the rules cannot drift from the code: a module imports only from its own floor or below,
the tools never run the engine (the conformance kit alone trains), and a plugin uses what the engine
is built on, never the engine itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: floor of each top-level part of gantk, from the ground up (docs/architecture.md draws the same)
FLOORS = {
    "errors": 0,
    "tiling": 0,
    "staging": 0,
    "console": 0,
    "device": 0,
    "config": 1,
    "data": 2,
    "plugin": 3,
    "contexts": 3,
    "latents": 3,
    "phases": 3,
    "registry": 3,
    "memory": 3,
    "init": 3,
    "": 3,  # the package itself: `from gantk import GanPlugin` hands on the contract
    "io": 4,
    "metrics": 5,
    "losses": 5,
    "engine": 6,
    "sampling": 7,
    "arithmetic": 7,
    "probe": 7,
    "upscale": 7,
    "deploy": 7,
    "publish": 7,
    "testing": 7,
    "scaffold": 7,
    "plugins": 8,
    "commands": 9,
    "cli": 9,
    "__main__": 9,
    "apps": 9,
}
ENGINE = FLOORS["engine"]


def module_name(path: Path) -> str:
    """``gantk/io/onnx.py`` -> ``gantk.io.onnx``; the built-in plugins are ``gantk.plugins.<name>``."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] == "plugins":
        parts = ["gantk", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part(module: str) -> str | None:
    """The part of the tree ``module`` belongs to (a key of FLOORS); None for anything outside gantk."""
    names = module.split(".")
    if names[0] == "apps":
        return "apps"
    if names[0] != "gantk":
        return None
    return names[1] if len(names) > 1 else ""


def is_module(dotted: str) -> bool:
    names = dotted.split(".")
    plugin = names[:2] == ["gantk", "plugins"]
    base = REPO / "plugins" / Path(*names[2:]) if plugin else REPO / Path(*names)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, with its line: ``from gantk import staging`` is ``gantk.staging``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names if is_module(f"{node.module}.{a.name}")]
            found += [(name, node.lineno) for name in subs or [node.module]]
    return found


def tree() -> list[Path]:
    return sorted(p for folder in ("gantk", "plugins", "apps") for p in (REPO / folder).rglob("*.py"))


def edges() -> list[tuple[str, str, str, int]]:
    """(importer, imported, file, line) for every import between two parts of the tree."""
    out = []
    for path in tree():
        me = module_name(path)
        for target, line in imports(path):
            if part(target) is not None:
                out.append((me, target, str(path.relative_to(REPO)), line))
    return out


def test_every_part_of_the_tree_has_a_floor():
    unknown = sorted({part(m) for m, t, *_ in edges() for m in (m, t)} - set(FLOORS))
    assert not unknown, f"give these parts of gantk a floor in FLOORS and in docs/architecture.md: {unknown}"


def test_no_import_runs_up_a_floor():
    upward = [
        f"{file}:{line}: {me} (floor {FLOORS[part(me)]}) imports {target} (floor {FLOORS[part(target)]})"
        for me, target, file, line in edges()
        if FLOORS.get(part(target), 0) > FLOORS.get(part(me), 0)
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("rule", ["tools", "plugins"])
def test_only_the_conformance_kit_runs_the_engine(rule: str):
    """Tools work on a saved model (io), and plugins are run by the engine: neither imports it."""
    floor = {"tools": FLOORS["sampling"], "plugins": FLOORS["plugins"]}[rule]
    wrong = [
        f"{file}:{line}: {me} imports {target}"
        for me, target, file, line in edges()
        if FLOORS[part(me)] == floor and part(target) == "engine" and me != "gantk.testing"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_lazy_and_upward_imports(tmp_path: Path):
    """The checks above are only as good as :func:`imports`: it must see an import inside a function,
    and the floor rule must flag one that runs up."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gantk import staging\n    import gantk.engine.trainer\n")
    found = dict(imports(source))
    assert found == {"gantk.staging": 2, "gantk.engine.trainer": 3}
    assert FLOORS[part("gantk.engine.trainer")] > FLOORS[part("gantk.io.onnx")]
