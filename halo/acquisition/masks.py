"""Rounds, budget and label-mask files.

Per image and round: n = ceil(H·W · round_budget / (2a+1)²) regions (:func:`regions_per_image`).
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["regions_per_image"]


def regions_per_image(height: int, width: int, round_budget: float, active_radius: int = 1) -> int:
    """Regions to pick in one image in one round: ``ceil(H·W · round_budget / (2a+1)²)``.

    The budget is read as the nearest fraction with denominator ``<= 10⁹`` (so ``0.022 / 5`` and
    ``0.0044`` give the same count, and ``900 · 0.01 / 9`` is exactly 1, not 2 from rounding).

    Args:
        height: image height ``H`` (pixels).
        width: image width ``W`` (pixels).
        round_budget: fraction of the image's pixels to label this round, in ``[0, 1]``.
        active_radius: ``a``: one region labels a ``(2a+1)²`` window.

    Returns:
        The number of regions ``n >= 0``.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"regions_per_image: {name} must be an int >= 1, got {value!r}")
    if isinstance(active_radius, bool) or not isinstance(active_radius, int) or active_radius < 0:
        raise ValueError(
            f"regions_per_image: active_radius must be an int >= 0, got {active_radius!r}"
        )
    if not isinstance(round_budget, (int, float)) or not 0.0 <= float(round_budget) <= 1.0:
        raise ValueError(f"regions_per_image: round_budget must be in [0, 1], got {round_budget!r}")
    budget = Fraction(float(round_budget)).limit_denominator(10**9)
    return math.ceil(height * width * budget / (2 * active_radius + 1) ** 2)
