"""The report: run records (:mod:`halo.runs`) aggregated into tables and figures.

Functional core of ``halo report``: every function takes a list of run records (and, for the
acquisition figures, a model, a dataset and a strategy) and returns frames, arrays or the paths it
wrote; reading records and choosing folders is the CLI's job. Every file goes through
:mod:`halo.io` (atomic), figures are drawn on matplotlib ``Figure`` objects with the Agg canvas
(no pyplot, no GUI, no global state).

Files written by :func:`build_report` into ``out_dir`` (``results/<bench>/``)::

    miou_table.csv            tidy: backbone, method, variant, budget, n_seeds, mean, std
    miou_table.md             wide: rows (backbone, method), columns 0% | budgets | 100%
    per_class.csv             backbone, method, variant, budget, n_seeds, <class>... (mean IoU)
    acquired_classes.csv      same keys, <class>...: % of the labelled pixels per class after the
                              last round (when the active runs' label masks are given)
    budget_curve.png          mIoU vs budget per (backbone, method), source/supervised lines
    radius_vs_frequency.csv   class, pixel_share, mean_radius   (paper Figure 2; when a
    radius_vs_frequency.png   scatter, log-x, Pearson r and Spearman rho   hyperbolic run exists)
    radius_correlations.csv   per model group with radii: radius-vs-share correlation over all
                              classes and over the classes it learned (IoU >= 20)
    training_stability.csv    per active run: first, peak and final logged training loss, and
                              ``unstable`` when the peak is above 5x the first (when the runs'
                              training logs are given); miou_table.md then lists those runs
    acquisition/<id>.png      image | radius | entropy | score | selected  (paper Figure 4; when
                                                                          panels are given)
    metrics.json              mIoU and budget used per run (what ``dvc metrics show`` lists)
    summary.json              what :func:`build_report` returns

Conventions. mIoU and IoU are in percent (as in the records). ``budget`` is the total fraction of
target pixels; in the tidy tables source-only rows have budget ``0`` and supervised rows budget
``1`` (the ``0%`` and ``100%`` columns of the wide table). ``method`` in the CSVs is the record's
method (``source``, ``supervised``, ``halo``, ...); the wide table and the figures label rows
``source-only``, ``supervised`` or the method, with `` [variant]`` appended when one backbone has
runs of that method with more than one model variant. Standard deviations are sample standard
deviations (``ddof=1``) over seeds, empty (NaN) with one seed.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from halo.io import write_bytes, write_json, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn
    from torch.utils.data import Dataset

    from halo.acquisition.strategies import Strategy

__all__ = [
    "ACQUIRED_CSV",
    "ACQUISITION_DIR",
    "BUDGET_CURVE_FILE",
    "MIOU_CSV",
    "MIOU_MD",
    "PER_CLASS_CSV",
    "RADIUS_CORR_CSV",
    "RADIUS_CSV",
    "RADIUS_PNG",
    "SUMMARY_FILE",
    "acquired_class_table",
    "acquisition_panels",
    "best_methods",
    "budget_curve",
    "budget_label",
    "build_report",
    "check_records",
    "labelled_class_counts",
    "miou_long",
    "miou_table",
    "pearson_r",
    "per_class_table",
    "radius_correlations",
    "radius_vs_frequency",
    "spearman_rho",
    "write_acquisition_figures",
    "write_miou_table",
    "write_per_class_table",
    "write_radius_vs_frequency",
]

MIOU_CSV = "miou_table.csv"
MIOU_MD = "miou_table.md"
PER_CLASS_CSV = "per_class.csv"
ACQUIRED_CSV = "acquired_classes.csv"
BUDGET_CURVE_FILE = "budget_curve.png"
RADIUS_CSV = "radius_vs_frequency.csv"
RADIUS_CORR_CSV = "radius_correlations.csv"
STABILITY_CSV = "training_stability.csv"
LOSS_SPIKE_FACTOR = 5.0
LEARNED_IOU = 20.0  # mean IoU (percent) from which a model group counts a class as learned
RADIUS_PNG = "radius_vs_frequency.png"
ACQUISITION_DIR = "acquisition"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.json"

_REQUIRED = ("benchmark", "backbone", "method", "kind", "variant", "budget", "seed", "miou")
_KIND_ORDER = {"source": 0, "active": 1, "supervised": 2}
_KIND_LABEL = {"source": "source-only", "supervised": "supervised"}
_KIND_BUDGET = {"source": 0.0, "supervised": 1.0}
_GROUP = ["backbone", "method", "variant", "kind", "budget"]
_DPI = 120


# --------------------------------------------------------------------------------------------
# records


def check_records(records: Sequence[Mapping[str, Any]]) -> str:
    """Validate run records for the report and return their (single) benchmark.

    Args:
        records: run records (:func:`halo.runs.run_record`).

    Returns:
        The benchmark name all records share.

    Raises:
        ValueError: no records, a record that is not a mapping or lacks a key the report reads,
            an unknown kind, an active run without a budget, records of several benchmarks, or
            the same (backbone, method, variant, budget, seed) twice.
    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise ValueError("report: no run records given (expected a non-empty list of records)")
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"report: record {i} is a {type(rec).__name__}, not a mapping")
        missing = [k for k in _REQUIRED if k not in rec]
        if missing:
            raise ValueError(f"report: record {i} lacks {', '.join(missing)}")
        if rec["kind"] not in _KIND_ORDER:
            raise ValueError(
                f"report: record {i} has kind {rec['kind']!r}; valid: {', '.join(_KIND_ORDER)}"
            )
        if rec["kind"] == "active" and rec["budget"] is None:
            raise ValueError(f"report: record {i} is an active run without a budget")
    benches = sorted({str(r["benchmark"]) for r in records})
    if len(benches) != 1:
        raise ValueError(
            f"report: records mix benchmarks ({', '.join(benches)}); report one benchmark at a time"
        )
    frame = _runs_frame(records)
    dup = frame.duplicated([*_GROUP, "seed"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise ValueError(
            f"report: {int(dup.sum())} records share their identity, e.g. backbone "
            f"{first.backbone!r} method {first.method!r} variant {first.variant!r} budget "
            f"{first.budget:g} seed {first.seed} (a run counted twice?)"
        )
    return benches[0]


def _budget_key(rec: Mapping[str, Any]) -> float:
    """The tidy budget of a record: its fraction (active), 0 (source) or 1 (supervised)."""
    if rec["kind"] == "active":
        return round(float(rec["budget"]), 12)  # one key for 0.022 and 0.022000000000000002
    return _KIND_BUDGET[rec["kind"]]


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _runs_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record: backbone, method, variant, kind, budget, seed, miou, label, order."""
    frame = pd.DataFrame(
        {
            "backbone": [str(r["backbone"]) for r in records],
            "method": [str(r["method"]) for r in records],
            "variant": [str(r["variant"]) for r in records],
            "kind": [str(r["kind"]) for r in records],
            "budget": [_budget_key(r) for r in records],
            "seed": [r["seed"] for r in records],
            "miou": [_float(r["miou"]) for r in records],
        }
    )
    n_variants = frame.groupby(["backbone", "kind", "method"])["variant"].transform("nunique")
    base = frame["kind"].map(_KIND_LABEL).fillna(frame["method"])
    frame["label"] = base.where(n_variants <= 1, base + " [" + frame["variant"] + "]")
    frame["kind_order"] = frame["kind"].map(_KIND_ORDER)
    return frame


def _sort(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(
        ["backbone", "kind_order", "method", "variant", "budget"], kind="stable"
    ).reset_index(drop=True)


def budget_label(budget: float) -> str:
    """A budget fraction as a percent column name: ``0.022 -> "2.2%"``, ``0.05 -> "5%"``."""
    return f"{round(float(budget) * 100, 10):g}%"


def _json_float(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# mIoU table


def miou_long(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Final mIoU per (backbone, method, variant, budget): mean and spread over seeds (tidy).

    Args:
        records: run records of one benchmark.

    Returns:
        One row per group, sorted by backbone, then source / active / supervised, method,
        variant and budget; columns ``backbone, method, variant, budget`` (float fraction; 0 for
        source-only, 1 for supervised), ``n_seeds`` (int: records with a defined mIoU),
        ``mean``, ``std`` (float percent, sample std, NaN with < 2 seeds), ``kind`` and
        ``label`` (the row name of the wide table).

    Raises:
        ValueError: see :func:`check_records`.
    """
    check_records(records)
    frame = _runs_frame(records)
    out = (
        frame.groupby([*_GROUP, "label", "kind_order"], sort=False)["miou"]
        .agg(n_seeds="count", mean="mean", std=lambda s: s.std(ddof=1))
        .reset_index()
    )
    out["n_seeds"] = out["n_seeds"].astype(int)
    out = _sort(out)
    return out[["backbone", "method", "variant", "budget", "n_seeds", "mean", "std"]].assign(
        kind=out["kind"], label=out["label"]
    )


def _budget_columns(long: pd.DataFrame) -> dict[tuple[str, float], str]:
    """(kind, budget) -> column name: ``0%``, the active budgets ascending, ``100%``.

    Raises:
        ValueError: two active budgets print as the same column name.
    """
    keys = sorted(
        set(zip(long["kind"], long["budget"], strict=True)),
        key=lambda kb: (_KIND_ORDER[kb[0]], kb[1]),
    )
    columns: dict[tuple[str, float], str] = {}
    for kind, budget in keys:
        name = {"source": "0%", "supervised": "100%"}.get(kind) or budget_label(budget)
        clash = [b for (k, b), n in columns.items() if n == name and k == kind == "active"]
        if clash:
            raise ValueError(
                f"report: budgets {clash[0]!r} and {budget!r} share the column name {name!r}"
            )
        columns[(kind, budget)] = name
    return columns


def _cell(mean: float, std: float, n: int, digits: int) -> str:
    if n == 0 or not math.isfinite(mean):
        return ""
    if n >= 2 and math.isfinite(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def miou_table(records: Sequence[Mapping[str, Any]], *, digits: int = 1) -> pd.DataFrame:
    """The wide mIoU table: rows (backbone, method), columns the budgets in percent.

    Args:
        records: run records of one benchmark.
        digits: decimals of the cells.

    Returns:
        A frame of ``str`` cells indexed by ``(backbone, method)`` (the method named
        ``source-only``, ``supervised`` or the acquisition method, `` [variant]`` added where a
        backbone has that method with several variants). Columns: ``0%`` (source-only, when
        present), the active budgets ascending (``1%``, ``2.2%``, ``5%``: ``f"{100*b:g}%"``),
        ``100%`` (supervised, when present). Cells are ``"41.2 ± 1.3"`` (mean ± sample std over
        seeds), ``"41.2"`` with one seed, ``""`` where the row has no run at that budget. The
        numbers are in :func:`miou_long`.

    Raises:
        ValueError: see :func:`check_records`; two budgets with one column name.
    """
    long = miou_long(records)
    columns = _budget_columns(long)
    cells = [
        _cell(m, s, n, digits)
        for m, s, n in zip(long["mean"], long["std"], long["n_seeds"], strict=True)
    ]
    names = [columns[(k, b)] for k, b in zip(long["kind"], long["budget"], strict=True)]
    wide = (
        pd.DataFrame(
            {"backbone": long["backbone"], "method": long["label"], "col": names, "cell": cells}
        )
        .pivot(index=["backbone", "method"], columns="col", values="cell")
        .reindex(columns=list(dict.fromkeys(columns.values())))
        .fillna("")
    )
    row_order = list(dict.fromkeys(zip(long["backbone"], long["label"], strict=True)))
    wide = wide.reindex(pd.MultiIndex.from_tuples(row_order, names=["backbone", "method"]))
    wide.columns.name = None
    return wide


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _markdown(wide: pd.DataFrame, long: pd.DataFrame, benchmark: str) -> str:
    counts = sorted(set(long.loc[long["n_seeds"] > 0, "n_seeds"].tolist()))
    if len(counts) == 1:
        seeds = f"{counts[0]} seed{'s' if counts[0] != 1 else ''}"
    else:
        seeds = f"{counts[0]}–{counts[-1]} seeds (per cell: n_seeds in {MIOU_CSV})"
    lines = [
        f"# mIoU (%) on {benchmark}",
        "",
        f"Cells are mean ± sample std (ddof=1) of the final mIoU over {seeds}; a cell without ± "
        "has one seed. Columns: total budget as % of target pixels; `0%` = source-only, "
        "`100%` = supervised on the target.",
        "",
    ]
    header = ["backbone", "method", *wide.columns]
    lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
    lines.append("|" + "---|" * 2 + "---:|" * len(wide.columns))
    for (backbone, method), row in wide.iterrows():
        lines.append("| " + " | ".join(_md_escape(c) for c in (backbone, method, *row)) + " |")
    return "\n".join(lines) + "\n"


def write_miou_table(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    digits: int = 1,
    note: str = "",
) -> list[Path]:
    """Write ``miou_table.csv`` (tidy, numeric) and ``miou_table.md`` (wide) into ``out_dir``.

    The CSV has columns ``backbone, method, variant, budget, n_seeds, mean, std`` (empty std
    with one seed); the Markdown file a header naming the benchmark and the seed count, then
    :func:`miou_table`, then ``note`` (Markdown, e.g. the unstable runs).

    Returns:
        The two paths.
    """
    benchmark = check_records(records)
    out_dir = Path(out_dir)
    long = miou_long(records)
    wide = miou_table(records, digits=digits)
    csv_path, md_path = out_dir / MIOU_CSV, out_dir / MIOU_MD
    cols = ["backbone", "method", "variant", "budget", "n_seeds", "mean", "std"]
    write_text(csv_path, long[cols].to_csv(index=False, lineterminator="\n"))
    write_text(md_path, _markdown(wide, long, benchmark) + note)
    return [csv_path, md_path]


def best_methods(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict]]:
    """The best active method per backbone and budget (highest mean mIoU over seeds).

    Returns:
        ``{backbone: {"5%": {"method": label, "variant", "mean", "std", "n_seeds",
        "runner_up": label | None, "margin": mean - runner-up mean | None}}}``, JSON-ready
        (NaN as ``None``); ties go to the row listed first in :func:`miou_long`.
    """
    long = miou_long(records)
    active = long[(long["kind"] == "active") & long["mean"].notna()]
    best: dict[str, dict[str, dict]] = {}
    for (backbone, budget), group in active.groupby(["backbone", "budget"], sort=True):
        ranked = group.sort_values("mean", ascending=False, kind="stable")
        top = ranked.iloc[0]
        second = ranked.iloc[1] if len(ranked) > 1 else None
        best.setdefault(str(backbone), {})[budget_label(budget)] = {
            "method": str(top["label"]),
            "variant": str(top["variant"]),
            "mean": _json_float(top["mean"]),
            "std": _json_float(top["std"]),
            "n_seeds": int(top["n_seeds"]),
            "runner_up": None if second is None else str(second["label"]),
            "margin": None if second is None else _json_float(top["mean"] - second["mean"]),
        }
    return best


# --------------------------------------------------------------------------------------------
# per-class table


def _class_long(records: Sequence[Mapping[str, Any]], field: str) -> pd.DataFrame:
    """One row per (record, class): the record's group keys, seed, class and ``field`` value."""
    frame = _runs_frame(records)
    names = [list(r.get("class_names") or list((r.get(field) or {}).keys())) for r in records]
    reps = np.array([len(n) for n in names], dtype=np.int64)
    out = frame.loc[frame.index.repeat(reps)].reset_index(drop=True)
    out["class"] = [c for n in names for c in n]
    out["value"] = [
        _float((r.get(field) or {}).get(c)) for r, n in zip(records, names, strict=True) for c in n
    ]
    return out


def per_class_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-class IoU, mean over seeds, one row per (backbone, method, variant, budget).

    Args:
        records: run records of one benchmark.

    Returns:
        Columns ``backbone, method, variant, budget`` (0 source-only, 1 supervised),
        ``n_seeds`` (runs in the group), then one float column per class name (in the records'
        class order): the mean IoU (percent) over the seeds where the class is defined; NaN where
        it is undefined in every seed. Rows sorted as :func:`miou_long`.

    Raises:
        ValueError: see :func:`check_records`.
    """
    check_records(records)
    long = _class_long(records, "per_class_iou")
    classes = list(dict.fromkeys(long["class"]))
    runs = _runs_frame(records)
    counts = runs.groupby(_GROUP, sort=False).size().rename("n_seeds")
    keys = runs[[*_GROUP, "kind_order"]].drop_duplicates(_GROUP)
    table = keys.join(counts, on=_GROUP)
    if classes:
        wide = long.groupby([*_GROUP, "class"], sort=False)["value"].mean().unstack("class")
        table = table.join(wide.reindex(columns=classes), on=_GROUP)
    table = _sort(table)
    return table[["backbone", "method", "variant", "budget", "n_seeds", *classes]]


def labelled_class_counts(masks: Iterable[np.ndarray], num_classes: int) -> np.ndarray:
    """Labelled pixels per class over label masks.

    Args:
        masks: uint8 ``[H, W]`` label masks (train ids where labelled, 255 elsewhere).
        num_classes: ``C``; ids ``>= C`` other than 255 are an error.

    Returns:
        int64 ``[C]``.
    """
    counts = np.zeros(256, dtype=np.int64)
    for mask in masks:
        counts += np.bincount(np.asarray(mask, dtype=np.uint8).ravel(), minlength=256)
    bad = np.flatnonzero(counts[num_classes:255])
    if bad.size:
        raise ValueError(
            f"labelled_class_counts: ids {(bad + num_classes).tolist()} >= {num_classes}"
        )
    return counts[:num_classes]


def acquired_class_table(
    records: Sequence[Mapping[str, Any]], counts: Sequence[np.ndarray | None]
) -> pd.DataFrame:
    """Which classes the active runs labelled: per class, the % of the labelled pixels.

    Args:
        records: run records of one benchmark.
        counts: aligned with ``records``: int64 ``[C]`` labelled pixels per class of the run's
            last round (:func:`labelled_class_counts`; classes in the record's ``class_names``
            order), or ``None`` (source-only and supervised runs, or masks not available).

    Returns:
        One row per (backbone, method, variant, budget) group with counts, sorted as
        :func:`per_class_table`: ``backbone, method, variant, budget, n_seeds``, then one column
        per class: the share (percent) averaged over the group's seeds.
    """
    check_records(records)
    if len(counts) != len(records):
        raise ValueError(
            f"acquired_class_table: {len(counts)} count vectors for {len(records)} records"
        )
    have = [
        (r, np.asarray(c, dtype=np.float64))
        for r, c in zip(records, counts, strict=True)
        if c is not None
    ]
    classes: list[str] = []
    for r, c in have:
        names = list(r["class_names"])
        if len(names) != len(c):
            raise ValueError(
                f"acquired_class_table: {len(c)} counts for the {len(names)} classes of "
                f"{r['method']} seed {r['seed']}"
            )
        classes += [n for n in names if n not in classes]
    runs = _runs_frame([r for r, _ in have])
    shares = pd.DataFrame(
        [
            dict(
                zip(
                    r["class_names"],
                    100 * c / c.sum() if c.sum() else np.full(len(c), np.nan),
                    strict=True,
                )
            )
            for r, c in have
        ],
        columns=classes,
    )
    frame = pd.concat([runs, shares], axis=1)
    table = frame.groupby(_GROUP, sort=False)[classes].mean()
    table = (
        runs[[*_GROUP, "kind_order"]]
        .drop_duplicates(_GROUP)
        .join(runs.groupby(_GROUP, sort=False).size().rename("n_seeds"), on=_GROUP)
        .join(table, on=_GROUP)
    )
    return _sort(table)[["backbone", "method", "variant", "budget", "n_seeds", *classes]]


def write_per_class_table(records: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike) -> Path:
    """Write :func:`per_class_table` to ``out_dir/per_class.csv`` (NaN as an empty field)."""
    path = Path(out_dir) / PER_CLASS_CSV
    write_text(path, per_class_table(records).to_csv(index=False, lineterminator="\n"))
    return path


# --------------------------------------------------------------------------------------------
# figures: helpers


def _new_figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=_DPI)
    FigureCanvasAgg(fig)  # the Agg canvas: no GUI backend, no pyplot state
    return fig


def _save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    write_bytes(path, buf.getvalue())
    return Path(path)


# --------------------------------------------------------------------------------------------
# budget curve


def budget_curve(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Plot mIoU against the budget and write it as a PNG.

    One panel per backbone: each active method is a line over its budgets (percent of target
    pixels) with error bars of one sample std over seeds; source-only is a dotted and
    supervised a dashed horizontal line. Legend, axis labels, the benchmark in the title.

    Args:
        records: run records of one benchmark.
        path: the PNG to write (``budget_curve.png``).

    Returns:
        ``path``.
    """
    benchmark = check_records(records)
    long = miou_long(records)
    backbones = list(dict.fromkeys(long["backbone"]))
    fig = _new_figure((5.5 * len(backbones), 4.2))
    axes = fig.subplots(1, len(backbones), sharey=True, squeeze=False)[0]
    for ax, backbone in zip(axes, backbones, strict=True):
        rows = long[long["backbone"] == backbone]
        colours = iter(f"C{i % 10}" for i in range(10_000))
        active = rows[rows["kind"] == "active"]
        for label, group in active.groupby("label", sort=False):
            group = group[group["mean"].notna()]
            if group.empty:
                continue
            ax.errorbar(
                group["budget"] * 100,
                group["mean"],
                yerr=group["std"].fillna(0.0),
                marker="o",
                capsize=3,
                color=next(colours),
                label=str(label),
            )
        for kind, style in (("source", ":"), ("supervised", "--")):
            for _, row in rows[(rows["kind"] == kind) & rows["mean"].notna()].iterrows():
                ax.axhline(
                    row["mean"],
                    linestyle=style,
                    color=next(colours),
                    label=f"{row['label']} ({row['mean']:.1f})",
                )
        budgets = sorted(active["budget"].unique() * 100)
        if budgets:
            ax.set_xticks(budgets)
            ax.set_xticklabels([f"{b:g}" for b in budgets])
        ax.set_xlabel("budget (% of target pixels)")
        ax.set_title(backbone)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("mIoU (%)")
    fig.suptitle(f"{benchmark}: mIoU vs annotation budget (mean ± std over seeds)")
    return _save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# radius vs pixel frequency (paper Figure 2)


def pearson_r(x: Any, y: Any) -> float | None:
    """Pearson correlation of two 1-D samples (float64); ``None`` with < 3 points or no spread."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pearson_r: x and y must be 1-D of one length, got {x.shape}, {y.shape}")
    if x.size < 3:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if not denom > 0:
        return None
    return float(np.clip(float(dx @ dy) / denom, -1.0, 1.0))


def spearman_rho(x: Any, y: Any) -> float | None:
    """Spearman rank correlation: :func:`pearson_r` of the ranks (ties get their mean rank)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"spearman_rho: x and y must be 1-D of one length, got {x.shape}, {y.shape}"
        )
    rx = pd.Series(x).rank(method="average").to_numpy()
    ry = pd.Series(y).rank(method="average").to_numpy()
    return pearson_r(rx, ry)


def _has_radius(rec: Mapping[str, Any]) -> bool:
    radius, share = rec.get("class_mean_radius") or {}, rec.get("class_pixel_share") or {}
    return any(v is not None and share.get(k) is not None for k, v in radius.items())


def _pick_radius_group(
    records: Sequence[Mapping[str, Any]], backbone: str | None
) -> tuple[list[Mapping[str, Any]], str] | None:
    """The records the radius figure averages, and the rule that chose them (or None).

    Rule: the ``halo`` method at its largest budget; else a model whose variant starts with
    ``hyperbolic``: source-only first, then active runs (largest budget first), then supervised.
    Only records with at least one class having both a radius and a pixel share count; several
    candidate (backbone, variant) groups are ordered by name.
    """
    usable = [
        r
        for r in records
        if _has_radius(r) and (backbone is None or str(r["backbone"]) == backbone)
    ]

    def group_key(r: Mapping[str, Any]) -> tuple:
        return (str(r["backbone"]), str(r["method"]), str(r["variant"]), _budget_key(r))

    halo = [r for r in usable if r["method"] == "halo" and r["kind"] == "active"]
    if halo:
        top = max(_budget_key(r) for r in halo)
        key = min(group_key(r) for r in halo if _budget_key(r) == top)
        return [r for r in halo if group_key(r) == key], "halo at its largest budget"
    hyper = [r for r in usable if str(r["variant"]).startswith("hyperbolic")]
    if hyper:
        rank = {"source": 0, "active": 1, "supervised": 2}

        def pref(r: Mapping[str, Any]) -> tuple:
            b, m, v, budget = group_key(r)
            return (rank[r["kind"]], -budget, b, m, v)

        chosen = min(hyper, key=pref)
        key = group_key(chosen)
        rule = {
            "source": "hyperbolic source-only model",
            "active": "hyperbolic active run at its largest budget",
            "supervised": "hyperbolic supervised model",
        }[chosen["kind"]]
        return [r for r in hyper if group_key(r) == key], rule
    return None


def _class_means(group: Sequence[Mapping[str, Any]], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Per class, the mean over the group's records of its pixel share and mean radius (and of
    the ``extra`` per-class fields); classes without a positive share or a finite radius are
    dropped. Columns ``class, pixel_share, mean_radius, *extra``, in class order."""
    fields = {"pixel_share": "class_pixel_share", "mean_radius": "class_mean_radius"}
    fields.update({name: name for name in extra})
    longs = {name: _class_long(group, field) for name, field in fields.items()}
    both = pd.DataFrame(
        {
            "class": pd.concat([f["class"] for f in longs.values()], ignore_index=True),
            "field": [name for name, f in longs.items() for _ in range(len(f))],
            "value": pd.concat([f["value"] for f in longs.values()], ignore_index=True),
        }
    )
    classes = list(dict.fromkeys(both["class"]))
    means = both.groupby(["class", "field"])["value"].mean().unstack("field")
    means = means.reindex(index=classes, columns=list(fields))
    keep = means["pixel_share"].gt(0) & np.isfinite(means["mean_radius"])
    frame = means[keep].rename_axis("class").reset_index()
    frame.columns.name = None
    return frame[["class", *fields]].astype({name: float for name in fields})


def radius_correlations(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Radius-vs-frequency correlation of every group of runs that has class radii.

    Class values are averaged over a group's seeds (as in :func:`radius_vs_frequency`). Besides
    all classes, the correlation is also taken over the classes the group learned (mean IoU >=
    ``LEARNED_IOU``): a class the model never predicts has uncertain, low-radius pixels whatever
    its frequency, which can hide or invert the relation.

    Returns:
        One row per (backbone, method, variant, budget) group, sorted by backbone, budget,
        method and variant:
        ``backbone, method, variant, budget`` (0 source-only, 1 supervised), ``n_seeds``,
        ``n_classes``, ``pearson_r``, ``spearman_rho``, ``n_learned``, ``pearson_r_learned``,
        ``spearman_rho_learned`` (NaN where undefined: fewer than 3 classes or no spread).
    """
    check_records(records)
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        if _has_radius(r):
            key = (str(r["backbone"]), str(r["method"]), str(r["variant"]), _budget_key(r))
            groups.setdefault(key, []).append(r)
    rows = []
    for (backbone, method, variant, budget), group in groups.items():
        frame = _class_means(group, extra=("per_class_iou",))
        learned = frame[frame["per_class_iou"] >= LEARNED_IOU]

        def corr(fn, f: pd.DataFrame) -> float:
            value = fn(f["mean_radius"], f["pixel_share"])
            return math.nan if value is None else value

        rows.append(
            {
                "backbone": backbone,
                "method": method,
                "variant": variant,
                "budget": budget,
                "n_seeds": len(group),
                "n_classes": len(frame),
                "pearson_r": corr(pearson_r, frame),
                "spearman_rho": corr(spearman_rho, frame),
                "n_learned": len(learned),
                "pearson_r_learned": corr(pearson_r, learned),
                "spearman_rho_learned": corr(spearman_rho, learned),
            }
        )
    columns = [
        "backbone",
        "method",
        "variant",
        "budget",
        "n_seeds",
        "n_classes",
        "pearson_r",
        "spearman_rho",
        "n_learned",
        "pearson_r_learned",
        "spearman_rho_learned",
    ]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["backbone", "budget", "method", "variant"], kind="stable").reset_index(
        drop=True
    )


def radius_vs_frequency(
    records: Sequence[Mapping[str, Any]], *, backbone: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Class mean radius against class pixel share (the paper's Figure 2) and their correlation.

    Which records: the ``halo`` runs at their largest budget (see :func:`_pick_radius_group`:
    else a hyperbolic source-only model, then any hyperbolic run); values are averaged per class
    over their seeds. Classes whose share or radius is undefined (``None``) in every seed, or
    whose share is not positive (no pixel: no place on a log axis), are dropped.

    Args:
        records: run records of one benchmark.
        backbone: restrict the choice to this backbone (default: any; the first by name wins).

    Returns:
        ``(frame, stats)``: ``frame`` has columns ``class`` (str), ``pixel_share`` (fraction of
        the evaluated pixels), ``mean_radius`` (float), one row per kept class in class order;
        ``stats`` is ``{"pearson_r": r (radius vs share) | None, "spearman_rho": rho | None,
        "n_classes": int, "radius_source": {"backbone", "method", "variant", "kind", "budget",
        "seeds", "rule"} | None, "skipped": None | reason}``. Without a usable record the frame
        is empty and ``skipped`` says why.
    """
    check_records(records)
    empty = pd.DataFrame({"class": [], "pixel_share": [], "mean_radius": []})
    picked = _pick_radius_group(records, backbone)
    if picked is None:
        where = "" if backbone is None else f" of backbone {backbone!r}"
        reason = (
            f"no record{where} of the halo method or of a hyperbolic model with class radii and "
            "pixel shares"
        )
        return empty, {
            "pearson_r": None,
            "spearman_rho": None,
            "n_classes": 0,
            "radius_source": None,
            "skipped": reason,
        }
    group, rule = picked
    frame = _class_means(group)
    first = group[0]
    stats = {
        "pearson_r": pearson_r(frame["mean_radius"], frame["pixel_share"]),
        "spearman_rho": spearman_rho(frame["mean_radius"], frame["pixel_share"]),
        "n_classes": len(frame),
        "radius_source": {
            "backbone": str(first["backbone"]),
            "method": str(first["method"]),
            "variant": str(first["variant"]),
            "kind": str(first["kind"]),
            "budget": None if first["budget"] is None else float(first["budget"]),
            "seeds": sorted(r["seed"] for r in group),
            "rule": rule,
        },
        "skipped": None,
    }
    return frame, stats


def _fmt_corr(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def write_radius_vs_frequency(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    backbone: str | None = None,
) -> tuple[list[Path], dict[str, Any]]:
    """Write ``radius_vs_frequency.csv`` and ``.png`` (scatter, log-x) into ``out_dir``.

    Nothing is written when :func:`radius_vs_frequency` finds no usable record (``stats
    ["skipped"]`` says why).

    Returns:
        ``(paths written, stats)`` with ``stats`` from :func:`radius_vs_frequency`.
    """
    benchmark = check_records(records)
    frame, stats = radius_vs_frequency(records, backbone=backbone)
    if stats["skipped"] is not None:
        return [], stats
    out_dir = Path(out_dir)
    csv_path, png_path = out_dir / RADIUS_CSV, out_dir / RADIUS_PNG
    write_text(csv_path, frame.to_csv(index=False, lineterminator="\n"))
    src = stats["radius_source"]
    fig = _new_figure((6.4, 4.8))
    ax = fig.add_subplot()
    ax.scatter(frame["pixel_share"], frame["mean_radius"], s=24, color="C0")
    for name, x, y in zip(frame["class"], frame["pixel_share"], frame["mean_radius"], strict=True):
        ax.annotate(str(name), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    if len(frame):
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only: no overlaps
    ax.set_xlabel("class pixel share (fraction of evaluated target pixels, log scale)")
    ax.set_ylabel("class mean radius d(0, x)")
    ax.grid(alpha=0.3, which="both")
    budget = "" if src["kind"] != "active" else f" @ {budget_label(src['budget'])}"
    ax.set_title(
        f"{benchmark}: class radius vs pixel frequency\n"
        f"Pearson r = {_fmt_corr(stats['pearson_r'])}, "
        f"Spearman ρ = {_fmt_corr(stats['spearman_rho'])}  "
        f"({src['method']}{budget}, {src['backbone']}, {len(src['seeds'])} seed(s))",
        fontsize=9,
    )
    _save_figure(fig, png_path)
    return [csv_path, png_path], stats


# --------------------------------------------------------------------------------------------
# acquisition panels (paper Figure 4)


def _model_device(model: nn.Module) -> Any:
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def acquisition_panels(
    model: nn.Module,
    dataset: Dataset,
    strategy: Strategy,
    indices: Sequence[int],
    *,
    round_budget: float,
    active_radius: int | None = None,
    mask_radius: int | None = None,
) -> list[dict[str, Any]]:
    """What a first acquisition round sees and picks on a few target images.

    Runs ``model`` (``eval`` and ``torch.inference_mode``, on the device of its parameters; its
    training flag is restored afterwards) on each chosen item and computes, exactly as
    :meth:`Strategy.select` does for a first round (no earlier blocked pixels): the acquisition
    map (:meth:`Strategy.acquisition_map`), ``n = regions_per_image(H, W, round_budget, a)`` and
    :func:`~halo.acquisition.selection.select_regions`.

    Args:
        model: a segmenter returning ``SegmenterOutput(logits, embeddings, radius)``.
        dataset: items ``{"image": float [3, H, W] in [0, 1], "label": ..., "id": str}``.
        strategy: the acquisition strategy (its preset radii unless overridden).
        indices: dataset indices of the images to show.
        round_budget: fraction of each image's pixels to label in the round.
        active_radius: ``a`` (also the entropy window ``k``); default the strategy's.
        mask_radius: ``m``; default the strategy's.

    Returns:
        One dict per index: ``id`` (str), ``strategy`` (name), ``image`` uint8 ``[H, W, 3]``,
        ``radius`` float32 ``[H, W]`` (the model's radius upsampled bilinearly; ``None`` for a
        non-hyperbolic head), ``entropy`` float32 ``[H, W]`` (normalised entropy summed over the
        ``(2a+1)²`` window), ``score`` float32 ``[H, W]`` (the acquisition map; ``-inf`` where
        the strategy's score was not finite), ``selected`` bool ``[H, W]`` (labelled pixels),
        ``centres`` int64 ``[n, 2]`` (row, col, in pick order), ``regions_requested`` (n),
        ``round_budget``, ``active_radius``, ``mask_radius``.
    """
    import torch

    from halo.acquisition.selection import regions_per_image
    from halo.acquisition.scores import pixel_entropy, upsample_radius, window_sum
    from halo.acquisition.selection import select_regions

    if active_radius is not None or mask_radius is not None:
        strategy = strategy.with_radii(active_radius=active_radius, mask_radius=mask_radius)
    a, m = strategy.active_radius, strategy.mask_radius
    hyperbolic = getattr(model, "head_name", None) == "hyperbolic"
    device = _model_device(model)
    was_training = model.training
    panels = []
    model.eval()
    try:
        with torch.inference_mode():
            for index in indices:
                item = dataset[int(index)]
                image = item["image"]
                if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
                    got = getattr(image, "shape", type(image).__name__)
                    raise ValueError(
                        f"acquisition_panels: item {index} image must be float [3, H, W], got {got}"
                    )
                out = model(image.unsqueeze(0).to(device))
                logits = out.logits
                h, w = logits.shape[-2:]
                radius = getattr(out, "radius", None)
                score = strategy.acquisition_map(logits, radius if strategy.needs_radius else None)
                n = regions_per_image(int(h), int(w), round_budget, a)
                sel = select_regions(score[0], n, active_radius=a, mask_radius=m)
                entropy = window_sum(pixel_entropy(logits), a)[0]
                shown_radius = None
                if hyperbolic and radius is not None:
                    shown_radius = upsample_radius(radius.float(), (int(h), int(w)))[0]
                    shown_radius = shown_radius.cpu().numpy().astype(np.float32)
                rgb = image.detach().float().clamp(0, 1).mul(255).round().byte()
                panels.append(
                    {
                        "id": str(item.get("id", index)),
                        "strategy": strategy.name,
                        "image": rgb.permute(1, 2, 0).cpu().numpy(),
                        "radius": shown_radius,
                        "entropy": entropy.float().cpu().numpy(),
                        "score": score[0].float().cpu().numpy(),
                        "selected": sel.labelled.cpu().numpy().astype(bool),
                        "centres": sel.centres.cpu().numpy().astype(np.int64),
                        "regions_requested": int(n),
                        "round_budget": float(round_budget),
                        "active_radius": int(a),
                        "mask_radius": int(m),
                    }
                )
    finally:
        model.train(was_training)
    return panels


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(text: str) -> str:
    name = _UNSAFE.sub("_", str(text).replace("/", "__")).strip("._")
    return name or "image"


def _map_panel(
    fig: Figure, ax: Any, data: np.ndarray | None, title: str, cmap: str, aspect: float
) -> None:
    """One map with its colour bar (``aspect`` = H / W sizes the bar); a grey box for None."""
    if data is None:
        ax.text(0.5, 0.5, "n/a\n(no hyperbolic radius)", ha="center", va="center", fontsize=9)
        ax.set_facecolor("0.9")
        ax.set_box_aspect(aspect)
    else:
        shown = np.where(np.isfinite(data), data, np.nan)  # -inf scores: blank
        im = ax.imshow(shown, cmap=cmap, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=min(1.0, 1.1 * aspect), pad=0.02)
    ax.set_title(title, fontsize=9)


def write_acquisition_figures(
    panels: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike
) -> list[Path]:
    """One PNG per panel dict: image | radius | entropy | score | selected (over the image).

    Files are ``out_dir/acquisition/<safe id>.png`` (``/`` in the id becomes ``__``, other
    characters outside ``[A-Za-z0-9._-]`` become ``_``); a name already used in this call gets
    ``-<strategy>`` and then a number appended.

    Args:
        panels: dicts from :func:`acquisition_panels`.
        out_dir: the report folder.

    Returns:
        The paths written, in panel order.
    """
    folder = Path(out_dir) / ACQUISITION_DIR
    used: set[str] = set()
    paths = []
    for panel in panels:
        name = _safe_name(panel["id"])
        if name in used:
            name = _safe_name(f"{panel['id']}-{panel.get('strategy', '')}")
        base, k = name, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        image = np.asarray(panel["image"])
        selected = np.asarray(panel["selected"], dtype=bool)
        h, w = selected.shape
        fig = _new_figure((5 * 3.4, 3.4 * h / w + 0.9))
        axes = fig.subplots(1, 5)
        axes[0].imshow(image)
        axes[0].set_title(f"image {panel['id']}", fontsize=9)
        aspect = h / w
        _map_panel(fig, axes[1], panel.get("radius"), "radius d(0, x)", "viridis", aspect)
        _map_panel(fig, axes[2], panel["entropy"], "window-summed entropy", "magma", aspect)
        name_s = panel.get("strategy", "?")
        _map_panel(fig, axes[3], panel["score"], f"score ({name_s})", "inferno", aspect)
        overlay = image.astype(np.float32) / 255.0
        overlay[selected] = 0.35 * overlay[selected] + 0.65 * np.array([1.0, 0.0, 0.0])
        axes[4].imshow(overlay)
        share = 100.0 * selected.sum() / max(selected.size, 1)
        axes[4].set_title(f"selected: {int(selected.sum())} px ({share:.2f}%)", fontsize=9)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        budget = panel.get("round_budget")
        fig.suptitle(
            f"{panel.get('strategy', '?')}"
            + ("" if budget is None else f", round budget {budget_label(budget)}")
            + f", a={panel.get('active_radius', '?')}, m={panel.get('mask_radius', '?')}",
            fontsize=10,
        )
        paths.append(_save_figure(fig, folder / f"{name}.png"))
    return paths


# --------------------------------------------------------------------------------------------
# everything


def run_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Final mIoU (and labelled fraction) of every run, nested for ``dvc metrics show``.

    Returns:
        ``{backbone: {run label: {seed<s>: {"miou": %, "budget_used": fraction}}}}`` where the run
        label is ``<method> <budget %>`` for active runs and ``source-only [<variant>]`` or
        ``supervised [<variant>]`` otherwise.
    """
    check_records(records)
    out: dict[str, Any] = {}
    for rec in records:
        if rec["kind"] == "active":
            label = f"{rec['method']} {budget_label(rec['budget'])}"
        else:
            label = (
                f"{'source-only' if rec['kind'] == 'source' else 'supervised'} [{rec['variant']}]"
            )
        entry = {"miou": _json_float(rec["miou"])}
        if rec.get("budget_used") is not None:
            entry["budget_used"] = rec["budget_used"]
        out.setdefault(rec["backbone"], {}).setdefault(label, {})[f"seed{rec['seed']}"] = entry
    return out


def training_stability(
    records: Sequence[Mapping[str, Any]],
    losses: Sequence[Sequence[float] | None],
    *,
    factor: float = LOSS_SPIKE_FACTOR,
) -> pd.DataFrame:
    """Loss spikes in the active runs' training: a diverging round that still ended finite.

    Args:
        records: run records of one benchmark.
        losses: aligned with ``records``: the run's logged training losses in order (float
            ``[N]``, round 1 first, as in each round's ``train_log.json`` history), or ``None``.
        factor: a run is ``unstable`` when its peak loss exceeds ``factor`` x its first loss.

    Returns:
        One row per run with losses, sorted as :func:`miou_long` then by seed: ``backbone,
        method, variant, budget, seed, start_loss, peak_loss, peak_at`` (index into the losses),
        ``final_loss, unstable`` (bool), ``miou``.
    """
    check_records(records)
    if len(losses) != len(records):
        raise ValueError(f"training_stability: {len(losses)} loss lists for {len(records)} records")
    if not factor > 1:
        raise ValueError(f"training_stability: factor must be > 1, got {factor}")
    have = [
        (r, np.asarray(x, dtype=np.float64))
        for r, x in zip(records, losses, strict=True)
        if x is not None and len(x)
    ]
    cols = [*_GROUP, "seed", "start_loss", "peak_loss", "peak_at", "final_loss", "unstable"]
    if not have:
        return pd.DataFrame(columns=[*cols, "miou"])
    runs = _runs_frame([r for r, _ in have])
    x = [x for _, x in have]
    runs["start_loss"] = [v[0] for v in x]
    runs["peak_loss"] = [v.max() for v in x]
    runs["peak_at"] = [int(v.argmax()) for v in x]
    runs["final_loss"] = [v[-1] for v in x]
    runs["unstable"] = runs["peak_loss"] > factor * runs["start_loss"]
    runs = runs.sort_values(
        ["backbone", "kind_order", "method", "variant", "budget", "seed"], kind="stable"
    )
    return runs[[*cols, "miou"]].reset_index(drop=True)


def _stability_note(table: pd.DataFrame) -> str:
    """Markdown lines naming the unstable runs (empty when there are none)."""
    bad = table[table["unstable"]]
    if bad.empty:
        return ""
    runs = "; ".join(
        f"{r.method} {budget_label(r.budget)} seed {r.seed} (loss {r.start_loss:.3g} → "
        f"{r.peak_loss:.3g}, mIoU {r.miou:.1f})"
        for r in bad.itertuples()
    )
    return (
        f"\n**Unstable training** in {len(bad)} of {len(table)} active runs (peak training loss "
        f"above {LOSS_SPIKE_FACTOR:g}x the first; {STABILITY_CSV}): {runs}.\n"
    )


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
        panels: optional :func:`acquisition_panels` output, drawn into ``acquisition/``.
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
        table = acquired_class_table(records, acquired)
        write_text(out_dir / ACQUIRED_CSV, table.to_csv(index=False, lineterminator="\n"))
        written.append(out_dir / ACQUIRED_CSV)
    unstable: list[dict] = []
    if stability is not None:
        write_text(out_dir / STABILITY_CSV, stability.to_csv(index=False, lineterminator="\n"))
        written.append(out_dir / STABILITY_CSV)
        unstable = [
            {"method": r.method, "budget": float(r.budget), "seed": r.seed}
            for r in stability[stability["unstable"]].itertuples()
        ]
    correlations = radius_correlations(records)
    if len(correlations):
        write_text(out_dir / RADIUS_CORR_CSV, correlations.to_csv(index=False, lineterminator="\n"))
        written.append(out_dir / RADIUS_CORR_CSV)
    if panels:
        written += write_acquisition_figures(panels, out_dir)
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
