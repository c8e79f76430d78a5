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

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import claims as cl

FINDINGS_MD = "findings.md"
RADIUS_CSV, BORDERS_CSV = "radius_experiments.csv", "borders.csv"
GRID_LOG = "grid2/times.log"  # the grid driver's log of starts and ends
#: the round-rate sweeps: chosen on the target val set (the old way), and on the held-out split
VAL_SWEEP, SELECT_SWEEP = "round_lr", "round_lr_select"
#: round-1 comparisons: after round 1, the only choice made with the source model's radius
ROUND_ONE = (
    ("after round 1: HALO ≥ entropy", "halo", "entropy"),
    ("after round 1: source radius ≥ entropy", "halo-src", "entropy"),
    ("after round 1: source radius ≥ inverted", "halo-src", "halo-src-inv"),
    ("after round 1: entropy ≥ random", "entropy", "random"),
)
LEARNED_IOU = 20.0


def _f(x, digits: int = 2, signed: bool = True) -> str:
    """A number for the tables (``−`` for minus; ``—`` where undefined)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "—"
    return cl._signed(float(x), digits) if signed else f"{float(x):.{digits}f}"


def _md(frame: pd.DataFrame) -> str:
    """A table as GitHub Markdown (right-aligned numbers are pre-formatted strings)."""
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


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
        low = [f"{k} {float(row[k]):.1f}" for k in classes if float(row[k]) < LEARNED_IOU]
        lines.append(
            f"- {label}: IoU ≥ {LEARNED_IOU:g} on {len(classes) - len(low)} of {len(classes)} "
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
    return cl.claims_markdown(rows).rstrip("\n") if rows else "(no paired round-1 cells)"


def _corr_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The correlation columns of radius rows, formatted (missing columns shown as ``—``)."""
    out = pd.DataFrame(index=frame.index)
    for col, label in (
        ("pearson_r", "r"),
        ("spearman_rho", "ρ"),
        ("pearson_r_log_share", "r (log share)"),
        ("partial_r_iou", "partial r (log share, given IoU)"),
    ):
        values = frame[col] if col in frame.columns else pd.Series(math.nan, index=frame.index)
        out[label] = [_f(v) for v in values]
    out["r per seed"] = [
        " / ".join(_f(float(x)) for x in str(s).split(";")) if isinstance(s, str) else "—"
        for s in frame.get("pearson_r_seeds", pd.Series(None, index=frame.index))
    ]
    return out


def mechanism(rx: pd.DataFrame) -> str:
    """Every setting's correlations (the experiments that train their own models, and the grid's
    round-1 and final models scored in-domain), on each validation set."""
    keep = rx[rx["experiment"].isin(["regime", "training", "head", "labels", "rounds-source"])]
    if keep.empty:
        return "(no mechanism rows)"
    keep = keep.reset_index(drop=True)
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "experiment": keep["experiment"],
                    "setting": keep["setting"],
                    "scored on": keep["eval_on"].map({"source": "source val", "target": "target"}),
                    "seeds": keep["n_seeds"].astype(int),
                    "mIoU": [_f(v, 1, False) for v in keep["miou"]],
                }
            ),
            _corr_columns(keep),
        ],
        axis=1,
    )
    return _md(table)


def _method_budget(setting: str) -> tuple[str, str]:
    """``("halo", "5")`` from a rounds row's setting ``"halo 5 % after round 1"``."""
    method, budget, *_ = setting.split(" ")
    return method, budget


def rounds(rx: pd.DataFrame) -> str:
    """The correlation through the rounds (the paper's Figure 2, right): per method and budget,
    the seed-mean r on the target at each round (0 = the source model), and the final round's
    per-seed range."""
    hit = rx[rx["experiment"] == "rounds"]
    if hit.empty:
        return "(no rounds rows)"
    keys = [_method_budget(s) for s in hit["setting"]]
    hit = hit.assign(method=[k[0] for k in keys], budget=[k[1] for k in keys])
    out = []
    for (method, budget), g in hit.groupby(["method", "budget"], sort=False):
        g = g.sort_values("round")
        row = {"method": cl.NAMES.get(method, method), "budget": f"{budget} %"}
        row |= {f"round {int(r)}": _f(v) for r, v in zip(g["round"], g["pearson_r"], strict=True)}
        seeds = [float(x) for x in str(g["pearson_r_seeds"].iloc[-1]).split(";")]
        row["last round, seeds"] = f"{_f(min(seeds))} to {_f(max(seeds))} ({len(seeds)})"
        out.append(row)
    return _md(pd.DataFrame(out).astype(object).fillna("—"))


def _monotone(values: list[float]) -> str:
    """``falls`` / ``rises`` / ``not monotone`` for radii in increasing share order."""
    d = np.diff(values)
    if len(d) and (d < 0).all():
        return "falls"
    if len(d) and (d > 0).all():
        return "rises"
    return "not monotone"


def intervention(rx: pd.DataFrame) -> str:
    """The frequency intervention: per class and share, the class's radius (seed mean ± sd and
    each seed), its rank from the outside and IoU on each validation set; then, per class and
    set, how its radius moves as its training share grows over the shares where it is learned
    (the paper's direction: it falls), in the seed means and in each seed."""
    hit = rx[rx["experiment"] == "frequency"].dropna(subset=["class"])
    if hit.empty:
        return "(no intervention rows)"
    hit = hit.sort_values(["class", "eval_on", "class_train_share"], kind="stable")
    spread = ["class_radius_sd", "class_radius_seeds", "class_radius_rank_seeds"]
    hit = hit.reindex(columns=list(dict.fromkeys([*hit.columns, *spread])))  # older tables
    learned = hit["class_iou"].astype(float) >= LEARNED_IOU  # radius.py's class_learned
    table = pd.DataFrame(
        {
            "class": hit["class"],
            "count ×": [f"{float(s):g}" for s in hit["scale"]],
            "train share %": [_f(100 * v, 2, False) for v in hit["class_train_share"]],
            "scored on": hit["eval_on"].map({"source": "source val", "target": "target"}),
            "radius (± sd)": [
                _f(m, 2, False) + ("" if pd.isna(s) else f" ± {_f(s, 2, False)}")
                for m, s in zip(hit["class_radius"], hit["class_radius_sd"], strict=True)
            ],
            "radius per seed": hit["class_radius_seeds"],
            "rank per seed (1 = outermost)": hit["class_radius_rank_seeds"],
            "IoU": [_f(v, 1, False) for v in hit["class_iou"]],
            "learned (IoU ≥ 20)": np.where(learned, "yes", "**no**"),
        }
    )
    lines = [_md(table.astype(object).fillna("—")), ""]
    for (cls, on), g in hit.assign(learned=learned).groupby(["class", "eval_on"]):
        ok = g[g["learned"]]
        dropped = [f"×{float(s):g}" for s in g.loc[~g["learned"], "scale"]]
        where = "source val" if on == "source" else "target"
        left = f" (not learned, left out: {', '.join(dropped)})" if dropped else ""
        if len(ok) < 3:
            lines.append(
                f"- {cls}, {where}: learned at {len(ok)} of {len(g)} shares{left}: no trend"
            )
            continue
        seeds = _seed_trends(ok)
        lines.append(
            f"- {cls}, {where}: over its {len(ok)} learned shares the mean radius "
            f"{_monotone(list(ok['class_radius']))}"
            + (f"; per seed: {', '.join(seeds)}" if seeds else "")
            + left
        )
    return "\n".join(lines)


def _seed_trends(rows: pd.DataFrame) -> list[str]:
    """Each seed's trend (:func:`_monotone`) over ``rows`` (in share order)."""
    if rows["class_radius_seeds"].isna().any():
        return []
    per = np.array([[float(x) for x in str(s).split(";")] for s in rows["class_radius_seeds"]])
    return [_monotone(list(per[:, k])) for k in range(per.shape[1])]


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
        if method != "random":
            paired = g.join(rnd.rename("rnd"), on=["budget", "seed"]).dropna(subset=["rnd"])
            mean, _, low, high, _ = cl.paired_interval(100 * (paired["side_share"] - paired["rnd"]))
            row["− random, paired [95 % CI]"] = f"{_f(mean, 1)} [{_f(low, 1)}, {_f(high, 1)}]"
            row["drawn to the sides"] = cl.verdict(low, high)
        out.append(row)
    band = int(b["band"].iloc[0]) if "band" in b.columns and len(b) else 0
    head = f"Bands: the {band} pixel columns at the left and right borders."
    return head + "\n\n" + _md(pd.DataFrame(out).astype(object).fillna(""))


def selection(val: pd.DataFrame | None, select: pd.DataFrame | None) -> str:
    """The round-rate choice: each setting's mean final mIoU over the sweep's active cells on the
    target val set (how it was first chosen) and on the held-out selection split, the setting
    each picks, and whether the held-out choice differs."""
    if select is None:
        return "(the held-out sweep has not run: no round_lr_select/miou_table.csv)"

    def score(frame: pd.DataFrame) -> pd.Series:
        active = frame[~frame["method"].isin(["source", "supervised"])]
        return active.groupby("setting", sort=False)["mean"].mean()

    held = score(select)
    table = pd.DataFrame({"setting": held.index, "held-out split": held.to_numpy()})
    if val is not None:
        table["target val (reported)"] = table["setting"].map(score(val))
    shown = table.assign(**{c: [_f(v, 1, False) for v in table[c]] for c in table.columns[1:]})
    pick = str(held.idxmax())
    lines = [_md(shown), "", f"- chosen on the held-out split: {pick}"]
    if val is not None:
        first = str(score(val).idxmax())
        changed = "no" if first == pick else "**yes**"
        lines += [f"- chosen on the target val set (before): {first}", f"- changed: {changed}"]
    return "\n".join(lines)


def _rx_row(rx: pd.DataFrame, experiment: str, setting: str, on: str) -> pd.Series | None:
    hit = rx[(rx["experiment"] == experiment) & (rx["setting"] == setting) & (rx["eval_on"] == on)]
    return None if hit.empty else hit.iloc[0]


def _r_text(row: pd.Series) -> str:
    seeds = " / ".join(_f(float(x)) for x in str(row["pearson_r_seeds"]).split(";"))
    partial = row.get("partial_r_iou", math.nan)
    return f"r = {_f(row['pearson_r'])} ({seeds}; partial r given IoU {_f(partial)})"


#: the rows the radius-sign summary quotes: (label, experiment, setting, eval_on)
SIGN_ROWS = (
    ("source model, target", "regime", "adamw-1e-3", "target"),
    ("source model, source val", "regime", "adamw-1e-3", "source"),
    ("source model, HFR without its normalisation, target", "head", "halo-hfrraw", "target"),
    ("source model, HFR without its normalisation, source val", "head", "halo-hfrraw", "source"),
    *(
        (
            f"+ 1 round at lr {lr}, {what}, target",
            "labels",
            f"adamw-1e-3 + round 1 ({what}, round lr {lr})",
            "target",
        )
        for lr in ("1e-2", "1e-3")
        for what in ("random labels", "no target labels")
    ),
    ("HALO 5 %, final model, target", "rounds", "halo 5 % after round 5", "target"),
    ("HALO 5 %, final model, source val", "rounds-source", "halo 5 % final model", "source"),
)


def sign_summary(rx: pd.DataFrame, rows: list[cl.Paired]) -> str:
    """The numbers behind the README's paragraph on the radius sign: the correlations of
    :data:`SIGN_ROWS` (seed mean, each seed, the partial r given IoU), and the verdicts of the
    direct test (HALO with the source model's radius against entropy and against its inverse)."""
    lines = []
    for label, experiment, setting, on in SIGN_ROWS:
        row = _rx_row(rx, experiment, setting, on)
        if row is not None:
            lines.append(f"- {label}: {_r_text(row)}")
    for r in rows:
        if r.a == "halo-src" and r.b in ("entropy", "halo-src-inv"):
            lines.append(
                f"- {cl.NAMES[r.a]} − {cl.NAMES[r.b]} at {r.budget:g} %: {_f(r.diff, 1)} "
                f"[{_f(r.ci_low, 1)}, {_f(r.ci_high, 1)}] over {r.n} seeds: **{r.verdict}**"
            )
    return "\n".join(lines) or "(no radius rows)"


_EVENT = re.compile(
    r"^(?P<at>\S+) (?:seed (?P<seed>\d+)(?: part (?P<part>\S+))?|(?P<step>radius|select)) "
    r"(?P<what>start|end|whole run stopped)(?: rc=(?P<rc>\d+))?"
)


def cost(log: str) -> str:
    """What the grid cost, from the driver's log (``grid2/times.log``: one line per start and
    end of a part, of the radius experiments and of the selection sweep; seed 0 began as one
    whole-seed run, stopped by hand, whose jobs the parts reused): the wall time of each finished
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
        elif key in open_at and (m["rc"] == "0" or m["what"] == "whole run stopped"):
            spans.setdefault(key, []).append((at - open_at.pop(key)).total_seconds() / 60)
    rows: dict[str, list[float]] = {}
    for key, minutes in spans.items():
        rows.setdefault(key.split(" (seed")[0], []).extend(minutes)
    table = pd.DataFrame(
        [
            {
                "part": k,
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


def _optional(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def markdown(folder: Path, budgets: list[float]) -> str:
    """findings.md: every section, from the tables in ``folder``."""
    t = cl.load(folder)
    rx = _optional(folder / RADIUS_CSV)
    b = _optional(folder / BORDERS_CSV)
    missing = "(no {} in docs/study)"
    sections = {
        "grid": grid((folder / "miou_table.md").read_text())
        if (folder / "miou_table.md").is_file()
        else missing.format("miou_table.md"),
        "calibration": calibration(t),
        "round-one": round_one(t, budgets),
        "radius-sign": missing.format(RADIUS_CSV)
        if rx is None
        else sign_summary(rx, cl.claims(t["runs"], budgets)),
        "mechanism": missing.format(RADIUS_CSV) if rx is None else mechanism(rx),
        "rounds": missing.format(RADIUS_CSV) if rx is None else rounds(rx),
        "intervention": missing.format(RADIUS_CSV) if rx is None else intervention(rx),
        "borders": missing.format(BORDERS_CSV) if b is None else borders(b),
        "cost": cost((folder / GRID_LOG).read_text())
        if (folder / GRID_LOG).is_file()
        else missing.format(GRID_LOG),
        "selection": selection(
            _optional(folder / VAL_SWEEP / "miou_table.csv"),
            _optional(folder / SELECT_SWEEP / "miou_table.csv"),
        ),
    }
    head = (
        "# The study's findings, generated from its tables\n\n"
        "Written by `uv run python workflow/study/findings.py docs/study`; do not edit.\n\n"
    )
    return head + cl.sectioned(sections)


_SECTION = re.compile(r"<!-- section: (\S+) -->\n(.*?)(?=\n<!-- section: |\Z)", re.DOTALL)
_BLOCK = re.compile(r"(<!-- generated: (\S+) -->)(.*?)(<!-- end generated -->)", re.DOTALL)


def sections_of(text: str) -> dict[str, str]:
    """A generated file's sections: name → body (without its marker and trailing blank)."""
    return {m[1]: m[2].strip("\n") for m in _SECTION.finditer(text)}


def blocks_of(doc: str) -> list[tuple[str, str]]:
    """A document's generated blocks: ``(source, body)``, source ``FILE#SECTION`` or ``FILE``."""
    return [(m[2], m[3].strip("\n")) for m in _BLOCK.finditer(doc)]


def section_text(root: Path, source: str) -> str:
    """What a block of ``source`` holds: the named section of a generated file (``FILE#NAME``);
    exits with one line naming the file or the section when it has none."""
    path, _, name = source.partition("#")
    if not (root / path).is_file():
        sys.exit(f"findings: {path}: missing (a generated block's source)")
    found = sections_of((root / path).read_text())
    if name not in found:
        sys.exit(f"findings: {path}: no section {name!r} (has {', '.join(found) or 'none'})")
    return found[name]


def refresh(doc: str, root: Path) -> str:
    """``doc`` with every ``FILE#SECTION`` block's body replaced by that section today (blocks
    of a whole file are left as they are)."""

    def fill(m: re.Match) -> str:
        if "#" not in m[2]:
            return m[0]
        return f"{m[1]}\n{section_text(root, m[2])}\n{m[4]}"

    return _BLOCK.sub(fill, doc)


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
