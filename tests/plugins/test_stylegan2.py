"""StyleGAN2: each building block against a direct computation, the generator's sampling controls, and
training with the lazy regularisers (resume exact, one graph per step variant)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gantk.plugins.stylegan2.networks import (
    Discriminator,
    EqualLinear,
    Generator,
    MinibatchStd,
    downsample2d,
    fir_kernel,
    first_style_at,
    modulated_conv2d,
    style_count,
    upsample2d,
)
from gantk.plugins.stylegan2.plugin import r1_gamma_rule
from PIL import Image

from gantk.engine import Trainer
from gantk.engine.graph import WARMUP
from gantk.errors import ConfigError, GantkError
from gantk.plugin import GanPlugin
from tests.engine.test_graph import _with_graphs
from tests.helpers import saved_networks
from tests.helpers.zoo import tiny_stylegan2


def _per_sample_reference(x, weight, styles, demodulate, up):
    """The paper's definition: each sample's own weights w * s, normalised per output channel, as a
    grouped convolution over the batch."""
    n, c = x.shape[:2]
    w = weight[None] * styles[:, None, :, None, None]  # (N, out, in, k, k)
    if demodulate:
        w = w * (w.square().sum([2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    if up:
        grouped = w.transpose(1, 2).reshape(n * c, -1, *weight.shape[2:])  # (N*in, out, k, k)
        y = F.conv_transpose2d(x.reshape(1, n * c, *x.shape[2:]), grouped, stride=2, groups=n)
        y = y.reshape(n, -1, *y.shape[2:])
        k = (fir_kernel() * 4).to(y.dtype)
        return F.conv2d(F.pad(y, [1, 1, 1, 1]), k[None, None].expand(y.shape[1], 1, 4, 4), groups=y.shape[1])
    y = F.conv2d(x.reshape(1, n * c, *x.shape[2:]), w.reshape(-1, c, *weight.shape[2:]), padding=1, groups=n)
    return y.reshape(n, -1, *y.shape[2:])


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_convolution_is_the_per_sample_grouped_convolution(up, demodulate):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.rand(3, 5, generator=g, dtype=torch.float64) + 0.5
    ours = modulated_conv2d(x, weight, styles, demodulate=demodulate, up_kernel=fir_kernel().double() if up else None)
    ref = _per_sample_reference(x, weight, styles, demodulate, up)
    assert ours.shape == ref.shape == (3, 7, 12 if up else 6, 12 if up else 6)
    torch.testing.assert_close(ours, ref)


def test_demodulated_outputs_have_unit_scale_for_unit_inputs():
    """Demodulation's point: whatever the style, unit-variance inputs give about unit-variance outputs."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 64, 16, 16, generator=g)
    y = modulated_conv2d(x, torch.randn(32, 64, 3, 3, generator=g), torch.rand(4, 64, generator=g) * 10)
    assert 0.8 < y.std().item() < 1.2


def test_fir_up_and_down_sampling_keep_a_constant_image_and_match_interpolate_inside():
    const = torch.full((1, 2, 8, 8), 0.7)
    up, down = upsample2d(const, fir_kernel()), downsample2d(const, fir_kernel())
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    nearest = F.interpolate(const, scale_factor=2)
    torch.testing.assert_close(up[..., 2:-2, 2:-2], nearest[..., 2:-2, 2:-2])  # the border sees zero padding
    torch.testing.assert_close(down[..., 1:-1, 1:-1], F.interpolate(const, scale_factor=0.5)[..., 1:-1, 1:-1])
    # a ramp stays a ramp inside (a low-pass filter of a linear image is the image, resampled)
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]
    torch.testing.assert_close(downsample2d(ramp, fir_kernel())[..., 1:-1, 1:-1], ramp[..., 1:3, 2:6:2] + 0.5)


def test_equalised_learning_rate_scales_at_run_time():
    layer = EqualLinear(256, 64, lr_mul=0.01)
    assert abs(layer.weight.std().item() - 100) < 10  # stored as N(0, 1) / lr_mul
    x = torch.randn(5, 256)
    expected = F.linear(x, layer.weight * 0.01 / math.sqrt(256), layer.bias * 0.01)
    torch.testing.assert_close(layer(x), expected)
    assert 0.8 < layer(torch.randn(4096, 256)).std().item() < 1.2  # unit scale in, unit scale out


def test_minibatch_std_appends_the_group_standard_deviation():
    x = torch.randn(8, 3, 4, 4)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 4, 4)
    groups = x.reshape(4, 2, 3, 4, 4)  # sample i is in group i % 2
    expected = groups.std(0, unbiased=False).mean([1, 2, 3])
    torch.testing.assert_close(out[:2, 3, 0, 0], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out[2:4, 3, 0, 0], expected, atol=1e-4, rtol=1e-4)


def test_generator_and_discriminator_follow_the_resolution():
    G = Generator(16, 16, 32, 3, channel_base=256, channel_max=32, mapping_layers=2)
    assert G.num_ws == 2 * 5 - 2 == style_count(32)  # 2 log2(res) - 2
    assert [b.conv1.weight.shape[0] for b in G.blocks] == [32, 32, 16, 8]  # min(256 / res, 32)
    img = G(torch.randn(2, 16))
    assert img.shape == (2, 3, 32, 32)
    assert Discriminator(32, 3, 256, 32)(img).shape == (2,)


def test_truncation_pulls_every_sample_to_the_mean_w_and_mixing_takes_the_later_styles():
    G = Generator(8, 8, 16, 1, channel_base=64, channel_max=8, mapping_layers=2).eval()
    G.mapping.w_avg.normal_()
    z = torch.randn(3, 8)
    centre = G(z, torch.zeros(3, 1))
    torch.testing.assert_close(centre, centre[:1].expand(3, -1, -1, -1))  # psi 0: the image of w_avg
    assert not torch.allclose(G(z), centre)
    z2 = torch.randn(3, 8)
    _, none = G(z, mix_z=z2, mix_cutoff=torch.ones(1), return_ws=True)
    _, mixed = G(z, mix_z=z2, mix_cutoff=torch.zeros(1), return_ws=True)
    torch.testing.assert_close(none, G.map(z))
    torch.testing.assert_close(mixed[:, 0], G.map(z)[:, 0])  # the first layer keeps z's style
    torch.testing.assert_close(mixed[:, 1:], G.map(z2)[:, 1:])


def test_the_r1_weight_follows_the_paper_rule_unless_set(image_folder):
    assert r1_gamma_rule(256, 64) == pytest.approx(0.2048)  # NVlabs' auto config at 256x256, batch 64
    assert tiny_stylegan2(image_folder).r1_gamma == pytest.approx(0.0002 * 16**2 / 8)
    assert tiny_stylegan2(image_folder, loss={"r1_gamma": 10.0}).r1_gamma == 10.0
    with pytest.raises(ConfigError, match="power of two from 8 to 1024, got 24"):
        tiny_stylegan2(image_folder, data={"image_size": 24}).check_config()


def test_training_resumes_exactly_across_the_lazy_cycle_and_keeps_the_path_length_mean(image_folder, tmp_path):
    straight = Trainer(tiny_stylegan2(image_folder, train={"max_steps": 18}), tmp_path / "a").fit()
    Trainer(tiny_stylegan2(image_folder, train={"max_steps": 7}), tmp_path / "b").fit()
    resumed = Trainer(tiny_stylegan2(image_folder, train={"max_steps": 18}), tmp_path / "b", resume=True).fit()
    a, b = saved_networks(straight), saved_networks(resumed)
    assert any(k.startswith("G_ema.") for k in a)  # the EMA generator is compared too
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert float(a["G.pl_mean"]) > 0 and float(a["G.mapping.w_avg"].abs().sum()) > 0  # tracked, saved


def test_the_three_step_variants_are_captured_and_replay_the_eager_result(image_folder, tmp_path):
    steps = 16 * WARMUP + 1
    eager = Trainer(tiny_stylegan2(image_folder, train={"max_steps": steps}), tmp_path / "eager").fit()
    trainer = Trainer(tiny_stylegan2(image_folder, train={"max_steps": steps}), tmp_path / "graph")
    runner = _with_graphs(trainer)
    graph = trainer.fit()
    assert sorted(runner.graphs) == ["gan", "gan+G:g_pl", "gan+G:g_pl+D:d_r1"]
    a, b = saved_networks(eager), saved_networks(graph)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_truncated_samples_come_from_sample_inputs(image_folder):
    plugin = tiny_stylegan2(image_folder, data={"channels": 3})
    G = plugin.build_networks()["G"].eval()
    inputs = plugin.sample_inputs(4, torch.Generator().manual_seed(0), truncation=0.0)
    images = plugin.generate(G, inputs)
    assert images.shape == (4, 3, 16, 16) and images.abs().max() <= 1
    torch.testing.assert_close(images, images[:1].expand(4, -1, -1, -1))
    with pytest.raises(ConfigError, match="truncation=PSI only, not label"):
        plugin.sample_inputs(1, torch.Generator(), label=3)


def test_gantk_sample_truncates_stylegan2_and_refuses_truncation_elsewhere(image_folder, tmp_path, capsys):
    from gantk.cli import main
    from tests.helpers import tiny_dcgan

    run = Trainer(tiny_stylegan2(image_folder, train={"max_steps": 2}), tmp_path / "sg").fit()
    grid = tmp_path / "mean.png"
    assert main(["sample", str(run), "-n", "4", "--truncation", "0", "-o", str(grid), "--device", "cpu"]) == 0
    plain = tmp_path / "plain.png"
    assert main(["sample", str(run), "-n", "4", "-o", str(plain), "--device", "cpu"]) == 0
    assert not np.array_equal(np.asarray(Image.open(grid)), np.asarray(Image.open(plain)))
    assert main(["sample", str(run), "--truncation", "nan", "-o", str(tmp_path / "x.png")]) == 2
    # ONNX: mapping and synthesis in one graph, psi an input (export checks it against PyTorch)
    assert main(["export", str(run), "--format", "onnx", "-o", str(tmp_path / "onnx")]) == 0
    inputs = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert "psi" in json.dumps(inputs)
    onnx_grid = tmp_path / "onnx.png"
    assert main(["sample", str(tmp_path / "onnx"), "-n", "4", "--truncation", "0", "-o", str(onnx_grid)]) == 0
    assert np.abs(np.asarray(Image.open(onnx_grid), float) - np.asarray(Image.open(grid), float)).max() <= 2
    dcgan = Trainer(tiny_dcgan(image_folder, train={"max_steps": 1})[1], tmp_path / "dc").fit()
    assert main(["sample", str(dcgan), "--truncation", "0.7", "-o", str(tmp_path / "y.png")]) == 2
    assert "has no mean w to truncate towards" in capsys.readouterr().err


def test_blend_takes_each_layer_style_between_two_ws():
    G = Generator(8, 8, 16, 1, channel_base=64, channel_max=8, mapping_layers=2).eval()
    z, z2 = torch.randn(3, 8), torch.randn(3, 8)
    torch.testing.assert_close(G.blend(z, z2, torch.zeros(3, G.num_ws)), G(z))
    torch.testing.assert_close(G.blend(z, z2, torch.ones(3, G.num_ws)), G(z2))
    half = G.synthesis(G.map(z).lerp(G.map(z2), 0.5))
    torch.testing.assert_close(G.blend(z, z2, torch.full((3, G.num_ws), 0.5)), half)
    # the styles of the block at resolution r begin where that block starts reading ws
    assert [first_style_at(r) for r in (4, 8, 16, 32)] == [0, 1, 3, 5]
    assert sum(b.num_conv for b in G.blocks[:2]) == first_style_at(16)  # 4x4 has one conv, 8x8 two


def test_walks_go_in_a_straight_line_in_w_between_the_seeds_samples(image_folder):
    from gantk.sampling import sample, walk_between_seeds

    plugin = tiny_stylegan2(image_folder, data={"channels": 3})
    G = plugin.build_networks()["G"].eval()
    walk = walk_between_seeds(plugin, G, 3, 7, 5, truncation=0.8)
    torch.testing.assert_close(walk[0], sample(plugin, G, 1, 3, truncation=0.8)[0])
    torch.testing.assert_close(walk[-1], sample(plugin, G, 1, 7, truncation=0.8)[0])
    za = plugin.sample_inputs(1, torch.Generator().manual_seed(3))["z"]
    zb = plugin.sample_inputs(1, torch.Generator().manual_seed(7))["z"]
    middle = G.synthesis(G.map(za, 0.8).lerp(G.map(zb, 0.8), 0.5)).clamp(-1, 1)
    torch.testing.assert_close(walk[2:3], middle)
    slerp_in_z = plugin.generate(G, GanPlugin.interpolate(plugin, {"z": za}, {"z": zb}, torch.tensor([0.5])))
    assert not torch.allclose(walk[2:3], slerp_in_z, atol=1e-4)  # not the z-space walk of other plugins


def test_the_style_mixing_grid_takes_rows_coarse_styles_and_columns_fine(image_folder):
    from gantk.sampling import style_mix

    plugin = tiny_stylegan2(image_folder, data={"channels": 3})
    G = plugin.build_networks()["G"].eval()
    images, nrow = style_mix(plugin, G, 2, 3, seed=5, fine_from=8)
    assert nrow == 4 and images.shape == (3 * 4, 3, 16, 16)
    assert torch.equal(images[0], torch.ones_like(images[0]))  # the corner
    g = torch.Generator().manual_seed(5)
    z_rows, z_cols = torch.randn(2, 8, generator=g), torch.randn(3, 8, generator=g)
    torch.testing.assert_close(images[1:4], G(z_cols).clamp(-1, 1))  # top row: the column sources
    torch.testing.assert_close(images[4], G(z_rows[:1]).clamp(-1, 1)[0])  # left column: the row sources
    w_row, w_col = G.map(z_rows[1:2]), G.map(z_cols[2:3])
    cut = first_style_at(8)
    expected = G.synthesis(torch.cat([w_row[:, :cut], w_col[:, cut:]], 1)).clamp(-1, 1)
    torch.testing.assert_close(images[2 * 4 + 3], expected[0])  # row 2, column 3
    coarse_only = style_mix(plugin, G, 2, 3, seed=5, fine_from=16)[0]
    assert not torch.allclose(coarse_only[5:8], images[5:8], atol=1e-4)  # the cut moved
    with pytest.raises(GantkError, match="fine_from=12: .* a power of two from 8 to 16"):
        style_mix(plugin, G, 1, 1, seed=0, fine_from=12)


def test_gantk_sample_draws_style_mixing_grids_and_refuses_them_elsewhere(image_folder, tmp_path, capsys):
    from gantk.cli import main
    from tests.helpers import tiny_dcgan

    run = Trainer(tiny_stylegan2(image_folder, train={"max_steps": 1}), tmp_path / "sg").fit()
    grid = tmp_path / "mix.png"
    args = ["sample", str(run), "--style-mix", "2x3", "--truncation", "0.7", "-o", str(grid), "--device", "cpu"]
    assert main(args) == 0
    assert Image.open(grid).size == (4 * 16 + 5 * 2, 3 * 16 + 4 * 2)  # 4 columns, 3 rows, padding 2
    assert main(["sample", str(run), "--fine-from", "16", "-o", str(tmp_path / "x.png")]) == 2
    assert "give --style-mix too" in capsys.readouterr().err
    assert main(["sample", str(run), "--style-mix", "2x3", "--interpolate", "4", "-o", str(grid)]) == 2
    assert "without --interpolate" in capsys.readouterr().err
    assert main(["sample", str(run), "--style-mix", "1x1", "--fine-from", "32", "-o", str(grid)]) == 2
    assert "fine_from=32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", str(run), "--style-mix", "2by3"])
    assert "expected ROWSxCOLS" in capsys.readouterr().err
    assert main(["export", str(run), "--format", "onnx", "-o", str(tmp_path / "onnx")]) == 0
    assert main(["sample", str(tmp_path / "onnx"), "--style-mix", "1x2", "-o", str(grid)]) == 2
    assert "Sample from the checkpoint folder instead" in capsys.readouterr().err
    dcgan = Trainer(tiny_dcgan(image_folder, train={"max_steps": 1})[1], tmp_path / "dc").fit()
    assert main(["sample", str(dcgan), "--style-mix", "2x2", "-o", str(tmp_path / "y.png")]) == 2
    assert "no per-layer styles to mix" in capsys.readouterr().err
