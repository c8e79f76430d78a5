"""The study's drivers (workflow/study/): their plans, without running the jobs (the smoke run of
radius.py is documented in docs/study/README.md)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "workflow" / "study" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_radius_plan_is_a_well_formed_job_graph(tmp_path):
    radius = _load("radius")
    jobs, rows = radius.plan(tmp_path, [0, 1])
    names = {j.name for j in jobs}
    assert all(a in names for j in jobs for a in j.after), "a job needs one that is not planned"
    done = {}
    for j in jobs:  # one command per output (a job planned twice is the same command)
        assert done.setdefault(j.done, j.argv) == j.argv, j.name
    outputs = set(done)
    experiments = {r["experiment"] for r in rows}
    assert experiments == {"regime", "head", "frequency", "labels", "training"}
    for row in rows:
        assert sorted(row["evals"]) == [0, 1]  # two seeds per row
        assert all(p in outputs for p in row["evals"].values()), row["setting"]
    freq = [r for r in rows if r["experiment"] == "frequency"]
    assert len(radius.SCALES) >= 4
    for cls in radius.SCALES:
        assert len({r["scale"] for r in freq if r["class"] == cls}) >= 3
    # every model of a regime sets every optimiser key (nothing left to the run config)
    for name, sets in radius.REGIMES.items():
        keys = {s.split("=")[0] for s in sets}
        assert keys == {"train.optimizer", "train.lr", "train.head_lr_mult", "train.schedule"}, name


def test_radius_only_runs_what_its_rows_need_and_keeps_the_other_rows(tmp_path):
    radius = _load("radius")
    jobs, rows = radius.plan(tmp_path, [0, 1])
    sub_jobs, sub_rows = radius.restrict(jobs, rows, ["labels"])
    assert {r["experiment"] for r in sub_rows} == {"labels"}
    # 4 label settings x 2 round lrs, each scored on the target and in-domain
    assert len(sub_rows) == 4 * len(radius.LABEL_LRS) * 2 == 16
    assert {r["eval_on"] for r in sub_rows} == {"target", "source"}
    names = {j.name for j in sub_jobs}
    assert all(a in names for j in sub_jobs for a in j.after)  # closed under "needs"
    assert {p for r in sub_rows for p in r["evals"].values()} <= {j.done for j in sub_jobs}
    # what labels need: the base data and the default source model per seed; nothing else
    assert {n for n in names if n.startswith(("train:", "data:"))} == {
        "data:base",
        "train:adamw-1e-3:0",
        "train:adamw-1e-3:1",
    }
    assert not any(n.startswith("link:") for n in names)
    assert all(n.endswith("eval_source.json") for n in names if n.startswith("eval:"))
    old = pd.DataFrame(
        {"experiment": ["regime", "labels", "labels", "frequency", "rounds"], "x": [1, 2, 3, 4, 5]}
    )
    new = pd.DataFrame({"experiment": ["labels"], "x": [9]})
    merged = radius.merge(old, new, ["labels"])
    assert merged["experiment"].tolist() == ["regime", "frequency", "labels", "rounds"]
    assert merged["x"].tolist() == [1, 4, 9, 5]


def test_radius_scores_a_grids_round_1_and_final_models_in_domain(tmp_path):
    radius = _load("radius")
    grid = tmp_path / "grid" / "runs" / "synth-gta2cs" / "deeplabv3plus-r18"
    for method in ("halo", "random", "random-nl"):
        for seed in (0, 1):
            for r in (1, 2, 3):
                folder = grid / method / "5" / f"seed{seed}" / f"round{r}"
                folder.mkdir(parents=True)
                (folder / "model.pt").write_bytes(b"")
    (grid / "source" / "hyperbolic-hfr" / "seed0").mkdir(parents=True)
    jobs, rows = radius.plan(tmp_path / "work", [0, 1], grid)
    own = [r for r in rows if r["experiment"] == "rounds-source"]
    assert [r["setting"] for r in own] == [
        "halo 5 % final model",
        "halo 5 % round 1 model",
        "random 5 % final model",
        "random 5 % round 1 model",
    ]  # random-nl is not among IN_DOMAIN_METHODS
    final = next(r for r in own if r["setting"] == "halo 5 % final model")
    assert sorted(final["evals"]) == [0, 1] and all(r["eval_on"] == "source" for r in own)
    # where the study's driver keeps them (--root its archives): rounds-source/<m>/<b>/seed<S>/
    assert final["evals"][0] == tmp_path / "work/rounds-source/halo/5/seed0/round3.json"
    by_done = {j.done: j for j in jobs}
    argv = by_done[final["evals"][0]].argv
    model = grid / "halo" / "5" / "seed0" / "round3"
    assert argv[argv.index("--checkpoint") + 1] == str(model / "model.pt")
    assert argv[argv.index("--config") + 1] == str(model / "config.yaml")
    assert argv[argv.index("--on") + 1] == "source"
    # a kept score (its model gone) names the commit its model was made at: its round's
    score = ROOT / "docs/study/grid2/rounds-source/halo/5/seed0/round1.json"  # a real one
    for r in own:
        for out in r["evals"].values():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(score.read_text())
    for folder in grid.glob("*/5/seed*/round*"):
        (folder / "model.pt").unlink()
        (folder / "provenance.json").write_text(json.dumps({"git_revision": "abcdef123456"}))
    rows_rows = _load("radius_rows")
    assert set(rows_rows.gather(own)["commit"]) == {"abcdef1"}


def test_sweep_adds_each_setting_to_every_run_of_the_grid(tmp_path):
    sweep = _load("sweep")
    grid = yaml.safe_load((ROOT / "configs" / "sweeps" / "round_lr.yaml").read_text())
    d = sweep.workdir(tmp_path, "lr3e-4", grid, ["train.round_lr=0.0003"])
    spec = yaml.safe_load((d / "sweep.yaml").read_text())
    for bench, b in spec["benchmarks"].items():
        assert b["set"] == [*grid["benchmarks"][bench].get("set", []), "train.round_lr=0.0003"]
        assert b["methods"] == ["random", "entropy"]  # never HALO
    assert (d / "configs").resolve() == (ROOT / "configs").resolve()
    with pytest.raises(SystemExit, match="bad"):
        sweep._setting(["a/b", "x=1"])


def _claims_tables(folder: Path, means: dict[str, float], spread: float = 5.0) -> None:
    """The report tables claims.py reads, for two classes (one rare) and three seeds: seed s
    shifts every method by the same ``spread * (s - 1)`` (what a seed's source model does), so
    the paired differences are exact while the cells' stds are ``spread``."""
    budgets = [0.01, 0.05]
    runs = [("source", "hyperbolic-hfr", "source", 0.0, s, 10.0 + s) for s in range(3)]
    runs += [("supervised", "hyperbolic-hfr", "supervised", 1.0, s, 60.0 + s) for s in range(3)]
    runs += [
        (m, "v", "active", b, s, means[m] + 10 * b + spread * (s - 1) + 0.01 * s * (m == "halo"))
        for m in means
        for b in budgets
        for s in range(3)
    ]
    frame = pd.DataFrame(runs, columns=["method", "variant", "kind", "budget", "seed", "miou"])
    frame.insert(0, "backbone", "bb")
    frame["labelled_fraction"] = frame["budget"].where(frame["kind"] == "active")
    frame.to_csv(folder / "runs.csv", index=False)
    keys = ["backbone", "method", "variant", "budget"]
    cells = frame.groupby(keys, sort=False)
    miou = cells["miou"].agg(n_seeds="count", mean="mean", std="std").reset_index()
    miou["labelled_fraction"] = cells["labelled_fraction"].mean().to_numpy()
    miou.to_csv(folder / "miou_table.csv", index=False)
    per = miou[[*keys, "n_seeds"]].copy()
    per["road"], per["rider"] = 90.0, miou["mean"] - 40
    per.to_csv(folder / "per_class.csv", index=False)
    acq = per[per["method"].isin(list(means))].copy()
    acq["road"], acq["rider"] = 80.0, 20.0
    acq.to_csv(folder / "acquired_classes.csv", index=False)
    corr = miou[[*keys, "n_seeds"]].copy()
    corr["pearson_r"] = np.where(corr["method"] == "halo", 0.8, -0.5)
    corr["spearman_rho"] = -0.4
    corr["pearson_r_log_share"] = np.where(corr["method"] == "halo", 0.7, -0.6)
    corr.to_csv(folder / "radius_correlations.csv", index=False)
    pd.DataFrame({"method": ["halo"], "unstable": [False]}).to_csv(
        folder / "training_stability.csv", index=False
    )
    pd.DataFrame(
        {"class": ["road", "rider"], "pixel_share": [0.9, 0.004], "mean_radius": [2.0, 3.0]}
    ).to_csv(folder / "radius_vs_frequency.csv", index=False)


@pytest.mark.parametrize("seed", range(5))
def test_paired_interval_is_the_paired_t_test_and_verdicts_are_antisymmetric(seed):
    from scipy import stats

    claims = _load("claims")
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(2, 9))
        a = rng.normal(50, 5, n)
        b = a - rng.normal(rng.uniform(-3, 3), rng.uniform(0.1, 3), n)
        mean, sd, low, high, p = claims.paired_interval(a - b)
        assert p == pytest.approx(stats.ttest_rel(a, b).pvalue)
        assert low < mean < high and sd == pytest.approx(np.std(a - b, ddof=1))
        _, _, low2, high2, _ = claims.paired_interval(b - a)
        swap = {"yes": "no", "no": "yes", "inconclusive": "inconclusive"}
        assert swap[claims.verdict(low, high)] == claims.verdict(low2, high2)
        # the verdict is "yes" exactly when the 95 % interval excludes 0 from above
        assert (claims.verdict(low, high) == "yes") == (p < 0.05 and mean > 0)
    assert claims.verdict(*claims.paired_interval(np.array([1.0]))[2:4]) == "n/a"


def test_claims_pair_the_seeds_and_write_their_tables(tmp_path):
    claims = _load("claims")
    means = {"random": 30.0, "entropy": 40.0, "halo": 41.0, "ripu": 44.8, "radius": 20.0}
    means |= {"halo-src": 42.0, "halo-src-inv": 42.0}
    _claims_tables(tmp_path, means)
    text = claims.write(tmp_path, [0.01, 0.05])
    assert text == (tmp_path / "claims.md").read_text()
    table = pd.read_csv(tmp_path / "claims.csv")
    row = table[(table["a"] == "halo") & (table["b"] == "entropy") & (table["budget"] == 1)]
    # +1.0 on every seed (+0.01 s): "yes" although the cells' stds (5) are far larger
    assert row["verdict"].item() == "yes" and row["n"].item() == 3
    assert row["diff"].item() == pytest.approx(1.01) and row["ci_low"].item() > 0
    ripu = table[(table["b"] == "ripu") & (table["budget"] == 5)]
    assert ripu["verdict"].item() == "no"
    inv = table[(table["a"] == "halo-src") & (table["b"] == "halo-src-inv")]
    assert set(inv["verdict"]) == {"inconclusive"}  # identical on every seed
    sup = table[table["b"] == "supervised"]
    assert sup["mean_b"].tolist() == [61.0, 61.0]  # each seed against its own bound
    # a sign only where r, ρ and r against log share agree
    assert "source-only model: r = −0.50, ρ = −0.40, r(log share) = −0.60; sign: negative" in text
    assert "HALO after 1 %: r = +0.80, ρ = −0.40, r(log share) = +0.70; sign: none" in text
    core = text.split("<!-- section: core -->")[1].split("<!-- section:")[0]
    assert "| HALO ≥ entropy | 1 % |" in core and "radius alone" not in core
    assert "reading (a negative sign for the models active learning produced): **no**" in text
    assert "Rare classes (under 1 % of the target pixels): rider." in text
    assert "supervised bound: IoU ≥ 20 on 2 of 2 classes" in text
    assert "budget 1 %: labelled 1.0000–1.0000 % of the target pixels" in text
    assert "single runs 1.0000–1.0000 % (21, all within it)" in text
    (tmp_path / "acquired_classes.csv").unlink()
    with pytest.raises(SystemExit, match=r"acquired_classes\.csv: missing"):
        claims.load(tmp_path)


def test_a_claim_pairs_the_seeds_with_values_and_refuses_two_runs_of_one_seed(tmp_path):
    claims = _load("claims")
    _claims_tables(tmp_path, {"random": 30.0, "entropy": 40.0, "halo": 41.0, "ripu": 44.8})
    runs = pd.read_csv(tmp_path / "runs.csv")
    lost = (runs["method"] == "halo") & (runs["budget"] == 0.05) & (runs["seed"] == 2)
    runs.loc[lost, "miou"] = np.nan  # a run without a value: left out, not a NaN verdict
    got = claims.compare(runs, "c", "halo", "entropy", 0.05)
    assert got.n == 2 and got.verdict == "yes" and got.mean_a == pytest.approx(41.5 - 2.5 + 0.005)
    twice = runs[runs["method"] == "halo"].assign(variant="w")  # a second variant of each seed
    with pytest.raises(SystemExit, match=r"halo at 5 % has 6 runs for 3 seeds \(bb/v, bb/w\)"):
        claims.compare(pd.concat([runs, twice]), "c", "halo", "entropy", 0.05)


def _eval(folder: Path, radius: list[float], commit: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    classes = ["a", "b", "c", "d"]
    share = [0.5, 0.3, 0.15, 0.05]
    (folder / "eval.json").write_text(
        __import__("json").dumps(
            {
                "miou": 50.0,
                "class_names": classes,
                "class_pixel_share": dict(zip(classes, share, strict=True)),
                "class_mean_radius": dict(zip(classes, radius, strict=True)),
                "per_class_iou": dict.fromkeys(classes, 30.0),
            }
        )
    )
    (folder / "provenance.json").write_text(f'{{"git_revision": "{commit}"}}')


def test_radius_rounds_rows_start_at_the_source_model_and_name_the_grids_commits(tmp_path):
    radius = _load("radius")
    inward, outward = [1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.5, 1.0]  # vs shares 0.5 … 0.05
    for seed, commit in ((0, "aaaaaaa111"), (1, "bbbbbbb222")):
        _eval(tmp_path / "source" / "hyp" / f"seed{seed}", inward, commit)
        run = tmp_path / "halo" / "5" / f"seed{seed}"
        for r in (1, 2):
            _eval(run / f"round{r}", outward, commit)
        (run / "metrics.json").write_text('{"variant": "hyp"}')
    rows = {row["setting"]: row for row in radius.rounds_rows(tmp_path)}
    assert list(rows) == [
        "halo 5 % source model",
        "halo 5 % after round 1",
        "halo 5 % after round 2",
    ]
    assert [row["round"] for row in rows.values()] == [0, 1, 2]
    assert all(row["n_seeds"] == 2 and row["commit"] == "aaaaaaa/bbbbbbb" for row in rows.values())
    assert rows["halo 5 % source model"]["pearson_r"] < -0.9  # far out = rare: the paper's sign
    assert all(float(r) > 0.9 for r in rows["halo 5 % after round 2"]["pearson_r_seeds"].split(";"))


def test_intervention_row_gives_each_seeds_place_of_the_class_and_its_spread():
    """The frequency intervention's class row: seed means, each seed's radius / rank / IoU in
    the seeds' order, and the sample sd over the seeds; a class the models do not learn is
    flagged."""
    _load("radius")
    rows = sys.modules["radius_rows"]
    classes = ["a", "b", "c", "d"]

    def metrics(radius: list[float], iou: float) -> dict:
        return {
            "miou": 50.0,
            "class_names": classes,
            "class_pixel_share": dict(zip(classes, [0.5, 0.3, 0.15, 0.05], strict=True)),
            "class_mean_radius": dict(zip(classes, radius, strict=True)),
            "per_class_iou": {**dict.fromkeys(classes, 60.0), "c": iou},
        }

    seeds = [metrics([1.0, 2.0, 3.0, 4.0], 30.0), metrics([1.0, 2.0, 5.0, 4.0], 10.0)]
    row = rows._class_row(seeds, "c")
    assert row["class_radius_seeds"] == "3.0000;5.0000"
    assert row["class_radius_rank_seeds"] == "2;1"  # 1 = farthest out
    assert row["class_iou_seeds"] == "30.0;10.0"
    assert row["class_radius"] == pytest.approx(4.0)
    assert row["class_radius_sd"] == pytest.approx(np.std([3.0, 5.0], ddof=1))
    assert row["class_radius_rank_sd"] == pytest.approx(np.std([2, 1], ddof=1))
    assert row["class_iou"] == pytest.approx(20.0) and row["class_learned"]
    one = rows._class_row(seeds[1:], "c")
    assert not one["class_learned"] and one["class_radius_sd"] is None
    assert rows._class_row(seeds, "zebra")["class_radius_seeds"] == "nan;nan"


def test_a_selection_sweep_judges_on_its_own_held_out_split(tmp_path, monkeypatch):
    """--select N: the setting's working directory has its own data with the select split, and
    every run of its grid evaluates there (val_split=select), never on the reported val set."""
    sweep = _load("sweep")
    grid = {
        "synth": {"root": "data/synth", "size": [32, 64], "seed": 0, "count": 2},
        "benchmarks": {"synth-gta2cs": {"set": [], "methods": ["random"]}},
    }
    calls = []
    monkeypatch.setattr(sweep.subprocess, "run", lambda argv, **kw: calls.append(argv))
    d = sweep.workdir(tmp_path, "lr1e-2", grid, ["train.round_lr=0.01"], select=5)
    spec = yaml.safe_load((d / "sweep.yaml").read_text())
    assert spec["benchmarks"]["synth-gta2cs"]["set"] == ["train.round_lr=0.01", "val_split=select"]
    assert not (d / "data").is_symlink()  # its own data, not the checkout's
    written = [c[c.index("--out") + 1] for c in calls]
    assert written == [str(d / "data/synth"), str(d / "data/synth/cityscapes")]
    assert any("select" in c and "5" in c for c in calls)
    assert calls[0][calls[0].index("--count") + 1] == "2"  # the grid's own count, as the workflow


def test_border_shares_count_the_bands_and_compare_with_random(tmp_path):
    from halo.io import write_png

    borders = _load("borders")
    h, w, band = 16, 40, 4
    sides, ends = borders.band_masks((h, w), band)
    assert sides.sum() == h * 2 * band and ends.sum() == w * 2 * band
    for method, col in (("random", 20), ("halo", 0)):  # halo labels at the left border
        for seed in (0, 1):
            run = tmp_path / method / "5" / f"seed{seed}"
            mask = np.full((h, w), 255, np.uint8)
            mask[5:8, col : col + 3] = 1 + seed
            mask[5, col] = 17  # one rare pixel (class 17) per run, in the region's first column
            write_png(run / "round1" / "masks" / "img.png", mask)
            record = {"kind": "active", "method": method, "budget": 0.05, "seed": seed,
                      "miou": 50.0 + seed, "rounds": [{"round": 1}]}  # fmt: skip
            (run / "metrics.json").write_text(json.dumps(record))
    table = borders.runs_table(tmp_path, band, rare=frozenset({17}))
    assert len(table) == 4 and set(table["labelled"]) == {9}
    halo = table[table["method"] == "halo"]
    assert (halo["side_share"] == 1.0).all() and (halo["end_share"] == 0.0).all()
    # halo's rare pixel is in the bands (1 of 9), random's elsewhere (1 of 9)
    assert halo["side_rare_share"].tolist() == pytest.approx([1 / 9] * 2)
    assert halo["rest_rare_share"].isna().all()
    rnd = table[table["method"] == "random"]
    assert rnd["rest_rare_share"].tolist() == pytest.approx([1 / 9] * 2)
    assert table["side_expected"].iloc[0] == pytest.approx(2 * band / w)
    s = borders.summary(table).set_index("method")
    assert s.loc["halo", "side_vs_random"] == pytest.approx(1.0)
    assert s.loc["random", "side_vs_random"] == pytest.approx(0.0)
    freq = tmp_path / "radius_vs_frequency.csv"
    freq.write_text("class,pixel_share,mean_radius\nroad,0.4,1\nmotorcycle,0.003,2\n")
    assert borders.rare_ids(freq) == frozenset({17})  # motorcycle
    freq.write_text("class,pixel_share,mean_radius\nunicorn,0.003,2\n")
    with pytest.raises(SystemExit, match="unknown class 'unicorn'"):
        borders.rare_ids(freq)


def test_the_figure_2_curve_table_reads_the_rounds_rows_with_their_seed_band():
    figures = _load("figures")
    rows = pd.DataFrame(
        {
            "experiment": ["rounds"] * 3 + ["labels"],
            "setting": [
                "halo 5 % source model",
                "halo 5 % after round 1",
                "halo 5 % after round 2",
                "x",
            ],
            "round": [0, 1, 2, 1],
            "pearson_r": [-0.7, 0.8, 0.85, 0.1],
            "pearson_r_seeds": ["-0.6;-0.8", "0.7;0.9", "0.8;nan", "0"],
            "n_seeds": [2, 2, 2, 2],
        }
    )
    table = figures.curve_table(rows)
    assert table["spent"].tolist() == [0.0, 2.5, 5.0]  # 5 % over 2 rounds
    assert table["r_min"].tolist() == [-0.8, 0.7, 0.8] and table["r_max"].tolist() == [
        -0.6,
        0.9,
        0.8,
    ]
    assert set(table["method"]) == {"halo"}


def test_the_figure_2_curves_draw_a_panel_per_budget_and_only_the_main_methods(tmp_path):
    figures = _load("figures")
    rows = [
        (m, b, r, 0.8 - (r == 0) * 1.5, 3)
        for m in ("halo", "random", "radius")
        for b in (1, 5)
        for r in range(3)
    ]
    table = pd.DataFrame(rows, columns=["method", "budget", "round", "r", "n_seeds"])
    table["spent"] = table["budget"] * table["round"] / 2
    table["r_min"], table["r_max"] = table["r"] - 0.1, table["r"] + 0.1
    path = figures.draw_curves(table, tmp_path / "curves.png")
    from PIL import Image

    with Image.open(path) as im:  # two panels side by side: wider than one
        assert im.format == "PNG" and im.width > 1.5 * im.height
    assert "radius" not in figures.CURVE_METHODS


def _study_docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "docs" / "study.md", ROOT / "docs" / "study" / "README.md"]


#: a decimal number in prose (a measurement looks like one: 58.1, −0.73, +2.5)
_DECIMAL = re.compile(r"(?<![\w.])[+−-]?\d+\.\d+(?![\w.])")
_NOT_PROSE = re.compile(r"<!-- generated: .*?<!-- end generated -->|```.*?```|`[^`\n]*`", re.DOTALL)


def _typed_numbers(text: str, allowed: set[str]) -> list[str]:
    """The decimal numbers of ``text`` outside generated blocks and code that are not settings."""
    prose = _NOT_PROSE.sub(" ", text)
    return [m for m in _DECIMAL.findall(prose) if m.lstrip("+−-") not in allowed]


def test_no_study_number_is_typed_by_hand():
    """Outside the generated blocks, the study documents (and the README's results section)
    hold no decimal number but a setting of the study's configs or a budget in percent: a
    measurement typed by hand fails here (the blocks themselves are checked below)."""
    study = (ROOT / "configs" / "study.yaml").read_text()
    allowed = {"2.2", "1.0", "0.05"}  # a budget in percent; the official NL weight and threshold
    assert all(x in study for x in allowed)  # settings of the study, not measurements
    assert _typed_numbers("HALO gets 58.1 (`x 1.5`) ± 0.9, r −0.73", allowed) == [
        "58.1",
        "0.9",
        "−0.73",
    ]
    readme = (ROOT / "README.md").read_text()
    results = readme.split("## Results on the synthetic benchmark", 1)[1].split("\n## ", 1)[0]
    texts = {"README.md (results)": results}
    texts |= {str(d.relative_to(ROOT)): d.read_text() for d in _study_docs()[1:]}
    for name, text in texts.items():
        assert not _typed_numbers(text, allowed), f"{name}: typed by hand"


def test_every_generated_block_in_the_readme_and_study_docs_is_the_tables():
    """README.md and docs/study*.md copy their study numbers from generated files only, and those
    files are what claims.py and findings.py make of the tables today: a hand-edited number, or a
    block that is not its section today, fails here."""
    claims, findings, blocks = _load("claims"), _load("findings"), _load("blocks")
    study = ROOT / "docs" / "study"
    budgets = [0.01, 0.022, 0.05]
    assert (study / "claims.md").read_text() == claims.markdown(claims.load(study), budgets)
    assert (study / "findings.md").read_text() == findings.markdown(study, budgets)
    docs = _study_docs()
    copies = [(doc, src, body) for doc in docs for src, body in blocks.blocks_of(doc.read_text())]
    assert {src for _, src, _ in copies} >= {
        "docs/study/claims.md#claims",
        "docs/study/findings.md#grid",
    }
    for doc, src, body in copies:
        if "#" in src:  # a section, whole
            assert body == blocks.section_text(ROOT, src), f"{doc.name}: block of {src} differs"
        else:  # a part of a generated file
            assert body.strip() in (ROOT / src).read_text(), f"{doc.name}: block of {src} differs"
        assert src.startswith(("docs/study/claims.md", "docs/study/findings.md")), src
    # every section's source line regenerates it: refreshing changes nothing
    for doc in docs:
        assert blocks.refresh(doc.read_text(), ROOT) == doc.read_text(), doc.name


def test_refresh_fills_each_section_block_and_names_a_missing_section(tmp_path):
    blocks = _load("blocks")
    (tmp_path / "gen.md").write_text(
        "<!-- section: a -->\n| x |\n\n<!-- section: b -->\n- y\n- z\n"
    )
    doc = (
        "intro\n<!-- generated: gen.md#b -->\nold\n<!-- end generated -->\n"
        "<!-- generated: gen.md#a -->\n<!-- end generated -->\nend\n"
    )
    assert blocks.refresh(doc, tmp_path) == (
        "intro\n<!-- generated: gen.md#b -->\n- y\n- z\n<!-- end generated -->\n"
        "<!-- generated: gen.md#a -->\n| x |\n<!-- end generated -->\nend\n"
    )
    with pytest.raises(SystemExit, match=r"gen\.md: no section 'c' \(has a, b\)"):
        blocks.refresh("<!-- generated: gen.md#c -->\n<!-- end generated -->", tmp_path)


def test_radius_takes_a_rounds_archived_in_domain_score_where_its_model_is_gone(tmp_path):
    radius = _load("radius")
    grid = tmp_path / "grid" / "runs" / "synth-gta2cs" / "deeplabv3plus-r18"
    for seed in (0, 1, 2):
        for r in range(1, 6):
            (grid / "halo" / "5" / f"seed{seed}" / f"round{r}").mkdir(parents=True)
    work = tmp_path / "work"
    (grid / "halo" / "5" / "seed0" / "round5" / "model.pt").write_bytes(b"")  # seed 0: a model
    scores = work / "rounds-source" / "halo" / "5" / "seed1"  # seed 1: archived scores
    scores.mkdir(parents=True)
    for r in (1, 5):
        (scores / f"round{r}.json").write_text("{}")
    jobs, rows = radius.plan(work, [0], grid)  # seed 2: neither, so no value
    own = {r["setting"]: r["evals"] for r in rows if r["experiment"] == "rounds-source"}
    assert sorted(own) == ["halo 5 % final model", "halo 5 % round 1 model"]
    assert sorted(own["halo 5 % final model"]) == [0, 1]
    assert sorted(own["halo 5 % round 1 model"]) == [1]
    assert own["halo 5 % final model"][1] == scores / "round5.json"
    planned = {j.done for j in jobs}  # every value has its job (done already where archived)
    assert all(p in planned for evals in own.values() for p in evals.values())


def test_sweep_concat_joins_settings_run_apart_in_order_and_refuses_an_unfinished_one(tmp_path):
    sweep = _load("sweep")
    parts = []
    for name, miou in (("lr1e-2", 48.5), ("lr3e-4", 34.2)):
        d = tmp_path / name
        d.mkdir()
        pd.DataFrame({"setting": [name], "miou": [miou]}).to_csv(d / "miou_table.csv", index=False)
        pd.DataFrame({"setting": [name], "peak": [1.0]}).to_csv(
            d / "training_stability.csv", index=False
        )
        parts.append(d)
    sweep.main(["--concat", *map(str, parts), "--out", str(tmp_path / "out")])
    joined = pd.read_csv(tmp_path / "out" / "miou_table.csv")
    assert joined["setting"].tolist() == ["lr1e-2", "lr3e-4"]
    assert joined["miou"].tolist() == [48.5, 34.2]
    assert not list((tmp_path / "out").glob(".tmp-*"))
    (parts[1] / "training_stability.csv").unlink()  # a setting stopped before its tables
    with pytest.raises(SystemExit, match=r"lr3e-4/training_stability\.csv: missing"):
        sweep.main(["--concat", *map(str, parts), "--out", str(tmp_path / "out2")])
    assert not (tmp_path / "out2").exists()
    with pytest.raises(SystemExit):
        sweep.main(["--concat", str(parts[0]), "--setting", "x", "a=1", "--out", "o"])
