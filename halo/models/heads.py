"""Segmentation heads: decoder features -> (logits, embeddings, radius), Euclidean or hyperbolic.

Both heads take decoder features ``[B, C_dec, h, w]`` and return a :class:`HeadOutput` at the same
resolution; the segmenter upsamples the logits. Pick one by name from :data:`HEADS` with
:func:`build_head`.

* ``euclidean``: optional HFR, then a 1x1 convolution to the classes. Embeddings are the
  classifier's input features, radius is their L2 norm (the "feature norm" ablation).
* ``hyperbolic`` (HALO): 1x1 convolution to ``embed_dim`` channels, optional HFR, ``expmap0``
  onto the Poincaré ball of curvature ``-c``, hyperbolic MLR (:func:`~halo.models.hyperbolic.
  mlr_logits`). Class points are ``expmap0`` of a Euclidean tangent parameter, so they stay in the
  ball for any optimiser (plain SGD, DDP). Radius is ``2 ||v||`` from the tangent vector, which
  never saturates at the projection cap (docs/design.md, "The method").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halo.models.hyperbolic import expmap0, mlr_logits, tangent_radius
from halo.models.presets import HEADS
from halo.registry import Registry

__all__ = [
    "HEADS",
    "HFR",
    "EuclideanHead",
    "HeadOutput",
    "HyperbolicHead",
    "build_head",
    "hfr_reweight",
]

HFR_FLOOR = 1e-5
"""Lower bound of the HFR channel weights (the official HALO clamp)."""

_PRECISIONS = Registry("precision", {"float32": torch.float32, "float64": torch.float64})


class HeadOutput(NamedTuple):
    """What a head returns, all at the decoder's resolution ``h x w``.

    Attributes:
        logits: class logits ``[B, K, h, w]`` (unnormalised, not probabilities).
        embeddings: ``[B, D, h, w]``: Poincaré-ball points (hyperbolic head) or the classifier's
            input features (Euclidean head).
        radius: ``[B, h, w]``, ``>= 0``: hyperbolic distance from the origin (hyperbolic head) or
            the feature L2 norm (Euclidean head).
    """

    logits: Tensor
    embeddings: Tensor
    radius: Tensor


def build_head(name: str, in_channels: int, num_classes: int, **options: object) -> nn.Module:
    """Build a registered head.

    Args:
        name: a key of :data:`HEADS` (``"euclidean"`` or ``"hyperbolic"``).
        in_channels: decoder feature channels ``C_dec``.
        num_classes: number of classes ``K``.
        **options: keyword options of that head class.

    Returns:
        The head module; ``head(features [B, C_dec, h, w]) -> HeadOutput``.

    Raises:
        ValueError: unknown ``name`` (the message lists the valid ones).
    """
    cls = HEADS.lookup(name)
    return cls(in_channels, num_classes, **options)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_features(features: Tensor, channels: int) -> None:
    if not isinstance(features, Tensor) or features.dim() != 4:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"features must be a [B, C, h, w] tensor, got {shape}")
    if features.shape[1] != channels:
        raise ValueError(
            f"features must have {channels} channels (the head's in_channels), "
            f"got {features.shape[1]}"
        )


def hfr_reweight(features: Tensor, weights: Tensor, *, normalize: bool = True) -> Tensor:
    """Hyperbolic feature reweighting, the pure part: L2-normalise each channel map, then scale.

    Each channel map of each image is divided by its L2 norm over the pixels (guarded against 0,
    as ``F.normalize``) and multiplied by that image's channel weight. ``normalize=False`` skips
    the division (an ablation: the weights alone, the features' own scale kept).

    Args:
        features: ``[B, D, h, w]`` floating.
        weights: positive channel weights ``[B, D]``, same dtype/device.
        normalize: divide each channel map by its L2 norm over the pixels first (HALO).

    Returns:
        ``[B, D, h, w]``, ``features``' dtype.
    """
    if features.dim() != 4 or weights.shape != features.shape[:2]:
        raise ValueError(
            "features must be [B, D, h, w] and weights [B, D], got "
            f"{tuple(features.shape)} and {tuple(weights.shape)}"
        )
    flat = features.flatten(2)
    if normalize:
        flat = F.normalize(flat, p=2.0, dim=2)
    return (flat * weights[:, :, None]).view_as(features)


class HFR(nn.Module):
    """Hyperbolic feature reweighting (HALO; docs/design.md, "The method").

    A per-pixel MLP (D -> D, BatchNorm, ReLU, D -> D; written as 1x1 convolutions, which is the
    same map as linear layers over the flattened pixels, BatchNorm statistics included) averaged
    over each image's pixels gives one weight per channel, clamped at :data:`HFR_FLOOR`; each
    channel map is L2-normalised over the pixels and multiplied by its weight.

    Args:
        channels: feature channels ``D``.
        floor: lower bound of the weights (default ``1e-5``, as the official code).
        normalize: L2-normalise each channel map over the pixels before scaling (HALO; off: an
            ablation of the normalisation alone).
    """

    def __init__(self, channels: int, *, floor: float = HFR_FLOOR, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        channels = _check_positive_int("channels", channels)
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor!r}")
        self.floor = float(floor)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1),
        )

    def channel_weights(self, features: Tensor) -> Tensor:
        """Per-image channel weights ``[B, D]``, each ``>= floor``, from ``[B, D, h, w]``."""
        return self.mlp(features).mean(dim=(2, 3)).clamp_min(self.floor)

    def forward(self, features: Tensor) -> Tensor:
        """Reweight ``features [B, D, h, w]``; returns ``[B, D, h, w]``."""
        return hfr_reweight(features, self.channel_weights(features), normalize=self.normalize)


class EuclideanHead(nn.Module):
    """Linear classifier on decoder features (optional HFR first).

    Args:
        in_channels: decoder feature channels ``C_dec`` (e.g. 256, or RIPU's 512).
        num_classes: number of classes ``K``.
        hfr: apply :class:`HFR` to the features before the classifier (default off).
    """

    def __init__(self, in_channels: int, num_classes: int, *, hfr: bool = False) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.num_classes = _check_positive_int("num_classes", num_classes)
        self.embed_dim = self.in_channels
        self.hfr = HFR(in_channels) if hfr else None
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: Tensor) -> HeadOutput:
        """Classify ``features [B, C_dec, h, w]``.

        Returns:
            ``HeadOutput(logits [B, K, h, w], embeddings [B, C_dec, h, w], radius [B, h, w])``;
            embeddings are the classifier's input, radius their L2 norm over channels.
        """
        _check_features(features, self.in_channels)
        if self.hfr is not None:
            features = self.hfr(features)
        logits = self.classifier(features)
        return HeadOutput(logits, features, torch.linalg.vector_norm(features, dim=1))


class HyperbolicHead(nn.Module):
    """HALO's head: 1x1 reduction, HFR, ``expmap0`` and hyperbolic MLR on the Poincaré ball.

    Parameters: the reduction conv, the HFR MLP, ``class_tangents [K, D]`` (the class points are
    ``expmap0`` of these, so they are in the ball by construction) and ``normals [K, D]``.
    The hyperbolic part (HFR, ``expmap0``, MLR) runs with autocast disabled in float32 (or
    float64 with ``precision="float64"``); logits and embeddings come back in float32 (float64
    for float64 input features).

    Args:
        in_channels: decoder feature channels ``C_dec``.
        num_classes: number of classes ``K``.
        embed_dim: ball dimension ``D`` (64 in HALO).
        curvature: ``c > 0``; the ball has curvature ``-c`` and radius ``1/sqrt(c)``.
        hfr: apply :class:`HFR` before ``expmap0`` (HALO's default).
        hfr_normalize: the HFR's per-channel L2 normalisation over the pixels (HALO's default).
        precision: ``"float32"`` (default) or ``"float64"`` for ``expmap0`` and the MLR.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        embed_dim: int = 64,
        curvature: float = 1.0,
        hfr: bool = True,
        hfr_normalize: bool = True,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.num_classes = _check_positive_int("num_classes", num_classes)
        self.embed_dim = _check_positive_int("embed_dim", embed_dim)
        curvature = float(curvature)
        if not math.isfinite(curvature) or curvature <= 0:
            raise ValueError(f"curvature must be a finite float > 0, got {curvature!r}")
        self.curvature = curvature
        self.precision = _PRECISIONS.lookup(precision)
        self.reduce = nn.Conv2d(in_channels, embed_dim, kernel_size=1)
        nn.init.kaiming_normal_(self.reduce.weight)
        nn.init.zeros_(self.reduce.bias)
        self.hfr = HFR(embed_dim, normalize=hfr_normalize) if hfr else None
        self.class_tangents = nn.Parameter(torch.empty(num_classes, embed_dim))
        self.normals = nn.Parameter(torch.empty(num_classes, embed_dim))
        # U(-1/sqrt(D), 1/sqrt(D)), as the official HALO initialisation of both parameters.
        nn.init.kaiming_uniform_(self.class_tangents, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.normals, a=math.sqrt(5))

    def class_points(self, dtype: torch.dtype | None = None) -> Tensor:
        """Class points ``p = expmap0(class_tangents)`` in the ball, ``[K, D]``."""
        tangents = self.class_tangents if dtype is None else self.class_tangents.to(dtype)
        return expmap0(tangents, c=self.curvature, dim=1)

    def forward(self, features: Tensor) -> HeadOutput:
        """Classify ``features [B, C_dec, h, w]``.

        Returns:
            ``HeadOutput(logits [B, K, h, w], embeddings [B, D, h, w] ball points,
            radius [B, h, w] = 2 ||v||)`` where ``v`` is the tangent vector mapped by ``expmap0``.
        """
        _check_features(features, self.in_channels)
        tangent = self.reduce(features)
        out_dtype = torch.promote_types(tangent.dtype, torch.float32)
        work_dtype = torch.promote_types(out_dtype, self.precision)
        with torch.autocast(device_type=tangent.device.type, enabled=False):
            tangent = tangent.to(out_dtype)
            if self.hfr is not None:
                tangent = self.hfr(tangent)
            radius = tangent_radius(tangent, dim=1)
            tangent = tangent.to(work_dtype)
            points = expmap0(tangent, c=self.curvature, dim=1)
            logits = mlr_logits(
                points,
                self.class_points(work_dtype),
                self.normals.to(work_dtype),
                c=self.curvature,
            )
        return HeadOutput(logits.to(out_dtype), points.to(out_dtype), radius)

    def extra_repr(self) -> str:
        precision = "float64" if self.precision == torch.float64 else "float32"
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"embed_dim={self.embed_dim}, curvature={self.curvature}, precision={precision}"
        )
