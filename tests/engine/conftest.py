"""Helpers for the tests that run halo: the tiny config, subprocess environment, SIGKILL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "configs" / "test" / "tiny.yaml"


@pytest.fixture
def one_thread():
    """One intra-op thread for in-process training (tiny tensors on a shared 2-core machine),
    restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def halo_env() -> dict[str, str]:
    """The environment of a ``halo`` subprocess: one OpenMP thread per process, quiet warnings,
    and this checkout first on the import path."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


PYTHON = sys.executable


def kill_when(cmd: list[str], ready, what: str, timeout: float = 240) -> int:
    """Start ``cmd`` (a halo subprocess), SIGKILL it as soon as ``ready()`` is true; its exit code.

    Fails the test if the process ends first (with its stderr) or ``what`` does not happen within
    ``timeout`` seconds."""
    import signal
    import subprocess
    import tempfile
    import time

    # stderr into a file, not a pipe nobody reads while polling (a full pipe would block it)
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=err, text=True, env=halo_env()
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                if proc.poll() is not None:
                    err.seek(0)
                    pytest.fail(f"{' '.join(cmd[2:4])} ended before {what}: {err.read()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no {what} after {timeout:.0f} s")
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode
