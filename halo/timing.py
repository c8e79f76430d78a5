"""Where a job's time goes: start-up, compute, writing (one line per job, read by
``bench/workflow_profile.py``).

The phases of one ``halo`` process, measured from the process start (``HALO_T0``, set by the
launcher client to *its* start, else read from ``/proc``):

- ``startup``: process start → the command's first useful work (interpreter, imports, argument
  and config parsing, building the model, opening the datasets);
- ``compute``: training steps, scoring, selection, evaluation (the job itself);
- ``write``: its results written to disk.

The engine calls :func:`mark` where a phase begins; the CLI prints :func:`line` to stderr when
the command ends, e.g. ``halo timing: command=acquire startup=0.61 compute=9.80 write=0.42``.
Standard library only; marks cost a clock read.
"""

from __future__ import annotations

import itertools
import os
import time

PHASES = ("startup", "compute", "write")
PREFIX = "halo timing:"

_state: dict = {"t0": None, "marks": []}


def start() -> None:
    """Begin a command's clock at its process start (call once, first thing in ``main``)."""
    t0 = os.environ.pop("HALO_T0", None)
    try:
        origin = float(t0) if t0 is not None else process_start()
    except ValueError:
        origin = process_start()
    _state["t0"] = origin
    _state["marks"] = []


def process_start() -> float:
    """This process's start, Unix seconds (``/proc``; now where there is none)."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def started() -> float | None:
    """This command's process start (Unix seconds), None before :func:`start`."""
    return _state["t0"]


def mark(phase: str) -> None:
    """``phase`` begins now (a repeated mark of the current phase is ignored)."""
    if phase not in PHASES:
        raise ValueError(f"timing phase {phase!r}: expected one of {', '.join(PHASES)}")
    marks = _state["marks"]
    if not marks or marks[-1][0] != phase:
        marks.append((phase, time.time()))


def phases(end: float | None = None) -> dict[str, float]:
    """Seconds per phase so far ({} before :func:`start`); a phase never marked is 0."""
    t0 = _state["t0"]
    if t0 is None:
        return {}
    end = time.time() if end is None else end
    out = dict.fromkeys(PHASES, 0.0)
    points = [("startup", t0), *_state["marks"], (None, end)]
    for (phase, begin), (_, finish) in itertools.pairwise(points):
        out[phase] += max(finish - begin, 0.0)
    return out


def line(command: str) -> str:
    """The job's timing line (``halo timing: command=... startup=... compute=... write=...``)."""
    split = phases()
    return f"{PREFIX} command={command} " + " ".join(f"{k}={v:.2f}" for k, v in split.items())


def parse(text: str) -> dict[str, float | str] | None:
    """The last timing line of a job log as a dict (None when the log has none)."""
    found = None
    for raw in text.splitlines():
        if raw.startswith(PREFIX):
            fields = dict(f.split("=", 1) for f in raw[len(PREFIX) :].split() if "=" in f)
            found = {k: (v if k == "command" else float(v)) for k, v in fields.items()}
    return found
