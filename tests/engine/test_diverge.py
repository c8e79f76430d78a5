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


@pytest.mark.slow
def test_hyperbolic_head_survives_ten_times_the_default_lr(tiny_data, tmp_path, capsys, one_thread):
    """300 steps at 10x the synthetic default lr (1e-1 encoder, 1 for decoder + head): the run
    finishes, and the trained model's logits, ball points and radii are finite, inside the ball."""
    from halo.config import load_config, load_run
    from halo.engine.checkpoint import load_checkpoint, load_weights
    from halo.engine.restore import build_model
    from halo.engine.runtime import dataset

    synth_lr = load_config(TINY.parent.parent / "synth.yaml").train.lr
    sets = [
        f"data_root={tiny_data}",
        f"train.lr={10 * synth_lr}",
        "train.source_steps=300",
        "train.warmup_steps=10",
        "train.checkpoint_every=100",
    ]
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(TINY), *(a for s in sets for a in ("--set", s))]
    assert main([*args, "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    run = load_run(TINY, sets)
    cfg = run.config
    model = build_model(run)
    load_weights(model, load_checkpoint(out / "model.pt"))
    model.eval()
    images = torch.stack([dataset(run, "val")[i]["image"] for i in range(4)])
    with torch.no_grad():
        res = model(images)
    assert bool(res.logits.isfinite().all()) and bool(res.radius.isfinite().all())
    norms = res.embeddings.norm(dim=1)  # ball points [B, D, h, w]
    assert bool((norms < 1.0 / cfg.model.curvature**0.5).all())
    assert float(res.radius.max()) > 0
