"""GTAV (Richter et al. 2016): ``images/NNNNN.png`` with ``labels/NNNNN.png`` (Cityscapes labelIds).

Splits: ``all`` (every image: the usual choice for a source domain) or a file list
``<root>/<split>.txt`` with one image name per line.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.base import (
    DataError,
    SegmentationDataset,
    pair_by_name,
    read_label_8bit,
    read_split_list,
    require_dir,
)


def build(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """GTAV dataset under ``root`` (the folder holding ``images/`` and ``labels/``)."""
    images_dir = require_dir(root / "images", "GTAV images/NNNNN.png")
    labels_dir = require_dir(root / "labels", "GTAV labels/NNNNN.png, Cityscapes labelIds")
    wanted = read_split_list(root, split)
    if wanted is None:
        images = sorted(images_dir.glob("*.png"))
    else:
        images = [images_dir / f"{n}.png" for n in wanted]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DataError(f"split {split!r} lists {missing[0].name}, but {missing[0]} is missing")
    samples = pair_by_name(images, lambda p: labels_dir / p.name, lambda p: p.stem)
    return SegmentationDataset(
        "gta5",
        samples,
        label_reader=read_label_8bit,
        raw_ids="gta5",
        where=str(images_dir),
        **kwargs,
    )
