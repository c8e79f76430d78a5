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

import numpy as np

from halo.data.synthetic.plan import (
    BASE,
    BIKE,
    BUILDING,
    BUS,
    CAR,
    DARK,
    FENCE,
    GLASS,
    LIGHT,
    LIGHTPART,
    MARK,
    MOTO,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEG,
    VOID,
    WALL,
    Camera,
    Plan,
    SceneStats,
)


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


#: The object classes whose counts :attr:`SceneStats.scale` multiplies (a rider's two-wheeler
#: follows the rider; lights and signs follow the poles).
SCALABLE = (PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTO, BIKE)

# The object kinds, each drawn from its own random stream (in this order).
_KINDS = ("car", "truck", "bus", "tram", "parked", "person", "rider", "bicycle", "moto", "pole")


def _near(rng: np.random.Generator, d0: float, d1: float) -> float:
    """A distance in [d0, d1) biased towards the camera (d0 + (d1 − d0)·u³), so that small
    objects are seen near enough to be made out some of the time, as from a street camera."""
    return d0 + (d1 - d0) * rng.random() ** 3


def _instances(g: np.random.Generator, mean: float, factor: float) -> list[np.random.Generator]:
    """One generator per object of a kind, nested in the count factor: the default scene's
    Poisson(``mean``) objects are each kept with probability ``factor`` when it is below 1, and
    Poisson(``mean`` · (``factor`` − 1)) more are added when it is above. ``g`` makes the same
    draws whatever the factor, so the objects a scene keeps never move."""
    n = g.poisson(mean)
    seeds = g.integers(0, 2**63, n)
    extra_seed, keep_seed = g.integers(0, 2**63, 2)
    seeds = seeds[np.random.default_rng(keep_seed).random(n) < factor]
    if factor > 1:
        extra = np.random.default_rng(extra_seed)
        seeds = np.concatenate(
            [seeds, extra.integers(0, 2**63, extra.poisson(mean * (factor - 1)))]
        )
    return [np.random.default_rng(int(k)) for k in seeds]


def _objects(cam, street, rng, lay: SceneStats) -> list[tuple[float, tuple, np.random.Generator]]:
    """Objects as (distance, (kind, lateral X, distance), own generator), to be drawn far to near.

    Every kind draws its count and placements from its own stream, spawned from ``rng`` in a
    fixed order, and every object draws its shape from its own generator: changing one kind's
    count (``lay.scale``) moves no other object.
    """
    r = street["road"]
    streams = dict(
        zip(
            _KINDS,
            (np.random.default_rng(k) for k in rng.integers(0, 2**63, len(_KINDS))),
            strict=True,
        )
    )
    objs = []

    def add(kind_stream, d, obj):
        objs.append((d, obj, np.random.default_rng(kind_stream.integers(0, 2**63))))

    def instances(name: str, cls: int, mean: float) -> list[np.random.Generator]:
        return _instances(streams[name], mean, lay.scale.get(cls, 1.0))

    moving = {"car": (CAR, lay.cars), "truck": (TRUCK, lay.trucks), "bus": (BUS, lay.buses)}
    for name, (kind, mean) in moving.items():
        for g in instances(name, kind, mean):
            d = g.uniform(1.1, 25)
            add(g, d, (kind, g.uniform(-0.7, 0.7) * r, d))
    for g in instances("tram", TRAIN, lay.trams):
        d = g.uniform(1.6, 25)
        add(g, d, (TRAIN, g.uniform(-0.25, 0.25) * r, d))
    for g in instances("parked", CAR, lay.parked):
        d = g.uniform(1.0, 20)
        side = g.choice((-1.0, 1.0))
        add(g, d, (CAR, side * (r - g.uniform(0.2, 0.35)), d))
    for g in instances("person", PERSON, lay.persons):
        d = _near(g, 1.1, 22)
        side = int(g.random() < 0.5)
        x = (1 if side else -1) * (r + g.uniform(0.05, 0.95) * street["side"][side])
        for _k in range(1 + g.poisson(0.6)):  # small groups
            dk = d + abs(g.normal(0, 0.4))
            add(g, dk, (PERSON, x + g.normal(0, 0.12), dk))
    for g in instances("rider", RIDER, lay.riders):
        d = _near(g, 1.3, 18)
        add(g, d, (RIDER, g.choice((-1.0, 1.0)) * g.uniform(0.45, 0.8) * r, d))
    for name, kind, mean in (("bicycle", BIKE, lay.bicycles), ("moto", MOTO, lay.motorcycles)):
        for g in instances(name, kind, mean):  # parked side-on on the sidewalk
            d = _near(g, 1.2, 15)
            side = int(g.random() < 0.5)
            x = (1 if side else -1) * (r + g.uniform(0.3, 0.9) * street["side"][side])
            add(g, d, (kind, x, d))
    g = streams["pole"]
    for side in (0, 1):
        sign = 1.0 if side else -1.0
        d = g.uniform(1.0, 4.0)
        while d < 30:
            add(g, d, (POLE, sign * (r + 0.15 * street["side"][side]), d))
            d += g.uniform(*lay.poles)
        for _ in range(g.poisson(lay.trees)):
            d = g.uniform(1.2, 25)
            x = sign * (
                r
                + street["side"][side] * g.uniform(0.6, 1.0)
                + street["terrain"][side] * g.uniform(0, 1)
            )
            add(g, d, (VEG, x, d))
    objs.sort(key=lambda o: -o[0])
    return objs


def _draw(plan: Plan, cam: Camera, obj, rng, lay: SceneStats) -> None:
    """Paint one object ``(kind, x in the world, distance)`` into ``plan``."""
    kind, x_w, d = obj
    s = 1.0 / d
    px = cam.f * s  # pixels per world unit at this distance
    x = cam.vx + x_w * px
    yb = cam.ground_y(s)
    if kind in (CAR, TRUCK, BUS, TRAIN):
        _vehicle(plan, kind, x, yb, px, s, rng)
    elif kind in (PERSON, RIDER):
        _person(plan, kind, x, yb, px, s, rng)
    elif kind in (BIKE, MOTO):
        _two_wheeler_side(plan, x, yb, px, plan.new(kind), s, kind == MOTO, rng)
    elif kind == POLE:
        _pole(plan, x, x_w, yb, px, s, rng, lay)
    elif kind == VEG:  # a tree: trunk and crown
        _tree(plan, x, yb, px, s, rng)


def _vehicle(plan: Plan, kind: int, x, yb, px, s, rng) -> None:
    """A car, truck, bus or tram seen from behind: body, windows, wheels."""
    wdt, hgt = {CAR: (0.56, 0.45), TRUCK: (0.66, 0.95), BUS: (0.72, 0.95), TRAIN: (0.85, 1.05)}[
        kind
    ]
    wdt *= rng.uniform(0.9, 1.1)
    inst = plan.new(kind)
    half = wdt * px / 2
    if kind == CAR:
        plan.rect(x - half, x + half, yb - 0.26 * px, yb - 0.05 * px, inst, BASE, s)
        plan.rect(x - half * 0.78, x + half * 0.78, yb - hgt * px, yb - 0.25 * px, inst, BASE, s)
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
        low = {TRUCK: 0.75, BUS: 0.62, TRAIN: 0.45}[kind]  # trams: a tall window band
        plan.rect(
            x - half * 0.85,
            x + half * 0.85,
            yb - hgt * px * 0.9,
            yb - hgt * px * low,
            inst,
            GLASS,
            s,
        )
        if kind == TRAIN:  # pantograph and the dark skirt over the rails
            top = yb - hgt * px
            plan.rect(x - half * 0.5, x + half * 0.5, top - 0.06 * px, top, inst, DARK, s)
            plan.rect(x - 0.02 * px, x + 0.02 * px, top - 0.3 * px, top, inst, DARK, s)
            plan.rect(x - half, x + half, yb - 0.18 * px, yb - 0.05 * px, inst, DARK, s)
    for sx in (-0.7, 0.7):  # wheels
        plan.ellipse(x + sx * half, yb - 0.06 * px, 0.08 * px, 0.07 * px, inst, DARK, s)


def _person(plan: Plan, kind: int, x, yb, px, s, rng) -> None:
    """A pedestrian, or a rider on the two-wheeler drawn first."""
    if kind == RIDER:
        moto = rng.random() >= 0.65
        _two_wheeler_rear(plan, x, yb, px, plan.new(MOTO if moto else BIKE), s, moto)
        yb = yb - (0.26 if moto else 0.2) * px
    inst = plan.new(kind)
    hgt = rng.uniform(0.44, 0.54) * (0.85 if kind == RIDER else 1.0)
    wdt = 0.26 * rng.uniform(0.9, 1.2)
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
    plan.ellipse(x, yb - hgt * px * 0.9, 0.065 * px, 0.08 * px, inst, LIGHTPART, s)


def _pole(plan: Plan, x, x_w, yb, px, s, rng, lay: SceneStats) -> None:
    """A pole, with a traffic light or a sign plate on some."""
    inst = plan.new(POLE)
    hgt = rng.uniform(1.0, 1.3)
    plan.rect(x - 0.03 * px, x + 0.03 * px, yb - hgt * px, yb, inst, BASE, s, min_w=2.0)
    u = rng.random()
    toward = -np.sign(x_w) * 0.1 * px
    if u < lay.lights:  # traffic light box with three lamps
        li = plan.new(LIGHT)
        cx, top = x + toward, yb - hgt * px
        plan.rect(cx - 0.08 * px, cx + 0.08 * px, top, top + 0.4 * px, li, BASE, s, min_w=2.0)
        lamp = rng.integers(3)
        plan.ellipse(cx, top + (0.07 + 0.13 * lamp) * px, 0.05 * px, 0.05 * px, li, LIGHTPART, s)
    elif u < lay.lights + lay.signs:  # sign plate (rectangular or round)
        si = plan.new(SIGN)
        cy = yb - hgt * px * rng.uniform(0.7, 0.9)
        r_ = rng.uniform(0.08, 0.12) * px
        if rng.random() < 0.5:
            plan.rect(x + toward - r_, x + toward + r_, cy - r_, cy + r_, si, BASE, s, min_w=2.0)
        else:
            plan.ellipse(x + toward, cy, r_, r_, si, BASE, s)
        plan.ellipse(x + toward, cy, r_ * 0.5, r_ * 0.5, si, LIGHTPART, s)


def _tree(plan: Plan, x, yb, px, s, rng) -> None:
    """A tree: trunk and crown."""
    inst = plan.new(VEG)
    hgt = rng.uniform(1.0, 2.2)
    plan.rect(x - 0.04 * px, x + 0.04 * px, yb - hgt * 0.6 * px, yb, inst, DARK, s, min_w=2.0)
    plan.ellipse(x, yb - hgt * 0.7 * px, hgt * 0.35 * px, hgt * 0.33 * px, inst, BASE, s)


def _two_wheeler_rear(plan, x, yb, px, inst, s, moto):
    """A ridden two-wheeler seen from behind: a narrow wheel and a bar (bicycle) or a wide,
    tall body over a fat tyre (motorcycle)."""
    if moto:
        plan.ellipse(x, yb - 0.1 * px, 0.07 * px, 0.1 * px, inst, DARK, s)
        plan.rect(x - 0.15 * px, x + 0.15 * px, yb - 0.3 * px, yb - 0.12 * px, inst, BASE, s)
    else:
        plan.ellipse(x, yb - 0.09 * px, 0.035 * px, 0.09 * px, inst, DARK, s)
        plan.rect(
            x - 0.11 * px, x + 0.11 * px, yb - 0.24 * px, yb - 0.18 * px, inst, BASE, s, min_w=2.0
        )


def _two_wheeler_side(plan, x, yb, px, inst, s, moto, rng):
    """A parked two-wheeler seen side-on: two wheels and a thin frame (bicycle) or a solid body,
    tank and seat between fat wheels (motorcycle)."""
    px = 1.4 * px  # drawn larger than life: the miniature's two-wheelers must be made out
    length = rng.uniform(0.44, 0.52) * px
    rw = (0.1 if moto else 0.095) * px  # wheel radius
    for sx in (-1.0, 1.0):
        plan.ellipse(x + sx * (length / 2 - rw), yb - rw, rw, rw, inst, DARK, s)
    if moto:
        plan.rect(x - length * 0.32, x + length * 0.3, yb - 0.3 * px, yb - 0.09 * px, inst, BASE, s)
        plan.rect(
            x - length * 0.3, x + length * 0.02, yb - 0.34 * px, yb - 0.29 * px, inst, DARK, s
        )
    else:
        plan.rect(
            x - length * 0.3, x + length * 0.3, yb - 0.24 * px, yb - 0.19 * px, inst, BASE, s
        )  # top tube
        for sx in (-0.3, 0.3):  # seat tube and fork
            plan.rect(
                x + sx * length - 0.015 * px,
                x + sx * length + 0.015 * px,
                yb - 0.28 * px,
                yb - rw,
                inst,
                BASE,
                s,
            )


def make_plan(lay: SceneStats, height: int, width: int, rng: np.random.Generator) -> Plan:
    """Draw the label plan of one scene with a domain's statistics ``lay``."""
    plan = Plan(height, width, lay.substitute)
    cam = Camera(height, width, rng.uniform(*lay.horizon) * height, width * rng.uniform(0.38, 0.62))
    _skyline(plan, cam, rng)
    street = _ground(plan, cam, rng, lay)
    _street_sides(plan, cam, street, rng, lay)
    for _, obj, own in _objects(cam, street, rng, lay):
        _draw(plan, cam, obj, own, lay)
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
