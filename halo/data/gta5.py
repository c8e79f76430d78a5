"""GTAV (Richter et al. 2016): ``images/NNNNN.png`` with ``labels/NNNNN.png`` (Cityscapes labelIds).

Sample ids are the file stems (``NNNNN``). Splits: ``all`` (every image: the usual choice for a
source domain) or a file list ``<root>/<split>.txt`` with one image name per line.
"""

from __future__ import annotations

from pathlib import Path

from halo.data.labels import CITYSCAPES_LABEL_IDS
from halo.data.layout import Layout, Sample
from halo.data.readers import read_label_8bit, write_label_palette

LAYOUT = Layout(
    name="gta5",
    title="GTAV",
    image="images/{stem}.png",
    label="labels/{stem}.png",
    label_format="Cityscapes labelIds",
    encoding=CITYSCAPES_LABEL_IDS,
    read_label=read_label_8bit,
    write_label=write_label_palette,
    source="GTAV: download.visinf.tu-darmstadt.de/data/from_games",
)


def samples(root: Path, split: str) -> list[Sample]:
    """GTAV samples under ``root`` (the folder holding ``images/`` and ``labels/``)."""
    return LAYOUT.discover(root, split)
