"""MLflow tracking: run records and reports into an MLflow store (the only module importing mlflow).

One MLflow *experiment* per benchmark; one MLflow *run* per run record (``halo.runs``), plus one
run named ``report`` per benchmark holding the report's tables and figures.

Store
    :func:`tracking_uri` resolves the store: explicit argument, else ``MLFLOW_TRACKING_URI``,
    else ``sqlite:///<cwd>/mlflow.db`` (MLflow 3.x's own default, made absolute). A fresh SQLite
    store must be created once before parallel jobs write to it, otherwise concurrent writers race
    in MLflow's schema migrations: :func:`init_store` does that under an ``fcntl`` lock on
    ``<db>.lock`` beside the database, and :func:`log_run` / :func:`log_report` call it too, so a
    forgotten init step is safe (it costs one schema-version check when the store is up to date).
    On clusters use an ``http(s)://`` tracking server rather than SQLite on NFS.

Artifacts
    MLflow 3.17 puts a SQLite store's artifacts under ``<cwd>/mlruns/<experiment id>``, with the
    cwd of whichever process created the experiment. Experiments created here get
    ``<db folder>/mlartifacts/<benchmark>`` instead (experiment 0 gets ``.../mlartifacts/0``), so
    artifacts stay beside the database whatever the cwd. Other stores keep their defaults, and an
    existing experiment keeps its location.

Identity and idempotency
    Every run carries the tag ``halo.key`` (``<benchmark>/<backbone>/<kind>/<method>/<variant>/
    budget=<b>/seed=<s>``, or ``report``). Logging a key again (a retried job) creates the new run
    in full, marks it FINISHED, then soft-deletes every older non-deleted run with that key; a
    run that fails mid-logging deletes itself. So at most one non-deleted run per key remains once
    loggers are done, and it is the newest complete one. Soft-deleted runs stay in the database
    until ``mlflow gc``. Nothing is appended to an existing run (no ``log_table``).

Grouping
    Tags only, no parent runs (a parent run per benchmark cannot be created race-free on every
    store). ``halo.group`` = ``<backbone>/<method>`` and ``halo.replicates`` = the key without
    the seed (the runs that differ only by seed); group by either in the MLflow UI's runs table.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:  # POSIX only; elsewhere init_store runs unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

REPORT_KEY = "report"
ARTIFACT_DIR = "mlartifacts"

# MLflow's batch limits (mlflow.utils.validation); kept here so the module imports without mlflow.
_MAX_METRICS, _MAX_PARAMS_TAGS, _MAX_ENTITIES = 1000, 100, 1000
_MAX_PARAM_VALUE, _MAX_KEY = 6000, 250

_IDENTITY = ("backbone", "method", "kind", "variant", "budget", "seed")


# --------------------------------------------------------------------------------------------
# store


def tracking_uri(uri: str | None = None) -> str:
    """The tracking URI: ``uri``, else env ``MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlflow.db``."""
    if uri:
        return str(uri)
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (absolute), ``None`` for other or in-memory stores."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def init_store(uri: str | None = None) -> str:
    """Create or upgrade the store's schema once, before parallel jobs write to it.

    For a SQLite store: create the database (and its folder) and run MLflow's migrations, as
    ``mlflow db upgrade`` does, then create the default experiment 0 with its artifacts beside the
    database; all under an exclusive ``fcntl`` lock on ``<db>.lock`` so that concurrent callers
    wait for the first one instead of racing. Idempotent: on an up-to-date store it only checks
    the schema version, once per process and URI. Other stores (``http(s)://``, other
    databases) are left alone.

    Returns:
        The resolved tracking URI.
    """
    # No telemetry from jobs: clusters and CI are offline, and a run must not phone home.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = tracking_uri(uri)
    db = _sqlite_path(uri)
    if db is None or (uri in _READY and db.exists()):
        return uri
    import mlflow.store.db.utils as db_utils
    import sqlalchemy
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with _locked(db.with_name(db.name + ".lock")):
        engine = db_utils.create_sqlalchemy_engine_with_retry(uri)
        try:
            if db_utils._is_empty_database(engine):
                db_utils._initialize_tables(engine)
            elif db_utils._get_schema_version(engine) != db_utils._get_latest_schema_revision():
                db_utils._upgrade_db(engine)
            with engine.connect() as conn:
                query = "SELECT 1 FROM experiments WHERE experiment_id = 0"
                has_default = conn.execute(sqlalchemy.text(query)).first() is not None
        finally:
            engine.dispose()
        if not has_default:  # MLflow's store creates experiment 0 when constructed
            SqlAlchemyStore(uri, str(db.parent / ARTIFACT_DIR))
    _READY.add(uri)
    return uri


# SQLite URIs this process has initialised or checked (skips the lock and schema check next time)
_READY: set[str] = set()


def _client(uri: str | None):
    from mlflow.tracking import MlflowClient

    uri = init_store(uri)
    return MlflowClient(tracking_uri=uri), uri


def _experiment_id(client, name: str, uri: str, *, create: bool = True) -> str | None:
    """The id of experiment ``name``: restored if deleted, created if missing (race-safe)."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None and create:
        db = _sqlite_path(uri)
        location = str(db.parent / ARTIFACT_DIR / _safe(name)) if db is not None else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(name)  # a concurrent job created it
    if exp is None:
        return None
    if exp.lifecycle_stage == "deleted":
        if not create:
            return None
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


# --------------------------------------------------------------------------------------------
# names, keys, values


def _safe(name: Any) -> str:
    """A valid, portable metric/param key part: ASCII letters, digits, ``_ . -``; others -> ``_``."""
    out = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name))
    return "_" if out in ("", ".", "..") else out


def _budget_str(budget: float | None) -> str:
    return "none" if budget is None else repr(float(budget))


def _percent(budget: float) -> str:
    return f"{round(float(budget) * 100, 6):g}%"


def run_key(record: Mapping[str, Any]) -> str:
    """The stable identity key of a run record (tag ``halo.key``)."""
    return "/".join(
        [
            str(record["benchmark"]),
            str(record["backbone"]),
            str(record["kind"]),
            str(record["method"]),
            str(record["variant"]),
            f"budget={_budget_str(record.get('budget'))}",
            f"seed={record['seed']}",
        ]
    )


def run_name(record: Mapping[str, Any]) -> str:
    """Readable run name: ``<backbone> · <method> · <budget %> · seed<s>`` for active runs."""
    backbone, kind = record["backbone"], record["kind"]
    if kind == "active":
        return (
            f"{backbone} · {record['method']} · {_percent(record['budget'])} · seed{record['seed']}"
        )
    label = "source-only" if kind == "source" else kind
    return f"{backbone} · {label} [{record['variant']}]"


def _tags(record: Mapping[str, Any]) -> dict[str, str]:
    key = run_key(record)
    return {
        "halo.key": key,
        "halo.benchmark": str(record["benchmark"]),
        "halo.backbone": str(record["backbone"]),
        "halo.method": str(record["method"]),
        "halo.kind": str(record["kind"]),
        "halo.variant": str(record["variant"]),
        "halo.budget": _budget_str(record.get("budget")),
        "halo.seed": str(record["seed"]),
        "halo.group": f"{record['backbone']}/{record['method']}",
        "halo.replicates": key.rsplit("/", 1)[0],
    }


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str)
    elif value is None:
        text = "none"
    else:
        text = str(value)
    return text if len(text) <= _MAX_PARAM_VALUE else text[: _MAX_PARAM_VALUE - 1] + "…"


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested mappings -> ``{"train.lr": 0.01, ...}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + sep, sep))
        else:
            out[key] = v
    return out


def _config_params(path: Path) -> dict[str, str]:
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    params = {}
    for k, v in flatten(data).items():
        key = "/".join(_safe(part) for part in str(k).split("/"))[:_MAX_KEY]
        params[key] = _param_value(v)
    return params


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _class_keys(names: Sequence[str]) -> dict[str, str]:
    """Class name -> sanitised metric suffix, unique even when two names sanitise alike."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = key = _safe(name)
        i = 2
        while key in used:
            key, i = f"{base}_{i}", i + 1
        used.add(key)
        out[name] = key
    return out


def _record_metrics(record: Mapping[str, Any], timestamp: int):
    from mlflow.entities import Metric

    metrics = []

    def add(key: str, value: Any, step: int = 0) -> None:
        if value is not None and _is_number(value):
            metrics.append(Metric(key, float(value), timestamp, int(step)))

    rounds = record.get("rounds") or []
    if record["kind"] == "active" and rounds:
        for r in rounds:
            add("miou", r.get("miou"), r["round"])
            add("labelled_fraction", r.get("fraction_cumulative"), r["round"])
            add("pixels_labelled", r.get("pixels_labelled_cumulative"), r["round"])
            add("regions", r.get("regions"), r["round"])
    else:
        add("miou", record.get("miou"), 0)
    add("final_miou", record.get("miou"))
    add("miou13", record.get("miou13"))
    add("budget_used", record.get("budget_used"))
    per_class = {
        "iou": record.get("per_class_iou") or {},
        "radius": record.get("class_mean_radius") or {},
        "pixel_share": record.get("class_pixel_share") or {},
    }
    names = list(record.get("class_names") or [])
    for table in per_class.values():
        names += [n for n in table if n not in names]
    keys = _class_keys(names)
    for prefix, table in per_class.items():
        for name in names:
            add(f"{prefix}/{keys[name]}", table.get(name))
    return metrics


def _log_batched(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """``log_batch`` in chunks within MLflow's per-request limits."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:_MAX_PARAMS_TAGS], params[_MAX_PARAMS_TAGS:]
        t, tags = tags[:_MAX_PARAMS_TAGS], tags[_MAX_PARAMS_TAGS:]
        room = min(_MAX_METRICS, _MAX_ENTITIES - len(p) - len(t))
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)


# --------------------------------------------------------------------------------------------
# runs


def _runs_with_key(client, experiment_id: str, key: str) -> list:
    from mlflow.entities import ViewType

    if "'" not in key:
        flt = f"tags.`halo.key` = '{key}'"
    elif '"' not in key:
        flt = f'tags.`halo.key` = "{key}"'
    else:  # both quote kinds: filter here instead
        flt = ""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], flt, ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        runs += [r for r in page if r.data.tags.get("halo.key") == key]
        token = page.token
        if not token:
            return runs


def _new_run(client, experiment_id: str, name: str, tags: dict[str, str], fill) -> str:
    """Create a run, ``fill(run_id)`` it, finish it and retire older runs with the same key.

    Returns the id of the run that remains for the key (this one, unless a newer complete run
    with the same key appeared meanwhile, in which case this one is deleted).
    """
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        fill(run_id)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        try:
            client.delete_run(run_id)
        except Exception:
            pass
        raise
    me = (run.info.start_time, run_id)
    survivor = run_id
    for other in _runs_with_key(client, experiment_id, tags["halo.key"]):
        if other.info.run_id == run_id:
            continue
        them = (other.info.start_time, other.info.run_id)
        if them < me:
            client.delete_run(other.info.run_id)
        elif other.info.status == "FINISHED" and survivor == run_id:
            client.delete_run(run_id)  # a newer complete run of this key exists: it wins
            survivor = other.info.run_id
    return survivor


def _check_files(paths: Sequence[Path]) -> list[Path]:
    out = [Path(p) for p in paths]
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        raise FileNotFoundError(f"artifacts not found: {', '.join(missing)}")
    return out


def _log_path(client, run_id: str, path: Path, artifact_path: str | None) -> None:
    if path.is_dir():
        sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
        client.log_artifacts(run_id, str(path), sub)
    else:
        client.log_artifact(run_id, str(path), artifact_path)


def log_run(record: dict, *, artifacts: Sequence[Path] = (), uri: str | None = None) -> str:
    """Log one run record (``halo.runs``) as an MLflow run; returns the run id.

    Experiment ``record["benchmark"]`` (created if missing). Tags ``halo.*`` (identity, group),
    params (identity fields, plus the flattened keys of an artifact named ``config.yaml``),
    metrics (``miou`` per round as a step metric, ``final_miou``, ``miou13``, ``budget_used``,
    ``iou/<class>``, ``radius/<class>``, ``pixel_share/<class>``, per-round ``labelled_fraction``,
    ``pixels_labelled``, ``regions``), artifacts (``record.json`` and ``artifacts``, a directory
    keeping its name). A previous run with the same ``halo.key`` is deleted once this one is
    complete (see the module docstring).
    """
    missing = [k for k in ("benchmark", *_IDENTITY) if k not in record]
    if missing:
        raise ValueError(f"log_run: record lacks {', '.join(missing)}")
    if record["kind"] == "active" and record.get("budget") is None:
        raise ValueError("log_run: an active record needs a budget")
    files = _check_files(artifacts)
    params = {k: _param_value(record.get(k)) for k in _IDENTITY}
    if record.get("steps") is not None:
        params["steps"] = _param_value(record["steps"])
    config = next((p for p in files if p.name == "config.yaml" and p.is_file()), None)
    if config is not None:
        for k, v in _config_params(config).items():
            if k in params and params[k] != v:
                k = f"config.{k}"
            params.setdefault(k, v)

    from mlflow.entities import Param
    from mlflow.utils.time import get_current_time_millis

    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(record["benchmark"]), uri)

    def fill(run_id: str) -> None:
        metrics = _record_metrics(record, get_current_time_millis())
        _log_batched(client, run_id, metrics, [Param(k, v) for k, v in params.items()])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "record.json"
            path.write_text(json.dumps(record, indent=2, default=str) + "\n")
            client.log_artifact(run_id, str(path))
        for f in files:
            _log_path(client, run_id, f, None)

    return _new_run(client, experiment_id, run_name(record), _tags(record), fill)


def log_report(
    benchmark: str,
    files: Sequence[Path],
    *,
    summary: dict | None = None,
    uri: str | None = None,
    root: Path | None = None,
) -> str:
    """Log the benchmark's report as the run ``report`` of its experiment; returns the run id.

    ``files`` keep their folder relative to ``root`` (default: the deepest folder holding all of
    them), e.g. ``<root>/acquisition/x.png`` -> artifact ``acquisition/x.png``. Numeric entries
    of ``summary`` (nested mappings flattened with ``/``) become metrics. Idempotent like
    :func:`log_run` (key ``report``).
    """
    paths = [p.resolve() for p in _check_files(files)]
    if root is None:
        parents = [p if p.is_dir() else p.parent for p in paths]
        root = Path(os.path.commonpath(parents)) if parents else Path.cwd()
    root = Path(root).resolve()
    placed = []
    for p in paths:
        try:
            rel = p.relative_to(root)
        except ValueError:
            raise ValueError(f"log_report: {p} is not under {root}") from None
        folder = rel.parent.as_posix()
        placed.append((p, None if folder == "." else folder))

    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(benchmark), uri)
    tags = {
        "halo.key": REPORT_KEY,
        "halo.kind": REPORT_KEY,
        "halo.benchmark": str(benchmark),
    }

    def fill(run_id: str) -> None:
        now = get_current_time_millis()
        flat = flatten(summary or {}, sep="/")
        metrics = [
            Metric("/".join(_safe(s) for s in str(k).split("/"))[:_MAX_KEY], float(v), now, 0)
            for k, v in flat.items()
            if _is_number(v)
        ]
        _log_batched(client, run_id, metrics)
        for p, folder in placed:
            _log_path(client, run_id, p, folder)

    return _new_run(client, experiment_id, REPORT_KEY, tags, fill)


def find_runs(benchmark: str, uri: str | None = None) -> list[dict]:
    """The non-deleted runs of a benchmark's experiment as plain dicts, oldest first.

    Each: ``run_id``, ``name``, ``status``, ``start_time`` (ms), ``artifact_uri``, ``tags``,
    ``params``, ``metrics`` (latest value per key). ``[]`` when the experiment does not exist.
    """
    from mlflow.entities import ViewType

    db = _sqlite_path(tracking_uri(uri))
    if db is not None and not db.exists():
        return []
    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(benchmark), uri, create=False)
    if experiment_id is None:
        return []
    out, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            "",
            ViewType.ACTIVE_ONLY,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        out += [
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "status": r.info.status,
                "start_time": r.info.start_time,
                "artifact_uri": r.info.artifact_uri,
                "tags": dict(r.data.tags),
                "params": dict(r.data.params),
                "metrics": dict(r.data.metrics),
            }
            for r in page
        ]
        token = page.token
        if not token:
            return out


__all__ = [
    "find_runs",
    "flatten",
    "init_store",
    "log_report",
    "log_run",
    "run_key",
    "run_name",
    "tracking_uri",
]
