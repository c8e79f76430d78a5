"""halo.report.tables: the mIoU CSV, per-class and acquired-class tables, training stability
(known answers)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from halo import report
from tests.report.conftest import ACTIVE, BENCH, CLASSES, R18, study


def test_the_miou_page_is_the_markdown_table(tmp_path: Path) -> None:
    """miou_table.html holds the Markdown table's cells, row by row, in a page that loads nothing
    (no script, no link, no external source) and escapes the names it shows."""
    import html
    import re

    records = [
        {**r, "method": "halo<b>" if r["method"] == "halo" else r["method"]} for r in study()
    ]
    report.write_miou_table(records, tmp_path)
    page = (tmp_path / "miou_table.html").read_text()
    assert not re.search(r"<script|<link|src=|href=|@import", page)
    assert "halo<b>" not in page and "halo&lt;b&gt;" in page
    md_rows = [
        [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        for line in (tmp_path / "miou_table.md").read_text().splitlines()
        if line.startswith("| ")
    ]
    html_rows = [
        [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", page)
    ]
    assert html_rows == md_rows and len(html_rows) > 3


def test_miou_csv_known_answer(tmp_path: Path) -> None:
    paths = report.write_miou_table(study(), tmp_path)
    assert [p.name for p in paths] == [
        "miou_table.csv",
        "miou_table.md",
        "miou_table.html",
        "runs.csv",
    ]
    csv = pd.read_csv(tmp_path / "miou_table.csv")
    assert list(csv.columns) == [
        "backbone",
        "method",
        "variant",
        "budget",
        "n_seeds",
        "mean",
        "std",
        "labelled_fraction",
    ]
    # the records label exactly their budget; source-only and supervised label nothing
    active = csv[~csv["method"].isin(["source", "supervised"])]
    assert np.allclose(active["labelled_fraction"], active["budget"])
    assert csv.loc[csv["method"].isin(["source", "supervised"]), "labelled_fraction"].isna().all()
    runs = pd.read_csv(tmp_path / "runs.csv", dtype={"round_miou": str})
    assert len(runs) == 3 * len(ACTIVE) + 2 + 1 + 1
    for (method, _variant, budget), values in ACTIVE.items():
        seeds = runs[(runs["method"] == method) & (runs["budget"] == budget)]
        assert seeds["seed"].tolist() == [0, 1, 2]
        assert seeds["miou"].tolist() == pytest.approx(list(values))
        # one round each (the records' evaluation): its mIoU, exactly (rounding is the display's)
        assert [float(x) for x in seeds["round_miou"]] == list(values)
    assert runs.loc[~runs["kind"].eq("active"), "round_miou"].isna().all()
    # the pixels each budget column labelled, next to the table
    md = (tmp_path / "miou_table.md").read_text()
    assert md.rstrip().endswith("1%: 1.0000 %; 2.2%: 2.2000 %.")
    rows = {(r.method, r.variant, r.budget): r for r in csv.itertuples()}
    assert len(rows) == len(csv) == 7
    for (method, variant, budget), values in ACTIVE.items():
        row = rows[(method, variant, budget)]
        assert row.n_seeds == 3
        assert row.mean == pytest.approx(np.mean(values))
        assert row.std == pytest.approx(np.std(values, ddof=1))
    assert rows[("halo", "hyperbolic-hfr", 0.022)].std == pytest.approx(math.sqrt(7 / 3))
    src = rows[("source", "hyperbolic-hfr", 0.0)]
    assert (src.n_seeds, src.mean, src.std) == (2, 21.0, pytest.approx(math.sqrt(2)))
    one = rows[("source", "euclidean-d512", 0.0)]
    assert (one.n_seeds, one.mean) == (1, 18.0) and math.isnan(one.std)
    sup = rows[("supervised", "hyperbolic-hfr", 1.0)]
    assert (sup.n_seeds, sup.mean) == (1, 65.4) and math.isnan(sup.std)
    # order: source rows, active methods, supervised
    assert list(csv["method"]) == ["source", "source", "halo", "halo", "ripu", "ripu", "supervised"]
    # one-seed std is an empty field in the file itself
    line = next(ln for ln in (tmp_path / "miou_table.csv").read_text().splitlines() if "65.4" in ln)
    assert line.endswith("65.4,,")


def test_per_class_known_answer(tmp_path: Path) -> None:
    path = report.write_per_class_table(study(), tmp_path)
    assert path == tmp_path / "per_class.csv"
    csv = pd.read_csv(path)
    assert list(csv.columns) == [
        "backbone",
        "method",
        "variant",
        "budget",
        "n_seeds",
        *CLASSES,
    ]
    assert len(csv) == 7
    row = csv[(csv["method"] == "halo") & (csv["budget"] == 0.01)].iloc[0]
    assert row["n_seeds"] == 3
    assert row["road"] == pytest.approx(92.0)
    assert row["car"] == pytest.approx(60.0)  # mean over the seeds where it is defined
    assert row["bike"] == pytest.approx(50.0)
    assert math.isnan(row["rare"])  # None in every seed
    # the empty field in the file itself
    text = path.read_text().splitlines()
    halo_line = next(ln for ln in text if ln.startswith(f"{R18},halo,hyperbolic-hfr,0.01,"))
    assert halo_line.endswith(",92.0,60.0,50.0,50.0,")
    sup = csv[csv["method"] == "supervised"].iloc[0]
    assert sup["budget"] == 1.0 and sup["rare"] == 50.0


def test_labelled_class_counts_and_acquired_table(tmp_path: Path) -> None:
    masks = [np.array([[0, 255, 1], [1, 1, 255]], np.uint8), np.array([[3, 3, 255]], np.uint8)]
    np.testing.assert_array_equal(report.labelled_class_counts(masks, 5), [1, 3, 0, 2, 0])
    with pytest.raises(ValueError, match=r"ids \[7\] >= 5"):
        report.labelled_class_counts([np.array([[7]], np.uint8)], 5)

    recs = study()
    counts = []
    for r in recs:
        if r["kind"] != "active":
            counts.append(None)
        elif r["method"] == "halo":  # seeds: all road / half road, half car / all car ...
            counts.append(np.array([[4, 0, 0, 0, 0], [2, 2, 0, 0, 0], [0, 4, 0, 0, 0]][r["seed"]]))
        else:
            counts.append(np.array([1, 1, 1, 1, 0]))
    table = report.acquired_class_table(recs, counts)
    assert list(table.columns) == ["backbone", "method", "variant", "budget", "n_seeds", *CLASSES]
    assert list(zip(table["method"], table["budget"], strict=True)) == [
        ("halo", 0.01),
        ("halo", 0.022),
        ("ripu", 0.01),
        ("ripu", 0.022),
    ]
    halo = table.iloc[0]
    assert halo["n_seeds"] == 3
    assert halo["road"] == pytest.approx(50.0) and halo["car"] == pytest.approx(50.0)
    assert table.iloc[2][CLASSES].tolist() == [25.0, 25.0, 25.0, 25.0, 0.0]
    with pytest.raises(ValueError, match="3 count vectors for"):
        report.acquired_class_table(recs, counts[:3])

    summary = report.build_report(recs, tmp_path, benchmark=BENCH, acquired=counts)
    assert "acquired_classes.csv" in summary["files"]
    assert pd.read_csv(tmp_path / "acquired_classes.csv").shape == (4, 5 + len(CLASSES))


def test_training_stability_flags_loss_spikes(tmp_path: Path) -> None:
    recs = study()
    losses = []
    for r in recs:
        if r["kind"] != "active":
            losses.append(None)
        elif (r["method"], r["budget"], r["seed"]) == ("ripu", 0.01, 1):
            losses.append([2.0, 1.5, 40.0, 30.0, 3.0])  # blew up in the middle, ended finite
        elif (r["method"], r["budget"], r["seed"]) == ("halo", 0.022, 2):
            losses.append([2.0, 9.9, 1.0])  # 4.95x: under the threshold
        else:
            losses.append([2.0, 1.8, 1.2])
    table = report.training_stability(recs, losses)
    assert len(table) == 12  # the active runs only
    assert table["unstable"].tolist().count(True) == 1
    bad = table[table["unstable"]].iloc[0]
    assert (bad["method"], bad["budget"], bad["seed"]) == ("ripu", 0.01, 1)
    assert (bad["start_loss"], bad["peak_loss"], bad["peak_step"], bad["final_loss"]) == (
        2.0,
        40.0,
        2,
        3.0,
    )
    assert report.training_stability(recs, losses, factor=4.9)["unstable"].sum() == 2
    with pytest.raises(ValueError, match="3 loss lists for"):
        report.training_stability(recs, losses[:3])
    # (step, loss) pairs: the peak's step is the step's number, not its position
    pairs = [None if x is None else [[10 * i + 5, v] for i, v in enumerate(x)] for x in losses]
    steps = report.training_stability(recs, pairs)
    assert steps.loc[steps["unstable"], "peak_step"].tolist() == [25]
    with pytest.raises(ValueError, match="factor must be > 1"):
        report.training_stability(recs, losses, factor=1.0)

    summary = report.build_report(recs, tmp_path, benchmark=BENCH, losses=losses)
    assert "training_stability.csv" in summary["files"]
    assert summary["unstable_runs"] == [{"method": "ripu", "budget": 0.01, "seed": 1}]
    md = (tmp_path / "miou_table.md").read_text()
    assert "**Unstable training** in 1 of 12 active runs" in md
    assert "ripu 1% seed 1 (loss 2 → 40" in md

    calm = [None if x is None else [2.0, 1.0] for x in losses]
    summary = report.build_report(recs, tmp_path / "calm", benchmark=BENCH, losses=calm)
    assert summary["unstable_runs"] == []
    assert "Unstable" not in (tmp_path / "calm" / "miou_table.md").read_text()
