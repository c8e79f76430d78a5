"""The label plan of a synthetic scene and what it is drawn with: class and part codes, the
camera, a domain's scene statistics (:class:`SceneStats`) and the :class:`Plan` itself.

:mod:`~halo.data.synthetic.scene` draws a street into a plan; :mod:`~halo.data.synthetic.styles`
renders a plan as an image (docs/design.md, section "The synthetic benchmark").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from halo.data import labels as L

# Cityscapes train ids, for readability.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = range(11, 19)
VOID = L.IGNORE_INDEX

# Part codes: how a region of an instance is rendered.
BASE, GLASS, LIGHTPART, MARK, DARK = range(5)


@dataclass(frozen=True)
class Camera:
    """Perspective of a flat street: ground point (X, s) → screen (vx + X·s·f, yh + s·(H − yh)).

    ``s`` = 1/distance is 1 at the bottom row and 0 at the horizon; one world unit (a road
    half-width, ~3.5 m) spans ``f = W/2`` pixels at s = 1.
    """

    height: int
    width: int
    yh: float
    vx: float

    @property
    def f(self) -> float:
        return self.width / 2.0

    @property
    def ground_span(self) -> float:
        return self.height - self.yh

    def ground_y(self, s):
        return self.yh + s * self.ground_span


@dataclass(frozen=True)
class SceneStats:
    """Scene statistics of a domain: the camera and how often each object kind appears.

    Counts are Poisson means per scene. ``scale`` multiplies the counts of object classes
    (Cityscapes train id → factor; :data:`~halo.data.synthetic.scene.SCALABLE` lists them): the
    frequency intervention of the radius experiments. Each object kind draws from its own random
    stream and the counts are nested (a factor below 1 drops objects of the default scene, above
    1 adds some), so scaling one class leaves every other object of every scene where it was.
    """

    horizon: tuple[float, float] = (0.36, 0.48)
    cars: float = 6.0  # moving cars
    trucks: float = 0.5
    buses: float = 0.4
    trams: float = 0.35  # on rails in the middle of the road
    parked: float = 8.0
    persons: float = 1.65  # groups of pedestrians on the sidewalks (1 + Poisson(0.6) each)
    riders: float = 0.55
    bicycles: float = 0.6  # parked side-on on the sidewalk
    motorcycles: float = 0.3
    poles: tuple[float, float] = (4.0, 9.0)  # spacing range in depth units
    lights: float = 0.4  # share of poles carrying a traffic light ...
    signs: float = 0.4  # ... or a sign
    trees: float = 2.5
    terrain_prob: float = 0.3
    fence_prob: float = 0.35
    ego_prob: float = 0.0
    substitute: dict[int, int] = field(default_factory=dict)
    scale: dict[int, float] = field(default_factory=dict)


class Plan:
    """Label plan of one scene: train ids, instance ids, part codes and depth, all [H, W]."""

    def __init__(self, height: int, width: int, substitute: dict[int, int]) -> None:
        self.label = np.full((height, width), SKY, dtype=np.uint8)
        self.inst = np.zeros((height, width), dtype=np.int32)
        self.part = np.zeros((height, width), dtype=np.uint8)
        self.depth = np.zeros((height, width), dtype=np.float32)  # s = 1/distance (0: sky)
        self.classes: list[int] = [SKY]
        self._sub = substitute
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5

    def new(self, cls: int) -> int:
        """A new instance of class ``cls`` (after the domain's class substitutions)."""
        self.classes.append(self._sub.get(cls, cls))
        return len(self.classes) - 1

    def paint(self, box, mask, inst: int, part: int = BASE, s: float | np.ndarray = 0.0) -> None:
        """Paint ``mask`` (bool, shape of ``box``) with an instance/part at depth ``s``."""
        ys, xs = box
        sub = (ys, xs)
        self.label[sub][mask] = self.classes[inst]
        self.inst[sub][mask] = inst
        self.part[sub][mask] = part
        d = self.depth[sub]
        d[mask] = s[mask] if isinstance(s, np.ndarray) else s

    def box(self, x0, x1, y0, y1):
        """Integer pixel box covering [x0, x1) × [y0, y1), clipped; None if empty."""
        h, w = self.label.shape
        c0, c1 = max(math.floor(x0), 0), min(math.ceil(x1), w)
        r0, r1 = max(math.floor(y0), 0), min(math.ceil(y1), h)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def rect(self, x0, x1, y0, y1, inst, part=BASE, s=0.0, min_w=1.0):
        """Fill a screen rectangle, at least ``min_w`` pixels wide (thin objects stay visible)."""
        if x1 - x0 < min_w:
            c = (x0 + x1) / 2
            x0, x1 = c - min_w / 2, c + min_w / 2
        b = self.box(x0, x1, y0, y1)
        if b is not None:
            self.paint(
                b, np.ones((b[0].stop - b[0].start, b[1].stop - b[1].start), bool), inst, part, s
            )

    def ellipse(self, cx, cy, rx, ry, inst, part=BASE, s=0.0):
        rx, ry = max(rx, 0.75), max(ry, 0.75)
        b = self.box(cx - rx, cx + rx, cy - ry, cy + ry)
        if b is not None:
            m = ((self.xx[b] - cx) / rx) ** 2 + ((self.yy[b] - cy) / ry) ** 2 <= 1.0
            self.paint(b, m, inst, part, s)
