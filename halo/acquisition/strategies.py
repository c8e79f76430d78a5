"""Acquisition strategies: a registry of named scoring rules around one template-method base.

A strategy turns a batch of model outputs into an acquisition map ``[B, H, W]`` (higher = label
first). Subclasses implement only :meth:`Strategy.score`; the base class owns everything else:

- input checks (logits shape, the radius when the strategy needs it);
- the non-finite rule: every NaN / ``+inf`` / ``-inf`` score becomes ``-inf``, so such a pixel is
  never chosen before any pixel with a finite score (among themselves, ties go to the lowest
  row-major index, like every tie);
- the budget (``n = ceil(H·W · round_budget / (2a+1)²)`` regions per image) and the exact greedy
  selection with the blocked pixels of earlier rounds (:func:`~halo.acquisition.selection.select_regions`).

Each registered class carries its method's preset, declared once, torch-free, in
:mod:`halo.acquisition.methods` (``METHODS``): ``active_radius`` (``a``, also the score window's
``k``), ``mask_radius`` (``m``), ``needs_radius`` and ``model_preset`` (the segmenter options the
method requires). A strategy registered here under a name ``METHODS`` does not know adds its
class attributes there as its preset. Registered names: ``random``, ``entropy``, ``ripu``,
``halo``, ``halo-nohfr``, ``featnorm``, ``radius``, ``halo-src``, ``halo-src-inv`` and the ``-nl``
twins of the first four (the table in :mod:`halo.acquisition.methods`).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from halo.acquisition.budget import PoolBudget, select_within
from halo.acquisition.methods import METHODS, discover_plugins
from halo.acquisition.scores import (
    minmax_normalize,
    pixel_entropy,
    region_impurity,
    upsample_radius,
    window_mean,
    window_sum,
)
from halo.acquisition.selection import Selection, check_budget
from halo.registry import Registry

__all__ = [
    "STRATEGIES",
    "EntropyNlStrategy",
    "EntropyStrategy",
    "FeatNormStrategy",
    "HaloNlStrategy",
    "HaloNoHfrStrategy",
    "HaloSourceInverseStrategy",
    "HaloSourceStrategy",
    "HaloStrategy",
    "RadiusStrategy",
    "RandomNlStrategy",
    "RandomStrategy",
    "RipuNlStrategy",
    "RipuStrategy",
    "Strategy",
    "build_strategy",
    "get_strategy_class",
    "register_strategy",
]


def _check_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
    return value


class Strategy(ABC):
    """Base class: subclasses implement :meth:`score` and declare what they need.

    Class attributes (the method preset):
        name: registry name (set by :func:`register_strategy`).
        needs_radius: whether :meth:`score` reads a radius map.
        radius_from: whose radius: ``"model"`` (the scored model) or ``"source"`` (the run's
            source-only model).
        needs_seed: whether the class takes a ``seed`` (it draws random numbers).
        active_radius: ``a``: a region labels ``(2a+1)²`` pixels; also the score window ``k``.
        mask_radius: ``m``: a centre blocks its ``(2m+1)²`` window for later centres.
        model_preset: segmenter options the method requires (read-only; copy before changing).

    Args:
        active_radius: override the preset's ``a``.
        mask_radius: override the preset's ``m``.
    """

    name: ClassVar[str] = ""
    needs_radius: ClassVar[bool] = False
    radius_from: ClassVar[str] = "model"
    needs_seed: ClassVar[bool] = False
    model_preset: ClassVar[dict[str, Any]] = {}
    active_radius: int = 1
    mask_radius: int = 5

    def __init__(self, *, active_radius: int | None = None, mask_radius: int | None = None) -> None:
        where = f"strategy {self.name!r}"
        if active_radius is not None:
            self.active_radius = _check_int(active_radius, "active_radius", where)
        if mask_radius is not None:
            self.mask_radius = _check_int(mask_radius, "mask_radius", where)

    @abstractmethod
    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        """Raw acquisition scores of a batch (higher = label first).

        Args:
            logits: ``[B, C, H, W]`` float logits at the input resolution.
            radius: ``[B, h, w]`` radius map at the decoder's resolution (hyperbolic ``d(0, x)``
                or the feature norm); ``None`` unless :attr:`needs_radius`.

        Returns:
            ``[B, H, W]`` scores on ``logits``' device; may hold non-finite values.
        """

    def acquisition_map(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        """Checked scores with the non-finite rule applied.

        Args:
            logits: ``[B, C, H, W]`` float logits.
            radius: ``[B, h, w]`` float radius map; required when :attr:`needs_radius`.

        Returns:
            ``[B, H, W]``: :meth:`score`, with NaN and ``±inf`` replaced by ``-inf``.
        """
        where = f"strategy {self.name!r}"
        if not isinstance(logits, Tensor) or logits.ndim != 4 or not logits.is_floating_point():
            got = list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"{where}: logits must be a float [B, C, H, W] tensor, got {got}")
        b, _, h, w = logits.shape
        if self.needs_radius:
            if radius is None:
                raise ValueError(f"{where} needs the model's radius map [B, h, w]; got None")
            if not isinstance(radius, Tensor) or radius.ndim != 3 or radius.shape[0] != b:
                got = list(radius.shape) if isinstance(radius, Tensor) else type(radius).__name__
                raise ValueError(f"{where}: radius must be [B={b}, h, w], got {got}")
        s = self.score(logits, radius if self.needs_radius else None)
        if not isinstance(s, Tensor) or tuple(s.shape) != (b, h, w):
            got = list(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"{where}: score() must return [B, H, W] = {[b, h, w]}, got {got}")
        return torch.where(torch.isfinite(s), s, torch.full_like(s, -torch.inf))

    def select(
        self,
        logits: Tensor,
        *,
        round_budget: float | None = None,
        account: PoolBudget | None = None,
        radius: Tensor | None = None,
        blocked: Tensor | None = None,
        labelled: Tensor | None = None,
    ) -> Selection:
        """Score a batch and pick this round's regions in every image.

        Args:
            logits: ``[B, C, H, W]`` float logits.
            round_budget: fraction of the batch's pixels to label (a pool of its own), when no
                ``account`` is given.
            account: the round's :class:`~halo.acquisition.budget.PoolBudget` over the pool.
            radius: ``[B, h, w]`` radius map (when :attr:`needs_radius`).
            blocked: ``[B, H, W]`` bool, pixels earlier rounds blocked (never centres).
            labelled: ``[B, H, W]`` bool, pixels earlier rounds labelled (they count).

        Returns:
            :class:`~halo.acquisition.selection.Selection` for the batch (centres as a list).
        """
        return self.pick(
            self.acquisition_map(logits, radius),
            round_budget=round_budget,
            account=account,
            blocked=blocked,
            labelled=labelled,
        )

    def pick(
        self,
        score: Tensor,
        *,
        round_budget: float | None = None,
        account: PoolBudget | None = None,
        blocked: Tensor | None = None,
        labelled: Tensor | None = None,
    ) -> Selection:
        """This round's regions from an acquisition map: the one selection routine of every
        strategy (exact greedy with this strategy's radii, each image within its pixel
        allowance: :func:`~halo.acquisition.budget.select_within`).

        Args:
            score: ``[B, H, W]`` (or ``[H, W]``) acquisition map, e.g. :meth:`acquisition_map`.
            round_budget: fraction of the map's pixels to label, when no ``account`` is given.
            account: the round's :class:`~halo.acquisition.budget.PoolBudget` over the pool.
            blocked: bool, ``score``'s shape: pixels earlier rounds blocked (never centres).
            labelled: bool, ``score``'s shape: pixels earlier rounds labelled.

        Returns:
            :class:`~halo.acquisition.selection.Selection` (centres as a list for a batch).
        """
        if account is None:
            if round_budget is None:
                raise ValueError(f"strategy {self.name!r}: give round_budget or account")
            check_budget(round_budget, f"strategy {self.name!r}")
            account = PoolBudget(round_budget)
        single = score.ndim == 2
        if single:
            score = score.unsqueeze(0)
            blocked = None if blocked is None else blocked.unsqueeze(0)
            labelled = None if labelled is None else labelled.unsqueeze(0)
        sel, _ = select_within(
            score,
            account,
            active_radius=self.active_radius,
            mask_radius=self.mask_radius,
            blocked=blocked,
            labelled=labelled,
        )
        if single:
            return Selection(sel.centres[0], sel.labelled[0], sel.blocked[0])
        return sel

    def with_radii(
        self, *, active_radius: int | None = None, mask_radius: int | None = None
    ) -> Strategy:
        """A shallow copy with other radii (shares any random generator with ``self``)."""
        other = copy.copy(self)
        Strategy.__init__(other, active_radius=active_radius, mask_radius=mask_radius)
        return other

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, active_radius={self.active_radius}, "
            f"mask_radius={self.mask_radius})"
        )


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", discover=discover_plugins)
"""Registered strategies, lower-case name -> class."""


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: register a :class:`Strategy` subclass under a lower-case ``name``.

    The class takes the preset of ``name`` from :data:`~halo.acquisition.methods.METHODS`,
    which must hold it already (presets have one owner). A new method is one module of
    :mod:`halo.acquisition.plugins`: its preset, then its class (docs/design.md, "The method").
    """
    register = STRATEGIES.register(name)

    def deco(cls: type[Strategy]) -> type[Strategy]:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ValueError(f"register_strategy: {cls!r} is not a Strategy subclass")
        if name not in METHODS:  # the preset's one owner is METHODS
            raise ValueError(
                f"register_strategy({name!r}): no method preset of that name; register it "
                f"first: METHODS.add({name!r}, MethodPreset({name!r}, ...))"
            )
        preset = METHODS[name]
        cls.model_preset = dict(preset.model)
        cls.active_radius = preset.active_radius
        cls.mask_radius = preset.mask_radius
        cls.needs_radius = preset.needs_radius
        cls.radius_from = preset.radius_from
        cls.needs_seed = preset.needs_seed
        cls.name = name
        return register(cls)

    return deco


def get_strategy_class(name: str) -> type[Strategy]:
    """The strategy class registered as ``name`` (case-insensitive).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    return STRATEGIES.lookup(name)


def build_strategy(name: str, **options: Any) -> Strategy:
    """Build the strategy registered as ``name`` with keyword ``options``.

    Args:
        name: a key of :data:`STRATEGIES` (``"random"``, ``"entropy"``, ``"ripu"``, ``"halo"``, ...).
        **options: ``active_radius``, ``mask_radius``; ``seed`` for ``random``.

    Raises:
        ValueError: unknown name or option.
    """
    cls = get_strategy_class(name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ValueError(f"strategy {cls.name!r}: bad options {sorted(options)}: {err}") from None


@register_strategy("random")
class RandomStrategy(Strategy):
    """Uniform random scores (the random-pixels baseline).

    Draws on the CPU from its own ``torch.Generator`` seeded at construction and moves the
    result to the logits' device, so the same seed gives the same masks on CPU and GPU. Scores are
    float32 (float64 for float64 logits) whatever the logits' precision: half precision would turn
    the noise into ties, which go to the lowest index (a bias to the top rows).

    Args:
        seed: seed of the generator; each call continues the same stream.
    """

    def __init__(self, *, seed: int = 0, **radii: int | None) -> None:
        super().__init__(**radii)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"strategy 'random': seed must be an int, got {seed!r}")
        self.seed = seed
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        b, _, h, w = logits.shape
        dtype = torch.promote_types(logits.dtype, torch.float32)
        noise = torch.rand((b, h, w), generator=self._generator, dtype=torch.float32)
        return noise.to(device=logits.device, dtype=dtype)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", seed={self.seed})"


@register_strategy("entropy")
class EntropyStrategy(Strategy):
    """Prediction entropy summed over the ``(2k+1)²`` window (``k = active_radius``)."""

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        return window_sum(pixel_entropy(logits), self.active_radius)


@register_strategy("ripu")
class RipuStrategy(Strategy):
    """RIPU: region impurity × window-mean entropy, without min-max normalisation.

    Official settings: Euclidean head, 512-channel decoder, block radius ``m = 3``.
    """

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        k = self.active_radius
        return region_impurity(logits, k) * window_mean(pixel_entropy(logits), k)


@register_strategy("halo")
class HaloStrategy(Strategy):
    """HALO: ``A = minmax(R) ⊙ minmax(H)``, per image.

    ``R`` is the model's radius map upsampled bilinearly to the logits' size, ``H`` the
    window-summed entropy. With a Euclidean head ``R`` is the feature norm (see ``featnorm``).
    """

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        assert radius is not None  # checked by acquisition_map
        entropy = window_sum(pixel_entropy(logits), self.active_radius)
        r = upsample_radius(radius, tuple(logits.shape[-2:])).to(entropy.dtype)
        return minmax_normalize(r) * minmax_normalize(entropy)


@register_strategy("halo-nohfr")
class HaloNoHfrStrategy(HaloStrategy):
    """Ablation: HALO's score with a hyperbolic head without feature reweighting."""


@register_strategy("featnorm")
class FeatNormStrategy(HaloStrategy):
    """Ablation: HALO's score with a Euclidean head: the feature norm in place of the radius."""


@register_strategy("radius")
class RadiusStrategy(Strategy):
    """Ablation: the min-max normalised radius alone."""

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        assert radius is not None  # checked by acquisition_map
        r = upsample_radius(radius, tuple(logits.shape[-2:]))
        return minmax_normalize(r.to(torch.promote_types(r.dtype, logits.dtype)))


@register_strategy("halo-src")
class HaloSourceStrategy(HaloStrategy):
    """HALO's score with the radius of the run's source-only model (frozen, the paper's sign)
    and the entropy of the model being scored; the caller passes the source model's radius."""


@register_strategy("halo-src-inv")
class HaloSourceInverseStrategy(Strategy):
    """Control of ``halo-src``: ``minmax(−R_source) ⊙ minmax(H)``, the source radius inverted."""

    def score(self, logits: Tensor, radius: Tensor | None = None) -> Tensor:
        assert radius is not None  # checked by acquisition_map
        return HaloStrategy.score(self, logits, -radius)


@register_strategy("random-nl")
class RandomNlStrategy(RandomStrategy):
    """``random``'s selection; the run trains with negative learning (the method's preset)."""


@register_strategy("entropy-nl")
class EntropyNlStrategy(EntropyStrategy):
    """``entropy``'s selection; the run trains with negative learning (the method's preset)."""


@register_strategy("ripu-nl")
class RipuNlStrategy(RipuStrategy):
    """``ripu``'s selection; the run trains with negative learning (the method's preset)."""


@register_strategy("halo-nl")
class HaloNlStrategy(HaloStrategy):
    """``halo``'s selection; the run trains with negative learning (the method's preset)."""
