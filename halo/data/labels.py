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

from dataclasses import dataclass

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

#: Datasets whose raw label ids this module knows (their encodings, keyed like halo.data.DATASETS).
DATASETS = ("cityscapes", "gta5", "synthia", "acdc")


def get_protocol(name: str) -> ClassProtocol:
    """Return the class protocol ``name``; an unknown name lists the valid ones."""
    return PROTOCOLS.lookup(name)


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")


def _raw_to_cityscapes19(dataset: str) -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    if dataset in ("cityscapes", "gta5"):
        table = _CITYSCAPES_LABELID_TO_TRAINID
    elif dataset == "synthia":
        table = _SYNTHIA_ID_TO_TRAINID
    else:  # acdc ships *_gt_labelTrainIds.png: already train ids
        table = {i: i for i in range(len(CITYSCAPES_CLASSES))}
    lut[list(table)] = list(table.values())
    return lut


def known_ids(dataset: str) -> np.ndarray:
    """bool [256]: which raw label values ``dataset`` defines (others are corrupt data)."""
    _check_dataset(dataset)
    known = np.zeros(256, dtype=bool)
    if dataset in ("cityscapes", "gta5"):
        known[:_CITYSCAPES_NUM_LABELIDS] = True
    elif dataset == "synthia":
        known[:_SYNTHIA_NUM_IDS] = True
    else:
        known[: len(CITYSCAPES_CLASSES)] = True
        known[IGNORE_INDEX] = True
    return known


def id_to_train_id(dataset: str, protocol: str = "cityscapes19") -> np.ndarray:
    """Look-up table from ``dataset``'s raw label ids to ``protocol``'s train ids.

    Args:
        dataset: one of ``cityscapes``, ``gta5``, ``synthia``, ``acdc``.
        protocol: ``cityscapes19`` or ``synthia16``.

    Returns:
        uint8 [256]; ``lut[raw_id]`` is the train id, 255 for ignored and unknown ids.
    """
    _check_dataset(dataset)
    return get_protocol(protocol).from_cityscapes19()[_raw_to_cityscapes19(dataset)]


def class_names(protocol: str = "cityscapes19") -> tuple[str, ...]:
    """The class names of ``protocol`` in train-id order."""
    return get_protocol(protocol).classes
