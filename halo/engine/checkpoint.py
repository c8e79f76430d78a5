"""Checkpoints: the one place that writes, reads and checks model files (docs/design.md, "Files").

A checkpoint is a dict ``{"model": state_dict, "optimizer": state_dict | None, "step": int,
...meta}``; the meta (``backbone``, ``model_key``, ``num_classes``, ``protocol``, ``fingerprint``,
``config``, ...) says what the weights are for, and :func:`check_fits` compares it with a run
before any model is built. Files are written atomically (:mod:`halo.io`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from halo.io import atomic_open

if TYPE_CHECKING:
    from halo.config import Run

__all__ = ["check_fits", "load_checkpoint", "load_weights", "save_checkpoint", "unwrap"]


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(path: str | Path, model: nn.Module, optimizer, step: int, meta: dict) -> None:
    """Write model + optimiser + step + metadata atomically."""
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        **meta,
    }
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint on the CPU; a missing or unreadable file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds of errors for a corrupt file
        raise ValueError(f"checkpoint {path} is not a readable checkpoint: {err}") from err


def load_weights(model: nn.Module, ckpt: dict, *, where: str = "checkpoint") -> None:
    """Load a checkpoint's weights; a model of another backbone/class count is a clear error."""
    try:
        unwrap(model).load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        meta = {k: ckpt.get(k) for k in ("backbone", "model_key", "num_classes")}
        raise ValueError(
            f"{where} does not fit this model ({meta}): {first[1] if len(first) > 1 else first[0]}"
        ) from None


def check_fits(ckpt: dict, run: Run, where: Path) -> None:
    """A checkpoint of another backbone, head variant or class count is a clear error.

    Raises:
        ValueError: naming the checkpoint, what it was trained for and what ``run`` needs.
    """
    mine = {
        "backbone": run.config.backbone,
        "model_key": run.model_key,
        "num_classes": run.num_classes,
    }
    theirs = {k: ckpt.get(k) for k in mine}
    if theirs != mine:
        raise ValueError(f"checkpoint {where} was trained for {theirs}, this config needs {mine}")
