"""The exact greedy over rank-sorted candidates, on the host in numpy (for :mod:`.selection`).

:func:`halo.acquisition.selection.select_regions` lists a prefix of the rank order and hands its
candidates here, sorted by :func:`rank_order`; :func:`walk` keeps a candidate iff no kept
candidate of higher rank lies within distance ``m``, in consecutive pieces:

- a segment of candidates first loses those within ``m`` of a centre kept so far (one lookup in a
  "taken" map); among the rest, "kept" is a boolean recurrence over the conflict graph (pairs
  within distance ``m``, oriented from higher to lower rank): a candidate is kept once every
  higher neighbour is dropped, dropped once one is kept. :func:`_greedy_chunk` evaluates it
  frontier by frontier, touching each candidate and each pair a constant number of times; the
  number of steps is the longest decision chain, a handful on noisy or smooth maps;
- a run of equal scores (flat sky, saturated entropy, a constant map) is in row-major order:
  :func:`_greedy_ties` walks it row by row, each row's points dropped by the rows above (one
  lookup in "taken") and the rest a 1-D greedy by pointer doubling (:func:`_orbit`), a handful of
  array calls per row where the recurrence would need one step per centre along the row.

No per-pixel or per-region Python loop: the loops run over segments, rows of a tie run and
frontier steps.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ID", "SENTINEL", "rank_order", "walk"]

_SEGMENT = 2048  # candidates per segment of the greedy pass
_TIE_RUN = 256  # a run of at least this many equal scores is walked row by row (_greedy_ties)
ID = np.int16  # candidate ids within a segment (< _SEGMENT) ...
SENTINEL = np.iinfo(ID).max  # ... and the id of 'no candidate here' (fill of the id map)


def _greedy_chunk(keys: np.ndarray, idmap: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Exact greedy among rank-sorted candidates: which of them are kept as centres.

    Candidate ``j`` is kept iff no kept candidate ``< j`` lies within the window ``off`` of it
    (candidates ``< j`` are the higher-ranked ones of the same image). Evaluated frontier by
    frontier: a candidate is kept once all its higher neighbours are dropped, dropped once one of
    them is kept; each candidate and each neighbour pair is handled a constant number of times.

    Args:
        keys: ``[T]`` int64 padded flat positions (``image * Hp * Wp + (row + m) * Wp + col + m``),
            sorted by image then rank.
        idmap: ``[B * Hp * Wp]`` int16 scratch filled with ``SENTINEL``; restored on return.
        off: ``[K]`` int64 padded flat offsets of the other pixels within distance ``m``.

    Returns:
        ``[T]`` bool, True for kept candidates.
    """
    t = keys.shape[0]
    if t == 0 or off.size == 0:
        return np.ones(t, dtype=bool)
    if t >= SENTINEL:
        raise ValueError(f"_greedy_chunk: at most {SENTINEL - 1} candidates per call, got {t}")
    ids = np.arange(t, dtype=ID)
    idmap[keys] = ids
    nb = np.take(idmap, keys[:, None] + off[None, :])  # [T, K] neighbour ids, or SENTINEL
    idmap[keys] = SENTINEL
    higher = nb < ids[:, None]
    # pending[j]: higher neighbours not yet dropped; lower[j]: lower neighbours, t = none (a dummy
    # slot that counts as decided, so no masking is needed in the loop)
    pending = np.zeros(t + 1, dtype=np.int64)
    pending[:t] = np.count_nonzero(higher, axis=1)
    lower = np.where(higher, t, np.minimum(nb, t))
    del nb, higher
    decided = np.zeros(t + 1, dtype=bool)
    decided[t] = True
    kept = np.zeros(t, dtype=bool)
    frontier = np.flatnonzero(pending[:t] == 0)
    while frontier.size:  # O(t) array calls per step (t <= _SEGMENT): no sorting
        kept[frontier] = True
        decided[frontier] = True
        drop = np.zeros(t + 1, dtype=bool)
        drop[lower[frontier].ravel()] = True
        drop &= ~decided
        dropped = np.flatnonzero(drop)
        if dropped.size == 0:
            break
        decided[dropped] = True
        pending -= np.bincount(lower[dropped].ravel(), minlength=t + 1)
        frontier = np.flatnonzero((pending == 0) & ~decided)
    return kept


def _orbit(cols: np.ndarray, gap: int) -> np.ndarray:
    """1-D greedy on sorted points: keep the first, then each next one more than ``gap`` further.

    Pointer doubling: ``nxt[j]`` is the first point at column ``>= cols[j] + gap + 1``; the kept
    points are the orbit of point 0 under ``nxt``, found in ``log2(kept) + 1`` steps.

    Args:
        cols: ``[L]`` int64 columns, strictly ascending, ``L >= 1``.
        gap: the blocking distance ``m``.

    Returns:
        ``[k]`` int64 indices into ``cols`` of the kept points, ascending.
    """
    size = cols.size
    jump = np.empty(size + 1, dtype=np.int64)
    jump[:size] = np.searchsorted(cols, cols + gap + 1, side="left")
    jump[size] = size  # 'none': a fixed point
    path = np.zeros(1, dtype=np.int64)
    while True:  # path: the first 2^k orbit points; jump = nxt^(2^k)
        more = jump[path]
        more = more[more < size]
        if more.size == 0:
            return path
        path = np.concatenate([path, more])
        jump = jump[jump]


def _greedy_ties(
    flat: np.ndarray,
    keys: np.ndarray,
    need: int,
    taken: np.ndarray,
    off_all: np.ndarray,
    width: int,
    gap: int,
) -> np.ndarray:
    """Exact greedy over one image's run of equal scores (rank order = row-major order).

    Row by row: a row's points within ``m`` of a centre kept so far are dropped by a lookup in
    ``taken``; the rest is a 1-D greedy (:func:`_orbit`). Each row is a handful of array calls,
    where the frontier recurrence would need one step per centre along the row.

    Args:
        flat, keys: ``[T]`` flat pixel index (ascending) and padded key of the run's points.
        need: centres still wanted in this image; the walk stops once they are kept.
        taken: ``[B * Hp * Wp]`` bool, pixels within ``m`` of a kept centre (updated in place).
        off_all: padded offsets of the ``(2m+1)²`` window with its centre.
        width: the map's width ``W``; gap: ``m``.

    Returns:
        ``[k]`` int64 flat indices of the kept centres, ascending (may exceed ``need``).
    """
    rows = flat // width
    bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1], True])
    kept = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):  # per row
        r_keys = keys[lo:hi]
        live = np.flatnonzero(~taken[r_keys])
        if live.size == 0:
            continue
        cols = flat[lo:hi][live] % width
        pick = live[_orbit(cols, gap)]
        taken[(r_keys[pick][:, None] + off_all[None, :]).ravel()] = True
        kept.append(flat[lo:hi][pick])
        need -= pick.size
        if need <= 0:
            break
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _pieces(img: np.ndarray, values: np.ndarray) -> list[tuple[int, int, bool]]:
    """Split rank-sorted candidates into ``(start, end, tied)`` pieces, in order.

    Runs of at least ``_TIE_RUN`` equal scores in one image are tied pieces (walked row by row);
    the stretches between them are the other pieces.
    """
    size = img.size
    same = (img[1:] == img[:-1]) & (values[1:] == values[:-1])
    starts = np.flatnonzero(np.r_[True, ~same])
    lengths = np.diff(np.r_[starts, size])
    long = lengths >= _TIE_RUN
    pieces: list[tuple[int, int, bool]] = []
    pos = 0
    for start, length in zip(starts[long].tolist(), lengths[long].tolist(), strict=True):
        if start > pos:
            pieces.append((pos, start, False))
        pieces.append((start, start + length, True))
        pos = start + length
    if size > pos:
        pieces.append((pos, size, False))
    return pieces


def rank_order(img: np.ndarray, flat: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The permutation sorting candidates by image, then score (desc), then flat index.

    Scores of at most 32 bits are made into one unique int64 key (order-preserving bits of the
    score above the flat index), so an unstable sort does it; wider scores go through
    ``np.lexsort``.

    Args:
        img, flat: ``[T]`` int64 image and flat pixel index (``flat < 2**31``).
        values: ``[T]`` scores (any float dtype, no NaN).

    Returns:
        ``[T]`` int64 permutation.
    """
    if values.dtype.itemsize > 4:
        return np.lexsort((flat, -values, img))
    bits = (values.astype(np.float32) + np.float32(0.0)).view(np.int32)  # + 0: -0.0 becomes 0.0
    order_bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # signed ints in the floats' order
    key = ((~order_bits).astype(np.int64) << 32) | flat  # descending score, then flat index
    order = np.argsort(key)
    if img.size and (img != img[0]).any():
        order = order[np.argsort(img[order], kind="stable")]
    return order


def walk(
    img: np.ndarray,
    flat: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
    need: np.ndarray,
    taken: np.ndarray,
    idmap: np.ndarray,
    off: np.ndarray,
    off_all: np.ndarray,
    width: int,
    gap: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy over rank-sorted candidates in consecutive pieces, updating ``taken``.

    Each segment first drops the candidates within ``m`` of a centre kept so far (one lookup in
    ``taken``), so only the rest enter :func:`_greedy_chunk`; on smooth maps most candidates go
    that cheap way. Long runs of equal scores go through :func:`_greedy_ties` instead. An image
    stops once it has ``need[b]`` new centres.

    Args:
        img, flat, keys, values: ``[T]`` image index, flat pixel index, padded key and score of
            the candidates, sorted by image then rank.
        need: ``[B]`` int64 centres still wanted per image (decremented in place).
        taken: ``[B * Hp * Wp]`` bool, pixels within ``m`` of a kept centre (updated in place).
        idmap: scratch for :func:`_greedy_chunk`.
        off, off_all: padded offsets of the ``(2m+1)²`` window without / with its centre.
        width: the map's width ``W``; gap: the blocking distance ``m``.

    Returns:
        ``(img, flat)`` of the kept centres, sorted by image then rank.
    """
    out_img, out_flat = [], []
    for start, end, tied in _pieces(img, values):
        if tied:
            b = int(img[start])
            if need[b] <= 0:
                continue
            s_flat = _greedy_ties(
                flat[start:end], keys[start:end], int(need[b]), taken, off_all, width, gap
            )
            s_img = np.full(s_flat.size, b, dtype=np.int64)
            need[b] -= s_flat.size
            out_img.append(s_img)
            out_flat.append(s_flat)
            continue
        lo = start
        while lo < end:  # consecutive segments of the stretch
            hi = min(lo + _SEGMENT, end)
            s_img, s_flat, s_keys = img[lo:hi], flat[lo:hi], keys[lo:hi]
            live = ~taken[s_keys] & (need[s_img] > 0)
            s_img, s_flat, s_keys = s_img[live], s_flat[live], s_keys[live]
            kept = _greedy_chunk(s_keys, idmap, off)
            s_img, s_flat, s_keys = s_img[kept], s_flat[kept], s_keys[kept]
            taken[(s_keys[:, None] + off_all[None, :]).ravel()] = True
            need -= np.bincount(s_img, minlength=need.size)
            out_img.append(s_img)
            out_flat.append(s_flat)
            lo = hi
    if not out_img:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    img, flat = np.concatenate(out_img), np.concatenate(out_flat)
    order = np.argsort(img, kind="stable")
    return img[order], flat[order]
