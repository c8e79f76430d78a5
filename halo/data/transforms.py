"""Array ↔ tensor conversion and resizing shared by every loader (no augmentation state here)."""

from __future__ import annotations

import numpy as np
import torch


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] RGB → float32 [3, H, W] in [0, 1] (the segmenter normalises itself)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def resize_pair(
    image: np.ndarray,
    label: np.ndarray,
    size: tuple[int, int],
    *,
    resample: str = "bilinear",
    resize_label: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image (``resample``: ``bilinear`` or ``bicubic``, PIL's filters) and its label
    map (nearest neighbour) to ``size`` = (H, W).

    Args:
        image: uint8 [H, W, 3].
        label: uint8 [H, W].
        size: target (height, width).
        resample: the image filter.
        resize_label: ``False`` keeps the label at its own size (evaluation and acquisition at
            the label size, as the official code).

    Returns:
        uint8 [h, w, 3] and uint8 [h, w] (or the label unchanged); inputs already at that size are
        returned unchanged.
    """
    from PIL import Image

    filters = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
    if resample not in filters:
        raise ValueError(f"resample: expected one of {', '.join(filters)}, got {resample!r}")
    h, w = size
    if image.shape[:2] != (h, w):
        image = np.asarray(Image.fromarray(image).resize((w, h), filters[resample]))
    if resize_label and label.shape != (h, w):
        label = np.asarray(Image.fromarray(label).resize((w, h), Image.Resampling.NEAREST))
    return image, label
