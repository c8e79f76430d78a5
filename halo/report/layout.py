"""The report folder's file names, each defined once, and what each file holds (:data:`CAPTIONS`:
one caption per file, shown by Snakemake's report and :mod:`halo.report`'s docstring points here)."""

from __future__ import annotations

__all__ = [
    "ACQUIRED_CSV",
    "ACQUISITION_DIR",
    "BUDGET_CSV",
    "BUDGET_CURVE_FILE",
    "CAPTIONS",
    "METRICS_FILE",
    "MIOU_CSV",
    "MIOU_HTML",
    "MIOU_MD",
    "PER_CLASS_CSV",
    "RADIUS_CORR_CSV",
    "RADIUS_CSV",
    "RADIUS_PNG",
    "ROUNDS_CSV",
    "RUNS_CSV",
    "STABILITY_CSV",
    "SUMMARY_FILE",
    "captions_table",
]

MIOU_CSV = "miou_table.csv"
MIOU_MD = "miou_table.md"
MIOU_HTML = "miou_table.html"  # the same table as a page (Snakemake's report shows it inline)
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

# What each file holds, one caption per file (``acquisition/*.png``: every panel), in the order a
# reader should open them. Snakemake's report shows these (workflow/report/results.rst).
CAPTIONS = {
    MIOU_HTML: "The final mIoU (%) per method and budget: mean ± sample std over seeds; 0% is the "
    "source-only model, 100% target-supervised. The same table as miou_table.md.",
    MIOU_CSV: "The mIoU table, tidy: backbone, method, variant, budget, n_seeds, mean, std and "
    "labelled_fraction (the mean labelled share of the target pool).",
    RUNS_CSV: "One row per run (backbone, method, variant, kind, budget, seed, miou, "
    "labelled_fraction, round_miou: the mIoU after each round): the seeds behind each cell, for "
    "paired comparisons.",
    BUDGET_CURVE_FILE: "Target mIoU (%) against the labelled budget (% of target pixels), one line "
    "per method, mean over seeds with the seeds as points; source-only dotted, supervised dashed.",
    BUDGET_CSV: "The budget curve's data: series, budget (%), mean mIoU, seeds.",
    ROUNDS_CSV: "mIoU after each round per active series (round 0 = source-only).",
    PER_CLASS_CSV: "Mean IoU of each class per method and budget (backbone, method, variant, "
    "budget, n_seeds, one column per class).",
    ACQUIRED_CSV: "The class mix of the pixels each method labelled: % of its labelled pixels per "
    "class after the last round.",
    RADIUS_PNG: "Mean hyperbolic radius of each class against its pixel share on the target val "
    "set (log x), with Pearson r and Spearman rho (the paper's Figure 2: rarer classes at a "
    "smaller radius?).",
    RADIUS_CSV: "The radius-vs-frequency figure's data: class, pixel_share, mean_radius.",
    RADIUS_CORR_CSV: "Per model group with radii: the radius-vs-share correlation over all classes "
    "and over the classes it learned (IoU >= 20).",
    STABILITY_CSV: "Per active run: the first, peak and final training loss, unstable when the "
    "peak is above 5x the first.",
    f"{ACQUISITION_DIR}/*.png": "A first round on one target image, scored with the source model: "
    "image | radius | entropy | score | selected pixels (the paper's Figure 4).",
    MIOU_MD: "The mIoU table in Markdown (what the README's blocks copy).",
    METRICS_FILE: "Method -> budget -> mean and per-seed mIoU (dvc metrics show).",
    SUMMARY_FILE: "What the report job returned: the files written, the radius statistics, the "
    "best method per budget, the unstable runs.",
}


def captions_table() -> str:
    """:data:`CAPTIONS` as a Markdown table (file | what), as docs/workflow.md shows it."""
    rows = [f"| `{name}` | {text.replace('|', '/')} |" for name, text in CAPTIONS.items()]
    return "\n".join(["| file | what |", "|---|---|", *rows]) + "\n"
