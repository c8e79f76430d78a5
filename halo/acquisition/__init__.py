"""Acquisition: pixel/region scores, method presets and strategies, exact budgeted selection,
the round folder and the round itself.

Names are exported lazily (:mod:`halo.lazy`): ``import halo.acquisition`` imports no torch, and
the torch-free modules (:mod:`~halo.acquisition.methods`, :mod:`~halo.acquisition.rounds`) stay
so.
"""

from halo.lazy import exports

_EXPORTS = {
    "acquire": "halo.acquisition.loop",
    **dict.fromkeys(("METHODS", "MethodPreset", "get_method"), "halo.acquisition.methods"),
    **dict.fromkeys(
        (
            "BudgetReport",
            "MaskedTarget",
            "RoundState",
            "RoundWriter",
            "label_mask",
            "mask_path",
            "read_budget",
            "read_mask",
            "round_complete",
        ),
        "halo.acquisition.rounds",
    ),
    **dict.fromkeys(
        (
            "minmax_normalize",
            "pixel_entropy",
            "region_impurity",
            "upsample_radius",
            "window_mean",
            "window_sum",
        ),
        "halo.acquisition.scores",
    ),
    **dict.fromkeys(
        ("Selection", "paint_windows", "regions_per_image", "select_regions"),
        "halo.acquisition.selection",
    ),
    **dict.fromkeys(
        ("STRATEGIES", "Strategy", "build_strategy", "get_strategy_class", "register_strategy"),
        "halo.acquisition.strategies",
    ),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)
