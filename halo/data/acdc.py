"""ACDC (Sakaridis et al. 2021): adverse conditions fog, night, rain, snow.

``rgb_anon/{condition}/{split}/{sequence}/*_rgb_anon.png`` with
``gt/{condition}/{split}/{sequence}/*_gt_labelTrainIds.png`` (already Cityscapes train ids).
Sample ids are ``{condition}/{sequence}/{stem}``. The ``test`` split loads unlabelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from halo.data.base import SegmentationDataset, pair_by_name, read_label_8bit, require_dir

CONDITIONS = ("fog", "night", "rain", "snow")
IMAGE_SUFFIX = "_rgb_anon.png"
LABEL_SUFFIX = "_gt_labelTrainIds.png"


def build(
    root: Path, split: str, conditions: Sequence[str] = CONDITIONS, **kwargs
) -> SegmentationDataset:
    """ACDC ``split`` of the chosen ``conditions`` under ``root``."""
    if isinstance(conditions, str):
        conditions = (conditions,)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise ValueError(f"ACDC conditions {list(conditions)}: each must be one of {CONDITIONS}")
    labelled = split != "test"
    samples = []
    for cond in conditions:
        img_root = require_dir(
            root / "rgb_anon" / cond / split, f"ACDC rgb_anon/{cond}/{split}/<sequence>/"
        )
        lab_root = root / "gt" / cond / split
        if labelled:
            require_dir(lab_root, f"ACDC gt/{cond}/{split}/<sequence>/*{LABEL_SUFFIX}")

        def label_for(img: Path, lab_root: Path = lab_root) -> Path:
            return lab_root / img.parent.name / (img.name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX)

        samples += pair_by_name(
            img_root.glob(f"*/*{IMAGE_SUFFIX}"),
            label_for,
            lambda p, cond=cond: f"{cond}/{p.parent.name}/{p.name[: -len(IMAGE_SUFFIX)]}",
            require_labels=labelled,
        )
    return SegmentationDataset(
        "acdc",
        samples,
        label_reader=read_label_8bit,
        raw_ids="acdc",
        where=str(root / "rgb_anon"),
        **kwargs,
    )
