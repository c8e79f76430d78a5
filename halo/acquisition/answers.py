"""The answers in: an annotator's labels of a round's queries become the round's masks.

Both annotators end a round here (docs/design.md, "Human in the loop"): the simulated oracle's
answer is the ground truth inside the queried pixels, a person's comes from the labelling page,
a folder of class-id PNGs or a CVAT zip (:func:`read_answers`). Either way the round's mask of an
image is :func:`merge_answer` of the previous round's mask and the answer, so a person who labels
exactly the ground truth gets the simulated oracle's masks byte for byte.

Files: ``answers/<id>.png`` and ``answers.json`` (layout in :mod:`halo.acquisition.queries`).

:func:`import_answers` checks every answer before it writes anything (a label outside the queried
pixels, an unknown class, a size mismatch, a missing or unknown image: one line naming the file),
then writes ``answers/``, and :func:`complete_round` writes the masks and ``budget.json`` last.
``complete_round`` alone re-completes a round from its ``answers/`` (what the workflow's
``labels`` job runs). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from halo.acquisition.queries import (
    ANSWERS_DIR,
    ANSWERS_REPORT,
    PENDING_FILE,
    LabelsError,
    LazyAnswers,
    answer_path,
    read_manifest,
    read_pending,
    read_query,
)
from halo.acquisition.rounds import (
    BUDGET_FILE,
    UNLABELLED,
    BudgetReport,
    mask_path,
    read_mask,
    write_budget,
)
from halo.io import read_json, write_json, write_png

__all__ = [
    "ANSWERS_DIR",
    "ANSWERS_REPORT",
    "LabelsError",
    "answer_path",
    "check_answer",
    "complete_round",
    "import_answers",
    "merge_answer",
    "read_answers",
    "waiting_message",
]


def merge_answer(prev_mask: np.ndarray | None, query: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """A round's mask: the answer inside the queried pixels, the previous round's mask elsewhere.

    Args:
        prev_mask: uint8 ``[H, W]`` mask of the previous round (255 = not labelled), or ``None``
            in round 1 (all 255).
        query: bool ``[H, W]``, this round's queried pixels.
        answer: uint8 ``[H, W]``, class ids inside the query (255 = no class given).

    Returns:
        uint8 ``[H, W]``.
    """
    base = np.full(query.shape, UNLABELLED, np.uint8) if prev_mask is None else prev_mask
    return np.where(query, answer, base).astype(np.uint8)


def check_answer(answer: np.ndarray, query: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """Validate one image's answer against its query; return it as uint8 ``[H, W]``.

    Raises:
        LabelsError: another size, a class id outside ``[0, num_classes)`` (and not 255), or a
            class given outside the queried pixels; named by ``where``.
    """
    answer = np.asarray(answer)
    if answer.shape != query.shape:
        raise LabelsError(
            f"{where}: labels are {list(answer.shape)}, the queried image is {list(query.shape)}"
        )
    unknown = (answer >= num_classes) & (answer != UNLABELLED)
    if unknown.any():
        value = int(answer[unknown][0])
        raise LabelsError(
            f"{where}: unknown class id {value} (expected 0..{num_classes - 1}, or 255 for "
            "not labelled)"
        )
    outside = (answer != UNLABELLED) & ~query
    if outside.any():
        row, col = (int(v[0]) for v in np.nonzero(outside))
        raise LabelsError(
            f"{where}: {int(outside.sum())} labelled pixels lie outside the queried regions "
            f"(first at row {row}, col {col}); only queried pixels may be labelled"
        )
    return answer.astype(np.uint8)


def read_answers(
    round_dir: str | os.PathLike, source: str | os.PathLike, *, ids: str = "train"
) -> LazyAnswers:
    """The answers of a labels source, one uint8 ``[H, W]`` array per queried image (unchecked;
    read image by image when looked up).

    Args:
        round_dir: the round whose queries were answered.
        source: a folder of single-channel class-id PNGs named ``<image id>.png`` (subfolders
            for ids with ``/``), or a CVAT "Segmentation mask 1.1" zip.
        ids: ``train`` (the run's train ids, 255 = not labelled) or ``label`` (Cityscapes
            labelIds, mapped to the run's train ids) for a folder.

    Raises:
        LabelsError: an unreadable source or file, an image of the queries without labels, a
            labels file for an image that was not queried (each named).
    """
    from halo.acquisition import cvat

    source = Path(source)
    entries = read_manifest(round_dir)
    if source.is_file() and source.suffix == ".zip":
        return cvat.read_zip(source, entries)
    if not source.is_dir():
        raise LabelsError(
            f"labels {source}: expected a folder of class-id PNGs or a CVAT 'Segmentation mask "
            "1.1' .zip"
        )
    if ids not in ("train", "label"):
        raise LabelsError(f"--ids: expected train or label, got {ids!r}")
    lut = _label_id_lut(entries) if ids == "label" else None
    wanted = {e["id"] for e in entries}
    extra = sorted(
        p.relative_to(source).with_suffix("").as_posix()
        for p in source.rglob("*.png")
        if p.relative_to(source).with_suffix("").as_posix() not in wanted
    )
    if extra:
        raise LabelsError(
            f"labels {source / (extra[0] + '.png')}: no queried image has the id {extra[0]!r} "
            f"({len(extra)} such files)"
        )
    root = source.resolve()
    for entry in entries:  # every file present before any is decoded
        path = source / mask_path("", entry["id"]).relative_to("masks")
        if not path.is_file():
            raise LabelsError(f"labels {path}: missing (image {entry['id']!r} was queried)")
        if not path.resolve().is_relative_to(root):  # a link out of the folder is not read
            raise LabelsError(f"labels {path}: leads out of {source} (a symbolic link)")

    def load(image_id: str) -> np.ndarray:
        path = source / mask_path("", image_id).relative_to("masks")
        try:
            raw = read_mask(path)
        except (ValueError, FileNotFoundError) as err:
            raise LabelsError(str(err)) from None
        if lut is not None:
            known = (raw < len(lut) - 1) | (raw == UNLABELLED)
            if not known.all():
                raise LabelsError(
                    f"labels {path}: unknown Cityscapes labelId {int(raw[~known][0])} (expected "
                    "0..33, or 255 for not labelled)"
                )
            raw = lut[np.minimum(raw, len(lut) - 1)]  # 255 -> the last slot: not labelled
        return raw

    return LazyAnswers([e["id"] for e in entries], load)


def _label_id_lut(entries: list[dict]) -> np.ndarray:
    """Cityscapes labelId → the queries' train id, by class name (uint8; 255 unknown)."""
    from halo.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_LABEL_IDS

    to19 = CITYSCAPES_LABEL_IDS.train_ids("cityscapes19")[:34]
    names = {c["name"]: c["id"] for c in entries[0]["classes"]} if entries else {}
    lut = np.full(35, UNLABELLED, np.uint8)  # one past the last labelId: the "unknown" slot
    for label_id, train19 in enumerate(to19.tolist()):
        if train19 != UNLABELLED and CITYSCAPES_CLASSES[train19] in names:
            lut[label_id] = names[CITYSCAPES_CLASSES[train19]]
    return lut


def import_answers(
    round_dir: str | os.PathLike, answers: Mapping[str, np.ndarray], *, origin: str
) -> BudgetReport:
    """Check every answer, write them to ``answers/`` and complete the round.

    Every answer is read and checked once before the first file is written, and read again to
    write it (one image in memory at a time with a :class:`LazyAnswers`).

    Args:
        round_dir: a round with complete queries.
        answers: image id → uint8 ``[H, W]`` class ids (255 = not labelled), every queried image
            (a dict, or a :class:`LazyAnswers` of :func:`read_answers`).
        origin: where the answers came from (recorded in ``answers.json``).

    Returns:
        The round's budget report (``budget.json``).

    Raises:
        LabelsError: see :func:`check_answer`; an image missing or not queried. Nothing is
            written then.
    """
    round_dir = Path(round_dir)
    entries, _budget, prev = _round_plan(round_dir)
    ids = {e["id"] for e in entries}
    unknown = sorted(set(answers) - ids)
    if unknown:
        raise LabelsError(f"labels for {unknown[0]!r}: that image was not queried in {round_dir}")
    missing = [e["id"] for e in entries if e["id"] not in answers]
    if missing:
        raise LabelsError(f"labels: image {missing[0]!r} of {round_dir} has no labels")

    def checked(entry: dict) -> np.ndarray:
        where = f"labels for {entry['id']!r} ({origin})"
        query = read_query(round_dir, entry)
        answer = check_answer(answers[entry["id"]], query, len(entry["classes"]), where)
        _prev_mask(prev, entry["id"], query.shape)  # the previous round's mask is usable too
        return answer

    for entry in entries:  # every answer checked (one at a time) before anything is written
        checked(entry)
    (round_dir / BUDGET_FILE).unlink(missing_ok=True)  # the round is incomplete from here on
    # the answers are written as a set: into a folder aside, swapped in whole (a full disk or a
    # kill leaves the old answers or none, never some of the new ones; the temp folder goes at
    # the next start, halo.io.remove_stray_temp_of)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{ANSWERS_DIR}-", dir=round_dir))
    try:
        for entry in entries:
            rel = answer_path(round_dir, entry["id"]).relative_to(round_dir / ANSWERS_DIR)
            write_png(staging / rel, checked(entry))
        shutil.rmtree(round_dir / ANSWERS_DIR, ignore_errors=True)  # no mix of old and new
        os.replace(staging, round_dir / ANSWERS_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return complete_round(round_dir, origin=origin)


def _round_plan(round_dir: Path) -> tuple[list[dict], BudgetReport, Path | None]:
    """A waiting round's queries, the budget report it will publish and the previous round's
    folder (``pending.json`` stores it relative to the round folder), all checked."""
    entries = read_manifest(round_dir)
    pending = read_pending(round_dir)
    try:
        budget = BudgetReport.from_dict(pending["budget"])
    except (TypeError, ValueError) as err:
        raise LabelsError(f"{round_dir / PENDING_FILE}: not a budget report ({err})") from None
    prev = pending.get("prev")
    if prev is not None and not isinstance(prev, str):
        raise LabelsError(f"{round_dir / PENDING_FILE}: 'prev' must be a folder name")
    return entries, budget, None if prev is None else round_dir / prev


def _prev_mask(prev: Path | None, image_id: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The previous round's mask of an image (``None`` in round 1), of the query's size."""
    if prev is None:
        return None
    path = mask_path(prev, image_id)
    try:
        mask = read_mask(path)
    except (ValueError, FileNotFoundError) as err:
        raise LabelsError(f"previous round: {err}") from None
    if mask.shape != tuple(shape):
        raise LabelsError(f"mask {path} is {list(mask.shape)}, the queried image is {list(shape)}")
    return mask


def complete_round(round_dir: str | os.PathLike, *, origin: str | None = None) -> BudgetReport:
    """Write a human round's masks from its ``answers/`` and then ``budget.json``.

    Raises:
        FileNotFoundError: the round has no queries, or no answers yet (:func:`waiting_message`).
        LabelsError: an answer file fails :func:`check_answer`; the pending report or a
            previous mask is unusable (checked before any mask is written).
    """
    round_dir = Path(round_dir)
    entries, budget, prev = _round_plan(round_dir)
    missing = [e["id"] for e in entries if not answer_path(round_dir, e["id"]).is_file()]
    if missing:
        raise FileNotFoundError(waiting_message(round_dir, len(missing), len(entries)))

    def merged(entry: dict) -> tuple[np.ndarray, np.ndarray]:
        """(query, the round's mask) of one image, its answer and previous mask checked."""
        query = read_query(round_dir, entry)
        path = answer_path(round_dir, entry["id"])
        try:
            raw = read_mask(path)
        except ValueError as err:
            raise LabelsError(str(err)) from None
        answer = check_answer(raw, query, len(entry["classes"]), str(path))
        return query, merge_answer(_prev_mask(prev, entry["id"], query.shape), query, answer)

    counts = {"queried": 0, "unanswered": 0}
    for entry in entries:  # every check before the first mask is written (one image at a time)
        query, mask = merged(entry)
        counts["queried"] += int(query.sum())
        counts["unanswered"] += int((query & (mask == UNLABELLED)).sum())
    report = {
        "images": len(entries),
        "pixels_queried": counts["queried"],
        "pixels_answered": counts["queried"] - counts["unanswered"],
        "pixels_unanswered": counts["unanswered"],
    }
    if origin is None and (round_dir / ANSWERS_REPORT).is_file():  # a re-completion keeps it
        before = read_json(round_dir / ANSWERS_REPORT, "answers report")
        origin = before.get("origin") if isinstance(before, dict) else None
    if origin is not None:
        report["origin"] = origin
    (round_dir / BUDGET_FILE).unlink(missing_ok=True)
    for entry in entries:
        write_png(mask_path(round_dir, entry["id"]), merged(entry)[1])
    write_json(round_dir / ANSWERS_REPORT, report)
    budget = dataclasses.replace(budget, pixels_answered_round=report["pixels_answered"])
    write_budget(round_dir, budget)  # last: the round is complete
    return budget


def waiting_message(round_dir: str | os.PathLike, missing: int, total: int) -> str:
    """The one line that says a round waits for labels, and what to run next."""
    return (
        f"round {round_dir} waits for labels ({missing} of {total} queried images have none): "
        f"label them in the browser with `halo annotate {round_dir}`, or import labels with "
        f"`halo import-labels {round_dir} FOLDER_OR_CVAT_ZIP`; then run the same command again"
    )
