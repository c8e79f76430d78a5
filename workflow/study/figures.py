"""The study's radius figures (issue #29): the sign contrast, drawn from the tables.

- ``radius_vs_frequency_source_final.png``: class mean radius against class pixel share (log)
  for HALO's source-only model and for HALO's final model at the largest budget, side by side,
  each with its Pearson r (class values averaged over seeds, as in the report);
- ``radius_correlation_vs_budget.png``: the paper's Figure 2 (right): per method and budget, r
  after each round against the budget spent so far (round 0 = the source model), the mean over
  seeds with a band from the smallest to the largest seed's r (the ``rounds`` rows of
  ``radius_experiments.csv``).

::

    uv run python workflow/study/figures.py --grid-runs DIR/runs/synth-gta2cs/deeplabv3plus-r18 \\
        --experiments docs/study/radius_experiments.csv --out docs/figures/study
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from halo.report.figures import _declutter, _new_figure, _save_figure  # noqa: E402
from halo.report.radius import class_means, pearson_r  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claims import NAMES  # noqa: E402  (the study's one table of method names)

SIDE_BY_SIDE = "radius_vs_frequency_source_final.png"
CURVES = "radius_correlation_vs_budget.png"


def _evals(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths]


def source_and_final(grid_runs: Path, method: str, budget: str) -> dict[str, list[dict]]:
    """The evaluations of ``method``'s source-only models (its variant, every seed) and of its
    final round at ``budget`` (percent, as in paths)."""
    finals, sources = [], []
    for record in sorted(grid_runs.glob(f"{method}/{budget}/seed*/metrics.json")):
        rec = json.loads(record.read_text())
        last = rec["rounds"][-1]["round"]
        finals.append(record.parent / f"round{last}" / "eval.json")
        sources.append(grid_runs / "source" / rec["variant"] / record.parent.name / "eval.json")
    final = f"{NAMES.get(method, method)} after {budget} %"
    return {"source model": _evals(sources), final: _evals(finals)}


def draw_side_by_side(groups: dict[str, list[dict]], path: Path) -> Path:
    """One scatter panel per group (shared y axis)."""
    fig = _new_figure((11.0, 4.6))
    axes = fig.subplots(1, len(groups), sharey=True)
    labels = []
    for ax, (name, metrics) in zip(np.atleast_1d(axes), groups.items(), strict=True):
        frame = class_means(metrics)
        r = pearson_r(frame["mean_radius"], frame["pixel_share"]) if len(frame) else None
        ax.scatter(frame["pixel_share"], frame["mean_radius"], s=22, color="C0")
        for c, x, y in zip(frame["class"], frame["pixel_share"], frame["mean_radius"], strict=True):
            labels.append(
                ax.annotate(c, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
            )
        ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("class pixel share (log scale)")
        rtext = "n/a" if r is None else f"{r:+.2f}"
        seeds = f"{len(metrics)} seed{'s' if len(metrics) != 1 else ''}"
        ax.set_title(f"{name}: Pearson r = {rtext} ({seeds})", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("class mean radius d(0, x)")
    _declutter(fig, sorted(labels, key=lambda t: t.xy[0]))
    return _save_figure(fig, path)


def curve_table(experiments: pd.DataFrame) -> pd.DataFrame:
    """The ``rounds`` rows as ``method, budget, round, spent`` (% of the pixels labelled after
    the round), ``r`` (seed-averaged classes), ``r_min``, ``r_max`` (over the seeds' own r)."""
    rows = experiments[experiments["experiment"] == "rounds"].copy()
    parts = rows["setting"].str.extract(r"^(?P<method>\S+) (?P<budget>[\d.]+) %")
    rows["method"], rows["budget"] = parts["method"], parts["budget"].astype(float)
    rounds = rows.groupby(["method", "budget"])["round"].transform("max")
    rows["spent"] = rows["budget"] * rows["round"] / rounds
    seeds = rows["pearson_r_seeds"].astype(str).str.split(";")
    values = seeds.apply(lambda s: [float(v) for v in s if v not in ("", "nan")])
    rows["r_min"] = values.apply(lambda v: min(v) if v else np.nan)
    rows["r_max"] = values.apply(lambda v: max(v) if v else np.nan)
    keep = ["method", "budget", "round", "spent", "pearson_r", "r_min", "r_max", "n_seeds"]
    return rows[keep].rename(columns={"pearson_r": "r"}).sort_values(["method", "budget", "round"])


#: the methods the curves show (the ablations and the negative-learning block run at 5 % only)
CURVE_METHODS = ("random", "entropy", "ripu", "halo", "halo-src", "halo-src-inv")


def draw_curves(table: pd.DataFrame, path: Path, methods=CURVE_METHODS) -> Path:
    """r against the budget spent: one panel per budget, one line and seed band per method (a
    method keeps its colour across the panels)."""
    table = table[table["method"].isin(methods)]
    budgets = sorted(table["budget"].unique())
    fig = _new_figure((4.0 * max(len(budgets), 1) + 0.6, 4.4))
    axes = np.atleast_1d(fig.subplots(1, max(len(budgets), 1), sharey=True))
    colour = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, budget in zip(axes, budgets, strict=False):
        for method, cell in table[table["budget"] == budget].groupby("method", sort=False):
            seeds = int(cell["n_seeds"].max())
            label = f"{NAMES.get(method, method)} ({seeds} seed{'s' if seeds != 1 else ''})"
            ax.plot(cell["spent"], cell["r"], marker="o", ms=3, color=colour[method], label=label)
            ax.fill_between(
                cell["spent"], cell["r_min"], cell["r_max"], color=colour[method], alpha=0.15
            )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("target pixels labelled so far (%)")
        ax.set_title(f"budget {budget:g} %", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("Pearson r, class radius vs class pixel share")
    fig.suptitle(
        "the radius-frequency correlation through the rounds (round 0: the source model; "
        "band: the seeds' range)",
        fontsize=9,
    )
    return _save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid-runs", type=Path, required=True, help="DIR/runs/<bench>/<backbone>")
    ap.add_argument("--experiments", type=Path, required=True, help="radius_experiments.csv")
    ap.add_argument("--out", type=Path, required=True, help="folder of the figures")
    ap.add_argument("--method", default="halo")
    ap.add_argument("--budget", default="5", help="the final model's budget (%%, as in paths)")
    args = ap.parse_args(argv)
    groups = source_and_final(args.grid_runs, args.method, args.budget)
    if not all(groups.values()):
        sys.exit(f"figures: {args.grid_runs}: no {args.method} runs at {args.budget} %")
    print(draw_side_by_side(groups, args.out / SIDE_BY_SIDE))
    print(draw_curves(curve_table(pd.read_csv(args.experiments)), args.out / CURVES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
