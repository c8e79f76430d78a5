"""Dataset folder layouts: where every image and label file of a dataset lives (docs/design.md,
section "Data layouts").

Each dataset module declares its :class:`Layout` once, as two path templates relative to the
dataset root; for Cityscapes::

    image="leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"
    label="gtFine/{split}/{city}/{stem}_gtFine_labelIds.png"

``{split}`` is the split name. Every other field is one part of the *sample id*; the parts are
joined with ``/`` in the order they first appear in the image template (Cityscapes ids are
``city/stem``, ACDC ``condition/sequence/stem``, GTAV and SYNTHIA the file stem). Everything else
about a layout follows from the templates:

- :meth:`Layout.paths` maps (root, split, sample id) to (image path, label path): the loaders
  pair images with labels through it and the synthetic benchmark writes through it;
- :attr:`Layout.folders` are the folders that must exist (each template up to its first id
  field), checked by :func:`halo.data.missing_folders` before a workflow starts;
- :meth:`Layout.discover` finds the samples of a split: the image template globbed under the
  root or, where the paths have no ``{split}`` (GTAV, SYNTHIA), a split list ``<root>/<split>.txt``
  (split ``all``: every image).

Discovery fails before any file is decoded, with a :class:`DataError` naming the folder or file
and what was expected. Nothing here imports torch: the workflow checks layouts while it parses.
"""

from __future__ import annotations

import glob
import re
import string
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halo.data.labels import LabelEncoding

__all__ = ["DataError", "Layout", "Sample", "read_split_list", "require_dir"]

_FIELDS = string.Formatter()


class DataError(ValueError):
    """Missing, corrupt or inconsistent data; the message names the file or folder."""


@dataclass(frozen=True)
class Sample:
    """One image and its label file; ``id`` is unique within the dataset (may contain '/')."""

    id: str
    image: Path
    label: Path | None


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise a DataError naming it and ``what`` it is."""
    if not path.is_dir():
        raise DataError(f"missing folder {path} ({what})")
    return path


def read_split_list(root: Path, split: str) -> list[str] | None:
    """Read ``<root>/<split>.txt`` (one file stem or name per line), or None for split 'all'.

    Raises a DataError if the list is missing (naming the file and the alternative 'all').
    """
    if split == "all":
        return None
    path = root / f"{split}.txt"
    if not path.is_file():
        raise DataError(
            f"split {split!r}: missing file list {path} (one image name per line), "
            f"or use split 'all' for every image under {root}"
        )
    names = [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"split {split!r}: file list {path} is empty")
    return names


def _fields(template: str) -> list[str]:
    """The field names of a path template, in order of appearance (repeats included)."""
    fields = []
    for _, name, spec, conversion in _FIELDS.parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"layout template {template!r}: fields must be plain {{name}}s")
        fields.append(name)
    return fields


def _fill(component: str, values: Mapping[str, str], free: Callable[[str], str], escape=str) -> str:
    """One template component with ``values`` filled in and every other field replaced by
    ``free(name)``; literal text and values go through ``escape`` (for a glob or a regex)."""
    out = []
    for literal, name, _, _ in _FIELDS.parse(component):
        out.append(escape(literal))
        if name is not None:
            out.append(escape(values[name]) if name in values else free(name))
    return "".join(out)


def _head(template: str, known: Container[str]) -> tuple[list[str], list[str]]:
    """``template``'s components split before the first one with a field not in ``known``."""
    parts = template.split("/")
    for k, part in enumerate(parts):
        if any(f not in known for f in _fields(part)):
            return parts[:k], parts[k:]
    return parts, []


@dataclass(frozen=True)
class Layout:
    """A dataset's official folder layout, declared once by its dataset module.

    Args:
        name: the dataset's name (its :data:`halo.data.DATASETS` key and label table).
        title: the dataset's name in messages (``"Cityscapes"``).
        image: the image path template under the root (``{split}`` and the id fields).
        label: the label path template; the same id fields as ``image``.
        label_format: what the label files hold, for messages (``"Cityscapes labelIds"``).
        encoding: the label values (:class:`~halo.data.labels.LabelEncoding`): raw value →
            train id, the values defined, the void value a writer uses.
        read_label: decodes a label file into raw ids [H, W] (:mod:`halo.data.readers`).
        write_label: writes raw ids [H, W] as a label file of this format (the synthetic
            benchmark; :mod:`halo.data.readers`).
        source: where to get the data (it is never fetched by this package).
        unlabelled_splits: splits without public labels: they load unlabelled.
    """

    name: str
    title: str
    image: str
    label: str
    label_format: str
    encoding: LabelEncoding
    read_label: Callable[[Path], Any]
    write_label: Callable[[Path, Any], None]
    source: str
    unlabelled_splits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        image, label = _fields(self.image), _fields(self.label)
        ids = [f for f in image if f != "split"]
        if not ids or len(set(ids)) != len(ids):
            raise ValueError(f"{self.name} layout: {self.image!r} needs distinct id fields")
        if sorted(f for f in label if f != "split") != sorted(ids):
            raise ValueError(f"{self.name} layout: {self.label!r} must use the fields of the image")
        if ("split" in image) != ("split" in label):
            raise ValueError(f"{self.name} layout: both templates or neither use {{split}}")

    # ---- derived from the templates ------------------------------------------------------------

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The parts of a sample id, in order (``("city", "stem")`` for Cityscapes)."""
        return tuple(f for f in _fields(self.image) if f != "split")

    @property
    def split_lists(self) -> bool:
        """True if the paths have no ``{split}``: splits are file lists ``<root>/<split>.txt``."""
        return "split" not in _fields(self.image)

    @property
    def folders(self) -> tuple[str, str]:
        """The image and label folders that must exist (``{split}`` not filled in)."""
        image, label = ("/".join(_head(t, {"split"})[0]) for t in (self.image, self.label))
        return image, label

    def image_folder(self, root: Path, split: str) -> Path:
        """The folder all images of ``split`` lie under."""
        return Path(root) / self.folders[0].format(split=split)

    def paths(self, root: str | Path, split: str, sample_id: str) -> tuple[Path, Path]:
        """(image path, label path) of sample ``sample_id`` of ``split`` under ``root``."""
        parts = sample_id.split("/")
        if len(parts) != len(self.id_fields):
            raise ValueError(
                f"{self.name} sample id {sample_id!r}: expected "
                f"{'/'.join(f'<{f}>' for f in self.id_fields)}"
            )
        values = dict(zip(self.id_fields, parts, strict=True), split=split)
        root = Path(root)
        return root / self.image.format(**values), root / self.label.format(**values)

    # ---- discovery -----------------------------------------------------------------------------

    def discover(self, root: Path, split: str, **fixed: str) -> list[Sample]:
        """The samples of ``split`` under ``root``, sorted by id.

        Args:
            root: the dataset's top folder.
            split: split name; with split lists, ``all`` or a list ``<root>/<split>.txt``.
            **fixed: values of id fields to keep to (ACDC: ``condition="fog"``).

        Raises:
            DataError: a missing folder or split list, a listed image missing, an image without
                its label (unless ``split`` is unlabelled).
        """
        unknown = sorted(set(fixed) - set(self.id_fields))
        if unknown:
            raise ValueError(f"{self.name} layout: no id field {unknown[0]!r}; {self.id_fields}")
        root = Path(root)
        values = {**fixed, "split": split}
        labelled = split not in self.unlabelled_splits
        image_dir, pattern = self._split(self.image, values)
        image_dir = require_dir(root / image_dir, f"{self.title} {self._shown(self.image, values)}")
        if labelled:
            require_dir(
                root / self._split(self.label, values)[0],
                f"{self.title} {self._shown(self.label, values)}, {self.label_format}",
            )
        wanted = read_split_list(root, split) if self.split_lists else None
        if wanted is None:
            ids = self._glob_ids(image_dir, pattern, values)
        else:
            ids = wanted
            for sid in ids:
                image = self.paths(root, split, sid)[0]
                if not image.is_file():
                    raise DataError(f"split {split!r} lists {image.name}, but {image} is missing")
        samples = []
        for sid in ids:
            image, label = self.paths(root, split, sid)
            if not label.is_file():
                if labelled:
                    raise DataError(f"image {image} has no label: expected {label}")
                label = None
            samples.append(Sample(sid, image, label))
        samples.sort(key=lambda s: s.id)
        return samples

    @staticmethod
    def _split(template: str, values: Mapping[str, str]) -> tuple[str, str]:
        """(the folder part of ``template`` with ``values`` filled in, the rest): the folder
        ends before the first component with a field not in ``values``."""
        head, rest = _head(template, values)
        return "/".join(_fill(p, values, str) for p in head), "/".join(rest)

    def _shown(self, template: str, values: Mapping[str, str]) -> str:
        """``template`` for messages: ``values`` filled in, other fields as ``<name>``."""
        return _fill(template, values, lambda f: f"<{f}>")

    def _glob_ids(self, folder: Path, pattern: str, values: Mapping[str, str]) -> list[str]:
        """The ids of the images matching ``pattern`` (a template rest) under ``folder``."""
        regex = re.compile(_fill(pattern, values, lambda f: f"(?P<{f}>[^/]*)", re.escape))
        globbed = _fill(pattern, values, lambda f: "*", glob.escape)
        ids = []
        for path in folder.glob(globbed):
            match = regex.fullmatch(path.relative_to(folder).as_posix())
            if match is None:  # a glob '*' can match what the literal text around it needs
                continue
            got = {**values, **match.groupdict()}
            ids.append("/".join(got[f] for f in self.id_fields))
        return ids
