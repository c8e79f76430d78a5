"""The report folder's file names, each defined once (what each file holds: :mod:`halo.report`)."""

from __future__ import annotations

__all__ = [
    "ACQUIRED_CSV",
    "ACQUISITION_DIR",
    "BUDGET_CSV",
    "BUDGET_CURVE_FILE",
    "METRICS_FILE",
    "MIOU_CSV",
    "MIOU_MD",
    "PER_CLASS_CSV",
    "RADIUS_CORR_CSV",
    "RADIUS_CSV",
    "RADIUS_PNG",
    "ROUNDS_CSV",
    "RUNS_CSV",
    "STABILITY_CSV",
    "SUMMARY_FILE",
]

MIOU_CSV = "miou_table.csv"
MIOU_MD = "miou_table.md"
RUNS_CSV = "runs.csv"  # one row per run: the seeds behind each mIoU cell
PER_CLASS_CSV = "per_class.csv"
ACQUIRED_CSV = "acquired_classes.csv"
BUDGET_CURVE_FILE = "budget_curve.png"
BUDGET_CSV = "budget_curve.csv"  # the data of DVC's plots (dvc.yaml)
ROUNDS_CSV = "rounds.csv"
RADIUS_CSV = "radius_vs_frequency.csv"
RADIUS_PNG = "radius_vs_frequency.png"
RADIUS_CORR_CSV = "radius_correlations.csv"
STABILITY_CSV = "training_stability.csv"
ACQUISITION_DIR = "acquisition"
METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.json"
