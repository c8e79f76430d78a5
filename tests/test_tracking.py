"""halo.tracking against real SQLite MLflow stores (no mocks)."""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import shutil
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from halo import tracking
from halo.runs import run_record

BENCH = "synth-gta2cs"
CLASSES = ["road", "traffic light", "sky"]
ROOT = Path(__file__).resolve().parents[1]


def _metrics(miou: float, step: int = 600) -> dict:
    return {
        "miou": miou,
        "miou13": None,
        "per_class_iou": {"road": 90.0, "traffic light": 12.5, "sky": None},
        "class_names": CLASSES,
        "class_pixel_share": {"road": 0.4, "traffic light": 0.01, "sky": 0.2},
        "class_mean_radius": {"road": 0.8, "traffic light": 0.3, "sky": None},
        "step": step,
    }


def active_record(seed: int = 0, method: str = "halo", budget: float = 0.05) -> dict:
    mious = [30.0 + seed, 35.0 + seed, 41.5 + seed]
    budgets = [
        {
            "round": r,
            "pixels_labelled_cumulative": 100 * r,
            "fraction_cumulative": budget * r / 3,
            "regions": 10 * r,
        }
        for r in (1, 2, 3)
    ]
    return run_record(
        benchmark=BENCH,
        backbone="deeplabv3plus-r18",
        method=method,
        kind="active",
        variant="hyperbolic-hfr",
        seed=seed,
        metrics=[_metrics(m) for m in mious],
        budgets=budgets,
        budget=budget,
    )


def other_record(kind: str) -> dict:
    """A source/supervised record built by ``run_record``."""
    return run_record(
        benchmark=BENCH,
        backbone="deeplabv3plus-r18",
        method=kind,
        kind=kind,
        variant="hyperbolic-hfr",
        seed=0,
        metrics=[_metrics(20.0 if kind == "source" else 60.0)],
    )


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch) -> Path:
    """Run every test from an empty folder: nothing may land in the checkout (``./mlruns``)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """One migrated database; copying it is much faster than migrating a fresh one per test."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    tracking.init_store(f"sqlite:///{db}")
    return db


@pytest.fixture
def uri(tmp_path, template_db) -> str:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return f"sqlite:///{db}"


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for f in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return out


def _active_with_key(client: MlflowClient, key: str) -> list:
    exp = client.get_experiment_by_name(BENCH)
    return client.search_runs(
        [exp.experiment_id], f"tags.`halo.key` = '{key}'", ViewType.ACTIVE_ONLY
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
    second = tracking.log_run(active_record(), uri=uri)
    other = tracking.log_run(active_record(seed=1), uri=uri)
    assert len({first, second, other}) == 3
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


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker:5000")
    assert tracking.tracking_uri() == "http://tracker:5000"
    assert tracking.tracking_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"
    assert tracking.init_store() == "http://tracker:5000"  # nothing to do for a server


def test_only_tracking_imports_mlflow():
    pattern = re.compile(r"^\s*(import\s+mlflow|from\s+mlflow[\s.])", re.MULTILINE)
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "halo").rglob("*.py"))
        if p.name != "tracking.py" and pattern.search(p.read_text())
    ]
    assert offenders == []
    assert pattern.search((ROOT / "halo" / "tracking.py").read_text())


def test_log_report_keeps_folders_and_is_idempotent(uri, tmp_path):
    report = tmp_path / "results" / BENCH
    (report / "acquisition").mkdir(parents=True)
    files = [report / "miou.csv", report / "miou.md", report / "acquisition" / "x.png"]
    for f in files:
        f.write_bytes(b"x")
    summary = {"best_miou": 41.5, "n_runs": 3, "note": "text", "halo": {"auc@5.0%": 0.7}}
    first = tracking.log_report(BENCH, files, summary=summary, uri=uri)
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


# --------------------------------------------------------------------------------------------
# concurrent writers: separate processes, as parallel Snakemake jobs are.
#
# Processes come from a forkserver that has imported mlflow (and alembic, MLflow's SQL store)
# once: each worker is a clean process (no pytest state, no inherited database connection), as
# with spawn, but without paying the ~5-7 s of imports 8 times over on 2 cores. Each worker
# opens its own engine and store, as a Snakemake job would.


def _worker(uri: str, record: dict, fresh: bool, barrier, results) -> None:
    try:
        if not fresh:
            tracking.init_store(uri)  # checked before the start: then all 8 write at once
        barrier.wait(timeout=120)
        if fresh:
            tracking.init_store(uri)  # 8 callers on a fresh database: the lock serialises them
        results.put((record["seed"], tracking.log_run(record, uri=uri)))
    except BaseException:
        import traceback

        results.put((record["seed"], "ERROR " + traceback.format_exc()))


_PRELOAD = [
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.db.utils",
    "alembic.command",
    "alembic.runtime.migration",
    "alembic.script",
    "halo.tracking",
]


def _run_concurrently(uri: str, records: list[dict], fresh: bool) -> list[str]:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([*_PRELOAD, __name__])
    barrier, results = ctx.Barrier(len(records)), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(uri, r, fresh, barrier, results)) for r in records]
    for p in procs:
        p.start()
    out = dict(results.get(timeout=180) for _ in records)
    for p in procs:
        p.join(timeout=60)
    errors = [v for v in out.values() if v.startswith("ERROR")]
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * len(records)
    return [out[r["seed"]] for r in records]


def _check_all_present(uri: str, records: list[dict], run_ids: list[str]) -> None:
    runs = {r["run_id"]: r for r in tracking.find_runs(BENCH, uri=uri)}
    assert set(runs) == set(run_ids)
    client = MlflowClient(tracking_uri=uri)
    for rec, run_id in zip(records, run_ids, strict=True):
        run = runs[run_id]
        assert run["tags"]["halo.key"] == tracking.run_key(rec)
        assert run["metrics"]["final_miou"] == rec["miou"]
        assert {"iou/road", "iou/traffic_light", "radius/road", "budget_used"} <= set(
            run["metrics"]
        )
        assert [h.step for h in client.get_metric_history(run_id, "miou")] == [1, 2, 3]


@pytest.mark.slow
def test_concurrent_writers_into_an_initialised_store(uri):
    assert tracking.init_store(uri) == uri  # a copy of a store initialised by init_store
    records = [active_record(seed=s) for s in range(8)]
    run_ids = _run_concurrently(uri, records, fresh=False)
    _check_all_present(uri, records, run_ids)


@pytest.mark.slow
def test_concurrent_init_and_write_on_a_fresh_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/db/mlflow.db"
    records = [active_record(seed=s) for s in range(8)]
    run_ids = _run_concurrently(uri, records, fresh=True)
    _check_all_present(uri, records, run_ids)
    assert (tmp_path / "db" / "mlflow.db.lock").exists()
