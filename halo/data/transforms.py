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
    image: np.ndarray, label: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize an image bilinearly and its label map by nearest neighbour to ``size`` = (H, W).

    Args:
        image: uint8 [H, W, 3].
        label: uint8 [H, W].
        size: target (height, width).

    Returns:
        uint8 [h, w, 3] and uint8 [h, w]; the inputs are returned unchanged if already that size.
    """
    from PIL import Image

    h, w = size
    if image.shape[:2] == (h, w) and label.shape == (h, w):
        return image, label
    img = Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR)
    lab = Image.fromarray(label).resize((w, h), Image.Resampling.NEAREST)
    return np.asarray(img), np.asarray(lab)
