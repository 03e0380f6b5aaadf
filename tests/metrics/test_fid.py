"""FID/KID: the FID Inception network read safely from a file, torchmetrics' statistics on features,
and reference features cached under a key that changes with the images and the network."""

import pytest
import torch

from gantk.errors import ConfigError
from gantk.metrics import FeatureSpace, distances, fid, inception
from gantk.metrics.fid import precision_recall


def test_fid_and_kid_follow_the_gaussian_closed_form():
    """N(0, I) against N(mu, I) in 4-d: FID tends to |mu|^2; KID is ~0 for one distribution, > 0 otherwise."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    b = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    mu = torch.tensor([1.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    same, shifted = distances(a, b), distances(a, b + mu)
    assert same["fid"] == pytest.approx(0.0, abs=0.02)
    assert shifted["fid"] == pytest.approx(float(mu @ mu), rel=0.05)
    assert abs(same["kid"]) < 5 * same["kid_std"] + 1e-3 and shifted["kid"] > 100 * abs(same["kid"])
    assert distances(a, b + mu, seed=3) == distances(a, b + mu, seed=3)  # KID's subsets follow the seed
    with pytest.raises(ConfigError, match="at least 2 images"):
        distances(a[:1], b)


def test_inception_features_score_and_cache_reference_features(fid_weights, tmp_path, monkeypatch):
    torch.manual_seed(0)
    real, other = torch.rand(6, 1, 32, 32), torch.rand(6, 1, 32, 32) * 0.3
    space = FeatureSpace(fid_weights, "cpu", tmp_path / "cache")
    feats = space.reference(real)
    assert feats.shape == (6, 2048) and feats.std(0).mean() > 0  # grey repeated to RGB, features not degenerate
    scale = float(feats.var(0).sum())
    same, apart = distances(feats, space.features(real)), distances(feats, space.features(other))
    assert abs(same["fid"]) < 1e-4 * scale and apart["fid"] > 1e-2 * scale
    (cached,) = list((tmp_path / "cache").glob("inception-*.safetensors"))

    fresh = FeatureSpace(fid_weights, "cpu", tmp_path / "cache")  # a new run: the file, not the network
    monkeypatch.setattr(fresh, "features", lambda images: pytest.fail("reference recomputed despite the cache"))
    assert torch.equal(fresh.reference(real), feats)
    monkeypatch.undo()
    fresh.reference(other)  # other images: another key, another file
    assert len(list((tmp_path / "cache").glob("inception-*.safetensors"))) == 2

    cached.write_bytes(b"torn")  # a damaged cache is recomputed and replaced, with a warning
    warned = []
    monkeypatch.setattr(fid.log, "warning", lambda message, *args: warned.append(message % args))
    again = FeatureSpace(fid_weights, "cpu", tmp_path / "cache").reference(real)
    assert torch.allclose(again, feats) and "unreadable reference-feature cache" in warned[0]
    assert cached.stat().st_size > 1000


def test_pixel_space_needs_no_weights(tmp_path):
    space = FeatureSpace("", "cpu", tmp_path)
    assert space.name == "pixels16" and space.features(torch.rand(3, 3, 40, 24)).shape == (3, 3 * 256)


def test_precision_and_recall_count_the_points_inside_each_others_k_nearest_neighbour_balls():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g)
    assert precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    assert precision_recall(real, real + 50) == {"precision": 0.0, "recall": 0.0}
    collapsed = precision_recall(real, torch.randn(300, 8, generator=g) * 0.2)  # realistic, covers little
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05
    # by hand on a line: real 0, 1, 2, 3, 10 with k = 3 have radii 3, 2, 2, 3, 9 (the 3rd neighbour);
    # fakes 0.5 (in 0's ball), 6.5 (only in 10's: |6.5 - 10| = 3.5 <= 9), 30 and 31 (in none): precision 2/4
    line = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fakes = torch.tensor([[0.5], [6.5], [30.0], [31.0]])
    pr = precision_recall(line, fakes)
    assert pr["precision"] == pytest.approx(2 / 4)
    assert pr["recall"] == 1.0  # every real point lies inside 0.5's ball of radius 30.5
    with pytest.raises(ConfigError, match="k=3 need more than 3 images"):
        precision_recall(line[:3], fakes)


def test_logits_are_torch_fidelitys_unbiased_logits_of_the_same_network(fid_weights):
    from torchmetrics.image.fid import NoTrainInceptionV3

    space = FeatureSpace(fid_weights, "cpu")
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    theirs = NoTrainInceptionV3(
        "inception-v3-compat", ["logits_unbiased"], feature_extractor_weights_path=str(fid_weights)
    )
    with torch.no_grad():
        expected = theirs(fid.uint8_rgb(images)).double()
    assert torch.allclose(space.logits(space.features(images)), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())


@pytest.fixture(scope="module")
def weights_without_logits(fid_weights, tmp_path_factory):
    """The test weights with fc zeroed: what a copy that stops at the pool features looks like."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(fid_weights))
    state["fc.weight"].zero_()
    state["fc.bias"].zero_()
    path = tmp_path_factory.mktemp("nologits") / "pool-only.safetensors"
    save_file(state, str(path))
    return path


def test_the_inception_score_is_refused_for_weights_without_logits(weights_without_logits, fid_weights, tmp_path):
    with pytest.raises(ConfigError, match=r"'eval.inception_score'.*pool-only.safetensors have no logits layer"):
        inception.check_inception_score(weights_without_logits, 1000)
    with pytest.raises(ConfigError, match=r"pool-only.safetensors have no logits layer.*inception_score=false"):
        fid.DistributionScores(weights_without_logits, "cpu", tmp_path, inception_score=True)
    with pytest.raises(ConfigError, match="eval.fid_weights is empty"):
        inception.check_inception_score("", 1000)
    with pytest.raises(ConfigError, match="eval.fid_samples is 9.*at least 10"):
        inception.check_inception_score(fid_weights, 9)
    inception.check_inception_score(fid_weights, 10)  # trained-looking logits and enough samples: accepted
    plain = fid.DistributionScores(weights_without_logits, "cpu", tmp_path)  # FID needs no logits: still fine
    real, fake = torch.rand(6, 3, 32, 32) * 2 - 1, torch.rand(6, 3, 32, 32) - 1
    assert "inception_score" not in plain(fake, real) and "inception_score_splits" not in plain.protocol(fake, real)


def test_a_cache_entry_that_fails_its_checks_is_recomputed(tmp_path, caplog):
    """A cached file of the wrong shape, 1-D, NaN or zeros gave a torchmetrics traceback (issue 30)."""
    from safetensors.torch import save_file

    from gantk.metrics.fid import FeatureSpace

    space = FeatureSpace(cache_dir=tmp_path)
    images = torch.rand(6, 3, 16, 16) * 2 - 1
    good = space.reference(images).clone()
    (entry,) = tmp_path.glob("*.safetensors")
    for bad in (torch.zeros(6, 5), torch.zeros(768), torch.full((6, 768), float("nan")), torch.zeros(6, 768)):
        save_file({"features": bad}, str(entry))
        caplog.clear()
        again = FeatureSpace(cache_dir=tmp_path).reference(images)
        assert torch.allclose(again, good.float().double()) and "recomputing" in caplog.text


def test_features_that_do_not_vary_are_refused_as_untrained_weights(fid_weights):
    """Random weights of the right shape map every image to about one point: FID 0.0000 (issue 33)."""
    from gantk.errors import ConfigError
    from gantk.metrics.fid import FeatureSpace

    space = FeatureSpace(fid_weights)
    with pytest.raises(ConfigError, match=r"features of 4 real images do not vary .*not a trained FID Inception"):
        space._check_varied(torch.full((4, 2048), 2e-8) + 1e-9 * torch.randn(4, 2048))
    space._check_varied(torch.rand(4, 2048))  # a trained network's features spread: no error
