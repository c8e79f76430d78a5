"""Where a finished workflow run's time went, per rule: start-up, compute, writing.

Reads the Snakemake log of a run (``.snakemake/log/*.snakemake.log``, the latest by default) for
each job's wall time (start → finish, as Snakemake saw it, 1 s resolution) and each job's own
log for its ``halo timing:`` line (halo/timing.py: start-up = process start → first useful work,
compute, write). What is left of the wall time ("other") is the shell, Snakemake's bookkeeping
and the log's rounding.

    uv run python bench/workflow_profile.py                 # the latest run in this folder
    uv run python bench/workflow_profile.py --project DIR --json out.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from halo.timing import PHASES, parse

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
FINISH = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
FIELD = re.compile(r"^\s+(jobid|log): (.*)$")


def _time(text: str) -> float:
    return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").timestamp()


def read_jobs(log: Path) -> list[dict]:
    """Every finished job of a Snakemake log: rule, job id, log file, start, end (seconds)."""
    jobs: dict[str, dict] = {}
    finished = []
    stamp = None
    current = None
    for line in log.read_text(errors="replace").splitlines():
        if m := STAMP.match(line):
            stamp, current = _time(m.group(1)), None
        elif (m := START.match(line)) and stamp is not None:
            current = {"rule": m.group(1), "start": stamp, "log": None, "jobid": None}
        elif current is not None and (m := FIELD.match(line)):
            key, value = m.groups()
            if key == "jobid":
                current["jobid"] = value.strip()
                jobs[current["jobid"]] = current
            else:
                current["log"] = value.split(",")[0].strip()
        elif (m := FINISH.match(line)) and stamp is not None:
            job = jobs.get(m.group(1))
            if job is not None and "end" not in job:
                job["end"] = stamp
                finished.append(job)
    return finished


def profile(project: Path, log: Path) -> dict:
    """Per rule: jobs, wall seconds and their split; plus the whole run."""
    rules: dict[str, dict] = defaultdict(lambda: dict.fromkeys(("jobs", "wall", *PHASES), 0.0))
    missing = 0
    jobs = read_jobs(log)
    for job in jobs:
        row = rules[job["rule"]]
        row["jobs"] += 1
        row["wall"] += job["end"] - job["start"]
        timing = None
        if job["log"] and (project / job["log"]).is_file():
            timing = parse((project / job["log"]).read_text(errors="replace"))
        if timing is None:
            missing += 1
            continue
        for phase in PHASES:
            row[phase] += float(timing.get(phase, 0.0))
    for row in rules.values():
        row["other"] = max(row["wall"] - sum(row[p] for p in PHASES), 0.0)
    total = dict.fromkeys(("jobs", "wall", *PHASES, "other"), 0.0)
    for row in rules.values():
        for key in total:
            total[key] += row[key]
    span = (max(j["end"] for j in jobs) - min(j["start"] for j in jobs)) if jobs else 0.0
    order = sorted(rules, key=lambda r: -rules[r]["wall"])
    return {
        "log": str(log),
        "rules": {r: rules[r] for r in order},
        "total": total,
        "run_wall": span,
        "jobs_without_timing": missing,
    }


def table(result: dict) -> str:
    head = "| rule | jobs | wall s | mean s | start-up s | compute s | write s | other s |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [*result["rules"].items(), ("**all jobs**", result["total"])]
    for name, r in rows:
        mean = r["wall"] / r["jobs"] if r["jobs"] else 0.0
        lines.append(
            f"| {name} | {r['jobs']:.0f} | {r['wall']:.0f} | {mean:.1f} | {r['startup']:.0f} | "
            f"{r['compute']:.0f} | {r['write']:.0f} | {r['other']:.0f} |"
        )
    lines.append("")
    lines.append(f"Run wall (first job start → last job end): {result['run_wall']:.0f} s")
    if result["jobs_without_timing"]:
        lines.append(f"Jobs whose log has no timing line: {result['jobs_without_timing']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, default=Path("."), help="the workflow's folder")
    ap.add_argument("--log", type=Path, default=None, help="a Snakemake log (default: latest)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    log = args.log
    if log is None:
        logs = sorted((args.project / ".snakemake" / "log").glob("*.snakemake.log"))
        if not logs:
            print(f"{args.project}/.snakemake/log: no Snakemake log", file=sys.stderr)
            return 2
        log = logs[-1]
    result = profile(args.project, log)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
