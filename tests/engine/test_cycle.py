"""A whole tiny active-learning cycle through the command line, in-process:
pretrain → acquire → train → acquire → train → evaluate on the 32x64 synthetic benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from halo.acquisition.rounds import MaskedTarget, mask_path, read_mask
from halo.cli import main
from halo.config import load_run
from halo.engine.checkpoint import load_checkpoint, load_weights
from halo.engine.restore import build_model
from halo.engine.runtime import dataset
from tests.engine.conftest import TINY_CONFIG


def _halo(capsys, *argv: str) -> str:
    """Run ``halo ARGV`` in-process; its stdout (the command must succeed). A single argument is
    split on white space (the temporary paths here have none)."""
    if len(argv) == 1:
        argv = tuple(argv[0].split())
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, f"halo {' '.join(argv)} exited {code}: {captured.err[-2000:]}"
    return captured.out


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _stray_temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".tmp-*"))


def test_tiny_cycle_through_the_cli(tiny_data, tmp_path, capsys, one_thread):
    common = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    resolved = load_run(TINY_CONFIG, [f"data_root={tiny_data}"])
    cfg = resolved.config
    rounds, per = cfg.active.rounds, cfg.train.round_steps
    assert rounds == 2
    src, run = tmp_path / "src", tmp_path / "halo"
    r1, r2 = run / "round1", run / "round2"

    def halo(command: str) -> str:
        return _halo(capsys, *command.split(), *common)

    out = halo(f"pretrain --out {src}")
    assert f"to step {cfg.train.source_steps}" in out
    halo(f"acquire --checkpoint {src}/model.pt --round 1 --out {r1}")
    halo(f"train --round 1 --init {src}/model.pt --masks {r1} --out {r1}")
    halo(f"acquire --checkpoint {r1}/model.pt --round 2 --prev {r1} --out {r2}")
    halo(f"train --round 2 --init {r1}/model.pt --masks {r2} --out {r2}")
    out = halo(
        f"evaluate --checkpoint {r2}/model.pt --budget {r2}/budget.json --out {run}/metrics.json"
    )
    assert "mIoU" in out

    # ---- files: every output in place, no leftovers of the atomic writes or of resumption
    target = dataset(resolved, "target")
    ids = list(target.ids)
    assert len(ids) == 4
    for folder in (src, r1, r2):
        for name in ("model.pt", "config.yaml", "provenance.json", "train_log.json"):
            assert (folder / name).is_file(), folder / name
        assert not (folder / "train_state.pt").exists()
    for folder in (r1, r2):
        for name in ("blocked.npz", "labelled.npz", "budget.json"):
            assert (folder / name).is_file(), folder / name
        for image_id in ids:
            assert mask_path(folder, image_id).is_file(), mask_path(folder, image_id)
    assert (run / "metrics.json").is_file()
    assert _stray_temp_files(tmp_path) == []
    provenance = json.loads((r2 / "provenance.json").read_text())
    assert provenance["command"] == "halo train" and provenance["protocol"] == "active"

    # ---- checkpoints: one continuous schedule over the rounds
    ck = load_checkpoint(src / "model.pt")
    assert ck["step"] == cfg.train.source_steps and ck["protocol"] == "source"
    for r, folder in ((1, r1), (2, r2)):
        ck = load_checkpoint(folder / "model.pt")
        assert ck["step"] == r * per, (folder, ck["step"])
        assert ck["protocol"] == "active" and ck["round"] == r
        assert ck["total_steps"] == rounds * per
        assert ck["optimizer"] is not None
        assert ck["backbone"] == cfg.backbone and ck["num_classes"] == 19

    # ---- budget: cumulative = sum over rounds; masks grow; labels are the ground truth
    b1 = json.loads((r1 / "budget.json").read_text())
    b2 = json.loads((r2 / "budget.json").read_text())
    pixels = len(ids) * 32 * 64
    assert b1["round"] == 1 and b2["round"] == 2
    assert b1["pixels_total"] == b2["pixels_total"] == pixels
    assert b1["images"] == b2["images"] == len(ids)
    assert b1["round_budget"] == b2["round_budget"] == pytest.approx(cfg.active.budget / rounds)
    assert b1["pixels_labelled_round"] > 0 and b2["pixels_labelled_round"] > 0
    assert b1["pixels_labelled_cumulative"] == b1["pixels_labelled_round"]
    assert (
        b2["pixels_labelled_cumulative"]
        == b1["pixels_labelled_cumulative"] + b2["pixels_labelled_round"]
        == sum(h["pixels_labelled"] for h in b2["history"])
    )
    assert [h["round"] for h in b2["history"]] == [1, 2]
    assert b2["history"][0] == b1["history"][0]
    assert b2["fraction_cumulative"] == pytest.approx(b2["pixels_labelled_cumulative"] / pixels)
    # regions of (2a+1)^2 pixels: the budget is met up to one region per image and round
    region = (2 * b2["active_radius"] + 1) ** 2
    slack = rounds * len(ids) * region / pixels
    assert abs(b2["fraction_cumulative"] - cfg.active.budget) <= slack

    lab1, lab2 = _npz(r1 / "labelled.npz"), _npz(r2 / "labelled.npz")
    blk1, blk2 = _npz(r1 / "blocked.npz"), _npz(r2 / "blocked.npz")
    assert set(lab1) == set(lab2) == set(blk1) == set(blk2) == set(ids)
    assert sum(int(m.sum()) for m in lab1.values()) == b1["pixels_labelled_cumulative"]
    assert sum(int(m.sum()) for m in lab2.values()) == b2["pixels_labelled_cumulative"]
    for i in range(len(target)):
        item = target[i]
        image_id, gt = item["id"], item["label"].numpy()
        m1, m2 = read_mask(mask_path(r1, image_id)), read_mask(mask_path(r2, image_id))
        assert m1.shape == m2.shape == gt.shape == (32, 64)
        assert not (lab1[image_id] & ~lab2[image_id]).any(), "round 2 dropped labelled pixels"
        assert (lab1[image_id] & ~blk2[image_id]).sum() == 0, "labelled pixels not blocked"
        for mask, lab in ((m1, lab1[image_id]), (m2, lab2[image_id])):
            # the ground truth where labelled, 255 elsewhere (and where the gt itself is 255)
            np.testing.assert_array_equal(mask, np.where(lab, gt, 255))
        known = m1 != 255
        np.testing.assert_array_equal(m2[known], m1[known])  # round 2 ⊇ round 1

    # ---- metrics
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (
        "miou",
        "per_class_iou",
        "class_names",
        "class_pixel_share",
        "checkpoint",
        "step",
        "protocol",
        "round",
        "budget",
    ):
        assert key in metrics, key
    assert 0.0 <= metrics["miou"] <= 100.0
    assert metrics["step"] == rounds * per and metrics["round"] == 2
    assert metrics["protocol"] == "active" and metrics["budget"] == b2
    assert len(metrics["class_names"]) == len(metrics["per_class_iou"]) == 19
    ious = [v for v in metrics["per_class_iou"].values() if v is not None]
    assert ious and all(0.0 <= v <= 100.0 for v in ious)
    assert metrics["miou"] == pytest.approx(float(np.mean(ious)), abs=1e-6)

    # ---- rerunning a finished job does nothing and leaves its model untouched
    for folder, command in (
        (src, f"pretrain --out {src}"),
        (r2, f"train --round 2 --init {r1}/model.pt --masks {r2} --out {r2}"),
        # the same init checkpoint typed as a relative path is the same run
        (r2, f"train --round 2 --init {os.path.relpath(r1 / 'model.pt')} --masks {r2} --out {r2}"),
    ):
        before = (folder / "model.pt").stat()
        out = halo(command)
        assert "nothing to do" in out
        after = (folder / "model.pt").stat()
        assert (after.st_mtime_ns, after.st_ino, after.st_size) == (
            before.st_mtime_ns,
            before.st_ino,
            before.st_size,
        )
        assert not (folder / "train_state.pt").exists()


def test_rounds_are_one_continuous_schedule(tiny_data, tmp_path, capsys, one_thread):
    """Round 2 continues round 1's weights, optimiser and schedule: two CLI rounds (with the same
    masks) give exactly the weights of one uninterrupted active run over both rounds' steps."""
    from halo.engine import train as T

    common = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    run = load_run(TINY_CONFIG, [f"data_root={tiny_data}"])
    cfg = run.config
    src, masks = tmp_path / "src", tmp_path / "acq"

    def halo(command: str) -> str:
        return _halo(capsys, *command.split(), *common)

    halo(f"pretrain --out {src}")
    halo(f"acquire --checkpoint {src}/model.pt --round 1 --out {masks}")
    for r, init in ((1, src), (2, tmp_path / "r1")):
        halo(f"train --round {r} --init {init}/model.pt --masks {masks} --out {tmp_path}/r{r}")
    chained = load_checkpoint(tmp_path / "r2" / "model.pt")

    per, rounds = cfg.train.round_steps, cfg.active.rounds
    torch.manual_seed(cfg.seed)
    model = build_model(run)
    load_weights(model, load_checkpoint(src / "model.pt"))
    T.train(
        model,
        protocol="active",
        schedule=T.Schedule(0, rounds * per, rounds * per),
        cfg=cfg.train,
        seed=cfg.seed,
        checkpoint=tmp_path / "whole.pt",
        source=dataset(run, "source"),
        target=MaskedTarget(dataset(run, "target"), masks),
        progress=False,
    )
    whole = load_checkpoint(tmp_path / "whole.pt")
    assert chained["step"] == whole["step"] == rounds * per
    for key, value in whole["model"].items():
        assert torch.equal(chained["model"][key], value), key
