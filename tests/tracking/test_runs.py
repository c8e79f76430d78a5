"""halo.tracking.runs against real SQLite MLflow stores (no mocks): logging, retries, finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from halo import tracking
from tests.tracking.conftest import (
    BENCH,
    _active_with_key,
    _artifacts,
    active_record,
    other_record,
)


def test_log_source_supervised_active(uri, tmp_path, elsewhere):
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  lr: 0.01\n  steps: 600\nmodel:\n  head: hyperbolic\nseed: 0\n")
    src = tracking.log_run(other_record("source"), uri=uri)
    sup = tracking.log_run(other_record("supervised"), uri=uri)
    act = tracking.log_run(active_record(), artifacts=[config], uri=uri)
    client = MlflowClient(tracking_uri=uri)

    names = {r: client.get_run(r).info.run_name for r in (src, sup, act)}
    assert names == {
        src: "deeplabv3plus-r18 · source-only [hyperbolic-hfr]",
        sup: "deeplabv3plus-r18 · supervised [hyperbolic-hfr]",
        act: "deeplabv3plus-r18 · halo · 5% · seed0",
    }
    run = client.get_run(act)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["halo.key"] == tracking.run_key(active_record())
    assert {k: tags[f"halo.{k}"] for k in ("benchmark", "backbone", "method", "kind")} == {
        "benchmark": BENCH,
        "backbone": "deeplabv3plus-r18",
        "method": "halo",
        "kind": "active",
    }
    assert (tags["halo.variant"], tags["halo.budget"], tags["halo.seed"]) == (
        "hyperbolic-hfr",
        "0.05",
        "0",
    )
    assert tags["halo.group"] == "deeplabv3plus-r18/halo"
    assert tags["halo.replicates"] == tags["halo.key"].removesuffix("/seed=0")
    assert client.get_run(src).data.tags["halo.budget"] == "none"

    params = run.data.params
    assert params["backbone"] == "deeplabv3plus-r18"
    assert (params["method"], params["kind"], params["budget"], params["seed"]) == (
        "halo",
        "active",
        "0.05",
        "0",
    )
    assert (params["train.lr"], params["train.steps"], params["model.head"]) == (
        "0.01",
        "600",
        "hyperbolic",
    )
    assert "seed" in params and params["seed"] == "0"  # config's seed agrees with the identity

    history = client.get_metric_history(act, "miou")
    assert sorted((m.step, m.value) for m in history) == [(1, 30.0), (2, 35.0), (3, 41.5)]
    m = run.data.metrics
    assert m["final_miou"] == 41.5
    assert m["budget_used"] == pytest.approx(0.05)
    assert "miou13" not in m  # None is skipped
    assert m["iou/road"] == 90.0 and m["iou/traffic_light"] == 12.5
    assert "iou/sky" not in m and "radius/sky" not in m
    assert m["radius/traffic_light"] == 0.3
    assert [(h.step, h.value) for h in client.get_metric_history(src, "miou")] == [(0, 20.0)]
    assert client.get_run(sup).data.metrics["final_miou"] == 60.0

    assert _artifacts(client, act) == {"record.json", "config.yaml"}
    assert _artifacts(client, src) == {"record.json"}
    logged = json.loads(
        Path(client.download_artifacts(act, "record.json", str(tmp_path))).read_text()
    )
    assert logged == active_record()

    # artifacts live beside the database, not under the cwd
    db_dir = Path(uri.removeprefix("sqlite:///")).parent
    assert Path(run.info.artifact_uri).is_relative_to(db_dir / "mlartifacts" / BENCH)
    assert list(elsewhere.iterdir()) == []  # nothing under the cwd (MLflow's ./mlruns default)

    found = {r["run_id"]: r for r in tracking.find_runs(BENCH, uri=uri)}
    assert set(found) == {src, sup, act}
    assert found[act]["metrics"]["final_miou"] == 41.5
    assert found[act]["params"]["train.lr"] == "0.01"
    assert found[act]["name"] == names[act]


def test_config_key_clashing_with_identity_is_kept_apart(uri, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("seed: 7\nmethod: {name: halo}\n")
    run_id = tracking.log_run(active_record(), artifacts=[config], uri=uri)
    params = MlflowClient(tracking_uri=uri).get_run(run_id).data.params
    assert params["seed"] == "0" and params["config.seed"] == "7"
    assert params["method"] == "halo" and params["method.name"] == "halo"


def test_retry_leaves_exactly_one_run_per_key(uri):
    first = tracking.log_run(active_record(), uri=uri)
    again = tracking.log_run(active_record(), uri=uri)  # the same content: the same run stays
    changed = dict(active_record(), miou=12.5)  # a re-run with another result replaces it
    second = tracking.log_run(changed, uri=uri)
    other = tracking.log_run(active_record(seed=1), uri=uri)
    assert again == first and len({first, second, other}) == 3
    client = MlflowClient(tracking_uri=uri)
    live = _active_with_key(client, tracking.run_key(active_record()))
    assert [r.info.run_id for r in live] == [second]
    assert client.get_run(first).info.lifecycle_stage == "deleted"
    assert len(_active_with_key(client, tracking.run_key(active_record(seed=1)))) == 1
    assert len(client.get_metric_history(second, "miou")) == 3  # not appended to


def test_retry_after_a_killed_job_retires_its_unfinished_run(uri):
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(BENCH)  # artifacts under ./mlruns: the test's cwd
    key = tracking.run_key(active_record())
    killed = client.create_run(exp, tags={"halo.key": key}).info.run_id  # never finished
    new = tracking.log_run(active_record(), uri=uri)
    assert [r.info.run_id for r in _active_with_key(client, key)] == [new]
    assert client.get_run(killed).info.lifecycle_stage == "deleted"


def test_failed_logging_leaves_no_partial_run(uri, tmp_path):
    good = tracking.log_run(active_record(), uri=uri)
    with pytest.raises(FileNotFoundError):
        tracking.log_run(active_record(), artifacts=[tmp_path / "missing.yaml"], uri=uri)
    bad = dict(active_record(), per_class_iou={"road": "not a number"})
    bad["rounds"] = [dict(r, round="x") for r in bad["rounds"]]  # step must be an int
    with pytest.raises(ValueError):
        tracking.log_run(bad, uri=uri)
    client = MlflowClient(tracking_uri=uri)
    live = _active_with_key(client, tracking.run_key(active_record()))
    assert [r.info.run_id for r in live] == [good]


def test_log_report_keeps_folders_and_is_idempotent(uri, tmp_path):
    report = tmp_path / "results" / BENCH
    (report / "acquisition").mkdir(parents=True)
    files = [report / "miou.csv", report / "miou.md", report / "acquisition" / "x.png"]
    for f in files:
        f.write_bytes(b"x")
    summary = {"best_miou": 41.5, "n_runs": 3, "note": "text", "halo": {"auc@5.0%": 0.7}}
    first = tracking.log_report(BENCH, files, summary=summary, uri=uri)
    assert tracking.log_report(BENCH, files, summary=summary, uri=uri) == first  # unchanged
    files[2].write_bytes(b"y")  # a new report: it replaces the old run
    second = tracking.log_report(BENCH, files, summary=summary, uri=uri)
    client = MlflowClient(tracking_uri=uri)
    live = _active_with_key(client, "report")
    assert [r.info.run_id for r in live] == [second] and first != second
    run = client.get_run(second)
    assert run.info.run_name == "report"
    assert run.data.metrics == {"best_miou": 41.5, "n_runs": 3.0, "halo/auc_5.0_": 0.7}
    assert _artifacts(client, second) == {"miou.csv", "miou.md", "acquisition/x.png"}
    with pytest.raises(ValueError, match="not under"):
        tracking.log_report(BENCH, [files[0]], root=report / "acquisition", uri=uri)


def test_find_runs_of_missing_store_or_benchmark(tmp_path, uri):
    assert tracking.find_runs(BENCH, uri=f"sqlite:///{tmp_path}/none/mlflow.db") == []
    assert not (tmp_path / "none").exists()
    assert tracking.find_runs("no-such-bench", uri=uri) == []
