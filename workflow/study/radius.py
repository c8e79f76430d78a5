"""The radius experiments of issue #18: what decides the sign of the radius-vs-frequency relation.

Every model is trained and scored by the ``halo`` CLI (``halo synth``, ``halo pretrain``,
``halo acquire``, ``halo train``, ``halo evaluate --on source|target``); this script only plans
the commands, runs them two at a time (one thread each), skips what is already on disk, and
writes one CSV row per setting and validation set::

    uv run python workflow/study/radius.py --root sweeps/radius --seeds 0 1 \\
        --out docs/study/radius_experiments.csv

Experiments (``experiment`` column):

- ``regime``: source-only models trained with the default AdamW rates, lower rates, SGD at the
  former default (1e-2, head x10, poly), SGD at a lower rate and SGD with the head at x1, each
  scored on the held-out source split (in-domain) and on the target;
- ``head``: HALO without HFR, and the Euclidean head (``featnorm``: the feature norm in place of
  the hyperbolic radius), for comparison with the default hyperbolic head with HFR;
- ``labels``: one active round (``train.round_steps`` steps) from the default source model with
  the round's target labels drawn at random or by HALO, the same round with every target pixel
  labelled (dense labels: is it the labels, or their sparsity?), and the same steps without
  target labels; each at the study's round lr (1e-2) and at the source's 1e-3, each model scored
  on the target and in-domain;
- ``frequency``: the frequency intervention: source sets written with one class's count scaled
  (``halo synth --scale CLASS=F``; every other object of every scene unchanged), a default
  source-only model trained on each, all scored on the same validation sets; the row also gives
  the class's share of the source training pixels (``class_train_share``, what the intervention
  moves) and, on the validation set, its share, radius, radius rank (1 = farthest out) and IoU.

- ``training``: the default and the former default regime's models every
  ``--snapshot-every`` steps (``halo pretrain --snapshots``), on both validation sets;
- ``rounds`` (with ``--grid-runs``): every round of a finished grid's active runs (the paper's
  Figure 2, right panel: the correlation against the budget spent);
- ``rounds-source`` (with ``--grid-runs``): the round-1 and final models of the grid's main
  methods scored in-domain (``halo evaluate --on source``).

``--only EXPERIMENT ...`` runs those experiments alone (and the jobs they need) and replaces
their rows in an existing ``--out``, keeping the others; every row records the ``commit`` its
models were trained at (their ``provenance.json``).

Correlations (Pearson, Spearman) are taken over the classes with a pixel share and a radius,
averaged over seeds per class first (as in the report), and over the classes the models learned
(mean IoU >= 20); ``pearson_r_seeds`` lists each seed's own r.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from radius_rows import gather, rounds_rows
from studyjobs import Job, halo, restrict, run_jobs

#: the run config and extra `halo synth` options (main sets them from --config and --synth:
#: the test suite's tiny config and --count 4 --size 32x64 make a smoke run)
OPTIONS: dict = {"config": "configs/synth.yaml", "synth": [], "snapshot_every": 100}


#: source-only training regimes: name → every optimiser key (nothing left to the run config)
def _regime(optimizer: str, lr: float, head: float, schedule: str) -> list[str]:
    return [
        f"train.optimizer={optimizer}",
        f"train.lr={lr}",
        f"train.head_lr_mult={head}",
        f"train.schedule={schedule}",
    ]


REGIMES = {
    "adamw-1e-3": _regime("adamw", 0.001, 1, "cosine"),  # configs/synth.yaml
    "adamw-3e-4": _regime("adamw", 0.0003, 1, "cosine"),
    "sgd-1e-2-head10": _regime("sgd", 0.01, 10, "poly"),  # the former default
    "sgd-3e-3-head10": _regime("sgd", 0.003, 10, "poly"),
    "sgd-1e-2-head1": _regime("sgd", 0.01, 1, "poly"),
}
DEFAULT = REGIMES["adamw-1e-3"]
#: regimes whose models are also evaluated through training (--snapshots)
SNAPSHOT_REGIMES = ("adamw-1e-3", "sgd-1e-2-head10")
HEADS = {
    "halo-nohfr": [*DEFAULT, "method=halo-nohfr"],
    "featnorm": [*DEFAULT, "method=featnorm"],
    # HFR's weights without its per-channel L2 normalisation over the pixels: does the
    # normalisation shrink large-area classes mechanically (issue #29)?
    "halo-hfrraw": [*DEFAULT, "model.hfr_normalize=false"],
}
#: the frequency intervention: class → count factors (1 is the default data set); four object
#: classes, three shares each (issue #29)
SCALES = {
    "person": (0.25, 4.0),
    "car": (0.25, 2.5),
    "rider": (0.25, 4.0),
    "bicycle": (0.25, 4.0),
}


class _Planner:
    """Collects the jobs of the radius experiments and the rows they fill."""

    def __init__(self, root: Path, seeds: list[int]) -> None:
        self.root, self.seeds = root, seeds
        self.jobs: list[Job] = []
        self.rows: list[dict] = []
        self.base = root / "data" / "base"
        argv = halo("synth", "--out", str(self.base), *OPTIONS["synth"], "--quiet")
        self.jobs.append(Job("data:base", argv, self.base / "acdc"))

    def data_for(self, cls: str, factor: float) -> Path:
        """The training data with ``cls`` scaled by ``factor`` (written once; val sets linked)."""
        d = self.root / "data" / f"{cls}x{factor:g}"
        if not any(j.name == f"data:{d.name}" for j in self.jobs):
            scale = f"{cls}={factor:g}"
            argv = halo(
                "synth", "--style", "gta", "--split", "train", "--count", "400", *OPTIONS["synth"]
            )
            argv += ["--scale", scale, "--out", str(d / "gta5"), "--quiet"]
            self.jobs.append(Job(f"data:{d.name}", argv, d / "gta5" / "train.txt"))
            # the common validation sets: the default data's own files
            link = [sys.executable, "-c", _LINK, str(self.base), str(d)]
            self.jobs.append(
                Job(f"link:{d.name}", link, d / "cityscapes", [f"data:{d.name}", "data:base"])
            )
        return d

    def source(self, name: str, sets: list[str], data: Path, seed: int, needs: list[str]) -> Path:
        """A source model of setting ``name`` and ``seed`` (trained once)."""
        out = self.root / "models" / name / f"seed{seed}"
        argv = halo("pretrain", "--config", OPTIONS["config"], "--set", f"data_root={data}")
        argv += [a for s in [*sets, f"seed={seed}"] for a in ("--set", s)]
        argv += ["--out", str(out), "--quiet"]
        if name in SNAPSHOT_REGIMES:  # the model through training (not part of its identity)
            argv += ["--snapshots", str(OPTIONS["snapshot_every"])]
        if not any(j.name == f"train:{name}:{seed}" for j in self.jobs):
            self.jobs.append(Job(f"train:{name}:{seed}", argv, out / "model.pt", needs))
        return out / "model.pt"

    def evaluate(self, model: Path, sets: list[str], data: Path, on: str, needs: str) -> Path:
        """The evaluation JSON of ``model`` on ``on`` (source or target val)."""
        out = model.with_name(
            f"{model.stem}_eval_{on}.json"
            if model.parent.name == "snapshots"
            else f"eval_{on}.json"
        )
        argv = halo("evaluate", "--config", OPTIONS["config"], "--set", f"data_root={data}")
        argv += [a for s in sets for a in ("--set", s)]
        argv += ["--checkpoint", str(model), "--on", on, "--out", str(out), "--quiet"]
        self.jobs.append(Job(f"eval:{out}", argv, out, [needs]))
        return out

    def setting(self, experiment, name, sets, data, needs, extra=None, ons=("source", "target")):
        """Rows (one per ``on``) of a setting's models over the seeds."""
        for on in ons:
            evals = {}
            for seed in self.seeds:
                model = self.source(name, sets, data, seed, needs)
                evals[seed] = self.evaluate(model, sets, data, on, f"train:{name}:{seed}")
            self.rows.append(
                {
                    "experiment": experiment,
                    "setting": name,
                    "eval_on": on,
                    "sets": " ".join(sets),
                    "evals": evals,
                    **(extra or {}),
                }
            )

    def snapshots(self, name: str) -> None:
        """Rows of a regime's snapshots: the correlation through training."""
        sets = REGIMES[name]
        steps = _source_steps(sets)
        for step in range(OPTIONS["snapshot_every"], steps, OPTIONS["snapshot_every"]):
            for on in ("source", "target"):
                evals = {}
                for seed in self.seeds:
                    model = self.source(name, sets, self.base, seed, ["data:base"])
                    snap = model.parent / "snapshots" / f"step{step:06d}.pt"
                    evals[seed] = self.evaluate(snap, sets, self.base, on, f"train:{name}:{seed}")
                self.rows.append(
                    {
                        "experiment": "training",
                        "setting": f"{name} @ step {step}",
                        "eval_on": on,
                        "sets": " ".join(sets),
                        "evals": evals,
                        "step": step,
                    }
                )


def plan(
    root: Path, seeds: list[int], grid_runs: Path | None = None
) -> tuple[list[Job], list[dict]]:
    """The jobs and the rows to gather (each row names its eval JSONs per seed); with
    ``grid_runs``, the in-domain scores of that grid's round models too."""
    p = _Planner(root, seeds)
    base = p.base
    for name, sets in REGIMES.items():
        p.setting("regime", name, sets, base, ["data:base"])
    for name in SNAPSHOT_REGIMES:  # the correlation through training: the snapshots
        p.snapshots(name)
    for name, sets in HEADS.items():
        p.setting("head", name, sets, base, ["data:base"])
    for cls, factors in SCALES.items():
        for factor in (1.0, *factors):
            data = base if factor == 1.0 else p.data_for(cls, factor)
            needs = ["data:base"] if factor == 1.0 else [f"link:{data.name}"]
            name = "adamw-1e-3" if factor == 1.0 else f"adamw-1e-3@{data.name}"
            extra = {"class": cls, "scale": factor, "data": str(data)}
            p.setting("frequency", name, DEFAULT, data, needs, extra)
    _labels(p.jobs, p.rows, root, base, seeds)
    if grid_runs is not None:
        _rounds_in_domain(p.jobs, p.rows, root, grid_runs)
    return p.jobs, p.rows


# link a dataset's gta5/val (and the val list) and the target datasets to the default data's
_LINK = """
import os, sys
from pathlib import Path
base, d = Path(sys.argv[1]), Path(sys.argv[2])
for name in ("cityscapes",):
    if not (d / name).exists():
        (d / name).symlink_to(base / name)
gta = d / "gta5"
(gta / "val.txt").write_text((base / "gta5" / "val.txt").read_text())
for line in (base / "gta5" / "val.txt").read_text().split():
    for sub in ("images", "labels"):
        dst = gta / sub / line
        if not dst.exists():
            dst.symlink_to(base / "gta5" / sub / line)
"""


#: the active rounds' learning rates of the labels experiment: the study's (configs/synth.yaml,
#: 1e-2) and the source model's own 1e-3 (issue #29: the round lr alone moved r without labels)
LABEL_LRS = {"1e-2": [], "1e-3": ["train.round_lr=0.001"]}


def _labels(jobs: list[Job], rows: list[dict], root: Path, base: Path, seeds: list[int]) -> None:
    """One active round from the default source model, at each of :data:`LABEL_LRS`: labels
    drawn at random or by HALO, the same round with every target pixel labelled (the random
    round's folder with each mask replaced by the image's ground truth), and the same round
    without target labels (every mask blanked: 255 = not labelled, so target images still pass
    through the model, with a zero loss); each model scored on the target and in-domain (the
    source's held-out split). The made-up rounds' budget.json says what they label; the pixel
    maps, which only a next round reads, are left out."""
    for lr, lr_sets in LABEL_LRS.items():
        folder = root / ("labels" if not lr_sets else f"labels-lr{lr}")
        for label in ("random", "halo", "all", "none"):
            _label_round(jobs, rows, folder, base, seeds, label, lr, lr_sets)


def _label_round(jobs, rows, folder, base, seeds, label, lr, lr_sets) -> None:
    """The jobs and rows of one label setting at one round lr (:func:`_labels`)."""
    method = "halo" if label == "halo" else "random"
    evals: dict[str, dict] = {"target": {}, "source": {}}
    for seed in seeds:
        src = folder.parent / "models" / "adamw-1e-3" / f"seed{seed}" / "model.pt"
        rd = folder / label / f"seed{seed}" / "round1"
        sets = [*DEFAULT, *lr_sets, f"data_root={base}", f"method={method}", f"seed={seed}"]
        cfg = ["--config", OPTIONS["config"], *[a for x in sets for a in ("--set", x)]]
        if label in ("none", "all"):  # the random round's folder, its masks replaced
            rnd = folder / "random" / f"seed{seed}" / "round1"
            argv = [sys.executable, "-c", _REMASK, label, str(rnd), str(rd), str(base)]
            jobs.append(Job(f"make:{rd}", argv, rd / "budget.json", [f"make:{rnd}"]))
        else:
            argv = halo("acquire", *cfg, "--checkpoint", str(src), "--round", "1")
            argv += ["--out", str(rd), "--quiet"]
            jobs.append(Job(f"make:{rd}", argv, rd / "budget.json", [f"train:adamw-1e-3:{seed}"]))
        evals["target"][seed] = rd / "eval_target.json"
        argv = halo("train", "--protocol", "active", *cfg, "--round", "1", "--init", str(src))
        argv += ["--masks", str(rd), "--out", str(rd), "--eval-out", str(evals["target"][seed])]
        jobs.append(Job(f"round:{rd}", [*argv, "--quiet"], evals["target"][seed], [f"make:{rd}"]))
        evals["source"][seed] = rd / "eval_source.json"
        argv = halo("evaluate", *cfg, "--checkpoint", str(rd / "model.pt"), "--on", "source")
        argv += ["--out", str(evals["source"][seed]), "--quiet"]
        jobs.append(
            Job(f"eval:{evals['source'][seed]}", argv, evals["source"][seed], [f"round:{rd}"])
        )
    what = {"none": "no target labels", "all": "every target pixel labelled"}.get(
        label, f"{label} labels"
    )
    for on in ("target", "source"):
        rows.append(
            {
                "experiment": "labels",
                "setting": f"adamw-1e-3 + round 1 ({what}, round lr {lr})",
                "eval_on": on,
                "sets": " ".join(
                    [*lr_sets, *([f"method={method}"] if label in ("random", "halo") else [])]
                ),
                "evals": evals[on],
            }
        )


#: the grid's methods whose round-1 and final models are also scored in-domain
IN_DOMAIN_METHODS = ("random", "entropy", "ripu", "halo", "halo-src", "halo-src-inv")


def _rounds_in_domain(jobs: list[Job], rows: list[dict], root: Path, grid_runs: Path) -> None:
    """The round-1 and final models of a finished grid's active runs (``runs/<bench>/<backbone>``)
    scored on the source's held-out split (``halo evaluate --on source`` with each round's own
    ``config.yaml``): is the sign the rounds show in the target set the same in-domain? A round
    counts where its model is there or its score already is (``root/rounds-source/<method>/
    <budget>/seed<S>/round<N>.json``: the study's driver scores each part's models before it
    deletes them, and the grid's archives keep no model)."""
    groups: dict[tuple, dict] = {}
    for run in sorted(grid_runs.glob("*/*/seed*")):
        method, budget, seed = run.parts[-3], run.parts[-2], run.parts[-1]
        rounds = sorted(
            (d for d in run.glob("round*") if d.name[5:].isdigit()), key=lambda d: int(d.name[5:])
        )
        if method not in IN_DOMAIN_METHODS or not rounds or not budget.replace(".", "").isdigit():
            continue
        for label, model in (
            ("round 1", rounds[0] / "model.pt"),
            ("final", rounds[-1] / "model.pt"),
        ):
            out = root / "rounds-source" / method / budget / seed / f"{model.parent.name}.json"
            if not model.is_file() and not out.is_file():
                continue
            argv = halo("evaluate", "--config", str(model.parent / "config.yaml"))
            argv += ["--checkpoint", str(model), "--on", "source", "--out", str(out), "--quiet"]
            jobs.append(Job(f"eval:{out}", argv, out))
            group = groups.setdefault((method, float(budget), label), {"evals": {}, "made": []})
            group["evals"][int(seed[4:])] = out
            group["made"].append(model.parent / "eval.json")  # its provenance.json: the commit
    for (method, budget, label), group in sorted(groups.items()):
        rows.append(
            {
                "experiment": "rounds-source",
                "setting": f"{method} {budget:g} % {label} model",
                "eval_on": "source",
                "sets": "",
                "evals": group["evals"],
                "made_at": group["made"],
            }
        )


_REMASK = """
import json, shutil, sys
from pathlib import Path
import numpy as np
from PIL import Image
how, src, dst, data = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
tmp = dst.with_name(dst.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("model.pt", "eval*.json", "train_*", "*.npz"))
masks = {p.relative_to(tmp / "masks").with_suffix("").as_posix(): p for p in (tmp / "masks").rglob("*.png")}
truth = {}
if how == "all":  # the pool's ground truth, as the round's masks hold labels (train ids, 255)
    from halo.data import build_dataset
    pool = build_dataset("cityscapes", data / "cityscapes", "train")
    truth = {s.id: i for i, s in enumerate(pool.samples)}
    if set(masks) - set(truth):
        sys.exit(f"{src}: masks of images the pool lacks: {sorted(set(masks) - set(truth))[:3]}")
labelled = total = 0
for image_id, path in masks.items():
    m = np.asarray(Image.open(path))
    new = np.full_like(m, 255) if how == "none" else pool.load(truth[image_id])[1].astype(np.uint8)
    if new.shape != m.shape:
        sys.exit(f"{path}: ground truth {new.shape} is not the mask's size {m.shape}")
    Image.fromarray(new).save(path)
    labelled, total = labelled + int((new != 255).sum()), total + new.size
budget = json.loads((tmp / "budget.json").read_text())  # what this round labels
frac = labelled / total
step = {"pixels_labelled": labelled, "fraction": frac, "pixels_labelled_cumulative": labelled,
        "fraction_cumulative": frac}
budget.update(strategy=how, regions=0, pixels_target_round=0, pixels_labelled_round=labelled,
              pixels_labelled_cumulative=labelled, fraction_round=frac, fraction_cumulative=frac,
              history=[{"round": h["round"], **step} for h in budget.get("history", [])])
(tmp / "budget.json").write_text(json.dumps(budget, indent=2) + "\\n")
tmp.rename(dst)
"""


def _source_steps(sets: list[str]) -> int:
    from halo.config import load_run

    return load_run(OPTIONS["config"], sets).config.train.source_steps


EXPERIMENTS = ("regime", "training", "head", "frequency", "labels", "rounds", "rounds-source")


def merge(old: pd.DataFrame, new: pd.DataFrame, only: list[str]) -> pd.DataFrame:
    """``old`` with the rows of the experiments ``only`` replaced by ``new``'s, in the order of
    :data:`EXPERIMENTS` (rows of one experiment keep their order)."""
    table = pd.concat([old[~old["experiment"].isin(only)], new], ignore_index=True)
    order = table["experiment"].map({e: i for i, e in enumerate(EXPERIMENTS)})
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="folder for data, models and evaluations")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", required=True, help="the CSV to write")
    p.add_argument("--jobs", type=int, default=2, help="commands at once (one thread each)")
    p.add_argument("--config", default=OPTIONS["config"], help="run config (default: %(default)s)")
    p.add_argument("--snapshot-every", type=int, default=OPTIONS["snapshot_every"])
    p.add_argument(
        "--grid-runs",
        default=None,
        help="a finished grid's runs/<bench>/<backbone>: "
        "adds the correlation after every round of its active runs",
    )
    p.add_argument("--synth", default="", help="extra halo synth options, e.g. --synth='--count 4'")
    p.add_argument(
        "--only",
        nargs="+",
        choices=EXPERIMENTS,
        default=None,
        help="run these experiments only; the other rows of an existing --out are kept",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.only and {"rounds", "rounds-source"} & set(args.only) and not args.grid_runs:
        p.error("--only rounds and rounds-source need --grid-runs")
    old = None
    if args.only and out.exists():  # checked before any work: the rows to keep
        old = pd.read_csv(out)
        if "experiment" not in old.columns:
            p.error(f"{out}: not a radius_experiments table (no 'experiment' column)")
    OPTIONS.update(
        config=args.config, synth=shlex.split(args.synth), snapshot_every=args.snapshot_every
    )
    grid_runs = Path(args.grid_runs).resolve() if args.grid_runs else None
    jobs, rows = plan(Path(args.root).resolve(), args.seeds, grid_runs)
    if args.only:
        jobs, rows = restrict(jobs, rows, args.only)
    run_jobs(jobs, args.jobs, Path(args.root).resolve() / "logs")
    table = gather(rows)
    with_rounds = args.grid_runs and (not args.only or "rounds" in args.only)
    if with_rounds:  # rows of the grid's runs name the grid's commits
        rounds = pd.DataFrame(rounds_rows(Path(args.grid_runs))).astype({"round": "Int64"})
        table = pd.concat([table, rounds], ignore_index=True)
    if old is not None:
        table = merge(old, table, args.only)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    table.to_csv(tmp, index=False)
    os.replace(tmp, out)
    print(table.to_string(max_colwidth=40))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
