"""What every script in bench/ shares: timing with CUDA synchronisation, side-by-side repeats,
the machine description and the atomic JSON report."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from halo.io import write_json


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Seconds one call of ``fn`` took (synchronised on ``device``) and what it returned."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def side_by_side(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int
) -> dict[str, dict[str, float]]:
    """Median / min seconds of each function, the functions alternating within every repeat (so
    machine load hits all sides alike), in reversed order every other repeat."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for i in range(repeats):
        for name in order if i % 2 == 0 else order[::-1]:  # neither side always goes first
            times[name].append(timed(fns[name], device)[0])
    return {
        name: {"median_s": statistics.median(t), "min_s": min(t), "repeats": len(t)}
        for name, t in times.items()
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Torch version, threads, CPUs, load average and CUDA device of this run."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write_report(path: Path, report: dict) -> None:
    write_json(path, report)
    print(f"wrote {path}")
