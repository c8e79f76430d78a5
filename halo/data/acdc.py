"""ACDC (Sakaridis et al. 2021): adverse conditions fog, night, rain, snow.

``rgb_anon/{condition}/{split}/{sequence}/*_rgb_anon.png`` with
``gt/{condition}/{split}/{sequence}/*_gt_labelTrainIds.png`` (already Cityscapes train ids).
Sample ids are ``{condition}/{sequence}/{stem}``. The ``test`` split loads unlabelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from halo.data.labels import CITYSCAPES_TRAIN_IDS
from halo.data.layout import Layout, Sample
from halo.data.readers import read_label_8bit, write_label_8bit

CONDITIONS = ("fog", "night", "rain", "snow")

LAYOUT = Layout(
    name="acdc",
    title="ACDC",
    image="rgb_anon/{condition}/{split}/{sequence}/{stem}_rgb_anon.png",
    label="gt/{condition}/{split}/{sequence}/{stem}_gt_labelTrainIds.png",
    label_format="Cityscapes train ids",
    encoding=CITYSCAPES_TRAIN_IDS,
    read_label=read_label_8bit,
    write_label=write_label_8bit,
    source="ACDC: rgb_anon_trainvaltest.zip + gt_trainval.zip from acdc.vision.ee.ethz.ch",
    unlabelled_splits=("test",),
)


def samples(root: Path, split: str, conditions: Sequence[str] = CONDITIONS) -> list[Sample]:
    """ACDC ``split`` of the chosen ``conditions`` under ``root`` (condition by condition)."""
    if isinstance(conditions, str):
        conditions = (conditions,)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise ValueError(f"ACDC conditions {list(conditions)}: each must be one of {CONDITIONS}")
    return [s for cond in conditions for s in LAYOUT.discover(root, split, condition=cond)]
