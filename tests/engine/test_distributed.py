"""``halo pretrain`` unchanged under ``torchrun --nproc-per-node 2`` on the CPU (gloo):
DistributedDataParallel, each rank its half of every global batch, only rank 0 writes files."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from halo.cli import main
from halo.engine.checkpoint import load_checkpoint
from tests.engine.conftest import PYTHON, TINY_CONFIG, halo_env

STEPS = 4


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tiny_data, tmp_path, capsys):
    out = tmp_path / "src"
    common = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    cmd = [
        PYTHON,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--standalone",
        "-m",
        "halo.cli",
        "pretrain",
        *common,
        "--set",
        "train.batch_size=4",  # two images per rank (BatchNorm needs more than one)
        "--set",
        f"train.source_steps={STEPS}",
        "--set",
        "train.checkpoint_every=2",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=halo_env())
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    assert res.stdout.count(f"trained source to step {STEPS}") == 1  # rank 0 only

    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "model.pt",
        "provenance.json",
        "train_log.json",
    ]
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt["step"] == STEPS and ckpt["protocol"] == "source"
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the unwrapped model
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    log = json.loads((out / "train_log.json").read_text())
    assert log["step"] == STEPS

    # a valid checkpoint: evaluate accepts it (in one process)
    metrics = tmp_path / "metrics.json"
    code = main(["evaluate", *common, "--checkpoint", str(out / "model.pt"), "--out", str(metrics)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(metrics.read_text())
    assert result["step"] == STEPS and 0.0 <= result["miou"] <= 100.0
