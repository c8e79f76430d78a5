"""The report's figures, drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no
GUI, no global state) and written atomically through :mod:`halo.io`: the budget curve, the radius
vs frequency scatter (the paper's Figure 2) and the acquisition panels (the paper's Figure 4;
the panels themselves are computed by :func:`halo.acquisition.preview.acquisition_panels`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from halo.io import write_bytes, write_text
from halo.report.layout import ACQUISITION_DIR, RADIUS_CSV, RADIUS_PNG
from halo.report.radius import radius_vs_frequency
from halo.report.records import budget_label, check_records, miou_long

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["budget_curve", "write_acquisition_figures", "write_radius_vs_frequency"]

_DPI = 120


# --------------------------------------------------------------------------------------------
# helpers


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
        # below the panel: inside, it hides the lines of a grid with many methods
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    axes[0].set_ylabel("mIoU (%)")
    fig.suptitle(f"{benchmark}: mIoU vs annotation budget (mean ± std over seeds)")
    return _save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# radius vs pixel frequency (paper Figure 2)


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
    labels = [
        ax.annotate(str(name), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
        for name, x, y in zip(
            frame["class"], frame["pixel_share"], frame["mean_radius"], strict=True
        )
    ]
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
    _declutter(fig, sorted(labels, key=lambda t: t.xy[0]))
    _save_figure(fig, png_path)
    return [csv_path, png_path], stats


def _declutter(fig: Figure, labels: list, step: float = 7.0, tries: int = 8) -> None:
    """Move each point label that would overlap one placed before it up or down in ``step``-point
    steps (+1, −1, +2, −2, … steps), keeping the first free place; labels in x order, so close
    points are settled together. Deterministic: the same figure gets the same places."""
    fig.canvas.draw()  # final limits and text sizes
    renderer = fig.canvas.get_renderer()
    placed = []
    for text in labels:
        x0, y0 = text.xyann
        for k in range(tries + 1):
            text.xyann = (x0, y0 + step * ((k + 1) // 2) * (1 if k % 2 else -1))
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed):
                break
        else:
            text.xyann = (x0, y0)  # no free place near: leave it where it was
            box = text.get_window_extent(renderer)
        placed.append(box)


# --------------------------------------------------------------------------------------------
# acquisition panels (paper Figure 4)


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
        panels: dicts from :func:`halo.acquisition.preview.acquisition_panels`.
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
