"""The study's drivers (workflow/study/): their plans, without running the jobs (the smoke run of
radius.py and the sweep itself are documented in docs/study/README.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
    for cls in ("person", "car"):
        assert len({r["scale"] for r in freq if r["class"] == cls}) >= 3
    # every model of a regime sets every optimiser key (nothing left to the run config)
    for name, sets in radius.REGIMES.items():
        keys = {s.split("=")[0] for s in sets}
        assert keys == {"train.optimizer", "train.lr", "train.head_lr_mult", "train.schedule"}, name


def test_radius_only_runs_what_its_rows_need_and_keeps_the_other_rows(tmp_path):
    radius = _load("radius")
    jobs, rows = radius.plan(tmp_path, [0, 1])
    sub_jobs, sub_rows = radius.restrict(jobs, rows, ["labels"])
    assert {r["experiment"] for r in sub_rows} == {"labels"} and len(sub_rows) == 4
    names = {j.name for j in sub_jobs}
    assert all(a in names for j in sub_jobs for a in j.after)  # closed under "needs"
    assert {p for r in sub_rows for p in r["evals"].values()} <= {j.done for j in sub_jobs}
    # what labels need: the base data and the default source model per seed; nothing else
    assert {n for n in names if n.startswith(("train:", "data:"))} == {
        "data:base",
        "train:adamw-1e-3:0",
        "train:adamw-1e-3:1",
    }
    assert not any(n.startswith(("eval:", "link:")) for n in names)
    old = pd.DataFrame(
        {"experiment": ["regime", "labels", "labels", "frequency", "rounds"], "x": [1, 2, 3, 4, 5]}
    )
    new = pd.DataFrame({"experiment": ["labels"], "x": [9]})
    merged = radius.merge(old, new, ["labels"])
    assert merged["experiment"].tolist() == ["regime", "frequency", "labels", "rounds"]
    assert merged["x"].tolist() == [1, 4, 9, 5]


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


def _claims_tables(folder: Path, means: dict[str, float], std: float = 0.5) -> None:
    """The six report tables claims.py reads, for two classes (one rare) and three seeds."""
    budgets = [0.01, 0.05]
    rows = [("source", "hyperbolic-hfr", 0.0, 10.0), ("supervised", "hyperbolic-hfr", 1.0, 60.0)]
    rows += [(m, "v", b, means[m] + 10 * b) for m in means for b in budgets]
    frame = pd.DataFrame(rows, columns=["method", "variant", "budget", "mean"])
    frame.insert(0, "backbone", "bb")
    frame["n_seeds"], frame["std"] = 3, std
    frame.to_csv(folder / "miou_table.csv", index=False)
    per = frame[["backbone", "method", "variant", "budget", "n_seeds"]].copy()
    per["road"], per["rider"] = 90.0, frame["mean"] - 40
    per.to_csv(folder / "per_class.csv", index=False)
    acq = per[per["method"].isin(list(means))].copy()
    acq["road"], acq["rider"] = 80.0, 20.0
    acq.to_csv(folder / "acquired_classes.csv", index=False)
    corr = frame[["backbone", "method", "variant", "budget", "n_seeds"]].copy()
    corr["pearson_r"], corr["spearman_rho"] = -0.5, -0.4
    corr.to_csv(folder / "radius_correlations.csv", index=False)
    pd.DataFrame({"method": ["halo"], "unstable": [False]}).to_csv(
        folder / "training_stability.csv", index=False
    )
    pd.DataFrame(
        {"class": ["road", "rider"], "pixel_share": [0.9, 0.004], "mean_radius": [2.0, 3.0]}
    ).to_csv(folder / "radius_vs_frequency.csv", index=False)


@pytest.mark.parametrize("seed", range(5))
def test_claims_verdicts_are_antisymmetric_and_ties_are_within_the_seed_spread(seed):
    claims = _load("claims")
    rng = __import__("random").Random(seed)
    for _ in range(200):
        a = claims.Cell(rng.uniform(0, 60), rng.choice([None, rng.uniform(0, 5)]), 3)
        b = claims.Cell(rng.uniform(0, 60), rng.choice([None, rng.uniform(0, 5)]), 3)
        ab, ba = claims.verdict(a, b).split()[0], claims.verdict(b, a).split()[0]
        assert {"yes": "no", "no": "yes", "tie": "tie"}[ab] == ba
        spread = max([s for s in (a.std, b.std) if s is not None], default=0.0)
        assert (ab == "tie") == (abs(a.mean - b.mean) <= spread)


def test_claims_read_the_tables_and_name_a_missing_one(tmp_path):
    claims = _load("claims")
    means = {"random": 30.0, "entropy": 40.0, "halo": 45.0, "ripu": 44.8, "radius": 20.0}
    _claims_tables(tmp_path, means)
    text = claims.markdown(claims.load(tmp_path), [0.01, 0.05])
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()}
    assert "1 % yes (+5.0), 5 % yes (+5.0)" in rows["HALO ≥ entropy at equal budget"]
    assert "tie (+0.2)" in rows["HALO ≥ RIPU (the paper's main comparison)"]  # within std 0.5
    assert "no (−10.0)" in rows["radius alone ≥ random (the radius carries information)"]
    assert "Rare classes (under 1 % of the target pixels): rider." in text
    assert "supervised bound: IoU ≥ 20 on 2 of 2 classes" in text
    means["halo"] = 35.0  # the verdict follows the numbers
    _claims_tables(tmp_path, means)
    text = claims.markdown(claims.load(tmp_path), [0.01, 0.05])
    assert "HALO ≥ entropy at equal budget" in text and "1 % no (−5.0)" in text
    (tmp_path / "acquired_classes.csv").unlink()
    with pytest.raises(SystemExit, match=r"acquired_classes\.csv: missing"):
        claims.load(tmp_path)


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
