"""The halo command line (sub-commands are tested end to end by their own modules' tests)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from halo.cli import main
from halo.data import build_dataset
from tests.engine.conftest import TINY_CONFIG


def test_synth_one_style(tmp_path, capsys):
    out = tmp_path / "cs"
    code = main(
        [
            "synth",
            "--style",
            "cityscapes",
            "--split",
            "val",
            "--count",
            "2",
            "--size",
            "32x64",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    ds = build_dataset("cityscapes", out, "val")
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 32, 64)
    assert "2 images" in capsys.readouterr().out


def test_synth_default_benchmark_layout(tmp_path):
    code = main(["synth", "--count", "1", "--size", "32x64", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    assert len(build_dataset("gta5", tmp_path / "gta5", "train")) == 1
    assert len(build_dataset("synthia", tmp_path / "synthia", "train")) == 1
    assert len(build_dataset("cityscapes", tmp_path / "cityscapes", "val")) == 1
    assert len(build_dataset("acdc", tmp_path / "acdc", "val")) == 4  # one per condition


@pytest.mark.parametrize("size", ["32", "8x8", "axb"])
def test_bad_size_is_a_usage_error(tmp_path, size, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--size", size, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "size" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_console_script_help():
    script = Path(sys.executable).parent / "halo"  # installed by the project's entry point
    res = subprocess.run(
        [str(script), "synth", "--help"], capture_output=True, text=True, check=True
    )
    assert "--style" in res.stdout and "GTAV" in res.stdout


def test_check_data_verify_names_a_corrupt_png(tmp_path, capsys):
    root = tmp_path / "synth"
    assert main(["synth", "--count", "2", "--size", "32x64", "--out", str(root), "--quiet"]) == 0
    common = [
        "--set",
        f"data_root={root}",
        "--set",
        "source_size=[32, 64]",
        "--set",
        "target_size=[32, 64]",
    ]
    assert main(["check-data", *common, "--verify"]) == 0
    assert "decoded" in capsys.readouterr().out
    image = sorted((root / "cityscapes" / "leftImg8bit" / "val").rglob("*.png"))[0]
    image.write_bytes(image.read_bytes()[:80])  # truncated
    assert main(["check-data", *common]) == 0  # folders only: cheap, cannot see it
    capsys.readouterr()
    assert main(["check-data", *common, "--verify"]) == 2
    assert image.name in capsys.readouterr().err


def test_check_data_names_missing_folders(tmp_path, capsys):
    code = main(["check-data", "--set", "benchmark=gta2cs", "--set", f"data_root={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "gta5") in err and "download.visinf" in err
    assert not any(tmp_path.iterdir())


# ---- bad input: a clear error before any work, exit 2, nothing written ---------------------


def _corrupt(root: Path, fault: str) -> None:
    """Break the copied tiny benchmark under ``root`` (GTAV-style source) in one way."""
    gta = root / "gta5"
    if fault == "missing root":
        shutil.rmtree(root)
    elif fault == "missing split":
        (gta / "train.txt").unlink()
    elif fault == "image without label":
        (gta / "labels" / "00002.png").unlink()
    elif fault == "truncated png":
        path = gta / "images" / "00003.png"
        path.write_bytes(path.read_bytes()[:100])
    elif fault == "not a png":
        (gta / "labels" / "00004.png").write_bytes(b"GIF89a not a png at all")
    elif fault == "unknown label id":
        label = np.array(Image.open(gta / "labels" / "00001.png"))
        label[0, :5] = 200  # GTAV uses the Cityscapes ids 0..33
        Image.fromarray(label).save(gta / "labels" / "00001.png")
    elif fault == "size mismatch":
        label = np.array(Image.open(gta / "labels" / "00002.png"))
        Image.fromarray(label[:, :48]).save(gta / "labels" / "00002.png")
    elif fault == "empty split":
        (gta / "train.txt").write_text("\n")
    else:
        raise AssertionError(fault)


DATA_FAULTS = {
    "missing root": r"data root .*/data/gta5 does not exist",
    "missing split": r"missing file list .*train\.txt",
    "image without label": r"00002\.png has no label: expected .*labels/00002\.png",
    "truncated png": r"cannot read image .*images/00003\.png",
    "not a png": r"cannot read label .*labels/00004\.png",
    "unknown label id": r"labels/00001\.png: ids \[200\] are not in the gta5 label table",
    "size mismatch": r"size mismatch: image .*00002\.png is 64x32 but label .*00002\.png is 48x32",
    "empty split": r"file list .*train\.txt is empty",
}


@pytest.mark.parametrize("fault", list(DATA_FAULTS))
def test_bad_data_fails_before_any_work(tiny_data, tmp_path, capsys, fault):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    _corrupt(root, fault)
    _refused(
        capsys, tmp_path / "run", ["pretrain", "--set", f"data_root={root}"], DATA_FAULTS[fault]
    )


def _refused(capsys, out: Path, argv: list[str], pattern: str) -> None:
    """``halo ARGV --out OUT`` (tiny config) exits 2 with one line matching ``pattern`` on
    stderr, and writes nothing."""
    code = main([argv[0], "--config", str(TINY_CONFIG), *argv[1:], "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.search(pattern, err), err
    assert err.count("\n") == 1  # one line, no traceback
    assert not out.exists()  # nothing written


CONFIG_FAULTS = {
    "benchmark=gta2city": r"benchmark: unknown name 'gta2city'; valid: synth-gta2cs, .*, cs2acdc",
    "backbone=resnet18": r"backbone: unknown name 'resnet18'; valid: .*deeplabv3plus-r18",
    "method=coreset": r"method: unknown strategy 'coreset'; valid names: .*halo.*random.*ripu",
    "model.head=spherical": r"model\.head: unknown name 'spherical'; valid: euclidean, hyperbolic",
    "active.budget=0": r"active\.budget: expected a fraction in \(0, 1\], got 0\.0",
    "active.budget=1.5": r"active\.budget: expected a fraction in \(0, 1\], got 1\.5",
    "active.budget=-0.1": r"active\.budget: expected a fraction in \(0, 1\], got -0\.1",
    "active.rounds=0": r"active\.rounds: expected >= 1, got 0",
    "source_size=[30, 64]": r"source_size \[30, 64\] .*multiples of 16 \(the encoder's output",
    "target_size=[32, 60]": r"target_size \[32, 60\] .*multiples of 16 \(the encoder's output",
    "train.learning_rate=0.1": r"unknown config key 'train\.learning_rate'; valid keys of train: .*lr",
    "lr=0.1": r"unknown config key 'lr'; valid keys: benchmark, ",
}


@pytest.mark.parametrize("override", list(CONFIG_FAULTS))
def test_bad_config_fails_before_any_work(tiny_data, tmp_path, capsys, override):
    argv = ["pretrain", "--set", f"data_root={tiny_data}", "--set", override]
    _refused(capsys, tmp_path / "run", argv, CONFIG_FAULTS[override])


@pytest.fixture(scope="module")
def r18_checkpoint(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("r18") / "source"
    argv = ["pretrain", "--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}"]
    assert main([*argv, "--set", "train.source_steps=1", "--quiet", "--out", str(out)]) == 0
    return out / "model.pt"


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("backbone=deeplabv3plus-mbv2", r"model\.pt was trained for .*r18.*needs .*-mbv2"),
        ("benchmark=synth-synthia2cs", r"model\.pt was trained for .*: 19}.*needs .*: 16}"),
        # RIPU's Euclidean head cannot take the weights of HALO's hyperbolic one
        ("method=ripu", r"model\.pt was trained for .*'hyperbolic-hfr'.*needs .*'euclidean"),
    ],
)
def test_foreign_checkpoint_is_refused(
    tiny_data, r18_checkpoint, tmp_path, capsys, override, match
):
    argv = ["acquire", "--set", f"data_root={tiny_data}", "--set", override]
    argv += ["--checkpoint", str(r18_checkpoint), "--round", "1"]
    _refused(capsys, tmp_path / "round1", argv, match)


def test_eval_out_writes_what_halo_evaluate_writes(tiny_data, r18_checkpoint, tmp_path, capsys):
    """--eval-out of a training job is halo evaluate's file, byte for byte; a completed run
    asked again only evaluates; every successful command ends with its timing line."""
    base = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    out = tmp_path / "source"
    argv = ["pretrain", *base, "--set", "train.source_steps=1", "--out", str(out)]
    assert main([*argv, "--eval-out", str(out / "eval.json")]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("halo timing: command=pretrain startup=")
    assert main(["evaluate", *base, "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "e.json")]) == 0  # fmt: skip
    assert (out / "eval.json").read_bytes() == (tmp_path / "e.json").read_bytes()
    (out / "eval.json").unlink()
    assert main([*argv, "--eval-out", str(out / "eval.json")]) == 0
    assert "is complete" in capsys.readouterr().out
    assert (out / "eval.json").read_bytes() == (tmp_path / "e.json").read_bytes()


def test_evaluate_on_the_held_out_source_split(tiny_data, r18_checkpoint, tmp_path, capsys):
    """--on source scores the source dataset's val split (in-domain), not its training split and
    not the target; a source without a val split is one line naming what is missing."""
    import torch

    from halo.config import load_run
    from halo.data import build_dataset
    from halo.engine.evaluate import evaluate
    from halo.engine.restore import model_from_checkpoint

    base = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    ck = ["--checkpoint", str(r18_checkpoint)]
    assert main(["evaluate", *base, *ck, "--on", "source", "--out", str(tmp_path / "s.json")]) == 0
    assert main(["evaluate", *base, *ck, "--out", str(tmp_path / "t.json")]) == 0
    src, tgt = (json.loads((tmp_path / f).read_text()) for f in ("s.json", "t.json"))
    assert (src["on"], tgt["on"]) == ("source", "target")
    run = load_run(TINY_CONFIG, [f"data_root={tiny_data}"])
    model, _ = model_from_checkpoint(run, r18_checkpoint, torch.device("cpu"))
    held_out = build_dataset("gta5", tiny_data / "gta5", "val", run.source_size)
    want = evaluate(model, held_out, batch_size=run.config.eval.batch_size, progress=False)
    assert src["miou"] == pytest.approx(100 * want.miou)
    assert src["class_pixel_share"] != tgt["class_pixel_share"]

    bare = tmp_path / "bare"
    shutil.copytree(tiny_data, bare)
    (bare / "gta5" / "val.txt").unlink()
    argv = ["evaluate", "--set", f"data_root={bare}", *ck, "--on", "source"]
    capsys.readouterr()
    _refused(capsys, tmp_path / "none.json", argv, r"val")


def test_a_failed_evaluation_keeps_the_trained_model(tiny_data, tmp_path, capsys):
    """--eval-out failing (here: its path is a folder) keeps model.pt and the final training
    state; with model.pt deleted (as Snakemake deletes a failed job's outputs) a rerun trains no
    step again, publishes the same weights and evaluates."""
    import torch

    base = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    out = tmp_path / "source"
    argv = ["pretrain", *base, "--set", "train.source_steps=2", "--out", str(out)]
    (tmp_path / "is-a-folder").mkdir()
    assert main([*argv, "--eval-out", str(tmp_path / "is-a-folder")]) == 1
    assert (out / "model.pt").is_file() and (out / "train_state.pt").is_file()
    first = torch.load(out / "model.pt", weights_only=True)["model"]
    (out / "model.pt").unlink()
    capsys.readouterr()
    assert main([*argv, "--eval-out", str(out / "eval.json")]) == 0
    assert "resuming from" in capsys.readouterr().out
    again = torch.load(out / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert (out / "eval.json").is_file() and not (out / "train_state.pt").exists()


def test_snapshots_keep_the_model_through_training(tiny_data, tmp_path):
    """--snapshots N writes the model every N steps (evaluable by halo evaluate) and changes
    nothing about the run: the same final weights, and a run without it is complete."""
    import torch

    from halo.engine.checkpoint import load_checkpoint

    base = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    base += ["--set", "train.source_steps=4"]
    snap, plain = tmp_path / "snap", tmp_path / "plain"
    assert main(["pretrain", *base, "--snapshots", "2", "--out", str(snap)]) == 0
    assert main(["pretrain", *base, "--out", str(plain)]) == 0
    assert sorted(p.name for p in (snap / "snapshots").iterdir()) == ["step000002.pt"]
    a, b = load_checkpoint(snap / "model.pt"), load_checkpoint(plain / "model.pt")
    assert a["fingerprint"] == b["fingerprint"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    mid = load_checkpoint(snap / "snapshots" / "step000002.pt")
    assert mid["step"] == 2 and mid["optimizer"] is None
    assert any(not torch.equal(v, a["model"][k]) for k, v in mid["model"].items())
    out = tmp_path / "mid.json"
    ck = str(snap / "snapshots" / "step000002.pt")
    assert main(["evaluate", *base, "--checkpoint", ck, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["step"] == 2


@pytest.mark.parametrize("bench", ["gta2cs", "synthia2cs", "cs2acdc"])
def test_dry_run_prints_the_official_recipe_and_touches_nothing(tmp_path, capsys, bench):
    """The paper configs resolve to the official recipe (docs/real-data.md, "Fidelity"); a dry
    run needs no data and writes nothing, not even --out."""
    import yaml

    out = tmp_path / "out"
    argv = ["pretrain", "--config", f"configs/benchmarks/{bench}.yaml", "--out", str(out)]
    assert main([*argv, "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    t, e = cfg["train"], cfg["eval"]
    assert (t["negative_learning"], t["warmup_steps"], t["warmup_start"]) == (1.0, 600, 0.01)
    assert t["warmup_shift"] == 0  # step t at 0.01 + 0.99 t/600: torch's LinearLR
    assert (t["schedule"], t["poly_power"], t["hflip"], t["amp"]) == ("poly", 0.5, False, False)
    assert t["decay_steps"] == 15000  # official: 60k / 4 GPUs; the last 375 steps at lr 0
    assert e["flip"] is True and cfg["model"]["frozen_bn"] is True
    assert cfg["resize"] == "bicubic" and e["label_size"] and cfg["active"]["label_size"]
    assert t["local_consistency"] == 0.0  # the HALO run; RIPU's own below
    # GTAV and SYNTHIA: the official class-balanced source list; Cityscapes: its file list
    assert t["source_order"] == ("uniform" if bench == "cs2acdc" else "balanced")
    starts = [s[0] for s in cfg["resolved"]["round_spans"]]
    assert starts == [0, 3843, 7687, 10250, 12812]  # the official selection steps
    assert cfg["resolved"]["round_spans"][-1][1:] == [15375, 15375]
    assert cfg["resolved"]["model_options"]["frozen_bn"] is True
    assert cfg["resolved"]["model_options"]["decoder"] == "official"  # the official DeepLabV3+
    assert t["optimizer"] == "riemannian-sgd"  # geoopt, as official for hyperbolic models
    assert main([*argv, "--set", "method=ripu", "--dry-run"]) == 0
    ripu = yaml.safe_load(capsys.readouterr().out)["train"]
    assert ripu["local_consistency"] == (0.1 if bench == "gta2cs" else 0.0)  # gtav/ripu.yaml
    assert ripu["optimizer"] == "sgd"  # Euclidean: torch SGD
    assert not out.exists()


def test_dry_run_prints_the_official_segformer_recipe(tmp_path, capsys):
    """configs/benchmarks/cs2acdc-segformer.yaml resolves to the acdc branch's SegFormer-B4 run
    (source_target_acdc_segformer.yaml, core/models/segformer.py, core/utils/optim.py)."""
    import yaml

    argv = ["pretrain", "--config", "configs/benchmarks/cs2acdc-segformer.yaml"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    t, m, r = cfg["train"], cfg["model"], cfg["resolved"]
    assert (cfg["backbone"], m["frozen_bn"], m["hfr"]) == ("segformer-b4", False, False)
    assert r["model_options"]["decoder"] == "official" and r["model_options"]["embed_dim"] == 768
    assert (t["optimizer"], t["lr"], t["weight_decay"], t["head_lr_mult"]) == (
        "adamw",
        6e-5,
        0.01,
        10.0,
    )
    assert (t["warmup_steps"], t["warmup_start"], t["warmup_shift"]) == (1000, 0.01, 0)
    assert (t["poly_power"], t["decay_steps"], t["negative_learning"]) == (0.5, 7500, 1.0)
    assert [s[0] for s in r["round_spans"]] == [0, 1952, 3904, 5206, 6507]
    assert r["round_spans"][-1][1:] == [7810, 7810]


def test_the_label_size_recipe_runs_a_round_end_to_end(tiny_data, tmp_path):
    """The paper's switches on the tiny data, images at half the label files' size: the source
    batches come from the class-balanced list, the pool is scored, budgeted and masked at the
    label size (32x64), the round trains on its masks resized to the input size (16x32) with
    RIPU's consistency loss, and evaluates at the label size."""
    from halo.acquisition.rounds import read_mask

    sets = [f"data_root={tiny_data}", "target_size=[16, 32]", "resize=bicubic", "method=ripu"]
    sets += ["active.label_size=true", "eval.label_size=true", "train.local_consistency=0.1"]
    sets += ["train.source_order=balanced"]
    base = ["--config", str(TINY_CONFIG), "--quiet", *[a for x in sets for a in ("--set", x)]]
    src, r1 = tmp_path / "src", tmp_path / "round1"
    assert main(["pretrain", *base, "--out", str(src)]) == 0
    ckpt = str(src / "model.pt")
    assert main(["acquire", *base, "--checkpoint", ckpt, "--round", "1", "--out", str(r1)]) == 0
    masks = sorted((r1 / "masks").rglob("*.png"))
    assert len(masks) == 4 and {read_mask(m).shape for m in masks} == {(32, 64)}
    budget = json.loads((r1 / "budget.json").read_text())
    assert budget["pixels_total"] == 4 * 32 * 64
    assert 0 < budget["pixels_labelled_cumulative"] <= 4 * 32 * 64 * 0.05 / 2
    out = tmp_path / "model"
    argv = ["train", *base, "--round", "1", "--init", ckpt, "--masks", str(r1), "--out", str(out)]
    assert main([*argv, "--eval-out", str(tmp_path / "eval.json")]) == 0
    log = json.loads((out / "train_log.json").read_text())
    assert all("consistency" in entry for entry in log["history"])
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["budget"]["pixels_total"] == 4 * 32 * 64 and metrics["miou"] is not None


def test_the_decay_horizon_leaves_the_rate_at_zero_after_it(tiny_data, tmp_path, capsys):
    """train.decay_steps (the official poly horizon): the rate follows the warm-up and the decay
    to 0 at the horizon, and stays 0 for the run's remaining steps."""
    out = tmp_path / "src"
    base = ["--config", str(TINY_CONFIG), "--quiet", "--set", f"data_root={tiny_data}"]
    sets = ["--set", "train.source_steps=5", "--set", "train.decay_steps=3"]
    sets += ["--set", "train.poly_power=1.0", "--set", "train.warmup_steps=1"]
    assert main(["pretrain", *base, *sets, "--out", str(out)]) == 0
    curve = json.loads((out / "train_log.json").read_text())["curve"]
    lr = 1e-3  # tiny.yaml's train.lr
    assert [round(c[2] / lr, 6) for c in curve] == [1.0, 1.0, 0.5, 0.0, 0.0]
    assert main(["pretrain", *base, "--set", "train.decay_steps=1", "--out", str(out)]) == 2
    assert "train.decay_steps: expected more than warmup_steps" in capsys.readouterr().err
