"""halo.tracking.runs against real SQLite MLflow stores (no mocks): logging, retries, finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
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
        src: "source-only · hyperbolic-hfr · s0 · deeplabv3plus-r18",
        sup: "supervised · hyperbolic-hfr · s0 · deeplabv3plus-r18",
        act: "halo · 5% · s0 · deeplabv3plus-r18",
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
    assert run.data.params == {"best_miou": "41.5", "n_runs": "3", "halo/auc_5.0_": "0.7"}
    assert run.data.metrics == {}  # the chart view draws the runs' metrics, not the report's
    assert _artifacts(client, second) == {"miou.csv", "miou.md", "acquisition/x.png"}
    with pytest.raises(ValueError, match="not under"):
        tracking.log_report(BENCH, [files[0]], root=report / "acquisition", uri=uri)


def test_find_runs_of_missing_store_or_benchmark(tmp_path, uri):
    assert tracking.find_runs(BENCH, uri=f"sqlite:///{tmp_path}/none/mlflow.db") == []
    assert not (tmp_path / "none").exists()
    assert tracking.find_runs("no-such-bench", uri=uri) == []


def test_experiment_kind_git_commit_and_no_constant_metrics(uri, tmp_path):
    """MLflow 3 opens a model-training experiment on its runs (not the GenAI overview); the
    commit of the code that made the run is MLflow's git tag; the validation set's pixel shares
    (the same in every run) are not repeated in every run."""
    provenance = tmp_path / "provenance.json"
    provenance.write_text(
        json.dumps(
            {
                "git_revision": "0123abcd" * 5 + "-dirty",
                "command": "halo train",
                "argv": ["halo", "train", "--protocol", "active", "--out", "runs/x"],
            }
        )
    )
    run_id = tracking.log_run(active_record(), artifacts=[provenance], uri=uri)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.data.tags["mlflow.source.git.commit"] == "0123abcd" * 5
    assert run.data.tags["halo.git.dirty"] == "true"
    # the run page shows the commit beside a source name only
    assert run.data.tags["mlflow.source.name"] == "halo train --protocol active"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    for argv in (["halo", "train", "--protocol=supervised"], ["halo", "train", "--protocol"], "x"):
        provenance.write_text(json.dumps({"command": "halo train", "argv": argv}))
        other = client.get_run(
            tracking.log_run(active_record(seed=7), artifacts=[provenance], uri=uri)
        )
        want = (
            "halo train --protocol supervised" if "--protocol=supervised" in argv else "halo train"
        )
        assert other.data.tags["mlflow.source.name"] == want, argv
    assert not [k for k in run.data.metrics if k.startswith("pixel_share/")]
    assert {"final_miou", "miou"} <= set(run.data.metrics)


def test_an_older_experiment_is_marked_for_model_training(uri):
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment(BENCH)  # as an older halo created it: no kind tag
    tracking.log_run(other_record("source"), uri=uri)
    assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_loss_curve_is_a_step_metric(uri, tmp_path):
    log = tmp_path / "train_log.json"
    curve = [[s, 2.0 / (s + 1), 0.01 * (1 - s / 8)] for s in range(8)]
    log.write_text(json.dumps({"step": 8, "curve": curve}))
    run_id = tracking.log_run(active_record(), artifacts=[log], uri=uri)
    client = MlflowClient(tracking_uri=uri)
    loss = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "train/loss"))
    assert loss == [(s, pytest.approx(v)) for s, v, _ in curve]
    assert len(client.get_metric_history(run_id, "train/lr")) == 8


def test_each_loss_point_carries_the_time_its_step_ended(uri, tmp_path):
    """A curve with times (``[step, loss, lr, unix seconds]``) puts each point at its step's
    time, so MLflow's time axis spreads the points; a curve without them keeps one time."""
    log = tmp_path / "train_log.json"
    t0 = 1_800_000_000.0
    curve = [[s, 1.0, 0.01, t0 + 0.25 * s] for s in range(6)]
    log.write_text(json.dumps({"step": 6, "curve": curve}))
    run_id = tracking.log_run(active_record(), artifacts=[log], uri=uri)
    client = MlflowClient(tracking_uri=uri)
    for key in ("train/loss", "train/lr"):
        points = sorted((m.step, m.timestamp) for m in client.get_metric_history(run_id, key))
        assert points == [(s, int((t0 + 0.25 * s) * 1000)) for s in range(6)]


def test_the_report_builds_the_tree_of_runs(uri, tmp_path):
    """One top-level parent per (backbone, method, budget) <- its seeds, and per variant for
    the source-only runs; the report stands apart. Linking again changes nothing; a new seed
    joins its cell's parent."""
    src = tracking.log_run(other_record("source"), uri=uri)
    seeds = [tracking.log_run(active_record(seed=s), uri=uri) for s in (0, 1)]
    report_file = tmp_path / "r.csv"
    report_file.write_text("a,b\n")
    report = tracking.log_report(BENCH, [report_file], uri=uri)
    client = MlflowClient(tracking_uri=uri)
    parent_of = lambda run_id: client.get_run(run_id).data.tags.get("mlflow.parentRunId")  # noqa: E731
    cell = parent_of(seeds[0])
    assert cell == parent_of(seeds[1]) and cell not in (None, report)
    assert parent_of(cell) is None and parent_of(report) is None  # top level, side by side
    source_cell = client.get_run(parent_of(src))
    assert source_cell.info.run_name.startswith("source-only · ")
    assert parent_of(source_cell.info.run_id) is None
    cell_run = client.get_run(cell)
    assert cell_run.info.run_name == "halo · 5% · deeplabv3plus-r18"
    assert cell_run.data.metrics["seeds"] == 2 and "final_miou" in cell_run.data.metrics
    assert tracking.log_report(BENCH, [report_file], uri=uri) == report
    assert parent_of(seeds[0]) == cell  # unchanged content: the same parent
    third = tracking.log_run(active_record(seed=2), uri=uri)
    tracking.log_report(BENCH, [report_file], uri=uri)
    new_cell = parent_of(third)
    assert parent_of(seeds[0]) == new_cell and client.get_run(new_cell).data.metrics["seeds"] == 3


def test_a_run_spans_the_jobs_that_made_it(uri):
    record = {**active_record(), "started": 1_700_000_000.25, "finished": 1_700_000_333.5}
    run = MlflowClient(tracking_uri=uri).get_run(tracking.log_run(record, uri=uri))
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_250, 1_700_000_333_500)


def test_params_are_the_resolved_values_of_the_runs_own_protocol(uri, tmp_path):
    """A run's params: the model options after the method's preset (not the file's nulls), the
    resolved radii, and only its protocol's fields (no budget on a source-only model, no method
    on a supervised bound)."""
    from halo.config.load import load_config
    from halo.config.schema import to_dict

    config = tmp_path / "config.yaml"
    cfg = load_config(Path(__file__).parents[2] / "configs" / "test" / "tiny.yaml")
    config.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    client = MlflowClient(tracking_uri=uri)
    runs = {
        kind: client.get_run(tracking.log_run(record, artifacts=[config], uri=uri)).data.params
        for kind, record in (
            ("source", other_record("source")),
            ("supervised", other_record("supervised")),
            ("active", active_record()),
        )
    }
    for params in runs.values():
        assert (params["model.head"], params["model.hfr"]) == ("hyperbolic", "True")
        assert params["model.key"] == "hyperbolic-hfr"
    assert runs["active"]["active.active_radius"] == "1"
    assert (
        runs["active"]["active.budget"] == "0.05" and "train.supervised_steps" not in runs["active"]
    )
    for kind in ("source", "supervised"):
        assert not any(k.startswith("active.") for k in runs[kind]), kind
        assert "config.method" not in runs[kind] and runs[kind]["method"] == kind
    assert "train.source_steps" in runs["source"] and "train.round_steps" not in runs["source"]
    assert "train.supervised_steps" in runs["supervised"]
    # the rounds' own rate and warm-up, resolved (the file says null: the common ones), only on
    # the active run
    t = cfg.train
    assert runs["active"]["train.round_lr"] == str(t.lr)
    assert runs["active"]["train.round_warmup_steps"] == str(t.warmup_steps)
    assert runs["active"]["train.optimizer"] == "sgd" and runs["active"]["train.schedule"] == "poly"
    for kind in ("source", "supervised"):
        assert "train.round_lr" not in runs[kind] and "train.round_warmup_steps" not in runs[kind]
        assert runs[kind]["train.optimizer"] == "sgd"


def test_round_zero_is_the_source_model(uri):
    record = dict(active_record(), start_miou=12.5)
    run_id = tracking.log_run(record, uri=uri)
    client = MlflowClient(tracking_uri=uri)
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "miou"))
    assert history == [(0, 12.5), (1, 30.0), (2, 35.0), (3, 41.5)]
    fraction = sorted(
        (m.step, m.value) for m in client.get_metric_history(run_id, "labelled_fraction")
    )
    assert fraction[0] == (0, 0.0) and len(fraction) == 4


def test_the_datasets_a_model_saw_are_dataset_inputs(uri, tmp_path):
    provenance = tmp_path / "provenance.json"
    datasets = {
        which: {
            "name": name,
            "where": f"data/synth/{name}",
            "images": 4,
            "labelled": 4 if which == "source" else 0,
            "fingerprint": digest * 64,
        }
        for which, name, digest in (("source", "gta5", "a"), ("target", "cityscapes", "b"))
    }
    provenance.write_text(json.dumps({"git_revision": None, "datasets": datasets}))
    run_id = tracking.log_run(active_record(), artifacts=[provenance], uri=uri)
    inputs = MlflowClient(tracking_uri=uri).get_run(run_id).inputs.dataset_inputs
    seen = {{t.key: t.value for t in i.tags}["mlflow.data.context"]: i.dataset for i in inputs}
    assert set(seen) == {"source", "target"}
    assert seen["source"].name == "gta5 (source)" and seen["source"].digest == "a" * 36
    assert json.loads(seen["target"].source) == {"uri": "data/synth/cityscapes"}
    assert json.loads(seen["target"].profile) == {"images": 4, "labelled": 0}


def test_mixed_precision_is_shown_as_it_ran(uri, tmp_path):
    """train.amp=true in the config, but autocast runs on CUDA only: a CPU run shows False."""
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  amp: true\n")
    client = MlflowClient(tracking_uri=uri)
    for device, shown in (("cpu", "False"), ("cuda:0", "True")):
        provenance = tmp_path / device / "provenance.json"
        provenance.parent.mkdir()
        provenance.write_text(json.dumps({"device": device}))
        record = active_record(seed=0 if device == "cpu" else 1)
        run_id = tracking.log_run(record, artifacts=[config, provenance], uri=uri)
        params = client.get_run(run_id).data.params
        assert (params["train.amp"], params["device"]) == (shown, device)
