"""The named choices of a run, each declared once (docs/design.md, "Registries").

Config validation, the CLI's ``choices``, the run layout, tracking and the workflow read these
tables; nothing else spells their names. The module imports no torch: an entry whose object
needs torch (an optimiser) is lazy (``"module:attribute"``, imported on first use), so the names
are known to a dry run, a config check or ``halo --help`` without loading it.

- ``TRAINING_PROTOCOLS``: what a training job learns from (``source``, ``supervised``,
  ``active``); also the kind of a run record;
- ``OPTIMIZERS``: ``train.optimizer``, name → builder of :mod:`halo.engine.optim` (lazy);
- ``SCHEDULES``: ``train.schedule``, name → decay of the learning rate after the warm-up;
- ``SOURCE_ORDERS``: ``train.source_order``, name → the pool the source batches permute
  (:mod:`halo.engine.batches`, lazy);
- ``ANNOTATORS``: who labels a round, name → class of :mod:`halo.acquisition.annotators` (lazy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from halo.registry import Registry

__all__ = [
    "ANNOTATORS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SOURCE_ORDERS",
    "TRAINING_PROTOCOLS",
    "Protocol",
]


@dataclass(frozen=True)
class Protocol:
    """A training protocol: which labels a step learns from."""

    name: str
    source: bool  # a batch of labelled source images every step
    target: bool  # a batch of target images with their (acquired or full) labels every step
    help: str


#: Training protocols, in the order of a report (also the ``kind`` of a run record).
TRAINING_PROTOCOLS: Registry[Protocol] = Registry(
    "training protocol",
    [
        (p.name, p)
        for p in (
            Protocol("source", True, False, "source labels only: the source-only model"),
            Protocol("supervised", False, True, "the fully labelled target: the upper bound"),
            Protocol("active", True, True, "source labels plus the acquired target labels"),
        )
    ],
    ordered=True,
)


def poly(p: float, power: float) -> float:
    """``(1 − p)^power`` at the fraction ``p`` in [0, 1] of the decay."""
    return max(1.0 - p, 0.0) ** power


def cosine(p: float, power: float) -> float:
    """``(1 + cos(π p)) / 2`` (``power`` unused)."""
    del power
    return 0.5 * (1.0 + math.cos(math.pi * p))


#: ``train.schedule``: the learning-rate factor after the warm-up, as a function of ``p``.
SCHEDULES: Registry = Registry("schedule", [("poly", poly), ("cosine", cosine)], ordered=True)

#: ``train.optimizer``: builders ``(groups, lr, momentum, weight_decay, adam_beta2)``.
OPTIMIZERS: Registry = Registry("optimizer", ordered=True)
OPTIMIZERS.add_lazy("sgd", "halo.engine.optim:sgd")
OPTIMIZERS.add_lazy("adamw", "halo.engine.optim:adamw")
OPTIMIZERS.add_lazy("riemannian-sgd", "halo.engine.optim:riemannian_sgd")

#: ``train.source_order``: builders ``(dataset, images, seed) -> pool | None`` of the indices
#: the source epochs permute: the dataset itself, or the official class-balanced list
#: (GTAV/SYNTHIA, ``core/datasets/gtav.py:31-59``).
SOURCE_ORDERS: Registry = Registry("source order", ordered=True)
SOURCE_ORDERS.add_lazy("uniform", "halo.engine.batches:uniform_pool")
SOURCE_ORDERS.add_lazy("balanced", "halo.engine.batches:balanced_pool")

#: ``halo acquire --annotator`` and the workflow's ``annotator:``.
ANNOTATORS: Registry = Registry("annotator", ordered=True)
ANNOTATORS.add_lazy("simulated", "halo.acquisition.annotators:Simulated")
ANNOTATORS.add_lazy("human", "halo.acquisition.annotators:Human")
