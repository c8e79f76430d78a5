"""Datasets in their official layouts, behind one factory, and the synthetic benchmark.

>>> ds = build_dataset("cityscapes", "data/synth/cityscapes", "val", size=(64, 128))
>>> item = ds[0]  # {"image": float32 [3,H,W] in [0,1], "label": int64 [H,W], "id": str}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from halo.data import acdc, cityscapes, gta5, synthia
from halo.data.base import DataError, SegmentationDataset

__all__ = ["DATASETS", "DataError", "SegmentationDataset", "build_dataset", "missing_folders"]

#: Lower-case dataset name → builder(root, split, **options).
DATASETS: dict[str, Callable[..., SegmentationDataset]] = {
    "gta5": gta5.build,
    "cityscapes": cityscapes.build,
    "synthia": synthia.build,
    "acdc": acdc.build,
}


#: The folders each official layout needs under the dataset root ({split} is filled in), and where
#: to get the data (never fetched by this package).
LAYOUTS: dict[str, tuple[tuple[str, ...], str]] = {
    "gta5": (("images", "labels"), "GTAV: download.visinf.tu-darmstadt.de/data/from_games"),
    "cityscapes": (
        ("leftImg8bit/{split}", "gtFine/{split}"),
        "Cityscapes: leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip from "
        "www.cityscapes-dataset.com",
    ),
    "synthia": (
        ("RAND_CITYSCAPES/RGB", "RAND_CITYSCAPES/GT/LABELS"),
        "SYNTHIA-RAND-CITYSCAPES from synthia-dataset.net",
    ),
    "acdc": (
        ("rgb_anon", "gt"),
        "ACDC: rgb_anon_trainvaltest.zip + gt_trainval.zip from acdc.vision.ee.ethz.ch",
    ),
}


def missing_folders(name: str, root: str | os.PathLike, split: str) -> list[Path]:
    """The folders of ``name``'s official layout that are missing under ``root`` (cheap: no
    file is opened, so it can run before a workflow starts)."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        return [root]
    return [
        root / f.format(split=split)
        for f in LAYOUTS[name][0]
        if not (root / f.format(split=split)).is_dir()
    ]


def build_dataset(
    name: str,
    root: str | os.PathLike,
    split: str,
    size: tuple[int, int] | None = None,
    *,
    protocol: str = "cityscapes19",
    **options,
) -> SegmentationDataset:
    """Build dataset ``name`` from ``root`` in its official layout.

    Args:
        name: ``gta5``, ``cityscapes``, ``synthia`` or ``acdc``.
        root: the dataset's top folder (e.g. ``data/cityscapes`` holding ``leftImg8bit/``).
        split: split name (``train``, ``val``, ``test``; ``all`` for GTAV/SYNTHIA).
        size: optional (height, width) to resize to.
        protocol: class protocol of the benchmark (``cityscapes19`` or ``synthia16``).
        **options: dataset-specific options (ACDC: ``conditions``).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        DataError: missing folders/files, unpaired images, empty split.
    """
    try:
        builder = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}") from None
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{name}: data root {root} does not exist (expected a folder)")
    return builder(root, split, size=size, protocol=protocol, **options)
