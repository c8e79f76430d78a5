"""Pixel and region scores for acquisition: pure, batched functions on ``[B, ...]`` tensors.

Every function here takes tensors and returns tensors on the same device; nothing keeps state, reads
files or toggles a model's mode. Window operations use a ``(2k+1)²`` square neighbourhood with zero
padding, exactly like a convolution with a ones kernel (so border windows count the missing
pixels as zeros, as in the RIPU and HALO reference code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "minmax_normalize",
    "pixel_entropy",
    "region_impurity",
    "upsample_radius",
    "window_mean",
    "window_sum",
]


def _check_logits(logits: Tensor, fn: str) -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 4:
        shape = list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"{fn}: logits must be a [B, C, H, W] tensor, got {shape}")
    if not logits.is_floating_point():
        raise ValueError(f"{fn}: logits must be floating point, got {logits.dtype}")
    if logits.shape[1] < 2:
        raise ValueError(f"{fn}: logits need at least 2 classes (C >= 2), got C={logits.shape[1]}")


def _check_map(x: Tensor, fn: str, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.ndim != 3:
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{fn}: {name} must be a [B, H, W] tensor, got {shape}")


def _check_radius(k: int, fn: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"{fn}: window radius k must be an int >= 0, got {k!r}")


def pixel_entropy(logits: Tensor) -> Tensor:
    """Shannon entropy of the softmax prediction per pixel, normalised by ``log C`` to ``[0, 1]``.

    Computed from ``log_softmax`` (no ``log(0)``: stable for large or saturated logits).

    Args:
        logits: ``[B, C, H, W]`` float logits (not probabilities), ``C >= 2``.

    Returns:
        ``[B, H, W]`` entropy / log C, same dtype and device as ``logits``.
    """
    _check_logits(logits, "pixel_entropy")
    logp = F.log_softmax(logits, dim=1)
    ent = -(logp.exp() * logp).sum(dim=1)
    return ent / math.log(logits.shape[1])


def _box_sum(x: Tensor, k: int) -> Tensor:
    """Zero-padded ``(2k+1)²`` box sum of ``x`` ``[B, C, H, W]`` per channel (separable)."""
    if k == 0:
        return x
    c = x.shape[1]
    ones = torch.ones((c, 1, 2 * k + 1), dtype=x.dtype, device=x.device)
    x = F.conv2d(x, ones.unsqueeze(2), padding=(0, k), groups=c)  # along W
    return F.conv2d(x, ones.unsqueeze(3), padding=(k, 0), groups=c)  # along H


def window_sum(x: Tensor, k: int = 1) -> Tensor:
    """Sum of ``x`` over the ``(2k+1)²`` window centred on each pixel (zero padding).

    Args:
        x: ``[B, H, W]`` float map.
        k: window radius (``k = 0`` returns ``x`` unchanged).

    Returns:
        ``[B, H, W]``, same dtype and device as ``x``.
    """
    _check_map(x, "window_sum")
    _check_radius(k, "window_sum")
    return _box_sum(x.unsqueeze(1), k).squeeze(1)


def window_mean(x: Tensor, k: int = 1) -> Tensor:
    """Mean of ``x`` over the ``(2k+1)²`` window: :func:`window_sum` divided by ``(2k+1)²``.

    Border windows divide by the full window size too (zero padding, as a convolution with a
    ``1/(2k+1)²`` kernel, like RIPU's reference code).

    Args:
        x: ``[B, H, W]`` float map.
        k: window radius.

    Returns:
        ``[B, H, W]``, same dtype and device as ``x``.
    """
    return window_sum(x, k) / float((2 * k + 1) ** 2)


def region_impurity(logits: Tensor, k: int = 1) -> Tensor:
    """RIPU region impurity: entropy of the predicted-class histogram in each window, / log C.

    The histogram counts the arg-max classes of the ``(2k+1)²`` pixels around each pixel (pixels
    outside the image do not count); it is normalised to a distribution and its entropy divided by
    ``log C``, so a window with one predicted class scores 0 and one spread evenly over all classes
    scores 1.

    Args:
        logits: ``[B, C, H, W]`` float logits, ``C >= 2``.
        k: window radius.

    Returns:
        ``[B, H, W]`` impurity in ``[0, 1]``, same dtype and device as ``logits``.
    """
    _check_logits(logits, "region_impurity")
    _check_radius(k, "region_impurity")
    c = logits.shape[1]
    onehot = F.one_hot(logits.argmax(dim=1), c).permute(0, 3, 1, 2).to(logits.dtype)
    counts = _box_sum(onehot, k)  # [B, C, H, W], >= 1 in the centre's class
    dist = counts / counts.sum(dim=1, keepdim=True)
    ent = -torch.xlogy(dist, dist).sum(dim=1)
    return ent / math.log(c)


def upsample_radius(radius: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly upsample a radius map (decoder resolution) to the logits' size.

    Args:
        radius: ``[B, h, w]`` float map (hyperbolic radius ``d(0, x)`` or feature norm).
        size: target ``(H, W)``.

    Returns:
        ``[B, H, W]`` (``align_corners=False``), same dtype and device as ``radius``; returned
        unchanged when it already has that size.
    """
    _check_map(radius, "upsample_radius", "radius")
    size = (int(size[0]), int(size[1]))
    if tuple(radius.shape[-2:]) == size:
        return radius
    if not radius.is_floating_point():
        raise ValueError(f"upsample_radius: radius must be floating point, got {radius.dtype}")
    out = F.interpolate(radius.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
    return out.squeeze(1)


def minmax_normalize(x: Tensor) -> Tensor:
    """Per-image min-max normalisation to ``[0, 1]``, safe on constant maps.

    Minimum and maximum are taken over the finite values of each image; an image whose finite
    values are all equal (or that has none) maps its finite pixels to 0. Non-finite inputs stay
    non-finite (NaN stays NaN, ``±inf`` stays ``±inf``), so the caller can still see them.

    Args:
        x: ``[B, H, W]`` float map.

    Returns:
        ``[B, H, W]``, same dtype and device as ``x``.
    """
    _check_map(x, "minmax_normalize")
    if not x.is_floating_point():
        raise ValueError(f"minmax_normalize: x must be floating point, got {x.dtype}")
    flat = x.flatten(1)
    finite = torch.isfinite(flat)
    lo = torch.where(finite, flat, torch.inf).amin(dim=1)
    hi = torch.where(finite, flat, -torch.inf).amax(dim=1)
    span = hi - lo
    ok = torch.isfinite(span) & (span > 0)
    span = torch.where(ok, span, torch.ones_like(span)).view(-1, 1, 1)
    lo = torch.where(ok, lo, torch.zeros_like(lo)).view(-1, 1, 1)
    out = torch.where(ok.view(-1, 1, 1), (x - lo) / span, torch.zeros_like(x))
    # keep non-finite inputs visible (a zero scale would turn inf into NaN or 0)
    return torch.where(torch.isfinite(x), out, x)
