"""Datasets in their official layouts, behind one factory, and the synthetic benchmark.

>>> ds = build_dataset("cityscapes", "data/synth/cityscapes", "val", size=(64, 128))
>>> item = ds[0]  # {"image": float32 [3,H,W] in [0,1], "label": int64 [H,W], "id": str}

Each dataset module (:mod:`~halo.data.gta5`, :mod:`~halo.data.cityscapes`,
:mod:`~halo.data.synthia`, :mod:`~halo.data.acdc`) declares its folder layout once
(``LAYOUT``, a :class:`~halo.data.layout.Layout`; docs/design.md, section "Data layouts") and
finds the samples of a split (``samples(root, split, **options)``). Importing this package, the
dataset modules and :func:`missing_folders` does not import torch (the workflow checks data while
it parses); :class:`SegmentationDataset` (:mod:`halo.data.dataset`) is imported on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

from halo.data import acdc, cityscapes, folder, gta5, synthia
from halo.data.labels import LabelEncoding
from halo.data.layout import DataError
from halo.registry import Registry

if TYPE_CHECKING:
    from halo.data.dataset import SegmentationDataset

__all__ = [
    "DATASETS",
    "LAYOUTS",
    "DataError",
    "SegmentationDataset",
    "build_dataset",
    "label_encoding",
    "missing_folders",
]

#: Dataset name → its module (``LAYOUT`` and ``samples``), in the benchmark's order.
DATASETS: Registry[ModuleType] = Registry(
    "dataset",
    [
        ("gta5", gta5),
        ("cityscapes", cityscapes),
        ("synthia", synthia),
        ("acdc", acdc),
        ("folder", folder),
    ],
    ordered=True,
)

#: Read-only view: dataset name → (folders its layout needs under the root, with ``{split}``;
#: where to get the data, never fetched by this package).
LAYOUTS: MappingProxyType[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {name: (module.LAYOUT.folders, module.LAYOUT.source) for name, module in DATASETS.items()}
)


def label_encoding(name: str) -> LabelEncoding:
    """How dataset ``name``'s label files are written (its layout's
    :class:`~halo.data.labels.LabelEncoding`)."""
    encoding = DATASETS.lookup(name).LAYOUT.encoding
    if encoding is None:
        raise ValueError(f"dataset {name!r} takes its label ids from its own classes.yaml")
    return encoding


def missing_folders(name: str, root: str | os.PathLike, split: str) -> list[Path]:
    """The folders of ``name``'s official layout that are missing under ``root`` (cheap: no
    file is opened, so it can run before a workflow starts)."""
    layout = DATASETS.lookup(name).LAYOUT
    root = Path(root)
    if not root.is_dir():
        return [root]
    return [
        root / f.format(split=split)
        for f in layout.folders
        if not (root / f.format(split=split)).is_dir()
    ]


def build_dataset(
    name: str,
    root: str | os.PathLike,
    split: str,
    size: tuple[int, int] | None = None,
    *,
    protocol: str = "cityscapes19",
    resample: str = "bilinear",
    label_size: bool = False,
    **options,
) -> SegmentationDataset:
    """Build dataset ``name`` from ``root`` in its official layout.

    Args:
        name: ``gta5``, ``cityscapes``, ``synthia``, ``acdc`` or ``folder`` (your own images,
            :mod:`~halo.data.folder`).
        root: the dataset's top folder (e.g. ``data/cityscapes`` holding ``leftImg8bit/``).
        split: split name (``train``, ``val``, ``test``; ``all`` for GTAV/SYNTHIA).
        size: optional (height, width) to resize to.
        protocol: class protocol of the benchmark (``cityscapes19`` or ``synthia16``).
        resample: the image filter of the resize (``bilinear``, ``bicubic``).
        label_size: keep labels at their files' size (evaluation at the label size).
        **options: dataset-specific options (ACDC: ``conditions``).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        DataError: missing folders/files, unpaired images, empty split.
    """
    module = DATASETS.lookup(name)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{name}: data root {root} does not exist (expected a folder)")
    samples = module.samples(root, split, **options)
    from halo.data.dataset import SegmentationDataset
    from halo.data.labels import get_protocol

    layout = module.LAYOUT
    table = None  # a folder dataset's label ids come from its classes.yaml
    if hasattr(module, "label_table"):
        table = module.label_table(root, get_protocol(protocol))
    return SegmentationDataset(
        layout.name,
        samples,
        label_reader=layout.read_label,
        encoding=layout.encoding,
        table=table,
        where=str(layout.image_folder(root, split)),
        size=size,
        protocol=protocol,
        resample=resample,
        label_size=label_size,
    )


def __getattr__(name: str):
    """``SegmentationDataset`` is imported (with torch) on first access (PEP 562)."""
    if name == "SegmentationDataset":
        from halo.data.dataset import SegmentationDataset

        return SegmentationDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
