"""CVAT's "Segmentation mask 1.1" format: the queries out as a zip, the labels back from one.

The zip (CVAT's export and import layout, docs.cvat.ai "Segmentation Mask")::

    labelmap.txt                       "# label:color_rgb:parts:actions", then name:r,g,b::
    ImageSets/Segmentation/default.txt the image ids, one per line
    SegmentationClass/<id>.png         one colour per label (RGB), or a label index (1 channel)
    SegmentationObject/<id>.png        instance masks (written like the class masks; not read)
    JPEGImages/<id>.png                the images at the pool's size (written on export)

:func:`write_zip` paints every queried pixel in the colour of an extra label ``query`` and the rest
``background``; an annotator repaints the queried pixels with class colours in CVAT and exports
the task in the same format. :func:`read_zip` maps colours back to the run's train ids by label
*name*: ``background`` and ``query`` (a queried pixel left as it was) mean "not labelled"; any
other name must be one of the queries' classes. Nothing here imports torch.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from halo.acquisition.queries import (
    LabelsError,
    LazyAnswers,
    query_colour,
    query_path,
    read_manifest,
    read_query,
)
from halo.acquisition.rounds import UNLABELLED
from halo.io import atomic_open

__all__ = ["QUERY_LABEL", "read_zip", "write_zip"]

QUERY_LABEL = "query"
BACKGROUND = "background"
_HEADER = "# label:color_rgb:parts:actions"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _labelmap(classes: list[dict]) -> tuple[str, tuple[int, int, int]]:
    used = {tuple(c["color"]) for c in classes}
    if (0, 0, 0) in used:
        raise ValueError("export-queries: a class is black, the colour of CVAT's background")
    query = query_colour(classes)
    if query in used:  # every candidate is a class colour: none is farther than 0
        raise ValueError("export-queries: every query colour candidate is a class colour")
    rows = [(BACKGROUND, (0, 0, 0)), *((c["name"], tuple(c["color"])) for c in classes)]
    rows.append((QUERY_LABEL, query))
    lines = [_HEADER] + [f"{name}:{r},{g},{b}::" for name, (r, g, b) in rows]
    return "\n".join(lines) + "\n", query


def write_zip(round_dir: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write a round's queries as a CVAT "Segmentation mask 1.1" zip; returns the image count.

    Raises:
        FileNotFoundError: the round has no complete queries.
    """
    entries = read_manifest(round_dir)
    if not entries:
        raise ValueError(f"export-queries: {round_dir} queried no images")
    text, colour = _labelmap(entries[0]["classes"])
    with atomic_open(out, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:

        def put(name: str, data: bytes) -> None:
            zf.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data, zipfile.ZIP_DEFLATED)

        put("labelmap.txt", text.encode())
        put("ImageSets/Segmentation/default.txt", "".join(e["id"] + "\n" for e in entries).encode())
        for entry in entries:
            query = read_query(round_dir, entry)
            painted = np.zeros((*query.shape, 3), np.uint8)
            painted[query] = colour
            png = _png(painted)
            put(f"SegmentationClass/{entry['id']}.png", png)
            put(f"SegmentationObject/{entry['id']}.png", png)
            put(
                f"JPEGImages/{entry['id']}.png",
                query_path(round_dir, entry["id"], "images").read_bytes(),
            )
    return len(entries)


def _parse_labelmap(text: str, where: str, classes: list[dict]) -> list[tuple[str, tuple, int]]:
    """``[(name, (r, g, b), train id or 255)]`` in file order."""
    by_name = {c["name"].strip().lower(): int(c["id"]) for c in classes}
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        try:
            name = parts[0].strip()
            rgb = tuple(int(v) for v in parts[1].split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
        except (IndexError, ValueError):
            raise LabelsError(f"{where}:{number}: expected 'name:r,g,b::', got {line!r}") from None
        key = name.lower()
        if key in (BACKGROUND, QUERY_LABEL, "ignore", "unlabelled", "unlabeled"):
            rows.append((name, rgb, UNLABELLED))
        elif key in by_name:
            rows.append((name, rgb, by_name[key]))
        else:
            raise LabelsError(
                f"{where}:{number}: label {name!r} is not a class of the queries (classes: "
                f"{', '.join(c['name'] for c in classes)}; background/query = not labelled)"
            )
    colours: dict[tuple, int] = {}
    for name, rgb, cls in rows:
        if colours.setdefault(rgb, cls) != cls:
            raise LabelsError(f"{where}: colour {rgb} is given to two classes (at {name!r})")
    if not rows:
        raise LabelsError(f"{where}: no labels")
    return rows


_ZIP_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError)
#: what a zip of answers may hold beyond one mask per queried image, and labelmap.txt's size
EXTRA_MEMBERS = 64
LABELMAP_BYTES = 1 << 20


def mask_bytes(height: int, width: int) -> int:
    """The most a mask member of an ``H x W`` image may inflate to: an RGBA PNG stored without
    compression (4 bytes a pixel and a filter byte a row) and 64 KiB of chunks besides."""
    return height * (4 * width + 1) + (1 << 16)


def _limited_reader(zf: zipfile.ZipFile, path: Path, members: dict[str, str], limits: dict):
    """``read(name)``: a member's bytes, refused before reading when its declared size is over
    its limit and while reading when it inflates past it (a lying header)."""

    def read(name: str) -> bytes:
        where = f"labels {path}:{name}"
        info = zf.getinfo(members[name])
        limit = limits.get(name, LABELMAP_BYTES)
        if info.file_size > limit:
            raise LabelsError(
                f"{where}: declares {info.file_size} bytes, more than the {limit} this member "
                "may hold (a zip bomb?)"
            )
        try:
            with zf.open(info) as fh:
                data = fh.read(limit + 1)
        except _ZIP_ERRORS as err:
            raise LabelsError(f"{where}: unreadable zip member ({err})") from None
        if len(data) > limit:
            raise LabelsError(f"{where}: inflates past {limit} bytes (a zip bomb?)")
        return data

    return read


def _check_members(path: Path, members: dict[str, str], entries: list[dict]) -> None:
    """Every queried image has its mask member and no member names another image."""
    wanted = {f"SegmentationClass/{e['id']}.png" for e in entries}
    extra = sorted(
        n
        for n in members
        if n.startswith("SegmentationClass/") and n.endswith(".png") and n not in wanted
    )
    if extra:
        raise LabelsError(f"labels {path}:{extra[0]}: no queried image has this id")
    for entry in entries:  # every mask present before any is decoded
        member = f"SegmentationClass/{entry['id']}.png"
        if member not in members:
            raise LabelsError(
                f"labels {path}:{member}: missing (image {entry['id']!r} was queried)"
            )


def read_zip(path: str | os.PathLike, entries: list[dict]) -> LazyAnswers:
    """The answers in a CVAT "Segmentation mask 1.1" zip: image id → uint8 ``[H, W]`` train ids
    (each mask decoded when looked up; the zip stays open while the answers are read).

    Member names written on Windows (``\\``) are read as ``/``. A single-channel mask is read as
    label indices into ``labelmap.txt`` when its values fit, else as grey colours (an optimiser
    may store an all-grey RGB mask as one channel).

    Raises:
        LabelsError: not a zip, a corrupt or encrypted member, no ``labelmap.txt``, an unknown
            label or colour, a missing or extra class mask, a mask of another size (each naming
            the zip member).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except _ZIP_ERRORS as err:
        raise LabelsError(f"labels {path}: not a readable zip ({err})") from None
    if len(names) > len(entries) + EXTRA_MEMBERS:
        raise LabelsError(
            f"labels {path}: {len(names)} members, more than the {len(entries)} queried masks "
            f"and {EXTRA_MEMBERS} others a CVAT export holds"
        )
    members = {n.replace("\\", "/"): n for n in names}
    limits = {f"SegmentationClass/{e['id']}.png": mask_bytes(*map(int, e["size"])) for e in entries}
    read = _limited_reader(zf, path, members, limits)

    if "labelmap.txt" not in members:
        raise LabelsError(f"labels {path}: no labelmap.txt (a CVAT 'Segmentation mask 1.1' zip)")
    classes = entries[0]["classes"] if entries else []
    rows = _parse_labelmap(
        read("labelmap.txt").decode("utf-8", "replace"), f"{path}:labelmap.txt", classes
    )
    lut = {r[1]: r[2] for r in rows}
    _check_members(path, members, entries)
    sizes = {e["id"]: list(e["size"]) for e in entries}
    to_id = np.array([r[2] for r in rows], np.uint8)

    def load(image_id: str) -> np.ndarray:
        member = f"SegmentationClass/{image_id}.png"
        where = f"{path}:{member}"
        try:
            with Image.open(io.BytesIO(read(member))) as img:
                if [img.height, img.width] != sizes[image_id]:
                    raise LabelsError(
                        f"labels {where}: {[img.height, img.width]}, the queried image is "
                        f"{sizes[image_id]}"
                    )
                if img.mode in ("L", "I", "I;16"):  # one channel
                    index = np.asarray(img, dtype=np.int64)
                    if index.max(initial=0) < len(rows):  # label indices into labelmap.txt
                        return to_id[index]
                    if index.max(initial=0) > 255:
                        raise LabelsError(
                            f"labels {where}: label index {int(index.max())} but labelmap.txt "
                            f"has {len(rows)} labels"
                        )
                    rgb = np.repeat(index.astype(np.uint8)[..., None], 3, axis=2)  # grey colours
                else:
                    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as err:
            raise LabelsError(f"labels {where}: not a readable PNG ({err})") from None
        wide = rgb.astype(np.int64)
        packed = (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]
        values, inverse = np.unique(packed, return_inverse=True)
        mapped = []
        for v in values.tolist():  # the distinct colours of one mask, not its pixels
            colour = (v >> 16, (v >> 8) & 255, v & 255)
            if colour not in lut:
                raise LabelsError(f"labels {where}: colour {colour} is not in labelmap.txt")
            mapped.append(lut[colour])
        return np.asarray(mapped, np.uint8)[inverse.reshape(packed.shape)]

    return LazyAnswers([e["id"] for e in entries], load)
