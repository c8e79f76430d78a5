"""halo.report.radius: correlations (known answers, scipy), the chosen runs, radius vs frequency."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from halo import report
from tests.report.conftest import R18, RADII, assert_png, record, study


def test_pearson_and_spearman_known_answers() -> None:
    x = np.array([0.5, 0.3, 0.15, 0.05])
    assert report.pearson_r(-2 * x + 1, x) == pytest.approx(-1.0)
    assert report.pearson_r(3 * x, x) == pytest.approx(1.0)
    assert report.spearman_rho(np.exp(-x), x) == pytest.approx(-1.0)  # monotone, not linear
    # hand-computed: x = 1..4, y = 1, 3, 2, 4: r = 0.8; ranks equal values
    assert report.pearson_r([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert report.spearman_rho([10, 20, 30, 40], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties get the mean rank: ranks of y = 1, 2.5, 2.5, 4
    assert report.spearman_rho([1, 2, 3, 4], [0, 5, 5, 9]) == pytest.approx(
        report.pearson_r([1, 2, 3, 4], [1, 2.5, 2.5, 4])
    )
    assert report.pearson_r([1, 2], [2, 1]) is None  # too few points
    assert report.pearson_r([1, 1, 1], [1, 2, 3]) is None  # no spread


def test_correlations_agree_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.random(19)
    y = np.round(-x + 0.3 * rng.random(19), 1)  # ties in y
    assert report.pearson_r(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert report.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_radius_prefers_halo_at_its_largest_budget(tmp_path: Path) -> None:
    frame, stats = report.radius_vs_frequency(study())
    assert stats["skipped"] is None
    assert stats["radius_source"] == {
        "backbone": R18,
        "method": "halo",
        "variant": "hyperbolic-hfr",
        "kind": "active",
        "budget": 0.022,
        "seeds": [0, 1, 2],
        "rule": "halo at its largest budget",
    }
    assert list(frame.columns) == ["class", "pixel_share", "mean_radius"]
    assert list(frame["class"]) == ["road", "car", "bike", "pole"]  # "rare": no share
    np.testing.assert_allclose(frame["pixel_share"], [0.5, 0.3, 0.15, 0.05])
    np.testing.assert_allclose(frame["mean_radius"], [0.0, 0.4, 0.7, 0.9], atol=1e-12)
    assert stats["pearson_r"] == pytest.approx(-1.0)
    assert stats["spearman_rho"] == pytest.approx(-1.0)
    assert stats["n_classes"] == 4

    paths, stats2 = report.write_radius_vs_frequency(study(), tmp_path)
    assert [p.name for p in paths] == ["radius_vs_frequency.csv", "radius_vs_frequency.png"]
    assert stats2 == stats
    csv = pd.read_csv(paths[0])
    assert list(csv.columns) == ["class", "pixel_share", "mean_radius"]
    assert list(csv["class"]) == ["road", "car", "bike", "pole"]
    np.testing.assert_allclose(csv["mean_radius"], [0.0, 0.4, 0.7, 0.9], atol=1e-12)
    assert_png(paths[1])


def test_without_halo_the_radius_comes_from_the_hyperbolic_source_model_with_most_seeds() -> None:
    """A one-seed ablation's source model ("hyperbolic", sorting first by name) never stands for
    the study's source model (three seeds of "hyperbolic-hfr")."""
    recs = [record("source", "source", "hyperbolic", 0, 20.0)]
    recs += [record("source", "source", "hyperbolic-hfr", s, 20.0) for s in range(3)]
    recs += [record("random", "active", "hyperbolic-hfr", 0, 30.0, budget=0.05)]
    _, stats = report.radius_vs_frequency(recs)
    got = stats["radius_source"]
    assert (got["variant"], got["seeds"], got["rule"]) == (
        "hyperbolic-hfr",
        [0, 1, 2],
        "hyperbolic source-only model",
    )
    _, stats = report.radius_vs_frequency(recs[:1] + recs[-1:])  # the only source model: taken
    assert stats["radius_source"]["variant"] == "hyperbolic"


def test_radius_correlations_per_group_and_over_learned_classes() -> None:
    frame = report.radius_correlations(study())
    # every group with radii (the Euclidean ripu and source runs have them too in these fakes)
    keys = list(zip(frame["method"], frame["variant"], frame["budget"], strict=True))
    assert keys == [
        ("source", "euclidean-d512", 0.0),
        ("source", "hyperbolic-hfr", 0.0),
        ("halo", "hyperbolic-hfr", 0.01),
        ("ripu", "euclidean-d512", 0.01),
        ("halo", "hyperbolic-hfr", 0.022),
        ("ripu", "euclidean-d512", 0.022),
        ("supervised", "hyperbolic-hfr", 1.0),
    ]
    row = frame.set_index(["method", "budget"])
    halo22 = row.loc[("halo", 0.022)]
    assert halo22["n_seeds"] == 3 and halo22["n_classes"] == 4  # "rare" has no share
    assert halo22["pearson_r"] == pytest.approx(-1.0)
    assert halo22["spearman_rho"] == pytest.approx(-1.0)
    assert halo22["n_learned"] == 4  # IoU 50 everywhere
    assert halo22["pearson_r_learned"] == pytest.approx(-1.0)
    assert row.loc[("halo", 0.01), "pearson_r"] == pytest.approx(1.0)  # radii negated
    # source: road radius 2, every other class 1 -> positive; constant radius -> undefined
    by_variant = frame[frame["method"] == "source"].set_index("variant")
    assert by_variant.loc["hyperbolic-hfr", "pearson_r"] > 0
    assert math.isnan(by_variant.loc["euclidean-d512", "pearson_r"])
    assert math.isnan(row.loc[("supervised", 1.0), "pearson_r"])
    assert math.isnan(row.loc[("supervised", 1.0), "spearman_rho_learned"])

    # learned classes only: a class the model never gets right (IoU < 20) leaves the subset
    recs = [
        record(
            "halo",
            "active",
            "hyperbolic-hfr",
            0,
            40.0,
            budget=0.05,
            iou={"road": 90.0, "car": 60.0, "bike": 30.0, "pole": 0.0, "rare": None},
            # pole, never learned, sits near the origin: over all classes r > -1
            radii={"road": 0.0, "car": 0.4, "bike": 0.7, "pole": 0.1, "rare": 1.0},
        )
    ]
    one = report.radius_correlations(recs).iloc[0]
    assert one["n_classes"] == 4 and one["n_learned"] == 3
    assert one["pearson_r"] > -0.9
    # road, car, bike: radius = -2 * share + 1 exactly
    assert one["pearson_r_learned"] == pytest.approx(-1.0)


def test_radius_falls_back_to_hyperbolic_source_then_skips(tmp_path: Path) -> None:
    no_halo = [r for r in study() if r["method"] != "halo"]
    frame, stats = report.radius_vs_frequency(no_halo)
    src = stats["radius_source"]
    assert (src["method"], src["variant"], src["kind"], src["budget"], src["seeds"]) == (
        "source",
        "hyperbolic-hfr",
        "source",
        None,
        [0, 1],
    )
    # source seeds: road radius 2.0, the other classes 1.0
    assert dict(zip(frame["class"], frame["mean_radius"], strict=True)) == {
        "road": 2.0,
        "car": 1.0,
        "bike": 1.0,
        "pole": 1.0,
    }
    # a class whose radius is None in every seed is dropped too
    recs = [
        record(
            "halo", "active", "hyperbolic-hfr", 0, 40.0, budget=0.05, radii=RADII | {"car": None}
        )
    ]
    frame, _ = report.radius_vs_frequency(recs)
    assert list(frame["class"]) == ["road", "bike", "pole"]

    euclid = [r for r in no_halo if not r["variant"].startswith("hyperbolic")]
    frame, stats = report.radius_vs_frequency(euclid)
    assert frame.empty and stats["radius_source"] is None and "no record" in stats["skipped"]
    paths, _ = report.write_radius_vs_frequency(euclid, tmp_path)
    assert paths == [] and not list(tmp_path.iterdir())


def test_group_correlations_of_bare_metrics_match_the_report() -> None:
    """halo evaluate outputs (no run identity) give the report's correlations of their group;
    class values are averaged over the group first, skipping undefined ones."""
    from halo.report.radius import class_means, group_correlations

    recs = [r for r in study() if r["method"] == "halo" and r.get("budget") == 0.022]
    fields = ("class_names", "per_class_iou", "class_pixel_share", "class_mean_radius")
    bare = [{k: r[k] for k in fields if k in r} for r in recs]
    row = report.radius_correlations(recs).iloc[0]
    got = group_correlations(bare)
    for key, value in got.items():
        assert row[key] == pytest.approx(value, nan_ok=True), key
    one = dict(bare[0], class_mean_radius=dict(bare[0]["class_mean_radius"], road=None))
    frame = class_means([one, bare[1]]).set_index("class")
    assert frame.at["road", "mean_radius"] == bare[1]["class_mean_radius"]["road"]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(4, 25))
def test_partial_r_is_the_formula_of_the_three_correlations(seed: int, n: int) -> None:
    """partial_r(x, y | z) = (r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²))."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x = 2 * z + rng.normal(size=n)
    y = -z + rng.normal(size=n)
    rxy, rxz, ryz = (report.pearson_r(a, b) for a, b in ((x, y), (x, z), (y, z)))
    expected = (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))
    assert report.partial_r(x, y, z) == pytest.approx(expected, abs=1e-9)
    assert report.partial_r(x, y, z) == pytest.approx(report.partial_r(y, x, z), abs=1e-12)


def test_partial_r_of_a_relation_through_the_covariate_is_zero() -> None:
    """Radius that follows IoU only, and share that follows IoU only: r(radius, share) is large,
    the partial r given IoU is 0."""
    iou = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    # two noises orthogonal to each other and to (1, iou): what is left after the IoU
    q, _ = np.linalg.qr(np.stack([np.ones(6), iou, [1, 0, 2, 0, 1, 5], [0, 3, 0, 1, 4, 1]], 1))
    radius, share = 0.1 * iou + 1.0 + 0.2 * q[:, 2], 3.0 * iou - 2.0 + 5 * q[:, 3]
    assert report.pearson_r(radius, share) > 0.95
    assert report.partial_r(radius, share, iou) == pytest.approx(0.0, abs=1e-9)
    assert report.partial_r(0.1 * iou, share, iou) is None  # all of it through the IoU
    assert report.partial_r([1, 2, 3], [1, 2, 3], [1, 2, 3]) is None  # < 4 points
    with pytest.raises(ValueError, match="partial_r"):
        report.partial_r([1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4])
