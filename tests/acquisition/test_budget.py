"""Exact, equal pixel budgets (halo.acquisition.budget) against a plain loop, on any pool."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo.acquisition.budget import PoolBudget, cumulative_target, select_within, window_gains
from tests.acquisition.test_selection import greedy_reference


def reference_round(
    scores: np.ndarray, fraction: float, a: int, m: int, blocked, labelled
) -> list[np.ndarray]:
    """The rule of halo.acquisition.budget written out: images in pool order; each image's
    allowance is floor(c * pixels so far) minus everything labelled so far; walk the greedy's
    regions in pick order and stop at the first whose new pixels do not fit, or once the
    allowance is spent."""
    b_count, h, w = scores.shape
    seen = spent = 0
    out = []
    for j in range(b_count):
        seen += h * w
        spent += int(labelled[j].sum())
        allowance = max(math.floor(Fraction(str(fraction)) * seen) - spent, 0)
        centres, _, _ = greedy_reference(scores[j], h * w, a, m, blocked[j])
        mask = labelled[j].copy()
        kept = []
        for y, x in centres.tolist():
            if allowance == 0:
                break
            window = np.zeros((h, w), bool)
            window[max(y - a, 0) : y + a + 1, max(x - a, 0) : x + a + 1] = True
            gain = int((window & ~mask).sum())
            if gain > allowance:
                break
            allowance -= gain
            spent += gain
            mask |= window
            kept.append((y, x))
        out.append(np.asarray(kept, dtype=np.int64).reshape(-1, 2))
    return out


@st.composite
def pools(draw):
    b = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    a, m = draw(st.integers(0, 2)), draw(st.integers(0, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ties = draw(st.booleans())
    scores = rng.integers(0, 3, (b, h, w)) if ties else rng.random((b, h, w))
    prior = rng.random((b, h, w)) < draw(st.sampled_from([0.0, 0.1, 0.4]))
    labelled = prior & (rng.random((b, h, w)) < 0.5)
    fraction = draw(st.sampled_from([0.0, 0.01, 0.05, 0.13, 0.5, 1.0]))
    split = draw(st.integers(1, b))
    return scores.astype(np.float32), prior, labelled, fraction, a, m, split


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools())
def test_select_within_equals_the_plain_loop(pool) -> None:
    scores, prior, labelled, fraction, a, m, split = pool
    b_count = scores.shape[0]
    expected = reference_round(scores, fraction, a, m, prior, labelled)
    account = PoolBudget(fraction)
    got, new = [], 0
    for lo in range(0, b_count, split):  # batches of any size give the same round
        hi = min(lo + split, b_count)
        sel, _ = select_within(
            torch.from_numpy(scores[lo:hi]),
            account,
            active_radius=a,
            mask_radius=m,
            blocked=torch.from_numpy(prior[lo:hi]),
            labelled=torch.from_numpy(labelled[lo:hi]),
        )
        got += [c.numpy() for c in sel.centres]
        new += int((sel.labelled.numpy() & ~labelled[lo:hi]).sum())
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    # the account books exactly the pixels labelled before and the new ones
    assert account.spent == int(labelled.sum()) + new


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.002, 0.0044, 0.01]), st.integers(1, 9))
def test_a_roomy_pool_lands_within_one_region_of_its_target(seed, fraction, split) -> None:
    """Every image has room: the round labels at most the target and less than a region fewer,
    whatever the scores (border regions included: pixels count as what they are)."""
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.random((9, 24, 40)).astype(np.float32))
    scores[:, :, :2] += 1.0  # draw regions to the border, where windows are cut
    account = PoolBudget(fraction)
    total = 0
    for lo in range(0, 9, split):
        sel, _ = select_within(scores[lo : lo + split], account, active_radius=1, mask_radius=3)
        total += int(sel.labelled.sum())
    target = cumulative_target(fraction, 9 * 24 * 40)
    assert target - 9 < total <= target and account.spent == total


def test_window_gains_count_the_union_in_pick_order() -> None:
    centres = np.array([[0, 0], [1, 1], [5, 5], [0, 9]])
    before = np.zeros((6, 10), bool)
    before[5, 5] = True
    gains = window_gains(centres, (6, 10), 1, before)
    # corner 4; overlaps the first in 4 of its 9; cut at the bottom (6) less the one before; corner
    assert gains.tolist() == [4, 5, 5, 4]


def test_cumulative_target_reads_budgets_exactly() -> None:
    assert cumulative_target(0.022 / 5 * 5, 10**6) == cumulative_target(0.022, 10**6) == 22000
    assert cumulative_target(0.01, 900) == 9
    with pytest.raises(ValueError, match="fraction"):
        PoolBudget(1.5)
