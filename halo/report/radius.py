"""Class radius against class pixel frequency (the paper's Figure 2): correlations and the chosen
group of runs.

The figure itself is drawn by :func:`halo.report.figures.write_radius_vs_frequency`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from halo.report.records import _budget_key, check_records

__all__ = [
    "LEARNED_IOU",
    "class_means",
    "group_correlations",
    "partial_r",
    "pearson_r",
    "radius_correlations",
    "radius_vs_frequency",
    "spearman_rho",
]

LEARNED_IOU = 20.0  # mean IoU (percent) from which a model group counts a class as learned


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


def partial_r(x: Any, y: Any, z: Any) -> float | None:
    """Partial correlation of ``x`` and ``y`` given ``z`` (1-D samples of one length): the
    Pearson r of their residuals after a least-squares line on ``z``; ``None`` with < 4 points
    or where a residual has no spread."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    if not x.shape == y.shape == z.shape or x.ndim != 1:
        raise ValueError(
            f"partial_r: 1-D samples of one length, got {x.shape}, {y.shape}, {z.shape}"
        )
    if x.size < 4:
        return None
    design = np.stack([np.ones_like(z), z], axis=1)

    def residual(v: np.ndarray) -> np.ndarray | None:
        coef, *_ = np.linalg.lstsq(design, v, rcond=None)
        rest = v - design @ coef
        # what z explains exactly leaves rounding noise, not a spread
        return rest if np.linalg.norm(rest) > 1e-9 * max(np.linalg.norm(v), 1e-300) else None

    rx, ry = residual(x), residual(y)
    return None if rx is None or ry is None else pearson_r(rx, ry)


def _has_radius(rec: Mapping[str, Any]) -> bool:
    radius, share = rec.get("class_mean_radius") or {}, rec.get("class_pixel_share") or {}
    return any(v is not None and share.get(k) is not None for k, v in radius.items())


def _pick_radius_group(
    records: Sequence[Mapping[str, Any]], backbone: str | None
) -> tuple[list[Mapping[str, Any]], str] | None:
    """The records the radius figure averages, and the rule that chose them (or None).

    Rule: the ``halo`` method at its largest budget; else a model whose variant starts with
    ``hyperbolic``: source-only first, then active runs (largest budget first), then supervised.
    Only records with at least one class having both a radius and a pixel share count; of
    several candidate (backbone, variant) groups the one with the most records (seeds) is taken,
    then the first by name (a one-seed ablation never stands for the study's model).
    """
    usable = [
        r
        for r in records
        if _has_radius(r) and (backbone is None or str(r["backbone"]) == backbone)
    ]

    def group_key(r: Mapping[str, Any]) -> tuple:
        return (str(r["backbone"]), str(r["method"]), str(r["variant"]), _budget_key(r))

    size = Counter(group_key(r) for r in usable)
    halo = [r for r in usable if r["method"] == "halo" and r["kind"] == "active"]
    if halo:
        top = max(_budget_key(r) for r in halo)
        key = min(
            (group_key(r) for r in halo if _budget_key(r) == top), key=lambda k: (-size[k], k)
        )
        return [r for r in halo if group_key(r) == key], "halo at its largest budget"
    hyper = [r for r in usable if str(r["variant"]).startswith("hyperbolic")]
    if hyper:
        rank = {"source": 0, "active": 1, "supervised": 2}

        def pref(r: Mapping[str, Any]) -> tuple:
            b, m, v, budget = key = group_key(r)
            return (rank[r["kind"]], -budget, -size[key], b, m, v)

        chosen = min(hyper, key=pref)
        key = group_key(chosen)
        rule = {
            "source": "hyperbolic source-only model",
            "active": "hyperbolic active run at its largest budget",
            "supervised": "hyperbolic supervised model",
        }[chosen["kind"]]
        return [r for r in hyper if group_key(r) == key], rule
    return None


def class_means(metrics: Sequence[Mapping[str, Any]], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Per class, the mean over a group's metrics (run records or ``halo evaluate`` outputs, e.g.
    one setting's seeds) of its pixel share and mean radius (and of the ``extra`` per-class
    fields, e.g. ``per_class_iou``); undefined values are skipped, and classes without a positive
    share or a finite radius are dropped. Columns ``class, pixel_share, mean_radius, *extra``, in
    class order."""
    fields = {"pixel_share": "class_pixel_share", "mean_radius": "class_mean_radius"}
    fields.update({name: name for name in extra})
    classes = list(
        dict.fromkeys(
            c for m in metrics for c in (m.get("class_names") or m.get("class_pixel_share") or {})
        )
    )

    def value(m: Mapping[str, Any], field: str, c: str) -> float:
        v = (m.get(field) or {}).get(c)
        return math.nan if v is None else float(v)

    with np.errstate(all="ignore"):
        means = {
            name: np.array(
                [[value(m, field, c) for c in classes] for m in metrics], dtype=np.float64
            ).reshape(len(metrics), len(classes))
            for name, field in fields.items()
        }
    frame = pd.DataFrame({"class": classes})
    for name, table in means.items():
        n = np.isfinite(table).sum(0)
        total = np.where(np.isfinite(table), table, 0.0).sum(0)
        frame[name] = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    keep = frame["pixel_share"].gt(0) & np.isfinite(frame["mean_radius"])
    return frame[keep].reset_index(drop=True)


def group_correlations(metrics: Sequence[Mapping[str, Any]]) -> dict[str, float | int]:
    """Radius-vs-frequency correlation of one group of metrics (class values averaged over the
    group first, :func:`class_means`), over all classes and over the classes the group learned
    (mean IoU >= ``LEARNED_IOU``): ``n_classes, pearson_r, spearman_rho, n_learned,
    pearson_r_learned, spearman_rho_learned``; then, over the classes with an IoU, the radius
    against the log pixel share (``pearson_r_log_share``), against the IoU (``pearson_r_iou``),
    and against the log share given the IoU (``partial_r_iou``: does frequency tell anything
    about the radius once how well a class is segmented is known?). NaN where undefined (too
    few classes or no spread)."""
    frame = class_means(metrics, extra=("per_class_iou",))
    learned = frame[frame["per_class_iou"] >= LEARNED_IOU]
    scored = frame[np.isfinite(frame["per_class_iou"])]
    log_share = np.log(scored["pixel_share"])

    def corr(fn, f: pd.DataFrame) -> float:
        value = fn(f["mean_radius"], f["pixel_share"])
        return math.nan if value is None else value

    def nan(value: float | None) -> float:
        return math.nan if value is None else value

    return {
        "n_classes": len(frame),
        "pearson_r": corr(pearson_r, frame),
        "spearman_rho": corr(spearman_rho, frame),
        "n_learned": len(learned),
        "pearson_r_learned": corr(pearson_r, learned),
        "spearman_rho_learned": corr(spearman_rho, learned),
        "pearson_r_log_share": nan(pearson_r(scored["mean_radius"], log_share)),
        "pearson_r_iou": nan(pearson_r(scored["mean_radius"], scored["per_class_iou"])),
        "partial_r_iou": nan(partial_r(scored["mean_radius"], log_share, scored["per_class_iou"])),
    }


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
        ``spearman_rho_learned``, ``pearson_r_log_share``, ``pearson_r_iou``, ``partial_r_iou``
        (:func:`group_correlations`; NaN where undefined: too few classes or no spread).
    """
    check_records(records)
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in records:
        if _has_radius(r):
            key = (str(r["backbone"]), str(r["method"]), str(r["variant"]), _budget_key(r))
            groups.setdefault(key, []).append(r)
    rows = []
    for (backbone, method, variant, budget), group in groups.items():
        rows.append(
            {
                "backbone": backbone,
                "method": method,
                "variant": variant,
                "budget": budget,
                "n_seeds": len(group),
                **group_correlations(group),
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
        "pearson_r_log_share",
        "pearson_r_iou",
        "partial_r_iou",
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
    frame = class_means(group)
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
