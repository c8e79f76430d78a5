"""The rows of the radius experiments (workflow/study/radius.py): each setting's correlations
from its evaluations, the rounds of a finished grid (the paper's Figure 2, right), and the
revision every row's models were trained at."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def rounds_rows(grid_runs: Path) -> list[dict]:
    """The correlation through the rounds (the paper's Figure 2, right): every round of every
    active run of a finished grid (``runs/<bench>/<backbone>``), seeds averaged per class; round
    0 is the run's source-only model (``source/<variant>/seed<s>``). ``pearson_r_seeds`` lists
    each seed's r, ``commit`` the revisions the grid's runs were made at (their provenance)."""
    from halo.report.radius import group_correlations

    groups: dict[tuple, list[Path]] = {}
    for ev in sorted(grid_runs.glob("*/*/seed*/round*/eval.json")):
        method, budget, seed = ev.parts[-5], ev.parts[-4], ev.parts[-3]
        key = (method, float(budget))
        groups.setdefault((*key, int(ev.parts[-2][5:])), []).append(ev)
        if ev.parts[-2] == "round1":
            variant = json.loads((ev.parents[1] / "metrics.json").read_text())["variant"]
            groups.setdefault((*key, 0), []).append(
                grid_runs / "source" / variant / seed / "eval.json"
            )
    out = []
    for (method, budget, r), evals in sorted(groups.items()):
        metrics = [json.loads(p.read_text()) for p in evals]
        out.append(
            {
                "experiment": "rounds",
                "setting": f"{method} {budget:g} % "
                + (f"after round {r}" if r else "source model"),
                "eval_on": "target",
                "sets": "",
                "n_seeds": len(metrics),
                "miou": sum(m["miou"] for m in metrics) / len(metrics),
                "round": r,
                **group_correlations(metrics),
                "pearson_r_seeds": ";".join(
                    repr(float(group_correlations([m])["pearson_r"])) for m in metrics
                ),
                "commit": _revisions(evals),
            }
        )
    return out


def _revisions(evals) -> str:
    """The revisions the models behind ``evals`` were made at (the ``provenance.json`` beside
    each evaluation: its training run's), short and ``/``-joined; the checkout's (:func:`_commit`)
    where none is recorded."""
    found = set()
    for ev in evals:
        for prov in (Path(ev).parent / "provenance.json", Path(ev).parents[1] / "provenance.json"):
            if prov.is_file():  # a snapshot's: its training run's, one folder up
                found.add(json.loads(prov.read_text()).get("git_revision", "")[:7])
                break
    found.discard("")
    return "/".join(sorted(found)) or _commit()


def _commit() -> str:
    """The checkout's short revision (``-dirty`` with uncommitted changes), as rows record it."""
    git = ["git", "-C", str(REPO)]
    rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if rev.returncode:
        return ""
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return rev.stdout.strip() + ("-dirty" if dirty else "")


def gather(rows: list[dict]) -> pd.DataFrame:
    from halo.report.radius import group_correlations

    out = []
    for row in rows:
        metrics = {s: json.loads(Path(p).read_text()) for s, p in row["evals"].items()}
        corr = group_correlations(list(metrics.values()))
        per_seed = [group_correlations([m])["pearson_r"] for m in metrics.values()]
        rec = {k: v for k, v in row.items() if k not in ("evals", "made_at")}
        rec.update(
            n_seeds=len(metrics), miou=sum(m["miou"] for m in metrics.values()) / len(metrics)
        )
        rec.update(corr)
        rec["pearson_r_seeds"] = ";".join(repr(float(r)) for r in per_seed)  # rounded on display
        # the models' revisions: beside their evaluations, or where ``made_at`` says (a score
        # kept apart from its run: rounds-source's, whose run folder has the provenance)
        rec["commit"] = _revisions(row.get("made_at") or [Path(p) for p in row["evals"].values()])
        if "class" in row:
            stats = json.loads((Path(rec.pop("data")) / "gta5" / "class_stats.json").read_text())
            rec["class_train_share"] = stats["train"]["share"][row["class"]]
            rec.update(_class_row(list(metrics.values()), row["class"]))
        out.append(rec)
    return pd.DataFrame(out)


def _class_row(metrics: list[dict], cls: str) -> dict:
    """The scaled class on the common validation set: its share, radius, radius rank (1 =
    farthest out) and IoU as seed means, each seed's radius, rank and IoU (``;``-joined, in the
    seeds' order) and the sample sd of its radius and rank over the seeds (the spread)."""
    import numpy as np

    def place(group: list[dict]) -> dict | None:
        frame = class_means(group, extra=("per_class_iou",)).set_index("class")
        if cls not in frame.index:
            return None
        rank = frame["mean_radius"].rank(ascending=False)
        return {
            "share": frame.at[cls, "pixel_share"],
            "radius": frame.at[cls, "mean_radius"],
            "rank": int(rank[cls]),
            "iou": frame.at[cls, "per_class_iou"],
            "median": float(frame["mean_radius"].median()),
        }

    from halo.report.radius import class_means

    mean = place(metrics)
    seeds = [place([m]) for m in metrics]
    found = [s for s in seeds if s is not None]

    def joined(key: str, fmt: str) -> str:
        return ";".join("nan" if s is None else format(s[key], fmt) for s in seeds)

    def sd(key: str) -> float | None:
        return float(np.std([s[key] for s in found], ddof=1)) if len(found) > 1 else None

    return {
        "class_share": None if mean is None else mean["share"],
        "class_radius": None if mean is None else mean["radius"],
        "class_radius_rank": None if mean is None else mean["rank"],
        "class_iou": None if mean is None else mean["iou"],
        # a share where the class is not learned says nothing about its radius: flagged
        "class_learned": bool(mean is not None and mean["iou"] >= 20),
        "median_radius": None if mean is None else mean["median"],
        "class_radius_seeds": joined("radius", ".4f"),
        "class_radius_sd": sd("radius"),
        "class_radius_rank_seeds": joined("rank", "d"),
        "class_radius_rank_sd": sd("rank"),
        "class_iou_seeds": joined("iou", ".1f"),
    }
