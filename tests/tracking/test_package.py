"""halo.tracking is the only package importing mlflow, and importing it does not."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_tracking_imports_mlflow():
    pattern = re.compile(r"^\s*(import\s+mlflow|from\s+mlflow[\s.])", re.MULTILINE)
    package = ROOT / "halo" / "tracking"
    offenders = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "halo").rglob("*.py"))
        if package not in p.parents and pattern.search(p.read_text())
    ]
    assert offenders == []
    assert any(pattern.search(p.read_text()) for p in sorted(package.rglob("*.py")))


def test_importing_tracking_does_not_import_mlflow():
    code = (
        "import sys\n"
        "from halo import tracking\n"
        "assert tracking.log_run and tracking.find_runs and tracking.init_store\n"
        "assert 'mlflow' not in sys.modules, sorted(m for m in sys.modules if 'mlflow' in m)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
