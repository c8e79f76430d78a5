"""Strategies: registry, presets, known-order inputs (baal style), non-finite rule, budget."""

from __future__ import annotations

import pytest
import torch

from halo.acquisition.methods import METHODS
from halo.acquisition.scores import (
    minmax_normalize,
    pixel_entropy,
    region_impurity,
    window_mean,
    window_sum,
)
from halo.acquisition.strategies import (
    STRATEGIES,
    HaloStrategy,
    Strategy,
    build_strategy,
    get_strategy_class,
)

NAMES = sorted(STRATEGIES)
H, W, C = 48, 64, 10
# hot spots, in the order the strategies must pick them (well apart: m = 5 never merges them)
SPOTS = [(10, 12), (30, 48), (36, 10), (12, 40)]


def known_order_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and radius whose hot spots rank SPOTS[0] > SPOTS[1] > ... for every strategy.

    Everywhere else the prediction is confident (class 0, low entropy, zero impurity) and the
    radius is low. Spot i is 3x3 pixels predicting 9 different classes with logit gap ``gaps[i]``
    (smaller gap = higher entropy; the impurity is the same in every spot and highest in the
    window centred on it) and radius ``5 - i``, peaking at the centre.
    """
    logits = torch.zeros(1, C, H, W)
    logits[:, 0] = 8.0
    radius = torch.ones(1, H, W)
    gaps = [0.2, 0.8, 1.6, 2.4]  # > 0: the spot's class wins the arg-max
    for i, (y, x) in enumerate(SPOTS):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                cls = 1 + 3 * (dy + 1) + (dx + 1)
                logits[0, :, y + dy, x + dx] = 0.0
                logits[0, cls, y + dy, x + dx] = gaps[i]
        radius[0, y - 1 : y + 2, x - 1 : x + 2] = 5.0 - i
        radius[0, y, x] += 0.5
    return logits, radius


def test_registry_names_and_presets() -> None:
    for required in ("random", "entropy", "ripu", "halo", "radius", "halo-nohfr", "featnorm"):
        assert required in STRATEGIES
    for name, cls in STRATEGIES.items():
        assert name == name.lower() and cls.name == name
        assert isinstance(cls.model_preset, dict)
        assert isinstance(cls.active_radius, int) and isinstance(cls.mask_radius, int)
    assert STRATEGIES["ripu"].mask_radius == 3
    assert STRATEGIES["ripu"].model_preset == {"head": "euclidean", "decoder_channels": 512}
    assert STRATEGIES["halo"].model_preset == {"head": "hyperbolic", "hfr": True}
    assert STRATEGIES["halo-nohfr"].model_preset == {"head": "hyperbolic", "hfr": False}
    assert STRATEGIES["featnorm"].model_preset == {"head": "euclidean"}
    assert STRATEGIES["entropy"].model_preset == {} == STRATEGIES["random"].model_preset
    for name in ("halo", "entropy", "random", "radius"):
        assert STRATEGIES[name].mask_radius == 5
    assert {n for n, c in STRATEGIES.items() if c.needs_radius} == {
        "halo",
        "halo-nohfr",
        "featnorm",
        "radius",
        "halo-src",
        "halo-src-inv",
        "halo-nl",
    }
    assert {n for n, c in STRATEGIES.items() if c.radius_from == "source"} == {
        "halo-src",
        "halo-src-inv",
    }
    assert {n for n, c in STRATEGIES.items() if c.needs_seed} == {"random", "random-nl"}
    for base in ("random", "entropy", "ripu", "halo"):  # the -nl twins select as their base
        twin = STRATEGIES[f"{base}-nl"]
        assert (
            issubclass(twin, STRATEGIES[base])
            and twin.model_preset == STRATEGIES[base].model_preset
        )
        assert METHODS[f"{base}-nl"].train == {"negative_learning": 1.0}
        assert METHODS[base].train == {}
    assert get_strategy_class("HALO") is HaloStrategy


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'coreset'; valid names: .*random"):
        build_strategy("coreset")


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("entropy", {"seed": 1}, "bad options"),
        ("halo", {"mask_radius": -1}, "mask_radius"),
        ("random", {"seed": "a"}, "seed must be an int"),
    ],
)
def test_bad_options_raise(name: str, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_strategy(name, **options)


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_scores_a_batch(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, C, 16, 24, generator=gen)
    radius = torch.rand(2, 4, 6, generator=gen) * 6  # decoder resolution
    strategy = build_strategy(name)
    a = strategy.acquisition_map(logits, radius)
    assert a.shape == (2, 16, 24) and a.is_floating_point()
    assert bool(torch.isfinite(a).all())
    sel = strategy.select(logits, radius=radius, round_budget=0.05)
    # the batch is the pool: floor(0.05 * 768) = 38 pixels at most, less than a region fewer
    assert 38 - 9 < int(sel.labelled.sum()) <= 38
    assert all(c.shape[0] >= 2 for c in sel.centres)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if not STRATEGIES[n].needs_seed and n != "halo-src-inv"]
)
def test_known_order_is_picked_in_order(name: str) -> None:
    logits, radius = known_order_batch()  # entropy and radius agree on the order
    sel = build_strategy(name).select(logits, radius=radius, round_budget=4 * 9 / (H * W))
    assert sel.centres[0].tolist() == [list(s) for s in SPOTS]


@pytest.mark.parametrize("name", ["halo", "radius"])
def test_radius_decides_when_entropy_is_flat_in_the_spots(name: str) -> None:
    # same entropy in every spot, radius order reversed: halo and radius follow the radius
    logits, radius = known_order_batch()
    for y, x in SPOTS:
        logits[0, :, y - 1 : y + 2, x - 1 : x + 2] = 0.0
    radius_rev = torch.ones_like(radius)
    for i, (y, x) in enumerate(SPOTS):
        radius_rev[0, y - 1 : y + 2, x - 1 : x + 2] = 2.0 + i
        radius_rev[0, y, x] += 0.5
    sel = build_strategy(name).select(logits, radius=radius_rev, round_budget=4 * 9 / (H * W))
    assert sel.centres[0].tolist() == [list(s) for s in reversed(SPOTS)]


@pytest.mark.parametrize("seed", range(3))
def test_scores_equal_their_formulas(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, C, 12, 20, generator=gen, dtype=torch.float64) * 2
    radius = torch.rand(2, 12, 20, generator=gen, dtype=torch.float64)
    ent = pixel_entropy(logits)
    torch.testing.assert_close(build_strategy("entropy").score(logits), window_sum(ent, 1))
    torch.testing.assert_close(
        build_strategy("ripu").score(logits), region_impurity(logits, 1) * window_mean(ent, 1)
    )
    halo = minmax_normalize(radius) * minmax_normalize(window_sum(ent, 1))
    for name in ("halo", "halo-nohfr", "featnorm"):
        torch.testing.assert_close(build_strategy(name).score(logits, radius), halo)
    torch.testing.assert_close(
        build_strategy("radius").score(logits, radius), minmax_normalize(radius)
    )
    # k follows active_radius
    torch.testing.assert_close(
        build_strategy("entropy", active_radius=2).score(logits), window_sum(ent, 2)
    )


def test_random_is_seeded_and_device_independent_of_global_rng() -> None:
    logits = torch.zeros(2, C, 10, 12)
    a = build_strategy("random", seed=7).score(logits)
    torch.manual_seed(123)  # the global RNG plays no part
    b = build_strategy("random", seed=7).score(logits)
    assert torch.equal(a, b)
    assert not torch.equal(a, build_strategy("random", seed=8).score(logits))
    s = build_strategy("random", seed=7)
    first, second = s.score(logits), s.score(logits)
    assert torch.equal(first, a) and not torch.equal(first, second)  # one continuing stream
    half = build_strategy("random", seed=7).score(logits.half())
    assert half.dtype == torch.float32 and torch.equal(half, a)


class _Fixed(Strategy):
    """A strategy returning a given map (not registered)."""

    name = "fixed"

    def __init__(self, values: torch.Tensor, **radii: int) -> None:
        super().__init__(**radii)
        self.values = values

    def score(self, logits: torch.Tensor, radius: torch.Tensor | None = None) -> torch.Tensor:
        return self.values


def test_non_finite_scores_are_never_chosen_before_finite_ones() -> None:
    values = torch.zeros(1, 8, 8)
    values[0, 0, 0] = float("nan")
    values[0, 0, 4] = float("inf")
    values[0, 4, 0] = -float("inf")
    values[0, 7, 7] = 1.0
    s = _Fixed(values, mask_radius=0, active_radius=0)
    a = s.acquisition_map(torch.zeros(1, 2, 8, 8))
    assert a[0, 0, 0] == a[0, 0, 4] == a[0, 4, 0] == -float("inf")
    sel = s.select(torch.zeros(1, 2, 8, 8), round_budget=1.0)
    order = [tuple(c) for c in sel.centres[0].tolist()]
    assert order[0] == (7, 7) and len(order) == 64
    # the three non-finite pixels come last, in row-major order
    assert order[-3:] == [(0, 0), (0, 4), (4, 0)]


def test_missing_or_bad_inputs_raise() -> None:
    logits = torch.zeros(2, C, 8, 8)
    with pytest.raises(ValueError, match="needs the model's radius"):
        build_strategy("halo").acquisition_map(logits)
    with pytest.raises(ValueError, match=r"radius must be \[B=2"):
        build_strategy("halo").acquisition_map(logits, torch.ones(1, 8, 8))
    with pytest.raises(ValueError, match="logits must be"):
        build_strategy("entropy").acquisition_map(torch.zeros(C, 8, 8))
    with pytest.raises(ValueError, match=r"score\(\) must return"):
        _Fixed(torch.zeros(2, 4, 4)).acquisition_map(logits)


def test_blocked_pixels_and_radii_overrides() -> None:
    logits, _ = known_order_batch()
    blocked = torch.zeros(1, H, W, dtype=torch.bool)
    y, x = SPOTS[0]
    blocked[0, y - 2 : y + 3, x - 2 : x + 3] = True
    strategy = build_strategy("entropy")
    sel = strategy.select(logits, round_budget=3 * 9 / (H * W), blocked=blocked)
    assert sel.centres[0].tolist() == [list(s) for s in SPOTS[1:]]
    assert bool(sel.blocked[blocked].all())
    wide = strategy.with_radii(active_radius=2, mask_radius=7)
    assert (wide.active_radius, wide.mask_radius) == (2, 7)
    assert (strategy.active_radius, strategy.mask_radius) == (1, 5)
    sel = wide.select(logits, round_budget=25 / (H * W))
    assert int(sel.labelled.sum()) == 25
