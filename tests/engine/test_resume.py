"""Killing ``halo pretrain`` with SIGKILL mid-training and starting it again finishes the schedule
from the last checkpoint, with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import torch

from halo.engine.checkpoint import load_checkpoint
from tests.engine.conftest import PYTHON, TINY_CONFIG, halo_env, kill_when

STEPS, EVERY = 40, 5


def _pretrain(data: Path, out: Path) -> list[str]:
    return [
        PYTHON,
        "-m",
        "halo.cli",
        "pretrain",
        "--config",
        str(TINY_CONFIG),
        "--set",
        f"data_root={data}",
        "--set",
        f"train.source_steps={STEPS}",
        "--set",
        f"train.checkpoint_every={EVERY}",
        "--quiet",
        "--out",
        str(out),
    ]


def _finish(cmd: list[str], timeout: float = 300) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=halo_env())
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.mark.kills  # (with the other SIGKILL tests: `uv run pytest -m kills`, .ci/run)
def test_sigkill_mid_training_then_resume(tiny_data, tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    cmd = _pretrain(tiny_data, killed)
    state = killed / "train_state.pt"

    code = kill_when(cmd, state.exists, "its first checkpoint")
    assert code == -signal.SIGKILL
    assert not (killed / "model.pt").exists()  # nothing published before the schedule is done
    at = load_checkpoint(state)["step"]  # a complete checkpoint survived the kill
    assert 0 < at < STEPS and at % EVERY == 0
    # a temporary file as a kill in the middle of writing a checkpoint would leave it
    (killed / ".tmp-train_state.pt.killed").write_bytes(b"half a checkpoint")

    out = _finish(cmd)
    resumed_from = int(out.split("resuming from")[1].split("at step")[1].split()[0])
    assert resumed_from >= at and resumed_from % EVERY == 0
    assert f"to step {STEPS}" in out
    final = load_checkpoint(killed / "model.pt")
    assert final["step"] == STEPS and final["protocol"] == "source"
    assert not state.exists()
    assert sorted(p.name for p in killed.iterdir() if p.name.startswith(".tmp-")) == []

    # the batches, flips and dropout masks of a step depend only on (seed, step): the resumed run
    # ends with exactly the weights (and optimiser state) of an uninterrupted one
    _finish(_pretrain(tiny_data, reference))
    whole = load_checkpoint(reference / "model.pt")
    assert whole["step"] == STEPS
    for key, value in whole["model"].items():
        assert torch.equal(final["model"][key], value), key
    # the loss curve spans the whole schedule once, as the uninterrupted run's does
    assert [c[0] for c in final["curve"]] == list(range(STEPS))
    assert [c[:3] for c in final["curve"]] == [c[:3] for c in whole["curve"]]
    times = [c[3] for c in final["curve"]]  # each step's end, in order (resumed steps later)
    assert times == sorted(times) and times[0] > 1e9
    for i, slot in whole["optimizer"]["state"].items():
        for name, value in slot.items():
            assert torch.equal(final["optimizer"]["state"][i][name], value), (i, name)
