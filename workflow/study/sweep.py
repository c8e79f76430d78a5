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

A failed setting stops the sweep (Snakemake's own message names the job); rerunning resumes.
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


def workdir(root: Path, name: str, grid: dict, sets: list[str]) -> Path:
    """The setting's Snakemake working directory: the checkout's configs and data linked, and a
    workflow config whose benchmark runs carry the setting's overrides."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for link in ("configs", "data"):
        if not (d / link).exists():
            target = REPO / link
            target.mkdir(exist_ok=True)
            (d / link).symlink_to(target)
    spec = {**grid, "benchmarks": {}}
    for bench, b in grid["benchmarks"].items():
        spec["benchmarks"][bench] = {**b, "set": [*b.get("set", []), *sets]}
    (d / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return d


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", required=True, help="workflow config of the grid (configs/sweeps/...)")
    p.add_argument("--setting", nargs="+", action="append", required=True, metavar="NAME SET")
    p.add_argument("--root", required=True, help="folder of the settings' working directories")
    p.add_argument("--out", required=True, help="folder of the gathered tables")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--share-source", action="store_true")
    args, extra = p.parse_known_args(argv)
    settings = [_setting(v) for v in args.setting]
    grid = yaml.safe_load(Path(args.grid).read_text())
    root = Path(args.root).resolve()
    targets = [f"results/{b}/" for b in grid["benchmarks"]]
    dirs = [workdir(root, name, grid, sets) for name, sets in settings]
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
