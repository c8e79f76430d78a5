"""Lazy package exports (PEP 562): a package lists what it re-exports, nothing is imported
until a name is first used. ``import halo.models`` or ``import halo.acquisition`` then costs no
torch import, so torch-free submodules (presets, methods, round files) stay torch-free for the
workflow's parse step (docs/design.md, section "Import weight")."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping

__all__ = ["exports"]


def exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package that re-exports ``table`` lazily.

    Args:
        package: the package's ``__name__`` (for messages).
        table: exported name → the submodule (absolute name) that defines it.

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
