import pytest
import torch
from PIL import Image

from gantk.engine import Trainer
from gantk.io.generators import load_generator
from gantk.plugin import slerp
from gantk.sampling import interpolate, sample
from tests.helpers import tiny_dcgan


@pytest.fixture
def run(image_folder, tmp_path):
    _, plugin = tiny_dcgan(image_folder, train={"max_steps": 2, "ema": {"enabled": True}})
    Trainer(plugin, tmp_path / "run").fit()
    return tmp_path / "run"


def test_same_seed_same_images_different_seed_different(run):
    plugin, G = load_generator(run)
    a, b, c = sample(plugin, G, 4, seed=1), sample(plugin, G, 4, seed=1), sample(plugin, G, 4, seed=2)
    assert a.shape == (4, 3, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ema_weights_are_preferred(run):
    plugin, G_ema = load_generator(run)
    _, G_raw = load_generator(run, use_ema=False)
    assert not torch.equal(sample(plugin, G_ema, 2, 0), sample(plugin, G_raw, 2, 0))


def test_loading_needs_only_the_checkpoint_folder(run, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(run / "checkpoints" / "step_00000002", copy)
    plugin, G = load_generator(copy)
    assert plugin.cfg.data.channels == 3 and plugin.cfg.model.ngf == 4


def test_interpolation_rows_start_and_end_at_their_endpoints(run):
    plugin, G = load_generator(run)
    walk = interpolate(plugin, G, walks=2, steps=5, seed=3)
    assert walk.shape == (10, 3, 16, 16)
    g = torch.Generator().manual_seed(3)
    a = plugin.sample_inputs(1, g)
    first = plugin.generate(G, a)
    assert torch.allclose(walk[0], first[0], atol=1e-5)


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(1, 100), torch.randn(1, 100)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a[0], atol=1e-5) and torch.allclose(path[-1], b[0], atol=1e-5)
    # a great circle between equal-norm vectors keeps the norm (a straight line would shrink it)
    b = b / b.norm() * a.norm()
    mid = slerp(a, b, torch.tensor([0.5]))
    assert mid.norm() == pytest.approx(a.norm().item(), rel=1e-4)


def test_grid_file(run, tmp_path):
    from gantk.io.images import save_grid

    plugin, G = load_generator(run)
    path = save_grid(sample(plugin, G, 9, 0), tmp_path / "g.png")
    assert Image.open(path).size == (3 * 18 + 2, 3 * 18 + 2)  # 3x3 tiles of 16 px with 2 px padding
