"""``halo acquire`` as a process: killed with SIGKILL mid-pool it leaves no completed round and the
rerun writes exactly the masks of an uninterrupted run; its peak memory does not grow with the
size of the target pool (the pool's logits are never held at once)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from halo.acquisition.rounds import round_complete
from halo.cli import main
from tests.engine.conftest import PYTHON, TINY_CONFIG, halo_env, kill_when

SIZE = (64, 128)
POOL = 128  # target images of the large pool
SMALL = 16  # ... and of the small one (the same first 16 images: the generator is count-stable)


def _synth(root: Path, style: str, split: str, count: int) -> None:
    folder = {"gta": "gta5", "cityscapes": "cityscapes"}[style]
    argv = ["synth", "--style", style, "--split", split, "--count", str(count)]
    argv += ["--size", f"{SIZE[0]}x{SIZE[1]}", "--out", str(root / folder), "--quiet"]
    assert main(argv) == 0


def _sets(root: Path) -> list[str]:
    return [
        f"data_root={root}",
        f"source_size={list(SIZE)}",
        f"target_size={list(SIZE)}",
        "train.source_steps=1",
    ]


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> dict:
    """Two data roots at 64x128 (a 16- and a 128-image target pool) and a checkpoint for them."""
    base = tmp_path_factory.mktemp("acquire_cli")
    roots = {}
    for count in (SMALL, POOL):
        root = base / f"pool{count}"
        _synth(root, "gta", "train", 4)
        _synth(root, "cityscapes", "train", count)
        roots[count] = root
    ckpt_dir = base / "source"
    argv = ["pretrain", "--config", str(TINY_CONFIG), "--quiet", "--out", str(ckpt_dir)]
    for s in _sets(roots[SMALL]):
        argv += ["--set", s]
    assert main(argv) == 0
    return {"roots": roots, "checkpoint": ckpt_dir / "model.pt"}


def _acquire(pools: dict, count: int, out: Path, *extra: str) -> list[str]:
    cmd = [PYTHON, "-m", "halo.cli", "acquire", "--config", str(TINY_CONFIG), "--quiet"]
    for s in [*_sets(pools["roots"][count]), *extra]:
        cmd += ["--set", s]
    return [*cmd, "--checkpoint", str(pools["checkpoint"]), "--round", "1", "--out", str(out)]


def _files(folder: Path) -> dict[str, bytes]:
    """The round's results below ``folder`` (relative path → bytes): masks, label maps and the
    budget (not the config and provenance, which name the folder and the batch size)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (p.suffix in (".png", ".npz") or p.name == "budget.json")
    }


_PEAK = """
import resource, sys
from halo.cli import main
code = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def _peak_rss_mb(cmd: list[str]) -> float:
    argv = [PYTHON, "-c", _PEAK, *cmd[cmd.index("halo.cli") + 1 :]]
    res = subprocess.run(argv, capture_output=True, text=True, env=halo_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    kb = int(res.stdout.split("PEAK_KB")[1].split()[0])
    return kb / 1024


@pytest.fixture(scope="module")
def reference(pools, tmp_path_factory) -> dict:
    """An uninterrupted ``halo acquire`` over the large pool: its folder and peak RSS (MB)."""
    out = tmp_path_factory.mktemp("reference") / "round1"
    return {"out": out, "peak_mb": _peak_rss_mb(_acquire(pools, POOL, out))}


@pytest.mark.kills  # (with the other SIGKILL tests: `uv run pytest -m kills`, .ci/run)
def test_sigkill_mid_pool_then_rerun(pools, reference, tmp_path):
    killed = tmp_path / "killed"
    # one image per batch: the pool takes long enough to be killed in the middle of it
    cmd = _acquire(pools, POOL, killed, "active.batch_size=1")
    masks = killed / "masks"

    def three_masks() -> bool:
        return masks.is_dir() and len(list(masks.rglob("*.png"))) >= 3

    code = kill_when(cmd, three_masks, "its third mask")
    assert code == -signal.SIGKILL
    written = len(list(masks.rglob("*.png")))
    assert 3 <= written < POOL, written  # killed in the middle of the pool
    # the round is not complete: no budget.json, no labelled/blocked maps under their names
    assert not round_complete(killed)
    for name in ("budget.json", "labelled.npz", "blocked.npz"):
        assert not (killed / name).exists(), name

    subprocess.run(cmd, check=True, capture_output=True, env=halo_env(), timeout=300)
    assert round_complete(killed)
    budget = json.loads((killed / "budget.json").read_text())
    assert budget["images"] == POOL
    # no temporary file of the killed writes is left behind
    assert sorted(p.name for p in killed.rglob(".tmp-*")) == []

    # the same files, byte for byte, as the uninterrupted run (scored 4 images per batch: the
    # batch size does not change the selection on CPU, tests/acquisition/test_masks.py; should
    # this fail, check that test first)
    got, want = _files(killed), _files(reference["out"])
    assert sorted(got) == sorted(want)
    assert len([k for k in want if k.endswith(".png")]) == POOL
    assert {"budget.json", "labelled.npz", "blocked.npz"} <= set(want)
    for name, data in want.items():
        assert got[name] == data, name


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_pool(pools, reference, tmp_path):
    small = _peak_rss_mb(_acquire(pools, SMALL, tmp_path / "small"))
    large = reference["peak_mb"]
    # what holding the pool's float32 logits (19 classes) would add for the extra images
    logits_mb = (POOL - SMALL) * 19 * SIZE[0] * SIZE[1] * 4 / 2**20
    print(f"peak RSS: {SMALL} images {small:.0f} MB, {POOL} images {large:.0f} MB")
    assert large - small < 0.4 * logits_mb, (small, large, logits_mb)


@pytest.mark.parametrize(
    ("method", "give_source", "expect"),
    [("halo-src", False, "reads the source model's radius"), ("halo", True, "leave it out")],
)
def test_source_checkpoint_is_required_exactly_where_the_method_reads_it(
    pools, tmp_path, capsys, method, give_source, expect
):
    argv = _acquire(pools, SMALL, tmp_path / "r1", f"method={method}")[3:]
    if give_source:
        argv += ["--source-checkpoint", str(pools["checkpoint"])]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--source-checkpoint" in err[0] and expect in err[0]
    assert not (tmp_path / "r1").exists() or not any((tmp_path / "r1").iterdir())
