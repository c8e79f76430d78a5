"""Tables beside the mIoU numbers: the Markdown and CSV mIoU files, per-class IoU, the classes the
active runs labelled, and the training stability of the active runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from halo.io import write_text
from halo.report.layout import MIOU_CSV, MIOU_HTML, MIOU_MD, PER_CLASS_CSV, RUNS_CSV, STABILITY_CSV
from halo.report.records import (
    _GROUP,
    _class_long,
    _runs_frame,
    _sort,
    budget_label,
    check_records,
    miou_long,
    miou_table,
)

__all__ = [
    "LOSS_SPIKE_FACTOR",
    "acquired_class_table",
    "labelled_class_counts",
    "per_class_table",
    "training_stability",
    "write_miou_table",
    "write_per_class_table",
]

LOSS_SPIKE_FACTOR = 5.0


# --------------------------------------------------------------------------------------------
# mIoU files


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
    labelled = _labelled_line(long)
    return "\n".join(lines) + "\n" + (f"\n{labelled}\n" if labelled else "")


def _labelled_line(long: pd.DataFrame) -> str:
    """The pixels each budget labelled: per budget column, the smallest and largest of the
    active cells' mean labelled fractions (% of the target pool); empty without active cells."""
    active = long.dropna(subset=["labelled_fraction"])
    active = active[active["budget"].between(0, 1, inclusive="neither")]
    if active.empty:
        return ""
    spans = []
    for budget, cell in active.groupby("budget"):
        lo, hi = 100 * cell["labelled_fraction"].min(), 100 * cell["labelled_fraction"].max()
        span = f"{lo:.4f} %" if f"{lo:.4f}" == f"{hi:.4f}" else f"{lo:.4f}–{hi:.4f} %"
        spans.append(f"{budget_label(budget)}: {span}")
    return (
        "Labelled pixels, % of the target pool (each cell's mean over its seeds; the range over "
        f"the cells of a column): {'; '.join(spans)}."
    )


_PAGE_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.25em .6em}td.n{text-align:right}th{background:#f3f3f3}"
)


def _html(wide: pd.DataFrame, markdown: str) -> str:
    """The mIoU table as a standalone page (no script, no external resource): the Markdown file's
    title and sentences as text, the table as an HTML table."""
    from html import escape

    text = [line for line in markdown.splitlines() if line and not line.startswith("|")]
    title, sentences = text[0].lstrip("# "), text[1:]
    head = "".join(f"<th>{escape(str(h))}</th>" for h in ["backbone", "method", *wide.columns])
    rows = []
    for (backbone, method), row in wide.iterrows():
        cells = [f"<td>{escape(str(backbone))}</td>", f"<td>{escape(str(method))}</td>"]
        cells += [f'<td class="n">{escape(str(c))}</td>' for c in row]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    plain = [s.replace("**", "").replace("`", "") for s in sentences]  # Markdown marks dropped
    paragraphs = "".join(f"<p>{escape(s)}</p>" for s in plain)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_PAGE_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>{paragraphs}</body></html>\n"
    )


def write_miou_table(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    digits: int = 1,
    note: str = "",
) -> list[Path]:
    """Write ``miou_table.csv`` (tidy, numeric), ``miou_table.md`` (wide), the same table as a
    page (``miou_table.html``) and ``runs.csv`` (one row per run: the seeds behind each cell, for
    paired comparisons) into ``out_dir``.

    The CSV has columns ``backbone, method, variant, budget, n_seeds, mean, std`` (empty std
    with one seed) and ``labelled_fraction`` (the mean labelled fraction of the target pool);
    the Markdown file a header naming the benchmark and the seed count, then
    :func:`miou_table`, then ``note`` (Markdown, e.g. the unstable runs); ``runs.csv`` the
    columns ``backbone, method, variant, kind, budget, seed, miou, labelled_fraction``.

    Returns:
        The four paths.
    """
    benchmark = check_records(records)
    out_dir = Path(out_dir)
    long = miou_long(records)
    wide = miou_table(records, digits=digits)
    csv_path, md_path = out_dir / MIOU_CSV, out_dir / MIOU_MD
    cols = ["backbone", "method", "variant", "budget", "n_seeds", "mean", "std"]
    cols.append("labelled_fraction")
    write_text(csv_path, long[cols].to_csv(index=False, lineterminator="\n"))
    markdown = _markdown(wide, long, benchmark) + note
    write_text(md_path, markdown)
    html_path = out_dir / MIOU_HTML
    write_text(html_path, _html(wide, markdown))
    runs = _runs_frame(records).sort_values(
        ["backbone", "kind_order", "method", "variant", "budget", "seed"], kind="stable"
    )
    runs_path = out_dir / RUNS_CSV
    keep = ["backbone", "method", "variant", "kind", "budget", "seed", "miou", "labelled"]
    keep.append("round_miou")
    frame = runs[keep].rename(columns={"labelled": "labelled_fraction"})
    write_text(runs_path, frame.to_csv(index=False, lineterminator="\n"))
    return [csv_path, md_path, html_path, runs_path]


# --------------------------------------------------------------------------------------------
# per-class tables


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
# training stability


def training_stability(
    records: Sequence[Mapping[str, Any]],
    losses: Sequence[Sequence[float] | None],
    *,
    factor: float = LOSS_SPIKE_FACTOR,
) -> pd.DataFrame:
    """Loss spikes in the active runs' training: a diverging round that still ended finite.

    Args:
        records: run records of one benchmark.
        losses: aligned with ``records``: the run's training losses in order, round 1 first:
            ``[N, 2]`` ``(step, loss)`` pairs (every step: the last round's ``train_log.json``
            curve), or ``[N]`` losses of steps ``0..N-1``; or ``None``.
        factor: a run is ``unstable`` when its peak loss exceeds ``factor`` x its first loss.

    Returns:
        One row per run with losses, sorted as :func:`miou_long` then by seed: ``backbone,
        method, variant, budget, seed, start_loss, peak_loss, peak_step`` (the training step of
        the peak), ``final_loss, unstable`` (bool), ``miou``.
    """
    check_records(records)
    if len(losses) != len(records):
        raise ValueError(f"training_stability: {len(losses)} loss lists for {len(records)} records")
    if not factor > 1:
        raise ValueError(f"training_stability: factor must be > 1, got {factor}")
    have = [
        (r, _step_losses(x))
        for r, x in zip(records, losses, strict=True)
        if x is not None and len(x)
    ]
    cols = [*_GROUP, "seed", "start_loss", "peak_loss", "peak_step", "final_loss", "unstable"]
    if not have:
        return pd.DataFrame(columns=[*cols, "miou"])
    runs = _runs_frame([r for r, _ in have])
    x = [x for _, x in have]
    runs["start_loss"] = [v[0, 1] for v in x]
    runs["peak_loss"] = [v[:, 1].max() for v in x]
    runs["peak_step"] = [int(v[v[:, 1].argmax(), 0]) for v in x]
    runs["final_loss"] = [v[-1, 1] for v in x]
    runs["unstable"] = runs["peak_loss"] > factor * runs["start_loss"]
    runs = runs.sort_values(
        ["backbone", "kind_order", "method", "variant", "budget", "seed"], kind="stable"
    )
    return runs[[*cols, "miou"]].reset_index(drop=True)


def _step_losses(x: Sequence) -> np.ndarray:
    """``[N, 2]`` float64 ``(step, loss)``: pairs as given, or a loss list indexed by step."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return np.stack([np.arange(arr.size, dtype=np.float64), arr], axis=1)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"training_stability: losses must be [N] or [N, 2], got {list(arr.shape)}")
    return arr


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
