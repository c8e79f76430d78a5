"""Scores: values against straightforward references, ranges, stability and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from halo.acquisition.scores import (
    minmax_normalize,
    pixel_entropy,
    region_impurity,
    upsample_radius,
    window_mean,
    window_sum,
)

SEEDS = range(4)
DTYPES = [torch.float32, torch.float64]


def _window_reference(x: np.ndarray, k: int, fn) -> np.ndarray:
    """Apply ``fn`` to the in-image pixels of each (2k+1)² window (explicit loops)."""
    b, h, w = x.shape[:3]
    out = np.zeros((b, h, w))
    for i in range(b):
        for y in range(h):
            for xx in range(w):
                win = x[i, max(0, y - k) : y + k + 1, max(0, xx - k) : xx + k + 1]
                out[i, y, xx] = fn(win)
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pixel_entropy_matches_formula(seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    c = 2 + seed * 5
    logits = (torch.randn(2, c, 5, 7, generator=gen) * 3).to(dtype)
    p = torch.softmax(logits.double(), dim=1)
    expected = -(p * p.log()).sum(dim=1) / math.log(c)
    out = pixel_entropy(logits)
    assert out.dtype == dtype and out.shape == (2, 5, 7)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)
    assert float(out.min()) >= -1e-6 and float(out.max()) <= 1 + 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_pixel_entropy_extremes_are_stable(dtype: torch.dtype) -> None:
    uniform = torch.zeros(1, 19, 3, 3, dtype=dtype)
    torch.testing.assert_close(pixel_entropy(uniform), torch.ones(1, 3, 3, dtype=dtype))
    saturated = torch.zeros(1, 19, 3, 3, dtype=dtype)
    saturated[:, 4] = 1e4  # softmax underflows to exactly one-hot
    out = pixel_entropy(saturated)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.zeros_like(out))


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_window_sum_and_mean_match_loops(k: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 6, 9, generator=gen, dtype=torch.float64)
    ref = _window_reference(x.numpy(), k, np.sum)
    torch.testing.assert_close(window_sum(x, k), torch.from_numpy(ref))
    torch.testing.assert_close(window_mean(x, k), torch.from_numpy(ref) / (2 * k + 1) ** 2)


def test_window_sum_zero_padding_counts_border() -> None:
    out = window_sum(torch.ones(1, 5, 5), 1)
    assert out[0, 0, 0] == 4 and out[0, 0, 2] == 6 and out[0, 2, 2] == 9


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("seed", SEEDS)
def test_region_impurity_matches_histogram_entropy(k: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    c = 3 + seed
    logits = torch.randn(2, c, 6, 8, generator=gen, dtype=torch.float64)
    pred = logits.argmax(dim=1).numpy()

    def impurity(win: np.ndarray) -> float:
        counts = np.bincount(win.ravel(), minlength=c).astype(float)
        p = counts[counts > 0] / counts.sum()
        return float(-(p * np.log(p)).sum() / math.log(c))

    ref = _window_reference(pred, k, impurity)
    torch.testing.assert_close(region_impurity(logits, k), torch.from_numpy(ref))


def test_region_impurity_extremes() -> None:
    one_class = torch.zeros(1, 4, 6, 6)
    one_class[:, 2] = 1.0
    assert torch.equal(region_impurity(one_class, 1), torch.zeros(1, 6, 6))
    # 2 classes in a checkerboard: interior 3x3 windows hold 5 vs 4 pixels
    yy, xx = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    logits = F.one_hot((yy + xx) % 2, 2).permute(2, 0, 1)[None].float()
    p = torch.tensor([5 / 9, 4 / 9], dtype=torch.float64)
    expected = float(-(p * p.log()).sum() / math.log(2))
    assert abs(float(region_impurity(logits, 1)[0, 2, 2]) - expected) < 1e-6


@pytest.mark.parametrize("seed", SEEDS)
def test_upsample_radius_is_bilinear(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    r = torch.rand(2, 4, 8, generator=gen)
    out = upsample_radius(r, (16, 32))
    ref = F.interpolate(r[:, None], size=(16, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(out, ref)
    assert upsample_radius(r, (4, 8)) is r
    const = upsample_radius(torch.full((1, 3, 5), 2.5), (12, 20))
    torch.testing.assert_close(const, torch.full((1, 12, 20), 2.5))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_minmax_range_and_affine_invariance(seed: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(3, 5, 6, generator=gen) * 10).to(dtype)
    out = minmax_normalize(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out.flatten(1).amin(1), torch.zeros(3, dtype=dtype))
    torch.testing.assert_close(out.flatten(1).amax(1), torch.ones(3, dtype=dtype))
    # per image: a positive affine change of one image changes nothing
    y = x.clone()
    y[1] = y[1] * 7.0 + 3.0
    torch.testing.assert_close(minmax_normalize(y), out)
    # the order of pixels is kept
    assert torch.equal(out.flatten(1).argsort(dim=1), x.flatten(1).argsort(dim=1))


def test_minmax_constant_and_nonfinite() -> None:
    x = torch.zeros(2, 3, 3)
    x[1] = 5.0
    assert torch.equal(minmax_normalize(x), torch.zeros(2, 3, 3))
    y = torch.tensor([[[1.0, 3.0, float("nan")], [float("inf"), 2.0, -float("inf")]]])
    out = minmax_normalize(y)
    torch.testing.assert_close(out[0, 0, :2], torch.tensor([0.0, 1.0]))
    assert out[0, 1, 1] == 0.5
    assert torch.isnan(out[0, 0, 2]) and out[0, 1, 0] == float("inf")
    assert out[0, 1, 2] == -float("inf")
    all_bad = torch.full((1, 2, 2), float("nan"))
    assert torch.isnan(minmax_normalize(all_bad)).all()


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (pixel_entropy, (torch.rand(2, 3, 4),), r"\[B, C, H, W\]"),
        (pixel_entropy, (torch.rand(1, 1, 4, 4),), "at least 2 classes"),
        (pixel_entropy, (torch.ones(1, 3, 4, 4, dtype=torch.int64),), "floating point"),
        (window_sum, (torch.rand(4, 4), 1), r"\[B, H, W\]"),
        (window_sum, (torch.rand(1, 4, 4), -1), "window radius"),
        (region_impurity, (torch.rand(1, 3, 4, 4), 1.0), "window radius"),
        (upsample_radius, (torch.rand(1, 1, 4, 4), (8, 8)), "radius must be"),
        (minmax_normalize, (torch.ones(1, 2, 2, dtype=torch.int64),), "floating point"),
    ],
)
def test_bad_input_raises(fn, args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(*args)
