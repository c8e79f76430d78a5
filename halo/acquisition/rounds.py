"""The round folder: its layout, and every read and write of it (docs/design.md, "Files").

One acquisition round of an active run lives in one folder; this module is the only one that
knows its file names and formats::

    <round_dir>/masks/<image-id>.png   uint8 [H, W]: the annotator's trainId where labelled so
                                       far (CUMULATIVE over rounds), 255 elsewhere (and where the
                                       annotator gave no class); ids with "/" make subfolders
    <round_dir>/blocked.npz            per image (key = image id): bool [H, W], pixels no later
                                       round may pick as a region centre
    <round_dir>/labelled.npz           per image (key = image id): bool [H, W], pixels shown to the
                                       annotator so far (cumulative; unlike the PNG it keeps the
                                       labelled pixels whose label is 255, so the budget counts
                                       them exactly)
    <round_dir>/budget.json            written LAST: its presence marks a complete round
    <round_dir>/provenance_acquire.json  the acquisition job's provenance

Every file is written atomically (temporary file + rename, :mod:`halo.io`): a job killed
mid-round leaves no half-written file, and no ``budget.json`` (:class:`RoundWriter` first removes
a stale one). The two ``.npz`` files are streamed image by image into their temporary files, so
the pool's maps are never all in memory; their zip entries carry a fixed timestamp, so the same
inputs give the same bytes. Torch-free: :class:`MaskedTarget` builds its label tensors from the
wrapped dataset's own tensors.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from halo.io import atomic_open, read_json, remove_stray_temp, write_json, write_png

__all__ = [
    "BLOCKED_FILE",
    "BUDGET_FILE",
    "LABELLED_FILE",
    "MASKS_DIR",
    "PROVENANCE_FILE",
    "UNLABELLED",
    "BudgetReport",
    "MaskedTarget",
    "RoundState",
    "RoundWriter",
    "iter_masks",
    "label_mask",
    "mask_path",
    "read_budget",
    "read_mask",
    "round_complete",
    "write_budget",
]

UNLABELLED = 255
MASKS_DIR = "masks"
BLOCKED_FILE = "blocked.npz"
LABELLED_FILE = "labelled.npz"
BUDGET_FILE = "budget.json"
PROVENANCE_FILE = "provenance_acquire.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip entry time: identical inputs, identical bytes


def mask_path(round_dir: str | os.PathLike, image_id: str) -> Path:
    """``<round_dir>/masks/<image_id>.png``; ``image_id`` may contain ``/`` (subfolders).

    Raises:
        ValueError: an empty or absolute id, or one with ``..``, ``\\`` or empty parts.
    """
    parts = PurePosixPath(image_id).parts if isinstance(image_id, str) else ()
    if (
        not parts
        or image_id.startswith("/")
        or "\\" in image_id
        or any(p in ("", ".", "..") for p in image_id.split("/"))
    ):
        raise ValueError(
            f"image id must be a relative path of plain names (a/b_c), got {image_id!r}"
        )
    return Path(round_dir) / MASKS_DIR / f"{image_id}.png"


def label_mask(labelled: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The mask PNG's content: the ground truth where labelled, 255 elsewhere.

    Args:
        labelled: ``[H, W]`` bool, pixels shown to the annotator so far.
        label: ``[H, W]`` int ground-truth trainIds in ``[0, 255]`` (255 = ignore).

    Returns:
        ``[H, W]`` uint8.
    """
    labelled, label = np.asarray(labelled), np.asarray(label)
    if labelled.dtype != bool or labelled.shape != label.shape or labelled.ndim != 2:
        raise ValueError(
            f"label_mask: expected bool labelled and an int label of one [H, W] shape, got "
            f"{labelled.dtype} {list(labelled.shape)} and {label.dtype} {list(label.shape)}"
        )
    if label.size and (int(label.min()) < 0 or int(label.max()) > UNLABELLED):
        raise ValueError(
            f"label_mask: label values must be in [0, 255], got [{label.min()}, {label.max()}]"
        )
    return np.where(labelled, label, UNLABELLED).astype(np.uint8)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read an acquired mask PNG as uint8 ``[H, W]`` (255 = not labelled).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable single-channel 8-bit PNG (corrupt, truncated, RGB), named.
    """
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise FileNotFoundError(f"mask {path} does not exist")
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P"):
                raise ValueError(
                    f"mask {path}: expected a single-channel 8-bit PNG, got mode {img.mode}"
                )
            return np.asarray(img, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"mask {path}: not a readable PNG ({err})") from None


def round_complete(round_dir: str | os.PathLike) -> bool:
    """Whether ``round_dir`` holds a complete round (its ``budget.json`` was written)."""
    return (Path(round_dir) / BUDGET_FILE).is_file()


def read_budget(round_dir: str | os.PathLike) -> dict:
    """The ``budget.json`` of a complete round.

    Raises:
        FileNotFoundError: the round is missing or incomplete.
    """
    path = Path(round_dir) / BUDGET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no budget file; the round is missing or incomplete")
    budget = read_json(path, "budget report")
    if not isinstance(budget, dict):
        raise ValueError(f"budget report {path}: expected a JSON object")
    return budget


class RoundState:
    """Read access to a complete round's per-image maps (lazy: one image at a time).

    Use as a context manager (closes the ``.npz`` files).

    Args:
        round_dir: a complete round folder.

    Raises:
        FileNotFoundError: the round is incomplete or a map file is missing.
    """

    def __init__(self, round_dir: str | os.PathLike) -> None:
        self.round_dir = Path(round_dir)
        self.budget = read_budget(self.round_dir)
        self._files: dict[str, Any] = {}
        for name in (BLOCKED_FILE, LABELLED_FILE):
            path = self.round_dir / name
            if not path.is_file():
                self.close()
                raise FileNotFoundError(f"{path}: missing map file of a complete round")
            try:
                self._files[name] = np.load(path, allow_pickle=False)
            except (OSError, ValueError, zipfile.BadZipFile) as err:
                self.close()
                raise ValueError(f"{path}: not a readable map file ({err})") from None

    def maps(self, image_id: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(blocked, labelled)`` bool ``[H, W]`` maps of one image.

        Raises:
            ValueError: the image is missing or its maps have another shape.
        """
        out = []
        for name in (BLOCKED_FILE, LABELLED_FILE):
            npz = self._files[name]
            if image_id not in npz.files:
                raise ValueError(f"{self.round_dir / name}: no map for image {image_id!r}")
            arr = npz[image_id]
            if arr.dtype != bool or tuple(arr.shape) != tuple(shape):
                raise ValueError(
                    f"{self.round_dir / name}[{image_id!r}]: expected bool {list(shape)}, got "
                    f"{arr.dtype} {list(arr.shape)}"
                )
            out.append(arr)
        return out[0], out[1]

    def close(self) -> None:
        for npz in self._files.values():
            npz.close()
        self._files.clear()

    def __enter__(self) -> RoundState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _npz_stream(path: Path) -> Iterator[Any]:
    """Write a ``.npz`` entry by entry into a temporary file, renamed on success."""
    with atomic_open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(key: str, array: np.ndarray) -> None:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)

        yield add


@dataclass(frozen=True)
class BudgetReport:
    """What one round labelled, against the pool's pixel count.

    Attributes:
        strategy: strategy name.
        round: 1-based index of this round in its chain of rounds.
        round_budget: the fraction asked for this round.
        active_radius: ``a`` used for the regions.
        mask_radius: ``m`` used for blocking.
        images: images in the pool.
        pixels_total: pixels in the pool.
        regions: region centres picked this round.
        pixels_target_round: the pixels this round was to label: ``floor(c_r · S)`` less the
            pixels labelled before (``c_r``: the labelled fraction allowed after this round,
            ``S``: the pool's pixels); it labels at most that, and less than one region fewer
            unless the images ran out of unblocked pixels.
        pixels_labelled_round: pixels newly shown (queried) to the annotator this round.
        pixels_labelled_cumulative: pixels shown so far, all rounds.
        pixels_answered_round: of those, the pixels the annotator gave a class (the simulated
            oracle: all of them; a person may leave some unlabelled); None in older reports.
        history: one dict per round so far (``round``, ``pixels_labelled``, ``fraction``,
            ``pixels_labelled_cumulative``, ``fraction_cumulative``).
    """

    strategy: str
    round: int
    round_budget: float
    active_radius: int
    mask_radius: int
    images: int
    pixels_total: int
    regions: int
    pixels_labelled_round: int
    pixels_labelled_cumulative: int
    pixels_target_round: int | None = None
    pixels_answered_round: int | None = None
    history: tuple[dict, ...] = field(default=())

    @property
    def fraction_round(self) -> float:
        """Pixels labelled this round / pixels total."""
        return self.pixels_labelled_round / max(self.pixels_total, 1)

    @property
    def fraction_cumulative(self) -> float:
        """Pixels labelled so far / pixels total."""
        return self.pixels_labelled_cumulative / max(self.pixels_total, 1)

    @classmethod
    def from_dict(cls, data: dict) -> BudgetReport:
        """The report of a :meth:`to_dict` (``budget.json``); derived keys are ignored."""
        optional = ("history", "pixels_target_round", "pixels_answered_round")
        names = [f for f in cls.__dataclass_fields__ if f not in optional]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"budget report: missing keys {missing}")
        extra = {n: data[n] for n in optional[1:] if n in data}
        return cls(**{n: data[n] for n in names}, **extra, history=tuple(data.get("history", ())))

    def to_dict(self) -> dict:
        """The JSON content of ``budget.json``."""
        return {
            "strategy": self.strategy,
            "round": self.round,
            "round_budget": self.round_budget,
            "active_radius": self.active_radius,
            "mask_radius": self.mask_radius,
            "images": self.images,
            "pixels_total": self.pixels_total,
            "regions": self.regions,
            "pixels_target_round": self.pixels_target_round,
            "pixels_labelled_round": self.pixels_labelled_round,
            "pixels_answered_round": self.pixels_answered_round,
            "pixels_labelled_cumulative": self.pixels_labelled_cumulative,
            "fraction_round": self.fraction_round,
            "fraction_cumulative": self.fraction_cumulative,
            "history": list(self.history),
        }

    def __str__(self) -> str:
        return (
            f"{self.pixels_labelled_round} of {self.pixels_total} pixels this round "
            f"({100 * self.fraction_round:.3f} %), {self.pixels_labelled_cumulative} "
            f"({100 * self.fraction_cumulative:.3f} %) cumulative, {self.regions} regions"
        )


def write_budget(round_dir: str | os.PathLike, report: BudgetReport) -> Path:
    """Write ``budget.json``: the last file of a round, marking it complete."""
    path = Path(round_dir) / BUDGET_FILE
    write_json(path, report.to_dict())
    return path


class RoundWriter:
    """Writes a round folder's masks and maps, image by image (use as a context manager).

    Entering removes the folder's completion marker (``budget.json``) and the temporaries of a
    killed earlier attempt; leaving renames the two streamed ``.npz`` files into place (or
    removes them if the block raised). :func:`write_budget` afterwards completes the round.

    Args:
        round_dir: the round folder (created if needed).
    """

    def __init__(self, round_dir: str | os.PathLike) -> None:
        self.round_dir = Path(round_dir)
        self._stack = ExitStack()

    def __enter__(self) -> RoundWriter:
        self.round_dir.mkdir(parents=True, exist_ok=True)
        (self.round_dir / BUDGET_FILE).unlink(missing_ok=True)  # the completion marker first
        remove_stray_temp(
            self.round_dir, (BUDGET_FILE, BLOCKED_FILE, LABELLED_FILE, PROVENANCE_FILE)
        )
        remove_stray_temp(self.round_dir / MASKS_DIR, recursive=True)
        with ExitStack() as stack:
            self._blocked = stack.enter_context(_npz_stream(self.round_dir / BLOCKED_FILE))
            self._labelled = stack.enter_context(_npz_stream(self.round_dir / LABELLED_FILE))
            self._stack = stack.pop_all()
        return self

    def add(
        self, image_id: str, *, mask: np.ndarray | None, blocked: np.ndarray, labelled: np.ndarray
    ) -> None:
        """One image's files.

        Args:
            image_id: the image's id (``/`` allowed).
            mask: uint8 ``[H, W]`` label mask, or ``None`` while a person has not answered
                (:mod:`halo.acquisition.answers` writes it then).
            blocked: bool ``[H, W]``, pixels no later round may pick as centres.
            labelled: bool ``[H, W]``, pixels shown to the annotator so far.
        """
        if mask is not None:
            write_png(mask_path(self.round_dir, image_id), mask)
        self._blocked(image_id, blocked)
        self._labelled(image_id, labelled)

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(*exc)


def iter_masks(round_dir: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every label mask of a round folder, uint8 ``[H, W]``, in sorted path order (none if the
    folder has no masks)."""
    masks = Path(round_dir) / MASKS_DIR
    for path in sorted(masks.rglob("*.png")) if masks.is_dir() else ():
        yield read_mask(path)


class MaskedTarget:
    """A target dataset whose labels are a round's label masks (255 = not labelled).

    A map-style dataset (``len``, ``[i]``) for ``torch.utils.data.DataLoader``: item ``i`` is the
    wrapped dataset's item with ``label`` replaced by the mask of its id, as a tensor of the
    wrapped label's dtype (int64).

    Args:
        dataset: the target pool; items ``{"image", "label" int64 [H, W], "id"}``, and ``ids``.
        round_dir: a round folder holding ``masks/``.
        resize: masks of another size than the pool's images (acquired at the label files'
            size, ``active.label_size``) are resized to them by nearest neighbour.

    Raises:
        FileNotFoundError: a target image has no mask (named).
        ValueError: a mask is unreadable or of another size than the pool's images (named).
    """

    def __init__(self, dataset: Any, round_dir: str | os.PathLike, resize: bool = False) -> None:
        self.dataset, self.round_dir, self.resize = dataset, Path(round_dir), resize
        missing = [i for i in dataset.ids if not mask_path(self.round_dir, i).is_file()]
        if missing:
            raise FileNotFoundError(
                f"acquired masks: {len(missing)} target images have no mask, e.g. "
                f"{mask_path(self.round_dir, missing[0])}"
            )
        size = getattr(dataset, "size", None)  # the pool's (H, W) when it resizes
        for image_id in dataset.ids:  # decode every mask once, before any training step
            path = mask_path(self.round_dir, image_id)
            mask = read_mask(path)
            if size is not None and tuple(mask.shape) != tuple(size) and not resize:
                raise ValueError(
                    f"mask {path} is {tuple(mask.shape)}, the pool's images are {size}"
                )

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        path = mask_path(self.round_dir, item["id"])
        mask = read_mask(path)
        shape = tuple(item["label"].shape)
        if tuple(mask.shape) != shape and self.resize:
            from PIL import Image

            mask = np.asarray(Image.fromarray(mask).resize(shape[::-1], Image.Resampling.NEAREST))
        if tuple(mask.shape) != shape:
            raise ValueError(
                f"mask {path} is {tuple(mask.shape)}, the image is {tuple(item['label'].shape)}"
            )
        item["label"] = item["label"].new_tensor(mask)
        return item
