"""select_regions equals the plain greedy of docs/design.md ("The method") on every map we can
think of; regions_per_image turns a budget into a region count."""

from __future__ import annotations

from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halo.acquisition import greedy, selection
from halo.acquisition.selection import (
    Selection,
    paint_windows,
    regions_per_image,
    select_regions,
)


def greedy_reference(
    score: np.ndarray, n: int, a: int, m: int, blocked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """docs/design.md ("The method") written out: walk pixels by (score desc, row-major index
    asc); keep a pixel iff it is still alive; label its (2a+1)² window and kill its (2m+1)²
    window; stop after n."""
    h, w = score.shape
    prior = np.zeros((h, w), bool) if blocked is None else blocked.astype(bool)
    alive = ~prior
    labelled = np.zeros((h, w), bool)
    new_blocked = prior.copy()
    centres = []
    for p in np.lexsort((np.arange(h * w), -score.astype(np.float64).reshape(-1))):
        if len(centres) >= n:
            break
        y, x = divmod(int(p), w)
        if not alive[y, x]:
            continue
        centres.append((y, x))
        alive[max(0, y - m) : y + m + 1, max(0, x - m) : x + m + 1] = False
        new_blocked[max(0, y - m) : y + m + 1, max(0, x - m) : x + m + 1] = True
        labelled[max(0, y - a) : y + a + 1, max(0, x - a) : x + a + 1] = True
    return np.asarray(centres, dtype=np.int64).reshape(-1, 2), labelled, new_blocked


def assert_matches_reference(
    score: torch.Tensor, n: int, a: int, m: int, blocked: torch.Tensor | None = None
) -> Selection:
    sel = select_regions(score, n, active_radius=a, mask_radius=m, blocked=blocked)
    ref_blocked = None if blocked is None else blocked.cpu().numpy()
    centres, labelled, new_blocked = greedy_reference(
        score.float().cpu().numpy(), n, a, m, ref_blocked
    )
    np.testing.assert_array_equal(sel.centres.cpu().numpy(), centres)
    np.testing.assert_array_equal(sel.labelled.cpu().numpy(), labelled)
    np.testing.assert_array_equal(sel.blocked.cpu().numpy(), new_blocked)
    return sel


def make_map(kind: str, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    if kind == "uniform":
        return torch.rand(h, w, generator=gen)
    if kind == "integers":  # many ties
        return torch.randint(0, 4, (h, w), generator=gen).float()
    if kind == "constant":  # all ties: greedy order is row-major order
        return torch.zeros(h, w)
    if kind == "ramp":  # strictly decreasing in row-major order
        return -torch.arange(h * w, dtype=torch.float32).view(h, w)
    if kind == "column-ramp":
        return -(torch.arange(w)[None, :] * h + torch.arange(h)[:, None]).float()
    if kind == "smooth":  # blobs: candidates cluster, most of a prefix is killed
        x = torch.rand(1, 1, h, w, generator=gen)
        return F.avg_pool2d(x, 9, 1, 4, count_include_pad=False)[0, 0]
    if kind == "smooth-ties":  # smooth, quantised: large tied plateaus
        x = torch.rand(1, 1, h, w, generator=gen)
        return torch.round(F.avg_pool2d(x, 9, 1, 4, count_include_pad=False)[0, 0] * 12)
    raise AssertionError(kind)


KINDS = ["uniform", "integers", "constant", "ramp", "column-ramp", "smooth", "smooth-ties"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_equals_greedy_on_medium_maps(kind: str, seed: int) -> None:
    # large enough for several prefix passes and segments (hundreds of regions)
    gen = torch.Generator().manual_seed(seed)
    h, w = 60 + 23 * seed, 150 - 17 * seed
    score = make_map(kind, h, w, gen)
    n = [40, 200, 5000][seed]  # 5000 is more than fits: greedy runs out of pixels
    blocked = torch.rand(h, w, generator=gen) < 0.3 if seed == 1 else None
    a, m = [(1, 5), (2, 3), (0, 1)][seed]
    sel = assert_matches_reference(score, n, a, m, blocked)
    if seed == 2:
        assert sel.centres.shape[0] < n  # ran out: every unblocked pixel is now blocked
        assert bool(sel.blocked.all())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    levels=st.integers(1, 6),
    n=st.integers(0, 40),
    a=st.integers(0, 2),
    m=st.integers(0, 6),
    blocked_share=st.sampled_from([0.0, 0.2, 0.7, 1.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_equals_greedy_on_small_tied_maps(
    h: int, w: int, levels: int, n: int, a: int, m: int, blocked_share: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    score = torch.randint(0, levels, (h, w), generator=gen).float()
    blocked = torch.rand(h, w, generator=gen) < blocked_share if blocked_share else None
    sel = assert_matches_reference(score, n, a, m, blocked)
    if blocked is not None and sel.centres.numel():
        assert not bool(blocked[sel.centres[:, 0], sel.centres[:, 1]].any())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(1, 4),
    h=st.integers(1, 20),
    w=st.integers(1, 40),
    levels=st.integers(1, 5),
    counts=st.lists(st.integers(0, 40), min_size=4, max_size=4),
    m=st.integers(0, 4),
    blocked_share=st.sampled_from([0.0, 0.3]),
    tie_run=st.sampled_from([2, 9, 256]),
    segment=st.sampled_from([3, 50, 2048]),
    slack=st.sampled_from([0, 1024]),
    seed=st.integers(0, 2**31 - 1),
)
def test_batches_with_ties_equal_greedy_per_image(
    b: int,
    h: int,
    w: int,
    levels: int,
    counts: list[int],
    m: int,
    blocked_share: float,
    tie_run: int,
    segment: int,
    slack: int,
    seed: int,
) -> None:
    # small tie runs and segments put every path (frontier chunks, row-by-row tie runs, pieces
    # across images, exact prefixes for some images only) on maps the reference can check
    gen = torch.Generator().manual_seed(seed)
    score = torch.randint(0, levels, (b, h, w), generator=gen).float()
    if seed % 3 == 0:  # a constant image among tied ones
        score[0] = 1.0
    if seed % 2 and b > 1:  # an image without ties among tied ones
        score[1] = torch.rand(h, w, generator=gen)
    blocked = torch.rand(b, h, w, generator=gen) < blocked_share if blocked_share else None
    with (
        mock.patch.multiple(greedy, _TIE_RUN=tie_run, _SEGMENT=segment),
        mock.patch.object(selection, "_SLACK", slack),
    ):
        sel = select_regions(score, counts[:b], active_radius=1, mask_radius=m, blocked=blocked)
    for i in range(b):
        prior = None if blocked is None else blocked[i].numpy()
        centres, labelled, new_blocked = greedy_reference(score[i].numpy(), counts[i], 1, m, prior)
        np.testing.assert_array_equal(sel.centres[i].numpy(), centres)
        np.testing.assert_array_equal(sel.labelled[i].numpy(), labelled)
        np.testing.assert_array_equal(sel.blocked[i].numpy(), new_blocked)


@pytest.mark.parametrize("kind", ["constant", "smooth-ties", "integers"])
@pytest.mark.parametrize("tie_run", [2, 256])
def test_tie_runs_walked_row_by_row_equal_greedy(kind: str, tie_run: int) -> None:
    # maps large enough for several prefixes, each ending in a long run of ties
    gen = torch.Generator().manual_seed(5)
    score = make_map(kind, 90, 200, gen)
    with mock.patch.object(greedy, "_TIE_RUN", tie_run):
        assert_matches_reference(score, 300, 1, 3)
        assert_matches_reference(score, 60, 2, 6, torch.rand(90, 200, generator=gen) < 0.2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("seed", range(3))
def test_dtypes(dtype: torch.dtype, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    score = torch.rand(40, 70, generator=gen).to(dtype)  # low precision: ties appear
    assert_matches_reference(score, 60, 1, 4)


def test_signed_zeros_tie_and_huge_counts_are_capped() -> None:
    # -0.0 == 0.0: they tie, so row-major order decides between them, not the sign bit
    gen = torch.Generator().manual_seed(1)
    score = torch.where(torch.rand(30, 40, generator=gen) < 0.5, -0.0, 0.0)
    score[3, 7] = 1.0
    assert_matches_reference(score, 60, 1, 2)
    sel = select_regions(score, 2**63 - 1, mask_radius=2)  # more than there are: all that fit
    assert sel.centres.shape[0] == greedy_reference(score.numpy(), 10**6, 1, 2)[0].shape[0]


def test_infinities_rank_at_the_extremes() -> None:
    score = torch.zeros(20, 30)
    score[5, 5] = torch.inf
    score[0, 0] = -torch.inf
    score[10:, :] = -torch.inf
    sel = assert_matches_reference(score, 500, 1, 2)
    assert sel.centres[0].tolist() == [5, 5]
    assert sel.centres[-1].tolist()[0] >= 10  # -inf pixels come last, but they are still picked


def test_centres_are_spread_and_windows_painted() -> None:
    gen = torch.Generator().manual_seed(0)
    score = torch.rand(50, 80, generator=gen)
    sel = select_regions(score, 30, active_radius=1, mask_radius=5)
    c = sel.centres
    dist = (c[:, None, :] - c[None, :, :]).abs().amax(dim=-1)
    dist.fill_diagonal_(99)
    assert int(dist.min()) > 5
    assert int(sel.labelled.sum()) <= 9 * 30
    assert bool(sel.labelled[c[:, 0], c[:, 1]].all())
    # the first centre is the arg-max
    assert c[0].tolist() == list(divmod(int(score.argmax()), 80))


def test_batch_equals_single_maps_with_per_image_counts() -> None:
    gen = torch.Generator().manual_seed(3)
    maps = torch.stack([make_map(k, 40, 64, gen) for k in ("uniform", "integers", "smooth")])
    blocked = torch.rand(3, 40, 64, generator=gen) < 0.25
    counts = [25, 0, 60]
    sel = select_regions(maps, counts, active_radius=1, mask_radius=3, blocked=blocked)
    assert isinstance(sel.centres, list) and len(sel.centres) == 3
    for b in range(3):
        single = assert_matches_reference(maps[b], counts[b], 1, 3, blocked[b])
        torch.testing.assert_close(sel.centres[b], single.centres, rtol=0, atol=0)
        assert torch.equal(sel.labelled[b], single.labelled)
        assert torch.equal(sel.blocked[b], single.blocked)
    # one count for every image
    sel_all = select_regions(maps, 10, mask_radius=3)
    assert [c.shape[0] for c in sel_all.centres] == [10, 10, 10]
    # numpy / tensor counts work too
    sel_np = select_regions(maps, np.array(counts), mask_radius=3, blocked=blocked)
    sel_t = select_regions(maps, torch.tensor(counts), mask_radius=3, blocked=blocked)
    for b in range(3):
        assert torch.equal(sel_np.centres[b], sel.centres[b])
        assert torch.equal(sel_t.centres[b], sel.centres[b])
    assert select_regions(maps[0], np.int64(4)).centres.shape == (4, 2)


def test_zero_regions_and_fully_blocked() -> None:
    score = torch.rand(10, 10)
    sel = select_regions(score, 0)
    assert sel.centres.shape == (0, 2) and not bool(sel.labelled.any())
    blocked = torch.ones(10, 10, dtype=torch.bool)
    sel = select_regions(score, 5, blocked=blocked)
    assert sel.centres.shape == (0, 2) and bool(sel.blocked.all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"score": torch.rand(4, 4, 4, 4), "num_regions": 1}, "score must be"),
        ({"score": torch.rand(0, 4, 4), "num_regions": []}, "at least one pixel"),
        ({"score": torch.rand(4, 0), "num_regions": 1}, "at least one pixel"),
        ({"score": torch.ones(4, 4, dtype=torch.int64), "num_regions": 1}, "floating point"),
        ({"score": torch.full((4, 4), float("nan")), "num_regions": 1}, "NaN"),
        ({"score": torch.rand(4, 4), "num_regions": -1}, "num_regions"),
        ({"score": torch.rand(4, 4), "num_regions": True}, "num_regions"),
        ({"score": torch.rand(4, 4), "num_regions": 2.0}, "num_regions"),
        ({"score": torch.rand(2, 4, 4), "num_regions": [1, 2, 3]}, "one per image"),
        ({"score": torch.rand(4, 4), "num_regions": 1, "mask_radius": -1}, "mask_radius"),
        ({"score": torch.rand(4, 4), "num_regions": 1, "active_radius": 1.5}, "active_radius"),
        (
            {"score": torch.rand(4, 4), "num_regions": 1, "blocked": torch.zeros(3, 4).bool()},
            "blocked must be",
        ),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        select_regions(**kwargs)


def test_paint_windows_clips_at_the_border() -> None:
    z = torch.zeros(1, dtype=torch.int64)
    out = paint_windows(z, z, z, 2, (1, 4, 5))
    expected = torch.zeros(1, 4, 5, dtype=torch.bool)
    expected[0, :3, :3] = True
    assert torch.equal(out, expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_equals_cpu(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.stack([make_map(kind, 64, 96, gen) for _ in range(2)])
    blocked = torch.rand(2, 64, 96, generator=gen) < 0.2
    cpu = select_regions(maps, [50, 120], blocked=blocked)
    gpu = select_regions(maps.cuda(), [50, 120], blocked=blocked.cuda())
    for b in range(2):
        assert gpu.centres[b].device.type == "cuda" and gpu.labelled.device.type == "cuda"
        assert torch.equal(gpu.centres[b].cpu(), cpu.centres[b])
    assert torch.equal(gpu.labelled.cpu(), cpu.labelled)
    assert torch.equal(gpu.blocked.cpu(), cpu.blocked)


# --- budget arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("h", "w", "budget", "a", "expected"),
    [
        (640, 1280, 0.01, 1, 911),
        (30, 30, 0.01, 1, 1),  # 900 * 0.01 / 9 is exactly 1
        (512, 1024, 0.022 / 5, 1, 257),
        (512, 1024, 0.0044, 1, 257),
        (10, 10, 0.0, 1, 0),
        (10, 10, 1.0, 1, 12),
        (10, 10, 0.05, 0, 5),
        (100, 100, 0.05, 2, 20),
    ],
)
def test_regions_per_image(h: int, w: int, budget: float, a: int, expected: int) -> None:
    assert regions_per_image(h, w, budget, a) == expected


@pytest.mark.parametrize("seed", range(20))
def test_regions_cover_the_budget_and_no_more(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w, a = int(rng.integers(1, 2000)), int(rng.integers(1, 2000)), int(rng.integers(0, 4))
    budget = int(rng.integers(1, 10_000)) / 100_000
    n = regions_per_image(h, w, budget, a)
    area = (2 * a + 1) ** 2
    wanted = Fraction(h * w) * Fraction(budget).limit_denominator(10**9)
    assert n * area >= wanted > (n - 1) * area


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 10, 0.1), "height"), ((10, 10, 1.5), "round_budget"), ((10, 10, 0.1, -1), "active")],
)
def test_regions_bad_args(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        regions_per_image(*args)
