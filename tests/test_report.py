"""The report: tables (known answers), figures (real matplotlib, valid PNGs), radius statistics
and the acquisition panels with the real segmenter."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from halo import report
from halo.acquisition.scores import pixel_entropy, window_sum
from halo.acquisition.strategies import build_strategy
from halo.data import build_dataset
from halo.data.synthetic import write_dataset
from halo.models.segmenter import build_backbone
from halo.runs import run_record

BENCH = "synth-gta2cs"
R18 = "deeplabv3plus-r18"
CLASSES = ["road", "car", "bike", "pole", "rare"]
SHARES = {"road": 0.5, "car": 0.3, "bike": 0.15, "pole": 0.05, "rare": None}
# radius = -2 * share + 1 exactly (Pearson r = -1); "rare" has no share, so it is dropped
RADII = {"road": 0.0, "car": 0.4, "bike": 0.7, "pole": 0.9, "rare": 3.0}

# (method, variant, budget) -> mIoU per seed 0, 1, 2
ACTIVE = {
    ("halo", "hyperbolic-hfr", 0.01): [40.0, 42.0, 44.0],  # 42.0 ± 2.0
    ("halo", "hyperbolic-hfr", 0.022): [50.0, 51.0, 53.0],  # 51.333 ± 1.528
    ("ripu", "euclidean-d512", 0.01): [30.0, 33.0, 36.0],  # 33.0 ± 3.0
    ("ripu", "euclidean-d512", 0.022): [52.0, 54.0, 50.0],  # 52.0 ± 2.0
}


def record(
    method: str,
    kind: str,
    variant: str,
    seed: int,
    miou: float | None,
    *,
    budget: float | None = None,
    iou: dict | None = None,
    shares: dict | None = None,
    radii: dict | None = None,
    backbone: str = R18,
    benchmark: str = BENCH,
) -> dict:
    """A record built by halo.runs.run_record from a fake evaluation (one round if active)."""
    metrics = {
        "miou": miou,
        "miou13": None,
        "per_class_iou": iou or dict.fromkeys(CLASSES, 50.0),
        "class_names": list(CLASSES),
        "class_pixel_share": shares or dict(SHARES),
        "class_mean_radius": radii or dict.fromkeys(CLASSES, 1.0),
        "step": 100,
    }
    budgets = []
    if kind == "active":
        budgets = [
            {
                "round": 1,
                "pixels_labelled_cumulative": 10,
                "fraction_cumulative": budget,
                "regions": 2,
            }
        ]
    identity = {"benchmark": benchmark, "backbone": backbone, "method": method, "seed": seed}
    return run_record(
        **identity,
        kind=kind,
        variant=variant,
        metrics=[metrics],
        budgets=budgets,
        budget=budget if kind == "active" else None,
    )


def study() -> list[dict]:
    """2 methods x 2 budgets x 3 seeds, source-only of two variants, supervised with one seed."""
    recs = []
    for (method, variant, budget), values in ACTIVE.items():
        for seed, miou in enumerate(values):
            iou = dict.fromkeys(CLASSES, 50.0) | {"rare": None}
            radii = dict.fromkeys(CLASSES, 1.0)
            if (method, budget) == ("halo", 0.01):
                iou |= {"road": 90.0 + 2 * seed, "car": [50.0, None, 70.0][seed]}
            if (method, budget) == ("halo", 0.022):
                # the seeds scatter around RADII and average back to it
                radii = {c: r + 0.1 * (seed - 1) for c, r in RADII.items()}
            if (method, budget) == ("halo", 0.01):
                radii = {c: -r for c, r in RADII.items()}  # would give r = +1
            recs.append(
                record(method, "active", variant, seed, miou, budget=budget, iou=iou, radii=radii)
            )
    for seed, miou in enumerate([20.0, 22.0]):  # 21.0 ± 1.414
        recs.append(
            record(
                "source",
                "source",
                "hyperbolic-hfr",
                seed,
                miou,
                radii=dict.fromkeys(CLASSES, 1.0) | {"road": 2.0},
            )
        )
    recs.append(record("source", "source", "euclidean-d512", 0, 18.0))
    recs.append(record("supervised", "supervised", "hyperbolic-hfr", 0, 65.4))
    return recs


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > 50 and img.size[1] > 50


# ------------------------------------------------------------------------------------------
# tables


def test_budget_label() -> None:
    assert [report.budget_label(b) for b in (0.01, 0.022, 0.05, 0.001, 1.0)] == [
        "1%",
        "2.2%",
        "5%",
        "0.1%",
        "100%",
    ]


def test_miou_csv_known_answer(tmp_path: Path) -> None:
    paths = report.write_miou_table(study(), tmp_path)
    assert [p.name for p in paths] == ["miou_table.csv", "miou_table.md"]
    csv = pd.read_csv(tmp_path / "miou_table.csv")
    assert list(csv.columns) == [
        "backbone",
        "method",
        "variant",
        "budget",
        "n_seeds",
        "mean",
        "std",
    ]
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
    assert line.endswith("65.4,")


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


# ------------------------------------------------------------------------------------------
# radius vs frequency


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
    assert (bad["start_loss"], bad["peak_loss"], bad["peak_at"], bad["final_loss"]) == (
        2.0,
        40.0,
        2,
        3.0,
    )
    assert report.training_stability(recs, losses, factor=4.9)["unstable"].sum() == 2
    with pytest.raises(ValueError, match="3 loss lists for"):
        report.training_stability(recs, losses[:3])
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


# ------------------------------------------------------------------------------------------
# figures and the whole report


def test_budget_curve_png(tmp_path: Path) -> None:
    extra = record(
        "halo", "active", "hyperbolic-hfr", 0, 45.0, budget=0.01, backbone="segformer-b0"
    )
    recs = [*study(), extra]
    path = report.budget_curve(recs, tmp_path / "sub" / "budget_curve.png")
    assert path == tmp_path / "sub" / "budget_curve.png"
    assert_png(path)
    assert [p.name for p in path.parent.iterdir()] == ["budget_curve.png"]  # no temporaries


def test_build_report_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "results" / BENCH
    summary = report.build_report(study(), out, benchmark=BENCH)
    assert summary["files"] == [
        "miou_table.csv",
        "miou_table.md",
        "per_class.csv",
        "budget_curve.png",
        "radius_vs_frequency.csv",
        "radius_vs_frequency.png",
        "radius_correlations.csv",
        "metrics.json",
        "summary.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    for name in summary["files"]:
        if name.endswith(".png"):
            assert_png(out / name)
    assert summary["pearson_r"] == pytest.approx(-1.0)
    assert summary["radius_source"]["budget"] == 0.022
    assert summary["radius_skipped"] is None
    best = summary["best"][R18]
    assert best["1%"]["method"] == "halo" and best["1%"]["mean"] == pytest.approx(42.0)
    assert best["1%"]["runner_up"] == "ripu" and best["1%"]["margin"] == pytest.approx(9.0)
    assert best["2.2%"]["method"] == "ripu" and best["2.2%"]["std"] == pytest.approx(2.0)
    assert set(best) == {"1%", "2.2%"}
    text = json.dumps(summary, allow_nan=False)  # JSON-ready, no NaN
    assert json.loads((out / "summary.json").read_text()) == json.loads(text)


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


def test_build_report_without_radius_says_so(tmp_path: Path) -> None:
    recs = [r for r in study() if not r["variant"].startswith("hyperbolic")]
    summary = report.build_report(recs, tmp_path, benchmark=BENCH)
    assert "radius_vs_frequency.csv" not in summary["files"]
    assert summary["pearson_r"] is None and summary["radius_source"] is None
    assert "no record" in summary["radius_skipped"]
    assert summary["best"][R18]["1%"]["method"] == "ripu"


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


# ------------------------------------------------------------------------------------------
# acquisition panels with the real segmenter

H, W = 32, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cityscapes")
    write_dataset("cityscapes", root, split="val", count=2, size=(H, W), seed=0, progress=False)
    return build_dataset("cityscapes", root, "val")


@pytest.fixture(scope="module")
def hyperbolic_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(R18, 19, encoder_weights=None)


@pytest.fixture(scope="module")
def euclidean_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_backbone(R18, 19, encoder_weights=None, head="euclidean")


def window_pixels(centres: np.ndarray, a: int) -> int:
    """Pixels in the (2a+1)² windows around centres, clipped at the border (no overlaps)."""
    rows = np.minimum(centres[:, 0] + a, H - 1) - np.maximum(centres[:, 0] - a, 0) + 1
    cols = np.minimum(centres[:, 1] + a, W - 1) - np.maximum(centres[:, 1] - a, 0) + 1
    return int((rows * cols).sum())


def test_halo_panels_match_the_strategy(target, hyperbolic_model: torch.nn.Module) -> None:
    model = hyperbolic_model.train()
    strategy = build_strategy("halo")
    panels = report.acquisition_panels(model, target, strategy, [1, 0], round_budget=0.02)
    assert model.training  # restored
    assert [p["id"] for p in panels] == [target[1]["id"], target[0]["id"]]
    n = math.ceil(H * W * 0.02 / 9)  # 5 regions of 3x3
    model.eval()
    with torch.no_grad():
        for index, panel in zip([1, 0], panels, strict=True):
            assert panel["image"].dtype == np.uint8 and panel["image"].shape == (H, W, 3)
            for key in ("radius", "entropy", "score"):
                assert panel[key].shape == (H, W) and panel[key].dtype == np.float32
            assert panel["selected"].dtype == bool and panel["selected"].shape == (H, W)
            assert panel["regions_requested"] == n and panel["centres"].shape == (n, 2)
            assert (panel["active_radius"], panel["mask_radius"]) == (1, 5)
            # budget arithmetic: 5 disjoint 3x3 windows (m = 5 > 2a), clipped at the border
            assert panel["selected"].sum() == window_pixels(panel["centres"], 1) <= 9 * n
            # the same as the strategy's own round on a fresh forward pass
            out = model(target[index]["image"].unsqueeze(0))
            sel = strategy.select(out.logits, round_budget=0.02, radius=out.radius)
            np.testing.assert_array_equal(panel["selected"], sel.labelled[0].numpy())
            np.testing.assert_array_equal(panel["centres"], sel.centres[0].numpy())
            entropy = window_sum(pixel_entropy(out.logits), 1)[0].numpy()
            np.testing.assert_allclose(panel["entropy"], entropy, rtol=1e-5, atol=1e-6)
            assert 0 <= panel["entropy"].min() and panel["entropy"].max() <= 9 + 1e-5
            assert panel["radius"].min() > 0
            assert np.isfinite(panel["score"]).all()
            assert 0 <= panel["score"].min() and panel["score"].max() <= 1
    np.testing.assert_array_equal(
        panels[1]["image"], (target[0]["image"].permute(1, 2, 0) * 255).round().byte().numpy()
    )


def test_ripu_panels_on_a_euclidean_model(
    tmp_path: Path, target, euclidean_model: torch.nn.Module, hyperbolic_model: torch.nn.Module
) -> None:
    model = euclidean_model.eval()
    ripu = build_strategy("ripu")
    panels = report.acquisition_panels(
        model, target, ripu, [0], round_budget=0.02, active_radius=2, mask_radius=6
    )
    assert not model.training
    (panel,) = panels
    assert panel["radius"] is None
    n = math.ceil(H * W * 0.02 / 25)  # 2 regions of 5x5
    assert panel["centres"].shape == (n, 2) and (panel["active_radius"], panel["mask_radius"]) == (
        2,
        6,
    )
    assert panel["selected"].sum() == window_pixels(panel["centres"], 2)
    assert ripu.active_radius == 1 and ripu.mask_radius == 3  # the caller's strategy untouched

    entropy = report.acquisition_panels(
        hyperbolic_model, target, build_strategy("entropy"), [0], round_budget=0.02
    )
    paths = report.write_acquisition_figures([*entropy, panel], tmp_path)
    safe = target[0]["id"].replace("/", "__")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        f"acquisition/{safe}.png",
        f"acquisition/{safe}-ripu.png",
    ]
    for p in paths:
        assert_png(p)
    with Image.open(paths[0]) as img:
        assert img.size[0] > 3 * img.size[1]  # five panels side by side

    summary = report.build_report(study(), tmp_path / "rep", benchmark=BENCH, panels=entropy)
    assert f"acquisition/{safe}.png" in summary["files"]
    assert_png(tmp_path / "rep" / "acquisition" / f"{safe}.png")
