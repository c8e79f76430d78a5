"""Run records: identity, final metrics, per-round mIoU and budget; bad input is a clear error."""

from __future__ import annotations

import json

import pytest

from halo.runs import run_record

NAMES = ["road", "car"]


def _metrics(miou: float, step: int) -> dict:
    return {
        "miou": miou,
        "miou13": None,
        "per_class_iou": {"road": miou + 10, "car": None},
        "class_names": NAMES,
        "class_pixel_share": {"road": 0.9, "car": 0.1},
        "class_mean_radius": {"road": 1.0, "car": 2.0},
        "step": step,
    }


def _budget(r: int, cum: int) -> dict:
    return {
        "round": r,
        "pixels_labelled_cumulative": cum,
        "fraction_cumulative": cum / 1000,
        "regions": 3,
    }


ID = {
    "benchmark": "synth-gta2cs",
    "backbone": "deeplabv3plus-r18",
    "variant": "hyperbolic-hfr",
    "seed": 1,
}


def test_active_record_has_rounds_and_final_metrics():
    rec = run_record(
        **ID,
        method="halo",
        kind="active",
        budget=0.05,
        metrics=[_metrics(30, 10), _metrics(40, 20)],
        budgets=[_budget(1, 25), _budget(2, 50)],
    )
    assert rec["miou"] == 40 and rec["steps"] == 20 and rec["budget"] == 0.05
    assert [r["miou"] for r in rec["rounds"]] == [30, 40]
    assert [r["round"] for r in rec["rounds"]] == [1, 2]
    assert rec["budget_used"] == 0.05 and rec["per_class_iou"]["car"] is None
    assert rec["kind"] == "active" and rec["method"] == "halo" and rec["seed"] == 1
    assert rec["start_miou"] is None  # no source-only metrics given
    started = run_record(
        **ID,
        method="halo",
        kind="active",
        budget=0.05,
        metrics=[_metrics(30, 10), _metrics(40, 20)],
        budgets=[_budget(1, 25), _budget(2, 50)],
        start=_metrics(12, 5),
    )
    assert started["start_miou"] == 12 and started["rounds"] == rec["rounds"]


@pytest.mark.parametrize("kind", ["source", "supervised"])
def test_fixed_records_have_no_rounds(kind):
    rec = run_record(**ID, method=kind, kind=kind, metrics=[_metrics(20, 7)])
    assert rec["rounds"] == [] and rec["budget"] is None and rec["budget_used"] is None
    assert rec["miou"] == 20 and rec["steps"] == 7
    assert (
        run_record(**ID, method=kind, kind=kind, metrics=[_metrics(20, 7)], start=_metrics(1, 1))[
            "start_miou"
        ]
        is None
    )


def test_bad_input_is_a_clear_error():
    ok = {"method": "halo", "kind": "active", "budget": 0.05}
    with pytest.raises(ValueError, match="kind"):
        run_record(**ID, method="x", kind="passive", metrics=[_metrics(1, 1)])
    with pytest.raises(ValueError, match="no metrics"):
        run_record(**ID, **ok, metrics=[])
    with pytest.raises(ValueError, match="budget reports"):
        run_record(**ID, **ok, metrics=[_metrics(1, 1)], budgets=[])
    with pytest.raises(ValueError, match="rounds"):
        run_record(**ID, **ok, metrics=[_metrics(1, 1)] * 2, budgets=[_budget(2, 1), _budget(1, 2)])
    with pytest.raises(ValueError, match="budget in"):
        run_record(
            **ID,
            method="halo",
            kind="active",
            budget=None,
            metrics=[_metrics(1, 1)],
            budgets=[_budget(1, 1)],
        )
    with pytest.raises(ValueError, match="exactly one"):
        run_record(**ID, method="source", kind="source", metrics=[_metrics(1, 1)] * 2)
    bad = _metrics(1, 1)
    del bad["class_mean_radius"]
    with pytest.raises(ValueError, match="class_mean_radius"):
        run_record(**ID, method="source", kind="source", metrics=[bad])


def test_job_span_is_the_first_start_and_the_last_end(tmp_path):
    from halo.runs import job_span

    a, b, empty = tmp_path / "round1", tmp_path / "round2", tmp_path / "none"
    for folder in (a, b, empty):
        folder.mkdir()
    (a / "provenance.json").write_text(json.dumps({"started": 20.0, "finished": 30.0}))
    (a / "provenance_acquire.json").write_text(json.dumps({"started": 10.0, "finished": 15.0}))
    (b / "provenance.json").write_text(json.dumps({"started": 40.0, "finished": 55.5}))
    (b / "provenance_acquire.json").write_text("{broken")
    assert job_span([a, b, empty]) == (10.0, 55.5)
    assert job_span([empty]) is None
    rec = run_record(
        **ID, method="source", kind="source", metrics=[_metrics(1, 1)], span=(1.0, 2.0)
    )
    assert (rec["started"], rec["finished"]) == (1.0, 2.0)


@pytest.mark.parametrize(
    "kind, seed, variant", [("source", 0, "hyperbolic-hfr"), ("supervised", 12, "euclidean.d64")]
)
def test_fixed_runs_are_per_seed_and_parse_back(kind, seed, variant):
    from halo.runs import RUNS_ROOT, fixed_run, parse_run

    folder = fixed_run("synth-gta2cs", "deeplabv3plus-r18", kind, variant, seed)
    assert folder == f"{RUNS_ROOT}/synth-gta2cs/deeplabv3plus-r18/{kind}/{variant}/seed{seed}"
    d = parse_run(folder.removeprefix(f"{RUNS_ROOT}/"))
    assert (d["kind"], d["variant"], d["seed"], d["round"]) == (kind, variant, str(seed), None)
    assert d["method"] is None and d["budget"] is None


def test_active_runs_and_rounds_parse_back():
    from halo.runs import RUNS_ROOT, active_run, parse_run, round_dir

    run = active_run("synth-gta2cs", "deeplabv3plus-r18", "halo", 2.2, 3)
    d = parse_run(run.removeprefix(f"{RUNS_ROOT}/"))
    assert (d["kind"], d["method"], d["budget"], d["seed"]) == ("active", "halo", "2.2", "3")
    r = parse_run(round_dir(run, 4).removeprefix(f"{RUNS_ROOT}/"))
    assert (r["kind"], r["round"], r["seed"]) == ("round", "4", "3")


@pytest.mark.parametrize(
    "folder",
    [
        "b/bb/source/hyperbolic-hfr",  # a fixed run without its seed (the old layout)
        "b/bb/source/hyperbolic-hfr/seed0/round1",  # fixed runs have no rounds
        "b/bb/halo/5/round1",
        "b/bb/halo/five/seed0",
    ],
)
def test_what_is_not_a_run_folder_is_refused(folder):
    from halo.runs import parse_run

    with pytest.raises(ValueError, match="not a run folder"):
        parse_run(folder)
