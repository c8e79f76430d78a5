"""Cityscapes (Cordts et al. 2016) in its official layout.

``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png`` with
``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png``. Sample ids are
``{city}/{city}_{seq}_{frame}``. The ``test`` split has no public labels: it loads unlabelled.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.base import SegmentationDataset, pair_by_name, read_label_8bit, require_dir

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def build(root: Path, split: str, **kwargs) -> SegmentationDataset:
    """Cityscapes ``split`` (train, val, test) under ``root``."""
    img_root = require_dir(root / "leftImg8bit" / split, f"Cityscapes leftImg8bit/{split}/<city>/")
    lab_root = root / "gtFine" / split
    labelled = split != "test"
    if labelled:
        require_dir(lab_root, f"Cityscapes gtFine/{split}/<city>/*{LABEL_SUFFIX}")

    def label_for(img: Path) -> Path:
        stem = img.name[: -len(IMAGE_SUFFIX)]
        return lab_root / img.parent.name / f"{stem}{LABEL_SUFFIX}"

    samples = pair_by_name(
        img_root.glob(f"*/*{IMAGE_SUFFIX}"),
        label_for,
        lambda p: f"{p.parent.name}/{p.name[: -len(IMAGE_SUFFIX)]}",
        require_labels=labelled,
    )
    return SegmentationDataset(
        "cityscapes",
        samples,
        label_reader=read_label_8bit,
        raw_ids="cityscapes",
        where=str(img_root),
        **kwargs,
    )
