"""MLflow tracking: run records and reports into an MLflow store (the only package importing
mlflow, and only inside the functions that need it: importing :mod:`halo.tracking` does not).

One MLflow *experiment* per benchmark; one MLflow *run* per run record (``halo.runs``), plus one
run named ``report`` per benchmark holding the report's tables and figures.

Modules: :mod:`~halo.tracking.store` (the tracking URI, the store's creation under a file lock,
the client and the experiment lookup), :mod:`~halo.tracking.fields` (a record's key, name, tags,
params and metrics), :mod:`~halo.tracking.runs` (:func:`log_run`, :func:`log_report`,
:func:`find_runs`, and how retries stay idempotent); the public API is re-exported here.
"""

from __future__ import annotations

import os

# No telemetry from jobs: clusters and CI are offline, and a run must not phone home. MLflow
# decides at its import (``mlflow/__init__`` starts its telemetry client and a thread that fetches
# its config), so this must be set before the first ``import mlflow`` of the process: here, in
# the only package that imports it. A user's explicit setting is kept.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from halo.tracking.fields import flatten, run_key, run_name
from halo.tracking.runs import REPORT_KEY, find_runs, log_report, log_run
from halo.tracking.store import ARTIFACT_DIR, init_store, portable_uri, relocate, tracking_uri

__all__ = [
    "ARTIFACT_DIR",
    "REPORT_KEY",
    "find_runs",
    "flatten",
    "init_store",
    "log_report",
    "log_run",
    "portable_uri",
    "relocate",
    "run_key",
    "run_name",
    "tracking_uri",
]
