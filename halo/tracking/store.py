"""The MLflow store: its URI, its one-time creation under a file lock, the client and the
experiment of a benchmark.

Store
    :func:`tracking_uri` resolves the store: explicit argument, else ``MLFLOW_TRACKING_URI``,
    else ``sqlite:///<cwd>/mlflow.db`` (MLflow 3.x's own default, made absolute). A fresh SQLite
    store must be created once before parallel jobs write to it, otherwise concurrent writers race
    in MLflow's schema migrations: :func:`init_store` does that under an ``fcntl`` lock on
    ``<db>.lock`` beside the database, and :func:`~halo.tracking.runs.log_run` /
    :func:`~halo.tracking.runs.log_report` call it too, so a forgotten init step is safe (it costs
    one schema-version check when the store is up to date). On clusters use an ``http(s)://``
    tracking server rather than SQLite on NFS.

Artifacts
    MLflow 3.17 puts a SQLite store's artifacts under ``<cwd>/mlruns/<experiment id>``, with the
    cwd of whichever process created the experiment. Experiments created here get
    ``<db folder>/mlartifacts/<benchmark>`` instead (experiment 0 gets ``.../mlartifacts/0``), so
    artifacts stay beside the database whatever the cwd. Other stores keep their defaults, and an
    existing experiment keeps its location.

mlflow is imported inside the functions that need it, so importing this module does not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from halo.tracking.fields import _safe

try:  # POSIX only; elsewhere init_store runs unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["ARTIFACT_DIR", "init_store", "key_lock", "tracking_uri"]

ARTIFACT_DIR = "mlartifacts"
# MLflow 3's kind of an experiment (model training, not GenAI). Seen with MLflow 3.17: a fresh
# browser still lands on the GenAI overview; the tag is what MLflow itself sets for training.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


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


@contextmanager
def key_lock(uri: str, experiment_id: str, key: str) -> Iterator[None]:
    """Loggers of one run key take turns: an ``fcntl`` lock on a file named by a hash of (store,
    experiment, key), beside a SQLite database (``<db>.locks/``) or in halo's cache folder for
    other stores (processes on one machine; a run key is logged by one job at a time anyway)."""
    import hashlib

    from halo.io import cache_dir

    name = hashlib.sha256(f"{uri}\0{experiment_id}\0{key}".encode()).hexdigest()[:24]
    db = _sqlite_path(uri)
    folder = db.parent / f"{db.name}.locks" if db is not None else cache_dir() / "tracking-locks"
    with _locked(folder / f"{name}.lock"):
        yield


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
            experiment_id = client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
            )
            return experiment_id
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
    if create and exp.tags.get(EXPERIMENT_KIND) != MODEL_TRAINING:  # a store of an older halo
        client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return exp.experiment_id
