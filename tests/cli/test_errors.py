"""The one error path of every command (halo.cli): bad input exits 2, an environment fault exits 1,
each with one line naming the file or key; a failed command leaves nothing in its ``--out``; a
checkpoint that would run code is refused by every command that takes one, and its code never
runs."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from halo.cli import main
from tests.engine.conftest import TINY_CONFIG


def _halo(capsys, argv: list[str]) -> tuple[int, str]:
    """``halo ARGV --config tiny --quiet`` in-process: (exit code, stderr)."""
    capsys.readouterr()
    code = main([argv[0], "--config", str(TINY_CONFIG), *argv[1:], "--quiet"])
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1, f"expected one line on stderr, got:\n{err}"
    return err


# ---- fixtures: a tiny trained model, a round, a run record ---------------------------------


@pytest.fixture(scope="module")
def made(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """A source model (1 step), its round-1 folder, its metrics and run record."""
    root = tmp_path_factory.mktemp("made")
    common = ["--config", str(TINY_CONFIG), "--set", f"data_root={tiny_data}", "--quiet"]
    steps = ["--set", "train.source_steps=1"]
    assert main(["pretrain", *common, *steps, "--out", str(root / "source")]) == 0
    model = root / "source" / "model.pt"
    assert (
        main(
            [
                "acquire",
                *common,
                "--checkpoint",
                str(model),
                "--round",
                "1",
                "--out",
                str(root / "round1"),
            ]
        )
        == 0
    )
    assert (
        main(["evaluate", *common, "--checkpoint", str(model), "--out", str(root / "eval.json")])
        == 0
    )
    assert (
        main(
            [
                "summarize",
                *common,
                *steps,
                "--kind",
                "source",
                "--eval",
                str(root / "eval.json"),
                "--out",
                str(root / "metrics.json"),
            ]
        )
        == 0
    )
    return {
        "model": model,
        "round": root / "round1",
        "eval": root / "eval.json",
        "record": root / "metrics.json",
        "data": tiny_data,
    }


# ---- checkpoints that would run code ---------------------------------------------------------


class _Touch:
    """Unpickling this runs ``touch PATH`` (what a malicious checkpoint does)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _payload(kind: str, made: dict[str, Path], dest: Path, marker: Path) -> Path:
    if kind == "bare payload":
        dest.write_bytes(pickle.dumps(_Touch(marker)))
    else:  # a real halo checkpoint with one more entry that runs code
        ckpt = torch.load(made["model"], map_location="cpu", weights_only=True)
        ckpt["extra"] = _Touch(marker)
        torch.save(ckpt, dest)
    return dest


def _takes_checkpoint(command: str, ckpt: Path, made: dict[str, Path], out: Path) -> list[str]:
    data = ["--set", f"data_root={made['data']}"]
    return {
        "train --init": [
            "train",
            *data,
            "--round",
            "1",
            "--init",
            str(ckpt),
            "--masks",
            str(made["round"]),
            "--out",
            str(out),
        ],
        "acquire --checkpoint": [
            "acquire",
            *data,
            "--round",
            "1",
            "--checkpoint",
            str(ckpt),
            "--out",
            str(out),
        ],
        "evaluate --checkpoint": ["evaluate", *data, "--checkpoint", str(ckpt), "--out", str(out)],
        "report --panels-checkpoint": [
            "report",
            *data,
            "--records",
            str(made["record"]),
            "--panels-checkpoint",
            str(ckpt),
            "--no-track",
            "--out",
            str(out),
        ],
    }[command]


@pytest.mark.parametrize("kind", ["bare payload", "real checkpoint plus a payload entry"])
@pytest.mark.parametrize(
    "command",
    ["train --init", "acquire --checkpoint", "evaluate --checkpoint", "report --panels-checkpoint"],
)
def test_a_checkpoint_that_would_run_code_is_refused(made, tmp_path, capsys, kind, command):
    marker = tmp_path / f"ran-{uuid.uuid4().hex}"
    ckpt = _payload(kind, made, tmp_path / "evil.pt", marker)
    out = tmp_path / "out"
    code, err = _halo(capsys, _takes_checkpoint(command, ckpt, made, out))
    assert code == 2, err
    _one_line(err)
    assert str(ckpt) in err and "refused" in err and "system" in err
    assert not marker.exists(), "the checkpoint's code ran"
    assert not out.exists()


def test_halo_checkpoints_load_with_plain_data(made):
    from halo.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(made["model"])
    assert ckpt["step"] == 1 and isinstance(ckpt["model"], dict)


# ---- bad input ---------------------------------------------------------------------------------


def test_a_truncated_mask_is_named_before_training(made, tmp_path, capsys):
    masks = tmp_path / "round1"
    shutil.copytree(made["round"], masks)
    mask = sorted((masks / "masks").rglob("*.png"))[1]
    mask.write_bytes(mask.read_bytes()[:60])
    out = tmp_path / "out"
    argv = [
        "train",
        "--set",
        f"data_root={made['data']}",
        "--round",
        "1",
        "--init",
        str(made["model"]),
        "--masks",
        str(masks),
        "--out",
        str(out),
    ]
    code, err = _halo(capsys, argv)
    assert code == 2, err
    assert str(mask) in _one_line(err)
    assert not out.exists()


@pytest.mark.parametrize("command", ["evaluate --budget", "acquire --prev"])
def test_an_invalid_budget_json_is_named(made, tmp_path, capsys, command):
    prev = tmp_path / "round1"
    shutil.copytree(made["round"], prev)
    (prev / "budget.json").write_text('{"round": 1, oops}')
    out = tmp_path / "out"
    data = ["--set", f"data_root={made['data']}"]
    if command == "evaluate --budget":
        argv = [
            "evaluate",
            *data,
            "--checkpoint",
            str(made["model"]),
            "--budget",
            str(prev / "budget.json"),
            "--out",
            str(out),
        ]
    else:
        argv = [
            "acquire",
            *data,
            "--checkpoint",
            str(made["model"]),
            "--round",
            "2",
            "--prev",
            str(prev),
            "--out",
            str(out),
        ]
    code, err = _halo(capsys, argv)
    assert code == 2, err
    assert str(prev / "budget.json") in _one_line(err) and "not valid JSON" in err
    assert not out.exists()  # no config.yaml, no provenance


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("seed=-1", "seed"),
        ("seed=99999999999", "seed"),
        ("train.lr=.inf", "train.lr"),
        ("active.budget=.nan", "active.budget"),
    ],
)
def test_numbers_out_of_range_name_their_key(made, tmp_path, capsys, override, key):
    out = tmp_path / "out"
    code, err = _halo(
        capsys,
        ["pretrain", "--set", f"data_root={made['data']}", "--set", override, "--out", str(out)],
    )
    assert code == 2, err
    assert re.search(rf"\b{re.escape(key)}: expected", _one_line(err)), err
    assert not out.exists()


# ---- the environment: a read-only folder, a full disk --------------------------------------


@contextlib.contextmanager
def _mounted(path: Path, options: str):
    """A small tmpfs at ``path`` (root only); skips the test with the reason where mounting is
    impossible."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def _read_only(path: Path):
    if os.geteuid() != 0:  # permissions bind a normal user
        path.mkdir(parents=True)
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
    else:  # root ignores permissions: a read-only file system does not
        with _mounted(path, "ro,size=64k") as mounted:
            yield mounted


def test_a_read_only_output_folder_is_one_line_exit_1(made, tmp_path, capsys):
    with _read_only(tmp_path / "ro") as ro:
        out = ro / "run"
        code, err = _halo(
            capsys,
            [
                "pretrain",
                "--set",
                f"data_root={made['data']}",
                "--set",
                "train.source_steps=1",
                "--out",
                str(out),
            ],
        )
        assert code == 1, err
        assert str(out) in _one_line(err)
        assert re.search(r"Read-only file system|Permission denied", err), err
        assert not out.exists()


def _fill(folder: Path) -> None:
    """Leave no free byte on the file system of ``folder``."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


@pytest.mark.parametrize("command", ["pretrain", "evaluate"])
def test_a_full_disk_is_one_line_exit_1(made, tmp_path, capsys, command):
    with _mounted(tmp_path / "full", "size=256k") as full:
        data = ["--set", f"data_root={made['data']}"]
        if command == "pretrain":  # a checkpoint of 100 MB meets 256 kB
            out = full / "run"
            argv = ["pretrain", *data, "--set", "train.source_steps=1", "--out", str(out)]
        else:  # a few kB of metrics meet 0 bytes
            _fill(full)
            out = full / "metrics.json"
            argv = ["evaluate", *data, "--checkpoint", str(made["model"]), "--out", str(out)]
        code, err = _halo(capsys, argv)
        assert code == 1, err
        assert "No space left on device" in _one_line(err) and str(out) in err
        assert not out.exists()
        assert not [p.name for p in full.iterdir() if p.name != "filler"]
