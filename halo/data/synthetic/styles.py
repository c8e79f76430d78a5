"""Styles of the synthetic benchmark: how a label plan becomes an image in each domain.

A :class:`Style` is a domain: the dataset whose layout it is written in (:data:`STYLES` is the
one style → dataset table) and its scene statistics. :func:`render` paints a plan in a style's
palette (flat source palettes; the target palette with its structured confusions, textures,
illumination, blur and noise) and, for ``acdc``, under a weather or light condition
(:func:`_condition`; docs/design.md, section "The synthetic benchmark").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from halo.data import acdc, cityscapes, gta5, synthia
from halo.data import labels as L
from halo.data.acdc import CONDITIONS
from halo.data.layout import Layout
from halo.data.synthetic.plan import (
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
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEG,
    VOID,
    WALL,
    Plan,
    SceneStats,
)
from halo.registry import Registry

__all__ = ["CONDITIONS", "STYLES", "Style", "get_style", "render"]


@dataclass(frozen=True)
class Style:
    """A domain of the synthetic benchmark.

    Args:
        name: the style's name (``gta``, ``cityscapes``, ``synthia``, ``acdc``).
        layout: the layout of the dataset it is written as (its dataset is ``layout.name``).
        scene: the statistics of its scenes.
    """

    name: str
    layout: Layout
    scene: SceneStats


#: Style name → :class:`Style`: the one table of styles and the dataset each is written as.
STYLES: Registry[Style] = Registry(
    "style",
    [
        (style.name, style)
        for style in (
            Style("gta", gta5.LAYOUT, SceneStats()),
            Style(
                "cityscapes", cityscapes.LAYOUT, SceneStats(ego_prob=0.5, persons=1.5, parked=5.0)
            ),
            Style(
                "synthia",
                synthia.LAYOUT,
                SceneStats(
                    horizon=(0.18, 0.32),
                    persons=2.0,
                    cars=3.4,
                    trucks=0.3,
                    buses=0.25,
                    trams=0.15,
                    substitute={TERRAIN: VEG, TRUCK: BUS, TRAIN: BUS},
                ),
            ),
            Style("acdc", acdc.LAYOUT, SceneStats(ego_prob=0.4, persons=1.0, parked=5.0)),
        )
    ],
    ordered=True,
)


def get_style(name: str) -> Style:
    """The style called exactly ``name``; an unknown name is a ValueError listing the valid ones
    (case matters: the name seeds the generator)."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; {STYLES.listing()}")
    return STYLES[name]


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
_TARGET[LIGHT] = (96, 88, 30)  # dark yellow housings: source lights are orange
_TARGET[SIGN] = (30, 70, 185)
_TARGET[VEG] = (62, 104, 40)
_TARGET[TERRAIN] = (110, 140, 38)  # ≈ source vegetation
_TARGET[SKY] = (165, 190, 220)
_TARGET[TRUCK] = (205, 205, 210)
_TARGET[BUS] = (240, 168, 36)  # ≈ source traffic light
_TARGET[TRAIN] = (40, 140, 130)  # teal trams
_TARGET[MOTO] = (120, 36, 150)  # one purple livery: bicycles stay dark
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
    apply = _CONDITIONS.get(condition)
    if apply is None:
        raise ValueError(f"unknown ACDC condition {condition!r}; valid: {', '.join(CONDITIONS)}")
    return apply(img, plan, rng)


def _fog(img, plan: Plan, rng) -> np.ndarray:
    """ACDC fog: depth-dependent haze, a washed-out palette."""
    s = plan.depth[..., None]
    img = 0.7 * img + 0.3 * _luma(img)
    t = np.exp(-rng.uniform(0.04, 0.1) / np.maximum(s, 1e-3))  # transmittance by distance
    air = rng.uniform(175, 210) * np.array([0.97, 1.0, 1.04], np.float32)
    return img * t + air * (1 - t)


def _night(img, plan: Plan, rng) -> np.ndarray:
    """ACDC night: dark, tinted street light, black sky, lit lamps, glows, sensor noise."""
    h, w = plan.label.shape
    lab = plan.label[..., None]
    sky = lab == SKY
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


def _rain(img, plan: Plan, rng) -> np.ndarray:
    """ACDC rain: overcast, grey sky, wet ground with puddles, streaks, drops on the lens."""
    h, w = plan.label.shape
    lab = plan.label[..., None]
    sky = lab == SKY
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


def _snow(img, plan: Plan, rng) -> np.ndarray:
    """ACDC snow: snow cover (tyre tracks on the road), bright bluish light, white sky, flakes."""
    h, w = plan.label.shape
    lab = plan.label[..., None]
    sky = lab == SKY
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


#: each ACDC condition's rendering
_CONDITIONS = {"fog": _fog, "night": _night, "rain": _rain, "snow": _snow}
