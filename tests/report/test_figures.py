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
        "pixels_allowed": 9,
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


def test_point_labels_are_moved_apart_until_none_overlaps() -> None:
    """Clustered class labels (as bus, fence, person, traffic light are in the study) end up
    with no two boxes overlapping, and a lone label stays where it was."""
    from halo.report.figures import _declutter, _new_figure

    fig = _new_figure((6.4, 4.8))
    ax = fig.add_subplot()
    xs = [1.0, 1.02, 1.04, 1.05, 1.07, 3.0]
    ys = [2.0, 2.001, 1.999, 2.002, 2.0, 2.5]
    ax.scatter(xs, ys)
    ax.set_xlim(0, 4)
    ax.set_ylim(1, 3)
    labels = [
        ax.annotate(f"class {i}", (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    before = [t.get_window_extent(renderer) for t in labels]
    assert any(a.overlaps(b) for i, a in enumerate(before) for b in before[i + 1 :])
    _declutter(fig, labels)
    after = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(after) for b in after[i + 1 :])
    assert labels[-1].xyann == (3, 3)
