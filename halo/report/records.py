"""Run records as frames: validation, the tidy and wide mIoU tables, the best methods, the
metrics of every run.

Every other module of :mod:`halo.report` starts from here: :func:`check_records` validates the
records (one benchmark, no run twice) and ``_runs_frame`` turns them into one row per run with the
keys the tables group by.

Conventions. mIoU and IoU are in percent (as in the records). ``budget`` is the total fraction of
target pixels; in the tidy tables source-only rows have budget ``0`` and supervised rows budget
``1`` (the ``0%`` and ``100%`` columns of the wide table). ``method`` in the CSVs is the record's
method (``source``, ``supervised``, ``halo``, ...); the wide table and the figures label rows
``source-only``, ``supervised`` or the method, with `` [variant]`` appended when one backbone has
runs of that method with more than one model variant. Standard deviations are sample standard
deviations (``ddof=1``) over seeds, empty (NaN) with one seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "best_methods",
    "budget_label",
    "check_records",
    "miou_long",
    "miou_table",
    "plot_tables",
    "run_metrics",
]

_REQUIRED = ("benchmark", "backbone", "method", "kind", "variant", "budget", "seed", "miou")
_KIND_ORDER = {"source": 0, "active": 1, "supervised": 2}
_KIND_LABEL = {"source": "source-only", "supervised": "supervised"}
_KIND_BUDGET = {"source": 0.0, "supervised": 1.0}
_GROUP = ["backbone", "method", "variant", "kind", "budget"]


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


def _round_mious(record: Mapping[str, Any]) -> str:
    """An active record's mIoU after each round, in round order, ``;``-joined (full precision,
    as ``miou``: statistics are taken on these, rounding is the display's; ``nan`` where a round
    has none); empty for a run without rounds."""
    rounds = sorted(record.get("rounds") or [], key=lambda r: int(r["round"]))
    return ";".join(repr(_float(r.get("miou"))) for r in rounds)


def _runs_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record: backbone, method, variant, kind, budget, seed, miou, labelled (the
    labelled fraction of the target pool, ``budget_used``; NaN where none), round_miou (the
    mIoU after each round, :func:`_round_mious`), label, order."""
    frame = pd.DataFrame(
        {
            "backbone": [str(r["backbone"]) for r in records],
            "method": [str(r["method"]) for r in records],
            "variant": [str(r["variant"]) for r in records],
            "kind": [str(r["kind"]) for r in records],
            "budget": [_budget_key(r) for r in records],
            "seed": [r["seed"] for r in records],
            "miou": [_float(r["miou"]) for r in records],
            "labelled": [_float(r.get("budget_used")) for r in records],
            "round_miou": [_round_mious(r) for r in records],
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


# --------------------------------------------------------------------------------------------
# mIoU tables


def miou_long(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Final mIoU per (backbone, method, variant, budget): mean and spread over seeds (tidy).

    Args:
        records: run records of one benchmark.

    Returns:
        One row per group, sorted by backbone, then source / active / supervised, method,
        variant and budget; columns ``backbone, method, variant, budget`` (float fraction; 0 for
        source-only, 1 for supervised), ``n_seeds`` (int: records with a defined mIoU),
        ``mean``, ``std`` (float percent, sample std, NaN with < 2 seeds),
        ``labelled_fraction`` (mean labelled fraction of the target pool over the seeds, NaN for
        source-only and supervised), ``kind`` and ``label`` (the row name of the wide table).

    Raises:
        ValueError: see :func:`check_records`.
    """
    check_records(records)
    frame = _runs_frame(records)
    groups = frame.groupby([*_GROUP, "label", "kind_order"], sort=False)
    out = groups["miou"].agg(n_seeds="count", mean="mean", std=lambda s: s.std(ddof=1))
    out = out.join(groups["labelled"].mean().rename("labelled_fraction")).reset_index()
    out["n_seeds"] = out["n_seeds"].astype(int)
    out = _sort(out)
    cols = ["backbone", "method", "variant", "budget", "n_seeds", "mean", "std"]
    return out[[*cols, "labelled_fraction"]].assign(kind=out["kind"], label=out["label"])


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
# metrics of every run


def _series(frame: pd.DataFrame) -> pd.Series:
    """A group's name in the compact metrics and the plots: its label (``halo``,
    ``source-only``, ``supervised``, `` [variant]`` where needed), `` · <backbone>`` when the
    benchmark has runs of several backbones."""
    if frame["backbone"].nunique() > 1:
        return frame["label"] + " · " + frame["backbone"]
    return frame["label"]


def run_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Final mIoU of every run, compact for ``dvc metrics show`` (method → budget → mean, seeds).

    Returns:
        ``{series: {budget: {"mean": %, "seed<s>": %, ...}}}``: ``series`` as in the tables
        (:func:`_series`), ``budget`` the column names of the wide table (``0%`` source-only,
        ``5%``, ``100%`` supervised), ``mean`` over the seeds with a defined mIoU (``None``
        without one, like an undefined seed).
    """
    check_records(records)
    frame = _sort(_runs_frame(records))
    frame["series"] = _series(frame)
    out: dict[str, Any] = {}
    for (series, budget), group in frame.groupby(["series", "budget"], sort=False):
        group = group.sort_values("seed", kind="stable")
        seeds = {
            f"seed{s}": _json_float(m) for s, m in zip(group["seed"], group["miou"], strict=True)
        }
        mean = group["miou"].mean()
        out.setdefault(str(series), {})[budget_label(budget)] = {
            "mean": _json_float(mean) if pd.notna(mean) else None,
            **seeds,
        }
    return out


def plot_tables(records: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data of DVC's plots (``dvc.yaml``; template ``by_series``: one line per series).

    Returns:
        ``(budget, rounds)``. ``budget``: ``series, budget, miou, seeds``, the mean final mIoU
        (percent) per budget in percent of the target pixels (source-only at 0, supervised at
        100). ``rounds``: ``series, round, miou, seeds`` for the active runs (series
        ``<method> <budget>``), the mean mIoU after each round; round 0 is the source-only model
        the runs start from (records with ``start_miou``).
    """
    check_records(records)
    frame = _sort(_runs_frame(records))
    frame["series"] = _series(frame)
    budget = (
        frame.groupby(["series", "budget"], sort=False)["miou"]
        .agg(miou="mean", seeds="count")
        .reset_index()
    )
    budget["budget"] = (budget["budget"] * 100).round(10)
    runs = _runs_frame(records).assign(series=_series(_runs_frame(records)))
    rows = []
    for rec, series in zip(records, runs["series"], strict=True):
        if rec["kind"] != "active":
            continue
        name = f"{series} {budget_label(rec['budget'])}"
        if rec.get("start_miou") is not None:
            rows.append((name, 0, _float(rec["start_miou"])))
        rows += [(name, int(r["round"]), _float(r["miou"])) for r in rec.get("rounds") or []]
    rounds = pd.DataFrame(rows, columns=["series", "round", "miou"])
    rounds = (
        rounds.groupby(["series", "round"], sort=False)["miou"]
        .agg(miou="mean", seeds="count")
        .reset_index()
        .sort_values(["series", "round"], kind="stable")
        .reset_index(drop=True)
    )
    return budget, rounds
