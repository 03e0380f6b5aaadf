"""Data-parallel training on CPU with gloo, under the real torchrun: the same numbers as one process.

Each test starts real processes (torchrun, or ``gantk train --nproc``), so they take seconds each; the
networks are the tiny 16x16 DCGAN of ``tests.helpers``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO, write_image_folder
from tests.helpers.apps import free_port

WORKER = REPO / "tests" / "engine" / "ddp_worker.py"
SETTINGS = [
    "train.batch_size=8", "train.max_steps=3", "train.ema.enabled=true", "train.ema.calibration_batches=2",
    "train.ema.half_life_kimg=0.02",  # StyleGAN2's rule: the EMA's weight follows the images of the global batch
]  # fmt: skip


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run(args: list[str], timeout: float = 180, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env(), capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs
    )


def torchrun(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run(["-m", "torch.distributed.run", *args], timeout=timeout)


def check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def losses(run_folder: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (run_folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.startswith(("D/", "G/")) or k == "kimg"} for r in records if "G/adv" in r]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("ddp") / "images")


@pytest.fixture(scope="module")
def one_process(data: Path, tmp_path_factory) -> Path:
    """The reference: one process at global batch 8."""
    out = tmp_path_factory.mktemp("one")
    check(run([str(WORKER), str(data), str(out), *SETTINGS]))
    return out


def test_two_processes_end_equal_to_each_other_and_to_one_process(data, one_process, tmp_path):
    two = tmp_path / "two"
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(two), *SETTINGS))
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    reference = load_file(one_process / "rank0.safetensors")
    assert max_difference(rank0, rank1) == 0.0  # DDP keeps the ranks in lockstep
    assert max_difference(rank0, reference) < 1e-5  # batch-norm statistics and gradients over the global batch
    # the logged losses are the means over both ranks' halves: those of one process
    for got, want in zip(losses(two / "run"), losses(one_process / "run"), strict=True):
        assert got == pytest.approx(want, rel=1e-5)
    # rank 0 alone wrote the run folder, with every rank's random state in the checkpoint
    state = json.loads((two / "run" / "checkpoints" / "step_00000003" / "training_state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng_other_ranks"]) == 1
    assert (two / "run" / "samples" / "step_00000003.png").is_file()
    assert (two / "rank0-alone.ok").is_file()  # G in train mode on rank 0 alone did not wait for rank 1


def test_compiled_networks_under_ddp_train_like_one_eager_process(data, one_process, tmp_path):
    two = tmp_path / "two"
    settings = [*SETTINGS, "train.compile=default"]
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(two), *settings, timeout=400))
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert max_difference(rank0, rank1) == 0.0
    assert max_difference(rank0, load_file(one_process / "rank0.safetensors")) < 1e-5


def test_without_synchronised_batch_norm_two_processes_differ_from_one(data, one_process, tmp_path):
    """The control for the test above: per-rank batch statistics are a different computation."""
    two = tmp_path / "two"
    settings = [*SETTINGS, "train.sync_batchnorm=false"]
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(two), *settings))
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert max_difference(rank0, load_file(one_process / "rank0.safetensors")) > 1e-4
    weights = [k for k in rank0 if "running" not in k and "num_batches" not in k]
    assert max((rank0[k] - rank1[k]).abs().max().item() for k in weights) == 0.0  # DDP still syncs gradients


def test_a_nan_loss_on_one_rank_skips_that_update_on_every_rank(data, tmp_path):
    """One verdict for all: a rank skipping its backward pass alone would leave the others waiting."""
    out = tmp_path / "nan"
    settings = [*SETTINGS, "train.max_steps=4", "nan_at=1:1"]
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(out), *settings))
    assert [(out / f"rank{r}.skipped").read_text() for r in (0, 1)] == ["1", "1"]
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert max_difference(rank0, rank1) == 0.0


def test_two_nodes_on_localhost(data, one_process, tmp_path):
    """Two torchrun invocations, one process each, meeting at a c10d rendezvous on 127.0.0.1."""
    port = free_port()
    out = tmp_path / "nodes"
    args = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d"]
    args += ["--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", f"gantk-test-{port}"]
    command = [sys.executable, "-m", "torch.distributed.run", *args, str(WORKER), str(data), str(out), *SETTINGS]
    nodes = [
        subprocess.Popen(command, env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [node.communicate(timeout=180)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert max_difference(rank0, rank1) == 0.0
    assert max_difference(rank0, load_file(one_process / "rank0.safetensors")) < 1e-5


TINY = ["data.image_size=16", "model.ngf=4", "model.ndf=4", "model.nz=8", "train.batch_size=8"]
TINY += ["train.sample_every=0", "train.tensorboard=false", "train.log_every=1"]


def train_args(plugin: str | Path, data: Path, out: Path, *extra: str, nproc: int = 2) -> list[str]:
    """``python -m gantk train`` arguments for the tiny DCGAN on CPU; ``extra`` goes last."""
    args = ["-m", "gantk", "train", str(plugin), "--nproc", str(nproc), "--data", str(data), "--out", str(out)]
    return [*args, "--device", "cpu", *[x for item in TINY for x in ("--set", item)], *extra]


def gantk_train(data: Path, out: Path, *extra: str, nproc: int = 2) -> subprocess.CompletedProcess:
    return run(train_args("plugins/dcgan", data, out, "--set", "train.checkpoint_every=2", *extra, nproc=nproc))


def start_job(args: list[str]) -> subprocess.Popen:
    """A job in its own process group, so a test can tell whether any of its processes outlived it."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def assert_no_process_left(job: subprocess.Popen, wait: float = 10) -> None:
    with pytest.raises(ProcessLookupError):  # no rank survived in the job's process group
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            os.killpg(job.pid, 0)
            time.sleep(0.5)


def test_resume_a_two_process_run_on_two_or_on_one_process(data, tmp_path):
    straight = tmp_path / "straight"
    check(gantk_train(data, straight, "--max-steps", "4"))
    # DCGAN evaluates after its last step: rank 0 alone computes FID/KID (torchmetrics must not try to
    # gather from the waiting rank, which hung the job) and shares the numbers
    evals = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines() if "eval/kid_pixels" in x]
    assert [e["step"] for e in evals] == [4] and (straight / "checkpoints" / "best").is_dir()

    halves = tmp_path / "halves"
    check(gantk_train(data, halves, "--max-steps", "2"))
    on_one = shutil.copytree(halves, tmp_path / "on_one")
    resumed = gantk_train(data, halves, "--max-steps", "4", "--resume")
    check(resumed)
    assert "resuming from checkpoints/step_00000002 at step 2" in resumed.stderr
    final = "checkpoints/step_00000004"
    for net in ("G", "D"):
        a, b = load_file(straight / final / f"{net}.safetensors"), load_file(halves / final / f"{net}.safetensors")
        assert max_difference(a, b) == 0.0  # resumed exactly: data position, noise and per-rank state

    # the same checkpoint continued by one process: the global data order and noise carry over
    single = gantk_train(data, on_one, "--max-steps", "4", "--resume", nproc=1)
    check(single)
    assert "written by 2 process(es) and this run has 1" in single.stderr
    a, b = load_file(straight / final / "G.safetensors"), load_file(on_one / final / "G.safetensors")
    assert max_difference(a, b) < 1e-5


FAILING_PLUGIN = """

_d_loss = DCGAN.d_loss


def _failing_d_loss(self, batch, ctx):
    if ctx.rank == 1 and ctx.step == 2:
        raise RuntimeError("injected failure on rank 1")
    return _d_loss(self, batch, ctx)


DCGAN.d_loss = _failing_d_loss
"""


def test_a_failed_rank_stops_the_whole_job(data, tmp_path):
    plugin = shutil.copytree(REPO / "plugins" / "dcgan", tmp_path / "failing_dcgan")
    with open(plugin / "plugin.py", "a", encoding="utf-8") as fh:
        fh.write(FAILING_PLUGIN)
    start = time.monotonic()
    proc = start_job(train_args(plugin, data, tmp_path / "run", "--max-steps", "50"))
    try:
        _, stderr = proc.communicate(timeout=150)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert time.monotonic() - start < 120
    assert "injected failure on rank 1" in stderr  # the failing rank's own error
    assert "[rank 0] lost contact with the other processes" in stderr  # the survivor says why it stops
    assert_no_process_left(proc)


def test_sigterm_to_torchrun_saves_one_checkpoint_and_stops_every_rank(data, tmp_path):
    run_folder = tmp_path / "run"
    proc = start_job(train_args("plugins/dcgan", data, run_folder, "--max-steps", "100000"))
    try:
        metrics = run_folder / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 3):
            time.sleep(0.2)
        proc.terminate()  # SIGTERM to torchrun, which passes it on to both ranks
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    saved = sorted(p.name for p in (run_folder / "checkpoints").iterdir())
    assert len(saved) == 1 and saved[0].startswith("step_"), saved
    step = int(saved[0].removeprefix("step_"))
    assert f"stopped by SIGTERM at step {step}; checkpoint saved" in stderr
    assert stderr.count("stopped by SIGTERM") == 1  # said once, by rank 0
    assert "Traceback" not in stderr and "SignalException" not in stderr  # torchrun's launcher stays quiet
    assert proc.returncode == 128 + signal.SIGTERM
    assert_no_process_left(proc)


def test_augmentation_and_ada_under_ddp_are_those_of_one_process(data, tmp_path):
    """train.augment draws the global batch's parameters and slices them, and ADA's r_t is taken over every
    rank's real logits: two processes end with one process's weights and p."""
    settings = [
        *SETTINGS,
        "train.augment.policy=[color,translation,cutout]",
        "train.augment.adaptive=true",
        "train.augment.interval=1",
        "train.augment.ada_kimg=0.01",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    check(run([str(WORKER), str(data), str(one), *settings]))
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(two), *settings))
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    assert max_difference(rank0, rank1) == 0.0
    assert max_difference(rank0, load_file(one / "rank0.safetensors")) < 1e-5
    state = "checkpoints/step_00000003/training_state.safetensors"
    p_one, p_two = (
        json.loads((f / "run" / state.replace("safetensors", "json")).read_text())["augment"]["p"] for f in (one, two)
    )
    tensors_one, tensors_two = load_file(one / "run" / state), load_file(two / "run" / state)
    assert torch.equal(tensors_one[p_one["__tensor__"]], tensors_two[p_two["__tensor__"]])
    assert tensors_one[p_one["__tensor__"]].item() != 1.0  # ADA moved p


def test_stylegan2s_lazy_double_backward_regularisers_keep_two_processes_in_lockstep(data, tmp_path):
    """R1 and the path length differentiate through D and G with create_graph before their backward: under
    DDP every rank runs them at the same steps and the gradients stay averaged. (Not equal to one process:
    minibatch-std groups and the path-length mean are taken over each rank's own samples, as in NVlabs.)"""
    two = tmp_path / "two"
    settings = ["train.batch_size=8", "train.max_steps=17", "plugin=stylegan2"]
    check(torchrun("--standalone", "--nproc_per_node", "2", str(WORKER), str(data), str(two), *settings))
    rank0, rank1 = load_file(two / "rank0.safetensors"), load_file(two / "rank1.safetensors")
    params = {k for k in rank0 if not k.endswith(("pl_mean", "w_avg"))}  # buffers: rank 0's are saved
    assert max_difference({k: rank0[k] for k in params}, {k: rank1[k] for k in params}) == 0.0
    records = [json.loads(line) for line in (two / "run" / "metrics.jsonl").read_text().splitlines()]
    runs = {key: sum(r.get(f"runs/{key}", 0) for r in records) for key in ("G:g_pl", "D:d_r1")}
    assert runs == {"G:g_pl": 5, "D:d_r1": 2}  # steps 0, 4, 8, 12, 16 and 0, 16 of 17
    assert all(math.isfinite(r["G/pl"]) and math.isfinite(r["D/r1"]) for r in records if "D/r1" in r)
    assert float(rank0["G.pl_mean"]) > 0


def test_nproc_says_what_it_starts_and_a_failure_is_gantks_paragraph_without_torchruns_report(tmp_path):
    """After gantk's message, torchrun's ChildFailedError traceback and box followed; --nproc 3 on a
    machine with fewer cores started CPU processes silently (issue 30)."""
    data = write_image_folder(tmp_path / "img", n=16, size=16)
    args = train_args("plugins/dcgan", data, tmp_path / "run", "--set", "train.batch_size=7", nproc=3)
    proc = subprocess.run(
        [sys.executable, *args],
        env={**env(), "PYTHONWARNINGS": "default"},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert "3 CPU processes on this machine (gloo" in proc.stderr
    assert proc.stderr.count("must split evenly over the 3 processes") == 1  # rank 0 says it for all
    for noise in ("ChildFailedError", "Traceback", "Root Cause", "OMP_NUM_THREADS"):
        assert noise not in proc.stderr, proc.stderr
    if (os.cpu_count() or 1) < 3:
        assert "more processes than the" in proc.stderr
    assert not (tmp_path / "run").exists()
