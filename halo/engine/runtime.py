"""Where a job runs and what it reads: the device, the process group, the run's datasets.

The device is picked here and only here (``auto``: this rank's GPU under torchrun, else the
visible GPU with the most free memory, else the CPU); below this module, device follows data.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from halo.config import Run
    from halo.data.dataset import SegmentationDataset

__all__ = ["EVAL_ON", "check_round", "dataset", "init_distributed", "pick_device"]


def pick_device(name: str = "auto") -> torch.device:
    """The device a job runs on: ``auto`` = this rank's GPU under torchrun, else the visible GPU
    with the most free memory, else the CPU."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        return device
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if "LOCAL_RANK" in os.environ:  # torchrun: one GPU per local rank
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    # Snakemake assigns no GPU ids: a job alone on its process takes the GPU with the most free
    # memory (the visible ones; CUDA_VISIBLE_DEVICES, e.g. from SLURM, restricts them).
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return torch.device("cuda", max(range(len(free)), key=free.__getitem__))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); (rank, world)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


#: ``halo evaluate --on``: the target's val set, or the source dataset's held-out val split
EVAL_ON = {"target": "val", "source": "source-val"}


def dataset(
    run: Run, which: str, verify: bool = True, label_size: bool = False
) -> SegmentationDataset:
    """The benchmark's ``source``, ``target`` or ``val`` dataset at its configured size, or
    ``source-val``: the source dataset's ``val`` split at the source size (held out from
    training only where the source trains on another split, as the synthetic GTAV's ``train``).

    With ``verify`` every file is decoded once before any work (a corrupt PNG, unknown label
    ids or mismatched sizes fail here, naming the file), unless the files, unchanged, were
    verified before (a stamp in :func:`halo.io.cache_dir`). ``label_size``: labels at their
    files' size (evaluation with ``eval.label_size``)."""
    from halo.data import build_dataset
    from halo.io import cache_dir

    source_val = dataclasses.replace(run.benchmark.source, split="val")
    spec = source_val if which == "source-val" else getattr(run.benchmark, which)
    size = run.source_size if which in ("source", "source-val") else run.target_size
    ds = build_dataset(
        spec.dataset,
        run.root / spec.folder,
        spec.split,
        size,
        protocol=run.benchmark.protocol,
        resample=run.config.resize,
        label_size=label_size,
        **spec.options,
    )
    if verify:
        ds.verify(cache=cache_dir())
    return ds


def check_round(run: Run, r: int) -> None:
    """Round ``r`` exists in ``run`` (1..active.rounds), else one line naming ``--round``."""
    rounds = run.config.active.rounds
    if not 1 <= r <= rounds:
        raise ValueError(f"--round {r}: expected 1..{rounds} (active.rounds)")
