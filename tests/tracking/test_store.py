"""halo.tracking.store: the tracking URI, and concurrent writers on one SQLite store (the file
lock around the schema creation)."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest
from mlflow.tracking import MlflowClient

from halo import tracking
from tests.tracking.conftest import BENCH, active_record


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracker:5000")
    assert tracking.tracking_uri() == "http://tracker:5000"
    assert tracking.tracking_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"
    assert tracking.init_store() == "http://tracker:5000"  # nothing to do for a server


@pytest.mark.parametrize("user", [None, "false"])
def test_a_job_starts_no_mlflow_telemetry_unless_the_user_asks(user):
    """A fresh process that logs through halo.tracking (as `halo track` does) imports mlflow with
    MLFLOW_DISABLE_TELEMETRY set (MLflow starts its telemetry client, and a thread that fetches
    its config, at import) and so has no telemetry client; a user's own setting is kept."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "CI")}
    if user is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = user
    code = (  # records the variable at the moment the process first imports mlflow
        "import importlib.abc, os, sys\n"
        "seen = []\n"
        "class Watch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mlflow':\n"
        "            seen.append(os.environ.get('MLFLOW_DISABLE_TELEMETRY'))\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from halo.tracking.store import _client\n"
        "_client(sys.argv[1])\n"  # (a server URI: the client without a store to create)
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(*seen, get_telemetry_client() is None)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    if user is None:
        assert res.stdout.split() == ["true", "True"]
    else:
        assert res.stdout.split()[0] == "false"


# --------------------------------------------------------------------------------------------
# concurrent writers: separate processes, as parallel Snakemake jobs are.
#
# Processes come from a forkserver that has imported mlflow (and alembic, MLflow's SQL store)
# once: each worker is a clean process (no pytest state, no inherited database connection), as
# with spawn, but without paying the ~5-7 s of imports 8 times over on 2 cores. Each worker
# opens its own engine and store, as a Snakemake job would.


def _worker(uri: str, record: dict, fresh: bool, barrier, results, artifacts=()) -> None:
    name = record.get("_worker", record["seed"])
    try:
        if not fresh:
            tracking.init_store(uri)  # checked before the start: then all 8 write at once
        barrier.wait(timeout=120)
        if fresh:
            tracking.init_store(uri)  # 8 callers on a fresh database: the lock serialises them
        name = record.pop("_worker", record["seed"])
        results.put((name, tracking.log_run(record, artifacts=artifacts, uri=uri)))
    except BaseException:
        import traceback

        results.put((name, "ERROR " + traceback.format_exc()))


_PRELOAD = [
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.db.utils",
    "alembic.command",
    "alembic.runtime.migration",
    "alembic.script",
    "halo.tracking",
]


def _run_concurrently(
    uri: str, records: list[dict], fresh: bool, key: str = "seed", artifacts=()
) -> list[str]:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([*_PRELOAD, __name__])
    barrier, results = ctx.Barrier(len(records)), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(uri, r, fresh, barrier, results, artifacts))
        for r in records
    ]
    for p in procs:
        p.start()
    out = dict(results.get(timeout=180) for _ in records)
    for p in procs:
        p.join(timeout=60)
    errors = [v for v in out.values() if v.startswith("ERROR")]
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * len(records)
    return [out[r[key]] for r in records]


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
def test_concurrent_writers_share_the_datasets_they_saw(uri, tmp_path):
    """8 runs of different keys log the same source/target datasets at once (the parallel
    `track` jobs of one benchmark): MLflow keeps one dataset per (experiment, name, digest), so
    the first insert of each must not race the others into a UNIQUE-constraint failure."""
    provenance = tmp_path / "provenance.json"
    datasets = {
        which: {"name": name, "where": name, "images": 4, "labelled": 4, "fingerprint": d * 64}
        for which, name, d in (("source", "gta5", "a"), ("target", "cityscapes", "b"))
    }
    provenance.write_text(json.dumps({"git_revision": None, "datasets": datasets}))
    tracking.init_store(uri)
    records = [active_record(seed=s) for s in range(8)]
    run_ids = _run_concurrently(uri, records, fresh=False, artifacts=[provenance])
    _check_all_present(uri, records, run_ids)
    client = MlflowClient(tracking_uri=uri)
    for run_id in run_ids:
        names = sorted(i.dataset.name for i in client.get_run(run_id).inputs.dataset_inputs)
        assert names == ["cityscapes (target)", "gta5 (source)"]


@pytest.mark.slow
def test_concurrent_loggers_of_one_key_all_name_the_run_that_stays(uri):
    """8 processes log the same record at once (a retried job racing itself): one live run
    remains, and every logger returns its id (what `halo track --out` writes)."""
    tracking.init_store(uri)
    records = [dict(active_record(), seed=0, _worker=i) for i in range(8)]
    run_ids = _run_concurrently(uri, records, fresh=False, key="_worker")
    live = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name(BENCH).experiment_id]
    )
    assert [r.info.run_id for r in live] == [run_ids[0]]
    assert set(run_ids) == {run_ids[0]}


@pytest.mark.slow
def test_concurrent_init_and_write_on_a_fresh_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/db/mlflow.db"
    records = [active_record(seed=s) for s in range(8)]
    run_ids = _run_concurrently(uri, records, fresh=True)
    _check_all_present(uri, records, run_ids)
    assert (tmp_path / "db" / "mlflow.db.lock").exists()


def _snapshot(root) -> dict:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_copied_project_writes_only_its_own_files_and_a_moved_one_finds_its_artifacts(
    tmp_path, monkeypatch
):
    """cp -a of a project with its store: `halo track` in the copy leaves every file of the
    original byte for byte and time for time; after mv, the store lists the artifacts."""
    import shutil

    from halo.cli import main

    original = tmp_path / "proj"
    original.mkdir()
    for name, seed, where in (("a", 0, original),):
        (where / f"{name}.json").write_text(json.dumps(active_record(seed=seed)))
    monkeypatch.chdir(original)
    assert main(["track", "--record", "a.json", "--out", "a.mlflow.json"]) == 0
    assert (original / "mlartifacts").is_dir()
    before = _snapshot(original)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    (copy / "b.json").write_text(json.dumps(active_record(seed=1)))
    monkeypatch.chdir(copy)
    tracking.store._READY.clear()  # a new process
    assert main(["track", "--record", "b.json", "--out", "b.mlflow.json"]) == 0
    assert _snapshot(original) == before  # nothing written into the original
    recorded = json.loads((copy / "b.mlflow.json").read_text())
    assert recorded["tracking_uri"] == "sqlite:///mlflow.db"  # the project's own, relative
    moved = tmp_path / "moved"
    shutil.move(copy, moved)
    monkeypatch.chdir(moved)
    tracking.store._READY.clear()
    assert main(["track", "--init"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    listed = {f.path for f in client.list_artifacts(recorded["run_id"])}
    assert listed, "the moved store lists no artifacts"
    run = client.get_run(recorded["run_id"])
    assert run.info.artifact_uri.startswith(str(moved / "mlartifacts"))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_store_is_one_line_naming_the_database(tmp_path, monkeypatch, capsys, damage):
    from halo.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps(active_record()))
    assert main(["track", "--record", "a.json", "--out", "a.mlflow.json"]) == 0
    db = tmp_path / "mlflow.db"
    data = db.read_bytes()
    db.write_bytes(data[:20000] if damage == "truncated" else b"not a database at all" * 100)
    tracking.store._READY.clear()  # a new process
    capsys.readouterr()
    assert main(["track", "--record", "a.json", "--out", "b.mlflow.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"tracking store {db}:" in err[0], err
    assert not (tmp_path / "b.mlflow.json").exists()


def test_store_faults_map_to_one_line_each():
    import sqlite3

    for words, kind in (
        ("database or disk is full", OSError),
        ("database is locked", OSError),
        ("database disk image is malformed", ValueError),
    ):
        try:
            try:
                raise sqlite3.OperationalError(words)
            except sqlite3.OperationalError as inner:
                raise RuntimeError("wrapped by a library") from inner
        except RuntimeError as err:
            fault = tracking.store.store_fault(err, "sqlite:////x/mlflow.db")
        assert isinstance(fault, kind) and "/x/mlflow.db" in str(fault), (words, fault)
    assert tracking.store.store_fault(KeyError("other"), "sqlite:////x/mlflow.db") is None


def _track_fault(capsys) -> tuple[int, list[str]]:
    """``halo track`` of b.json in a new process's state: its exit code and stderr lines."""
    from halo.cli import main

    tracking.store._READY.clear()  # a new process
    capsys.readouterr()
    code = main(["track", "--record", "b.json", "--out", "b.mlflow.json"])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_locked_store_is_one_line_naming_the_database(tmp_path, monkeypatch, capsys):
    """Another process holds the database's write lock for longer than SQLite waits."""
    import sqlite3

    from halo.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps(active_record()))
    assert main(["track", "--record", "a.json", "--out", "a.mlflow.json"]) == 0
    (tmp_path / "b.json").write_text(json.dumps(active_record(seed=1)))
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        code, err = _track_fault(capsys)
    finally:
        holder.close()
    assert code == 1 and len(err) == 1, err
    assert f"{tmp_path / 'mlflow.db'}" in err[0] and "locked" in err[0], err
    assert not (tmp_path / "b.mlflow.json").exists()


def test_a_full_disk_under_the_store_is_one_line(tmp_path, monkeypatch, capsys):
    """The store and its artifacts on a small file system that fills up after the first run."""
    from halo.cli import main
    from tests.cli.test_errors import _fill, _mounted

    with _mounted(tmp_path / "disk", "size=8m") as disk:
        monkeypatch.chdir(disk)
        (disk / "a.json").write_text(json.dumps(active_record()))
        assert main(["track", "--record", "a.json", "--out", "a.mlflow.json"]) == 0
        (disk / "b.json").write_text(json.dumps(active_record(seed=1)))
        _fill(disk)
        code, err = _track_fault(capsys)
        (disk / "filler").unlink()
        assert code == 1 and len(err) == 1, err
        assert "No space left on device" in err[0] or "disk is full" in err[0], err
        assert str(disk) in err[0] or "mlflow.db" in err[0], err
        assert not (disk / "b.mlflow.json").exists()
