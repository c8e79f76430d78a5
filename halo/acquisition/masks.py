"""Rounds, budget and label-mask files: one acquisition round from a model to files on disk.

Budget. Per image per round ``n = ceil(H·W · round_budget / (2a+1)²)`` regions
(:func:`regions_per_image`); the run's total budget is split evenly over its rounds by the caller.

Round folder (DESIGN §3), written by :func:`acquire`::

    <round_dir>/masks/<image-id>.png   uint8 [H, W]: the ground-truth trainId where labelled so
                                       far (CUMULATIVE over rounds), 255 elsewhere (and where the
                                       ground truth itself is 255); ids with "/" make subfolders
    <round_dir>/blocked.npz            per image (key = image id): bool [H, W], pixels no later
                                       round may pick as a region centre
    <round_dir>/labelled.npz           per image (key = image id): bool [H, W], pixels shown to the
                                       annotator so far (cumulative; unlike the PNG it keeps the
                                       labelled pixels whose ground truth is 255, so the budget
                                       counts them exactly)
    <round_dir>/budget.json            written LAST: its presence marks a complete round

Every file is written atomically (temporary file + rename, :mod:`halo.io`): a job killed
mid-acquire leaves no half-written file, and no ``budget.json`` (a rerun first removes a stale
one). The two ``.npz`` files are streamed image by image into their temporary files, so the pool's
maps are never all in memory; their zip entries carry a fixed timestamp, so the same inputs give
the same bytes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from halo.io import atomic_open, remove_stray_temp, write_json, write_png

if TYPE_CHECKING:
    from halo.acquisition.strategies import Strategy

__all__ = [
    "BLOCKED_FILE",
    "BUDGET_FILE",
    "LABELLED_FILE",
    "MASKS_DIR",
    "UNLABELLED",
    "BudgetReport",
    "RoundState",
    "acquire",
    "label_mask",
    "mask_path",
    "read_budget",
    "read_mask",
    "regions_per_image",
    "round_complete",
]

log = logging.getLogger(__name__)

UNLABELLED = 255
MASKS_DIR = "masks"
BLOCKED_FILE = "blocked.npz"
LABELLED_FILE = "labelled.npz"
BUDGET_FILE = "budget.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed zip entry time: identical inputs, identical bytes


def regions_per_image(height: int, width: int, round_budget: float, active_radius: int = 1) -> int:
    """Regions to pick in one image in one round: ``ceil(H·W · round_budget / (2a+1)²)``.

    The budget is read as the nearest fraction with denominator ``<= 10⁹`` (so ``0.022 / 5`` and
    ``0.0044`` give the same count, and ``900 · 0.01 / 9`` is exactly 1, not 2 from rounding).

    Args:
        height: image height ``H`` (pixels).
        width: image width ``W`` (pixels).
        round_budget: fraction of the image's pixels to label this round, in ``[0, 1]``.
        active_radius: ``a``: one region labels a ``(2a+1)²`` window.

    Returns:
        The number of regions ``n >= 0``.
    """
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"regions_per_image: {name} must be an int >= 1, got {value!r}")
    if isinstance(active_radius, bool) or not isinstance(active_radius, int) or active_radius < 0:
        raise ValueError(
            f"regions_per_image: active_radius must be an int >= 0, got {active_radius!r}"
        )
    _check_budget(round_budget, "regions_per_image")
    budget = Fraction(float(round_budget)).limit_denominator(10**9)
    return math.ceil(height * width * budget / (2 * active_radius + 1) ** 2)


def _check_budget(round_budget: Any, where: str) -> None:
    if (
        isinstance(round_budget, bool)
        or not isinstance(round_budget, (int, float))
        or not 0.0 <= float(round_budget) <= 1.0
    ):
        raise ValueError(
            f"{where}: round_budget must be a fraction in [0, 1], got {round_budget!r}"
        )


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
    """Read an acquired mask PNG as uint8 ``[H, W]`` (255 = not labelled)."""
    from PIL import Image

    with Image.open(path) as img:
        if img.mode not in ("L", "P"):
            raise ValueError(
                f"mask {path}: expected a single-channel 8-bit PNG, got mode {img.mode}"
            )
        return np.asarray(img, dtype=np.uint8).copy()


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
    return json.loads(path.read_text(encoding="utf-8"))


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
            self._files[name] = np.load(path, allow_pickle=False)

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
        regions_requested: ``sum(n)`` over images (more than ``regions`` when images ran out).
        pixels_labelled_round: pixels newly shown to the annotator this round.
        pixels_labelled_cumulative: pixels shown so far, all rounds.
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
    regions_requested: int
    pixels_labelled_round: int
    pixels_labelled_cumulative: int
    history: tuple[dict, ...] = field(default=())

    @property
    def fraction_round(self) -> float:
        """Pixels labelled this round / pixels total."""
        return self.pixels_labelled_round / max(self.pixels_total, 1)

    @property
    def fraction_cumulative(self) -> float:
        """Pixels labelled so far / pixels total."""
        return self.pixels_labelled_cumulative / max(self.pixels_total, 1)

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
            "regions_requested": self.regions_requested,
            "pixels_labelled_round": self.pixels_labelled_round,
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


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _check_acquire_args(
    out_dir: Path, prev_dir: Path | None, round_budget: float, batch_size: int
) -> None:
    _check_budget(round_budget, "acquire")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"acquire: batch_size must be an int >= 1, got {batch_size!r}")
    if prev_dir is not None:
        if out_dir.resolve() == prev_dir.resolve():
            raise ValueError(f"acquire: out_dir and prev_dir are the same folder ({out_dir})")
        if not round_complete(prev_dir):
            raise FileNotFoundError(
                f"acquire: previous round {prev_dir} is incomplete (no {BUDGET_FILE})"
            )


def acquire(
    model: nn.Module,
    dataset: Dataset,
    strategy: Strategy,
    *,
    out_dir: str | os.PathLike,
    prev_dir: str | os.PathLike | None = None,
    round_budget: float,
    batch_size: int = 1,
    num_workers: int = 0,
    active_radius: int | None = None,
    mask_radius: int | None = None,
    progress: bool = True,
) -> BudgetReport:
    """Run one acquisition round over the target pool and write the round folder.

    The model scores the pool batch by batch (``eval`` mode and ``torch.inference_mode``; the
    model's mode is restored afterwards); each batch is scored, its regions selected and its files
    written before the next batch runs, so only one batch of logits is ever in memory. The
    simulated annotator reveals the ground truth of the selected windows.

    Args:
        model: a segmenter returning ``SegmenterOutput(logits [B, C, H, W], embeddings,
            radius [B, h, w])``; it runs on the device its parameters are on.
        dataset: target pool of items ``{"image": float [3, H, W], "label": int64 [H, W],
            "id": str}`` (ids unique; ``/`` allowed).
        strategy: the acquisition strategy.
        out_dir: the new round folder.
        prev_dir: the previous round folder (complete), or ``None`` for the first round.
        round_budget: fraction of each image's pixels to label this round.
        batch_size: images per forward pass.
        num_workers: DataLoader workers.
        active_radius: override the strategy's ``a`` (also its score window ``k``).
        mask_radius: override the strategy's ``m``.
        progress: show a tqdm progress bar.

    Returns:
        The :class:`BudgetReport` also written to ``budget.json``.

    Raises:
        ValueError: bad arguments, duplicate ids, label/logit size mismatch, an image missing
            from the previous round.
        FileNotFoundError: ``prev_dir`` is not a complete round.
    """
    out_dir = Path(out_dir)
    prev_dir = None if prev_dir is None else Path(prev_dir)
    _check_acquire_args(out_dir, prev_dir, round_budget, batch_size)
    if active_radius is not None or mask_radius is not None:
        strategy = strategy.with_radii(active_radius=active_radius, mask_radius=mask_radius)
    a, m = strategy.active_radius, strategy.mask_radius
    history: list[dict] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / BUDGET_FILE).unlink(missing_ok=True)  # the marker of a complete round goes first
    # temporaries of a killed earlier attempt (SIGKILL mid-write): this round's files and masks
    remove_stray_temp(
        out_dir, (BUDGET_FILE, BLOCKED_FILE, LABELLED_FILE, "provenance_acquire.json")
    )
    remove_stray_temp(out_dir / MASKS_DIR, recursive=True)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    device = _model_device(model)
    seen: set[str] = set()
    totals = {"pixels": 0, "regions": 0, "requested": 0, "new": 0, "cumulative": 0}
    was_training = model.training
    with ExitStack() as stack:
        prev = stack.enter_context(RoundState(prev_dir)) if prev_dir is not None else None
        if prev is not None:
            history = list(prev.budget.get("history", []))
        add_blocked = stack.enter_context(_npz_stream(out_dir / BLOCKED_FILE))
        add_labelled = stack.enter_context(_npz_stream(out_dir / LABELLED_FILE))
        model.eval()
        stack.callback(model.train, was_training)
        stack.enter_context(torch.inference_mode())
        bar = tqdm(loader, desc=f"acquire {strategy.name}", unit="batch", disable=not progress)
        for batch in bar:
            ids = list(batch["id"])
            for image_id in ids:
                mask_path(out_dir, image_id)  # validates the id
                if image_id in seen:
                    raise ValueError(f"acquire: image id {image_id!r} appears twice in the pool")
                seen.add(image_id)
            labels = batch["label"]
            out = model(batch["image"].to(device))
            logits = out.logits
            if tuple(logits.shape[-2:]) != tuple(labels.shape[-2:]):
                raise ValueError(
                    f"acquire: logits are {list(logits.shape[-2:])} but labels are "
                    f"{list(labels.shape[-2:])} (images {ids})"
                )
            shape = tuple(labels.shape[-2:])
            prev_blocked = prev_labelled = None
            if prev is not None:
                maps = [prev.maps(image_id, shape) for image_id in ids]
                prev_blocked = np.stack([mb for mb, _ in maps])
                prev_labelled = np.stack([ml for _, ml in maps])
            sel = strategy.select(
                logits,
                round_budget=round_budget,
                radius=getattr(out, "radius", None) if strategy.needs_radius else None,
                blocked=None if prev_blocked is None else torch.from_numpy(prev_blocked).to(device),
            )
            labelled = sel.labelled.cpu().numpy()
            blocked = sel.blocked.cpu().numpy()
            new = labelled if prev_labelled is None else labelled & ~prev_labelled
            if prev_labelled is not None:
                labelled = labelled | prev_labelled
            labels_np = labels.cpu().numpy()
            for j, image_id in enumerate(ids):
                write_png(mask_path(out_dir, image_id), label_mask(labelled[j], labels_np[j]))
                add_blocked(image_id, blocked[j])
                add_labelled(image_id, labelled[j])
            totals["pixels"] += int(labels_np.size)
            totals["regions"] += sum(int(c.shape[0]) for c in sel.centres)
            totals["requested"] += len(ids) * regions_per_image(*shape, round_budget, a)
            totals["new"] += int(new.sum())
            totals["cumulative"] += int(labelled.sum())
    if prev is not None:
        missing = prev.budget.get("images", len(seen)) - len(seen)
        if missing:
            log.warning("acquire: the pool has %d images fewer than %s", missing, prev_dir)
    pixels = totals["pixels"]
    history.append(
        {
            "round": len(history) + 1,
            "pixels_labelled": totals["new"],
            "fraction": totals["new"] / max(pixels, 1),
            "pixels_labelled_cumulative": totals["cumulative"],
            "fraction_cumulative": totals["cumulative"] / max(pixels, 1),
        }
    )
    report = BudgetReport(
        strategy=strategy.name,
        round=len(history),
        round_budget=float(round_budget),
        active_radius=a,
        mask_radius=m,
        images=len(seen),
        pixels_total=pixels,
        regions=totals["regions"],
        regions_requested=totals["requested"],
        pixels_labelled_round=totals["new"],
        pixels_labelled_cumulative=totals["cumulative"],
        history=tuple(history),
    )
    write_json(out_dir / BUDGET_FILE, report.to_dict())  # last: marks the round complete
    log.info("acquire %s into %s: %s", strategy.name, out_dir, report)
    return report
