"""The paper's claims, checked against the study's tables (issue #18): the README's claims table.

Reads the CSVs that ``halo report`` (or ``grid.py gather``) writes and prints, in Markdown, one
row per claim of the HALO paper with this study's numbers and a verdict, then the rare-class
table and the study's health (seeds per cell, unstable runs, classes the supervised bound
learns)::

    uv run python workflow/study/claims.py docs/study [--budgets 1 2.2 5]

Verdict rule, the same for every comparison "A ≥ B": the difference of the seed means d = A − B
is called a **tie** when |d| is at most the larger of the two cells' seed standard deviations
(sample std, ddof = 1; a cell of one seed has none, and then d decides alone), else **yes**
(d > 0) or **no** (d < 0). Rare classes are those under 1 % of the evaluated target pixels
(``radius_vs_frequency.csv``). Nothing here trains or evaluates: the numbers are the tables'.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TABLES = (
    "miou_table.csv",
    "per_class.csv",
    "radius_correlations.csv",
    "acquired_classes.csv",
    "training_stability.csv",
    "radius_vs_frequency.csv",
)
RARE_SHARE = 0.01
NAMES = {
    "random": "random",
    "entropy": "entropy",
    "ripu": "RIPU",
    "halo": "HALO",
    "radius": "radius alone",
    "featnorm": "feature norm × entropy (Euclidean)",
    "halo-nohfr": "HALO without HFR",
    "supervised": "supervised",
}


@dataclass(frozen=True)
class Cell:
    """One cell of ``miou_table.csv``: the seed mean and sample std of the final mIoU (%)."""

    mean: float
    std: float | None
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.1f}" + (f" ± {self.std:.1f}" if self.std is not None else "")


def verdict(a: Cell, b: Cell) -> str:
    """``"yes (+d)"``, ``"no (−d)"`` or ``"tie (±d)"`` for the claim a ≥ b (module docstring)."""
    d = a.mean - b.mean
    spread = max((s for s in (a.std, b.std) if s is not None), default=0.0)
    sign = "+" if d >= 0 else "−"
    word = "tie" if abs(d) <= spread else ("yes" if d > 0 else "no")
    return f"{word} ({sign}{abs(d):.1f})"


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


def _with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """NaN as None, which the Markdown writer prints as its missing value."""
    return frame.astype(object).where(frame.notna(), None)


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """The report's tables in ``folder``; exits with one line naming the first missing file."""
    missing = [t for t in TABLES if not (folder / t).is_file()]
    if missing:
        sys.exit(f"claims: {folder / missing[0]}: missing (expected the tables of `halo report`)")
    return {t.removesuffix(".csv"): pd.read_csv(folder / t) for t in TABLES}


def cells(miou: pd.DataFrame) -> dict[tuple[str, float], Cell]:
    """``(method, budget) → Cell`` for the active runs and the supervised bound (``budget`` as a
    fraction; the supervised bound at 1.0); source-only models are keyed ``("source:VARIANT",
    0.0)``."""
    out = {}
    for r in miou.itertuples(index=False):
        key = f"source:{r.variant}" if r.method == "source" else r.method
        std = None if pd.isna(r.std) else float(r.std)
        out[(key, round(float(r.budget), 6))] = Cell(float(r.mean), std, int(r.n_seeds))
    return out


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


def claims(t: dict[str, pd.DataFrame], budgets: list[float]) -> list[tuple[str, str, str]]:
    """``(claim, here, holds?)`` rows; a claim whose cells are missing from the tables is left
    out. ``budgets`` are fractions (0.05 for 5 %)."""
    c = cells(t["miou_table"])
    pct = {b: f"{100 * b:g} %" for b in budgets}
    rows = []

    def at(method: str, b: float) -> Cell | None:
        return c.get((method, round(b, 6)))

    def per_budget(a: str, b: str) -> tuple[str, str] | None:
        have = [x for x in budgets if at(a, x) and at(b, x)]
        if not have:
            return None
        here = "; ".join(f"{pct[x]}: {NAMES[a]} {at(a, x)}, {NAMES[b]} {at(b, x)}" for x in have)
        holds = ", ".join(f"{pct[x]} {verdict(at(a, x), at(b, x))}" for x in have)
        return here, holds

    for a, b, claim in (
        ("entropy", "random", "entropy ≥ random at equal budget"),
        ("halo", "entropy", "HALO ≥ entropy at equal budget"),
        ("halo", "ripu", "HALO ≥ RIPU (the paper's main comparison)"),
        ("radius", "random", "radius alone ≥ random (the radius carries information)"),
    ):
        got = per_budget(a, b)
        if got:
            rows.append((claim, *got))
    top = max(budgets)
    halo, sup = at("halo", top), at("supervised", 1.0)
    if halo and sup:
        rows.append(
            (
                f"HALO at {pct[top]} close to target-supervised",
                f"HALO {halo}, supervised {sup}: {100 * halo.mean / sup.mean:.0f} % of it",
                verdict(halo, sup),
            )
        )
    nohfr, feat = at("halo-nohfr", top), at("featnorm", top)
    if halo and nohfr:
        rows.append(
            ("HFR helps", f"{pct[top]}: HALO {halo}, without HFR {nohfr}", verdict(halo, nohfr))
        )
    if halo and feat:
        rows.append(
            (
                "the hyperbolic radius beats a Euclidean feature norm",
                f"{pct[top]}: HALO {halo}, feature norm × entropy {feat}",
                verdict(halo, feat),
            )
        )
    corr = t["radius_correlations"]
    parts = []
    for method, budget, label in (
        ("source", 0.0, "HALO's source-only model"),
        *(("halo", b, f"HALO after {pct[b]}") for b in budgets),
        ("supervised", 1.0, "supervised"),
    ):
        hit = corr[(corr["method"] == method) & ((corr["budget"] - budget).abs() < 1e-9)]
        if method == "source":
            hit = hit[hit["variant"] == "hyperbolic-hfr"]
        if not hit.empty:
            r = hit.iloc[0]
            parts.append(
                (label, float(r["pearson_r"]), float(r["spearman_rho"]), int(r["n_seeds"]))
            )
    if parts:
        here = "; ".join(
            f"{lab}: r = {_signed(r)}, ρ = {_signed(rho)} ({n} seed{'s' * (n != 1)})"
            for lab, r, rho, n in parts
        )
        signs = {lab: r < 0 for lab, r, _, _ in parts}
        holds = ", ".join(f"{lab}: {'yes' if neg else 'no'}" for lab, neg in signs.items())
        rows.append(("class-mean radius falls with class pixel share (r < 0)", here, holds))
    return rows


def rare_table(t: dict[str, pd.DataFrame], budget: float) -> pd.DataFrame:
    """Per method at ``budget`` (and the supervised bound): the share (%) of its labelled pixels
    in rare classes, and its mean IoU over the rare and over the other classes."""
    rare = rare_classes(t["radius_vs_frequency"])
    acq, per = t["acquired_classes"], t["per_class"]
    other = [k for k in class_columns(per) if k not in rare]
    out = []
    for method in NAMES:
        b = 1.0 if method == "supervised" else budget
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


def health(t: dict[str, pd.DataFrame]) -> list[str]:
    """The study's own checks (issue #18's acceptance): seeds per active cell, unstable runs, and
    the classes the supervised bound learns to IoU ≥ 20."""
    miou, stab, per = t["miou_table"], t["training_stability"], t["per_class"]
    active = miou[~miou["method"].isin(["source", "supervised"])]
    unstable = stab[stab["unstable"].astype(str).str.lower().isin(["true", "1"])]
    lines = [
        f"active cells: {len(active)}, seeds per cell: "
        + "–".join(
            dict.fromkeys(str(n) for n in (active["n_seeds"].min(), active["n_seeds"].max()))
        ),
        f"unstable training: {len(unstable)} of {len(stab)} runs",
    ]
    sup = per[per["method"] == "supervised"]
    if not sup.empty:
        row = sup.iloc[0]
        classes = class_columns(per)
        low = {k: round(float(row[k]), 1) for k in classes if float(row[k]) < 20}
        lines.append(
            f"supervised bound: IoU ≥ 20 on {len(classes) - len(low)} of {len(classes)} classes"
            + (f" (below: {', '.join(f'{k} {v}' for k, v in low.items())})" if low else "")
        )
    return lines


def markdown(t: dict[str, pd.DataFrame], budgets: list[float]) -> str:
    """The whole printout: the claims table, the rare-class table at the largest budget, the
    study's health."""
    lines = ["| claim (paper) | here (mean ± std over seeds) | holds? |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in claims(t, budgets)]
    top = max(budgets)
    rare = rare_classes(t["radius_vs_frequency"])
    lines += [
        "",
        f"Rare classes (under 1 % of the target pixels): {', '.join(rare)}. At {100 * top:g} %:",
        "",
        _with_gaps(rare_table(t, top)).to_markdown(index=False, floatfmt=".1f", missingval="—"),
        "",
        *(f"- {h}" for h in health(t)),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", type=Path, help="folder of the report's CSVs (docs/study)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[1, 2.2, 5], help="in %%")
    args = ap.parse_args(argv)
    if any(not 0 < b <= 100 for b in args.budgets):
        ap.error("--budgets: each must be in (0, 100] (percent of the target pixels)")
    sys.stdout.write(markdown(load(args.tables), [b / 100 for b in args.budgets]))


if __name__ == "__main__":
    main()
