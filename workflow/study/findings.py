"""The study's findings as Markdown sections generated from its tables (issue #29).

Every number that docs/study.md and the README state about the study comes from here or from
``claims.md`` (``claims.py``): this script reads the report's CSVs in ``docs/study`` (and, where
present, ``radius_experiments.csv``, ``borders.csv`` and the round-rate sweeps) and writes
``docs/study/findings.md``, one section per finding, each opened by ``<!-- section: NAME -->``::

    uv run python workflow/study/findings.py docs/study

The documents copy a section's lines between ``<!-- generated: docs/study/findings.md -->`` and
``<!-- end generated -->``; a test fails when a copy or this file differs from what the tables
give today. Sections whose inputs are missing say so in one line instead of a number.

Paired comparisons use ``claims.py``'s rule (per-seed differences, 95 % paired t-interval; the
verdict from the interval alone).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import claims as cl
from blocks import fmt as _f
from blocks import md_table as _md
from blocks import refresh, sectioned
from findings_radius import intervention, mechanism, rounds, sign_summary

FINDINGS_MD = "findings.md"
RADIUS_CSV, BORDERS_CSV = "radius_experiments.csv", "borders.csv"
GRID_LOG = "grid2/times.log"  # the grid driver's log of starts and ends
STUDY_GRID = Path(__file__).resolve().parents[2] / "configs" / "study.yaml"  # its parts
#: the round-rate sweeps: chosen on the target val set (the old way), and on the held-out split
VAL_SWEEP, SELECT_SWEEP = "round_lr", "round_lr_select"
#: round-1 comparisons: after round 1, the only choice made with the source model's radius
ROUND_ONE = (
    ("after round 1: HALO ≥ entropy", "halo", "entropy"),
    ("after round 1: source radius ≥ entropy", "halo-src", "entropy"),
    ("after round 1: source radius ≥ inverted", "halo-src", "halo-src-inv"),
    ("after round 1: entropy ≥ random", "entropy", "random"),
)


def _mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    sd = f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return f"{values.mean():.1f}{sd}"


def grid(miou_md: str) -> str:
    """The report's mIoU table (``miou_table.md``'s table and its labelled-pixels line)."""
    lines = miou_md.splitlines()
    table = [x for x in lines if x.startswith("|")]
    labelled = [x for x in lines if x.startswith("Labelled pixels")]
    return "\n".join([*table, *(["", *labelled] if labelled else [])])


#: the README's rows of the grid (section ``grid-core``): HALO's source model, the paper's
#: comparison, the direct test of its radius, and the supervised bound
CORE_ROWS = (
    "source-only [hyperbolic-hfr]",
    "random",
    "entropy",
    "ripu",
    "halo",
    "halo-src",
    "halo-src-inv",
    "supervised",
)


def grid_core(grid_md: str) -> str:
    """:func:`grid` with only the rows of :data:`CORE_ROWS` (the ``method`` column), in the
    report's order; the other rows are in the whole table (section ``grid``)."""
    lines = grid_md.splitlines()
    keep = [x for x in lines[2:] if x.startswith("|") and x.split("|")[2].strip() in CORE_ROWS]
    return "\n".join([*lines[:2], *keep, *[x for x in lines if not x.startswith("|")]])


def calibration(t: dict[str, pd.DataFrame]) -> str:
    """Source-only (each head) and supervised mIoU over the seeds, the gap, and the classes each
    learns."""
    runs, per = t["runs"], t["per_class"]
    src = runs[runs["method"] == "source"]
    sup = runs[runs["method"] == "supervised"]["miou"]
    hfr = src[src["variant"] == "hyperbolic-hfr"]["miou"]
    heads = ", ".join(
        f"{v} {_mean_sd(g['miou'])}" for v, g in src.groupby("variant") if v != "hyperbolic-hfr"
    )
    gap = sup.mean() - hfr.mean() if len(sup) and len(hfr) else math.nan
    lines = [
        _md(
            pd.DataFrame(
                [[_mean_sd(hfr), heads or "—", _mean_sd(sup), _f(gap, 1, False), len(sup)]],
                columns=["source-only (HALO's head)", "other heads", "supervised", "gap", "seeds"],
            )
        ),
        "",
    ]
    classes = cl.class_columns(per)
    for method, label in (("source", "source-only (HALO's head)"), ("supervised", "supervised")):
        hit = per[per["method"] == method]
        if method == "source":
            hit = hit[hit["variant"] == "hyperbolic-hfr"]
        if hit.empty:
            continue
        row = hit.iloc[0]
        low = [f"{k} {float(row[k]):.1f}" for k in classes if float(row[k]) < cl.LEARNED_IOU]
        lines.append(
            f"- {label}: IoU ≥ {cl.LEARNED_IOU:g} on {len(classes) - len(low)} of {len(classes)} "
            f"classes" + (f" (below: {', '.join(low)})" if low else "")
        )
    rare = cl.rare_classes(t["radius_vs_frequency"])
    lines.append(f"- classes under 1 % of the target pixels: {len(rare)} ({', '.join(rare)})")
    return "\n".join(lines)


def round_one_runs(runs: pd.DataFrame, r: int = 1) -> pd.DataFrame:
    """``runs`` with ``miou`` replaced by the mIoU after round ``r`` (active runs that have it)."""
    active = runs[runs["round_miou"].notna()].copy()
    per_round = active["round_miou"].astype(str).str.split(";")
    active["miou"] = [float(x[r - 1]) if len(x) >= r else math.nan for x in per_round]
    return active.dropna(subset=["miou"])


def round_one(t: dict[str, pd.DataFrame], budgets: list[float]) -> str:
    """The paired comparisons of :data:`ROUND_ONE` on the mIoU after round 1."""
    if "round_miou" not in t["runs"].columns:
        return "(runs.csv has no round_miou: regather the grid)"
    runs = round_one_runs(t["runs"])
    rows = [
        got
        for claim, a, b in ROUND_ONE
        for budget in budgets
        if (got := cl.compare(runs, claim, a, b, budget)) is not None
    ]
    text = cl.claims_markdown(rows, what="mIoU after round 1")
    return text.rstrip("\n") if rows else "(no paired round-1 cells)"


def borders(b: pd.DataFrame) -> str:
    """Where the strategies look: per method and budget, the share of the labelled pixels in the
    side bands (seed mean), the bands' share of the image, the share of rare-class pixels among
    the labelled pixels in the bands and elsewhere, and the paired difference to random."""
    rnd = b[b["method"] == "random"].set_index(["budget", "seed"])["side_share"]
    out = []
    for (method, budget), g in b.groupby(["method", "budget"]):
        row = {
            "method": cl.NAMES.get(method, method),
            "budget": f"{100 * float(budget):g} %",
            "seeds": len(g),
            "in the side bands %": _f(100 * g["side_share"].mean(), 1, False),
            "bands' share of the image %": _f(100 * g["side_expected"].mean(), 1, False),
        }
        if "side_rare_share" in g.columns:  # what a pixel at the sides buys
            row["rare-class share, in the bands %"] = _f(
                100 * g["side_rare_share"].mean(), 1, False
            )
            row["rare-class share, elsewhere %"] = _f(100 * g["rest_rare_share"].mean(), 1, False)
        if method not in ("random", cl.with_nl("random")):  # the same draws: nothing to pair
            paired = g.join(rnd.rename("rnd"), on=["budget", "seed"]).dropna(subset=["rnd"])
            mean, _, low, high, _ = cl.paired_interval(100 * (paired["side_share"] - paired["rnd"]))
            row["− random, paired [95 % CI]"] = f"{_f(mean, 1)} [{_f(low, 1)}, {_f(high, 1)}]"
            row["drawn to the sides"] = cl.verdict(low, high)
        out.append(row)
    band = int(b["band"].iloc[0]) if "band" in b.columns and len(b) else 0
    head = f"Bands: the {band} pixel columns at the left and right borders."
    return head + "\n\n" + _md(pd.DataFrame(out).astype(object).fillna(""))


def _unstable(stability: pd.DataFrame | None) -> pd.Series:
    """Per setting of a sweep, its unstable runs (``training_stability.csv``; none if absent)."""
    if stability is None or "unstable" not in stability.columns:
        return pd.Series(dtype=int)
    return stability.groupby("setting", sort=False)["unstable"].sum().astype(int)


def _choice(scores: pd.Series, unstable: pd.Series) -> str:
    """The rule (docs/study/README.md): the highest mean among the settings with no unstable run."""
    ok = scores[unstable.reindex(scores.index).fillna(0).to_numpy() == 0]
    return str(ok.idxmax()) if len(ok) else "none (every setting has an unstable run)"


def selection(
    val: pd.DataFrame | None,
    select: pd.DataFrame | None,
    val_stability: pd.DataFrame | None = None,
    select_stability: pd.DataFrame | None = None,
) -> str:
    """The round-rate choice: each setting's mean final mIoU over the sweep's active cells on the
    target val set (how it was first chosen) and on the held-out selection split, its unstable
    runs, the setting each picks (the highest mean with no unstable run), and whether the
    held-out choice differs."""
    if select is None:
        return "(the held-out sweep has not run: no round_lr_select/miou_table.csv)"

    def score(frame: pd.DataFrame) -> pd.Series:
        active = frame[~frame["method"].isin(["source", "supervised"])]
        return active.groupby("setting", sort=False)["mean"].mean()

    held, held_bad = score(select), _unstable(select_stability)
    table = pd.DataFrame({"setting": held.index, "held-out split": held.to_numpy()})
    table["unstable runs (held-out)"] = table["setting"].map(held_bad).fillna(0).astype(int)
    if val is not None:
        table["target val (reported)"] = table["setting"].map(score(val))
    shown = table.assign(
        **{c: [_f(v, 1, False) for v in table[c]] for c in ("held-out split",)},
        **({"target val (reported)": [_f(v, 1, False) for v in table["target val (reported)"]]}
           if val is not None else {}),
    )  # fmt: skip
    pick = _choice(held, held_bad)
    lines = [_md(shown), "", f"- chosen on the held-out split: {pick}"]
    if val is not None:
        first = _choice(score(val), _unstable(val_stability))
        changed = "no" if first == pick else "**yes**"
        lines += [f"- chosen on the target val set (before): {first}", f"- changed: {changed}"]
    return "\n".join(lines)


_EVENT = re.compile(
    r"^(?P<at>\S+) (?:seed (?P<seed>\d+)(?: part (?P<part>\S+))?"
    r"|(?P<step>(?:radius|select)(?:-[\w.-]+)?|rounds)) "
    r"(?P<what>start|end|whole run stopped|paused)(?: rc=(?P<rc>\d+))?(?: (?P<secs>\d+) s)?"
)


def part_labels(grid_yaml: Path, bench: str = "synth-gta2cs") -> dict[str, str]:
    """The cost table's names of the grid's parts (``grid.py parts``): a method's part by the
    method, an ``extra`` block by its number and its methods."""
    import grid as study_grid
    import yaml

    spec = yaml.safe_load(grid_yaml.read_text())["benchmarks"][bench]
    return {
        name: cl.NAMES.get(name, name)
        if not name.startswith("extra")
        else f"{name} ({', '.join(cl.NAMES.get(m, m) for m in part['methods'])})"
        for name, part in study_grid.parts(spec).items()
    }


def cost(log: str, labels: dict[str, str] | None = None) -> str:
    """What the grid cost, from the driver's log (``grid2/times.log``: one line per start and
    end of a part, of the radius experiments and of the selection sweep, or of each radius
    experiment (``radius-<experiment>``) and rate setting (``select-<setting>``) apart; seed 0 began as one
    whole-seed run, stopped by hand, whose jobs the parts reused; a ``paused N s`` line takes the
    time a part was SIGSTOPped out of it): the wall time of each finished
    attempt, per part over the seeds, and the attempts a stopped machine cut off (their time up to
    the stop is not in the log, so not counted)."""
    spans: dict[str, list[float]] = {}
    open_at: dict[str, pd.Timestamp] = {}
    cut = 0
    for line in log.splitlines():
        m = _EVENT.match(line)
        if m is None:
            continue
        key = m["part"] or m["step"] or "whole seed, stopped to run it in parts"
        key = f"{key} (seed {m['seed']})" if m["seed"] else key
        at = pd.Timestamp(m["at"])
        if m["what"] == "start":
            cut += key in open_at
            open_at[key] = at
        elif m["what"] == "paused" and key in open_at:  # SIGSTOPped for that long: not its time
            open_at[key] += pd.Timedelta(seconds=int(m["secs"] or 0))
        elif key in open_at and (m["rc"] == "0" or m["what"] == "whole run stopped"):
            spans.setdefault(key, []).append((at - open_at.pop(key)).total_seconds() / 60)
    rows: dict[str, list[float]] = {}
    for key, minutes in spans.items():
        rows.setdefault(key.split(" (seed")[0], []).extend(minutes)
    table = pd.DataFrame(
        [
            {
                "part": (labels or {}).get(k, k),
                "runs": len(v),
                "minutes each": " / ".join(f"{x:.0f}" for x in v),
                "hours": f"{sum(v) / 60:.1f}",
            }
            for k, v in rows.items()
        ]
    )
    total = sum(sum(v) for v in rows.values()) / 60
    return (
        _md(table)
        + f"\n\n- finished attempts in all: {total:.1f} h of wall time on the 2-core VM"
        + f"\n- attempts cut off by a stopped machine (resumed, their time not counted): {cut}"
    )


#: the claims whose verdict negative learning could change: (claim, A and B with NL, without)
NL_PAIRS = tuple((claim, cl.with_nl(a), cl.with_nl(b), a, b) for claim, a, b in cl.PAPER)


def nl_verdicts(runs: pd.DataFrame, budgets: list[float]) -> tuple[list[dict], list[str]]:
    """Does the official negative-learning term change a verdict (issue #29: if it does, it
    becomes the study's default)? Per pair of methods at the largest budget: the paired verdict
    without and with NL, both on the seeds that all four cells have (so that a change is NL's,
    not fewer seeds'). A verdict that cannot be given yet (n/a) changes nothing. Returns the
    table's rows and the comparisons whose verdict changed."""
    budget = max(budgets)
    out, changed = [], []
    for claim, a_nl, b_nl, a, b in NL_PAIRS:
        cells = [cl.seeds_of(runs, m, cl.cell_budget(m, budget)).index for m in (a_nl, b_nl, a, b)]
        seeds = set(cells[0]).intersection(*cells[1:])
        if not seeds:
            continue
        mine = runs[runs["seed"].isin(seeds)]
        without = cl.compare(mine, "", a, b, budget)
        with_nl = cl.compare(mine, "", a_nl, b_nl, budget)
        out.append(
            {
                "comparison": claim,
                "budget": f"{100 * budget:g} %",
                "seeds": len(seeds),
                "without NL": f"{_f(without.diff, 1)} **{without.verdict}**",
                "with NL": f"{_f(with_nl.diff, 1)} **{with_nl.verdict}**",
            }
        )
        decided = "n/a" not in (without.verdict, with_nl.verdict)
        if decided and with_nl.verdict != without.verdict:
            changed.append(f"{claim} at {100 * budget:g} %")
    return out, changed


def negative_learning(runs: pd.DataFrame, budgets: list[float]) -> str:
    """The section on negative learning: :func:`nl_verdicts` as a table, and whether any
    verdict changes."""
    return nl_section(*nl_verdicts(runs, budgets))


def nl_section(out: list[dict], changed: list[str]) -> str:
    """:func:`nl_verdicts`' rows and changed comparisons as the section's markdown."""
    if not out:
        return "(no negative-learning rows)"
    verdict = f"**yes**: {'; '.join(changed)}" if changed else "no"
    return _md(pd.DataFrame(out)) + f"\n\n- negative learning changes a verdict: {verdict}"


def _optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def markdown(folder: Path, budgets: list[float]) -> str:
    """findings.md: every section, from the tables in ``folder``."""
    t = cl.load(folder)
    rx = _optional(folder / RADIUS_CSV)
    b = _optional(folder / BORDERS_CSV)
    missing = "(no {} in docs/study)"
    paired = cl.claims(t["runs"], budgets)
    table = (
        grid((folder / "miou_table.md").read_text())
        if (folder / "miou_table.md").is_file()
        else missing.format("miou_table.md")
    )
    sections = {
        "grid": table,
        "grid-core": grid_core(table) if table.startswith("|") else table,
        "calibration": calibration(t),
        "round-one": round_one(t, budgets),
        "negative-learning": negative_learning(t["runs"], budgets),
        "radius-sign": missing.format(RADIUS_CSV) if rx is None else sign_summary(rx, paired),
        "mechanism": missing.format(RADIUS_CSV) if rx is None else mechanism(rx),
        "rounds": missing.format(RADIUS_CSV) if rx is None else rounds(rx),
        "intervention": missing.format(RADIUS_CSV) if rx is None else intervention(rx),
        "borders": missing.format(BORDERS_CSV) if b is None else borders(b),
        "cost": cost((folder / GRID_LOG).read_text(), part_labels(STUDY_GRID))
        if (folder / GRID_LOG).is_file()
        else missing.format(GRID_LOG),
        "selection": selection(
            _optional(folder / VAL_SWEEP / "miou_table.csv"),
            _optional(folder / SELECT_SWEEP / "miou_table.csv"),
            _optional(folder / VAL_SWEEP / "training_stability.csv"),
            _optional(folder / SELECT_SWEEP / "training_stability.csv"),
        ),
    }
    head = (
        "# The study's findings, generated from its tables\n\n"
        "Written by `uv run python workflow/study/findings.py docs/study`; do not edit.\n\n"
    )
    return head + sectioned(sections)


def main(argv: list[str] | None = None) -> None:
    from halo.io import write_text

    ap = cl.table_parser(__doc__.splitlines()[0])
    ap.add_argument(
        "--refresh",
        type=Path,
        nargs="+",
        default=[],
        help="documents whose FILE#SECTION blocks to fill from the generated files",
    )
    args = ap.parse_args(argv)
    text = markdown(args.tables, cl.budgets_of(ap, args))
    write_text(args.tables / FINDINGS_MD, text)
    root = Path(__file__).resolve().parents[2]
    for doc in args.refresh:
        write_text(doc, refresh(doc.read_text(), root))
    if not args.refresh:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
