"""What an acquisition round sees and picks on a few images: the data of the report's acquisition
figures (the paper's Figure 4; drawn by :func:`halo.report.figures.write_acquisition_figures`).

Kept out of :mod:`halo.report` so that the report imports no torch: the model runs here, the
report only draws the arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from halo.acquisition.budget import cumulative_target
from halo.acquisition.scores import pixel_entropy, upsample_radius, window_sum
from halo.models.segmenter import module_device

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from halo.acquisition.strategies import Strategy

__all__ = ["acquisition_panels"]


def _checked_image(item: dict, index: int) -> torch.Tensor:
    """The item's image, which must be float ``[3, H, W]``."""
    image = item["image"]
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        got = getattr(image, "shape", type(image).__name__)
        raise ValueError(
            f"acquisition_panels: item {index} image must be float [3, H, W], got {got}"
        )
    return image


def acquisition_panels(
    model: nn.Module,
    dataset: Dataset,
    strategy: Strategy,
    indices: Sequence[int],
    *,
    round_budget: float,
) -> list[dict[str, Any]]:
    """What a first acquisition round sees and picks on a few target images.

    Runs ``model`` (``eval`` and ``torch.inference_mode``, on the device of its parameters; its
    training flag is restored afterwards) on each chosen item and computes what
    :meth:`Strategy.select` computes for a first round (no earlier blocked pixels): the
    acquisition map (:meth:`Strategy.acquisition_map`) and its regions (:meth:`Strategy.pick`,
    each image a pool of its own: :func:`~halo.acquisition.budget.select_within`).

    Args:
        model: a segmenter returning ``SegmenterOutput(logits, embeddings, radius)``.
        dataset: items ``{"image": float [3, H, W] in [0, 1], "label": ..., "id": str}``.
        strategy: the acquisition strategy, built with the run's radii.
        indices: dataset indices of the images to show.
        round_budget: fraction of each image's pixels to label in the round.

    Returns:
        One dict per index: ``id`` (str), ``strategy`` (name), ``image`` uint8 ``[H, W, 3]``,
        ``radius`` float32 ``[H, W]`` (the model's radius upsampled bilinearly; ``None`` for a
        non-hyperbolic head), ``entropy`` float32 ``[H, W]`` (normalised entropy summed over the
        ``(2a+1)²`` window), ``score`` float32 ``[H, W]`` (the acquisition map; ``-inf`` where
        the strategy's score was not finite), ``selected`` bool ``[H, W]`` (labelled pixels),
        ``centres`` int64 ``[n, 2]`` (row, col, in pick order), ``pixels_allowed``
        (``floor(round_budget · H · W)``: the labelled pixels never exceed it),
        ``round_budget``, ``active_radius``, ``mask_radius``.
    """
    a, m = strategy.active_radius, strategy.mask_radius
    hyperbolic = getattr(model, "head_name", None) == "hyperbolic"
    device = module_device(model)
    was_training = model.training
    panels = []
    model.eval()
    try:
        with torch.inference_mode():
            for index in indices:
                item = dataset[int(index)]
                image = _checked_image(item, index)
                out = model(image.unsqueeze(0).to(device))
                logits = out.logits
                h, w = logits.shape[-2:]
                radius = getattr(out, "radius", None)
                score = strategy.acquisition_map(logits, radius)
                sel = strategy.pick(score[0], round_budget=round_budget)
                allowed = cumulative_target(round_budget, int(h) * int(w))
                entropy = window_sum(pixel_entropy(logits), a)[0]
                shown_radius = None
                if hyperbolic and radius is not None:
                    shown_radius = upsample_radius(radius.float(), (int(h), int(w)))[0]
                    shown_radius = shown_radius.cpu().numpy().astype(np.float32)
                rgb = image.detach().float().clamp(0, 1).mul(255).round().byte()
                panels.append(
                    {
                        "id": str(item.get("id", index)),
                        "strategy": strategy.name,
                        "image": rgb.permute(1, 2, 0).cpu().numpy(),
                        "radius": shown_radius,
                        "entropy": entropy.float().cpu().numpy(),
                        "score": score[0].float().cpu().numpy(),
                        "selected": sel.labelled.cpu().numpy().astype(bool),
                        "centres": sel.centres.cpu().numpy().astype(np.int64),
                        "pixels_allowed": int(allowed),
                        "round_budget": float(round_budget),
                        "active_radius": int(a),
                        "mask_radius": int(m),
                    }
                )
    finally:
        model.train(was_training)
    return panels
