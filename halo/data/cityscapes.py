"""Cityscapes (Cordts et al. 2016) in its official layout.

``leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png`` with
``gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png``. Sample ids are
``{city}/{city}_{seq}_{frame}``. The ``test`` split has no public labels: it loads unlabelled.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.labels import CITYSCAPES_LABEL_IDS
from halo.data.layout import Layout, Sample
from halo.data.readers import read_label_8bit, write_label_8bit

LAYOUT = Layout(
    name="cityscapes",
    title="Cityscapes",
    image="leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
    label="gtFine/{split}/{city}/{stem}_gtFine_labelIds.png",
    label_format="Cityscapes labelIds",
    encoding=CITYSCAPES_LABEL_IDS,
    read_label=read_label_8bit,
    write_label=write_label_8bit,
    source="Cityscapes: leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip from "
    "www.cityscapes-dataset.com",
    unlabelled_splits=("test",),
)


def samples(root: Path, split: str) -> list[Sample]:
    """Cityscapes ``split`` (train, val, test) under ``root``."""
    return LAYOUT.discover(root, split)
