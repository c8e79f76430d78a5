"""Stop the study if negative learning changes a verdict (issue #29, item 4).

The study's driver (``drive.sh``) runs this after the negative-learning block and before the
source-radius methods: it gathers the part archives in ``ARCHIVES`` into a scratch folder
(``grid.py gather``), prints the ``negative-learning`` section of the findings (the paired
verdicts with and without the official term at the largest budget, on the seeds all four cells
have) and exits 0 if no verdict changes, 3 if one does (then NL becomes the study's default and
the grid is run again with it: the driver stops there), 1 if the archives hold no
negative-learning runs or fewer than ``--min-seeds`` common seeds::

    uv run python workflow/study/nlcheck.py /tmp/study2-archives
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import findings
import grid


def decide(runs: pd.DataFrame, min_seeds: int) -> tuple[str, int]:
    """The negative-learning section of ``runs`` (``runs.csv``: method, budget as a fraction,
    seed, miou) and the exit code: 0 no verdict changes, 3 one does, 1 too few seeds."""
    budgets = sorted(b for b in runs["budget"].unique() if 0 < b < 1)
    rows, changed = findings.nl_verdicts(runs, budgets)
    text = findings.nl_section(rows, changed)
    seeds = min((r["seeds"] for r in rows), default=0)
    if seeds < min_seeds:
        return text + f"\nnlcheck: {seeds} common seeds, {min_seeds} needed", 1
    return text, 3 if changed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archives", type=Path, help="the folder of the part archives")
    ap.add_argument("--grid", type=Path, default=grid.REPO / "configs" / "study.yaml")
    ap.add_argument("--bench", default="synth-gta2cs")
    ap.add_argument("--min-seeds", type=int, default=5, help="common seeds needed (default 5)")
    args = ap.parse_args(argv)
    archives = sorted(args.archives.glob("seed*.tar.xz"))
    if not archives:
        sys.exit(f"nlcheck: {args.archives}: no seed*.tar.xz archives")
    with tempfile.TemporaryDirectory(prefix="halo-nlcheck-") as tmp:
        grid.gather(archives, args.grid, args.bench, Path(tmp), None, None)
        runs = pd.read_csv(Path(tmp) / "runs.csv")
    text, code = decide(runs, args.min_seeds)
    print(text)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
