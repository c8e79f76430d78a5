"""halo.report.records: validation, the wide mIoU table and its row labels, run metrics (known
answers)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from halo import report
from tests.report.conftest import BENCH, R18, record, study


def test_budget_label() -> None:
    assert [report.budget_label(b) for b in (0.01, 0.022, 0.05, 0.001, 1.0)] == [
        "1%",
        "2.2%",
        "5%",
        "0.1%",
        "100%",
    ]


def test_miou_wide_table_and_markdown(tmp_path: Path) -> None:
    wide = report.miou_table(study())
    assert list(wide.columns) == ["0%", "1%", "2.2%", "100%"]
    assert wide.index.names == ["backbone", "method"]
    assert list(wide.index.get_level_values("method")) == [
        "source-only [euclidean-d512]",
        "source-only [hyperbolic-hfr]",
        "halo",
        "ripu",
        "supervised",
    ]
    assert wide.loc[(R18, "halo"), "1%"] == "42.0 ± 2.0"
    assert wide.loc[(R18, "halo"), "2.2%"] == "51.3 ± 1.5"
    assert wide.loc[(R18, "ripu"), "1%"] == "33.0 ± 3.0"
    assert wide.loc[(R18, "source-only [hyperbolic-hfr]"), "0%"] == "21.0 ± 1.4"
    assert wide.loc[(R18, "source-only [euclidean-d512]"), "0%"] == "18.0"  # one seed: no ±
    assert wide.loc[(R18, "supervised"), "100%"] == "65.4"
    assert wide.loc[(R18, "halo"), "0%"] == "" and wide.loc[(R18, "halo"), "100%"] == ""
    assert wide.loc[(R18, "supervised"), "1%"] == ""
    assert report.miou_table(study(), digits=2).loc[(R18, "halo"), "2.2%"] == "51.33 ± 1.53"

    report.write_miou_table(study(), tmp_path)
    md = (tmp_path / "miou_table.md").read_text()
    lines = md.splitlines()
    assert lines[0] == f"# mIoU (%) on {BENCH}"
    assert "mean ± sample std" in md and "1–3 seeds" in md
    header = next(ln for ln in lines if ln.startswith("| backbone"))
    assert header == "| backbone | method | 0% | 1% | 2.2% | 100% |"
    halo_row = next(ln for ln in lines if "| halo |" in ln)
    assert halo_row == f"| {R18} | halo |  | 42.0 ± 2.0 | 51.3 ± 1.5 |  |"
    assert f"| {R18} | source-only [euclidean-d512] | 18.0 |  |  |  |" in lines
    assert f"| {R18} | supervised |  |  |  | 65.4 |" in lines


def test_single_variant_rows_are_not_suffixed_and_seed_count_is_named(tmp_path: Path) -> None:
    recs = [r for r in study() if r["kind"] == "active"]
    recs += [record("source", "source", "hyperbolic-hfr", s, 20.0 + s) for s in range(3)]
    wide = report.miou_table(recs)
    assert list(wide.columns) == ["0%", "1%", "2.2%"]  # no supervised run: no 100% column
    assert list(wide.index.get_level_values("method")) == ["source-only", "halo", "ripu"]
    report.write_miou_table(recs, tmp_path)
    assert "over 3 seeds;" in (tmp_path / "miou_table.md").read_text()


def test_run_metrics_lists_every_run() -> None:
    metrics = report.run_metrics(study())
    runs = metrics[R18]
    assert runs["halo 1%"]["seed2"]["miou"] == 44.0
    assert runs["halo 1%"]["seed0"]["budget_used"] == pytest.approx(0.01)
    assert runs["ripu 2.2%"]["seed1"]["miou"] == 54.0
    assert runs["source-only [hyperbolic-hfr]"]["seed1"] == {"miou": 22.0}
    assert runs["source-only [euclidean-d512]"]["seed0"] == {"miou": 18.0}
    assert runs["supervised [hyperbolic-hfr]"]["seed0"] == {"miou": 65.4}
    assert sum(len(seeds) for seeds in runs.values()) == len(study())


def test_bad_records_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no run records"):
        report.build_report([], tmp_path, benchmark=BENCH)
    with pytest.raises(ValueError, match="no run records"):
        report.miou_table([])
    mixed = [
        *study(),
        record("halo", "active", "hyperbolic-hfr", 9, 1.0, budget=0.01, benchmark="x"),
    ]
    for fn in (report.miou_table, report.per_class_table, report.radius_vs_frequency):
        with pytest.raises(ValueError, match="mix benchmarks"):
            fn(mixed)
    with pytest.raises(ValueError, match="mix benchmarks"):
        report.build_report(mixed, tmp_path, benchmark=BENCH)
    with pytest.raises(ValueError, match="not 'other'"):
        report.build_report(study(), tmp_path, benchmark="other")
    dup = [*study(), copy.deepcopy(study()[0])]
    with pytest.raises(ValueError, match="share their identity"):
        report.miou_long(dup)
    broken = study()
    del broken[3]["variant"]
    with pytest.raises(ValueError, match="record 3 lacks variant"):
        report.miou_long(broken)
    assert not list(tmp_path.iterdir())
