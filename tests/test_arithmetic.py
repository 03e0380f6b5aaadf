"""Vector arithmetic on z: the expression, the exemplars matching the numbered grid, and the commands."""

import json

import pytest
import torch

from gantk.arithmetic import Group, arithmetic, cell_at, figure, latent_key, numbered_grid, parse_expression
from gantk.cli import main
from gantk.errors import GantkError
from gantk.sampling import sample
from tests.helpers import tiny_dcgan, trained_dcgan_run


def test_parse_expression():
    assert parse_expression(" 12,17,40 - 5,9,33 + 22,31,50", 64) == [
        Group(1, (12, 17, 40)),
        Group(-1, (5, 9, 33)),
        Group(1, (22, 31, 50)),
    ]
    assert parse_expression("-3", 4) == [Group(-1, (3,))]
    for expr, message in [
        ("", "empty"),
        ("1,2 3", "not a list of grid indices"),
        ("1,2 +", "expected a group of indices after '\\+'"),
        ("1,,2", "not a list of grid indices"),
        ("1,64", "index 64 is outside the grid of 64 samples"),
        ("a - b", "'a' is not a list"),
        (",".join(["1"] * 20_000), "a group of 20000 indices; at most 32"),  # a 1.36 Mpx-wide figure before
        (" + ".join(["1"] * 9), "more than 8 groups"),
    ]:
        with pytest.raises(GantkError, match=message):
            parse_expression(expr, 64)


def test_arithmetic_averages_the_grid_cells_z(image_folder):
    _, plugin = tiny_dcgan(image_folder)
    plugin.cfg.data.channels = 3
    G = plugin.build_networks()["G"].eval()
    result = arithmetic(plugin, G, "1,2,3 - 4,5 + 6", seed=3, n=16, variations=4, jitter=0.25)
    z = plugin.sample_inputs(16, torch.Generator().manual_seed(3))["z"]
    expected = z[[1, 2, 3]].mean(0) - z[[4, 5]].mean(0) + z[6]
    assert torch.allclose(result.z, expected, atol=1e-6)
    with torch.no_grad():
        grid = sample(plugin, G, 16, 3)  # the numbered grid of the same -n and --seed
        direct = G(expected[None])
    assert torch.allclose(result.exemplars[0], grid[[1, 2, 3]], atol=1e-5)  # index i is cell i of that grid
    assert torch.allclose(result.exemplars[1], grid[[4, 5]], atol=1e-5)
    assert torch.allclose(result.results[0], direct, atol=1e-5)  # the first result is unjittered
    assert len(result.results) == 4 and not torch.allclose(result.results[1], result.results[0])
    assert figure(result).width > numbered_grid(grid).width // 2
    with pytest.raises(GantkError, match="has no float 'z'"):
        latent_key({"input": torch.zeros(1, 3, 8, 8)}, "pix2pix")


def test_numbered_sample_and_arithmetic_commands(image_folder, tmp_path):
    run = trained_dcgan_run(tmp_path, image_folder)
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "12", "--seed", "3", "--numbered", "-o", str(grid), "--device", "cpu"]) == 0
    record = json.loads(grid.with_suffix(".json").read_text())
    assert record["n"] == 12 and record["seed"] == 3 and record["cells"][5] == {"index": 5, "row": 1, "column": 2}
    out = tmp_path / "result.png"
    args = ["arithmetic", str(run), "-n", "12", "--seed", "3", "--expr", "0,1 - 2 + 3", "-o", str(out)]
    assert main([*args, "--device", "cpu"]) == 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["groups"][1] == {"sign": -1, "indices": [2]} and saved["variations"] == 9
    from PIL import Image

    assert Image.open(out).size[0] > Image.open(out).size[1] > 0
    assert main(["arithmetic", str(run), "-n", "12", "--expr", "0 + 12", "-o", str(out)]) == 2  # outside the grid
    assert main(["sample", str(run), "--numbered", "-o", str(tmp_path / "folder")]) == 2  # needs a .png


def test_a_click_on_the_numbered_grid_finds_its_cell():
    images = torch.zeros(10, 1, 16, 16)  # 16 px cells enlarged 4x to 64; 3 to a row (round(sqrt(10)))
    grid = numbered_grid(images)
    assert grid.size == (3 * 66 + 2, 4 * 66 + 2)
    assert cell_at(2, 2, 10, 64, 64) == 0 and cell_at(65, 65, 10, 64, 64) == 0
    assert cell_at(66, 2, 10, 64, 64) is None  # the padding between cells
    assert cell_at(68 + 66, 68, 10, 64, 64) == 5 and cell_at(3, 3 * 66 + 3, 10, 64, 64) == 9
    assert cell_at(70, 3 * 66 + 3, 10, 64, 64) is None  # the empty place after the last cell


def test_a_class_conditional_model_needs_one_label(tmp_path):
    from tests.helpers.labels import tiny_cgan_checkpoint

    ckpt = tiny_cgan_checkpoint(tmp_path / "cgan")
    grid, out = tmp_path / "grid.png", tmp_path / "r.png"
    common = ["-n", "8", "--seed", "1", "--device", "cpu"]
    assert main(["sample", str(ckpt), "--numbered", "-o", str(grid), *common]) == 2  # no --label
    assert main(["sample", str(ckpt), "--numbered", "--label", "dark", "-o", str(grid), *common]) == 0
    assert main(["arithmetic", str(ckpt), "--expr", "0,1 - 2 + 3", "-o", str(out), *common]) == 2
    assert main(["arithmetic", str(ckpt), "--label", "dark", "--expr", "0,1 - 2 + 3", "-o", str(out), *common]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["label"] == "dark"
