"""Run records and real SQLite MLflow stores for the tracking tests (no mocks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from halo import tracking
from halo.runs import run_record

BENCH = "synth-gta2cs"
CLASSES = ["road", "traffic light", "sky"]


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
