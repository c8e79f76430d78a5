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
    artifacts stay beside the database whatever the cwd. Other stores keep their defaults.

    MLflow records those locations as absolute paths. A project copied or moved with its store
    would then write into, or read from, the old folder; so every process that opens a SQLite
    store first re-derives them (:func:`relocate`): an experiment's, run's or logged model's
    location ``<old folder>/mlartifacts/...`` becomes ``<db folder>/mlartifacts/...``. A copy
    writes only its own files; a moved project finds its artifacts.

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

__all__ = ["ARTIFACT_DIR", "init_store", "key_lock", "portable_uri", "relocate", "tracking_uri"]

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


def portable_uri(uri: str) -> str:
    """``uri`` as a record names it: a SQLite store inside the working directory relative to it
    (``sqlite:///mlflow.db``), so a copied or moved project's records name its own store."""
    db = _sqlite_path(uri)
    if db is None:
        return uri
    try:
        return f"sqlite:///{db.relative_to(Path.cwd().resolve()).as_posix()}"
    except ValueError:
        return uri


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
        relocate(db)
    _READY.add(uri)
    return uri


#: (table, column) of every artifact location MLflow 3 records in a SQLite store
_LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
)


def relocate(db: Path) -> int:
    """Point the store's artifact locations at the ``mlartifacts/`` beside ``db``.

    Every recorded location of the form ``<folder>/mlartifacts/<rest>`` (a path, or a
    ``file://`` URI) whose folder is not ``db``'s becomes ``<db folder>/mlartifacts/<rest>``;
    other locations (a server's, an S3 bucket) are left alone. Returns the rows changed.
    """
    import sqlite3

    here = str(db.parent / ARTIFACT_DIR)
    changed = 0
    con = sqlite3.connect(db, timeout=60)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, column in _LOCATIONS:
            if table not in tables:
                continue
            for rowid, location in con.execute(f"SELECT rowid, {column} FROM {table}").fetchall():
                moved = _moved(location, here)
                if moved is not None:
                    update = f"UPDATE {table} SET {column} = ? WHERE rowid = ?"
                    con.execute(update, (moved, rowid))
                    changed += 1
        con.commit()
    finally:
        con.close()
    return changed


def _moved(location: object, here: str) -> str | None:
    """``location`` moved under ``here`` (the db's mlartifacts), or None when it stays."""
    if not isinstance(location, str):
        return None
    prefix = "file://" if location.startswith("file://") else ""
    path = location[len(prefix) :]
    if not path.startswith("/"):
        return None
    _, sep, tail = (path + "/").partition(f"/{ARTIFACT_DIR}/")  # + "/": the folder itself too
    if not sep:
        return None
    target = f"{here}/{tail}".rstrip("/")
    return None if target == path else prefix + target


# SQLite URIs this process has initialised or checked (skips the lock and schema check next time)
_READY: set[str] = set()


def _client(uri: str | None):
    import logging

    from mlflow.tracking import MlflowClient

    # MLflow logs a database fault with its traceback before raising it; the fault reaches the
    # caller (store_fault: one line naming the database), so the log is only noise
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
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


#: SQLite's words for a store fault → (exception class, errno or None, what to say)
_STORE_FAULTS = (
    ("database disk image is malformed", ValueError, None, "corrupt"),
    ("file is not a database", ValueError, None, "not an SQLite database"),
    ("database or disk is full", OSError, 28, "No space left on device (database or disk is full)"),
    ("database is locked", OSError, 16, "locked by another process; retry when it is done"),
    ("readonly database", OSError, 30, "Read-only file system or file"),
    ("unable to open database file", OSError, 13, "cannot be opened (permissions or folder)"),
)


def store_fault(err: BaseException, uri: str | None = None) -> Exception | None:
    """The one-line error of a tracking-store fault raised anywhere below (SQLite, SQLAlchemy or
    MLflow wrapping them): a corrupt database is bad input (``ValueError``), a full disk, a lock
    or a read-only file the environment (``OSError``), each naming the database; ``None`` for
    any other error."""
    chain, seen = [], err
    while seen is not None and len(chain) < 16:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if not any(
        type(e).__module__.split(".")[0] in ("sqlite3", "sqlalchemy", "mlflow") for e in chain
    ):
        return None
    text = " ".join(str(e) for e in chain).lower()
    db = _sqlite_path(tracking_uri(uri))
    where = str(db) if db is not None else tracking_uri(uri)
    for words, kind, errno_, say in _STORE_FAULTS:
        if words in text:
            if kind is ValueError:
                return ValueError(
                    f"tracking store {where}: {say}; move it aside (a new store is created) or "
                    "restore it (docs/reliability.md)"
                )
            return OSError(errno_, say, where)
    return None
