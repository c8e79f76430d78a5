"""Atomic writes: a failure mid-write leaves the old file (or nothing) and no temporary file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from halo import io


def test_roundtrips(tmp_path):
    io.write_json(tmp_path / "a" / "m.json", {"miou": float("nan"), "x": [1, 2]})
    assert json.loads((tmp_path / "a" / "m.json").read_text())["x"] == [1, 2]
    lab = np.arange(12, dtype=np.uint8).reshape(3, 4)
    io.write_png(tmp_path / "l.png", lab)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "l.png")), lab)
    io.write_npz(tmp_path / "b.npz", blocked=lab > 5)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npz")["blocked"], lab > 5)


def test_failure_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    io.write_bytes(target, b"old")
    with pytest.raises(RuntimeError), io.atomic_open(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_bad_png_input_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"x\.png.*uint8"):
        io.write_png(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    assert not (tmp_path / "x.png").exists()


def test_remove_stray_temp_only_touches_temporaries(tmp_path):
    (tmp_path / "sub").mkdir()
    keep = [tmp_path / "a.json", tmp_path / "sub" / "b.png", tmp_path / "tmp-a.json.x"]
    strays = [tmp_path / ".tmp-a.json.k1", tmp_path / "sub" / ".tmp-b.png.k2"]
    for p in keep + strays + [tmp_path / ".tmp-c.npz.k3"]:
        p.write_bytes(b"x")
    assert io.remove_stray_temp(tmp_path, ("a.json",)) == [strays[0]]
    assert (tmp_path / ".tmp-c.npz.k3").exists() and strays[1].exists()
    removed = io.remove_stray_temp(tmp_path, recursive=True)
    assert sorted(removed) == sorted([strays[1], tmp_path / ".tmp-c.npz.k3"])
    assert all(p.exists() for p in keep)
    assert io.remove_stray_temp(tmp_path / "missing") == []


_SAME_AS_OPEN = """
import os, sys
from pathlib import Path
from halo import io
d = Path(sys.argv[1])
io.write_text(d / "atomic.txt", "x")
with open(d / "plain.txt", "w") as fh:
    fh.write("x")
(d / "tool.sh").write_text("old")
os.chmod(d / "tool.sh", 0o750)
io.write_text(d / "tool.sh", "new")
print(*(oct(os.stat(d / n).st_mode & 0o7777) for n in ("atomic.txt", "plain.txt", "tool.sh")))
"""


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027])
def test_written_files_get_the_permissions_a_plain_open_gives(tmp_path, umask):
    """Not mkstemp's private 0o600: a shared results folder stays readable as the umask says;
    a file written over keeps its own permissions."""

    def child() -> None:
        os.umask(umask)

    run = subprocess.run(
        [sys.executable, "-c", _SAME_AS_OPEN, str(tmp_path)],
        capture_output=True, text=True, check=True, preexec_fn=child,
    )  # fmt: skip
    atomic, plain, tool = run.stdout.split()
    assert atomic == plain == oct(0o666 & ~umask) and tool == oct(0o750)
