import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gantk.engine import Trainer
from gantk.errors import GantkError
from gantk.io.checkpoint import read_training_state, step_checkpoints
from tests.helpers import tiny_dcgan


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("G", "D"):
        out.update({f"{name}.{k}": v for k, v in load_file(folder / f"{name}.safetensors").items()})
    return out


def test_a_few_steps_train_and_write_the_run_folder(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    plugin.cfg.data.channels = 3  # what the trainer resolves from this RGB folder
    torch.manual_seed(plugin.cfg.train.seed)  # the trainer seeds before building: same initial weights
    before = {k: v.clone() for k, v in plugin.build_networks()["G"].state_dict().items()}
    plugin.cfg.data.channels = 0
    run = tmp_path / "run"
    final = Trainer(plugin, run).fit()
    assert final == run / "checkpoints" / "step_00000006"
    assert (run / "config.yaml").is_file() and (run / "samples" / "step_00000006.png").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 4, 6]  # the first step, then every log_every
    assert {"D/real", "D/fake", "D/loss", "G/adv", "steps_per_s"} <= set(records[-1])
    after = load_file(final / "G.safetensors")
    assert {k: v.shape for k, v in before.items()} == {k: v.shape for k, v in after.items()}
    moved = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert "net.0.weight" in moved and "net.6.weight" in moved  # first and last layers (16x16 G) trained


def test_checkpoint_contents_rebuild_without_training_config(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    final = Trainer(plugin, tmp_path / "run").fit()
    names = sorted(p.name for p in final.iterdir())
    assert names == [
        "D.safetensors",
        "G.safetensors",
        "config.json",
        "manifest.json",
        "training_state.json",
        "training_state.safetensors",
    ]
    meta = json.loads((final / "config.json").read_text())
    assert meta["plugin"]["name"] == "dcgan" and meta["step"] == 6
    assert meta["config"]["data"]["channels"] == 3  # resolved from the data: needed to rebuild G
    state = read_training_state(final)
    assert state["step"] == 6 and set(state["optimizers"]) == {"D", "G"}
    assert state["data"] == {"epoch": 1, "batch": 2}  # 32 images / batch 8 = 4 batches an epoch; 6 steps
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda", "noise", "cpu_noise"}
    assert not any(p.suffix in (".pt", ".pth", ".pkl") for p in final.iterdir())


def test_resume_continues_the_step_count(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 3})
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 5})
    final = Trainer(plugin, run, resume=True).fit()
    assert final.name == "step_00000005"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # 1 (first step), 2, 3 (the end); 4 (first after resume), 5


def test_resume_is_exact_on_cpu(image_folder, tmp_path):
    """Six straight steps == three steps, a resume, three more: bit for bit, optimizer state too."""
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6})
    straight = Trainer(plugin, tmp_path / "straight").fit()

    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 3})
    Trainer(plugin, tmp_path / "split").fit()
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6})
    resumed = Trainer(plugin, tmp_path / "split", resume=True).fit()

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa, sb = read_training_state(straight), read_training_state(resumed)
    for net in ("G", "D"):
        for idx, slot in sa["optimizers"][net]["state"].items():
            for name, value in slot.items():
                assert torch.equal(value, sb["optimizers"][net]["state"][idx][name])


def test_resume_differs_without_restored_state(image_folder, tmp_path):
    """Guard for the test above: a fresh 3-step run continued from scratch does NOT match."""
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6})
    straight = Trainer(plugin, tmp_path / "straight").fit()
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 6, "seed": 1})
    other = Trainer(plugin, tmp_path / "other").fit()
    assert any(not torch.equal(v, _weights(other)[k]) for k, v in _weights(straight).items())


def test_existing_run_is_never_overwritten(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2})
    Trainer(plugin, tmp_path / "run").fit()
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2})
    with pytest.raises(GantkError, match="already holds checkpoints.*--resume"):
        Trainer(plugin, tmp_path / "run").fit()


def test_resume_without_a_checkpoint_starts_the_run(image_folder, tmp_path, capsys):
    """One command for a preemptible job's first start and every restart."""
    _, plugin = tiny_dcgan(image_folder)
    final = Trainer(plugin, tmp_path / "empty", resume=True).fit()
    assert final.name == "step_00000006"
    said = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "holds no complete checkpoint yet; starting the run at step 0" in said


def test_keeps_only_the_newest_checkpoints(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"checkpoint_every": 1, "keep_checkpoints": 2})
    Trainer(plugin, tmp_path / "run").fit()
    assert [p.name for p in step_checkpoints(tmp_path / "run")] == ["step_00000005", "step_00000006"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_saves_scaler_state(image_folder, tmp_path, precision):
    _, plugin = tiny_dcgan(image_folder, train={"precision": precision, "max_steps": 3})
    final = Trainer(plugin, tmp_path / "run").fit()
    state = read_training_state(final)
    if precision == "fp16":  # one scaler per optimizer, each with its own scale
        assert set(state["scalers"]) == {"D", "G"} and state["scalers"]["G"]["scale"] > 0
    else:
        assert state["scalers"] == {}
    for v in _weights(final).values():
        assert torch.isfinite(v.float()).all() and v.dtype in (torch.float32, torch.int64)


def test_ema_is_saved_and_tracks_the_generator(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"ema": {"enabled": True, "decay": 0.5}})
    final = Trainer(plugin, tmp_path / "run").fit()
    ema, G = load_file(final / "G_ema.safetensors"), load_file(final / "G.safetensors")
    assert ema.keys() == G.keys()
    key = next(k for k in G if k.endswith("weight"))
    assert not torch.equal(ema[key], G[key])  # averaged, not copied
    assert (ema[key] - G[key]).abs().max() < 0.5


def test_channels_last_and_lr_schedule(image_folder, tmp_path):
    _, plugin = tiny_dcgan(
        image_folder, train={"channels_last": True}, schedule={"name": "linear_decay", "decay_start": 3}
    )
    run = tmp_path / "run"
    Trainer(plugin, run).fit()
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["lr/G"] == pytest.approx(0.0)  # decayed linearly to zero at max_steps


def test_eval_hook_keeps_the_best_checkpoint(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 2, "max_steps": 6})
    scores = iter([3.0, 1.0, 2.0])  # best at step 4
    plugin.evaluate = lambda nets, ctx: {"score": next(scores)}
    plugin.best_metric = lambda: "score"
    Trainer(plugin, tmp_path / "run").fit()
    best = tmp_path / "run" / "checkpoints" / "best"
    meta = json.loads((best / "config.json").read_text())
    assert meta["step"] == 4 and meta["best_metric"] == "score" and meta["best_value"] == 1.0
    evals = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["eval/score"] for r in evals if "eval/score" in r] == [3.0, 1.0, 2.0]


def test_a_phase_with_keep_best_off_never_replaces_the_best_checkpoint(image_folder, tmp_path):
    from gantk.plugin import Phase

    _, plugin = tiny_dcgan(image_folder, train={"eval_every": 1, "max_steps": 6})
    plugin.evaluate = lambda nets, ctx: {"score": float(ctx.step)}  # keeps improving
    plugin.best_metric, plugin.best_mode = (lambda: "score"), "max"
    gan = Phase.alternating(plugin.d_loss, plugin.g_loss)
    plugin.phases = lambda: [Phase("first", gan.updates, steps=3), Phase("second", gan.updates, keep_best=False)]
    Trainer(plugin, tmp_path / "run").fit()
    meta = json.loads((tmp_path / "run" / "checkpoints" / "best" / "config.json").read_text())
    assert meta["step"] == 3 and meta["best_value"] == 3.0  # steps 4..6 scored higher but were in "second"


def test_loss_must_return_a_dict(image_folder, tmp_path):
    from gantk.errors import PluginError

    _, plugin = tiny_dcgan(image_folder)
    plugin.d_loss = lambda batch, ctx: torch.tensor(1.0)
    with pytest.raises(PluginError, match="must return a non-empty dict"):
        Trainer(plugin, tmp_path / "run").fit()


def test_update_of_network_without_optimizer(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder)
    del plugin.cfg.optim["D"]
    with pytest.raises(GantkError, match="has no optimizer: add optim.D"):
        Trainer(plugin, tmp_path / "run").fit()


def test_unwritable_out_is_a_clear_error(image_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _, plugin = tiny_dcgan(image_folder)
    with pytest.raises(GantkError, match="cannot write to run folder"):
        Trainer(plugin, blocker / "run").fit()


def _jittered(image_folder, **train):
    """A DCGAN whose prepare_batch flips and shifts images at random, from the engine's noise."""
    _, plugin = tiny_dcgan(image_folder, train=train)
    seen = []

    def prepare_batch(batch, ctx):
        image = batch["image"]
        if torch.rand(1, generator=ctx.cpu_noise).item() < 0.5:
            image = image.flip(-1)
        image = image + 0.1 * ctx.randn(*image.shape)
        seen.append(image.sum().item())
        return {**batch, "image": image}

    plugin.prepare_batch = prepare_batch
    return plugin, seen


def test_augmentation_in_prepare_batch_replays_on_resume(image_folder, tmp_path):
    plugin, seen_straight = _jittered(image_folder, max_steps=6)
    straight = Trainer(plugin, tmp_path / "straight").fit()
    plugin, seen_a = _jittered(image_folder, max_steps=3)
    Trainer(plugin, tmp_path / "split").fit()
    plugin, seen_b = _jittered(image_folder, max_steps=6)
    resumed = Trainer(plugin, tmp_path / "split", resume=True).fit()
    assert len(seen_straight) == 6  # called once per step (one batch per step)
    assert seen_a + seen_b == seen_straight
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_a_finished_run_changes_nothing(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2})
    final = Trainer(plugin, tmp_path / "run").fit()
    stamp = (final / "manifest.json").stat().st_mtime_ns
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2})
    assert Trainer(plugin, tmp_path / "run", resume=True).fit() == final
    assert (final / "manifest.json").stat().st_mtime_ns == stamp  # not rewritten


def test_compiled_training_matches_eager_and_saves_the_same_keys(image_folder, tmp_path):
    """train.compile runs the networks through torch.compile (inductor on this CPU); weights stay plain."""
    import torch._dynamo

    runs = {}
    for mode in ("off", "default"):
        _, plugin = tiny_dcgan(image_folder, train={"compile": mode, "max_steps": 3, "sample_every": 0})
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        runs[mode] = _weights(Trainer(plugin, tmp_path / mode).fit())
        compiled_frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        assert (compiled_frames > 0) == (mode == "default")
    eager, compiled = runs["off"], runs["default"]
    assert eager.keys() == compiled.keys()  # no "_orig_mod." prefixes: a compiled run's checkpoint loads anywhere
    assert max((eager[k].double() - compiled[k].double()).abs().max().item() for k in eager) < 1e-5
