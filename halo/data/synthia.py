"""SYNTHIA-RAND-CITYSCAPES (Ros et al. 2016).

``RAND_CITYSCAPES/RGB/NNNNNNN.png`` with ``RAND_CITYSCAPES/GT/LABELS/NNNNNNN.png``: 16-bit PNGs
whose first channel is the SYNTHIA class id. ``root`` is the folder that holds
``RAND_CITYSCAPES/``. Sample ids are the file stems. Splits: ``all`` or a file list
``<root>/<split>.txt``. Use the ``synthia16`` class protocol for SYNTHIA → Cityscapes.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.labels import SYNTHIA_CLASS_IDS
from halo.data.layout import Layout, Sample
from halo.data.readers import read_label_16bit_first_channel, write_label_16bit_first_channel

LAYOUT = Layout(
    name="synthia",
    title="SYNTHIA",
    image="RAND_CITYSCAPES/RGB/{stem}.png",
    label="RAND_CITYSCAPES/GT/LABELS/{stem}.png",
    label_format="16-bit PNGs, SYNTHIA class id in the first channel",
    encoding=SYNTHIA_CLASS_IDS,
    read_label=read_label_16bit_first_channel,
    write_label=write_label_16bit_first_channel,
    source="SYNTHIA-RAND-CITYSCAPES from synthia-dataset.net",
)


def samples(root: Path, split: str) -> list[Sample]:
    """SYNTHIA RAND_CITYSCAPES samples under ``root``."""
    return LAYOUT.discover(root, split)
