from pathlib import Path

import pytest

from gantk import GanPlugin, registry
from gantk.errors import PluginError
from gantk.plugin import CONTRACT_VERSION
from tests.helpers import REPO


def test_builtin_by_name_and_by_path_are_the_same_plugin():
    by_name = registry.find("dcgan")
    by_path = registry.find(str(REPO / "plugins" / "dcgan"))
    assert by_name == by_path
    assert by_name.source == "built-in"
    cls = by_name.load()
    assert issubclass(cls, GanPlugin) and cls.name == "dcgan"


def test_unknown_name_suggests(monkeypatch):
    with pytest.raises(PluginError, match="Did you mean 'dcgan'"):
        registry.find("dcgn")


def test_missing_folder_and_folder_without_plugin(tmp_path: Path):
    with pytest.raises(PluginError, match="does not exist"):
        registry.find(str(tmp_path / "nope"))
    with pytest.raises(PluginError, match="no plugin.py"):
        registry.find(str(tmp_path))


def test_path_plugin_with_relative_import(tmp_path: Path):
    folder = tmp_path / "mygan"
    folder.mkdir()
    (folder / "nets.py").write_text("WIDTH = 7\n")
    (folder / "plugin.py").write_text(
        "from gantk import GanPlugin\nfrom .nets import WIDTH\n\n"
        "class MyGan(GanPlugin):\n    description = f'width {WIDTH}'\n"
    )
    spec = registry.find(str(folder))
    assert spec.source == "path" and spec.name == "mygan"
    assert spec.load().description == "width 7"


def test_broken_plugin_reports_the_import_error(tmp_path: Path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "plugin.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(PluginError, match="failed to import: ModuleNotFoundError"):
        registry.find(str(folder)).load()


def test_plugin_file_must_define_exactly_one_plugin(tmp_path: Path):
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "plugin.py").write_text(
        "from gantk import GanPlugin\nclass A(GanPlugin): pass\nclass B(GanPlugin): pass\n"
    )
    with pytest.raises(PluginError, match="2 GanPlugin subclasses"):
        registry.find(str(folder)).load()


def test_duplicate_names_are_a_clear_error(monkeypatch):
    clash = [
        registry.PluginSpec("twin", "installed", "a.plugin:Twin", "1.0", "pkg-a"),
        registry.PluginSpec("twin", "installed", "b.plugin:Twin", "2.0", "pkg-b"),
    ]
    monkeypatch.setattr(registry, "installed_specs", lambda: clash)
    with pytest.raises(PluginError) as err:
        registry.find("twin")
    assert "more than once" in str(err.value) and "pkg-a:twin" in str(err.value) and "pkg-b:twin" in str(err.value)
    # the explicit form picks one
    monkeypatch.setattr(registry, "installed_specs", lambda: clash)
    assert registry.find("pkg-b:twin").location == "b.plugin:Twin"


def test_defaults_file_is_validated():
    spec, cls = registry.load("dcgan")
    cfg = registry.make_config(spec, cls)
    # the paper's hyper-parameters come from plugins/dcgan/defaults.yaml
    assert cfg.plugin == "dcgan"
    assert cfg.train.batch_size == 128
    assert cfg.optim["G"].lr == pytest.approx(2e-4) and cfg.optim["G"].betas == (0.5, 0.999)
    assert cfg.model.nz == 100


def test_listing_shows_broken_and_local_plugins_without_stopping(tmp_path: Path):
    from tests.helpers import run_python

    plugins = tmp_path / "plugins"
    for name, code in {
        "good": "from gantk import GanPlugin\nclass Good(GanPlugin):\n    description = 'works fine'\n",
        "noimport": "import not_a_module_anywhere\n",
        "future": "from gantk import GanPlugin\nclass Future(GanPlugin):\n    contract = 99\n",
        "baddefaults": "from gantk import GanPlugin\nclass Bad(GanPlugin):\n    description = 'x'\n",
    }.items():
        (plugins / name).mkdir(parents=True)
        (plugins / name / "plugin.py").write_text(code)
    (plugins / "baddefaults" / "defaults.yaml").write_text("train:\n  batch_sise: 3\n")
    out = run_python(None, "-m", "gantk", "plugins", cwd=tmp_path)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 0
    assert "dcgan" in text and "pix2pix" in text and "works fine" in text  # the others still load
    assert "broken: plugin 'noimport'" in text and "ModuleNotFoundError" in text
    assert "contract 99" in text and "batch_sise" in text


def test_plugin_for_a_newer_contract_is_refused(tmp_path: Path):
    folder = tmp_path / "future"
    folder.mkdir()
    newer = CONTRACT_VERSION + 1
    (folder / "plugin.py").write_text(f"from gantk import GanPlugin\nclass F(GanPlugin):\n    contract = {newer}\n")
    with pytest.raises(PluginError, match=f"contract {newer}.*upgrade gantk"):
        registry.find(str(folder)).load()


@pytest.mark.parametrize(
    "tasks, message",
    [
        ('frozenset({"sample", "paint"})', "its tasks names 'paint'; declare a set of sample, translate, upscale"),
        ('"translate"', "its tasks is 'translate'; declare a set of"),
    ],
)
def test_a_plugin_declaring_an_unknown_task_is_refused_when_it_loads(tmp_path: Path, tasks: str, message: str):
    folder = tmp_path / "painter"
    folder.mkdir()
    (folder / "plugin.py").write_text(f"from gantk import GanPlugin\nclass P(GanPlugin):\n    tasks = {tasks}\n")
    with pytest.raises(PluginError, match=message):
        registry.find(str(folder)).load()


def _impostor_site(root: Path) -> Path:
    """A site folder with an installed package 'impostor' whose entry point registers a plugin 'cgan'."""
    site = root / "site"
    info = site / "impostor-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: impostor\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[gantk.plugins]\ncgan = impostor_plugin:Impostor\n")
    (site / "impostor_plugin.py").write_text(
        "from gantk.plugins.dcgan.plugin import DCGAN\n\n\nclass Impostor(DCGAN):\n    name = 'cgan'\n"
    )
    return site


def test_a_package_plugin_with_a_builtin_name_never_stands_in_for_the_builtin(tmp_path: Path):
    """Checkpoints record their plugin's origin and are loaded by it; the clash is named when training,
    with builtin:cgan to pick gantk's own (issue 33)."""
    from tests.helpers import run_python

    site = _impostor_site(tmp_path)
    shipped = REPO / "apps" / "checkpoints" / "cgan-mnist"
    out = run_python(site, "-m", "gantk", "sample", str(shipped), "-n", "2", "-o", str(tmp_path / "g.png"))
    assert out.returncode == 0, out.stderr
    out = run_python(site, "-m", "gantk", "train", "cgan", "--print-config")
    assert out.returncode == 2 and "builtin:cgan" in out.stderr and "impostor:cgan" in out.stderr, out.stderr
    out = run_python(site, "-m", "gantk", "train", "builtin:cgan", "--print-config")
    assert out.returncode == 0 and "plugin: cgan" in out.stdout, out.stderr
    out = run_python(site, "-c", "from gantk import registry; print(registry.find('impostor:cgan').reference())")
    assert out.stdout.strip() == "impostor:cgan", out.stderr


def test_a_plugin_spec_records_its_origin_and_finds_it_again():
    spec = registry.PluginSpec("twin", "installed", "b.plugin:Twin", "2.0", "pkg-b")
    again = registry.PluginSpec.from_meta(spec.to_meta())
    assert again.reference() == "pkg-b:twin"
    assert registry.PluginSpec.from_meta(registry.find("cgan").to_meta()).reference() == "builtin:cgan"


def test_plugins_lists_an_entry_point_that_exits_at_import_as_broken_and_exits_0(tmp_path: Path):
    """`gantk plugins` exited 3 when a third-party plugin called sys.exit(3) at import (issue 30)."""
    from tests.helpers import run_python

    site = tmp_path / "site"
    info = site / "ep-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[gantk.plugins]\nexiter = ep_exit:X\nmissing = no_such_module_xyz:X\n")
    (site / "ep_exit.py").write_text("import sys\nsys.exit(3)\n")
    out = run_python(site, "-m", "gantk", "plugins")
    assert out.returncode == 0, out.stderr
    text = " ".join((out.stdout + out.stderr).split())
    assert "exiter" in text and "SystemExit: 3" in text and "no_such_module_xyz" in text and "dcgan" in text


def test_a_contract_3_best_metric_attribute_is_refused_with_the_one_line_fix(tmp_path: Path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "plugin.py").write_text("from gantk import GanPlugin\nclass Old(GanPlugin):\n    best_metric = 'fid'\n")
    with pytest.raises(PluginError, match=r"since plugin contract 4 it is a method: def best_metric\(self\) -> str"):
        registry.find(str(folder)).load()
