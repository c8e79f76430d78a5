"""Numerical safety: a run whose loss or weights become non-finite stops with a clear message,
a distinct exit code, no model.pt, and only finite checkpoints left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from halo.cli import main

TINY = Path(__file__).resolve().parents[2] / "configs" / "test" / "tiny.yaml"


@pytest.mark.parametrize("every", [1, 3])
def test_divergence_stops_and_keeps_only_good_checkpoints(
    tiny_data, tmp_path, capsys, one_thread, every
):
    out = tmp_path / "run"
    code = main(
        [
            "pretrain",
            "--config",
            str(TINY),
            "--set",
            f"data_root={tiny_data}",
            "--set",
            "train.lr=1e8",
            "--set",
            "train.source_steps=12",
            "--set",
            f"train.checkpoint_every={every}",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3, err
    assert "non-finite" in err or "loss became" in err
    assert "Lower train.lr" in err
    assert not (out / "model.pt").exists()
    state = out / "train_state.pt"
    if state.exists():
        ckpt = torch.load(state, map_location="cpu", weights_only=False)
        tensors = [t for t in ckpt["model"].values() if t.is_floating_point()]
        assert all(bool(t.isfinite().all()) for t in tensors)
        assert "is kept" in err
    else:
        assert "no checkpoint had been written yet" in err
