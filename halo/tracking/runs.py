"""Runs in the MLflow store: log a run record or a report, find a benchmark's runs.

One MLflow *experiment* per benchmark (:func:`~halo.tracking.store.init_store` creates the store
first); one MLflow *run* per run record (``halo.runs``), plus one run named ``report`` per
benchmark holding the report's tables and figures.

Identity and idempotency
    Every run carries the tag ``halo.key`` (``<benchmark>/<backbone>/<kind>/<method>/<variant>/
    budget=<b>/seed=<s>``, or ``report``) and ``halo.digest``, a hash of what is logged (the record
    or summary and every artifact's name and bytes). Loggers of one key take turns (a file lock,
    :func:`~halo.tracking.store.key_lock`). A logger that finds a complete run of its key with its
    digest logs nothing and returns that run's id; otherwise it creates the new run in full, marks
    it FINISHED, then soft-deletes every other run with that key; a run that fails mid-logging
    deletes itself. So exactly one non-deleted run per key remains, and every logger returns the
    id of the run that stays (concurrent loggers of the same content all name the same run).
    Soft-deleted runs stay in the database until ``mlflow gc``. Nothing is appended to an
    existing run (no ``log_table``).

Grouping
    ``halo.group`` = ``<backbone>/<method>`` and ``halo.replicates`` = the key without the seed
    (the runs that differ only by seed); group by either in the MLflow UI's runs table. The
    report job, once every run is logged, also builds the tree of parent runs
    (:mod:`halo.tracking.parents`): one job does it, so no two jobs race to create a parent.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from halo.tracking.fields import (
    _MAX_KEY,
    _config_params,
    _is_number,
    _param_value,
    _record_metrics,
    _safe,
    _tags,
    flatten,
    run_name,
)
from halo.tracking.keyed import _digest, _new_run
from halo.tracking.store import _client, _experiment_id, _sqlite_path, key_lock, tracking_uri

__all__ = ["REPORT_KEY", "find_runs", "log_report", "log_run"]

REPORT_KEY = "report"
# the lock that dataset loggers of one experiment share (no run key holds a NUL)
_DATASETS_LOCK = "\0datasets"

# MLflow's batch limits (mlflow.utils.validation); kept here so the module imports without mlflow.
_MAX_METRICS, _MAX_PARAMS_TAGS, _MAX_ENTITIES = 1000, 100, 1000

_IDENTITY = ("backbone", "method", "kind", "variant", "budget", "seed")


def _log_batched(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """``log_batch`` in chunks within MLflow's per-request limits."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:_MAX_PARAMS_TAGS], params[_MAX_PARAMS_TAGS:]
        t, tags = tags[:_MAX_PARAMS_TAGS], tags[_MAX_PARAMS_TAGS:]
        room = min(_MAX_METRICS, _MAX_ENTITIES - len(p) - len(t))
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t, synchronous=True)


def _curve_metrics(files: Sequence[Path], timestamp: int) -> list:
    """``train/loss`` and ``train/lr`` at every step trained, from an attached ``train_log.json``
    (its ``curve`` spans the whole run: resumes and, for an active run, every round), each at the
    time its step ended (``timestamp``, the logging time, for a curve written without times)."""
    from mlflow.entities import Metric

    from halo.io import read_json
    from halo.runs import TRAIN_LOG

    out = []
    for f in files:
        if f.name == TRAIN_LOG and f.is_file():
            for step, loss, lr, *when in read_json(f, "training log").get("curve", []):
                at = int(when[0] * 1000) if when else timestamp
                out.append(Metric("train/loss", float(loss), at, int(step)))
                out.append(Metric("train/lr", float(lr), at, int(step)))
    return out


def _provenance(files: Sequence[Path]) -> dict:
    """The attached provenance JSON of the training job (``{}`` without one)."""
    from halo.io import read_json
    from halo.provenance import PROVENANCE_FILE

    for f in files:
        if f.name == PROVENANCE_FILE and f.is_file():
            data = read_json(f, "provenance")
            return data if isinstance(data, dict) else {}
    return {}


def _protocol(argv: list) -> str | None:
    """The ``--protocol`` value of a command line (``--protocol X`` or ``--protocol=X``)."""
    for i, arg in enumerate(map(str, argv)):
        if arg.startswith("--protocol="):
            return arg.partition("=")[2] or None
        if arg == "--protocol" and i + 1 < len(argv):
            return str(argv[i + 1])
    return None


def _source_tags(files: Sequence[Path]) -> dict[str, str]:
    """Where MLflow's run page shows a run's source, from an attached provenance JSON: the command
    that made it (``mlflow.source.name``, e.g. ``halo train --protocol active``; type ``LOCAL``),
    ``mlflow.source.git.commit`` and ``halo.git.dirty``. The page shows the commit only beside a
    source name."""
    provenance = _provenance(files)
    tags = {}
    command, argv = provenance.get("command"), provenance.get("argv")
    if isinstance(command, str) and command:
        protocol = _protocol(argv if isinstance(argv, list) else [])
        if protocol:
            command += f" --protocol {protocol}"
        tags |= {"mlflow.source.name": command, "mlflow.source.type": "LOCAL"}
    revision = provenance.get("git_revision")
    if isinstance(revision, str) and revision:
        commit = revision.removesuffix("-dirty")
        tags |= {
            "mlflow.source.git.commit": commit,
            "halo.git.dirty": str(revision != commit).lower(),
        }
    return tags


def _dataset_inputs(files: Sequence[Path]) -> list:
    """MLflow dataset inputs from an attached provenance JSON's ``datasets`` (what the training
    job saw): one per dataset, its digest the files' fingerprint, context ``source``/``target``."""
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    datasets = _provenance(files).get("datasets") or {}
    for which, d in datasets.items() if isinstance(datasets, dict) else ():
        if not isinstance(d, dict) or not d.get("fingerprint"):
            continue
        dataset = Dataset(
            name=f"{d.get('name')} ({which})",
            digest=str(d["fingerprint"])[:36],
            source_type="local",
            source=json.dumps({"uri": str(d.get("where", ""))}),
            profile=json.dumps({"images": d.get("images"), "labelled": d.get("labelled")}),
        )
        inputs.append(DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, which)]))
    return inputs


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
    ``iou/<class>``, ``radius/<class>``, per-round ``labelled_fraction``,
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
        for k, v in _config_params(config, record["kind"]).items():
            if k in params and params[k] != v:
                k = f"config.{k}"
            params.setdefault(k, v)

    device = _provenance(files).get("device")
    if isinstance(device, str):  # what the job ran on; mixed precision runs on CUDA only
        params["device"] = device
        if "train.amp" in params and not device.startswith("cuda"):
            params["train.amp"] = "False"

    from mlflow.entities import Param
    from mlflow.utils.time import get_current_time_millis

    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(record["benchmark"]), uri)

    def fill(run_id: str) -> None:
        now = get_current_time_millis()
        metrics = _record_metrics(record, now) + _curve_metrics(files, now)
        _log_batched(client, run_id, metrics, [Param(k, v) for k, v in params.items()])
        inputs = _dataset_inputs(files)
        if inputs:  # MLflow checks, then inserts a dataset: its loggers take turns (one store row)
            with key_lock(uri, experiment_id, _DATASETS_LOCK):
                client.log_inputs(run_id, datasets=inputs)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "record.json"
            path.write_text(json.dumps(record, indent=2, default=str) + "\n")
            client.log_artifact(run_id, str(path))
        for f in files:
            _log_path(client, run_id, f, None)

    tags = {
        **_tags(record),
        **_source_tags(files),
        "halo.digest": _digest(record, [(f, None) for f in files]),
    }
    span = None
    if isinstance(record.get("started"), int | float) and isinstance(
        record.get("finished"), int | float
    ):
        span = (int(record["started"] * 1000), int(record["finished"] * 1000))  # the jobs' times
    return _new_run(client, experiment_id, run_name(record), tags, fill, uri=uri, span=span)


def log_report(
    benchmark: str,
    files: Sequence[Path],
    *,
    summary: dict | None = None,
    uri: str | None = None,
    root: Path | None = None,
    link: bool = True,
    name: str | None = None,
) -> str:
    """Log the benchmark's report as the run ``report`` of its experiment; returns the run id.

    A report of another name than the benchmark (a second grid of it, e.g. the human loop's
    ``synth-gta2cs-human``) is the run ``report:<name>`` and links no runs: the benchmark's own
    report stays what the experiment page shows.

    ``files`` keep their folder relative to ``root`` (default: the deepest folder holding all of
    them), e.g. ``<root>/acquisition/x.png`` -> artifact ``acquisition/x.png``. Numeric entries
    of ``summary`` (nested mappings flattened with ``/``) become params (6 significant digits). Idempotent like
    :func:`log_run` (key ``report``). With ``link``, the experiment's runs get their parents
    (:mod:`halo.tracking.parents`: one top-level parent per backbone × method × budget, and per
    variant for the source-only and supervised runs, the seeds as its children).
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

    from mlflow.entities import Param

    key = REPORT_KEY if name in (None, str(benchmark)) else f"{REPORT_KEY}:{name}"
    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(benchmark), uri)
    tags = {
        "halo.key": key,
        "halo.kind": REPORT_KEY,
        "halo.benchmark": str(benchmark),
        "halo.digest": _digest(summary or {}, placed),
    }

    def fill(run_id: str) -> None:
        # the summary's numbers as params, not metrics: the experiment's chart view then draws
        # the cells' final_miou by method first (a report metric such as best/<backbone>/5/mean
        # names no method), and the tables and figures are the run's artifacts
        flat = flatten(summary or {}, sep="/")
        params = [
            Param("/".join(_safe(s) for s in str(k).split("/"))[:_MAX_KEY], f"{float(v):.6g}")
            for k, v in flat.items()
            if _is_number(v)
        ]
        for i in range(0, len(params), 100):  # MLflow takes 100 params a batch
            client.log_batch(run_id, params=params[i : i + 100], synchronous=True)
        for p, folder in placed:
            _log_path(client, run_id, p, folder)

    report_id = _new_run(client, experiment_id, key, tags, fill, uri=uri)
    if link and key == REPORT_KEY:
        from halo.tracking.parents import link_runs

        runs = [
            r
            for r in _search(client, experiment_id)
            if r.data.tags.get("halo.kind") in ("active", "source", "supervised")
        ]
        link_runs(client, experiment_id, report_id, runs, uri=uri)
    return report_id


def _search(client, experiment_id: str) -> list:
    """Every non-deleted run of an experiment, oldest first."""
    from mlflow.entities import ViewType

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
        out += list(page)
        token = page.token
        if not token:
            return out


def find_runs(benchmark: str, uri: str | None = None) -> list[dict]:
    """The non-deleted runs of a benchmark's experiment as plain dicts, oldest first.

    Each: ``run_id``, ``name``, ``status``, ``start_time`` (ms), ``artifact_uri``, ``tags``,
    ``params``, ``metrics`` (latest value per key). ``[]`` when the experiment does not exist.
    """
    db = _sqlite_path(tracking_uri(uri))
    if db is not None and not db.exists():
        return []
    client, uri = _client(uri)
    experiment_id = _experiment_id(client, str(benchmark), uri, create=False)
    if experiment_id is None:
        return []
    return [
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
        for r in _search(client, experiment_id)
    ]
