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


def test_run_metrics_is_method_budget_mean_and_seeds() -> None:
    metrics = report.run_metrics(study())
    assert list(metrics) == [
        "source-only [euclidean-d512]",
        "source-only [hyperbolic-hfr]",
        "halo",
        "ripu",
        "supervised",
    ]
    assert metrics["halo"]["1%"]["seed2"] == 44.0
    assert metrics["ripu"]["2.2%"]["seed1"] == 54.0
    halo = metrics["halo"]["1%"]
    seeds = [v for k, v in halo.items() if k.startswith("seed")]
    assert halo["mean"] == pytest.approx(sum(seeds) / len(seeds))
    assert metrics["source-only [hyperbolic-hfr]"]["0%"]["seed1"] == 22.0
    assert metrics["source-only [euclidean-d512]"]["0%"] == {"mean": 18.0, "seed0": 18.0}
    assert metrics["supervised"]["100%"] == {"mean": 65.4, "seed0": 65.4}
    assert sum(
        len([k for k in cell if k.startswith("seed")])
        for budgets in metrics.values()
        for cell in budgets.values()
    ) == len(study())
    undefined = [dict(r, miou=None) if r["method"] == "ripu" else r for r in study()]
    assert report.run_metrics(undefined)["ripu"]["1%"]["mean"] is None


def test_run_metrics_name_the_backbone_when_there_are_several() -> None:
    recs = [
        *study(),
        record("halo", "active", "hyperbolic-hfr", 0, 40.0, budget=0.01, backbone="r101"),
    ]
    metrics = report.run_metrics(recs)
    assert metrics["halo · r101"]["1%"] == {"mean": 40.0, "seed0": 40.0}
    assert f"halo · {R18}" in metrics


def test_plot_tables_hold_the_budget_curve_and_the_rounds() -> None:
    recs = [dict(r, start_miou=10.0) if r["kind"] == "active" else r for r in study()]
    budget, rounds = report.plot_tables(recs)
    assert list(budget.columns) == ["series", "budget", "miou", "seeds"]
    halo = budget[budget["series"] == "halo"].set_index("budget")
    assert list(halo.index) == [1.0, 2.2]
    assert halo.loc[1.0, "miou"] == pytest.approx(report.run_metrics(recs)["halo"]["1%"]["mean"])
    assert budget[budget["series"] == "supervised"]["budget"].tolist() == [100.0]
    assert list(rounds.columns) == ["series", "round", "miou", "seeds"]
    first = rounds[rounds["series"] == "halo 1%"]
    assert first["round"].tolist() == [0, 1] and first["miou"].iloc[0] == 10.0
    assert set(rounds["series"]) == {"halo 1%", "halo 2.2%", "ripu 1%", "ripu 2.2%"}
    _, no_start = report.plot_tables(study())
    assert 0 not in no_start["round"].tolist()


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
