"""CycleGAN: unpaired folders of unequal size, the capturable image pool (junyanz's query, exactly),
exact resume with the pools, both directions for translate and export, and the held-out evaluation."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from gantk.plugins.cyclegan.networks import ImagePool, ResnetGenerator
from PIL import Image
from safetensors.torch import load_file

from gantk import registry
from gantk.data.datasets import UnpairedDataset
from gantk.data.loader import BatchStream
from gantk.engine import Trainer
from gantk.testing import check_plugin
from tests.helpers import run_python
from tests.helpers.pairs import write_side_by_side
from tests.helpers.zoo import TINY, tiny_cyclegan, write_unpaired


def test_unpaired_folders_of_unequal_size_train_and_shuffle_b_per_epoch(tmp_path):
    plugin = tiny_cyclegan(write_unpaired(tmp_path / "horses2zebras", 5, 7), train={"max_steps": 3})
    dataset = plugin.build_dataset()
    assert isinstance(dataset, UnpairedDataset) and len(dataset) == 7  # an epoch is max(|A|, |B|)
    assert plugin.cfg.data.kind == "" and plugin.heldout_images() == {}
    orders = []
    for epoch in range(3):
        dataset.set_epoch(epoch)
        orders.append(dataset.b_index.tolist())
        assert sorted(orders[-1]) == list(range(7))  # every B image once per epoch
    assert orders[0] != orders[1] != orders[2]
    batch = dataset.batch(torch.arange(7))
    assert torch.equal(batch["A"][5], dataset.tensors["A"][0])  # A wraps around: 5 mod 5
    Trainer(plugin, tmp_path / "run").fit()


def test_the_stream_tells_the_dataset_each_epoch_so_resume_sees_the_same_pairs():
    a, b = torch.arange(3).view(3, 1, 1, 1), torch.arange(5).view(5, 1, 1, 1) + 10
    stream = BatchStream(UnpairedDataset(a, b, 1, seed=4), 1, seed=4)
    seen = [tuple(int(v) for v in (x["A"], x["B"])) for x in (next(stream) for _ in range(12))]
    again = BatchStream(UnpairedDataset(a, b, 1, seed=4), 1, seed=4)
    again.load_state_dict({"epoch": 1, "batch": 2})
    assert [tuple(int(v) for v in (x["A"], x["B"])) for x in (next(again) for _ in range(5))] == seen[7:12]
    first_epoch, second_epoch = seen[:5], seen[5:10]
    assert {p[1] for p in first_epoch} == {p[1] for p in second_epoch} == {10, 11, 12, 13, 14}
    assert first_epoch != second_epoch


def reference_query(pool: list, size: int, image, coin: float, slot: int):
    """junyanz's ImagePool.query for one image, with its random draws given."""
    if len(pool) < size:
        pool.append(image.clone())
        return image
    if coin > 0.5:
        old = pool[slot].clone()
        pool[slot] = image.clone()
        return old
    return image


def test_the_image_pool_is_junyanz_query_image_by_image():
    pool, reference = ImagePool(4, 1, 2), []
    g = torch.Generator().manual_seed(0)
    for _ in range(6):  # batches of 3: the pool fills inside a batch, then swaps
        fakes = torch.randn(3, 1, 2, 2, generator=g)
        coins, slots = torch.rand(3, generator=g), torch.randint(0, 4, (3,), generator=g)
        out = pool(fakes, coins, slots.float())
        expected = torch.stack(
            [reference_query(reference, 4, f, float(c), int(s)) for f, c, s in zip(fakes, coins, slots, strict=True)]
        )
        assert torch.equal(out, expected)
        assert torch.equal(pool.images[: len(reference)], torch.stack(reference))
    assert int(pool.count) == 4
    assert torch.equal(ImagePool(0, 1, 2)(fakes, coins, slots), fakes)  # pool_size 0: no history


def test_resume_is_exact_with_the_pools(tmp_path):
    data = write_side_by_side(tmp_path / "pairs", 8, 20)
    final = Trainer(tiny_cyclegan(data, train={"max_steps": 6}), tmp_path / "a").fit()
    Trainer(tiny_cyclegan(data, train={"max_steps": 3}), tmp_path / "b").fit()
    again = Trainer(tiny_cyclegan(data, train={"max_steps": 6}), tmp_path / "b", resume=True).fit()
    for net in ("G_AB", "G_BA", "D_A", "D_B", "pool_A", "pool_B"):
        a, b = load_file(final / f"{net}.safetensors"), load_file(again / f"{net}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert int(load_file(final / "pool_A.safetensors")["count"]) == 3  # full after 6 steps of batch 1


def test_a_paired_set_is_two_domains_with_its_last_pairs_held_out(tmp_path):
    plugin = tiny_cyclegan(write_side_by_side(tmp_path / "pairs", 10, 20), train={"max_steps": 2, "eval_every": 2})
    trainer = Trainer(plugin, tmp_path / "run")
    trainer.fit()
    assert len(trainer.dataset) == 8 and len(plugin.heldout_images()["A"]) == 2
    assert plugin.cfg.train.max_steps == 2 and plugin.cfg.model.n_blocks == 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = next(r for r in rows if "eval/BtoA/l1" in r)
    assert {"eval/AtoB/l1", "eval/AtoB/psnr", "eval/BtoA/ssim"} <= set(evals)
    assert (tmp_path / "run" / "eval" / "cycles_00000002.png").is_file()
    card = evals["eval_protocol"]  # one part per direction: its reference images and how they were compared
    assert card["AtoB"]["reference"] == "held-out B images" and card["BtoA"]["pairs"] == 2
    assert card["AtoB"]["real_sha256"] != card["BtoA"]["real_sha256"] and card["gantk"]


def test_the_paper_schedule_and_blocks_come_from_the_data(tmp_path):
    from gantk.engine.resolve import resolve_run

    spec, cls = registry.load("cyclegan")
    cfg = registry.make_config(spec, cls, [({"data": {"name": str(write_unpaired(tmp_path / "d", 6, 9, 8))}}, "t")])
    plugin = cls(cfg)
    resolve_run(plugin)
    assert plugin.cfg.train.max_steps == 200 * 9 and plugin.cfg.schedule.decay_start == 100 * 9
    assert plugin.cfg.model.n_blocks == 9  # 256 px
    G = ResnetGenerator(3, 3, 4, 2)
    assert G(torch.zeros(1, 3, 12, 20)).shape == (1, 3, 12, 20)


def test_translate_and_export_both_directions(tmp_path):
    data = write_side_by_side(tmp_path / "pairs", 6, 20)
    run = tmp_path / "run"
    Trainer(tiny_cyclegan(data, train={"max_steps": 1}), run).fit()
    image = tmp_path / "in.png"
    # textured: instance norm of a flat image divides rounding noise by sqrt(eps) and amplifies it 300-fold
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(image)
    outs = {}
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / f"{direction}.png"
        result = run_python(
            None, "-m", "gantk", "translate", str(run), str(image), "--direction", direction, "-o", str(out)
        )
        assert result.returncode == 0, result.stderr
        outs[direction] = np.asarray(Image.open(out))
        assert outs[direction].shape == (18, 22, 3)
    assert not np.array_equal(outs["AtoB"], outs["BtoA"])  # two different generators
    bad = run_python(None, "-m", "gantk", "translate", str(run), str(image), "--direction", "up", "-o", str(out))
    assert bad.returncode == 2 and "offers directions AtoB, BtoA" in bad.stderr and "Traceback" not in bad.stderr
    onnx = tmp_path / "onnx-BtoA"
    result = run_python(
        None, "-m", "gantk", "export", str(run), "--format", "onnx", "--direction", "BtoA", "-o", str(onnx)
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((onnx / "export.json").read_text())["generator"] == "G_BA"
    via_onnx = tmp_path / "onnx.png"
    result = run_python(None, "-m", "gantk", "translate", str(onnx), str(image), "-o", str(via_onnx))
    assert result.returncode == 0, result.stderr
    assert np.abs(np.asarray(Image.open(via_onnx), float) - outs["BtoA"]).max() <= 1  # the same generator
    wrong = run_python(None, "-m", "gantk", "translate", str(onnx), str(image), "--direction", "AtoB", "-o", str(out))
    assert wrong.returncode == 2 and "export of direction BtoA" in wrong.stderr


def test_cyclegan_conforms(tmp_path):
    data = write_side_by_side(tmp_path / "pairs", 6, 20)
    overrides = [f"{s}.{k}={v}" for s, values in TINY.items() for k, v in values.items()] + ["data.kind=paired"]
    results = check_plugin("cyclegan", data=data, overrides=overrides, workdir=tmp_path)
    assert all(r.status == "passed" for r in results)
    assert "G_AB, G_BA" in next(r.detail for r in results if r.name.startswith("checkpoint round-trips"))


@pytest.fixture(autouse=True)
def _seeded():
    random.seed(0)
