"""The study scripts' jobs: one ``halo`` command each, run once its inputs exist, in parallel.

A :class:`Job` names its command, the file that says it is done and the jobs it waits for;
:func:`run_jobs` runs the missing ones in dependency order (radius.py's experiments).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Job:
    """One halo command and the file that says it is done."""

    name: str
    argv: list[str]
    done: Path
    after: list[str] = field(default_factory=list)


def halo(*args: str) -> list[str]:
    return [sys.executable, "-m", "halo.cli", *args]


def restrict(jobs: list[Job], rows: list[dict], only: list[str]) -> tuple[list[Job], list[dict]]:
    """The rows of the experiments ``only`` and the jobs they need (their evaluations and every
    job those wait for, transitively)."""
    rows = [r for r in rows if r["experiment"] in only]
    by_done = {j.done: j for j in jobs}
    by_name = {j.name: j for j in jobs}
    todo = [by_done[Path(p)] for r in rows for p in r["evals"].values()]
    keep: set[str] = set()
    while todo:
        job = todo.pop()
        if job.name not in keep:
            keep.add(job.name)
            todo += [by_name[a] for a in job.after]
    return [j for j in jobs if j.name in keep], rows


def run_jobs(jobs: list[Job], workers: int, logs: Path) -> None:
    """Run the jobs whose ``done`` file is missing, each after the jobs it needs (each job's
    output goes to ``logs/<job name>.log``)."""
    by_name = {j.name: j for j in jobs}
    state = {j.name: j.done.exists() for j in jobs}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    logs.mkdir(parents=True, exist_ok=True)

    def one(job: Job) -> None:
        log = logs / (re.sub(r"[^\w.@-]+", "_", job.name).strip("_") + ".log")
        with open(log, "w") as fh:
            code = subprocess.run(job.argv, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
        if code:
            raise SystemExit(f"{job.name} failed (exit {code}); see {log}")

    with ThreadPoolExecutor(workers) as pool:
        while not all(state.values()):
            ready = [
                by_name[n]
                for n, ok in state.items()
                if not ok and all(state[a] for a in by_name[n].after)
            ]
            if not ready:
                raise SystemExit(
                    "no job can start: " + ", ".join(n for n, ok in state.items() if not ok)
                )
            for job, _ in zip(ready, pool.map(one, ready), strict=True):
                state[job.name] = True
