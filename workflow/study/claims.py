"""The paper's claims, checked against the study's tables with paired statistics (issue #29).

Reads the CSVs that ``halo report`` (or ``grid.py gather``) writes and writes the claims table
twice, as data and as the Markdown the README and docs/study.md copy::

    uv run python workflow/study/claims.py docs/study [--budgets 1 2.2 5]

writes ``docs/study/claims.csv`` and ``docs/study/claims.md`` (and prints the Markdown).

**Paired comparisons.** A claim "A ≥ B" at a budget is tested on the seeds both cells have: each
seed has its own source model and data order, so the per-seed difference ``d_s = A_s − B_s``
removes what the seeds share. The table gives the mean difference, its 95 % paired
*t*-interval (``mean ± t₀.₉₇₅,ₙ₋₁ · sd / √n``, sample sd of the differences), the two-sided
paired *t*-test's p-value and the number of seeds. The verdict comes from the interval alone:
**yes** when it lies above 0, **no** when it lies below 0, **inconclusive** when it holds 0
(and **n/a** with fewer than two paired seeds). The supervised bound has one run per seed; a
claim against it pairs each active run with its seed's bound.

**The radius sign** (the paper's Figure 2): the correlation between a class's mean radius and
its pixel share, for the source model and for the models active learning produced
(``radius_correlations.csv``); the paper reads a negative r. Rare classes are those under 1 % of
the evaluated target pixels (``radius_vs_frequency.csv``), the one definition every table uses.
Nothing here trains or evaluates: the numbers are the tables'.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blocks import sectioned, signed

TABLES = (
    "miou_table.csv",
    "runs.csv",
    "per_class.csv",
    "radius_correlations.csv",
    "acquired_classes.csv",
    "training_stability.csv",
    "radius_vs_frequency.csv",
)
CLAIMS_CSV, CLAIMS_MD = "claims.csv", "claims.md"
CONFIDENCE = 0.95
RARE_SHARE = 0.01
#: a class counts as learned from this IoU (%) on
LEARNED_IOU = 20.0
NAMES = {
    "random": "random",
    "entropy": "entropy",
    "ripu": "RIPU",
    "halo": "HALO",
    "halo-src": "HALO, source radius",
    "halo-src-inv": "HALO, inverted source radius",
    "radius": "radius alone",
    "featnorm": "feature norm × entropy (Euclidean)",
    "halo-nohfr": "HALO without HFR",
    "random-nl": "random + NL",
    "entropy-nl": "entropy + NL",
    "ripu-nl": "RIPU + NL",
    "halo-nl": "HALO + NL",
    "supervised": "supervised",
}
#: the paper's comparisons of the four main methods (and the supervised bound): (claim, A, B)
PAPER = (
    ("entropy ≥ random", "entropy", "random"),
    ("HALO ≥ random", "halo", "random"),
    ("HALO ≥ entropy", "halo", "entropy"),
    ("HALO ≥ RIPU (the paper's main comparison)", "halo", "ripu"),
    ("HALO surpasses target-supervised (the paper: from 1 % on)", "halo", "supervised"),
)


def with_nl(method: str) -> str:
    """A main method's negative-learning run (the ``-nl`` method; the supervised bound has no
    active rounds, so it is itself)."""
    return method if method == "supervised" else f"{method}-nl"


def cell_budget(method: str, budget: float) -> float:
    """The budget of ``method``'s cell that is compared at ``budget``: the supervised bound's
    is 1.0 (every label) at every budget."""
    return 1.0 if method == "supervised" else budget


#: (claim, A, B, at): "A ≥ B" at every budget (``"all"``) or at the largest one (``"top"``)
COMPARISONS = (
    *((claim, a, b, "all") for claim, a, b in PAPER),
    ("a scarcity radius adds to entropy: source radius ≥ entropy", "halo-src", "entropy", "all"),
    ("... its direction matters: source radius ≥ inverted", "halo-src", "halo-src-inv", "all"),
    ("... the paper's sign kept ≥ HALO's own radius", "halo-src", "halo", "all"),
    ("radius alone ≥ random (the radius carries information)", "radius", "random", "top"),
    ("HFR helps", "halo", "halo-nohfr", "top"),
    ("the hyperbolic radius ≥ a Euclidean feature norm", "halo", "featnorm", "top"),
    *((f"with NL: {claim}", with_nl(a), with_nl(b), "top") for claim, a, b in PAPER),
    *(
        (f"negative learning helps {NAMES[m]}", f"{m}-nl", m, "top")
        for m in ("random", "entropy", "ripu", "halo")
    ),
)


#: the README's claims (section ``core``): the paper's comparisons and the direct test of its
#: radius; the other rows (ablations, negative learning) are in docs/study.md
CORE = {
    ("entropy", "random"),
    ("halo", "entropy"),
    ("halo", "ripu"),
    ("halo", "supervised"),
    ("halo-src", "entropy"),
    ("halo-src", "halo-src-inv"),
}


@dataclass(frozen=True)
class Paired:
    """One paired comparison "a ≥ b" at one budget (percent)."""

    claim: str
    a: str
    b: str
    budget: float
    n: int
    mean_a: float
    mean_b: float
    diff: float
    diff_sd: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str


def paired_interval(diffs: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, ...]:
    """``(mean, sd, low, high, p)`` of per-seed differences ``[n]``: the paired t-interval and
    the two-sided p-value of mean 0 (NaN where ``n < 2``; a zero sd gives a zero-width interval
    and p = 0, or 1 when the mean is 0)."""
    d = np.asarray(diffs, dtype=np.float64)
    n = d.size
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan, math.nan
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    if sd == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return mean, sd, mean - half, mean + half, p


def verdict(low: float, high: float) -> str:
    """``yes`` / ``no`` / ``inconclusive`` from a difference's interval (``n/a`` without one)."""
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if low > 0:
        return "yes"
    if high < 0:
        return "no"
    return "inconclusive"


def seeds_of(runs: pd.DataFrame, method: str, budget: float) -> pd.Series:
    """Final mIoU per seed of one cell (``budget`` a fraction; the supervised bound at 1.0),
    seeds without a value left out. Exits with one line where the cell holds several runs of
    one seed (several variants or backbones): a claim pairs one run per seed."""
    hit = runs[(runs["method"] == method) & ((runs["budget"] - budget).abs() < 1e-9)]
    twice = hit["seed"][hit["seed"].duplicated()]
    if not twice.empty:
        kinds = sorted({f"{b}/{v}" for b, v in zip(hit["backbone"], hit["variant"], strict=True)})
        sys.exit(
            f"claims: runs.csv: {method} at {100 * budget:g} % has {len(hit)} runs for "
            f"{hit['seed'].nunique()} seeds ({', '.join(kinds)}); expected one run per seed"
        )
    return hit.set_index("seed")["miou"].dropna()


def compare(runs: pd.DataFrame, claim: str, a: str, b: str, budget: float) -> Paired | None:
    """The paired comparison of ``a`` and ``b`` at ``budget``, or None when a cell is missing."""
    sa = seeds_of(runs, a, budget)
    sb = seeds_of(runs, b, cell_budget(b, budget))
    common = sa.index.intersection(sb.index)
    if common.empty:
        return None
    sa, sb = sa.loc[common], sb.loc[common]
    mean, sd, low, high, p = paired_interval((sa - sb).to_numpy())
    return Paired(
        claim, a, b, round(100 * budget, 6), int(common.size), float(sa.mean()), float(sb.mean()),
        mean, sd, low, high, p, verdict(low, high),
    )  # fmt: skip


def claims(runs: pd.DataFrame, budgets: list[float]) -> list[Paired]:
    """Every comparison of :data:`COMPARISONS` whose cells the tables have."""
    out = []
    for claim, a, b, at in COMPARISONS:
        for budget in budgets if at == "all" else [max(budgets)]:
            got = compare(runs, claim, a, b, budget)
            if got is not None:
                out.append(got)
    return out


def claims_markdown(rows: list[Paired], what: str = "final mIoU") -> str:
    """The claims table (Markdown), one row per claim and budget; A and B are means of ``what``
    over the paired seeds (the ``seeds`` column), which is the cell's mean where every seed
    pairs."""
    lines = [
        "| claim (paper) | budget | A | B | A − B, paired [95 % CI] | p | seeds | holds? |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ci = "" if math.isnan(r.ci_low) else f" [{signed(r.ci_low)}, {signed(r.ci_high)}]"
        p = "—" if math.isnan(r.p_value) else f"{r.p_value:.2g}"
        lines.append(
            f"| {r.claim} | {r.budget:g} % | {NAMES.get(r.a, r.a)} {r.mean_a:.1f} | "
            f"{NAMES.get(r.b, r.b)} {r.mean_b:.1f} | {signed(r.diff)}{ci} | {p} | {r.n} | "
            f"**{r.verdict}** |"
        )
    lines.append(f"\nA, B: mean {what} over the seeds both have (`seeds`).")
    return "\n".join(lines) + "\n"


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """The report's tables in ``folder``; exits with one line naming the first missing file."""
    missing = [t for t in TABLES if not (folder / t).is_file()]
    if missing:
        sys.exit(f"claims: {folder / missing[0]}: missing (expected the tables of `halo report`)")
    return {t.removesuffix(".csv"): pd.read_csv(folder / t) for t in TABLES}


#: the three correlations of class-mean radius with class pixel share that a sign must agree on:
#: Pearson r on the share is carried by road and building alone on these classes (without them
#: the source model's r goes from −0.71 to −0.04), so it does not decide a sign by itself
SIGN_COLUMNS = (("pearson_r", "r"), ("spearman_rho", "ρ"), ("pearson_r_log_share", "r(log share)"))


def sign_of(row: pd.Series) -> str:
    """ "negative" / "positive" where r, ρ and r against log share all agree, else "none"."""
    values = [float(row[c]) for c, _ in SIGN_COLUMNS if c in row.index]
    if len(values) < len(SIGN_COLUMNS) or any(math.isnan(v) for v in values):
        return "none"
    return "negative" if max(values) < 0 else ("positive" if min(values) > 0 else "none")


def radius_sign(t: dict[str, pd.DataFrame], budgets: list[float]) -> list[str]:
    """The radius-sign lines: r (Pearson), ρ (Spearman) and r against log share of class-mean
    radius against class pixel share, for HALO's source model, HALO's active-learning models and
    the supervised bound, each with its sign (where the three agree); then the paper's reading
    (a negative sign) checked on the active-learning models."""
    corr = t["radius_correlations"]
    lines, signs = [], []
    for method, budget, label in (
        ("source", 0.0, "HALO's source-only model"),
        *(("halo", b, f"HALO after {100 * b:g} %") for b in budgets),
        ("supervised", 1.0, "supervised"),
    ):
        hit = corr[(corr["method"] == method) & ((corr["budget"] - budget).abs() < 1e-9)]
        if method == "source":
            hit = hit[hit["variant"] == "hyperbolic-hfr"]
        if hit.empty:
            continue
        r = hit.iloc[0]
        values = ", ".join(
            f"{name} = {signed(float(r[c]), 2)}" for c, name in SIGN_COLUMNS if c in r.index
        )
        n = int(r["n_seeds"])
        lines.append(f"{label}: {values}; sign: {sign_of(r)} ({n} seed{'s' if n != 1 else ''})")
        if method == "halo":
            signs.append(sign_of(r) == "negative")
    if signs:
        holds = "yes" if all(signs) else ("no" if not any(signs) else "mixed")
        lines.append(
            "the paper's Figure 2 reading (a negative sign for the models active learning "
            f"produced): **{holds}**"
        )
    return lines


def rare_classes(freq: pd.DataFrame) -> list[str]:
    """Classes under :data:`RARE_SHARE` of the evaluated pixels."""
    return list(freq.loc[freq["pixel_share"] < RARE_SHARE, "class"])


def class_columns(per_class: pd.DataFrame) -> list[str]:
    """The per-class IoU columns of ``per_class.csv`` (all but the cell's keys)."""
    keys = ("backbone", "method", "variant", "budget", "n_seeds")
    return [k for k in per_class.columns if k not in keys]


def _row(frame: pd.DataFrame, method: str, budget: float) -> pd.Series | None:
    hit = frame[(frame["method"] == method) & ((frame["budget"] - budget).abs() < 1e-9)]
    return None if hit.empty else hit.iloc[0]


def rare_table(t: dict[str, pd.DataFrame], budget: float) -> pd.DataFrame:
    """Per method at ``budget`` (and the supervised bound): the share (%) of its labelled pixels
    in rare classes, and its mean IoU over the rare and over the other classes."""
    rare = rare_classes(t["radius_vs_frequency"])
    acq, per = t["acquired_classes"], t["per_class"]
    other = [k for k in class_columns(per) if k not in rare]
    out = []
    for method in NAMES:
        b = cell_budget(method, budget)
        iou = _row(per, method, b)
        if iou is None:
            continue
        got = _row(acq, method, b)
        out.append(
            {
                "method": NAMES[method],
                "labelled in rare classes %": None if got is None else float(got[rare].sum()),
                "IoU rare": float(iou[rare].mean()),
                "IoU other": float(iou[other].mean()),
                "seeds": int(iou["n_seeds"]),
            }
        )
    return pd.DataFrame(out)


def budget_check(miou: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """Per budget: the methods' mean labelled fractions, their spread relative to the smallest
    and whether every one is within the budget; then the range over the single runs and whether
    every run is within it."""

    def active(frame: pd.DataFrame) -> pd.DataFrame:
        keep = ~frame["method"].isin(["source", "supervised"])
        return frame[keep].dropna(subset=["labelled_fraction"])

    lines = []
    by_run = dict(tuple(active(runs).groupby("budget")))
    for budget, cell in active(miou).groupby("budget"):
        lo, hi = float(cell["labelled_fraction"].min()), float(cell["labelled_fraction"].max())
        within = "all within it" if hi <= budget + 1e-12 else "ABOVE it"
        line = (
            f"budget {100 * budget:g} %: labelled {100 * lo:.4f}–{100 * hi:.4f} % of the target "
            f"pixels over {len(cell)} methods (spread {100 * (hi - lo) / lo:.2f} % of the "
            f"smallest; {within})"
        )
        one = by_run.get(budget)
        if one is not None:
            rlo, rhi = float(one["labelled_fraction"].min()), float(one["labelled_fraction"].max())
            runs_within = "all within it" if rhi <= budget + 1e-12 else "some ABOVE it"
            line += f"; single runs {100 * rlo:.4f}–{100 * rhi:.4f} % ({len(one)}, {runs_within})"
        lines.append(line)
    return lines


def health(t: dict[str, pd.DataFrame]) -> list[str]:
    """The study's own checks: seeds per active cell, equal budgets, unstable runs, and the
    classes the supervised bound learns to IoU ≥ 20."""
    miou, stab, per = t["miou_table"], t["training_stability"], t["per_class"]
    active = miou[~miou["method"].isin(["source", "supervised"])]
    unstable = stab[stab["unstable"].astype(str).str.lower().isin(["true", "1"])]
    lines = [
        f"active cells: {len(active)}, seeds per cell: "
        + "–".join(
            dict.fromkeys(str(n) for n in (active["n_seeds"].min(), active["n_seeds"].max()))
        ),
        *budget_check(miou, t["runs"]),
        f"unstable training: {len(unstable)} of {len(stab)} runs",
    ]
    sup = per[per["method"] == "supervised"]
    if not sup.empty:
        row = sup.iloc[0]
        classes = class_columns(per)
        low = {k: round(float(row[k]), 1) for k in classes if float(row[k]) < LEARNED_IOU}
        lines.append(
            f"supervised bound: IoU ≥ 20 on {len(classes) - len(low)} of {len(classes)} classes"
            + (f" (below: {', '.join(f'{k} {v}' for k, v in low.items())})" if low else "")
        )
    return lines


def _with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN as None, which the Markdown writer prints as its missing value."""
    return frame.astype(object).where(frame.notna(), None)


def markdown(t: dict[str, pd.DataFrame], budgets: list[float]) -> str:
    """claims.md: the claims table, the radius sign, the rare-class table at the largest budget
    and the study's health, each a section opened by ``<!-- section: NAME -->`` (the documents
    copy sections: ``<!-- generated: docs/study/claims.md#NAME -->``)."""
    top = max(budgets)
    rare = rare_classes(t["radius_vs_frequency"])
    rows = claims(t["runs"], budgets)
    sections = {
        "claims": claims_markdown(rows).rstrip("\n"),
        "core": claims_markdown([r for r in rows if (r.a, r.b) in CORE]).rstrip("\n"),
        "sign": "\n".join(
            [
                "Radius sign (class-mean radius against class pixel share):",
                "",
                *(f"- {x}" for x in radius_sign(t, budgets)),
            ]
        ),
        "rare": "\n".join(
            [
                f"Rare classes (under 1 % of the target pixels): {', '.join(rare)}. "
                f"At {100 * top:g} %:",
                "",
                _with_gaps(rare_table(t, top)).to_markdown(
                    index=False, floatfmt=".1f", missingval="—"
                ),
            ]
        ),
        "health": "\n".join(f"- {h}" for h in health(t)),
    }
    return sectioned(sections)


def write(folder: Path, budgets: list[float]) -> str:
    """Write ``claims.csv`` and ``claims.md`` into ``folder``; return the Markdown."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from halo.io import write_text

    t = load(folder)
    rows = claims(t["runs"], budgets)
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(Paired.__dataclass_fields__))
    write_text(folder / CLAIMS_CSV, frame.to_csv(index=False, lineterminator="\n"))
    text = markdown(t, budgets)
    write_text(folder / CLAIMS_MD, text)
    return text


def table_parser(description: str) -> argparse.ArgumentParser:
    """The command line of the study's table scripts: the tables' folder and ``--budgets``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("tables", type=Path, help="folder of the report's CSVs (docs/study)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[1, 2.2, 5], help="in %%")
    return ap


def budgets_of(ap: argparse.ArgumentParser, args: argparse.Namespace) -> list[float]:
    """``--budgets`` as fractions (a budget outside (0, 100] % is one usage error)."""
    if any(not 0 < b <= 100 for b in args.budgets):
        ap.error("--budgets: each must be in (0, 100] (percent of the target pixels)")
    return [b / 100 for b in args.budgets]


def main(argv: list[str] | None = None) -> None:
    ap = table_parser(__doc__.splitlines()[0])
    args = ap.parse_args(argv)
    sys.stdout.write(write(args.tables, budgets_of(ap, args)))


if __name__ == "__main__":
    main()
