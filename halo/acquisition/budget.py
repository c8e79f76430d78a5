"""Exact, equal pixel budgets: how many pixels each image may label, and which regions fit.

The budget is a fraction ``c`` of the target pool's pixels. After round ``r`` of ``R`` the pool
holds at most ``floor(c · r / R · S)`` labelled pixels (``S``: the pool's pixels), and every
method labels the same number of new pixels per round, within one region of that target over
the whole pool. Pixels count as what they are: a region cut by the image border labels fewer
pixels, and so does one that overlaps pixels labelled before.

How a round meets its target, image by image in pool order (the paper's per-image allocation):

1. image ``g``'s *allowance* is ``floor(c_r · S_g) − L_g − U_{g−1}``: the cumulative target up to
   and including it (``S_g``: pixels of images ``0..g``, ``c_r = c · r / R``), less the pixels of
   images ``0..g`` labelled in earlier rounds (``L_g``) and the pixels this round already
   labelled in images ``0..g−1`` (``U_{g−1}``). What an image leaves unspent (less than one
   region) passes to the next one, so the pool's shortfall stays under one region.
2. the image's regions are the exact greedy's (:func:`~halo.acquisition.selection.select_regions`)
   in pick order; the image keeps them up to the first whose new pixels do not fit what is left
   of its allowance, or until the allowance is spent. The
   greedy's first ``n`` centres do not depend on how many are asked for, so asking for more
   (when every region asked for fitted) only extends the prefix.

Everything is per image and vectorised over its regions: one bookkeeping step per image, no
loop over pixels or regions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from halo.acquisition.selection import Selection, paint_selection, select_regions

__all__ = ["PoolBudget", "cumulative_target", "select_within", "window_gains"]


def cumulative_target(fraction: float | Fraction, pixels: int) -> int:
    """``floor(fraction · pixels)`` exactly: the labelled pixels allowed among ``pixels``.

    ``fraction`` is read as the nearest fraction with denominator ``<= 10⁹``, so ``0.022 / 5 · 5``
    and ``0.022`` give the same target.
    """
    frac = fraction if isinstance(fraction, Fraction) else Fraction(float(fraction))
    return math.floor(frac.limit_denominator(10**9) * int(pixels))


def window_gains(
    centres: np.ndarray, shape: tuple[int, int], radius: int, before: np.ndarray | None = None
) -> np.ndarray:
    """New pixels each region adds, in pick order.

    Args:
        centres: ``[n, 2]`` int64 ``(row, col)`` in pick order.
        shape: ``(H, W)`` of the image.
        radius: ``a``: a region is the ``(2a+1)²`` window around its centre, cut by the border.
        before: ``[H, W]`` bool, pixels labelled before (they add nothing), or None.

    Returns:
        ``[n]`` int64: pixels of region ``j``'s window inside the image, not in ``before`` and
        not in any window ``< j`` (so the prefix sums are the union's sizes).
    """
    h, w = shape
    n = int(centres.shape[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    d = np.arange(-radius, radius + 1)
    rows = centres[:, 0, None, None] + d[None, :, None]
    cols = centres[:, 1, None, None] + d[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    owner = np.broadcast_to(np.arange(n)[:, None, None], rows.shape)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    keys, owner = (rows * w + cols)[inside], owner[inside]  # owners ascending
    if before is not None:
        fresh = ~before.reshape(-1)[keys]
        keys, owner = keys[fresh], owner[fresh]
    _, first = np.unique(keys, return_index=True)  # first occurrence: the earliest region
    return np.bincount(owner[first], minlength=n).astype(np.int64)


def _fitting(gains: np.ndarray, allowance: int) -> int:
    """Regions kept: the prefix up to the first region that does not fit or that spends the
    allowance (a spent allowance keeps no further region, not even one adding nothing)."""
    if allowance <= 0:
        return 0
    total = np.cumsum(gains)
    k = int(np.searchsorted(total, allowance, side="left"))
    return k + 1 if k < total.size and total[k] == allowance else k


class PoolBudget:
    """The running pixel account of one round over the pool, image by image in pool order.

    Args:
        fraction: ``c_r``: the labelled fraction allowed after this round (budget · r / R).
    """

    def __init__(self, fraction: float | Fraction) -> None:
        frac = fraction if isinstance(fraction, Fraction) else Fraction(float(fraction))
        self.fraction = frac.limit_denominator(10**9)
        if not 0 <= self.fraction <= 1:
            raise ValueError(f"pool budget: fraction must be in [0, 1], got {float(fraction)!r}")
        self.pixels = 0  # pixels of the images seen so far
        self.spent = 0  # labelled pixels so far (earlier rounds and this one)

    @property
    def target(self) -> int:
        """Labelled pixels allowed among the images seen so far."""
        return cumulative_target(self.fraction, self.pixels)

    def allowance(self, pixels: int, before: int) -> int:
        """The next image's allowance (``pixels`` of its own, ``before`` labelled earlier); the
        image is counted in."""
        self.pixels += int(pixels)
        self.spent += int(before)
        return max(self.target - self.spent, 0)

    def spend(self, labelled: int) -> None:
        """Book the pixels the image labelled this round."""
        self.spent += int(labelled)


def _first_request(allowance: int, radius: int) -> int:
    """Regions to ask the greedy for: enough full windows for the allowance, and one more."""
    return allowance // (2 * radius + 1) ** 2 + 1 if allowance > 0 else 0


def select_within(
    score: Tensor,
    account: PoolBudget,
    *,
    active_radius: int = 1,
    mask_radius: int = 5,
    blocked: Tensor | None = None,
    labelled: Tensor | None = None,
) -> tuple[Selection, list[int]]:
    """This round's regions of a batch, each image within its allowance of ``account``.

    Args:
        score: ``[B, H, W]`` float acquisition map (NaN rejected, as by ``select_regions``).
        account: the round's :class:`PoolBudget`; the batch's images are booked in order.
        active_radius: ``a``: each centre labels its ``(2a+1)²`` window (cut by the border).
        mask_radius: ``m``: each centre blocks its ``(2m+1)²`` window.
        blocked: ``[B, H, W]`` bool, pixels earlier rounds blocked (never centres), or None.
        labelled: ``[B, H, W]`` bool, pixels earlier rounds labelled, or None.

    Returns:
        ``(selection, allowances)``: the :class:`~halo.acquisition.selection.Selection` of the
        kept regions (centres per image in pick order, this round's labelled pixels, the
        updated blocked mask) and each image's allowance in pixels.
    """
    if not isinstance(score, Tensor) or score.ndim != 3:
        got = list(score.shape) if isinstance(score, Tensor) else type(score).__name__
        raise ValueError(f"select_within: score must be a [B, H, W] tensor, got {got}")
    b_count, h, w = score.shape
    a = active_radius
    before = None if labelled is None else labelled.to(torch.bool).cpu().numpy()
    prior = [0 if before is None else int(before[j].sum()) for j in range(b_count)]
    # ask each image for its share plus one region's carry; extend an image if all of it fits
    share = cumulative_target(account.fraction, h * w) + (2 * a + 1) ** 2
    asked = [_first_request(max(share - p, 0), a) for p in prior]
    sel = select_regions(score, asked, active_radius=a, mask_radius=mask_radius, blocked=blocked)
    centres = [c.cpu().numpy() for c in sel.centres]
    kept: list[np.ndarray] = []
    allowances = []
    for j in range(b_count):  # per image bookkeeping (the carry runs in pool order)
        allowance = account.allowance(h * w, prior[j])
        cj = centres[j]
        while True:
            gains = window_gains(cj, (h, w), a, None if before is None else before[j])
            k = _fitting(gains, allowance)
            # stop when a region did not fit, none are left, or the allowance is spent
            if k < len(cj) or len(cj) < asked[j] or int(gains.sum()) >= allowance:
                break
            asked[j] = 2 * asked[j] + _first_request(allowance - int(gains.sum()), a)
            one = select_regions(
                score[j],
                asked[j],
                active_radius=a,
                mask_radius=mask_radius,
                blocked=None if blocked is None else blocked[j],
            )
            cj = one.centres.cpu().numpy()
        kept.append(cj[:k])
        account.spend(int(gains[:k].sum()))
        allowances.append(allowance)
    centres = [
        torch.from_numpy(np.ascontiguousarray(c, dtype=np.int64)).to(score.device) for c in kept
    ]
    return paint_selection(centres, (b_count, h, w), a, mask_radius, blocked), allowances
