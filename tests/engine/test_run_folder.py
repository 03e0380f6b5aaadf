"""The run folder has one owner, is made only when training is sure to start, and --resume starts a
run that has no checkpoint yet; whatever fails after a step has that step saved first (issue 16)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from gantk.engine import Trainer
from gantk.engine.run_folder import RunFolder
from gantk.errors import ConfigError, DataError, GantkError, RunFailed
from gantk.io.checkpoint import step_checkpoints
from tests.helpers import tiny_dcgan, tiny_plugin
from tests.helpers.pairs import write_side_by_side


def test_a_second_process_on_the_same_run_folder_is_refused_naming_the_owner(tmp_path):
    first = RunFolder(tmp_path / "run")
    assert first.open(resume=False) is None
    second = RunFolder(tmp_path / "run")
    with pytest.raises(GantkError, match=r"in use by another gantk train process \(pid \d+"):
        second.open(resume=True)
    first.close()
    assert second.open(resume=True) is None  # free again once the owner is done
    second.close()


def test_a_trainer_holds_the_lock_while_it_trains(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.setup()
    _, other = tiny_dcgan(image_folder)
    with pytest.raises(GantkError, match="in use by another gantk train process"):
        Trainer(other, tmp_path / "run", resume=True).fit()
    trainer.fit()  # the refused one touched nothing
    assert [p.name for p in step_checkpoints(tmp_path / "run")] == ["step_00000006"]


def test_a_refused_run_leaves_no_folder_behind(tmp_path):
    _, plugin = tiny_dcgan(tmp_path / "no-such-data")
    with pytest.raises(DataError):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_a_refused_resume_leaves_config_yaml_as_it_was(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    Trainer(plugin, tmp_path / "run").fit()
    before = (tmp_path / "run" / "config.yaml").read_text()
    _, wider = tiny_dcgan(image_folder, model={"ngf": 8}, train={"max_steps": 8})
    with pytest.raises(GantkError, match="do not match the network"):
        Trainer(wider, tmp_path / "run", resume=True).fit()
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    _, same = tiny_dcgan(image_folder, train={"max_steps": 8})
    assert Trainer(same, tmp_path / "run", resume=True).fit().name == "step_00000008"


def test_an_optimizer_for_a_network_the_plugin_does_not_build_is_refused(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, optim={"g": {"lr": 0.1}})
    with pytest.raises(ConfigError, match=r"'optim\.g'.*builds only D, G.*Did you mean 'optim\.G'"):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_networks_too_large_for_the_machine_are_refused_before_anything_is_allocated(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, model={"ngf": 60000})  # in range, but ~10^13 parameters
    with pytest.raises(ConfigError, match=r"too large: G .* GB of parameters.*more than the .* GB of this cpu"):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def _pix2pix(pairs, **sections):
    layer = {
        "data": {"name": str(pairs), "image_size": 32, "load_size": 36, "holdout": 4},
        "model": {"ngf": 4, "ndf": 4, "num_downs": 5},
        "train": {"device": "cpu", "max_steps": 4, "log_every": 2, "sample_every": 2, "eval_every": 2},
    }
    layer["train"]["tensorboard"] = False
    return tiny_plugin("pix2pix", layer, sections)[1]


def test_a_best_metric_the_plugin_does_not_report_is_refused_before_training(tmp_path):
    pairs = write_side_by_side(tmp_path / "pairs", n=8)
    with pytest.raises(ConfigError, match=r"'train.best_metric' is 'fid'.*reports only l1, psnr, ssim"):
        Trainer(_pix2pix(pairs, train={"best_metric": "fid"}), tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_missing_fid_weights_are_refused_before_training(tmp_path, image_folder):
    from tests.helpers import tiny_dcgan

    missing = tmp_path / "pt_inception.pth"
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 3}, eval={"fid_weights": str(missing)})
    with pytest.raises(ConfigError, match=r"'eval.fid_weights' names .*pt_inception.pth, which is not a file"):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_pix2pix_with_nothing_held_out_trains_samples_and_skips_its_metrics(tmp_path):
    pairs = write_side_by_side(tmp_path / "pairs", n=8)
    with pytest.warns(UserWarning, match="no held-out pairs"):
        final = Trainer(_pix2pix(pairs, data={"holdout": 0}), tmp_path / "run").fit()
    assert final.name == "step_00000004"
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step_00000002.png",
        "step_00000004.png",
    ]  # grids of training inputs stand in for the held-out ones


def test_whatever_fails_after_a_step_finds_that_step_saved_and_named(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 4, "max_steps": 6})

    def evaluate(nets, ctx):
        raise ZeroDivisionError("the report divided by zero")

    plugin.evaluate = evaluate
    with pytest.raises(RunFailed, match=r"ZeroDivisionError after step 4: .*checkpoint .*step_00000004.*--resume"):
        Trainer(plugin, tmp_path / "run").fit()
    assert [p.name for p in step_checkpoints(tmp_path / "run")] == ["step_00000004"]
    _, again = tiny_dcgan(image_folder, train={"max_steps": 6})
    assert Trainer(again, tmp_path / "run", resume=True).fit().name == "step_00000006"


def test_the_final_checkpoint_is_written_before_the_final_evaluation(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 100, "max_steps": 6})
    seen = []

    def evaluate(nets, ctx):
        seen.append([p.name for p in step_checkpoints(tmp_path / "run")])
        raise RuntimeError("evaluation broke")

    plugin.evaluate = evaluate
    with pytest.raises(RunFailed, match=r"step_00000006"):
        Trainer(plugin, tmp_path / "run").fit()
    assert seen == [["step_00000006"]]


def test_checkpoint_minutes_saves_by_wall_clock_time(image_folder, tmp_path, monkeypatch):
    from gantk.engine import trainer as trainer_module

    clock = iter(range(0, 10_000, 45))  # every reading of the clock is 45 s later: a save is due every 2nd step
    monkeypatch.setattr(trainer_module.time, "monotonic", lambda: next(clock))
    _, plugin = tiny_dcgan(image_folder, train={"checkpoint_minutes": 1.0, "keep_checkpoints": 10})
    Trainer(plugin, tmp_path / "run").fit()
    saved = [p.name for p in step_checkpoints(tmp_path / "run")]
    assert len(saved) >= 3 and saved[-1] == "step_00000006"  # not only the final one


def test_evaluation_and_samples_do_not_move_the_training_random_streams(image_folder, tmp_path):
    """The checkpoint is written before samples and evaluation, so they must not draw from training's
    streams: a run that samples and evaluates every step ends with the weights of one that never does."""
    import torch
    from safetensors.torch import load_file

    def evaluate(nets, ctx):
        torch.rand(100)  # a plugin's evaluation drawing from the global generator
        return {}

    _, quiet = tiny_dcgan(image_folder, train={"sample_every": 0})
    _, busy = tiny_dcgan(image_folder, train={"sample_every": 1, "eval_every": 1})
    busy.evaluate = evaluate
    a = Trainer(quiet, tmp_path / "a").fit()
    b = Trainer(busy, tmp_path / "b").fit()
    for net in ("G", "D"):
        wa, wb = load_file(a / f"{net}.safetensors"), load_file(b / f"{net}.safetensors")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_fresh_start_in_a_folder_without_checkpoints_drops_stale_metrics(image_folder, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 99, "phase": "gan"}) + "\n")
    _, plugin = tiny_dcgan(image_folder)
    Trainer(plugin, run).fit()
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert 99 not in steps and steps[-1] == 6


def test_a_first_step_that_fails_is_one_paragraph_and_leaves_no_folder(tmp_path):
    from gantk.errors import StepFailed

    pairs = write_side_by_side(tmp_path / "pairs", n=8)
    plugin = _pix2pix(pairs)

    def d_loss(batch, ctx):  # what a combination no check foresaw does: fails inside the networks
        raise ValueError("Expected more than 1 value per channel when training")

    plugin.d_loss = d_loss
    with pytest.raises(StepFailed, match=r"first training step of plugin 'pix2pix' failed: ValueError: .*model\.\*"):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_a_patchgan_too_deep_for_the_image_size_is_refused_before_the_data_is_read(tmp_path):
    plugin = _pix2pix(tmp_path / "no-such-pairs", model={"n_layers": 4})  # 32 px halved 4 times: 2x2 left
    with pytest.raises(ConfigError, match=r"model.n_layers=4 is too deep for data.image_size=32.*n_layers <= 3"):
        Trainer(plugin, tmp_path / "run").fit()


def test_data_of_another_kind_names_the_key_the_step_asked_for(tmp_path):
    pairs = write_side_by_side(tmp_path / "pairs", n=8)
    _, plugin = tiny_dcgan(pairs)
    plugin.cfg.data.kind = "paired"
    with pytest.raises(DataError, match=r"asked the batch for 'image', but the data gives 'A', 'B'"):
        Trainer(plugin, tmp_path / "run").fit()


def test_an_image_size_the_architecture_cannot_take_is_refused_before_the_data_is_read(tmp_path):
    _, plugin = tiny_dcgan(tmp_path / "no-such-data")
    plugin.cfg.data.image_size = 20  # DCGAN takes powers of two
    with pytest.raises(ConfigError, match=r"power of two >= 16, got 20"):  # not the missing data: checked first
        Trainer(plugin, tmp_path / "run").fit()


def test_an_inception_score_the_weights_cannot_give_is_refused_before_training(tmp_path, image_folder):
    from safetensors.torch import save_file

    from tests.helpers import tiny_dcgan

    pool_only = tmp_path / "pool-only.safetensors"
    save_file({"fc.weight": torch.zeros(1008, 2048)}, str(pool_only))
    eval_ = {"fid_weights": str(pool_only), "inception_score": True, "fid_samples": 16}
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 3}, eval=eval_)
    with pytest.raises(ConfigError, match=r"pool-only.safetensors have no logits layer"):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run").exists()


def test_rotation_and_resume_ignore_folders_that_are_not_step_checkpoints(image_folder, tmp_path):
    """A user's copy under checkpoints/ is never resumed from nor rotated out, and the real newest
    checkpoints are never deleted because of it (issue 33)."""
    import shutil

    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 4, "checkpoint_every": 2, "keep_checkpoints": 2})
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    root = run / "checkpoints"
    shutil.copytree(root / "step_00000002", root / "step_backup")
    os_renamed = root / "step_00000004.corrupt"
    shutil.copytree(root / "step_00000004", os_renamed)
    _, again = tiny_dcgan(image_folder, train={"max_steps": 8, "checkpoint_every": 2, "keep_checkpoints": 2})
    trainer = Trainer(again, run, resume=True)
    trainer.setup()
    assert trainer.step == 4
    trainer.fit()
    assert [p.name for p in step_checkpoints(run)] == ["step_00000006", "step_00000008"]
    assert (root / "step_backup").is_dir() and os_renamed.is_dir()  # the user's folders are untouched


def test_resume_naming_an_earlier_checkpoint_sets_the_later_ones_aside(image_folder, tmp_path):
    """--resume step_00000002 continues from it, exactly as the uninterrupted run did, and moves the later
    checkpoints (and their metrics) to checkpoints/superseded/ rather than deleting them."""
    sections = {"train": {"max_steps": 6, "checkpoint_every": 2, "keep_checkpoints": 5}}
    _, plugin = tiny_dcgan(image_folder, **sections)
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    first = {k: v.clone() for k, v in load_file(run / "checkpoints" / "step_00000006" / "G.safetensors").items()}
    _, again = tiny_dcgan(image_folder, **sections)
    Trainer(again, run, resume="step_00000002").fit()
    root = run / "checkpoints"
    assert [p.name for p in step_checkpoints(run)] == ["step_00000002", "step_00000004", "step_00000006"]
    assert sorted(p.name for p in (root / "superseded").iterdir()) == [
        "metrics.jsonl",
        "step_00000004",
        "step_00000006",
    ]
    again_g = load_file(root / "step_00000006" / "G.safetensors")
    assert all(torch.equal(first[k], again_g[k]) for k in first)  # exact resume from the earlier one
    steps = [json.loads(x)["step"] for x in (root / "superseded" / "metrics.jsonl").read_text().splitlines()]
    assert steps and min(steps) > 2


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("step_00000099", "there is no such checkpoint.*step_00000002"),
        ("../elsewhere", "not a checkpoint of this run"),
    ],
)
def test_resume_naming_a_checkpoint_that_is_not_one_of_the_run_is_refused(image_folder, tmp_path, name, message):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2, "checkpoint_every": 2})
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    (run / "elsewhere").mkdir()
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    _, again = tiny_dcgan(image_folder, train={"max_steps": 4})
    with pytest.raises(GantkError, match=message):
        Trainer(again, run, resume=str(run / "checkpoints" / name) if name.startswith("..") else name).fit()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def _sometimes_failing_pipeline(path, p: float):
    """An albumentations pipeline that fails on about p/2 of its random draws (a crop larger than 16 px)."""
    import albumentations as A

    A.save(A.Compose([A.OneOf([A.NoOp(), A.RandomCrop(height=64, width=64)], p=p)]), str(path), data_format="yaml")
    return str(path)


def test_a_data_failure_mid_run_saves_the_step_and_skip_then_resumes_exactly(image_folder, tmp_path):
    """A transform failing on a few draws mid-run saves the steps trained (issue 33); continued with
    data.on_error=skip, the run ends bit-identical to one that had skip from the start: the substitute
    of a failing draw follows from the draw alone."""
    pipeline = _sometimes_failing_pipeline(tmp_path / "aug.yaml", 0.04)
    sections = {"data": {"transforms": pipeline}, "train": {"max_steps": 12, "checkpoint_every": 100}}
    _, plugin = tiny_dcgan(image_folder, **sections)
    with pytest.raises(RunFailed, match=r"data.transforms=.*failed on item .*on_error=skip.*checkpoint .*step_") as err:
        Trainer(plugin, tmp_path / "run").fit()
    saved = step_checkpoints(tmp_path / "run")
    assert len(saved) == 1 and 1 <= int(saved[0].name[5:]) < 12, err.value  # the steps before the failure
    assert f"checkpoint {saved[0]}" in str(err.value)

    skip = {**sections, "data": {"transforms": pipeline, "on_error": "skip"}}
    _, again = tiny_dcgan(image_folder, **skip)
    resumed = Trainer(again, tmp_path / "run", resume=True).fit()
    _, straight_plugin = tiny_dcgan(image_folder, **skip)
    straight = Trainer(straight_plugin, tmp_path / "straight").fit()
    a, b = load_file(resumed / "G.safetensors"), load_file(straight / "G.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_file_deleted_mid_run_saves_the_step_and_names_the_file(tmp_path):
    from tests.helpers import write_image_folder

    images = write_image_folder(tmp_path / "images", n=16)
    victim = sorted(images.rglob("*.png"))[5]
    _, plugin = tiny_dcgan(images, data={"preload": "never"}, train={"max_steps": 6, "batch_size": 4})

    class DeleteAtStep2:
        def due(self, step, max_steps):
            return step == 2

        def __call__(self, trainer):
            victim.unlink()

    with pytest.raises(RunFailed, match=rf"{victim.name} does not exist.*checkpoint .*step_0000000[234]"):
        Trainer(plugin, tmp_path / "run", hooks=[DeleteAtStep2()]).fit()
    assert step_checkpoints(tmp_path / "run")


def test_a_run_killed_in_its_final_evaluation_runs_it_on_resume(image_folder, tmp_path):
    """Killed after the final checkpoint, in the final evaluation: --resume runs the evaluation and
    writes best/, instead of saying "nothing to do" (issue 33); once done, a --resume has nothing to do."""
    sections = {"train": {"eval_every": 100, "max_steps": 4, "best_metric": "kid_pixels"}}
    _, plugin = tiny_dcgan(image_folder, **sections)
    calls = []

    def killed(nets, ctx):
        raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this point runs

    plugin.evaluate = killed
    with pytest.raises(KeyboardInterrupt):
        Trainer(plugin, tmp_path / "run").fit()
    assert not (tmp_path / "run" / "checkpoints" / "best").exists()

    def evaluate(nets, ctx):
        calls.append(ctx.step)
        return {"kid_pixels": 1.0}

    for _ in range(2):
        _, again = tiny_dcgan(image_folder, **sections)
        again.evaluate = evaluate
        assert Trainer(again, tmp_path / "run", resume=True).fit().name == "step_00000004"
    assert calls == [4]  # the second --resume found it done
    assert (tmp_path / "run" / "checkpoints" / "best" / "manifest.json").is_file()


def test_resuming_with_an_edited_transforms_file_warns_naming_it(image_folder, tmp_path):
    import albumentations as A

    path = tmp_path / "aug.yaml"
    A.save(A.Compose([A.HorizontalFlip()]), str(path), data_format="yaml")
    sections = {"data": {"transforms": str(path)}, "train": {"max_steps": 2}}
    _, plugin = tiny_dcgan(image_folder, **sections)
    Trainer(plugin, tmp_path / "run").fit()
    _, same = tiny_dcgan(image_folder, **{**sections, "train": {"max_steps": 3}})
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", "data.transforms")
        Trainer(same, tmp_path / "run", resume=True).fit()  # unchanged: no warning
    A.save(A.Compose([A.VerticalFlip()]), str(path), data_format="yaml")
    _, edited = tiny_dcgan(image_folder, **{**sections, "train": {"max_steps": 4}})
    with pytest.warns(UserWarning, match=rf"data.transforms={path} is not the pipeline .*step_00000003"):
        Trainer(edited, tmp_path / "run", resume=True).fit()
