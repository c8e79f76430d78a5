"""The workflow parses light: a dry run of the default target plans the whole grid without
importing torch (docs/design.md, section "Import weight")."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_of_the_default_target_imports_no_torch(tmp_path: Path) -> None:
    shutil.copy2(ROOT / "Snakefile", tmp_path / "Snakefile")
    for name in ("workflow", "profiles", "configs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "2",
            "results/synth-gta2cs/",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    imported = {
        m.group(1).strip()
        for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|(.*)$", res.stderr, flags=re.M)
    }
    assert "halo.config" in {m.strip() for m in imported}  # the grid was resolved by halo
    heavy = sorted(
        m for m in imported if m.split(".")[0] in ("torch", "segmentation_models_pytorch")
    )
    assert not heavy, f"the dry run imported {heavy[:5]}"
    # the top-level Snakefile was found, and the local profile beside it
    assert "Using workflow specific profile profiles/default" in res.stdout + res.stderr
    jobs = re.search(r"^total\s+(\d+)$", res.stdout, flags=re.M)
    assert jobs and int(jobs.group(1)) == 44, res.stdout[-2000:]
