"""SR metrics follow the SRGAN / BasicSR protocol: studio-swing Y, 8-bit values, border crop."""

import math

import pytest
import torch

from gantk.metrics import sr


def _flat(value: float, size: int = 16) -> torch.Tensor:
    return torch.full((1, 3, size, size), value, dtype=torch.float64)


def test_y_of_grey_is_studio_swing():
    # R = G = B = v gives Y = 16 + 219 v (the three weights sum to 219): black 16, white 235
    assert sr.rgb_to_y(_flat(0.0)).unique().item() == pytest.approx(16.0)
    assert sr.rgb_to_y(_flat(255.0)).unique().item() == pytest.approx(235.0)


def test_psnr_against_a_hand_checked_value():
    # Two flat greys 46 levels apart (RGB 0-255): their Y differ by 219 * 46 / 255 = 39.506 levels, so
    # PSNR = 20 log10(255 / 39.506) = 16.198 dB on Y. On RGB the difference is 46: 20 log10(255 / 46).
    a, b = _flat(100 / 255), _flat(146 / 255)
    assert sr.psnr(a, b).item() == pytest.approx(20 * math.log10(255 / (219 * 46 / 255)), abs=1e-9)
    assert sr.psnr(a, b).item() == pytest.approx(16.198, abs=1e-3)
    assert sr.psnr(a, b, y_channel=False).item() == pytest.approx(20 * math.log10(255 / 46), abs=1e-9)


def test_values_are_quantised_to_8_bits_first():
    a = _flat(100 / 255)
    assert sr.psnr(a, a + 0.4 / 255).item() == math.inf  # rounds to the same 8-bit value
    assert math.isfinite(sr.psnr(a, a + 0.6 / 255).item())


def test_border_crop_ignores_the_frame():
    a = _flat(0.5, size=24)
    b = a.clone()
    b[..., :4, :] = 0.0  # damage a 4-pixel frame only
    b[..., -4:, :] = 0.0
    b[..., :, :4] = 0.0
    b[..., :, -4:] = 0.0
    assert sr.psnr(a, b, border=4).item() == math.inf
    assert sr.psnr(a, b, border=3).item() < 20
    assert sr.ssim(a, b, border=4).item() == pytest.approx(1.0)


def test_ssim_is_one_for_equal_images_and_drops_with_noise():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    noisy = (a + 0.1 * torch.randn(a.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert sr.ssim(a, a).tolist() == pytest.approx([1.0, 1.0])
    assert (sr.ssim(a, noisy) < 0.95).all()


def test_shape_mismatch_and_too_small_for_ssim_are_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        sr.psnr(_flat(0.5, 16), _flat(0.5, 12))
    with pytest.raises(ValueError, match="at least 11x11 pixels after the border crop"):
        sr.ssim(_flat(0.5, 16), _flat(0.5, 16), border=4)


def test_ssim_of_flat_images_is_the_luminance_term():
    # Flat images: the structure term is C2 / C2 = 1, so SSIM = (2 ya yb + C1) / (ya^2 + yb^2 + C1), C1 = 6.5025
    ya, yb = 16 + 219 * 100 / 255, 16 + 219 * 146 / 255
    expected = (2 * ya * yb + 6.5025) / (ya**2 + yb**2 + 6.5025)
    assert sr.ssim(_flat(100 / 255), _flat(146 / 255)).item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.9486, abs=1e-4)  # by hand: 28816.1 / 30377.0
