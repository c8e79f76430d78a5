"""The GPUs a job will see, counted without importing torch (the workflow's parse step uses it
to decide whether heavy jobs hold a ``gpu`` resource unit; docs/design.md, "The workflow").
Picking the device a job runs on is :func:`halo.engine.runtime.pick_device`'s job."""

from __future__ import annotations

import glob
import os

__all__ = ["visible_gpus"]


def visible_gpus() -> int:
    """GPUs visible to jobs: ``CUDA_VISIBLE_DEVICES`` if set, else the NVIDIA device files."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() not in ("", "-1")])
    return len(glob.glob("/dev/nvidia[0-9]*"))
