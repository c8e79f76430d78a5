"""The halo command line (sub-commands are tested end to end by their own modules' tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from halo.cli import main
from halo.data import build_dataset


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
