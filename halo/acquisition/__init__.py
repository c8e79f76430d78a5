"""Acquisition: pixel/region scores, named strategies, exact budgeted selection, round files."""

from halo.acquisition.masks import (
    BudgetReport,
    RoundState,
    acquire,
    label_mask,
    mask_path,
    read_budget,
    read_mask,
    regions_per_image,
    round_complete,
)
from halo.acquisition.scores import (
    minmax_normalize,
    pixel_entropy,
    region_impurity,
    upsample_radius,
    window_mean,
    window_sum,
)
from halo.acquisition.selection import Selection, paint_windows, select_regions
from halo.acquisition.strategies import (
    STRATEGIES,
    Strategy,
    build_strategy,
    get_strategy_class,
    register_strategy,
)

__all__ = [
    "STRATEGIES",
    "BudgetReport",
    "RoundState",
    "Selection",
    "Strategy",
    "acquire",
    "build_strategy",
    "get_strategy_class",
    "label_mask",
    "mask_path",
    "minmax_normalize",
    "paint_windows",
    "pixel_entropy",
    "read_budget",
    "read_mask",
    "region_impurity",
    "regions_per_image",
    "register_strategy",
    "round_complete",
    "select_regions",
    "upsample_radius",
    "window_mean",
    "window_sum",
]
