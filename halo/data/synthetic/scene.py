"""Scene geometry of the synthetic benchmark: a perspective street drawn as a *label plan*.

A plan holds, per pixel, the Cityscapes train id, an instance id, a part code (how the region is
rendered) and the depth: sky, a skyline, buildings, walls and fences, vegetation and terrain on
both sides of a road with sidewalks, poles carrying traffic lights and signs, parked and moving
cars, trucks, buses, a rare tram, pedestrians, riders on bicycles and motorcycles. How often each
kind appears, and the camera, are a domain's :class:`SceneStats` (docs/design.md, section "The
synthetic benchmark"); :mod:`~halo.data.synthetic.styles` renders a plan as an image.
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
    """Scene statistics of a domain (the camera and how often each object kind appears)."""

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


def _ground(plan: Plan, cam: Camera, rng: np.random.Generator, lay: SceneStats) -> dict:
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


def _street_sides(plan, cam, street, rng, lay: SceneStats):
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


def _objects(cam, street, rng, lay: SceneStats) -> list[tuple[float, tuple]]:
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


def make_plan(lay: SceneStats, height: int, width: int, rng: np.random.Generator) -> Plan:
    """Draw the label plan of one scene with a domain's statistics ``lay``."""
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
