"""Models: Poincaré-ball math, Euclidean / hyperbolic heads, and the smp-based segmenter."""

from halo.models.heads import HEADS, HFR, EuclideanHead, HeadOutput, HyperbolicHead, build_head
from halo.models.hyperbolic import expmap0, mlr_logits, radius, tangent_radius
from halo.models.segmenter import (
    BACKBONES,
    BackbonePreset,
    Segmenter,
    SegmenterOutput,
    build_backbone,
    build_segmenter,
    check_input_size,
    get_backbone,
)

__all__ = [
    "BACKBONES",
    "HEADS",
    "HFR",
    "BackbonePreset",
    "EuclideanHead",
    "HeadOutput",
    "HyperbolicHead",
    "Segmenter",
    "SegmenterOutput",
    "build_backbone",
    "build_head",
    "build_segmenter",
    "check_input_size",
    "expmap0",
    "get_backbone",
    "mlr_logits",
    "radius",
    "tangent_radius",
]
