"""One helper for every name → object table of the package (docs/design.md, "Registries").

A :class:`Registry` is a read-only mapping from lower-case names to objects with one lookup
rule: :meth:`Registry.lookup` is case-insensitive and an unknown name is a ``ValueError`` that
lists the valid ones. Entries are added once, by decorator or :meth:`Registry.add`; a second
entry under one name is an error. An entry may be *lazy* (``"module:attribute"``): its name is
known at once and its module is imported on first access, so a table whose objects need torch
can be listed, checked and validated without importing torch (the workflow parses that way).

The registries and their owners:

================== =============================== ==============================================
registry           owner                           holds
================== =============================== ==============================================
BENCHMARKS         ``halo.config.benchmarks``      :class:`~halo.config.benchmarks.Benchmark`
PROTOCOLS          ``halo.data.labels``            class protocols (19 / 16 classes)
DATASETS           ``halo.data``                   dataset modules (layout + discovery)
STYLES             ``halo.data.synthetic``         synthetic styles → dataset written
ARCHITECTURES      ``halo.models.presets``         smp architectures
BACKBONES          ``halo.models.presets``         encoder + decoder presets
HEADS              ``halo.models.presets`` (lazy)  head classes of ``halo.models.heads``
DECODERS           ``halo.models.presets`` (lazy)  decoder rebuilds of ``halo.models.decoders``
METHODS            ``halo.acquisition.methods``    method presets (model, radii)
STRATEGIES         ``halo.acquisition.strategies`` strategy classes (the scores)
TRAINING_PROTOCOLS ``halo.choices``                what a training job learns from = a run's kind
OPTIMIZERS         ``halo.choices`` (lazy)         optimiser builders of ``halo.engine.optim``
SCHEDULES          ``halo.choices``                learning-rate decays after the warm-up
ANNOTATORS         ``halo.choices`` (lazy)         who labels a round (simulated, human)
================== =============================== ==============================================
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "did_you_mean"]

T = TypeVar("T")


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``names`` to a misspelt ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Lazy:
    """A ``"module:attribute"`` reference, imported on first access."""

    __slots__ = ("ref",)

    def __init__(self, ref: str) -> None:
        module, sep, attr = ref.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"lazy registry entry must be 'module:attribute', got {ref!r}")
        self.ref = ref

    def load(self) -> Any:
        module, _, attr = self.ref.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry(Mapping[str, T], Generic[T]):
    """A name → object table with one lookup rule.

    Args:
        what: what the table holds, for messages (``"strategy"``, ``"head"``, ...).
        entries: initial ``(name, object)`` pairs or a mapping.
        ordered: an unknown name lists the valid ones in declaration order after ``valid:``
            (tables whose order means something: benchmarks, datasets); otherwise sorted after
            ``valid names:``.
        discover: called once, the first time a name is missing, to register entries that
            live in modules not imported yet (the acquisition plugins); then the name is
            looked up again.
    """

    def __init__(
        self,
        what: str,
        entries: Mapping[str, T] | Iterable[tuple[str, T]] = (),
        *,
        ordered: bool = False,
        discover: Callable[[], None] | None = None,
    ) -> None:
        self.what = what
        self.ordered = ordered
        self._discover = discover
        self._entries: dict[str, Any] = {}
        items = entries.items() if isinstance(entries, Mapping) else entries
        for name, obj in items:
            self.add(name, obj)

    # ---- building ----------------------------------------------------------------------------

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (lower-case, non-empty, not yet taken)."""
        self._check_new(name)
        self._entries[name] = obj
        return obj

    def add_lazy(self, name: str, ref: str) -> None:
        """Register ``"module:attribute"`` under ``name``; it is imported on first access."""
        self._check_new(name)
        self._entries[name] = _Lazy(ref)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REGISTRY.register("name")``."""
        self._check_new(name)
        return lambda obj: self.add(name, obj)

    def _check_new(self, name: str) -> None:
        if not isinstance(name, str) or not name or name != name.lower():
            raise ValueError(
                f"{self.what} registry: a name must be a non-empty lower-case str, got {name!r}"
            )
        if name in self._entries:
            raise ValueError(f"{self.what} registry: {name!r} is already registered")

    # ---- reading -----------------------------------------------------------------------------

    def lookup(self, name: str) -> T:
        """The entry called ``name`` (case-insensitive).

        Raises:
            ValueError: ``name`` is not registered; the message lists the valid names.
        """
        key = name.lower() if isinstance(name, str) else name
        if key not in self:
            hint = did_you_mean(str(name).lower(), self._entries)
            raise ValueError(f"unknown {self.what} {name!r}{hint}; {self.listing()}")
        return self[key]

    def listing(self) -> str:
        """``valid: a, b`` (declaration order) or ``valid names: a, b`` (sorted)."""
        if self.ordered:
            return f"valid: {', '.join(self._entries)}"
        return f"valid names: {', '.join(sorted(self._entries))}"

    def __getitem__(self, name: str) -> T:
        obj = self._entries[name]
        if isinstance(obj, _Lazy):
            obj = self._entries[name] = obj.load()
        return obj

    def __contains__(self, name: object) -> bool:  # no import of lazy entries
        if name not in self._entries and self._discover is not None:
            discover, self._discover = self._discover, None  # once, even if it fails
            discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"
