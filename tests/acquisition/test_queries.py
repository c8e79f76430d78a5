"""halo.acquisition.queries: the region windows (loop-free) against the plain slices."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from halo.acquisition.queries import region_windows


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(1, 9),
    st.lists(st.integers(0, 3), min_size=0, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_region_windows_are_the_clipped_windows(height, width, radii, seed):
    rng = np.random.default_rng(seed)
    n = len(radii)
    centres = np.stack([rng.integers(0, height, n), rng.integers(0, width, n)], axis=1)
    image = rng.integers(0, 1000, (height, width))
    rows, cols, inside = region_windows(centres, np.array(radii, dtype=np.int64), (height, width))
    assert rows.shape == cols.shape == inside.shape == (n, *(2 * [2 * max(radii, default=0) + 1]))
    for k, ((r, c), a) in enumerate(zip(centres.tolist(), radii, strict=True)):
        window = image[max(r - a, 0) : r + a + 1, max(c - a, 0) : c + a + 1]
        got = image[rows[k], cols[k]][inside[k]]
        assert sorted(got.tolist()) == sorted(window.ravel().tolist())
    same = region_windows(centres, 2, (height, width))[2]  # one radius for all
    assert same.sum() == sum(
        (min(r + 3, height) - max(r - 2, 0)) * (min(c + 3, width) - max(c - 2, 0))
        for r, c in centres.tolist()
    )
