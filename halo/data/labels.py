"""Class tables: the Cityscapes train classes, raw-id → train-id look-up tables, class protocols.

Every dataset stores labels in its own raw ids (Cityscapes/GTAV labelIds, SYNTHIA class ids, ACDC
trainIds). A *class protocol* fixes the classes a benchmark trains and evaluates on:

- ``cityscapes19``: the 19 Cityscapes train classes (GTAV → Cityscapes, Cityscapes → ACDC);
- ``synthia16``: the 16 classes SYNTHIA shares with Cityscapes (SYNTHIA → Cityscapes), whose
  13-class subset (without wall, fence and pole) gives mIoU*.

``id_to_train_id(dataset, protocol)`` is a 256-entry uint8 look-up table from raw ids to the
protocol's train ids (255 = ignore); ``known_ids(dataset)`` says which raw ids a dataset defines,
so a loader can reject a label map containing ids its table does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from halo.registry import Registry

IGNORE_INDEX = 255

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)

#: The official Cityscapes colour of each train class, uint8 [19, 3].
CITYSCAPES_PALETTE = np.array(
    [
        (128, 64, 128),
        (244, 35, 232),
        (70, 70, 70),
        (102, 102, 156),
        (190, 153, 153),
        (153, 153, 153),
        (250, 170, 30),
        (220, 220, 0),
        (107, 142, 35),
        (152, 251, 152),
        (70, 130, 180),
        (220, 20, 60),
        (255, 0, 0),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 80, 100),
        (0, 0, 230),
        (119, 11, 32),
    ],
    dtype=np.uint8,
)

#: Cityscapes labelIds 0..33 (also used by GTAV) → the 19 train ids; absent ids are ignored.
#: From cityscapesScripts' labels.py (license plate, id -1, never appears in a PNG).
_CITYSCAPES_LABELID_TO_TRAINID = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
_CITYSCAPES_NUM_LABELIDS = 34  # ids 0..33 are defined (unlabeled, ego vehicle, ..., bicycle)

#: SYNTHIA (RAND_CITYSCAPES) class ids 0..22 → the 19 Cityscapes train ids. SYNTHIA has no
#: terrain/truck/train pixels in practice; void (0), parking-slot (13), road-work (14) and
#: lane-marking (22) are ignored.
_SYNTHIA_ID_TO_TRAINID = {
    3: 0,  # road
    4: 1,  # sidewalk
    2: 2,  # building
    21: 3,  # wall
    5: 4,  # fence
    7: 5,  # pole
    15: 6,  # traffic light
    9: 7,  # traffic sign
    6: 8,  # vegetation
    16: 9,  # terrain
    1: 10,  # sky
    10: 11,  # pedestrian -> person
    17: 12,  # rider
    8: 13,  # car
    18: 14,  # truck
    19: 15,  # bus
    20: 16,  # train
    12: 17,  # motorcycle
    11: 18,  # bicycle
}
_SYNTHIA_NUM_IDS = 23

#: SYNTHIA's own class names by raw id (the generator writes this layout).
SYNTHIA_CLASSES: tuple[str, ...] = (
    "void",
    "sky",
    "building",
    "road",
    "sidewalk",
    "fence",
    "vegetation",
    "pole",
    "car",
    "traffic sign",
    "pedestrian",
    "bicycle",
    "motorcycle",
    "parking-slot",
    "road-work",
    "traffic light",
    "terrain",
    "rider",
    "truck",
    "bus",
    "train",
    "wall",
    "lanemarking",
)


@dataclass(frozen=True)
class ClassProtocol:
    """The classes a benchmark trains and evaluates on.

    Attributes:
        name: protocol name (``cityscapes19`` or ``synthia16``).
        classes: class names in train-id order.
        cityscapes_ids: for each class, its index among the 19 Cityscapes train classes.
        subset13: indices (into ``classes``) of the 13-class mIoU* subset, or ``None``.
    """

    name: str
    classes: tuple[str, ...]
    cityscapes_ids: tuple[int, ...]
    subset13: tuple[int, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def palette(self) -> np.ndarray:
        """uint8 [num_classes, 3]: the Cityscapes colour of each class."""
        return CITYSCAPES_PALETTE[list(self.cityscapes_ids)]

    def from_cityscapes19(self) -> np.ndarray:
        """uint8 [256]: maps a Cityscapes train id (0..18, 255) to this protocol's id (or 255)."""
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        lut[list(self.cityscapes_ids)] = np.arange(self.num_classes, dtype=np.uint8)
        return lut


_SYNTHIA16_NAMES = tuple(c for c in CITYSCAPES_CLASSES if c not in ("terrain", "truck", "train"))

PROTOCOLS: Registry[ClassProtocol] = Registry(
    "class protocol",
    {
        "cityscapes19": ClassProtocol(
            "cityscapes19", CITYSCAPES_CLASSES, tuple(range(len(CITYSCAPES_CLASSES)))
        ),
        "synthia16": ClassProtocol(
            "synthia16",
            _SYNTHIA16_NAMES,
            tuple(CITYSCAPES_CLASSES.index(c) for c in _SYNTHIA16_NAMES),
            subset13=tuple(
                i for i, c in enumerate(_SYNTHIA16_NAMES) if c not in ("wall", "fence", "pole")
            ),
        ),
    },
    ordered=True,
)


def get_protocol(name: str) -> ClassProtocol:
    """Return the class protocol ``name``; an unknown name lists the valid ones."""
    return PROTOCOLS.lookup(name)


@dataclass(frozen=True)
class LabelEncoding:
    """What a dataset's label files hold: each dataset module's ``LAYOUT`` names its encoding
    (the one place that says how its labels are written).

    Attributes:
        name: for messages (``"Cityscapes labelIds"``).
        to_cityscapes19: raw value → Cityscapes train id (0..18); other values are ignored.
        known: the raw values the dataset defines (any other value is corrupt data).
        void: the raw value a writer uses for an ignored pixel.
    """

    name: str
    to_cityscapes19: Mapping[int, int]
    known: tuple[int, ...]
    void: int

    def train_ids(self, protocol: str = "cityscapes19") -> np.ndarray:
        """uint8 [256]: raw value → ``protocol``'s train id (255: ignored or unknown)."""
        lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
        lut[list(self.to_cityscapes19)] = list(self.to_cityscapes19.values())
        return get_protocol(protocol).from_cityscapes19()[lut]

    def known_ids(self) -> np.ndarray:
        """bool [256]: which raw label values the dataset defines."""
        known = np.zeros(256, dtype=bool)
        known[list(self.known)] = True
        return known

    def raw_ids(self) -> np.ndarray:
        """uint8 [256]: Cityscapes train id → the raw value a writer uses (the lowest raw value
        of that class; 255 → :attr:`void`)."""
        lut = self.train_ids("cityscapes19")
        inv = np.full(256, self.void, np.uint8)
        for raw in sorted(self.known, reverse=True):  # 34 entries at most: lowest raw id wins
            if lut[raw] != IGNORE_INDEX:
                inv[lut[raw]] = raw
        return inv


#: Cityscapes labelIds 0..33 (Cityscapes' gtFine *_labelIds.png, GTAV's labels).
CITYSCAPES_LABEL_IDS = LabelEncoding(
    "Cityscapes labelIds",
    MappingProxyType(_CITYSCAPES_LABELID_TO_TRAINID),
    tuple(range(_CITYSCAPES_NUM_LABELIDS)),
    void=0,
)
#: SYNTHIA class ids 0..22 (RAND_CITYSCAPES/GT/LABELS).
SYNTHIA_CLASS_IDS = LabelEncoding(
    "SYNTHIA class ids",
    MappingProxyType(_SYNTHIA_ID_TO_TRAINID),
    tuple(range(_SYNTHIA_NUM_IDS)),
    void=0,
)
#: Cityscapes train ids 0..18 with 255 for void (ACDC's *_gt_labelTrainIds.png).
CITYSCAPES_TRAIN_IDS = LabelEncoding(
    "Cityscapes train ids",
    MappingProxyType({i: i for i in range(len(CITYSCAPES_CLASSES))}),
    (*range(len(CITYSCAPES_CLASSES)), IGNORE_INDEX),
    void=IGNORE_INDEX,
)


def id_to_train_id(encoding: LabelEncoding, protocol: str = "cityscapes19") -> np.ndarray:
    """Look-up table from ``encoding``'s raw label ids to ``protocol``'s train ids.

    Args:
        encoding: a dataset's :class:`LabelEncoding` (``halo.data.label_encoding(name)``).
        protocol: ``cityscapes19`` or ``synthia16``.

    Returns:
        uint8 [256]; ``lut[raw_id]`` is the train id, 255 for ignored and unknown ids.
    """
    return encoding.train_ids(protocol)


def class_names(protocol: str = "cityscapes19") -> tuple[str, ...]:
    """The class names of ``protocol`` in train-id order."""
    return get_protocol(protocol).classes
