"""Acquisition methods added without touching the package: one module here per method.

A module in this folder registers its method itself: first its preset (torch-free data: the
model it needs, its radii), then its strategy (the score)::

    # halo/acquisition/plugins/margin.py
    from halo.acquisition.methods import METHODS, MethodPreset
    from halo.acquisition.scores import window_sum
    from halo.acquisition.strategies import Strategy, register_strategy

    METHODS.add("margin", MethodPreset("margin"))

    @register_strategy("margin")
    class MarginStrategy(Strategy):
        def score(self, logits, radius=None):
            top = logits.softmax(1).topk(2, dim=1).values
            return window_sum(1 - (top[:, 0] - top[:, 1]), self.active_radius)

Nothing else changes: the first time a method name is not found (``--set method=margin``, a
workflow grid's ``methods: [margin]``), :func:`discover` imports every module here, and the name
resolves like a built-in one, in ``halo acquire`` and in the workflow's dry run alike.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["discover"]


def discover() -> None:
    """Import every module of this package (each registers its method)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")
