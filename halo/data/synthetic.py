"""The embedded synthetic benchmark: procedural street scenes written in the real datasets' layouts.

A scene is drawn once as a *label plan* (Cityscapes train ids, instance ids, part codes, depth) in
a perspective street: sky, a skyline, buildings, walls and fences, vegetation and terrain on both
sides of a road with sidewalks, poles carrying traffic lights and signs, parked and moving cars,
trucks, buses, a rare tram, pedestrians, riders on bicycles and motorcycles. A *style* then renders
the plan as an RGB image:

- ``gta`` (source): the flat, saturated Cityscapes colour palette, sharp edges, almost no noise;
- ``cityscapes`` (target): a different palette in which some classes take another class's source
  colour (sidewalk ≈ source road, terrain ≈ source vegetation, wall ≈ source building, fence ≈
  source wall, bus ≈ source traffic light), appearances never seen in the source (random car
  paint and clothing, dark poles, white trucks), textures (asphalt, paving, windows, foliage,
  clouds), an illumination gradient, a colour cast, blur and sensor noise, an ego-vehicle hood;
- ``acdc`` (target): the ``cityscapes`` style (fewer pedestrians and parked cars) under ``fog``
  (haze by distance, washed-out colours), ``night`` (dark, sodium or LED tint, black sky, lit
  windows and lamps, glows), ``rain`` (overcast, desaturated, grey sky, dark wet ground with
  puddles, streaks, drops on the lens) or ``snow`` (snow-covered ground with tyre tracks, white
  sky, bluish light, flakes);
- ``synthia`` (second source): another flat palette and a higher, SYNTHIA-like camera, written in
  SYNTHIA's 16-bit label layout (no terrain, truck or train, as in SYNTHIA's 16-class protocol).

The same (seed, style, split, condition, index) always gives the same image bytes, whatever the
count. Class frequencies are imbalanced like Cityscapes: road, building and vegetation cover most
pixels; pole, light, sign, rider, motorcycle and bicycle stay well under 1 %.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from halo.data import labels as L
from halo.io import write_json, write_png, write_text

STYLES = ("gta", "cityscapes", "synthia", "acdc")
CONDITIONS = ("fog", "night", "rain", "snow")
SPLITS = ("train", "val", "test")

# Cityscapes train ids, for readability.
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY = range(11)
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE = range(11, 19)
VOID = L.IGNORE_INDEX

# Part codes: how a region of an instance is rendered.
BASE, GLASS, LIGHTPART, MARK, DARK = range(5)

_CITIES = {
    "train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt"),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich"),
}
# Offsets so that GTAV/SYNTHIA file numbers of different splits never collide.
_SPLIT_OFFSET = {"train": 0, "val": 30000, "test": 60000}


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------------------------
# Scene plan
# --------------------------------------------------------------------------------------------


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
class DomainLayout:
    """Layout statistics of a domain (the camera and how often each object kind appears)."""

    horizon: tuple[float, float] = (0.36, 0.48)
    cars: float = 7.0
    parked: float = 8.0
    persons: float = 5.0
    riders: float = 1.0
    poles: tuple[float, float] = (4.0, 9.0)  # spacing range in depth units
    trees: float = 2.5
    terrain_prob: float = 0.3
    fence_prob: float = 0.35
    ego_prob: float = 0.0
    substitute: dict[int, int] = field(default_factory=dict)


LAYOUTS = {
    "gta": DomainLayout(),
    "cityscapes": DomainLayout(ego_prob=0.5, persons=4.5, parked=5.0),
    "acdc": DomainLayout(ego_prob=0.4, persons=3.0, parked=5.0),
    "synthia": DomainLayout(
        horizon=(0.18, 0.32),
        persons=6.0,
        cars=4.0,
        substitute={TERRAIN: VEG, TRUCK: BUS, TRAIN: BUS},
    ),
}


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


def _ground(plan: Plan, cam: Camera, rng: np.random.Generator, lay: DomainLayout) -> dict:
    """Road, sidewalks, terrain strips and lane marks; returns the street cross-section."""
    h, w = plan.label.shape
    street = {
        "road": rng.uniform(1.1, 1.8),
        "side": [rng.uniform(0.25, 0.6), rng.uniform(0.25, 0.6)],  # left, right sidewalk
        "terrain": [
            rng.uniform(0.25, 0.9) if rng.random() < lay.terrain_prob else 0.0 for _ in range(2)
        ],
    }
    rows = slice(math.ceil(cam.yh), h)
    yy, xx = plan.yy[rows], plan.xx[rows]
    s = np.maximum((yy - cam.yh) / cam.ground_span, 1e-4)
    gx = (xx - cam.vx) / (s * cam.f)  # lateral world coordinate of each ground pixel
    d = 1.0 / s
    side = (gx > 0).astype(np.intp)
    ax = np.abs(gx)
    sw = np.asarray(street["side"], np.float32)[side]
    r = street["road"]
    # beyond the terrain strip lies ground behind the facades: terrain, seen only in gaps
    cls = np.where(ax <= r, ROAD, np.where(ax <= r + sw, SIDEWALK, TERRAIN))
    ids = {c: plan.new(c) for c in (ROAD, SIDEWALK, TERRAIN)}
    box = (rows, slice(0, w))
    plan.paint(box, np.ones_like(cls, bool), 0, BASE, s)  # depth everywhere below the horizon
    for c, i in ids.items():
        plan.paint(box, cls == c, i, BASE, s)
    # lane marks: dashed centre line and solid edge lines (part MARK, class road)
    dash = (np.mod(d * 0.6, 1.0) < 0.5) & (np.abs(gx) < 0.035)
    edge = np.abs(ax - (r - 0.06)) < 0.025
    plan.paint(box, (dash | edge) & (cls == ROAD), ids[ROAD], MARK, s)
    # paving joints on the sidewalk (part DARK)
    joints = ((np.mod(ax * 5.0, 1.0) < 0.12) | (np.mod(d * 2.0, 1.0) < 0.12)) & (cls == SIDEWALK)
    plan.paint(box, joints, ids[SIDEWALK], DARK, s)
    street["edge"] = [r + street["side"][k] + street["terrain"][k] for k in range(2)]
    return street


def _facade(plan, cam, side, x_world, d_near, d_far, height, inst, *, windows=None, slats=None):
    """A vertical plane at lateral X = ±x_world between two distances, ``height`` units tall."""
    sign = -1.0 if side == 0 else 1.0
    s_near, s_far = 1.0 / d_near, 1.0 / d_far
    xa, xb = cam.vx + sign * x_world * s_far * cam.f, cam.vx + sign * x_world * s_near * cam.f
    x0, x1 = min(xa, xb), max(xa, xb)
    top = cam.yh - (height - cam.ground_span / cam.f) * s_near * cam.f
    b = plan.box(x0, x1, min(top, cam.yh) - 1, cam.ground_y(s_near) + 1)
    if b is None:
        return
    xx, yy = plan.xx[b], plan.yy[b]
    s = (xx - cam.vx) / (sign * x_world * cam.f)
    inside = (s >= s_far) & (s <= s_near)
    s = np.clip(s, 1e-4, None)
    z = (cam.ground_y(s) - yy) / (s * cam.f)  # height above ground, world units
    m = inside & (z >= 0) & (z <= height)
    plan.paint(b, m, inst, BASE, s)
    if windows is not None:
        wd, wz = windows
        dd = 1.0 / s
        win = (np.mod(dd / wd, 1.0) > 0.3) & (np.mod(dd / wd, 1.0) < 0.75)
        win &= (np.mod(z / wz, 1.0) > 0.35) & (np.mod(z / wz, 1.0) < 0.8) & (z > 0.35)
        win &= z < height - 0.15
        plan.paint(b, m & win, inst, GLASS, s)
    if slats is not None:
        dd = 1.0 / s
        plan.paint(b, m & (np.mod(dd / slats, 1.0) < 0.3), inst, DARK, s)


def _skyline(plan, cam, rng):
    """Far buildings and trees along the horizon."""
    x = 0.0
    w = plan.label.shape[1]
    while x < w:
        seg = rng.uniform(0.03, 0.15) * w
        kind = BUILDING if rng.random() < 0.7 else VEG
        top = cam.yh - rng.uniform(0.12, 0.38) * plan.label.shape[0]
        inst = plan.new(kind)
        if kind == VEG:
            plan.ellipse(x + seg / 2, cam.yh, seg / 1.6, cam.yh - top, inst, BASE, 0.03)
        else:
            plan.rect(x, x + seg, top, cam.yh + 1, inst, BASE, 0.03)
        x += seg


def _street_sides(plan, cam, street, rng, lay: DomainLayout):
    for side in (0, 1):
        d = 0.35
        x_b = street["edge"][side]
        while d < 40:
            seg = rng.uniform(2.0, 9.0)
            u = rng.random()
            if u < 0.6:
                inst = plan.new(BUILDING)
                _facade(
                    plan,
                    cam,
                    side,
                    x_b,
                    d,
                    d + seg,
                    rng.uniform(1.2, 4.5),
                    inst,
                    windows=(rng.uniform(0.6, 1.3), rng.uniform(0.6, 1.0)),
                )
            elif u < 0.86:
                inst = plan.new(VEG)
                _facade(plan, cam, side, x_b, d, d + seg, rng.uniform(0.8, 2.5), inst)
            elif u < 0.88:
                inst = plan.new(WALL)
                _facade(plan, cam, side, x_b, d, d + seg, rng.uniform(0.4, 1.2), inst)
            d += seg
        # fences and low walls along the sidewalk's outer edge
        if rng.random() < lay.fence_prob:
            x_f = street["road"] + street["side"][side]
            d0 = rng.uniform(0.4, 6.0)
            kind = FENCE if rng.random() < 0.8 else WALL
            inst = plan.new(kind)
            _facade(
                plan,
                cam,
                side,
                x_f,
                d0,
                d0 + rng.uniform(3, 15),
                rng.uniform(0.25, 0.45),
                inst,
                slats=0.12 if kind == FENCE else None,
            )


def _objects(cam, street, rng, lay: DomainLayout) -> list[tuple[float, tuple]]:
    """Objects as (distance, (kind, lateral X, distance, params)), to be drawn far to near."""
    r = street["road"]
    objs = []
    for _ in range(rng.poisson(lay.cars)):
        d = rng.uniform(1.1, 25)
        u = rng.random()
        kind = CAR if u < 0.86 else TRUCK if u < 0.93 else BUS if u < 0.985 else TRAIN
        objs.append((d, (kind, rng.uniform(-0.7, 0.7) * r, d)))
    for _ in range(rng.poisson(lay.parked)):
        d = rng.uniform(1.0, 20)
        side = rng.choice((-1.0, 1.0))
        objs.append((d, (CAR, side * (r - rng.uniform(0.2, 0.35)), d)))
    for _ in range(rng.poisson(lay.persons)):
        d = rng.uniform(1.1, 22)
        side = int(rng.random() < 0.5)
        x = (1 if side else -1) * (r + rng.uniform(0.05, 0.95) * street["side"][side])
        for _k in range(1 + rng.poisson(0.6)):  # small groups
            objs.append((d, (PERSON, x + rng.normal(0, 0.12), d + abs(rng.normal(0, 0.4)))))
    for _ in range(rng.poisson(lay.riders)):
        d = rng.uniform(1.3, 18)
        side = rng.choice((-1.0, 1.0))
        objs.append((d, (RIDER, side * rng.uniform(0.45, 0.8) * r, d)))
    for _ in range(rng.poisson(1.0)):  # parked bicycles / motorcycles on the sidewalk
        d = rng.uniform(1.2, 15)
        side = int(rng.random() < 0.5)
        x = (1 if side else -1) * (r + rng.uniform(0.3, 0.9) * street["side"][side])
        objs.append((d, (BIKE if rng.random() < 0.7 else MOTO, x, d)))
    for side in (0, 1):
        sign = 1.0 if side else -1.0
        d = rng.uniform(1.0, 4.0)
        while d < 30:
            objs.append((d, (POLE, sign * (r + 0.15 * street["side"][side]), d)))
            d += rng.uniform(*lay.poles)
        for _ in range(rng.poisson(lay.trees)):
            d = rng.uniform(1.2, 25)
            x = sign * (
                r
                + street["side"][side] * rng.uniform(0.6, 1.0)
                + street["terrain"][side] * rng.uniform(0, 1)
            )
            objs.append((d, (VEG, x, d)))
    objs.sort(key=lambda o: -o[0])
    return objs


def _draw(plan: Plan, cam: Camera, obj, rng) -> None:
    kind, x_w, d = obj
    s = 1.0 / d
    px = cam.f * s  # pixels per world unit at this distance
    x = cam.vx + x_w * px
    yb = cam.ground_y(s)
    if kind in (CAR, TRUCK, BUS, TRAIN):
        wdt, hgt = {CAR: (0.56, 0.45), TRUCK: (0.66, 0.95), BUS: (0.72, 0.95), TRAIN: (0.85, 1.05)}[
            kind
        ]
        wdt *= rng.uniform(0.9, 1.1)
        inst = plan.new(kind)
        half = wdt * px / 2
        if kind == CAR:
            plan.rect(x - half, x + half, yb - 0.26 * px, yb - 0.05 * px, inst, BASE, s)
            plan.rect(
                x - half * 0.78, x + half * 0.78, yb - hgt * px, yb - 0.25 * px, inst, BASE, s
            )
            plan.rect(
                x - half * 0.66,
                x + half * 0.66,
                yb - hgt * px * 0.92,
                yb - 0.27 * px,
                inst,
                GLASS,
                s,
            )
        else:
            plan.rect(x - half, x + half, yb - hgt * px, yb - 0.05 * px, inst, BASE, s)
            plan.rect(
                x - half * 0.85,
                x + half * 0.85,
                yb - hgt * px * 0.9,
                yb - hgt * px * (0.62 if kind != TRUCK else 0.75),
                inst,
                GLASS,
                s,
            )
        for sx in (-0.7, 0.7):  # wheels
            plan.ellipse(x + sx * half, yb - 0.06 * px, 0.08 * px, 0.07 * px, inst, DARK, s)
    elif kind in (PERSON, RIDER):
        if kind == RIDER:
            vehicle = plan.new(BIKE if rng.random() < 0.65 else MOTO)
            _two_wheeler(plan, x, yb, px, vehicle, s)
            yb = yb - 0.2 * px
        inst = plan.new(kind)
        hgt = rng.uniform(0.44, 0.54) * (0.85 if kind == RIDER else 1.0)
        wdt = 0.16 * rng.uniform(0.9, 1.2)
        plan.rect(
            x - wdt * px * 0.35,
            x + wdt * px * 0.35,
            yb - hgt * px * 0.48,
            yb,
            inst,
            DARK,
            s,
            min_w=2.0,
        )  # legs
        plan.rect(
            x - wdt * px / 2,
            x + wdt * px / 2,
            yb - hgt * px * 0.82,
            yb - hgt * px * 0.46,
            inst,
            BASE,
            s,
            min_w=2.0,
        )  # torso
        plan.ellipse(x, yb - hgt * px * 0.9, 0.055 * px, 0.075 * px, inst, LIGHTPART, s)
    elif kind in (BIKE, MOTO):
        _two_wheeler(plan, x, yb, px, plan.new(kind), s)
    elif kind == POLE:
        inst = plan.new(POLE)
        hgt = rng.uniform(1.0, 1.3)
        plan.rect(x - 0.03 * px, x + 0.03 * px, yb - hgt * px, yb, inst, BASE, s, min_w=2.0)
        u = rng.random()
        toward = -np.sign(x_w) * 0.08 * px
        if u < 0.38:  # traffic light box with three lamps
            li = plan.new(LIGHT)
            cx, top = x + toward, yb - hgt * px
            plan.rect(cx - 0.06 * px, cx + 0.06 * px, top, top + 0.3 * px, li, BASE, s, min_w=2.0)
            lamp = rng.integers(3)
            plan.ellipse(
                cx, top + (0.05 + 0.1 * lamp) * px, 0.035 * px, 0.035 * px, li, LIGHTPART, s
            )
        elif u < 0.76:  # sign plate (rectangular or round)
            si = plan.new(SIGN)
            cy = yb - hgt * px * rng.uniform(0.7, 0.9)
            r_ = rng.uniform(0.08, 0.12) * px
            if rng.random() < 0.5:
                plan.rect(
                    x + toward - r_, x + toward + r_, cy - r_, cy + r_, si, BASE, s, min_w=2.0
                )
            else:
                plan.ellipse(x + toward, cy, r_, r_, si, BASE, s)
            plan.ellipse(x + toward, cy, r_ * 0.5, r_ * 0.5, si, LIGHTPART, s)
    elif kind == VEG:  # a tree: trunk and crown
        inst = plan.new(VEG)
        hgt = rng.uniform(1.0, 2.2)
        plan.rect(x - 0.04 * px, x + 0.04 * px, yb - hgt * 0.6 * px, yb, inst, DARK, s, min_w=2.0)
        plan.ellipse(x, yb - hgt * 0.7 * px, hgt * 0.35 * px, hgt * 0.33 * px, inst, BASE, s)


def _two_wheeler(plan, x, yb, px, inst, s):
    plan.ellipse(x, yb - 0.09 * px, 0.05 * px, 0.09 * px, inst, DARK, s)  # wheel (seen end-on)
    plan.rect(
        x - 0.1 * px, x + 0.1 * px, yb - 0.26 * px, yb - 0.14 * px, inst, BASE, s, min_w=2.0
    )  # frame / handlebar


def make_plan(style: str, height: int, width: int, rng: np.random.Generator) -> Plan:
    """Draw the label plan of one scene for ``style``'s domain layout."""
    lay = LAYOUTS[style]
    plan = Plan(height, width, lay.substitute)
    cam = Camera(height, width, rng.uniform(*lay.horizon) * height, width * rng.uniform(0.38, 0.62))
    _skyline(plan, cam, rng)
    street = _ground(plan, cam, rng, lay)
    _street_sides(plan, cam, street, rng, lay)
    for _, obj in _objects(cam, street, rng, lay):
        _draw(plan, cam, obj, rng)
    if rng.random() < lay.ego_prob:  # ego-vehicle hood: void
        hood = rng.uniform(0.05, 0.1) * height
        xs = (plan.xx[0] - width / 2) / (width / 2)
        top = height - hood * (1 - 0.5 * xs**2)
        m = plan.yy >= top[None, :]
        plan.label[m] = VOID
        plan.inst[m] = plan.new(VOID)
        plan.part[m] = BASE
        plan.depth[m] = 1.0
    plan.cam = cam  # type: ignore[attr-defined]
    return plan


# --------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------

_P = L.CITYSCAPES_PALETTE.astype(np.float32)

# Target base colours: several classes take another class's *source* colour (structured
# confusions), several take appearances absent from the source.
_TARGET = _P.copy()
_TARGET[ROAD] = (96, 88, 100)
_TARGET[SIDEWALK] = (136, 82, 136)  # ≈ source road
_TARGET[BUILDING] = (150, 132, 112)
_TARGET[WALL] = (72, 72, 72)  # ≈ source building
_TARGET[FENCE] = (104, 104, 150)  # ≈ source wall
_TARGET[POLE] = (48, 48, 52)  # dark: source poles are light grey
_TARGET[LIGHT] = (36, 36, 36)
_TARGET[SIGN] = (30, 70, 185)
_TARGET[VEG] = (62, 104, 40)
_TARGET[TERRAIN] = (110, 140, 38)  # ≈ source vegetation
_TARGET[SKY] = (165, 190, 220)
_TARGET[TRUCK] = (205, 205, 210)
_TARGET[BUS] = (240, 168, 36)  # ≈ source traffic light
_TARGET[TRAIN] = (150, 150, 160)
_TARGET[MOTO] = (34, 34, 38)
_TARGET[BIKE] = (44, 40, 40)

_SYNTHIA = np.clip(_P * 0.8 + np.array([30, 20, 10], np.float32), 0, 255)
_SYNTHIA[SKY] = (120, 160, 205)
_SYNTHIA[ROAD] = (110, 70, 110)

_PAINT = np.array(  # car paints, clothing: appearances never seen in the source
    [
        (200, 200, 205),
        (30, 30, 32),
        (150, 20, 20),
        (190, 190, 60),
        (70, 90, 60),
        (120, 120, 125),
        (160, 100, 60),
        (40, 80, 40),
        (220, 220, 220),
        (90, 40, 100),
    ],
    dtype=np.float32,
)
_SKIN = np.array([(224, 180, 150), (190, 140, 100), (140, 95, 65), (90, 60, 45)], np.float32)


def _smooth_noise(rng, h, w, cell):
    """Zero-mean, unit-variance smooth noise: a coarse Gaussian grid upsampled bilinearly."""
    from PIL import Image

    gh, gw = max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    up = Image.fromarray(g, mode="F").resize((w, h), Image.Resampling.BILINEAR)
    n = np.asarray(up, np.float32)
    return (n - n.mean()) / (n.std() + 1e-6)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of float [H, W, 3] (reflect padding)."""
    r = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    k /= k.sum()
    p = np.pad(img, ((r, r), (0, 0), (0, 0)), mode="reflect")
    img = sum(k[i] * p[i : i + img.shape[0]] for i in range(2 * r + 1))
    p = np.pad(img, ((0, 0), (r, r), (0, 0)), mode="reflect")
    return sum(k[i] * p[:, i : i + img.shape[1]] for i in range(2 * r + 1))


def _instance_colours(plan: Plan, style: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """Base and secondary colour per instance, float [N, 3] each."""
    cls = np.asarray(plan.classes)
    n = len(cls)
    safe = np.where(cls == VOID, 0, cls)
    if style == "gta":
        base = _P[safe] + rng.normal(0, 6, (n, 3))
        second = np.clip(base * 1.35 + 30, 0, 255)
        return base, second
    if style == "synthia":
        base = _SYNTHIA[safe] + rng.normal(0, 8, (n, 3))
        second = np.clip(base * 1.3 + 25, 0, 255)
        return base, second
    base = _TARGET[safe] + rng.normal(0, 10, (n, 3))
    random_look = np.isin(cls, (CAR, PERSON, RIDER)) & (rng.random(n) < 0.75)
    base[random_look] = _PAINT[rng.integers(len(_PAINT), size=random_look.sum())] + rng.normal(
        0, 8, (random_look.sum(), 3)
    )
    second = np.clip(base * 1.2 + 20, 0, 255)
    people = np.isin(cls, (PERSON, RIDER))
    second[people] = _SKIN[rng.integers(len(_SKIN), size=people.sum())]
    lights = cls == LIGHT
    second[lights] = np.array([(230, 40, 30), (250, 190, 40), (40, 220, 90)], np.float32)[
        rng.integers(3, size=lights.sum())
    ]
    signs = cls == SIGN
    second[signs] = np.array([(235, 235, 235), (210, 30, 30)], np.float32)[
        rng.integers(2, size=signs.sum())
    ]
    return base, second


def render(plan: Plan, style: str, rng: np.random.Generator, condition: str | None = None):
    """Render a plan in ``style`` (and ACDC ``condition``) as uint8 [H, W, 3]."""
    h, w = plan.label.shape
    base, second = _instance_colours(plan, style, rng)
    img = base[plan.inst]
    part = plan.part[..., None]
    img = np.where(part == LIGHTPART, second[plan.inst], img)
    img = np.where(part == GLASS, img * 0.45 + (10 if style == "gta" else 25), img)
    img = np.where(part == DARK, img * 0.45, img)
    img = np.where(part == MARK, 235.0, img)
    lab = plan.label[..., None]
    if style in ("gta", "synthia"):
        img = img + rng.normal(0, 2.0, img.shape)
        return np.clip(img, 0, 255).round().astype(np.uint8)

    # target: textures per class
    fine = rng.standard_normal((h, w, 1)).astype(np.float32)
    coarse = _smooth_noise(rng, h, w, 12)[..., None]
    foliage = _smooth_noise(rng, h, w, 3)[..., None]
    tex = np.zeros((h, w, 1), np.float32)
    tex += np.where(lab == ROAD, 9 * fine + 8 * coarse, 0)
    tex += np.where(lab == SIDEWALK, 6 * fine, 0)
    tex += np.where(lab == BUILDING, 12 * coarse, 0)
    tex += np.where((lab == VEG) | (lab == TERRAIN), 28 * foliage + 6 * fine, 0)
    img = img + tex
    sky = lab == SKY
    grad = (plan.yy / h)[..., None]
    clouds = np.clip(_smooth_noise(rng, h, w, 24), 0, None)[..., None]
    img = np.where(sky, img + 40 * grad + 30 * clouds, img)
    # illumination gradient and colour cast
    ang = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(ang) * plan.xx / w + np.sin(ang) * plan.yy / h)[..., None]
    ramp = (ramp - ramp.mean()) * rng.uniform(0.4, 0.9)
    img = img * (1.0 + ramp) * rng.uniform(0.9, 1.1, 3)
    if style == "acdc":
        img = _condition(img, plan, condition or "fog", rng)
    img = _blur(img, rng.uniform(0.5, 1.0))
    img = img + rng.normal(0, rng.uniform(3, 7), img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _luma(img: np.ndarray) -> np.ndarray:
    """Luminance of float [H, W, 3] as [H, W, 1] (Rec. 601 weights)."""
    return (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def _condition(img, plan: Plan, condition: str, rng) -> np.ndarray:
    """Adverse weather or light on top of the target style (ACDC).

    Each condition moves colour, contrast and the sky far from the clean target (and further
    from the source) and keeps the scene's layout. A clear-weather model loses about 17 mIoU
    points on them; but a model trained from scratch on ACDC for the default 500 steps learns
    them little better, so ``synth-cs2acdc`` is not calibrated (README, "Calibration").

    - ``fog``: depth-dependent haze (transmittance ``exp(-k/s)``), a washed-out palette;
    - ``night``: gamma-darkened, sodium- or LED-tinted street light, black sky, lit lamps, small
      glows, extra sensor noise;
    - ``rain``: overcast and desaturated, a grey sky, dark wet ground with bright puddles, streaks
      and blurred drops on the lens;
    - ``snow``: snow cover on the ground (tyre tracks on the road), bright bluish light, a white
      sky, falling flakes.
    """
    h, w = plan.label.shape
    s = plan.depth[..., None]
    lab = plan.label[..., None]
    sky = lab == SKY
    if condition == "fog":
        img = 0.7 * img + 0.3 * _luma(img)
        t = np.exp(-rng.uniform(0.04, 0.1) / np.maximum(s, 1e-3))  # transmittance by distance
        air = rng.uniform(175, 210) * np.array([0.97, 1.0, 1.04], np.float32)
        return img * t + air * (1 - t)
    if condition == "night":
        cast = (
            np.array([1.0, 0.8, 0.55], np.float32)  # sodium lamps
            if rng.random() < 0.5
            else np.array([0.8, 0.88, 1.0], np.float32)  # LED lamps
        )
        x = np.clip(img, 0, 255) / 255
        img = 255 * x**1.2 * rng.uniform(0.5, 0.65) * cast
        img = np.where(sky, rng.uniform(8, 20) * np.array([0.6, 0.7, 1.0], np.float32), img)
        part = plan.part[..., None]
        lit = (part == GLASS) & (lab == BUILDING) & (_smooth_noise(rng, h, w, 4)[..., None] > 0)
        img = np.where(lit, np.array([250, 205, 120], np.float32), img)
        lamps = (part == LIGHTPART) & ((lab == LIGHT) | (lab == SIGN))
        img = np.where(lamps, np.clip(img * 3 + 110, 0, 255), img)
        glow = np.zeros((h, w), np.float32)
        n = rng.poisson(3)
        cy, cx = rng.uniform(0.3, 0.7, n) * h, rng.uniform(0, 1, n) * w
        rad = rng.uniform(0.02, 0.045, n) * w
        for k in range(n):  # a few street-light glows, whole-map vectorised each
            glow += np.exp(-((plan.yy - cy[k]) ** 2 + (plan.xx - cx[k]) ** 2) / rad[k] ** 2)
        img = img + 90 * glow[..., None] * cast
        return img + rng.normal(0, rng.uniform(2, 4), img.shape)
    if condition == "rain":
        img = 0.65 * img + 0.35 * _luma(img)
        img = (img * 0.8 + 10) * np.array([0.94, 0.98, 1.06], np.float32)
        grey = rng.uniform(130, 165) + 12 * _smooth_noise(rng, h, w, 16)[..., None]
        img = np.where(sky, grey, img)
        wet = (lab == ROAD) | (lab == SIDEWALK)
        puddle = wet & (_smooth_noise(rng, h, w, 5)[..., None] > 1.3)
        img = np.where(wet, img * 0.7, img)
        img = np.where(puddle, 0.4 * img + 0.6 * grey, img)
        n = int(rng.uniform(0.006, 0.015) * h * w)
        length = max(3, h // 16)
        y0, x0 = rng.integers(0, h, n), rng.integers(0, w, n)
        t = np.arange(length)
        ys = np.clip(y0[:, None] + t[None, :], 0, h - 1)
        xs = np.clip(x0[:, None] + (t[None, :] * 0.3).astype(int), 0, w - 1)
        streaks = np.zeros((h, w), np.float32)
        np.add.at(streaks, (ys.ravel(), xs.ravel()), 1.0)
        img = img + 35 * np.clip(streaks, 0, 1)[..., None]
        n = rng.poisson(3)  # drops on the lens: discs of the image blurred
        cy, cx = rng.uniform(0, h, n), rng.uniform(0, w, n)
        rad = rng.uniform(0.03, 0.06, n) * w
        d2 = (plan.yy[None] - cy[:, None, None]) ** 2 + (plan.xx[None] - cx[:, None, None]) ** 2
        drops = (d2 < rad[:, None, None] ** 2).any(0)[..., None]
        return np.where(drops, _blur(img, 2.0), img)
    if condition == "snow":
        noise = _smooth_noise(rng, h, w, 6)[..., None]
        road = (lab == ROAD) & (noise > rng.uniform(0.2, 0.6))  # tyre tracks stay dark
        side = np.isin(lab, (SIDEWALK, TERRAIN)) & (noise > rng.uniform(-0.8, -0.2))
        tops = (lab == VEG) & (noise > rng.uniform(0.3, 0.8))
        white = rng.uniform(220, 240) * np.array([0.95, 0.98, 1.04], np.float32)
        img = np.where(road | side | tops, 0.25 * img + 0.75 * white, img)
        img = (0.85 * img + 30) * np.array([0.95, 0.98, 1.05], np.float32)
        img = np.where(sky, rng.uniform(200, 228) + 6 * noise, img)
        flakes = rng.random((h, w, 1)) < rng.uniform(0.005, 0.02)
        return np.where(flakes, 245.0, img)
    raise ValueError(f"unknown ACDC condition {condition!r}; valid: {', '.join(CONDITIONS)}")


# --------------------------------------------------------------------------------------------
# Samples and datasets on disk
# --------------------------------------------------------------------------------------------


def sample_rng(seed: int, style: str, split: str, index: int, condition: str | None = None):
    """The generator of one sample: depends only on (seed, style, split, condition, index)."""
    key = [int(seed), _code(style), _code(split), _code(condition or ""), int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def generate_sample(
    style: str,
    split: str,
    index: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (128, 256),
    condition: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic sample.

    Returns:
        image uint8 [H, W, 3] and label uint8 [H, W] in Cityscapes train ids (255 = void).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid: {', '.join(STYLES)}")
    if style == "acdc" and condition not in CONDITIONS:
        raise ValueError(f"style 'acdc' needs a condition, one of {', '.join(CONDITIONS)}")
    h, w = size
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16, got {h}x{w}")
    rng = sample_rng(seed, style, split, index, condition)
    plan = make_plan(style, h, w, rng)
    return render(plan, style, rng, condition), plan.label.copy()


def _inverse_table(dataset: str) -> np.ndarray:
    """uint8 [256]: Cityscapes train id → the dataset's raw id (255/void → its void id)."""
    lut = L.id_to_train_id(dataset, "cityscapes19")
    known = L.known_ids(dataset)
    inv = np.zeros(256, np.uint8) if dataset != "acdc" else np.full(256, 255, np.uint8)
    for raw in np.flatnonzero(known)[::-1]:  # 34 entries at most: lowest raw id wins
        if lut[raw] != 255:
            inv[lut[raw]] = raw
    return inv


def _label_png_palette() -> np.ndarray:
    """GTAV label PNGs are palette images: Cityscapes labelId → its colour."""
    pal = np.zeros((256, 3), np.uint8)
    lut = L.id_to_train_id("gta5")
    ok = lut != 255
    pal[np.flatnonzero(ok)] = L.CITYSCAPES_PALETTE[lut[ok]]
    return pal


def _write_gta_label(path: Path, raw: np.ndarray) -> None:
    import io

    from PIL import Image

    from halo.io import write_bytes

    im = Image.fromarray(raw, mode="P")
    im.putpalette(_label_png_palette().ravel().tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def _write_synthia_label(path: Path, raw: np.ndarray) -> None:
    import cv2

    from halo.io import write_bytes

    arr = np.zeros((*raw.shape, 3), np.uint16)
    arr[..., 2] = raw  # OpenCV writes BGR: channel 2 is the PNG's first (R) channel
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes(path, buf.tobytes())


def sample_paths(style: str, out: Path, split: str, index: int, condition: str | None = None):
    """Where sample ``index`` goes in the real layout: (image path, label path, sample id)."""
    if style == "gta":
        stem = f"{index + 1 + _SPLIT_OFFSET[split]:05d}"
        return out / "images" / f"{stem}.png", out / "labels" / f"{stem}.png", stem
    if style == "synthia":
        stem = f"{index + _SPLIT_OFFSET[split]:07d}"
        base = out / "RAND_CITYSCAPES"
        return base / "RGB" / f"{stem}.png", base / "GT" / "LABELS" / f"{stem}.png", stem
    if style == "cityscapes":
        cities = _CITIES[split]
        city = cities[index % len(cities)]
        stem = f"{city}_{index // len(cities):06d}_{19 + index % 7:06d}"
        return (
            out / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
            out / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
            f"{city}/{stem}",
        )
    seq = f"GOPR{400 + 10 * CONDITIONS.index(condition) + index // 50:04d}"
    stem = f"{seq}_frame_{index % 50:06d}"
    return (
        out / "rgb_anon" / condition / split / seq / f"{stem}_rgb_anon.png",
        out / "gt" / condition / split / seq / f"{stem}_gt_labelTrainIds.png",
        f"{condition}/{seq}/{stem}",
    )


DATASET_OF_STYLE = {"gta": "gta5", "cityscapes": "cityscapes", "synthia": "synthia", "acdc": "acdc"}


def write_dataset(
    style: str,
    out: str | Path,
    *,
    split: str = "train",
    count: int = 100,
    size: tuple[int, int] = (128, 256),
    seed: int = 0,
    conditions: Sequence[str] = CONDITIONS,
    progress: bool = False,
) -> dict:
    """Write ``count`` samples of ``style`` into ``out`` in the real dataset's layout.

    GTAV and SYNTHIA styles also write ``<out>/<split>.txt`` (their split file lists); every style
    writes/updates ``<out>/class_stats.json`` with the split's pixel share per Cityscapes class.
    ACDC writes ``count`` samples per condition. Each file is written atomically.

    Returns:
        the split's class statistics (as stored in class_stats.json).
    """
    from tqdm import tqdm

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid: {', '.join(STYLES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    bad = [c for c in conditions if c not in CONDITIONS]
    if style == "acdc" and (bad or not conditions):
        raise ValueError(f"conditions {list(conditions)}: each must be one of {CONDITIONS}")
    out = Path(out)
    dataset = DATASET_OF_STYLE[style]
    inv = _inverse_table(dataset)
    conds = list(conditions) if style == "acdc" else [None]
    hist = np.zeros(256, np.int64)
    names = []
    jobs = [(c, i) for c in conds for i in range(count)]
    for cond, i in tqdm(jobs, desc=f"synth {style}/{split}", disable=not progress):
        image, label = generate_sample(style, split, i, seed=seed, size=size, condition=cond)
        hist += np.bincount(label.ravel(), minlength=256)
        img_path, lab_path, sid = sample_paths(style, out, split, i, cond)
        names.append(sid)
        write_png(img_path, image)
        raw = inv[label]
        if style == "gta":
            _write_gta_label(lab_path, raw)
        elif style == "synthia":
            _write_synthia_label(lab_path, raw)
        else:
            write_png(lab_path, raw)
    if style in ("gta", "synthia"):
        write_text(out / f"{split}.txt", "".join(f"{n}.png\n" for n in names))
    total = int(hist.sum())
    stats = {
        "style": style,
        "images": len(jobs),
        "size": list(size),
        "seed": seed,
        "pixels": total,
        "void_share": float(hist[VOID] / total),
        "share": {c: float(hist[k] / total) for k, c in enumerate(L.CITYSCAPES_CLASSES)},
    }
    if style == "acdc":
        stats["conditions"] = conds
    stats_path = out / "class_stats.json"
    import json

    all_stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    all_stats[split] = stats
    write_json(stats_path, all_stats)
    return stats
