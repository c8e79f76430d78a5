"""Models from checkpoints: build the run's segmenter, load a checkpoint that fits the run, and
say what every checkpoint of a run records about itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from halo.engine.checkpoint import check_fits, load_checkpoint, load_weights

if TYPE_CHECKING:
    from halo.config import Run

__all__ = ["build_model", "checkpoint_meta", "load_fitting", "model_from_checkpoint"]


def build_model(run: Run) -> nn.Module:
    """The run's segmenter, freshly initialised (from the torch RNG), on the CPU."""
    from halo.models.segmenter import build_backbone

    return build_backbone(run.config.backbone, run.num_classes, **run.model_options)


def load_fitting(run: Run, path: Path) -> dict:
    """A checkpoint, loaded (plain data only) and checked to fit ``run``."""
    ckpt = load_checkpoint(path)
    check_fits(ckpt, run, path)
    return ckpt


def model_from_checkpoint(
    run: Run, path: str | os.PathLike, device: torch.device
) -> tuple[nn.Module, dict]:
    """Load a checkpoint, check that it fits ``run``, build the model, load the weights, move it
    to ``device``: ``(model, checkpoint dict)``.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: unreadable, or trained for another backbone, variant or class count (checked
            before the model is built).
    """
    path = Path(path)
    ckpt = load_fitting(run, path)
    model = build_model(run)
    load_weights(model, ckpt, where=str(path))
    return model.to(device), ckpt


def checkpoint_meta(run: Run, **extra: Any) -> dict:
    """What every checkpoint of ``run`` says about itself."""
    from halo.config import to_dict

    return {
        "config": to_dict(run.config),
        "backbone": run.config.backbone,
        "model_key": run.model_key,
        "model_options": dict(run.model_options),
        "num_classes": run.num_classes,
        **extra,
    }
