"""Samples and datasets on disk: the synthetic benchmark written in the real datasets' layouts.

:func:`generate_sample` draws one scene (:mod:`~halo.data.synthetic.scene`) and renders it
(:mod:`~halo.data.synthetic.styles`); :func:`write_dataset` writes a split of one style where the
real dataset keeps its files (through the dataset's own :class:`~halo.data.layout.Layout`, so the
loaders find exactly what was written); :func:`write_benchmark` writes the default benchmark
(:data:`BENCHMARK`; docs/design.md, section "The synthetic benchmark").
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from halo.data import labels as L
from halo.data.synthetic.plan import VOID
from halo.data.synthetic.scene import SCALABLE, make_plan
from halo.data.synthetic.styles import CONDITIONS, STYLES, get_style, render
from halo.io import write_json, write_png, write_text

__all__ = [
    "BENCHMARK",
    "SPLITS",
    "generate_sample",
    "sample_id",
    "sample_paths",
    "sample_rng",
    "scale_map",
    "write_benchmark",
    "write_dataset",
]

SPLITS = ("train", "val", "test", "select")  # select: held out for choosing settings

#: The default benchmark: (style, split, images per split [per ACDC condition]); each style is
#: written to ``OUT/<its dataset>``.
BENCHMARK: tuple[tuple[str, str, int], ...] = (
    ("gta", "train", 400),
    ("gta", "val", 100),  # held out: in-domain evaluation (halo evaluate --on source)
    ("synthia", "train", 400),
    ("cityscapes", "train", 400),
    ("cityscapes", "val", 100),
    ("acdc", "train", 100),
    ("acdc", "val", 25),
)

_CITIES = {
    "train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt"),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich"),
    "select": ("dortmund", "hamburg", "jena"),  # a selection split, disjoint from val
}
# Offsets so that GTAV/SYNTHIA file numbers of different splits never collide.
_SPLIT_OFFSET = {"train": 0, "val": 30000, "test": 60000, "select": 90000}


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def sample_rng(seed: int, style: str, split: str, index: int, condition: str | None = None):
    """The generator of one sample: depends only on (seed, style, split, condition, index)."""
    key = [int(seed), _code(style), _code(split), _code(condition or ""), int(index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def scale_map(scale: dict[str, float] | None) -> dict[int, float]:
    """Class name → count factor (the frequency intervention) as train id → factor; one
    ValueError naming the class or factor and what is allowed."""
    out = {}
    names = L.CITYSCAPES_CLASSES
    allowed = ", ".join(names[c] for c in SCALABLE)
    for name, factor in (scale or {}).items():
        if name not in names or names.index(name) not in SCALABLE:
            raise ValueError(f"scale: {name!r} is not a class whose count scales; one of {allowed}")
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
            raise ValueError(f"scale: {name}={factor!r}; expected a finite factor >= 0")
        out[names.index(name)] = float(factor)
    return out


def generate_sample(
    style: str,
    split: str,
    index: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (128, 256),
    condition: str | None = None,
    scale: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic sample.

    ``scale`` (class name → factor) multiplies the counts of object classes (the frequency
    intervention, :data:`~halo.data.synthetic.scene.SCALABLE`); every other object of the scene
    stays where it was.

    Returns:
        image uint8 [H, W, 3] and label uint8 [H, W] in Cityscapes train ids (255 = void).
    """
    scene = get_style(style).scene
    if scale:
        scene = dataclasses.replace(scene, scale=scale_map(scale))
    if style == "acdc" and condition not in CONDITIONS:
        raise ValueError(f"style 'acdc' needs a condition, one of {', '.join(CONDITIONS)}")
    h, w = size
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16, got {h}x{w}")
    rng = sample_rng(seed, style, split, index, condition)
    plan = make_plan(scene, h, w, rng)
    return render(plan, style, rng, condition), plan.label.copy()


def sample_id(style: str, split: str, index: int, condition: str | None = None) -> str:
    """The id of sample ``index``, named like the real dataset's files: GTAV ``NNNNN`` and
    SYNTHIA ``NNNNNNN`` numbered apart per split, Cityscapes ``city/city_NNNNNN_NNNNNN`` with the
    split's cities, ACDC ``condition/GOPRNNNN/GOPRNNNN_frame_NNNNNN`` (50 frames a sequence)."""
    get_style(style)
    if style == "gta":
        return f"{index + 1 + _SPLIT_OFFSET[split]:05d}"
    if style == "synthia":
        return f"{index + _SPLIT_OFFSET[split]:07d}"
    if style == "cityscapes":
        cities = _CITIES[split]
        city = cities[index % len(cities)]
        return f"{city}/{city}_{index // len(cities):06d}_{19 + index % 7:06d}"
    seq = f"GOPR{400 + 10 * CONDITIONS.index(condition) + index // 50:04d}"
    return f"{condition}/{seq}/{seq}_frame_{index % 50:06d}"


def sample_paths(style: str, out: Path, split: str, index: int, condition: str | None = None):
    """Where sample ``index`` goes in the real layout: (image path, label path, sample id), by
    the dataset's own :meth:`~halo.data.layout.Layout.paths` (the loaders pair files by it)."""
    sid = sample_id(style, split, index, condition)
    return (*get_style(style).layout.paths(out, split, sid), sid)


def write_dataset(
    style: str,
    out: str | Path,
    *,
    split: str = "train",
    count: int = 100,
    size: tuple[int, int] = (128, 256),
    seed: int = 0,
    conditions: Sequence[str] = CONDITIONS,
    scale: dict[str, float] | None = None,
    progress: bool = False,
) -> dict:
    """Write ``count`` samples of ``style`` into ``out`` in the real dataset's layout
    (``scale``: class name → count factor, see :func:`generate_sample`).

    GTAV and SYNTHIA styles also write ``<out>/<split>.txt`` (their split file lists); every style
    writes/updates ``<out>/class_stats.json`` with the split's pixel share per Cityscapes class.
    ACDC writes ``count`` samples per condition. Each file is written atomically.

    Returns:
        the split's class statistics (as stored in class_stats.json).
    """
    from halo.progress import progress as bar

    layout = get_style(style).layout
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    bad = [c for c in conditions if c not in CONDITIONS]
    if style == "acdc" and (bad or not conditions):
        raise ValueError(f"conditions {list(conditions)}: each must be one of {CONDITIONS}")
    scale_map(scale)  # bad factors fail before any file is written
    out = Path(out)
    inv = layout.encoding.raw_ids()  # the dataset's own label values and file format
    conds = list(conditions) if style == "acdc" else [None]
    hist = np.zeros(256, np.int64)
    names = []
    jobs = [(c, i) for c in conds for i in range(count)]
    for cond, i in bar(jobs, desc=f"synth {style}/{split}", enabled=progress):
        image, label = generate_sample(
            style, split, i, seed=seed, size=size, condition=cond, scale=scale
        )
        hist += np.bincount(label.ravel(), minlength=256)
        img_path, lab_path, sid = sample_paths(style, out, split, i, cond)
        names.append(sid)
        write_png(img_path, image)
        layout.write_label(lab_path, inv[label])
    if layout.split_lists:
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
    if scale:
        stats["scale"] = dict(scale)
    stats_path = out / "class_stats.json"
    all_stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    all_stats[split] = stats
    write_json(stats_path, all_stats)
    return stats


def write_benchmark(
    out: str | Path,
    *,
    size: tuple[int, int],
    seed: int,
    count: int | None = None,
    conditions: Sequence[str] = CONDITIONS,
    scale: dict[str, float] | None = None,
    progress: bool = False,
) -> dict[str, dict[str, dict]]:
    """Write the default benchmark (:data:`BENCHMARK`): ``OUT/gta5``, ``OUT/synthia``,
    ``OUT/cityscapes`` and ``OUT/acdc``, what ``halo synth --out OUT`` writes.

    Args:
        out: the benchmark's folder.
        size: image (height, width).
        seed: generator seed.
        count: images per split (per ACDC condition) instead of the table's counts.
        conditions: the ACDC conditions to write.
        scale: class name → count factor in every style (see :func:`generate_sample`).
        progress: show progress bars.

    Returns:
        dataset → split → the split's class statistics (see :func:`write_dataset`), in the
        order written.
    """
    out = Path(out)
    written: dict[str, dict[str, dict]] = {}
    for style, split, n in BENCHMARK:
        dataset = STYLES[style].layout.name
        written.setdefault(dataset, {})[split] = write_dataset(
            style,
            out / dataset,
            split=split,
            count=n if count is None else count,
            size=size,
            seed=seed,
            conditions=conditions,
            scale=scale,
            progress=progress,
        )
    return written
