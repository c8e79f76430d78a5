"""Every writing command, SIGKILLed at a random one of its atomic writes, leaves no ``.tmp-*``
after the rerun, wherever the temporary lived (beside ``--out``, inside it, in a round folder,
beside a zip) -- and the rerun finishes.

The kill point: the command runs in a subprocess whose ``os.replace`` (the publishing step of
every atomic write, :func:`halo.io.atomic_open`, and of every folder built aside) sends SIGKILL
to its own process on its k-th call that publishes a ``.tmp-*``, k drawn per command -- so the temporary is complete and
unpublished, the state a kill leaves most often. The rerun is the same command line in-process.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from halo.cli import main
from tests.acquisition import scripted
from tests.annotate.conftest import free_port
from tests.engine.conftest import PYTHON, TINY_CONFIG, halo_env, one_thread  # noqa: F401

pytestmark = [pytest.mark.kills, pytest.mark.usefixtures("one_thread")]
SIZE = (32, 64)

_HOOKED = """
import os, signal, sys
k, seen, replace = int(sys.argv[1]), [0], os.replace
def hooked(src, dst, *args, **kwargs):
    seen[0] += os.path.basename(src).startswith(".tmp-")  # halo's writes, not a library's
    if seen[0] == k:  # the temporary is written and not yet published
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst, *args, **kwargs)
os.replace = hooked
from halo.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _common(root: Path) -> list[str]:
    return ["--config", str(TINY_CONFIG), "--quiet", "--set", f"data_root={root}"]


@pytest.fixture(scope="module")
def inputs(tiny_data, tmp_path_factory) -> dict:
    """A source model and its evaluation and record, a simulated round 1, a waiting human round
    1 with a folder of answers, a tracking store: what the writing commands read."""
    base = tmp_path_factory.mktemp("killed")
    common = _common(tiny_data)
    assert main(["pretrain", *common, "--out", str(base / "src")]) == 0
    ckpt = str(base / "src" / "model.pt")
    acquire = ["acquire", *common, "--checkpoint", ckpt, "--round", "1", "--out"]
    assert main([*acquire, str(base / "sim1")]) == 0
    assert main([*acquire, str(base / "hum1"), "--annotator", "human"]) == 0
    scripted.answer(base / "hum1", scripted.ground_truth(tiny_data, SIZE), base / "labels")
    assert main(["evaluate", *common, "--checkpoint", ckpt, "--out", str(base / "eval.json")]) == 0
    record = ["summarize", *common, "--kind", "source", "--eval", str(base / "eval.json")]
    assert main([*record, "--out", str(base / "metrics.json")]) == 0
    uri = f"sqlite:///{base / 'mlflow.db'}"
    assert main(["track", "--init", "--uri", uri]) == 0
    return {"base": base, "data": tiny_data, "ckpt": ckpt, "uri": uri}


def _round(inputs: dict, tmp_path: Path, answered: bool = False) -> Path:
    """A copy of the waiting human round; ``answered``: its answers imported, the round's
    results removed again (what complete-round rebuilds)."""
    hum = Path(shutil.copytree(inputs["base"] / "hum1", tmp_path / "hum1"))
    if answered:
        assert main(["import-labels", str(hum), str(inputs["base"] / "labels")]) == 0
        (hum / "budget.json").unlink()
        shutil.rmtree(hum / "masks")
    return hum


_ROUNDS = {"export-queries": False, "import-labels": False, "complete-round": True}


def _case(name: str, inputs: dict, tmp: Path) -> tuple[list[str], int]:
    """The command line of ``name`` writing under ``tmp``, and how many atomic writes it makes
    at least (the kill falls on one of them)."""
    common, ckpt, base = _common(inputs["data"]), inputs["ckpt"], inputs["base"]
    out = str(tmp / "out")
    hum = "" if name not in _ROUNDS else str(_round(inputs, tmp, answered=_ROUNDS[name]))
    cases = {
        "synth": (["synth", "--style", "cityscapes", "--split", "train", "--count", "3",
                   "--size", "32x64", "--out", out, "--quiet"], 6),
        "pretrain": (["pretrain", *common, "--out", out, "--eval-out", f"{out}/eval.json"], 4),
        "train": (["train", *common, "--round", "1", "--init", ckpt, "--masks",
                   str(base / "sim1"), "--out", out, "--eval-out", f"{out}/eval.json"], 4),
        "acquire": (["acquire", *common, "--checkpoint", ckpt, "--round", "1", "--out", out], 5),
        "evaluate": (["evaluate", *common, "--checkpoint", ckpt, "--out", f"{out}/e.json"], 1),
        "summarize": (["summarize", *common, "--kind", "source", "--eval",
                       str(base / "eval.json"), "--out", f"{out}/metrics.json"], 1),
        "track": (["track", "--record", str(base / "metrics.json"), "--uri", inputs["uri"],
                   "--out", f"{out}/mlflow.json"], 1),
        "report": (["report", *common, "--records", str(base / "metrics.json"), "--panels",
                    "0", "--no-track", "--out", out], 4),
        "export-queries": (["export-queries", hum, f"{out}.zip"], 1),
        "import-labels": (["import-labels", hum, str(base / "labels")], 3),
        "complete-round": (["complete-round", hum], 3),
    }  # fmt: skip
    return cases[name]


def _strays(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".tmp-*"))


def _kill_at(k: int, argv: list[str]) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-c", _HOOKED, str(k), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=halo_env(), timeout=300)


COMMANDS = ["synth", "pretrain", "train", "acquire", "evaluate", "summarize", "track", "report",
            "export-queries", "import-labels", "complete-round"]  # fmt: skip


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_killed_at_a_write_leaves_no_temporary_after_its_rerun(name, inputs, tmp_path):
    argv, writes = _case(name, inputs, tmp_path)
    k = random.Random(name).randint(1, writes)
    killed = _kill_at(k, argv)
    assert killed.returncode == -signal.SIGKILL, (
        f"{name} ended ({killed.returncode}) before its write {k}: {killed.stderr[-2000:]}"
    )
    assert _strays(tmp_path), f"{name} killed at write {k} left no temporary: nothing tested"
    assert main(argv) == 0
    assert _strays(tmp_path) == []
    assert list(tmp_path.iterdir()), "the rerun wrote nothing"


def test_the_labelling_server_killed_while_finishing_leaves_no_temporary(inputs, tmp_path):
    """halo annotate: SIGKILL at the first write of Finish; the next start cleans up, and its
    Finish completes the round."""
    from tests.annotate.test_server import _request

    hum = _round(inputs, tmp_path)

    def finish(port: int) -> dict:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # until it listens
            try:
                _request(f"{url}/api/manifest")
                break
            except OSError:
                time.sleep(0.05)
        return _request(f"{url}/api/finish", "POST", {})

    port = free_port()
    cmd = [PYTHON, "-c", _HOOKED, "1", "annotate", str(hum), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=halo_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with pytest.raises(OSError):  # the server died while answering
            finish(port)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert _strays(tmp_path), "the kill left no temporary: nothing tested"
    port, result = free_port(), {}
    argv = ["annotate", str(hum), "--port", str(port)]
    thread = threading.Thread(target=lambda: result.update(code=main(argv)))
    thread.start()
    try:
        summary = finish(port)
    finally:
        thread.join(timeout=60)
    assert result == {"code": 0} and summary["pixels_answered"] == 0
    assert _strays(tmp_path) == [] and (hum / "budget.json").is_file()
    assert json.loads((hum / "budget.json").read_text())["round"] == 1
