"""Determinism on CPU: two separate processes running the same tiny cycle (pretrain → acquire →
train → evaluate) with the same seed write byte-identical masks, label maps and weights, and
identical metrics; another seed gives other masks, weights and class radii."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from halo.engine.checkpoint import load_checkpoint
from tests.engine.conftest import PYTHON, TINY_CONFIG, halo_env

_CYCLE = """
import sys
from halo.cli import main
out, common = sys.argv[1], sys.argv[2:]
for command in (
    f"pretrain --out {out}/src",
    f"acquire --checkpoint {out}/src/model.pt --round 1 --out {out}/r1",
    f"train --round 1 --init {out}/src/model.pt --masks {out}/r1 --out {out}/r1",
    f"evaluate --checkpoint {out}/r1/model.pt --budget {out}/r1/budget.json --out {out}/eval.json",
):
    code = main(command.split() + common)
    if code:
        sys.exit(code)
"""


def _start(data: Path, out: Path, seed: int) -> subprocess.Popen:
    common = ["--config", str(TINY_CONFIG), "--set", f"data_root={data}", "--quiet"]
    common += ["--set", f"seed={seed}"]
    return subprocess.Popen(
        [PYTHON, "-c", _CYCLE, str(out), *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=halo_env(),
    )


def _outputs(out: Path) -> dict:
    """What a run produced: mask and label-map bytes, the budget, the metrics, the weights."""
    r1 = out / "r1"
    files = {
        str(p.relative_to(r1)): p.read_bytes()
        for p in sorted(r1.rglob("*"))
        if p.suffix in (".png", ".npz")
    }
    metrics = json.loads((out / "eval.json").read_text())
    metrics.pop("checkpoint", None)  # names the run's own folder
    budget = json.loads((r1 / "budget.json").read_text())
    return {
        "files": files,
        "budget": budget,
        "metrics": metrics,
        "weights": load_checkpoint(r1 / "model.pt")["model"],
    }


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(tiny_data, tmp_path):
    runs = {"a": 0, "b": 0, "c": 1}
    procs = {name: _start(tiny_data, tmp_path / name, seed) for name, seed in runs.items()}
    try:
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"run {name}: {err[-3000:]}"
    finally:  # a failed run does not leave the others running
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    a, b, c = (_outputs(tmp_path / name) for name in runs)

    assert len([k for k in a["files"] if k.startswith("masks/")]) == 4
    assert a["files"].keys() == b["files"].keys() == c["files"].keys()
    for name, data in a["files"].items():
        assert b["files"][name] == data, name  # byte for byte
    assert a["budget"] == b["budget"]
    assert a["metrics"] == b["metrics"]  # every number, to the last bit
    for key, value in a["weights"].items():
        assert torch.equal(b["weights"][key], value), key

    # another seed: another source model, other masks and other metrics
    masks = [k for k in a["files"] if k.startswith("masks/")]
    assert any(a["files"][k] != c["files"][k] for k in masks)
    # (a few steps leave both models predicting the same few classes, so compare the radii)
    assert a["metrics"]["class_mean_radius"] != c["metrics"]["class_mean_radius"]
    assert any(not torch.equal(c["weights"][k], v) for k, v in a["weights"].items())
