"""The labelling page's autosave: one draft per image, and the answers built from the drafts.

A draft is ``<round_dir>/drafts/<id>.json``
(:func:`~halo.acquisition.queries.draft_path`), written atomically on every change::

    {"format": "halo-annotate-draft/1", "id": "aachen/aachen_000000",
     "query_sha256": "<the manifest's query_sha256>", "query_pixels": N,
     "labels": [null, 3, 255, ...]}

``labels`` holds one value per queried pixel, in row-major order of the query mask (the order
of :attr:`ImageQuery.pixels`): a class id, ``255`` for "unsure / ignore" (answered, but no
class), or ``null`` while the pixel has no answer yet. A draft made for other queries (another
``query_sha256``: the round was acquired again) is ignored; a malformed one is refused
(:class:`~halo.acquisition.queries.LabelsError`), never silently dropped. Compact JSON on one
line, as a draft of a full-size Cityscapes round holds ~10⁵ labels. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from halo.acquisition.queries import LabelsError, draft_path, read_query, region_windows
from halo.acquisition.rounds import UNLABELLED
from halo.io import read_json, write_bytes

__all__ = [
    "DRAFT_FORMAT",
    "NO_ANSWER",
    "UNSURE",
    "ImageQuery",
    "build_answer",
    "check_labels",
    "draft_revision",
    "image_query",
    "read_draft",
    "regions_left",
    "untouched_regions_left",
    "write_draft",
]

DRAFT_FORMAT = "halo-annotate-draft/1"
UNSURE = UNLABELLED  # "unsure / ignore": answered, no class (255 in the answers)
NO_ANSWER = -1  # a queried pixel without an answer yet (``null`` in a draft)


@dataclass(frozen=True)
class ImageQuery:
    """The geometry of one image's query, as the page and the drafts index it.

    Attributes:
        entry: the image's manifest entry.
        pixels: int64 ``[N]``, flat row-major indices (``row * W + col``) of the queried pixels,
            ascending; ``N`` is the entry's ``query_pixels``.
        members: one int64 ``[n_k]`` array per region of the entry: the positions in ``pixels``
            of the region's queried pixels (query ∩ its window, clipped at the border).
    """

    entry: dict
    pixels: np.ndarray
    members: tuple[np.ndarray, ...]


def image_query(round_dir: str | os.PathLike, entry: dict) -> ImageQuery:
    """Read one image's query mask and index it (:class:`ImageQuery`).

    Raises:
        LabelsError: the query mask is not the one its manifest line describes (another
            ``query_sha256`` or pixel count).
    """
    query = read_query(round_dir, entry)
    digest = hashlib.sha256(np.packbits(query).tobytes()).hexdigest()
    if digest != entry.get("query_sha256") or int(query.sum()) != entry.get("query_pixels"):
        raise LabelsError(
            f"queries of {round_dir}: the query mask of {entry['id']!r} does not match its "
            "manifest line (acquire the round again)"
        )
    height, width = query.shape
    pixels = np.flatnonzero(query)
    position = np.full(height * width, -1, np.int64)
    position[pixels] = np.arange(pixels.size)
    position = position.reshape(height, width)
    centres = np.array([r["centre"] for r in entry["regions"]], dtype=np.int64).reshape(-1, 2)
    radii = np.array([int(r["radius"]) for r in entry["regions"]], dtype=np.int64)
    rows, cols, inside = region_windows(centres, radii, (height, width))
    cells = np.where(inside, position[rows, cols], -1).reshape(len(centres), -1)
    cells.sort(axis=1)  # the positions ascend; -1 (no queried pixel there) first
    members = tuple(row[row >= 0] for row in cells)  # ragged: one array per region
    return ImageQuery(entry=entry, pixels=pixels, members=members)


def check_labels(labels: object, entry: dict, where: str) -> np.ndarray:
    """Validate a draft's ``labels`` for one manifest entry.

    Returns:
        int16 ``[N]``: the class ids, :data:`UNSURE` (255) or :data:`NO_ANSWER` (-1, ``null``).

    Raises:
        LabelsError: not a list of ``query_pixels`` values, or a value that is not ``null``, a
            class id of the entry's classes or 255; one line, named by ``where``.
    """
    count, classes = int(entry["query_pixels"]), len(entry["classes"])
    if not isinstance(labels, list) or len(labels) != count:
        got = f"{len(labels)} values" if isinstance(labels, list) else type(labels).__name__
        raise LabelsError(
            f"{where}: expected a list of {count} labels (one per queried pixel), got {got}"
        )
    for value in labels:
        if value is not None and (
            type(value) is not int or not (0 <= value < classes or value == UNSURE)
        ):
            raise LabelsError(
                f"{where}: unknown class id {json.dumps(value)} (expected 0..{classes - 1}, "
                f"{UNSURE} for unsure, or null for not labelled)"
            )
    return np.array([NO_ANSWER if v is None else v for v in labels], dtype=np.int16)


def read_draft(round_dir: str | os.PathLike, entry: dict) -> np.ndarray | None:
    """The labels of an image's draft (:func:`check_labels`), or ``None``.

    ``None`` when the image has no draft, or its draft was made for other queries (another
    ``query_sha256``; ignored).

    Raises:
        LabelsError: the draft is not valid JSON, not a draft, or its labels are malformed.
    """
    path = draft_path(round_dir, entry["id"])
    if not path.is_file():
        return None
    try:
        draft = read_json(path, "draft")
    except ValueError as err:
        raise LabelsError(str(err).splitlines()[0]) from None
    if not isinstance(draft, dict) or "labels" not in draft:
        raise LabelsError(f"draft {path}: expected a JSON object with query_sha256 and labels")
    if draft.get("query_sha256") != entry["query_sha256"]:
        return None
    return check_labels(draft["labels"], entry, f"draft {path}")


def draft_revision(round_dir: str | os.PathLike, draft_id: str) -> str:
    """A draft's revision: the first 16 hex digits of its file's SHA-256, "" while there is none.

    The labelling page names the revision its labels started from, so that a save over a
    draft changed since (another tab or person) is refused rather than lost.
    """
    try:
        return _revision(draft_path(round_dir, draft_id).read_bytes())
    except FileNotFoundError:
        return ""


def _revision(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def write_draft(round_dir: str | os.PathLike, entry: dict, labels: np.ndarray) -> str:
    """Write an image's draft atomically (format: module docstring).

    Args:
        round_dir: the round folder.
        entry: the image's manifest entry.
        labels: int ``[N]`` checked labels (:func:`check_labels`).

    Returns:
        The new draft's revision (:func:`draft_revision`), from the bytes written.
    """
    path = draft_path(round_dir, entry["id"])
    draft = {
        "format": DRAFT_FORMAT,
        "id": entry["id"],
        "query_sha256": entry["query_sha256"],
        "query_pixels": int(entry["query_pixels"]),
        "labels": [None if v == NO_ANSWER else int(v) for v in np.asarray(labels).tolist()],
    }
    data = (json.dumps(draft, separators=(",", ":")) + "\n").encode()  # ASCII: json escapes
    write_bytes(path, data)  # bytes, so the revision is what is on disk on any platform
    return _revision(data)


def regions_left(query: ImageQuery, labels: np.ndarray | None) -> int:
    """Regions of an image with a queried pixel without an answer (unsure counts as answered).

    Args:
        query: the image's :class:`ImageQuery`.
        labels: int ``[N]`` labels, or ``None`` (no draft: nothing answered).
    """
    if labels is None:
        return sum(1 for m in query.members if m.size)
    return sum(1 for m in query.members if m.size and (labels[m] == NO_ANSWER).any())


def untouched_regions_left(entry: dict) -> int:
    """:func:`regions_left` of an image without a draft, from its manifest entry alone."""
    return sum(1 for region in entry["regions"] if int(region.get("pixels", 1)) > 0)


def build_answer(query: ImageQuery, labels: np.ndarray | None) -> np.ndarray:
    """uint8 ``[H, W]``: the answer of one image for :func:`~halo.acquisition.answers.import_answers`.

    The class ids of ``labels`` at the queried pixels; 255 elsewhere, for unsure, and for
    queried pixels without an answer (and everywhere when ``labels`` is ``None``).
    """
    height, width = query.entry["size"]
    answer = np.full(height * width, UNLABELLED, np.uint8)
    if labels is not None:
        given = labels != NO_ANSWER
        answer[query.pixels[given]] = labels[given]
    return answer.reshape(height, width)
