"""The report: run records (:mod:`halo.runs`) aggregated into tables and figures.

Functional core of ``halo report``: every function takes a list of run records (and, for the
acquisition figures, the panels of :func:`halo.acquisition.preview.acquisition_panels`) and
returns frames, arrays or the paths it wrote; reading records, running models and choosing folders
is the caller's job. The package imports no torch. Every file goes through :mod:`halo.io`
(atomic); figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no
GUI, no global state). The design: docs/design.md, section "The report".

Modules: :mod:`~halo.report.records` (validation, the mIoU tables, best methods, run metrics),
:mod:`~halo.report.tables` (the mIoU files, per-class, acquired classes, training stability),
:mod:`~halo.report.radius` (radius vs frequency statistics), :mod:`~halo.report.figures` (the
PNGs), :mod:`~halo.report.layout` (the file names); everything public is re-exported here.

Files written by :func:`build_report` into ``out_dir`` (``results/<bench>/``): every name of
:mod:`halo.report.layout`, each described once there (``CAPTIONS``, which Snakemake's report shows
beside each file). Some are written only when their input exists: the radius files when a
hyperbolic run has radii, ``acquired_classes.csv`` when the active runs' label masks are given,
``training_stability.csv`` when their training logs are (``miou_table.md`` then names the unstable
runs), ``acquisition/<id>.png`` when panels are given.

Conventions (units, budgets, row labels, standard deviations): :mod:`halo.report.records`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from halo.io import write_json, write_text
from halo.report.figures import budget_curve, write_acquisition_figures, write_radius_vs_frequency
from halo.report.layout import (
    ACQUIRED_CSV,
    ACQUISITION_DIR,
    BUDGET_CSV,
    BUDGET_CURVE_FILE,
    METRICS_FILE,
    MIOU_CSV,
    MIOU_MD,
    PER_CLASS_CSV,
    RADIUS_CORR_CSV,
    RADIUS_CSV,
    RADIUS_PNG,
    ROUNDS_CSV,
    RUNS_CSV,
    STABILITY_CSV,
    SUMMARY_FILE,
)
from halo.report.radius import (
    LEARNED_IOU,
    partial_r,
    pearson_r,
    radius_correlations,
    radius_vs_frequency,
    spearman_rho,
)
from halo.report.records import (
    best_methods,
    budget_label,
    check_records,
    miou_long,
    miou_table,
    plot_tables,
    run_metrics,
)
from halo.report.tables import (
    LOSS_SPIKE_FACTOR,
    _stability_note,
    acquired_class_table,
    labelled_class_counts,
    per_class_table,
    training_stability,
    write_miou_table,
    write_per_class_table,
)

__all__ = [
    "ACQUIRED_CSV",
    "ACQUISITION_DIR",
    "BUDGET_CURVE_FILE",
    "LEARNED_IOU",
    "LOSS_SPIKE_FACTOR",
    "METRICS_FILE",
    "MIOU_CSV",
    "MIOU_MD",
    "PER_CLASS_CSV",
    "RADIUS_CORR_CSV",
    "RADIUS_CSV",
    "RADIUS_PNG",
    "RUNS_CSV",
    "STABILITY_CSV",
    "SUMMARY_FILE",
    "acquired_class_table",
    "best_methods",
    "budget_curve",
    "budget_label",
    "build_report",
    "check_records",
    "labelled_class_counts",
    "miou_long",
    "miou_table",
    "partial_r",
    "pearson_r",
    "per_class_table",
    "plot_tables",
    "radius_correlations",
    "radius_vs_frequency",
    "run_metrics",
    "spearman_rho",
    "training_stability",
    "write_acquisition_figures",
    "write_miou_table",
    "write_per_class_table",
    "write_radius_vs_frequency",
]


def _write_csv(path: Path, table: Any) -> Path:
    """A pandas table as CSV (``\\n`` line ends), atomically; its path."""
    write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


def build_report(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    benchmark: str,
    panels: Sequence[Mapping[str, Any]] | None = None,
    acquired: Sequence[np.ndarray | None] | None = None,
    losses: Sequence[Sequence[float] | None] | None = None,
) -> dict[str, Any]:
    """Write every table and figure of one benchmark into ``out_dir`` (each file atomically).

    Args:
        records: run records, all of ``benchmark``.
        out_dir: the report folder (``results/<bench>/``).
        benchmark: the benchmark the records must belong to.
        panels: optional :func:`halo.acquisition.preview.acquisition_panels` output, drawn
            into ``acquisition/``.
        acquired: optional labelled-pixel counts per class, aligned with ``records``
            (:func:`acquired_class_table`), written to ``acquired_classes.csv``.
        losses: optional training losses per run, aligned with ``records``
            (:func:`training_stability`), written to ``training_stability.csv``; the unstable
            runs are also named under the table in ``miou_table.md``.

    Returns:
        The summary, also written as ``summary.json``: ``{"benchmark", "records": count,
        "files": [paths relative to out_dir, posix], "pearson_r", "spearman_rho",
        "radius_source": dict | None, "radius_skipped": reason | None, "best":
        :func:`best_methods`, "unstable_runs": [{"method", "budget", "seed"}]}`` (JSON-ready).

    Raises:
        ValueError: empty records, several benchmarks, or records not of ``benchmark``.
    """
    found = check_records(records)
    if found != benchmark:
        raise ValueError(f"build_report: records are of benchmark {found!r}, not {benchmark!r}")
    out_dir = Path(out_dir)
    stability = None
    if losses is not None and any(x is not None for x in losses):
        stability = training_stability(records, losses)
    note = "" if stability is None else _stability_note(stability)
    written = write_miou_table(records, out_dir, note=note)
    written.append(write_per_class_table(records, out_dir))
    written.append(budget_curve(records, out_dir / BUDGET_CURVE_FILE))
    radius_paths, stats = write_radius_vs_frequency(records, out_dir)
    written += radius_paths
    if acquired is not None and any(c is not None for c in acquired):
        written.append(_write_csv(out_dir / ACQUIRED_CSV, acquired_class_table(records, acquired)))
    unstable: list[dict] = []
    if stability is not None:
        written.append(_write_csv(out_dir / STABILITY_CSV, stability))
        unstable = [
            {"method": r.method, "budget": float(r.budget), "seed": r.seed}
            for r in stability[stability["unstable"]].itertuples()
        ]
    correlations = radius_correlations(records)
    if len(correlations):
        written.append(_write_csv(out_dir / RADIUS_CORR_CSV, correlations))
    if panels:
        written += write_acquisition_figures(panels, out_dir)
    for name, table in zip((BUDGET_CSV, ROUNDS_CSV), plot_tables(records), strict=True):
        written.append(_write_csv(out_dir / name, table))
    write_json(out_dir / METRICS_FILE, run_metrics(records))
    written.append(out_dir / METRICS_FILE)
    files = [p.relative_to(out_dir).as_posix() for p in written]
    summary = {
        "benchmark": benchmark,
        "records": len(records),
        "files": [*files, SUMMARY_FILE],
        "pearson_r": stats["pearson_r"],
        "spearman_rho": stats["spearman_rho"],
        "radius_source": stats["radius_source"],
        "radius_skipped": stats["skipped"],
        "best": best_methods(records),
        "unstable_runs": unstable,
    }
    write_json(out_dir / SUMMARY_FILE, summary)
    return summary
