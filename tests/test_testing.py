"""The conformance kit passes every built-in plugin and names the check a broken plugin fails."""

from pathlib import Path

import pytest

from gantk.testing import CHECKS, PluginCheckError, check_plugin
from tests.helpers import write_image_folder
from tests.helpers.pairs import write_side_by_side

TINY_DCGAN = ["model.ngf=4", "model.ndf=4", "model.nz=8", "data.image_size=16", "train.batch_size=4"]
TINY_PIX2PIX = [
    "model.ngf=4",
    "model.ndf=4",
    "model.num_downs=5",
    "data.image_size=32",
    "data.load_size=36",
    "data.holdout=2",
]


def test_dcgan_conforms(tmp_path: Path):
    results = check_plugin(
        "dcgan", data=write_image_folder(tmp_path / "img", n=8), overrides=TINY_DCGAN, workdir=tmp_path
    )
    assert [r.name for r in results] == list(CHECKS) and all(r.status == "passed" for r in results)


def test_pix2pix_conforms(tmp_path: Path):
    data = write_side_by_side(tmp_path / "pairs", n=6)
    results = check_plugin("pix2pix", data=data, overrides=TINY_PIX2PIX, workdir=tmp_path)
    assert all(r.status == "passed" for r in results)


def _failing_dcgan(tmp_path: Path, name: str, source: str) -> str:
    """Run the kit on a DCGAN subclass written to a plugin folder; the failure message it raises."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "plugin.py").write_text(
        'import torch\nfrom gantk.registry import load\n\nDCGAN = load("dcgan")[1]\n' + source
    )
    (folder / "defaults.yaml").write_text((Path(__file__).parents[1] / "plugins/dcgan/defaults.yaml").read_text())
    with pytest.raises(PluginCheckError) as err:
        check_plugin(
            str(folder), data=write_image_folder(tmp_path / "img", n=8), overrides=TINY_DCGAN, workdir=tmp_path
        )
    return str(err.value)


def test_a_plugin_that_does_not_learn_fails_the_right_check(tmp_path: Path):
    msg = _failing_dcgan(
        tmp_path,
        "lazygan",
        '''

class LazyGan(DCGAN):
    """DCGAN whose generator loss has no gradient: G never changes."""

    def g_loss(self, batch, ctx):
        ctx.scratch.pop("fake")
        return {"zero": torch.zeros((), requires_grad=True)}
''',
    )
    assert "training steps run and change the weights: failed" in msg and "['G']" in msg
    assert "generator output matches the data: skipped" in msg  # later checks say why they did not run


def test_a_plugin_that_reads_the_host_inside_its_step_fails_the_capturable_check(tmp_path: Path):
    """The kit watches every step after the first through the trainer's public step_context."""
    msg = _failing_dcgan(
        tmp_path,
        "chattygan",
        '''

class ChattyGan(DCGAN):
    """DCGAN that reads its loss on the host in every step (a float() a CUDA graph cannot hold)."""

    def g_loss(self, batch, ctx):
        losses = super().g_loss(batch, ctx)
        if float(sum(v.detach() for v in losses.values())) > 1e9:
            raise AssertionError("unreachable")
        return losses
''',
    )
    assert "reads no tensor value on the host (CUDA-graph capturable): failed" in msg
    assert "failed 1 check(s)" in msg  # training itself passed
