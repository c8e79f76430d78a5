"""halo.report.figures: real matplotlib (Agg), valid PNGs, no temporaries left."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from halo import report
from tests.report.conftest import assert_png, record, study


def test_budget_curve_png(tmp_path: Path) -> None:
    extra = record(
        "halo", "active", "hyperbolic-hfr", 0, 45.0, budget=0.01, backbone="segformer-b0"
    )
    recs = [*study(), extra]
    path = report.budget_curve(recs, tmp_path / "sub" / "budget_curve.png")
    assert path == tmp_path / "sub" / "budget_curve.png"
    assert_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["budget_curve.png"]  # no temporaries


def test_acquisition_figures_from_plain_arrays(tmp_path: Path) -> None:
    """Panels are plain arrays (no model needed); repeated ids get unique file names."""
    rng = np.random.default_rng(0)
    h, w = 24, 48
    score = rng.random((h, w)).astype(np.float32)
    score[0, :5] = -np.inf  # never chosen: drawn blank
    selected = np.zeros((h, w), bool)
    selected[3:6, 10:13] = True
    panel = {
        "id": "a/b",
        "strategy": "halo",
        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "radius": rng.random((h, w)).astype(np.float32),
        "entropy": rng.random((h, w)).astype(np.float32),
        "score": score,
        "selected": selected,
        "centres": np.array([[4, 11]], np.int64),
        "regions_requested": 1,
        "round_budget": 0.01,
        "active_radius": 1,
        "mask_radius": 5,
    }
    panels = [panel, panel, dict(panel, radius=None), dict(panel, id="x y?")]
    paths = report.write_acquisition_figures(panels, tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "acquisition/a__b.png",
        "acquisition/a__b-halo.png",
        "acquisition/a__b-halo-2.png",
        "acquisition/x_y.png",
    ]
    for p in paths:
        assert_png(p)
    assert sorted(p.name for p in (tmp_path / "acquisition").iterdir()) == sorted(
        p.name for p in paths
    )  # no temporaries
