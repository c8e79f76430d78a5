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
  from a strided sample of the map: one compare + ``nonzero`` over the map per prefix); a prefix
  continues where the last one stopped, and the walk ends once ``n`` centres are kept;
- within a prefix, candidates are taken in rank-ordered segments; a candidate within ``m`` of an
  already kept centre is dropped by one lookup in a "taken" map; among the rest, "kept" is a
  boolean recurrence over the conflict graph (pairs within distance ``m``, oriented from higher to
  lower rank): a candidate is kept once every higher neighbour is dropped, dropped once one is
  kept. :func:`_greedy_chunk` evaluates it frontier by frontier, touching each candidate and each
  pair a constant number of times.

The number of frontier steps is the longest decision chain: a handful on noisy or smooth maps,
up to about ``W / (m+1)`` per row band on monotone ramps and constant maps (still exact, slower).
The map-sized work (bound, prefix mask) runs on the score's device; the candidate-sized work
(sorting, graph, recurrence) runs on the host in numpy, whose per-call overhead is a fraction of
torch's on the small arrays involved. ``bench/selection.py`` times it against the plain loop.
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

__all__ = ["Selection", "check_budget", "paint_windows", "regions_per_image", "select_regions"]

_SAMPLE_STRIDE = 16  # threshold estimate reads every 16th pixel of the map
_FIRST_PREFIX = 2.0  # first prefix: about 2 candidates per requested region (noisy maps need ~1.2)
_SEGMENT = 2048  # candidates per segment of the greedy pass
_ID = np.int16  # candidate ids within a segment (< _SEGMENT) ...
_SENTINEL = np.iinfo(_ID).max  # ... and the id of 'no candidate here'


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


def _in_prefix(work: Tensor, v: Tensor, i: Tensor) -> Tensor:
    """Bool ``[B, N]``: pixels inside the rank prefix ``{s > v or (s == v and p <= i)}``.

    Every such set is a prefix of the rank order (score desc, flat index asc); ``v = +inf,
    i = -1`` is the empty prefix and ``v = -inf, i = N-1`` the whole map.
    """
    n = work.shape[1]
    if bool((i >= n - 1).all()):
        return work >= v[:, None]
    idx = torch.arange(n, device=work.device)
    return (work > v[:, None]) | ((work == v[:, None]) & (idx <= i[:, None]))


def _next_prefix(
    work: Tensor, unblocked: Tensor | None, target: Tensor, avail: Tensor, done: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Bound a rank prefix of about ``target[b]`` unblocked pixels per image and list its pixels.

    The bound is the ``k``-th largest value of a strided sample of the map (one cheap pass over
    the map: compare and ``nonzero``). Where that misses (ties make the set far too large, or it is
    not larger than the prefix already processed) the bound is made exact with ``topk``: then the
    prefix holds exactly ``target[b]`` pixels, ties cut by flat index.

    Args:
        work: ``[B, N]`` float scores.
        unblocked: ``[B, N]`` bool, or None when nothing is blocked.
        target: ``[B]`` int64 wanted sizes, ``done[b] < target[b] <= avail[b]``.
        avail: ``[B]`` int64 unblocked pixels per image (``target == avail``: the whole map).
        done: ``[B]`` int64 size of the prefix already processed.

    Returns:
        ``(v, i, cand)``: the bound (``[B]`` work dtype, ``[B]`` int64) and the prefix pixels
        ``[T, 2]`` int64 ``(image, flat index)`` sorted by image then flat index.
    """
    b_count, n = work.shape
    device = work.device
    whole = target >= avail
    sample = work[:, ::_SAMPLE_STRIDE]
    # blocked pixels sit in the sample too: scale k up by the blocked share
    ks = torch.ceil(target * (n / avail.clamp(min=1)) * 1.125 / _SAMPLE_STRIDE).long() + 2
    ks = ks.clamp(1, sample.shape[1])
    v = sample.topk(int(ks.max()), dim=1).values.gather(1, (ks - 1)[:, None]).squeeze(1)
    v = torch.where(whole, torch.full_like(v, -torch.inf), v)
    i = torch.full((b_count,), n - 1, dtype=torch.int64, device=device)
    mask = work >= v[:, None]
    if unblocked is not None:
        mask &= unblocked
    cand = mask.nonzero()
    counts = torch.bincount(cand[:, 0], minlength=b_count)
    exact = ~whole & ((counts > 4 * target + 1024) | (counts <= done))
    if bool(exact.any()):
        rows = exact.nonzero().squeeze(1)
        w, t = work[rows], target[rows]
        ub = None if unblocked is None else unblocked[rows]
        thr = v[rows]
        above = w > thr[:, None]
        if ub is not None:
            above &= ub
        # ties at the sampled value complete the prefix, unless the sample was off: then topk
        missed = (above.sum(dim=1) >= t) | (counts[rows] < t)
        if bool(missed.any()):
            sub = missed.nonzero().squeeze(1)
            ws = w[sub] if ub is None else w[sub].masked_fill(~ub[sub], -torch.inf)
            kth = ws.topk(int(t[sub].max()), dim=1).values.gather(1, (t[sub] - 1)[:, None])
            thr[sub] = kth.squeeze(1)
            above = w > thr[:, None]
            if ub is not None:
                above &= ub
        eq = w == thr[:, None]
        if ub is not None:
            eq &= ub
        short = t - above.sum(dim=1)  # ties to take, lowest flat index first
        cut = torch.where(short > 0, (eq.cumsum(dim=1) < short[:, None]).sum(dim=1), -1)
        v[rows], i[rows] = thr, cut
        mask = _in_prefix(work, v, i)
        if unblocked is not None:
            mask &= unblocked
        cand = mask.nonzero()
    return v, i, cand


def _greedy_chunk(keys: np.ndarray, idmap: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Exact greedy among rank-sorted candidates: which of them are kept as centres.

    Candidate ``j`` is kept iff no kept candidate ``< j`` lies within the window ``off`` of it
    (candidates ``< j`` are the higher-ranked ones of the same image). Evaluated frontier by
    frontier: a candidate is kept once all its higher neighbours are dropped, dropped once one of
    them is kept; each candidate and each neighbour pair is handled a constant number of times.

    Args:
        keys: ``[T]`` int64 padded flat positions (``image * Hp * Wp + (row + m) * Wp + col + m``),
            sorted by image then rank.
        idmap: ``[B * Hp * Wp]`` int16 scratch filled with ``_SENTINEL``; restored on return.
        off: ``[K]`` int64 padded flat offsets of the other pixels within distance ``m``.

    Returns:
        ``[T]`` bool, True for kept candidates.
    """
    t = keys.shape[0]
    if t == 0 or off.size == 0:
        return np.ones(t, dtype=bool)
    if t >= _SENTINEL:
        raise ValueError(f"_greedy_chunk: at most {_SENTINEL - 1} candidates per call, got {t}")
    ids = np.arange(t, dtype=_ID)
    idmap[keys] = ids
    nb = idmap[keys[:, None] + off[None, :]]  # [T, K] neighbour ids, _SENTINEL where none
    idmap[keys] = _SENTINEL
    higher = nb < ids[:, None]
    # pending[j]: higher neighbours not yet dropped; lower[j]: lower neighbours, t = none (a dummy
    # slot that counts as decided, so no masking is needed in the loop)
    pending = np.zeros(t + 1, dtype=np.int32)
    pending[:t] = higher.sum(axis=1)
    lower = np.where(higher, t, np.minimum(nb, t))
    del nb, higher
    decided = np.zeros(t + 1, dtype=bool)
    decided[t] = True
    kept = np.zeros(t, dtype=bool)
    frontier = np.flatnonzero(pending[:t] == 0)
    while frontier.size:
        kept[frontier] = True
        decided[frontier] = True
        hit = lower[frontier].ravel()
        hit = hit[~decided[hit]]
        if hit.size == 0:
            break
        dropped = np.unique(hit)
        decided[dropped] = True
        freed = lower[dropped].ravel()
        freed = freed[~decided[freed]]
        freed, times = np.unique(freed, return_counts=True)
        pending[freed] -= times.astype(np.int32)
        frontier = freed[pending[freed] == 0]
    return kept


def _greedy_segments(
    img: np.ndarray,
    flat: np.ndarray,
    keys: np.ndarray,
    need: np.ndarray,
    taken: np.ndarray,
    idmap: np.ndarray,
    off: np.ndarray,
    off_all: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy over rank-sorted candidates in consecutive segments, updating ``taken``.

    Each segment first drops the candidates within ``m`` of a centre kept so far (one lookup in
    ``taken``), so only the rest enter :func:`_greedy_chunk`; on smooth maps most candidates go
    that cheap way. An image stops once it has ``need[b]`` new centres.

    Args:
        img, flat, keys: ``[T]`` image index, flat pixel index and padded key of the candidates,
            sorted by image then rank.
        need: ``[B]`` int64 centres still wanted per image (decremented in place).
        taken: ``[B * Hp * Wp]`` bool, pixels within ``m`` of a kept centre (updated in place).
        idmap: scratch for :func:`_greedy_chunk`.
        off, off_all: padded offsets of the ``(2m+1)²`` window without / with its centre.

    Returns:
        ``(img, flat)`` of the kept centres, sorted by image then rank.
    """
    out_img, out_flat = [], []
    for start in range(0, img.size, _SEGMENT):
        s_img, s_flat, s_keys = (x[start : start + _SEGMENT] for x in (img, flat, keys))
        live = ~taken[s_keys] & (need[s_img] > 0)
        s_img, s_flat, s_keys = s_img[live], s_flat[live], s_keys[live]
        kept = _greedy_chunk(s_keys, idmap, off)
        s_img, s_flat, s_keys = s_img[kept], s_flat[kept], s_keys[kept]
        taken[(s_keys[:, None] + off_all[None, :]).ravel()] = True
        need -= np.bincount(s_img, minlength=need.size)
        out_img.append(s_img)
        out_flat.append(s_flat)
    if not out_img:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    img, flat = np.concatenate(out_img), np.concatenate(out_flat)
    order = np.argsort(img, kind="stable")
    return img[order], flat[order]


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
    counts = _normalise_counts(num_regions, b_count)
    if bool(torch.isnan(score.reshape(b_count, -1).amax(dim=1)).any()):  # amax propagates NaN
        raise ValueError(
            "select_regions: score contains NaN (map non-finite scores before selecting)"
        )
    centres = _select_centres(score, counts, m, blocked)
    bb = torch.cat([torch.full_like(c[:, 0], i) for i, c in enumerate(centres)])
    yy = torch.cat([c[:, 0] for c in centres])
    xx = torch.cat([c[:, 1] for c in centres])
    labelled = paint_windows(bb, yy, xx, a, (b_count, h, w))
    new_blocked = paint_windows(bb, yy, xx, m, (b_count, h, w))
    if blocked is not None:
        new_blocked |= blocked
    if single:
        return Selection(centres[0], labelled[0], new_blocked[0])
    return Selection(centres, labelled, new_blocked)


def _select_centres(
    score: Tensor, counts: list[int], mask_radius: int, blocked: Tensor | None
) -> list[Tensor]:
    """Greedy centres ``[n_b, 2]`` int64 (row, col) per image, in pick order.

    Walks each image's rank order in growing prefixes; a pixel within ``m`` of an earlier centre
    is dropped by a lookup, the rest go through :func:`_greedy_chunk`. The device does the
    map-sized work (threshold, prefix mask); the host does the candidate-sized work.
    """
    b_count, h, w = score.shape
    n, m, device = h * w, mask_radius, score.device
    work = score.reshape(b_count, n)
    unblocked = None if blocked is None else ~blocked.reshape(b_count, n)
    avail = torch.full((b_count,), n, dtype=torch.int64, device=device)
    if unblocked is not None:
        avail = unblocked.sum(dim=1)
    want = torch.tensor(counts, dtype=torch.int64, device=device)
    hp, wp = h + 2 * m, w + 2 * m
    dy, dx = _window_offsets(m, torch.device("cpu"), centre=False)
    off = (dy * wp + dx).numpy()
    dy, dx = _window_offsets(m, torch.device("cpu"), centre=True)
    off_all = (dy * wp + dx).numpy()
    taken = np.zeros(b_count * hp * wp, dtype=bool)  # within m of a centre picked so far
    idmap = np.full(b_count * hp * wp, _SENTINEL, dtype=_ID)
    picks: list[list[np.ndarray]] = [[] for _ in range(b_count)]
    got = np.zeros(b_count, dtype=np.int64)
    # processed prefix per image: bound (v, i) and size; starts empty
    v_done = torch.full((b_count,), torch.inf, dtype=score.dtype, device=device)
    i_done = torch.full((b_count,), -1, dtype=torch.int64, device=device)
    done = torch.zeros(b_count, dtype=torch.int64, device=device)
    size = torch.minimum(torch.ceil(want * _FIRST_PREFIX).long() + 16, avail)
    active = (want > 0) & (avail > 0)
    first = True
    while bool(active.any()):
        rows = active.nonzero().squeeze(1)
        every = rows.numel() == b_count  # index (a copy of the map) only when some are done
        v, i, cand = _next_prefix(
            work if every else work[rows],
            unblocked if unblocked is None or every else unblocked[rows],
            size[rows],
            avail[rows],
            done[rows],
        )
        r, flat = cand[:, 0], cand[:, 1]
        img = rows[r]
        values = work[img, flat]
        sizes = torch.bincount(r, minlength=rows.numel())
        if first:  # nothing processed yet: every prefix pixel is new
            first = False
        else:  # drop the pixels of the prefix already processed
            vd, idone = v_done[img], i_done[img]
            new = ~((values > vd) | ((values == vd) & (flat <= idone)))
            img, flat, values = img[new], flat[new], values[new]
        img, flat = img.cpu().numpy(), flat.cpu().numpy()
        values = values.double().cpu().numpy()
        keys = img * (hp * wp) + (flat // w + m) * wp + (flat % w + m)
        alive = ~taken[keys]
        img, flat, values, keys = img[alive], flat[alive], values[alive], keys[alive]
        order = np.lexsort((flat, -values, img))  # image, then score desc, then flat index
        img, flat, keys = img[order], flat[order], keys[order]
        need = np.maximum(np.asarray(counts) - got, 0)
        img, flat = _greedy_segments(img, flat, keys, need, taken, idmap, off, off_all)
        bounds = np.searchsorted(img, np.arange(b_count + 1))
        for b in rows.tolist():  # per image bookkeeping, not per pixel
            picks[b].append(flat[bounds[b] : bounds[b + 1]])
        got += np.diff(bounds)
        v_done[rows], i_done[rows], done[rows] = v, i, sizes
        got_t = torch.from_numpy(got).to(device)
        active = (got_t < want) & (done < avail)
        # grow the prefix by the observed yield (x2 margin), at least doubling, capped at avail
        yield_ = got_t.clamp(min=1).double() / done.clamp(min=1).double()
        grow = torch.ceil(want.double() / yield_ * 2).long()
        size = torch.minimum(torch.maximum(grow, 2 * done), avail)
    result = []
    for b in range(b_count):
        flat = np.concatenate(picks[b]) if picks[b] else np.zeros(0, dtype=np.int64)
        flat = torch.from_numpy(flat[: counts[b]]).to(device)
        result.append(torch.stack([flat // w, flat % w], dim=1))
    return result
