"""Run the study grid once per setting and gather the report tables (issue #18's sweeps).

Each setting is a list of run-config overrides (``halo --set`` syntax) added to every run of the
benchmark's grid. Every setting gets its own Snakemake working directory under ``--root`` (the
same ``Snakefile``, the same ``halo`` commands, its own ``runs/``, ``results/`` and MLflow
store), sharing the checkout's ``configs/`` and the synthetic data. With ``--share-source`` the
settings change only what the active rounds do, so the first setting's source-only models are
copied to the others instead of being trained again (their jobs are then up to date by
modification time). The report tables of every setting are concatenated, with a ``setting``
column, into ``--out``::

    uv run python workflow/study/sweep.py --grid configs/sweeps/round_lr.yaml \\
        --setting lr1e-3 train.round_lr=0.001 --setting lr3e-4 train.round_lr=0.0003 \\
        --share-source --root sweeps/round_lr --out docs/study/round_lr

With ``--select N`` the settings are judged on a held-out *selection* split (issue #29): each
working directory gets its own synthetic data (the default benchmark written by ``halo synth``,
plus ``N`` labelled Cityscapes-style images of the ``select`` split, other cities and images
than ``val``), and every run evaluates on it (``val_split=select``), never on the validation
set the study reports::

    uv run python workflow/study/sweep.py --grid configs/sweeps/round_lr.yaml --select 100 \
        --setting lr1e-3 train.round_lr=0.001 ... --root sweeps/round_lr_select \
        --out docs/study/round_lr_select

A failed setting stops the sweep (Snakemake's own message names the job); rerunning resumes.
Settings run one at a time into their own ``--out`` folders (the study's driver does, so that a
stopped machine costs one setting) are joined, in the order given, with ``--concat``::

    uv run python workflow/study/sweep.py --concat OUT/lr3e-4 OUT/lr1e-3 ... --out OUT
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
BENCH = "synth-gta2cs"
TABLES = (
    "miou_table.csv",
    "per_class.csv",
    "training_stability.csv",
    "radius_correlations.csv",
    "acquired_classes.csv",
    "rounds.csv",
)


def _setting(values: list[str]) -> tuple[str, list[str]]:
    name, *sets = values
    bad = [s for s in sets if "=" not in s]
    if not name or "/" in name or bad:
        raise SystemExit(f"--setting NAME KEY=VALUE...: bad {' '.join(values)!r}")
    return name, sets


def workdir(root: Path, name: str, grid: dict, sets: list[str], select: int = 0) -> Path:
    """The setting's Snakemake working directory: the checkout's configs and data linked (with
    ``select``: data of its own, with the selection split), and a workflow config whose
    benchmark runs carry the setting's overrides."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    if select:
        write_selection_data(d, grid, select)
        sets = [*sets, "val_split=select"]
    for link in ("configs",) if select else ("configs", "data"):
        if not (d / link).exists():
            target = REPO / link
            target.mkdir(exist_ok=True)
            (d / link).symlink_to(target)
    spec = {**grid, "benchmarks": {}}
    for bench, b in grid["benchmarks"].items():
        spec["benchmarks"][bench] = {**b, "set": [*b.get("set", []), *sets]}
    (d / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return d


def write_selection_data(d: Path, grid: dict, count: int) -> None:
    """The grid's synthetic benchmark under ``d`` and ``count`` images of its ``select`` split
    (skipped when already there)."""
    synth = {"root": "data/synth", "size": [64, 128], "seed": 0, **grid.get("synth", {})}
    root, size = d / synth["root"], "x".join(map(str, synth["size"]))
    halo = [sys.executable, "-m", "halo.cli", "synth", "--size", size, "--seed", str(synth["seed"])]
    images = ["--count", str(synth["count"])] if synth.get("count") else []  # as the workflow's
    if not root.is_dir():
        subprocess.run([*halo, *images, "--out", str(root), "--quiet"], check=True, cwd=REPO)
    if not (root / "cityscapes" / "leftImg8bit" / "select").is_dir():
        argv = ["--style", "cityscapes", "--split", "select", "--count", str(count)]
        subprocess.run(
            [*halo, *argv, "--out", str(root / "cityscapes"), "--quiet"], check=True, cwd=REPO
        )


def run(d: Path, cores: int, targets: list[str], extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(d), "--configfile", str(d / "sweep.yaml"), "--cores", str(cores)]
    subprocess.run([*cmd, *targets, *extra], check=True, cwd=d)


def share_source(first: Path, d: Path) -> None:
    """Copy the first setting's source-only runs (models and their evaluation) into ``d``."""
    for src in sorted((first / "runs").glob("*/*/source")):
        dst = d / src.relative_to(first)
        if not dst.exists():
            shutil.copytree(src, dst, copy_function=shutil.copy2)


def gather(root: Path, names: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        frames = []
        for name in names:
            for f in sorted((root / name / "results").glob(f"*/{table}")):
                frame = pd.read_csv(f)
                frame.insert(0, "setting", name)
                frame.insert(1, "benchmark", f.parent.name)
                frames.append(frame)
        if frames:
            tmp = out / f".tmp-{table}"
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
            os.replace(tmp, out / table)


def concat(parts: list[Path], out: Path) -> None:
    """Join the gathered tables of settings run apart (each folder a ``--out`` of its own), in
    the order given; a table missing from some folder is an error (a setting did not finish)."""
    for table in TABLES:
        have = [d for d in parts if (d / table).is_file()]
        if have and len(have) < len(parts):
            missing = sorted(set(map(str, parts)) - set(map(str, have)))
            raise SystemExit(f"sweep: {missing[0]}/{table}: missing (the setting did not finish)")
    frames = {t: [pd.read_csv(d / t) for d in parts] for t in TABLES if (parts[0] / t).is_file()}
    if not frames:
        raise SystemExit(f"sweep: {parts[0]}: none of {', '.join(TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
    for table, tables in frames.items():
        tmp = out / f".tmp-{table}"
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
        os.replace(tmp, out / table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--concat",
        type=Path,
        nargs="+",
        default=None,
        metavar="DIR",
        help="join these settings' --out folders into --out; nothing is run",
    )
    p.add_argument("--grid", help="workflow config of the grid (configs/sweeps/...)")
    p.add_argument("--setting", nargs="+", action="append", metavar="NAME SET")
    p.add_argument("--root", help="folder of the settings' working directories")
    p.add_argument("--out", required=True, help="folder of the gathered tables")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--share-source", action="store_true")
    p.add_argument(
        "--select",
        type=int,
        default=0,
        metavar="N",
        help="judge on N images of a held-out selection split, not on the reported val set",
    )
    args, extra = p.parse_known_args(argv)
    if args.concat:
        if extra or args.setting or args.grid or args.root:
            p.error("--concat takes only --out")
        concat(args.concat, Path(args.out))
        return 0
    if not args.grid or not args.setting or not args.root:
        p.error("--grid, --setting and --root are required (or --concat)")
    settings = [_setting(v) for v in args.setting]
    grid = yaml.safe_load(Path(args.grid).read_text())
    root = Path(args.root).resolve()
    targets = [f"results/{b}/" for b in grid["benchmarks"]]
    dirs = [workdir(root, name, grid, sets, args.select) for name, sets in settings]
    for i, d in enumerate(dirs):
        if args.share_source and i:
            share_source(dirs[0], d)
            extra_i = [*extra, "--rerun-triggers", "mtime"]
        else:
            extra_i = extra
        run(d, args.cores, targets, extra_i)
    gather(root, [name for name, _ in settings], Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
