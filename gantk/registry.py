"""The plugin registry: find a plugin by folder path, built-in name, or installed entry point.

Three sources, one namespace:

* **built-in**: gantk's own entry points in the group ``gantk.plugins``; their code is the checkout's
  ``plugins/`` folder, installed as the package ``gantk.plugins`` (``plugins/dcgan/plugin.py``);
* **installed**: other packages that declare an entry point in that group
  (``dcgan_plus = "my_pkg.plugin:MyGan"``);
* **path**: any folder given on the command line that holds a ``plugin.py``.

Plugin code runs only from a folder the user named, the gantk checkout itself, or a package the user
installed. Specs are cheap to list; the code is imported only when a plugin is loaded.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gantk.config import Config, build, layered, load_yaml, overrides_to_dict, rebase_paths, to_dict
from gantk.errors import ConfigError, GantkError, PluginError
from gantk.plugin import CONTRACT_VERSION, TASKS, GanPlugin

ENTRY_POINT_GROUP = "gantk.plugins"
#: the distribution whose entry points are the built-in plugins
BUILTIN_DIST = "gantk"


@dataclass(frozen=True)
class PluginSpec:
    """Where a plugin comes from; nothing is imported until :meth:`load`."""

    name: str
    source: str  # "built-in", "path" or "installed"
    location: str  # a folder, or "module:Class" for an entry point
    version: str = ""  # the distribution's version, for installed plugins
    dist: str = ""

    def load(self) -> type[GanPlugin]:
        if self.source in ("built-in", "installed"):
            return _load_entry_point(self)
        return _load_folder(Path(self.location), self.name)

    def folder(self) -> Path | None:
        """The folder that holds the plugin's ``plugin.py``, found without importing the plugin."""
        if self.source == "path":
            return Path(self.location)
        try:
            found = importlib.util.find_spec(self.location.partition(":")[0])
        except (ImportError, ValueError):
            return None
        return Path(found.origin).parent if found is not None and found.origin else None

    @classmethod
    def of(cls, plugin: GanPlugin | type[GanPlugin]) -> PluginSpec:
        """Where a plugin came from: its registered spec when its name finds this very class, else its folder."""
        klass = plugin if isinstance(plugin, type) else type(plugin)
        name = (getattr(plugin, "cfg", None) and plugin.cfg.plugin) or klass.name or klass.__name__
        for spec in all_specs():  # two plugins may share the name (a package's cgan): the one of this class
            if spec.name == name:
                with contextlib.suppress(GantkError):
                    if spec.load() is klass:
                        return spec
        return cls(name, "path", str(Path(inspect.getfile(klass)).parent))

    def to_meta(self) -> dict[str, str]:
        """What a checkpoint's ``config.json`` records under ``plugin``: enough to find the plugin again."""
        meta = {"name": self.name, "source": self.source, "location": self.location}
        return {**meta, "dist": self.dist} if self.source == "installed" else meta

    @classmethod
    def from_meta(cls, info: dict[str, Any]) -> PluginSpec:
        """The spec a checkpoint recorded (:meth:`to_meta`); only its name is trusted to load code."""
        return cls(
            str(info.get("name", "")),
            str(info.get("source", "")),
            str(info.get("location", "")),
            dist=str(info.get("dist", "")),
        )

    def reference(self) -> str:
        """How to name this plugin unambiguously by name: ``builtin:cgan``, ``my-dist:cgan``, or the name
        (a recorded plugin is found again by its origin, whatever else took the same name since)."""
        if self.source == "built-in":
            return f"builtin:{self.name}"
        if self.source == "installed" and self.dist:
            return f"{self.dist}:{self.name}"
        return self.name


def _entry_point_specs() -> list[PluginSpec]:
    specs = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else ""
        version = ep.dist.version if ep.dist else ""
        source = "built-in" if dist == BUILTIN_DIST else "installed"
        specs.append(PluginSpec(name=ep.name, source=source, location=ep.value, version=version, dist=dist))
    return sorted(specs, key=lambda s: s.name)


def builtin_specs() -> list[PluginSpec]:
    """The plugins gantk ships (``plugins/`` of the checkout, ``gantk.plugins`` once installed).

    They are gantk's entry points. Where gantk's metadata has none (a checkout put on ``sys.path`` without
    installing it, or stale metadata), the folders of ``gantk.plugins`` are listed instead.
    """
    specs = [s for s in _entry_point_specs() if s.source == "built-in"]
    folder = builtin_dir()
    if specs or folder is None:
        return specs
    return [
        PluginSpec(name=d.name, source="built-in", location=f"gantk.plugins.{d.name}.plugin", dist=BUILTIN_DIST)
        for d in sorted(folder.iterdir())
        if (d / "plugin.py").is_file()
    ]


def installed_specs() -> list[PluginSpec]:
    """Plugins registered by other installed packages under the ``gantk.plugins`` entry-point group."""
    return [s for s in _entry_point_specs() if s.source == "installed"]


def builtin_dir() -> Path | None:
    """The folder of the built-in plugins (the checkout's ``plugins/``, or ``gantk/plugins`` installed)."""
    try:
        found = importlib.util.find_spec("gantk.plugins")
    except ImportError:
        return None
    return Path(list(found.submodule_search_locations)[0]) if found and found.submodule_search_locations else None


def all_specs() -> list[PluginSpec]:
    """Every known plugin, built-in first; names may clash (see :func:`find`)."""
    return builtin_specs() + installed_specs()


def find(ref: str, allow_path: bool = True) -> PluginSpec:
    """Resolve a plugin reference: a folder path, ``dist:name``, or a registered name.

    ``allow_path=False`` takes only registered names: for a name read from a file (a checkpoint's
    config.json), which must never lead to importing code from a folder the user did not name.
    """
    path = Path(ref).expanduser()
    looks_like_path = "/" in ref or "\\" in ref or ref.startswith(".") or (allow_path and path.is_dir())
    if looks_like_path and not allow_path:
        raise PluginError(f"'{ref}' is a path, not a registered plugin name.")
    if looks_like_path:
        if not path.is_dir():
            raise PluginError(f"plugin folder '{ref}' does not exist.")
        if not (path / "plugin.py").is_file():
            raise PluginError(
                f"'{ref}' is a folder but not a gantk plugin: it has no plugin.py "
                "(a plugin folder holds plugin.py, with one GanPlugin subclass, and defaults.yaml)."
            )
        folder = path.resolve()
        for spec in builtin_specs():  # plugins/pix2pix is the built-in pix2pix, loaded as gantk.plugins.pix2pix
            if spec.folder() == folder:
                return spec
        return PluginSpec(name=folder.name, source="path", location=str(folder))

    specs = all_specs()
    if ":" in ref:
        dist, _, name = ref.partition(":")
        matches = [
            s for s in specs if s.name == name and (s.dist == dist or (dist == "builtin" and s.source == "built-in"))
        ]
    else:
        matches = [s for s in specs if s.name == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        where = "; ".join(f"{_describe(s)} (pick it with '{_explicit(s)}')" for s in matches)
        raise PluginError(f"plugin name '{ref}' is provided more than once: {where}.")
    names = sorted({s.name for s in specs})
    guess = difflib.get_close_matches(ref, names, n=1)
    hint = f" Did you mean '{guess[0]}'?" if guess else ""
    known = ", ".join(names) if names else "none"
    raise PluginError(
        f"unknown plugin '{ref}'.{hint} Known plugins: {known}. A plugin can also be given as a folder path "
        "(plugins/dcgan) or installed as a package with a 'gantk.plugins' entry point."
    )


def load(ref: str) -> tuple[PluginSpec, type[GanPlugin]]:
    """Find and import a plugin; returns its spec and class."""
    spec = find(ref)
    return spec, spec.load()


def make_config(
    spec: PluginSpec,
    cls: type[GanPlugin],
    layers: list[tuple[dict[str, Any], str]] | None = None,
    overrides: list[str] | None = None,
    *,
    resumed_run: Path | None = None,
    files: Sequence[str | Path] = (),
    values: dict[str, Any] | None = None,
) -> Config:
    """The plugin's typed config. Every layering of gantk happens here, later layers winning:

    class defaults < the plugin's defaults.yaml < a resumed run's ``config.yaml`` (``resumed_run``) <
    ``layers`` (data, source name) < ``--config`` ``files`` in order < command-line flags (``values``,
    dotted keys) < ``--set`` ``overrides``.

    An error names the layer a bad value came from. The result is not yet resolved from the data: the
    engine completes and freezes it (:mod:`gantk.engine.resolve`).
    """
    stack: list[tuple[dict[str, Any], str]] = []
    defaults = cls.defaults_path()
    if defaults.is_file():
        stack.append((load_yaml(defaults), str(defaults)))
    saved = resumed_run / "config.yaml" if resumed_run is not None else None
    if saved is not None and saved.is_file():
        data = load_yaml(saved)
        if data.get("plugin") and str(data["plugin"]) != spec.name:
            raise ConfigError(
                f"--resume: run folder {resumed_run} was trained with plugin '{data['plugin']}', not '{spec.name}'; "
                f"resume it with gantk train {data['plugin']} --out {resumed_run} --resume, or choose another --out."
            )
        stack.append((data, str(saved)))
    stack += list(layers or [])
    stack += [(load_yaml(f), str(f)) for f in files]
    if values:
        stack.append((overrides_to_dict(list(values.items())), "the command line"))
    cfg = layered(cls.config_class, stack, overrides)
    cfg.plugin = spec.name
    return cfg


def saved_config(cls: type[GanPlugin], data: dict[str, Any], where: Path, overrides: list[str] | None = None) -> Config:
    """The config a checkpoint was trained with (its ``config.json``: complete, not layered over the
    plugin's defaults again), its relative paths looked up beside the checkpoint first, and ``--set``
    ``overrides`` (how the model is used: ``eval.*``) layered over it. Not frozen."""
    cfg = build(cls.config_class, data)
    rebase_paths(cfg, where)  # paths the checkpoint names: beside it first (a shipped classifier)
    if overrides:
        cfg = layered(cls.config_class, [(to_dict(cfg), f"checkpoint {where}")], overrides)
    return cfg


def _describe(spec: PluginSpec) -> str:
    if spec.source == "installed":
        return f"package {spec.dist} {spec.version} ({spec.location})"
    return f"{spec.source} folder {spec.location}"


def _explicit(spec: PluginSpec) -> str:
    return spec.location if spec.source == "path" else spec.reference()


def _module_name(folder: Path) -> str:
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() else "_" for c in folder.name)
    return f"gantk_plugins.{safe}_{digest}"


def _load_folder(folder: Path, name: str) -> type[GanPlugin]:
    """Import ``folder/plugin.py`` as a package module, so it may import siblings relatively."""
    pkg_name = _module_name(folder)
    module_name = f"{pkg_name}.plugin"
    if module_name not in sys.modules:
        if "gantk_plugins" not in sys.modules:
            root = importlib.util.module_from_spec(
                importlib.machinery.ModuleSpec("gantk_plugins", None, is_package=True)
            )
            root.__path__ = []
            sys.modules["gantk_plugins"] = root
        pkg_spec = importlib.machinery.ModuleSpec(pkg_name, None, is_package=True)
        pkg = importlib.util.module_from_spec(pkg_spec)
        pkg.__path__ = [str(folder)]
        sys.modules[pkg_name] = pkg
        try:
            importlib.import_module(module_name)
        except (Exception, SystemExit) as exc:  # a sys.exit() at import is the plugin's failure, not gantk's exit
            sys.modules.pop(pkg_name, None)
            sys.modules.pop(module_name, None)
            raise PluginError(
                f"plugin '{name}' ({folder / 'plugin.py'}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
    plugin_py = folder / "plugin.py"
    return _checked(_the_plugin_class(sys.modules[module_name], name, plugin_py), name, str(plugin_py))


def _the_plugin_class(module: Any, name: str, where: Path | str) -> type[GanPlugin]:
    """The one GanPlugin subclass that ``module`` defines."""
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, GanPlugin)
        and obj is not GanPlugin
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        what = "no GanPlugin subclass" if not found else f"{len(found)} GanPlugin subclasses"
        raise PluginError(f"plugin '{name}': {where} defines {what}; it must define exactly one.")
    return found[0]


_PLUGIN_PACKAGES: set[str] = set()  # top-level packages of installed plugins loaded in this process


def plugin_modules() -> set[str]:
    """The top-level packages of the installed plugins this process loaded: an exception raised in their
    code is the plugin's, and the CLI says so naming the file and line."""
    return set(_PLUGIN_PACKAGES)


def _load_entry_point(spec: PluginSpec) -> type[GanPlugin]:
    module_name, _, attr = spec.location.partition(":")
    if spec.source == "installed":
        _PLUGIN_PACKAGES.add(module_name.partition(".")[0])
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        if not attr:  # a module (a built-in found by folder): its one plugin class
            obj = _the_plugin_class(obj, spec.name, spec.location)
    except PluginError:
        raise
    except (Exception, SystemExit) as exc:  # a sys.exit() at import is the plugin's failure, not gantk's exit
        raise PluginError(
            f"plugin '{spec.name}' from package {spec.dist} ({spec.location}) failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, GanPlugin)):
        raise PluginError(
            f"plugin '{spec.name}' from package {spec.dist}: entry point {spec.location} is not a GanPlugin subclass."
        )
    return _checked(obj, spec.name, spec.location)


def local_specs(folder: Path | None = None) -> list[PluginSpec]:
    """Plugin folders under ``./plugins`` of the current directory that are not gantk's built-ins."""
    folder = (folder or Path.cwd() / "plugins").resolve()
    if not folder.is_dir() or folder == builtin_dir():
        return []
    return [
        PluginSpec(name=d.name, source="path", location=str(d))
        for d in sorted(folder.iterdir())
        if (d / "plugin.py").is_file()
    ]


def check_defaults(spec: PluginSpec, cls: type[GanPlugin]) -> None:
    """The plugin's defaults.yaml must validate against its own config class."""
    make_config(spec, cls)


def _checked(cls: type[GanPlugin], name: str, where: str) -> type[GanPlugin]:
    if cls.contract > CONTRACT_VERSION:
        raise PluginError(
            f"plugin '{name}' ({where}) is written for gantk plugin contract {cls.contract}, but this gantk "
            f"implements contract {CONTRACT_VERSION}; upgrade gantk."
        )
    if not (isinstance(cls.config_class, type) and issubclass(cls.config_class, Config)):
        raise PluginError(f"plugin '{name}' ({where}): config_class must subclass gantk.Config.")
    if not callable(cls.best_metric):
        raise PluginError(
            f"plugin '{name}' ({where}) sets best_metric = {cls.best_metric!r}; since plugin contract 4 it is a "
            f"method: def best_metric(self) -> str: return {cls.best_metric!r}"
        )
    tasks = cls.tasks if isinstance(cls.tasks, (set, frozenset, tuple, list)) else None
    unknown = sorted(str(t) for t in tasks or () if t not in TASKS)
    if tasks is None or unknown:
        what = f"names {', '.join(map(repr, unknown))}" if unknown else f"is {cls.tasks!r}"
        raise PluginError(
            f"plugin '{name}' ({where}): its tasks {what}; declare a set of {', '.join(TASKS)} (what its "
            "trained generator serves)."
        )
    if not cls.name:
        cls.name = name
    return cls
