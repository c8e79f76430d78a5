"""The paper config at the real sizes on CPU (issue #30): bench/gpu.sh with one step of each job
kind, ResNet-101 at 720x1280 / 640x1280 inputs (target files at Cityscapes' 1024x2048: the
pool is scored and evaluated at the label size), random weights. 7 min 16 s on an idle 2-core CPU
with the target at 640x1280; 35 min 33 s at 1024x2048 on the loaded one (docs/real-data.md):
`uv run pytest -m realsize` (.ci/run runs it after the suite)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.realsize
def test_gpu_script_runs_the_real_sizes_on_cpu_and_extrapolates(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), "1", "cpu", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for job in ("pretrain", "acquire", "train", "evaluate"):
        assert re.search(rf"^\s+{job}\s+wall\s+[\d.]+ s, peak \d+ MB$", out, re.MULTILINE), out
    assert "masks 1024x2048 (label files 1024x2048)" in out, out  # acquired at the label size
    assert "inputs: source 720x1280, target 640x1280;" in out, out  # the config's sizes
    assert re.search(r"s/step: source [\d.]+, active [\d.]+ \(batch 1\)", out), out
    assert re.search(r"paper grid .*device-hours; wall .* on four; disk", out), out
    assert not list(tmp_path.glob("halo-gpu-*")), "the script left its work folder"
