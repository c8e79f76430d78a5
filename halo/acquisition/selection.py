"""Budgeted region selection: the exact greedy of docs/design.md ("The method"), loop-free.

The greedy rule (the definition every result here equals exactly):

1. rank the pixels by score, highest first, ties to the lowest row-major index;
2. take the highest-ranked pixel that is neither blocked (by an earlier round or an earlier pick of
   this round) nor already taken: it is a region *centre*;
3. label the ``(2a+1)²`` window around it (clipped at the border) and block the ``(2m+1)²`` window
   around it (Chebyshev distance ``<= m``): blocked pixels are never centres;
4. repeat until ``num_regions`` centres are taken or no unblocked pixel is left (then fewer are
   returned).

How it is computed. Greedy walks the pixels in rank order and keeps a pixel iff no kept pixel of
higher rank lies within distance ``m``. Hence:

- greedy's first ``n`` centres depend only on the pixels ranked above the ``n``-th centre, so the
  rank order is walked in growing *prefixes* (all unblocked pixels above a per-image bound, found
  from a strided sample of the map: one compare and listing over the map per prefix; when the
  sample shows the bound sits in a run of ties, the prefix is cut exactly by flat index); a prefix
  continues where the last one stopped, and the walk ends once ``n`` centres are kept;
- within a prefix, the candidates are walked in rank order by :mod:`halo.acquisition.greedy`
  (a conflict-graph recurrence over segments, and runs of equal scores row by row).

Everything runs on the host in numpy (a CUDA map is copied over once): its compares and listings
over a map are several times faster than torch's on CPU, and the candidate-sized work (sorting by
one int64 key, the graph, the recurrence) is many small calls where numpy's overhead is the
lower. ``bench/selection.py`` times it against the plain loop.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from halo.acquisition.greedy import ID, SENTINEL, rank_order, walk

__all__ = [
    "Selection",
    "check_budget",
    "paint_selection",
    "paint_windows",
    "regions_per_image",
    "select_regions",
]

_SAMPLE_STRIDE = 16  # threshold estimate reads every 16th pixel of the map
_SLACK = 1024  # a sampled bound is redone exactly once it lists over 4 x target + _SLACK pixels
_FIRST_PREFIX = 1.4  # first prefix: candidates per requested region (noise at 1 %: ~1.15 needed)


class Selection(NamedTuple):
    """Result of :func:`select_regions`.

    Attributes:
        centres: region centres ``(row, col)``, int64, in pick order: ``[n, 2]`` for a single
            ``[H, W]`` map, or a list of ``B`` such tensors for a ``[B, H, W]`` batch (``n`` may be
            below the requested count when the unblocked pixels run out).
        labelled: bool, shape of the score map: pixels inside this call's ``(2a+1)²`` windows.
        blocked: bool, shape of the score map: the prior blocked pixels plus this call's
            ``(2m+1)²`` windows (pass it to the next round).
    """

    centres: Tensor | list[Tensor]
    labelled: Tensor
    blocked: Tensor


def regions_per_image(height: int, width: int, round_budget: float, active_radius: int = 1) -> int:
    """Regions to pick in one image in one round: ``ceil(H·W · round_budget / (2a+1)²)``.

    The budget is read as the nearest fraction with denominator ``<= 10⁹`` (so ``0.022 / 5`` and
    ``0.0044`` give the same count, and ``900 · 0.01 / 9`` is exactly 1, not 2 from rounding).

    Args:
        height: image height ``H`` (pixels).
        width: image width ``W`` (pixels).
        round_budget: fraction of the image's pixels to label this round, in ``[0, 1]``.
        active_radius: ``a``: one region labels a ``(2a+1)²`` window.

    Returns:
        The number of regions ``n >= 0``.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"regions_per_image: {name} must be an int >= 1, got {value!r}")
    _check_radius(active_radius, "active_radius", "regions_per_image")
    check_budget(round_budget, "regions_per_image")
    budget = Fraction(float(round_budget)).limit_denominator(10**9)
    return math.ceil(height * width * budget / (2 * active_radius + 1) ** 2)


def check_budget(round_budget: object, where: str) -> None:
    """Raise ``ValueError`` (prefixed ``where``) unless ``round_budget`` is a fraction in [0, 1]."""
    if (
        isinstance(round_budget, bool)
        or not isinstance(round_budget, (int, float))
        or not 0.0 <= float(round_budget) <= 1.0
    ):
        raise ValueError(
            f"{where}: round_budget must be a fraction in [0, 1], got {round_budget!r}"
        )


def _check_radius(value: int, name: str, where: str = "select_regions") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
    return value


def _window_offsets(r: int, device: torch.device, *, centre: bool) -> tuple[Tensor, Tensor]:
    d = torch.arange(-r, r + 1, device=device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    if not centre:
        keep = (dy != 0) | (dx != 0)
        dy, dx = dy[keep], dx[keep]
    return dy, dx


def paint_windows(
    batch: Tensor, rows: Tensor, cols: Tensor, radius: int, shape: tuple[int, int, int]
) -> Tensor:
    """Mark the ``(2r+1)²`` windows (clipped at the border) around the given pixels.

    Args:
        batch: ``[n]`` int64 image index of each centre.
        rows: ``[n]`` int64 row of each centre.
        cols: ``[n]`` int64 column of each centre.
        radius: window radius ``r >= 0``.
        shape: ``(B, H, W)`` of the output.

    Returns:
        ``[B, H, W]`` bool on the centres' device, True inside any window.
    """
    radius = _check_radius(radius, "radius", "paint_windows")
    b_count, h, w = shape
    hp, wp = h + 2 * radius, w + 2 * radius
    # paint into a copy padded by r on every side (no clipping arithmetic), then crop
    out = torch.zeros(b_count * hp * wp, dtype=torch.bool, device=rows.device)
    dy, dx = _window_offsets(radius, rows.device, centre=True)
    keys = (batch * hp + rows + radius) * wp + cols + radius
    out[(keys[:, None] + (dy * wp + dx)[None, :]).reshape(-1)] = True
    return out.view(b_count, hp, wp)[:, radius : radius + h, radius : radius + w].contiguous()


def _kth_largest(values: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``[R]``: the ``ks[r]``-th largest entry (1-based) of each row of ``values`` ``[R, L]``."""
    part = np.partition(-values, np.unique(ks - 1), axis=1)
    return -part[np.arange(values.shape[0]), ks - 1]


def _first_true(
    mask: np.ndarray, nth: np.ndarray, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first ``nth[r]`` True entries of ``mask[r]``: their positions and the last.

    Counts per block of ``block`` entries first, so the running count is over ``N / block``
    blocks, and only the columns up to the last row's cut are listed.

    Args:
        mask: ``[R, N]`` bool; every row has at least ``nth[r]`` True entries.
        nth: ``[R]`` int64.

    Returns:
        ``(cut, pos)``: ``[R]`` int64 index of the ``nth[r]``-th True entry (-1 where
        ``nth[r] <= 0``) and ``[P]`` int64 positions ``r * N + index`` of the first ``nth[r]``
        True entries of every row, ascending.
    """
    r_count, n = mask.shape
    pad = -n % block
    padded = np.pad(mask, ((0, 0), (0, pad))) if pad else mask
    blocks = padded.reshape(r_count, -1, block)
    before = np.count_nonzero(blocks, axis=2).cumsum(axis=1)  # True entries up to each block
    k = np.minimum((before < nth[:, None]).sum(axis=1), blocks.shape[1] - 1)  # block of the nth
    rows = np.arange(r_count)
    rest = nth - np.where(k > 0, before[rows, np.maximum(k - 1, 0)], 0)
    inner = blocks[rows, k].cumsum(axis=1)  # [R, block]
    cut = np.where(nth > 0, k * block + (inner < rest[:, None]).sum(axis=1), -1)
    span = int(cut.max()) + 1
    if span <= 0:
        return cut, np.zeros(0, dtype=np.int64)
    first = mask[:, :span] & (np.arange(span)[None, :] <= cut[:, None])
    pos = np.flatnonzero(first)
    return cut, pos // span * n + pos % span


def _next_prefix(
    work: np.ndarray,
    unblocked: np.ndarray | None,
    target: np.ndarray,
    avail: np.ndarray,
    done: np.ndarray,
    tie_target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bound a rank prefix of about ``target[b]`` unblocked pixels per image and list its pixels.

    The bound is the ``k``-th largest value of a strided sample of the map (one cheap pass over
    the map: compare and list). Where that misses (ties make the set far too large, or it is not
    larger than the prefix already processed) the bound is made exact: the pixels above a value,
    and ties at it cut by flat index. A prefix that ends in ties takes up to ``tie_target[b]``
    pixels (ties are walked row by row, cheaply).

    Args:
        work: ``[B, N]`` float32 or float64 scores.
        unblocked: ``[B, N]`` bool, or None when nothing is blocked.
        target: ``[B]`` int64 wanted sizes, ``done[b] < target[b] <= avail[b]``.
        avail: ``[B]`` int64 unblocked pixels per image (``target == avail``: the whole map).
        done: ``[B]`` int64 size of the prefix already processed.
        tie_target: ``[B]`` int64 size wanted when the prefix ends in a run of ties.

    Returns:
        ``(v, i, cand)``: the bound (``[B]`` work dtype, ``[B]`` int64: the prefix is
        ``{s > v or (s == v and p <= i)}``) and its pixels as ``b * N + p`` (any order).
    """
    b_count, n = work.shape
    whole = target >= avail
    sample = work[:, ::_SAMPLE_STRIDE]
    # blocked pixels sit in the sample too: scale k up by the blocked share
    ks = np.ceil(target * (n / np.maximum(avail, 1)) * 1.125 / _SAMPLE_STRIDE).astype(np.int64)
    ks = np.clip(ks + 2, 1, sample.shape[1])
    v = np.where(whole, -np.inf, _kth_largest(sample, ks)).astype(work.dtype)
    i = np.full(b_count, n - 1, dtype=np.int64)
    # ties at v in the sample foretell a prefix far too large: then no whole-map listing first
    at_v = np.count_nonzero(sample == v[:, None], axis=1)
    tied = ~whole & (at_v * _SAMPLE_STRIDE > 8 * target + 2 * _SLACK)
    cand = None
    exact = tied
    if not tied.all():
        mask = work >= v[:, None]
        if unblocked is not None:
            mask &= unblocked
        mask[tied] = False
        cand = np.flatnonzero(mask)
        counts = np.bincount(cand // n, minlength=b_count)
        exact = tied | (~whole & ((counts > 4 * target + _SLACK) | (counts <= done)))
    if not exact.any():
        return v, i, cand
    rows = np.flatnonzero(exact)
    every = rows.size == b_count  # index (a copy of the map) only when needed
    w, t = (work, target) if every else (work[rows], target[rows])
    ub = None if unblocked is None else (unblocked if every else unblocked[rows])
    thr = v[rows]

    def split(thr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        above, eq = w > thr[:, None], w == thr[:, None]
        if ub is not None:
            above &= ub
            eq &= ub
        return above, eq, np.count_nonzero(above, axis=1), np.count_nonzero(eq, axis=1)

    above, eq, n_above, n_eq = split(thr)
    # ties at the sampled value complete the prefix, unless the sample was off: then the exact
    # t-th largest unblocked value
    missed = (n_above >= t) | (n_above + n_eq < t)
    for j in np.flatnonzero(missed).tolist():  # per image whose sample missed
        row = w[j] if ub is None else np.where(ub[j], w[j], -np.inf)
        thr[j] = _kth_largest(row[None, :], t[j : j + 1])[0]
    if missed.any():
        above, eq, n_above, n_eq = split(thr)
    # now n_above < t <= n_above + n_eq: take ties by flat index, up to the tie target
    short = np.minimum(np.maximum(t, tie_target[rows]) - n_above, n_eq)
    cut, ties = _first_true(eq, short)
    v[rows], i[rows] = thr, cut
    listed = np.concatenate([np.flatnonzero(above), ties])
    listed = rows[listed // n] * n + listed % n
    return v, i, listed if cand is None else np.concatenate([cand[~exact[cand // n]], listed])


def _as_count(value: object) -> int | None:
    """``value`` as a count (int >= 0; numpy ints too), or None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        count = operator.index(value)
    except TypeError:
        return None
    return count if count >= 0 else None


def _normalise_counts(num_regions: int | Sequence[int] | Tensor, b_count: int) -> list[int]:
    if isinstance(num_regions, (Tensor, np.ndarray)):
        num_regions = num_regions.tolist()
    if isinstance(num_regions, Sequence) and not isinstance(num_regions, str):
        counts = [_as_count(c) for c in num_regions]
    else:
        counts = [_as_count(num_regions)] * b_count
    if len(counts) != b_count or None in counts:
        raise ValueError(
            f"select_regions: num_regions must be an int >= 0 or {b_count} of them (one per "
            f"image), got {num_regions!r}"
        )
    return counts  # type: ignore[return-value]


def select_regions(
    score: Tensor,
    num_regions: int | Sequence[int] | Tensor,
    *,
    active_radius: int = 1,
    mask_radius: int = 5,
    blocked: Tensor | None = None,
) -> Selection:
    """Greedy budgeted region selection (docs/design.md, "The method"), exact, on one map or a batch.

    Args:
        score: ``[H, W]`` or ``[B, H, W]`` float acquisition map, higher = pick first; NaN is
            rejected, ``±inf`` rank as the extreme values (ties by row-major index).
        num_regions: regions to pick per image: an int, or one int per image for a batch.
        active_radius: ``a``: each centre labels its ``(2a+1)²`` window (clipped at the border).
        mask_radius: ``m``: each centre blocks its ``(2m+1)²`` window for later centres.
        blocked: bool, same shape as ``score``: pixels that may not be centres (earlier rounds).

    Returns:
        :class:`Selection` ``(centres, labelled, blocked)``: centres in pick order (``[n, 2]``
        int64 ``(row, col)``, or a list of them for a batch), the pixels labelled by this call and
        the updated blocked mask, on ``score``'s device.
    """
    if not isinstance(score, Tensor) or score.ndim not in (2, 3):
        shape = list(score.shape) if isinstance(score, Tensor) else type(score).__name__
        raise ValueError(
            f"select_regions: score must be an [H, W] or [B, H, W] tensor, got {shape}"
        )
    if not score.is_floating_point():
        raise ValueError(f"select_regions: score must be floating point, got {score.dtype}")
    a = _check_radius(active_radius, "active_radius")
    m = _check_radius(mask_radius, "mask_radius")
    single = score.ndim == 2
    if blocked is not None:
        if not isinstance(blocked, Tensor) or blocked.shape != score.shape:
            got = list(blocked.shape) if isinstance(blocked, Tensor) else type(blocked).__name__
            raise ValueError(
                f"select_regions: blocked must be a bool tensor of shape {list(score.shape)}, "
                f"got {got}"
            )
        blocked = blocked.to(device=score.device, dtype=torch.bool)
    if single:
        score = score.unsqueeze(0)
        blocked = None if blocked is None else blocked.unsqueeze(0)
        if isinstance(num_regions, Tensor) and num_regions.ndim == 0:
            num_regions = int(num_regions)
    b_count, h, w = score.shape
    if score.numel() == 0:
        raise ValueError(
            f"select_regions: score must hold at least one image of at least one pixel, got "
            f"shape {list(score.shape)}"
        )
    counts = _normalise_counts(num_regions, b_count)
    if bool(torch.isnan(score.reshape(b_count, -1).amax(dim=1)).any()):  # amax propagates NaN
        raise ValueError(
            "select_regions: score contains NaN (map non-finite scores before selecting)"
        )
    sel = paint_selection(
        _select_centres(score, counts, m, blocked), (b_count, h, w), a, m, blocked
    )
    if single:
        return Selection(sel.centres[0], sel.labelled[0], sel.blocked[0])
    return sel


def paint_selection(
    centres: list[Tensor],
    shape: tuple[int, int, int],
    active_radius: int,
    mask_radius: int,
    blocked: Tensor | None = None,
) -> Selection:
    """The :class:`Selection` of given centres: their windows painted, the blocked mask updated.

    Args:
        centres: one ``[n_b, 2]`` int64 ``(row, col)`` tensor per image, on one device.
        shape: ``(B, H, W)``.
        active_radius: ``a``: the labelled ``(2a+1)²`` windows.
        mask_radius: ``m``: the blocked ``(2m+1)²`` windows.
        blocked: ``[B, H, W]`` bool, the pixels blocked before, or None.

    Returns:
        ``Selection(centres, labelled [B, H, W], blocked [B, H, W])`` on the centres' device.
    """
    bb = torch.cat([torch.full_like(c[:, 0], i) for i, c in enumerate(centres)])
    yy = torch.cat([c[:, 0] for c in centres])
    xx = torch.cat([c[:, 1] for c in centres])
    labelled = paint_windows(bb, yy, xx, active_radius, shape)
    new_blocked = paint_windows(bb, yy, xx, mask_radius, shape)
    if blocked is not None:
        new_blocked |= blocked.to(device=new_blocked.device, dtype=torch.bool)
    return Selection(centres, labelled, new_blocked)


def _host_map(score: Tensor) -> np.ndarray:
    """The ``[B, H, W]`` map as a host array: float64 stays, every narrower float becomes float32.

    float16 and bfloat16 widen to float32 exactly (same order, same ties); on CPU a float32 map
    is not copied.
    """
    dtype = torch.float64 if score.dtype == torch.float64 else torch.float32
    return score.detach().to(device="cpu", dtype=dtype).numpy()


def _select_centres(
    score: Tensor, counts: list[int], mask_radius: int, blocked: Tensor | None
) -> list[Tensor]:
    """Greedy centres ``[n_b, 2]`` int64 (row, col) per image, in pick order.

    Walks each image's rank order in growing prefixes; a pixel within ``m`` of an earlier centre
    is dropped by a lookup, the rest go through :func:`halo.acquisition.greedy.walk`.
    All of it runs on the host in numpy, whose compares and listings over a map are several
    times faster than torch's on CPU; a CUDA map is copied to the host once.
    """
    b_count, h, w = score.shape
    n, m, device = h * w, mask_radius, score.device
    work = _host_map(score).reshape(b_count, n)
    unblocked = None
    avail = np.full(b_count, n, dtype=np.int64)
    if blocked is not None:
        unblocked = ~blocked.reshape(b_count, n).cpu().numpy()
        avail = np.count_nonzero(unblocked, axis=1).astype(np.int64)
    want = np.minimum(np.asarray(counts, dtype=np.int64), avail)  # never more than there are
    hp, wp = h + 2 * m, w + 2 * m
    dy, dx = _window_offsets(m, torch.device("cpu"), centre=False)
    off = (dy * wp + dx).numpy()
    dy, dx = _window_offsets(m, torch.device("cpu"), centre=True)
    off_all = (dy * wp + dx).numpy()
    taken = np.zeros(b_count * hp * wp, dtype=bool)  # within m of a centre picked so far
    idmap = np.full(b_count * hp * wp, SENTINEL, dtype=ID)
    picks: list[list[np.ndarray]] = [[] for _ in range(b_count)]
    got = np.zeros(b_count, dtype=np.int64)
    # processed prefix per image: bound (v, i) and size; starts empty
    v_done = np.full(b_count, np.inf, dtype=work.dtype)
    i_done = np.full(b_count, -1, dtype=np.int64)
    done = np.zeros(b_count, dtype=np.int64)
    size = np.minimum(np.ceil(want * _FIRST_PREFIX).astype(np.int64) + 16, avail)
    active = (want > 0) & (avail > 0)
    first = True
    while active.any():
        rows = np.flatnonzero(active)
        every = rows.size == b_count  # index (a copy of the map) only when some are done
        # a prefix ending in ties may hold a lattice's worth: one centre per (m+1)² pixels
        left = np.maximum(want - got, 0)
        tie_size = np.minimum(np.maximum(size, left * (m + 1) ** 2 * 5 // 4 + 64), avail)
        v, i, cand = _next_prefix(
            work if every else work[rows],
            unblocked if unblocked is None or every else unblocked[rows],
            size[rows],
            avail[rows],
            done[rows],
            tie_size[rows],
        )
        r, flat = cand // n, cand % n
        img = rows[r]
        values = work.reshape(-1)[img * n + flat]
        sizes = np.bincount(r, minlength=rows.size)
        keys = img * (hp * wp) + (flat // w + m) * wp + (flat % w + m)
        alive = ~taken[keys]
        if not first:  # drop the pixels of the prefix already processed
            vd, idone = v_done[img], i_done[img]
            alive &= ~((values > vd) | ((values == vd) & (flat <= idone)))
        first = False
        img, flat, values, keys = img[alive], flat[alive], values[alive], keys[alive]
        order = rank_order(img, flat, values)
        img, flat, keys, values = img[order], flat[order], keys[order], values[order]
        need = np.maximum(want - got, 0)
        img, flat = walk(img, flat, keys, values, need, taken, idmap, off, off_all, w, m)
        bounds = np.searchsorted(img, np.arange(b_count + 1))
        for b in rows.tolist():  # per image bookkeeping, not per pixel
            picks[b].append(flat[bounds[b] : bounds[b + 1]])
        got += np.diff(bounds)
        v_done[rows], i_done[rows], done[rows] = v, i, sizes
        active = (got < want) & (done < avail)
        # grow the prefix by the observed yield (x2 margin), at least doubling, capped at avail
        yield_ = np.maximum(got, 1) / np.maximum(done, 1)
        grow = np.ceil(want / yield_ * 2).astype(np.int64)
        size = np.minimum(np.maximum(grow, 2 * done), avail)
    result = []
    for b in range(b_count):
        flat = np.concatenate(picks[b]) if picks[b] else np.zeros(0, dtype=np.int64)
        flat = torch.from_numpy(flat[: counts[b]]).to(device)
        result.append(torch.stack([flat // w, flat % w], dim=1))
    return result
