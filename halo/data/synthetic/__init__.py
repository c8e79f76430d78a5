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

The package (docs/design.md, section "The synthetic benchmark"):

- :mod:`~halo.data.synthetic.plan`: the label plan, the camera and a domain's scene statistics;
- :mod:`~halo.data.synthetic.scene`: the scene geometry, drawn into a plan;
- :mod:`~halo.data.synthetic.styles`: the styles (:data:`STYLES`, each with the dataset it is
  written as), palettes and the ACDC weather conditions;
- :mod:`~halo.data.synthetic.writers`: samples, and datasets written through each dataset's own
  layout (:func:`write_dataset`, :func:`write_benchmark` for the default benchmark).
"""

from halo.data.synthetic.plan import Camera, Plan, SceneStats
from halo.data.synthetic.scene import SCALABLE, make_plan
from halo.data.synthetic.styles import CONDITIONS, STYLES, Style, get_style, render
from halo.data.synthetic.writers import (
    BENCHMARK,
    SPLITS,
    generate_sample,
    sample_id,
    sample_paths,
    sample_rng,
    scale_map,
    write_benchmark,
    write_dataset,
)

__all__ = [
    "BENCHMARK",
    "CONDITIONS",
    "SCALABLE",
    "SPLITS",
    "STYLES",
    "Camera",
    "Plan",
    "SceneStats",
    "Style",
    "generate_sample",
    "get_style",
    "make_plan",
    "render",
    "sample_id",
    "sample_paths",
    "sample_rng",
    "scale_map",
    "write_benchmark",
    "write_dataset",
]
