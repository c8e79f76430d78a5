"""Models: Poincaré-ball math, Euclidean / hyperbolic heads, and the smp-based segmenter.

Names are exported lazily (:mod:`halo.lazy`): ``import halo.models`` imports no torch, so the
torch-free tables of :mod:`halo.models.presets` serve config validation on their own.
"""

from halo.lazy import exports

_EXPORTS = {
    **dict.fromkeys(
        (
            "ARCHITECTURES",
            "BACKBONES",
            "HEADS",
            "BackbonePreset",
            "check_input_size",
            "get_backbone",
        ),
        "halo.models.presets",
    ),
    **dict.fromkeys(
        ("HFR", "EuclideanHead", "HeadOutput", "HyperbolicHead", "build_head"), "halo.models.heads"
    ),
    **dict.fromkeys(
        ("expmap0", "mlr_logits", "radius", "tangent_radius"), "halo.models.hyperbolic"
    ),
    **dict.fromkeys(
        ("Segmenter", "SegmenterOutput", "build_backbone", "build_segmenter"),
        "halo.models.segmenter",
    ),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)
