"""The human annotator's half of a round folder: the queries out (docs/design.md, "Human in the loop").

With ``annotator: human`` the acquisition job does not label anything: it writes the round's maps
(:class:`~halo.acquisition.rounds.RoundWriter`, as the simulated oracle does) and, instead of the
masks, the *queries* a person answers. This module is the only one that knows their files::

    <round_dir>/queries/manifest.jsonl    one JSON object per image (below), written LAST: its
                                          presence marks the queries complete
    <round_dir>/queries/masks/<id>.png    uint8 [H, W]: 1 = label here (this round's new pixels)
    <round_dir>/queries/images/<id>.png   uint8 [H, W, 3]: the image as the model saw it (the
                                          pool's size, which is the size of every mask)
    <round_dir>/queries/previews/<id>.png the image with the queried pixels tinted
    <round_dir>/queries/pending.json      the round's budget report (written into budget.json
                                          once the answers are in) and the previous round folder
    <round_dir>/answers/<id>.png          uint8 [H, W]: the imported class ids inside the
                                          queries, 255 elsewhere and where no class was given
    <round_dir>/answers.json              what the import counted: images, queried, answered
                                          and unanswered pixels, where the answers came from
    <round_dir>/drafts/<id>.json          the labelling page's autosave (:mod:`halo.annotate`)

A manifest line::

    {"id": "aachen/aachen_000000", "image": "<the dataset's image file>",
     "file": "queries/images/aachen/aachen_000000.png", "query": "queries/masks/...png",
     "preview": "queries/previews/...png", "size": [H, W], "round": 1,
     "regions": [{"centre": [row, col], "radius": a, "pixels": n}], "query_pixels": N,
     "query_sha256": "...", "classes": [{"id": 0, "name": "road", "color": [128, 64, 128]}],
     "checkpoint": "sha256:..."}

``regions`` are this round's region centres (the ``(2a+1)²`` windows around them, clipped at
the border); ``pixels`` counts a window's pixels that no earlier round showed, which are the
pixels of the query mask. The answers come back through :mod:`halo.acquisition.answers`. Nothing
here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from halo.acquisition.rounds import BUDGET_FILE, mask_path, read_mask
from halo.io import atomic_open, read_json, write_json, write_png

__all__ = [
    "ANSWERS_DIR",
    "ANSWERS_REPORT",
    "DRAFTS_DIR",
    "MANIFEST_FILE",
    "PENDING_FILE",
    "QUERIES_DIR",
    "LabelsError",
    "LazyAnswers",
    "QueryWriter",
    "answer_path",
    "class_table",
    "draft_path",
    "file_sha256",
    "queries_complete",
    "query_colour",
    "query_path",
    "read_manifest",
    "read_pending",
    "read_query",
    "region_windows",
    "waiting_rounds",
]

QUERIES_DIR = "queries"
ANSWERS_DIR = "answers"
ANSWERS_REPORT = "answers.json"
DRAFTS_DIR = "drafts"
MANIFEST_FILE = f"{QUERIES_DIR}/manifest.jsonl"
PENDING_FILE = f"{QUERIES_DIR}/pending.json"


class LabelsError(ValueError):
    """Labels that cannot be imported; the message names the file and the expectation."""


class LazyAnswers(Mapping):
    """Image id → answer (uint8 ``[H, W]``), each read only when looked up, so an import holds one
    image's labels at a time whatever the pool's size.

    Args:
        ids: the image ids, in order.
        load: reads one image's answer (raises :class:`LabelsError` naming the file).
    """

    def __init__(self, ids: Sequence[str], load: Callable[[str], np.ndarray]) -> None:
        self._ids, self._load = list(ids), load
        self._known = set(self._ids)

    def __getitem__(self, image_id: str) -> np.ndarray:
        if image_id not in self._known:
            raise KeyError(image_id)
        return self._load(image_id)

    def __contains__(self, image_id: object) -> bool:  # without reading the image
        return image_id in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


#: candidate colours of the pixels still to label (the page, the previews, CVAT's "query" label)
QUERY_COLOURS = ((255, 0, 255), (0, 255, 255), (255, 255, 0), (1, 2, 3))


def query_colour(classes: Sequence[dict]) -> tuple[int, int, int]:
    """The colour that marks pixels still to label: of :data:`QUERY_COLOURS`, the one farthest
    (Euclidean RGB) from every class colour, so it is never read as a class (Cityscapes: cyan;
    magenta would be 35 from sidewalk).

    Args:
        classes: :func:`class_table` entries (``"color": [r, g, b]``).
    """
    palette = np.array([c["color"] for c in classes], dtype=np.float64).reshape(-1, 3)
    candidates = np.array(QUERY_COLOURS, dtype=np.float64)
    if not len(palette):
        return QUERY_COLOURS[0]
    nearest = np.linalg.norm(candidates[:, None] - palette[None], axis=-1).min(axis=1)
    return QUERY_COLOURS[int(nearest.argmax())]


def _under(round_dir: str | os.PathLike, folder: str, image_id: str) -> Path:
    """``<round_dir>/queries/<folder>/<image_id>.png`` (the id checked like a mask's)."""
    rel = mask_path("", image_id).relative_to("masks")
    return Path(round_dir) / QUERIES_DIR / folder / rel


def answer_path(round_dir: str | os.PathLike, image_id: str) -> Path:
    """``<round_dir>/answers/<image_id>.png``."""
    return Path(round_dir) / ANSWERS_DIR / mask_path("", image_id).relative_to("masks")


def draft_path(round_dir: str | os.PathLike, image_id: str) -> Path:
    """``<round_dir>/drafts/<image_id>.json``: the labelling page's autosave of one image."""
    return (
        Path(round_dir)
        / DRAFTS_DIR
        / mask_path("", image_id).relative_to("masks").with_suffix(".json")
    )


def query_path(round_dir: str | os.PathLike, image_id: str, kind: str = "masks") -> Path:
    """The path of one image's query file: ``kind`` is ``masks``, ``images`` or ``previews``."""
    if kind not in ("masks", "images", "previews"):
        raise ValueError(f"query_path: kind must be masks, images or previews, got {kind!r}")
    return _under(round_dir, kind, image_id)


def class_table(names: Sequence[str], palette: np.ndarray) -> list[dict]:
    """The class list of the queries: ``[{"id", "name", "color": [r, g, b]}]`` in train-id order.

    Args:
        names: class names, train-id order.
        palette: uint8 ``[C, 3]``, one colour per class.
    """
    palette = np.asarray(palette)
    if palette.shape != (len(names), 3):
        raise ValueError(f"class_table: {len(names)} names but a palette of {palette.shape}")
    return [
        {"id": i, "name": str(n), "color": [int(c) for c in palette[i]]}
        for i, n in enumerate(names)
    ]


def region_windows(
    centres: np.ndarray, radii: int | np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells of each region's ``(2a+1)²`` window, clipped at the border (loop-free).

    Args:
        centres: int ``[n, 2]`` region centres (row, col).
        radii: the active radius ``a``, one for all or int ``[n]``.
        shape: the image's ``(H, W)``.

    Returns:
        ``(rows, cols, inside)``, each ``[n, k, k]`` with ``k = 2·max(a) + 1``: the cell
        coordinates (clipped into the image, so they index any ``[H, W]`` map) and whether the
        cell is in the region's window and in the image.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(radii, dtype=np.int64), (len(centres),))
    top = int(radii.max(initial=0))
    offsets = np.arange(-top, top + 1)
    rows = centres[:, 0, None, None] + offsets[None, :, None]
    cols = centres[:, 1, None, None] + offsets[None, None, :]
    reach = radii[:, None, None]
    inside = (np.abs(offsets)[None, :, None] <= reach) & (np.abs(offsets)[None, None, :] <= reach)
    inside = inside & (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    rows, cols, inside = np.broadcast_arrays(rows, cols, inside)
    return np.clip(rows, 0, shape[0] - 1), np.clip(cols, 0, shape[1] - 1), inside


def file_sha256(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def waiting_rounds(root: str | os.PathLike) -> list[Path]:
    """Round folders below ``root`` whose queries are complete but not answered (no
    ``budget.json``), sorted."""
    return sorted(
        p.parent.parent
        for p in Path(root).rglob(Path(MANIFEST_FILE).name)
        if p.parent.name == QUERIES_DIR and not (p.parent.parent / BUDGET_FILE).is_file()
    )


def queries_complete(round_dir: str | os.PathLike) -> bool:
    """Whether ``round_dir`` holds complete queries (its manifest was written)."""
    return (Path(round_dir) / MANIFEST_FILE).is_file()


class QueryWriter:
    """Writes a round's queries image by image (use as a context manager); :meth:`finish` last.

    Entering removes the queries and imported answers of an earlier acquisition of this round
    (void once the round is acquired again), so an interrupted job leaves incomplete queries,
    never stale ones. The page's drafts stay: each records the ``query_sha256`` it was made for.

    Args:
        round_dir: the round folder.
        round: 1-based round index.
        classes: :func:`class_table` of the run's protocol.
        checkpoint: fingerprint of the model that picked the regions (:func:`file_sha256`).
    """

    def __init__(
        self, round_dir: str | os.PathLike, *, round: int, classes: list[dict], checkpoint: str
    ) -> None:
        self.round_dir = Path(round_dir)
        self.round, self.classes, self.checkpoint = int(round), classes, checkpoint
        self.lines: list[str] = []

    def __enter__(self) -> QueryWriter:
        for name in (MANIFEST_FILE, PENDING_FILE, ANSWERS_REPORT):
            (self.round_dir / name).unlink(missing_ok=True)
        for kind in ("masks", "images", "previews"):
            shutil.rmtree(self.round_dir / QUERIES_DIR / kind, ignore_errors=True)
        shutil.rmtree(self.round_dir / ANSWERS_DIR, ignore_errors=True)  # answers of old queries
        return self

    def add(
        self,
        image_id: str,
        *,
        source: str,
        image: np.ndarray,
        query: np.ndarray,
        centres: np.ndarray,
        radius: int,
    ) -> None:
        """One image's query files and manifest line.

        Args:
            image_id: the image's id.
            source: the dataset's image file (recorded in the manifest).
            image: uint8 ``[H, W, 3]``, the image at the pool's size.
            query: bool ``[H, W]``, this round's new pixels.
            centres: int ``[n, 2]`` region centres (row, col) of this round.
            radius: the active radius ``a`` of the regions.
        """
        query = np.asarray(query, dtype=bool)
        height, width = query.shape
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"queries {image_id!r}: image {image.dtype} {list(image.shape)} does not match "
                f"the query {[height, width]}"
            )
        qmask = query.astype(np.uint8)
        paths = {
            k: query_path(self.round_dir, image_id, k) for k in ("masks", "images", "previews")
        }
        write_png(paths["masks"], qmask)
        write_png(paths["images"], image)
        tinted = image.astype(np.float32)
        tint = np.array(query_colour(self.classes), dtype=np.float32)
        tinted[query] = 0.4 * tinted[query] + 0.6 * tint
        write_png(paths["previews"], tinted.round().astype(np.uint8))
        centres = np.asarray(centres, dtype=np.int64).reshape(-1, 2)
        rows, cols, inside = region_windows(centres, radius, query.shape)
        counts = (query[rows, cols] & inside).sum(axis=(1, 2))  # each window's new pixels
        regions = [
            {"centre": centre, "radius": int(radius), "pixels": n}
            for centre, n in zip(centres.tolist(), counts.tolist(), strict=True)
        ]
        entry = {
            "id": image_id,
            "image": str(source),
            **{
                k: p.relative_to(self.round_dir).as_posix()
                for k, p in (
                    ("file", paths["images"]),
                    ("query", paths["masks"]),
                    ("preview", paths["previews"]),
                )
            },
            "size": [int(height), int(width)],
            "round": self.round,
            "regions": regions,
            "query_pixels": int(query.sum()),
            "query_sha256": hashlib.sha256(np.packbits(query).tobytes()).hexdigest(),
            "classes": self.classes,
            "checkpoint": self.checkpoint,
        }
        self.lines.append(json.dumps(entry, separators=(",", ":")))

    def finish(self, pending: dict, prev_dir: str | os.PathLike | None) -> Path:
        """Write ``pending.json`` and then the manifest (last: the queries are complete)."""
        prev = None  # relative to this round: the pair moves together, any working directory
        if prev_dir is not None:
            prev = os.path.relpath(Path(prev_dir).resolve(), self.round_dir.resolve())
        write_json(self.round_dir / PENDING_FILE, {"budget": pending, "prev": prev})
        path = self.round_dir / MANIFEST_FILE
        with atomic_open(path, "w") as fh:
            fh.write("".join(line + "\n" for line in self.lines))
        return path

    def __exit__(self, *exc: object) -> None:
        pass


_ENTRY_KEYS = {"id": str, "size": list, "round": int, "regions": list, "classes": list}


def read_manifest(round_dir: str | os.PathLike) -> list[dict]:
    """The manifest of a round's complete queries, one dict per image, in pool order.

    Raises:
        FileNotFoundError: the round has no complete queries (named, with the command to run).
        ValueError: a line is not a JSON object with the expected keys (file and line named).
    """
    path = Path(round_dir) / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: {round_dir} has no queries (acquire it with "
            "`halo acquire ... --annotator human`)"
        )
    entries, seen = [], set()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (a queries manifest is JSON lines)") from None
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON object ({err.msg})") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(entry).__name__}")
        bad = [k for k, t in _ENTRY_KEYS.items() if not isinstance(entry.get(k), t)]
        if bad:
            raise ValueError(f"{path}:{number}: expected a query entry, missing or bad {bad}")
        if entry["id"] in seen:
            raise ValueError(f"{path}:{number}: image {entry['id']!r} appears twice")
        mask_path(round_dir, entry["id"])  # a bad id (absolute, '..') fails here
        seen.add(entry["id"])
        entries.append(entry)
    return entries


def read_pending(round_dir: str | os.PathLike) -> dict:
    """``{"budget": <budget report without answers>, "prev": <previous round folder or None>}``."""
    pending = read_json(Path(round_dir) / PENDING_FILE, "pending round report")
    if not isinstance(pending, dict) or not isinstance(pending.get("budget"), dict):
        raise ValueError(
            f"{Path(round_dir) / PENDING_FILE}: expected {{'budget': {{...}}, 'prev'}}"
        )
    return pending


def read_query(round_dir: str | os.PathLike, entry: dict) -> np.ndarray:
    """bool ``[H, W]``: the query mask of one manifest entry (its size checked)."""
    path = query_path(round_dir, entry["id"])
    query = read_mask(path)
    if list(query.shape) != list(entry["size"]) or query.max(initial=0) > 1:
        raise ValueError(
            f"query mask {path}: expected 0/1 values of size {entry['size']}, got "
            f"{list(query.shape)} with max {int(query.max(initial=0))}"
        )
    return query.astype(bool)
