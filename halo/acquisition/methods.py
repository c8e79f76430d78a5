"""Method presets, torch-free: what each acquisition method needs of the model and of selection.

A *method* is what a cell of the study grid runs; its preset is data: the segmenter options it
requires (head, HFR, decoder width), the region radius ``a`` (also the score window ``k``), the
block radius ``m`` and whether its score reads the model's radius map. The config layer resolves
a run from these presets without importing torch (docs/design.md, section "The resolved run");
:mod:`halo.acquisition.strategies` implements each method's score and takes its preset from here.

============ ============================================== ============================== ==
name         score                                          model preset                   m
============ ============================================== ============================== ==
random       uniform noise from a seeded CPU generator      --                             5
entropy      window-summed entropy                          --                             5
ripu         impurity × window-mean entropy (no min-max)    euclidean head, 512-ch decoder 3
halo         minmax(radius) × minmax(window-summed entropy) hyperbolic head, HFR           5
halo-nohfr   as ``halo``                                    hyperbolic head, no HFR        5
featnorm     as ``halo``; the radius is the feature norm    euclidean head                 5
radius       minmax(radius) (ablation)                      hyperbolic head, HFR           5
halo-src     as ``halo``, the radius of the source model    hyperbolic head, HFR           5
halo-src-inv as ``halo-src``, 1 − minmax(source radius)     hyperbolic head, HFR           5
*-nl         as ``*``, trained with negative learning 1.0   as ``*``                       as
============ ============================================== ============================== ==

``halo-src`` keeps the radius of the paper's sign: the source-only model (which orders class
radius against class frequency as the paper reads it) scores every round's radius, the current
model the entropy. ``halo-src-inv`` inverts that radius: the control for "a scarcity radius adds
information to entropy". The ``-nl`` methods (``random-nl``, ``entropy-nl``, ``ripu-nl``,
``halo-nl``) select as their base method and train the active rounds with the official
negative-learning term (``train.negative_learning = 1.0``, threshold 0.05).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from halo.registry import Registry

__all__ = [
    "METHODS",
    "NEGATIVE_LEARNING",
    "RADIUS_FROM",
    "MethodPreset",
    "discover_plugins",
    "get_method",
]


@dataclass(frozen=True)
class MethodPreset:
    """What a method requires.

    Attributes:
        name: registry name (lower-case).
        model: segmenter options the method requires (``head``, ``hfr``, ``decoder_channels``);
            read-only.
        active_radius: ``a``: a region labels ``(2a+1)²`` pixels; also the score window ``k``.
        mask_radius: ``m``: a centre blocks its ``(2m+1)²`` window for later centres.
        needs_radius: whether the score reads a radius map.
        radius_from: whose radius the score reads: ``"model"`` (the model being scored) or
            ``"source"`` (the run's source-only model, frozen).
        needs_seed: whether the strategy draws random numbers (it is built with a seed).
        train: training options the method fixes (``train.<key>`` values; read-only).
    """

    name: str
    model: Mapping[str, Any] = field(default_factory=dict)
    active_radius: int = 1
    mask_radius: int = 5
    needs_radius: bool = False
    radius_from: str = "model"
    needs_seed: bool = False
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))
        object.__setattr__(self, "train", MappingProxyType(dict(self.train)))
        if self.radius_from not in RADIUS_FROM:
            raise ValueError(
                f"method {self.name!r}: radius_from must be one of {RADIUS_FROM}, "
                f"got {self.radius_from!r}"
            )


RADIUS_FROM = ("model", "source")
"""Whose radius map a method's score reads."""

NEGATIVE_LEARNING = MappingProxyType({"negative_learning": 1.0})
"""The official negative-learning weight (``-nl`` methods; threshold 0.05 in the loss)."""


def discover_plugins() -> None:
    """Import every module of :mod:`halo.acquisition.plugins` (each registers its method)."""
    from halo.acquisition.plugins import discover

    discover()


METHODS: Registry[MethodPreset] = Registry("strategy", discover=discover_plugins)
"""Method presets, lower-case name -> :class:`MethodPreset` (the strategies' names)."""
_HALO = {"head": "hyperbolic", "hfr": True}
_RIPU = {"head": "euclidean", "decoder_channels": 512}
for _preset in (
    MethodPreset("random", needs_seed=True),
    MethodPreset("entropy"),
    MethodPreset("ripu", _RIPU, mask_radius=3),
    MethodPreset("halo", _HALO, needs_radius=True),
    MethodPreset("halo-nohfr", {"head": "hyperbolic", "hfr": False}, needs_radius=True),
    MethodPreset("featnorm", {"head": "euclidean"}, needs_radius=True),
    MethodPreset("radius", _HALO, needs_radius=True),
    MethodPreset("halo-src", _HALO, needs_radius=True, radius_from="source"),
    MethodPreset("halo-src-inv", _HALO, needs_radius=True, radius_from="source"),
    MethodPreset("random-nl", needs_seed=True, train=NEGATIVE_LEARNING),
    MethodPreset("entropy-nl", train=NEGATIVE_LEARNING),
    MethodPreset("ripu-nl", _RIPU, mask_radius=3, train=NEGATIVE_LEARNING),
    MethodPreset("halo-nl", _HALO, needs_radius=True, train=NEGATIVE_LEARNING),
):
    METHODS.add(_preset.name, _preset)


def get_method(name: str) -> MethodPreset:
    """The preset of method ``name`` (case-insensitive); ``ValueError`` listing the valid ones."""
    return METHODS.lookup(name)
