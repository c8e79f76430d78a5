"""A killed `halo report` leaves its half-built folder; the next start of the command removes it
(and the rerun writes the whole report), wherever in the build it was killed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from halo.cli import main
from tests.engine.conftest import PYTHON, TINY_CONFIG, kill_when
from tests.report.conftest import BENCH, study


def _strays(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".tmp-*"))


@pytest.mark.parametrize("seed", range(2))
def test_a_report_killed_mid_build_leaves_nothing_after_the_rerun(tmp_path, seed):
    records = []
    for i, rec in enumerate(study()):
        path = tmp_path / "runs" / f"r{i}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(rec))
        records.append(str(path))
    out = tmp_path / "results" / BENCH
    argv = ["report", "--config", str(TINY_CONFIG), "--set", f"benchmark={BENCH}"]
    argv += ["--records", *records, "--panels", "0", "--no-track", "--out", str(out)]
    files = {"n": 0}

    def ready() -> bool:  # a random point of the build: after the k-th file of the temp folder
        temps = [p for p in (tmp_path / "results").glob(".tmp-*") if p.is_dir()]
        return bool(temps) and sum(1 for _ in temps[0].rglob("*")) >= files["n"]

    files["n"] = random.Random(seed).randint(0, 6)
    kill_when([PYTHON, "-m", "halo.cli", *argv], ready, "a half-built report")
    assert _strays(tmp_path / "results"), "the kill left no temp folder: nothing was tested"
    assert main(argv) == 0
    assert _strays(tmp_path / "results") == []
    assert (out / "summary.json").is_file() and (out / "miou_table.md").is_file()
