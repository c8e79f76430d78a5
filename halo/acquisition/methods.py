"""Method presets, torch-free: what each acquisition method needs of the model and of selection.

A *method* is what a cell of the study grid runs; its preset is data: the segmenter options it
requires (head, HFR, decoder width), the region radius ``a`` (also the score window ``k``), the
block radius ``m`` and whether its score reads the model's radius map. The config layer resolves
a run from these presets without importing torch (docs/design.md, section "The resolved run");
:mod:`halo.acquisition.strategies` implements each method's score and takes its preset from here.

========== ================================================ ============================== ==
name       score                                            model preset                   m
========== ================================================ ============================== ==
random     uniform noise from a seeded CPU generator        --                             5
entropy    window-summed entropy                            --                             5
ripu       impurity × window-mean entropy (no min-max)      euclidean head, 512-ch decoder 3
halo       minmax(radius) × minmax(window-summed entropy)   hyperbolic head, HFR           5
halo-nohfr as ``halo``                                      hyperbolic head, no HFR        5
featnorm   as ``halo``; the radius is the feature norm      euclidean head                 5
radius     minmax(radius) (ablation)                        hyperbolic head, HFR           5
========== ================================================ ============================== ==
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from halo.registry import Registry

__all__ = ["METHODS", "MethodPreset", "get_method"]


@dataclass(frozen=True)
class MethodPreset:
    """What a method requires.

    Attributes:
        name: registry name (lower-case).
        model: segmenter options the method requires (``head``, ``hfr``, ``decoder_channels``);
            read-only.
        active_radius: ``a``: a region labels ``(2a+1)²`` pixels; also the score window ``k``.
        mask_radius: ``m``: a centre blocks its ``(2m+1)²`` window for later centres.
        needs_radius: whether the score reads the model's radius map.
    """

    name: str
    model: Mapping[str, Any] = field(default_factory=dict)
    active_radius: int = 1
    mask_radius: int = 5
    needs_radius: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))


METHODS: Registry[MethodPreset] = Registry("strategy")
"""Method presets, lower-case name -> :class:`MethodPreset` (the strategies' names)."""
for _preset in (
    MethodPreset("random"),
    MethodPreset("entropy"),
    MethodPreset("ripu", {"head": "euclidean", "decoder_channels": 512}, mask_radius=3),
    MethodPreset("halo", {"head": "hyperbolic", "hfr": True}, needs_radius=True),
    MethodPreset("halo-nohfr", {"head": "hyperbolic", "hfr": False}, needs_radius=True),
    MethodPreset("featnorm", {"head": "euclidean"}, needs_radius=True),
    MethodPreset("radius", {"head": "hyperbolic", "hfr": True}, needs_radius=True),
):
    METHODS.add(_preset.name, _preset)


def get_method(name: str) -> MethodPreset:
    """The preset of method ``name`` (case-insensitive); ``ValueError`` listing the valid ones."""
    return METHODS.lookup(name)
