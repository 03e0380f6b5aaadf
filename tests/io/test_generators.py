"""A generator back from its checkpoint folder: only registered plugins are imported, and a hand-edited
or absurd config.json is one clear error."""

import pytest

from gantk.errors import CheckpointError
from gantk.io.checkpoint import step_checkpoints
from tests.helpers import rewrite_checkpoint_config, trained_dcgan_run


def test_a_config_json_naming_a_plugin_folder_runs_no_code_unless_the_user_names_it(tmp_path, image_folder):
    import json

    from gantk.io.generators import load_generator

    run = trained_dcgan_run(tmp_path, image_folder)
    folder = step_checkpoints(run)[-1]
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "ran"
    (evil / "plugin.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    meta = json.loads((folder / "config.json").read_text())
    cases = [
        ({"name": "evil", "source": "path", "location": str(evil)}, "does not import code from a path"),
        ({"name": str(evil), "source": "built-in"}, "is a path, not a registered plugin name"),
    ]
    for plugin, message in cases:
        rewrite_checkpoint_config(folder, {**meta, "plugin": plugin})
        with pytest.raises(CheckpointError, match=message):
            load_generator(folder)
        assert not marker.exists()
    plugins = tmp_path / "mine"
    import shutil

    from gantk import registry

    shutil.copytree(registry.builtin_dir() / "dcgan", plugins)
    rewrite_checkpoint_config(folder, {**meta, "plugin": {"name": "mine", "source": "path", "location": str(plugins)}})
    with pytest.raises(CheckpointError, match=f"--plugin {plugins}"):
        load_generator(folder)
    plugin, G = load_generator(folder, plugin=str(plugins))  # named by the user: loaded
    assert plugin.cfg.model.ngf == 4


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda meta: [meta], "holds a list, not an object"),
        (lambda meta: {k: v for k, v in meta.items() if k != "config"}, "'config' .* is missing"),
        (lambda meta: {**meta, "generator": "Q"}, "names generator 'Q', but plugin 'dcgan' builds only D, G"),
        (lambda meta: {**meta, "config": {**meta["config"], "model": {"ngf": 10**9}}}, "must be >= 1 and <= 65536"),
        (lambda meta: {**meta, "config": {**meta["config"], "model": {"ngf": 60000}}}, "too large"),
    ],
)
def test_a_malformed_or_absurd_config_json_is_one_clear_error(tmp_path, image_folder, change, message):
    import json

    from gantk.io.generators import load_generator

    run = trained_dcgan_run(tmp_path, image_folder)
    folder = step_checkpoints(run)[-1]
    rewrite_checkpoint_config(folder, change(json.loads((folder / "config.json").read_text())))
    with pytest.raises(CheckpointError, match=message):
        load_generator(folder)


@pytest.mark.parametrize(
    "task, message",
    [("translate", "does not translate images"), ("upscale", "is not a super-resolution one")],
)
def test_a_model_that_does_not_serve_the_task_is_refused_before_any_weights_load(
    tmp_path, image_folder, monkeypatch, task, message
):
    from gantk.errors import GantkError
    from gantk.io import checkpoint as ckpt
    from gantk.io.generators import load_generator

    run = trained_dcgan_run(tmp_path, image_folder)
    assert load_generator(run, task="sample")[0].name == "dcgan"  # it serves sample

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were read for a model the command cannot use")

    monkeypatch.setattr(ckpt, "load_weights", no_weights)
    with pytest.raises(GantkError, match=f"holds a dcgan model, which {message} \\(it serves sample\\)"):
        load_generator(run, task=task)
