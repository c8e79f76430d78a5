"""The radius sections of the study's findings (issue #29): every setting's correlations, the
rounds of the grid, the frequency intervention and the numbers behind the README's paragraph on
the radius sign, from ``radius_experiments.csv`` (``radius.py``)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims as cl
from blocks import fmt as _f
from blocks import md_table as _md


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
    r of the seed-averaged class radii and shares on the target at each round (0 = the source
    model), and the range of the per-seed r at the final round."""
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
    learned = hit["class_iou"].astype(float) >= cl.LEARNED_IOU  # radius.py's class_learned
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


def _rx_row(rx: pd.DataFrame, experiment: str, setting: str, on: str) -> pd.Series | None:
    hit = rx[(rx["experiment"] == experiment) & (rx["setting"] == setting) & (rx["eval_on"] == on)]
    return None if hit.empty else hit.iloc[0]


def _r_text(row: pd.Series) -> str:
    """r, ρ and r against log share of the seed-averaged class values (a sign is read only where
    the three agree, :func:`claims.sign_of`), each seed's r, and the partial r given IoU."""
    seeds = " / ".join(_f(float(x)) for x in str(row["pearson_r_seeds"]).split(";"))
    partial = row.get("partial_r_iou", math.nan)
    rho, log_r = row.get("spearman_rho", math.nan), row.get("pearson_r_log_share", math.nan)
    return (
        f"r = {_f(row['pearson_r'])}, ρ = {_f(rho)}, r(log share) = {_f(log_r)}, sign: "
        f"{cl.sign_of(row)} (each seed's r: {seeds}; partial r given IoU {_f(partial)})"
    )


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
    :data:`SIGN_ROWS` (:func:`_r_text`), and the verdicts of the
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
