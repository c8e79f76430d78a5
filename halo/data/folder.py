"""Your own images: a ``folder`` dataset in no official layout (README, "Label your own data").

::

    <root>/classes.yaml            the classes: names, the ids the label files use, colours
    <root>/images/<id>.<png|jpg|jpeg>   the images; subfolders make ids with "/"
    <root>/labels/<id>.png         optional: single-channel class ids of classes.yaml (255 = not
                                   labelled); an image without one loads unlabelled
    <root>/<split>.txt             optional: the ids of a split, one per line (split ``all``:
                                   every image)

``classes.yaml``::

    classes:
      - {id: 0, name: road, color: [128, 64, 128]}
      - {id: 1, name: sidewalk, color: [244, 35, 232]}

A class is matched to the benchmark's class protocol by *name* (case-insensitive), so a folder can
be the target of any benchmark whose source knows its classes; a name the protocol lacks is an
error naming ``classes.yaml`` and the protocol's classes, and a label id the file does not list
is corrupt data (named by :meth:`~halo.data.dataset.SegmentationDataset.verify`). A run uses a
folder as its target pool or validation set with the config keys ``target_data`` and
``val_data`` (:mod:`halo.config.run`). Torch-free, like every layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halo.data.layout import DataError, Sample, require_dir
from halo.data.readers import read_label_8bit

__all__ = ["CLASSES_FILE", "LAYOUT", "label_table", "read_classes", "samples"]

CLASSES_FILE = "classes.yaml"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IGNORE = 255


@dataclass(frozen=True)
class FolderLayout:
    """What the package asks of a dataset's layout (:class:`~halo.data.layout.Layout`'s
    ``name``, ``folders``, ``source``, ``read_label`` and ``image_folder``), for a folder."""

    name: str = "folder"
    title: str = "an image folder"
    folders: tuple[str, ...] = ("images",)
    source: str = (
        "your own images: <root>/images/, optional <root>/labels/ and <root>/classes.yaml "
        "(README, 'Label your own data')"
    )
    label_format: str = "class ids of classes.yaml"
    encoding: None = None  # the label table comes from classes.yaml (label_table)

    @staticmethod
    def read_label(path: Path) -> np.ndarray:
        return read_label_8bit(path)

    @staticmethod
    def image_folder(root: Path, split: str) -> Path:
        return Path(root) / "images"


LAYOUT = FolderLayout()


def read_classes(root: str | Path) -> list[dict]:
    """The classes of ``<root>/classes.yaml``: ``[{"id", "name", "color": [r, g, b]}]``.

    Raises:
        DataError: a missing or malformed file, a repeated id or name, an id outside 0..254.
    """
    import yaml

    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        raise DataError(
            f"missing file {path} (the folder dataset's classes: 'classes:' with one "
            "{id, name, color} per class)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    items = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: expected 'classes:' with a list of {{id, name, color}}")
    out, ids, names = [], set(), set()
    for k, item in enumerate(items):
        ok = isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip()
        cid, color = (item.get("id"), item.get("color")) if ok else (None, None)
        ok = ok and type(cid) is int and 0 <= cid < IGNORE
        ok = ok and isinstance(color, list) and len(color) == 3
        ok = ok and all(type(c) is int and 0 <= c <= 255 for c in color)
        if not ok:
            raise DataError(
                f"{path}: classes[{k}] must be {{id: 0..254, name: text, color: [r, g, b]}}, "
                f"got {item!r}"
            )
        name = item["name"].strip()
        if cid in ids or name.lower() in names:
            raise DataError(f"{path}: classes[{k}] repeats the id {cid} or the name {name!r}")
        ids.add(cid)
        names.add(name.lower())
        out.append({"id": cid, "name": name, "color": list(color)})
    return out


def label_table(root: str | Path, protocol) -> tuple[np.ndarray, np.ndarray]:
    """``(lut, known)``: uint8 ``[256]`` label id → the protocol's train id (255 = ignore), and
    bool ``[256]`` of the ids ``classes.yaml`` defines (plus 255).

    Args:
        root: the folder dataset's root.
        protocol: the benchmark's :class:`~halo.data.labels.ClassProtocol`.

    Raises:
        DataError: ``classes.yaml`` names a class the protocol does not have.
    """
    classes = read_classes(root)
    train_id = {name.lower(): i for i, name in enumerate(protocol.classes)}
    lut = np.full(256, IGNORE, np.uint8)
    known = np.zeros(256, bool)
    known[IGNORE] = True
    for c in classes:
        if c["name"].lower() not in train_id:
            raise DataError(
                f"{Path(root) / CLASSES_FILE}: class {c['name']!r} is not a class of the "
                f"{protocol.name} protocol ({', '.join(protocol.classes)})"
            )
        lut[c["id"]] = train_id[c["name"].lower()]
        known[c["id"]] = True
    return lut, known


def samples(root: Path, split: str) -> list[Sample]:
    """The images under ``<root>/images`` (of ``<root>/<split>.txt`` unless ``split`` is ``all``),
    each with ``<root>/labels/<id>.png`` when it exists; sorted by id.

    Raises:
        DataError: no ``images/`` folder, no images, two images with one id, a split list naming
            an image that is not there.
    """
    root = Path(root)
    folder = require_dir(root / "images", "the folder dataset's images")
    read_classes(root)  # a missing or broken classes.yaml fails before any image is listed
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        image_id = path.relative_to(folder).with_suffix("").as_posix()
        if image_id in found:
            raise DataError(f"{path}: a second image with the id {image_id!r} ({found[image_id]})")
        found[image_id] = path
    if split != "all":
        listing = root / f"{split}.txt"
        if not listing.is_file():
            raise DataError(
                f"split {split!r}: missing file list {listing} (one image id per line), or use "
                f"split 'all' for every image under {folder}"
            )
        wanted = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        absent = [i for i in wanted if i not in found]
        if absent:
            raise DataError(f"{listing}: image {absent[0]!r} is not under {folder}")
        found = {i: found[i] for i in wanted}
    labels = root / "labels"
    return [
        Sample(i, p, labels / f"{i}.png" if (labels / f"{i}.png").is_file() else None)
        for i, p in sorted(found.items())
    ]
