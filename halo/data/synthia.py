"""SYNTHIA-RAND-CITYSCAPES (Ros et al. 2016).

``RAND_CITYSCAPES/RGB/NNNNNNN.png`` with ``RAND_CITYSCAPES/GT/LABELS/NNNNNNN.png``: 16-bit PNGs
whose first channel is the SYNTHIA class id. ``root`` is the folder that holds
``RAND_CITYSCAPES/``. Splits: ``all`` or a file list ``<root>/<split>.txt``.
Use the ``synthia16`` class protocol for SYNTHIA → Cityscapes.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.base import (
    DataError,
    SegmentationDataset,
    pair_by_name,
    read_label_16bit_first_channel,
    read_split_list,
    require_dir,
)


def build(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """SYNTHIA RAND_CITYSCAPES dataset under ``root``."""
    base = require_dir(root / "RAND_CITYSCAPES", "SYNTHIA RAND_CITYSCAPES/")
    rgb = require_dir(base / "RGB", "SYNTHIA RAND_CITYSCAPES/RGB/*.png")
    gt = require_dir(base / "GT" / "LABELS", "SYNTHIA RAND_CITYSCAPES/GT/LABELS/*.png (16-bit)")
    wanted = read_split_list(root, split)
    if wanted is None:
        images = sorted(rgb.glob("*.png"))
    else:
        images = [rgb / f"{n}.png" for n in wanted]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DataError(f"split {split!r} lists {missing[0].name}, but {missing[0]} is missing")
    samples = pair_by_name(images, lambda p: gt / p.name, lambda p: p.stem)
    return SegmentationDataset(
        "synthia",
        samples,
        label_reader=read_label_16bit_first_channel,
        raw_ids="synthia",
        where=str(rgb),
        **kwargs,
    )
