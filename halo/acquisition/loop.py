"""One acquisition round, from a model to a complete round folder: score, select, label, write.

The round is a short composition (docs/design.md, "One round"): the model scores the target pool
batch by batch, the strategy picks this round's regions (:meth:`Strategy.select`, the one
selection routine), the annotator labels them, and :class:`~halo.acquisition.rounds.RoundWriter`
writes the masks and maps image by image; ``budget.json`` comes last. The annotator
(:mod:`halo.acquisition.annotators`) answers each image's query (the pixels shown for the first
time) through :func:`~halo.acquisition.answers.merge_answer`: the simulated oracle at once,
with the ground truth of every pixel shown so far (the same answers as in earlier rounds, so no
previous mask is read); a person later, so the round writes its queries instead of masks and
``budget.json`` (:func:`~halo.acquisition.answers.import_answers` merges the answers into the
previous round's masks).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from halo.acquisition.annotators import Human, Simulated
from halo.acquisition.answers import merge_answer
from halo.acquisition.budget import PoolBudget
from halo.acquisition.rounds import (
    BUDGET_FILE,
    UNLABELLED,
    BudgetReport,
    RoundState,
    RoundWriter,
    mask_path,
    round_complete,
    write_budget,
)
from halo.acquisition.selection import check_budget
from halo.acquisition.strategies import Strategy
from halo.models.hyperbolic import radius_of_norm
from halo.models.segmenter import module_device
from halo.progress import progress as progress_bar

__all__ = ["acquire"]

log = logging.getLogger(__name__)


def _check_acquire_args(
    out_dir: Path, prev_dir: Path | None, round_budget: float, batch_size: int
) -> None:
    check_budget(round_budget, "acquire")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"acquire: batch_size must be an int >= 1, got {batch_size!r}")
    if prev_dir is not None:
        if out_dir.resolve() == prev_dir.resolve():
            raise ValueError(f"acquire: out_dir and prev_dir are the same folder ({out_dir})")
        if not round_complete(prev_dir):
            raise FileNotFoundError(
                f"acquire: previous round {prev_dir} is incomplete (no {BUDGET_FILE})"
            )


def _radius(model, out, radius_model, images: torch.Tensor, size=None) -> torch.Tensor | None:
    """The radius map the strategy reads: the scored ``model``'s (``out``), or ``radius_model``'s
    on the same images, on the scored model's device: ``[B, h, w]``. With ``size`` (the pool
    scored at the label size), the radius of the ball points upsampled to ``size`` (bilinear,
    ``align_corners=True``) as the official code computes it (the points, not the radius map,
    are upsampled): ``[B, *size]``."""
    net, net_out = model, out
    if radius_model is not None:
        net, net_out = radius_model, radius_model(images.to(module_device(radius_model)))
    if getattr(net_out, "radius", None) is None:
        return None
    if size is None or tuple(net_out.radius.shape[-2:]) == tuple(size):
        return net_out.radius.to(out.logits.device)
    return upsampled_radius(net_out.embeddings, size, c=net.head.curvature).to(out.logits.device)


def upsampled_radius(points: torch.Tensor, size, *, c: float, chunk_bytes: int = 1 << 28):
    """The radius of ``points`` [B, D, h, w] upsampled to ``size`` (bilinear, ``align_corners=
    True``): ``[B, *size]``. Upsampling is per channel, so the squared norm is summed over
    channel chunks of at most ``chunk_bytes`` of upsampled points: a 768-d ball at 1024×2048
    (SegFormer's official head) never holds the 6.4 GB of one image's upsampled points at once.
    """
    b, d = points.shape[:2]
    per_channel = b * size[0] * size[1] * points.element_size()
    step = max(1, min(d, chunk_bytes // max(per_channel, 1)))
    sumsq = None
    for c0 in range(0, d, step):  # channel chunks: each a few upsampled maps
        up = F.interpolate(
            points[:, c0 : c0 + step], size=size, mode="bilinear", align_corners=True
        )
        part = up.square().sum(dim=1)
        sumsq = part if sumsq is None else sumsq + part
    return radius_of_norm(sumsq.sqrt(), c=c)


def _check_ids(ids: list[str], out_dir: Path, seen: set[str]) -> None:
    """Each id makes a valid mask path and appears once in the pool (``seen`` grows)."""
    for image_id in ids:
        mask_path(out_dir, image_id)  # validates the id
        if image_id in seen:
            raise ValueError(f"acquire: image id {image_id!r} appears twice in the pool")
        seen.add(image_id)


def _prev_maps(prev: RoundState | None, ids: list[str], shape: tuple) -> tuple:
    """``(blocked, labelled)``: bool ``[B, H, W]`` of the previous round (None in round 1)."""
    if prev is None:
        return None, None
    maps = [prev.maps(image_id, shape) for image_id in ids]
    return np.stack([mb for mb, _ in maps]), np.stack([ml for _, ml in maps])


def _budget_report(
    strategy: Strategy,
    round_budget: float,
    images: int,
    totals: dict,
    history: list[dict],
    target: int,
    answered: bool,
) -> BudgetReport:
    """The round's :class:`BudgetReport` from its counts (``history`` gains this round);
    ``answered``: the oracle's answers are in (a person's come later)."""
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
    return BudgetReport(
        strategy=strategy.name,
        round=len(history),
        round_budget=round_budget,
        active_radius=strategy.active_radius,
        mask_radius=strategy.mask_radius,
        images=images,
        pixels_total=pixels,
        regions=totals["regions"],
        pixels_target_round=target - totals["before"],
        pixels_labelled_round=totals["new"],
        # the pixels given a class (the oracle's ground truth is void on some)
        pixels_answered_round=totals["answered"] if answered else None,
        pixels_labelled_cumulative=totals["cumulative"],
        history=tuple(history),
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
    progress: bool = True,
    on_complete: Callable[[BudgetReport], None] | None = None,
    annotator: Simulated | Human | None = None,
    radius_model: nn.Module | None = None,
    upsample: bool = False,
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
        strategy: the acquisition strategy, built with the run's radii.
        out_dir: the new round folder.
        prev_dir: the previous round folder (complete), or ``None`` for the first round.
        round_budget: fraction of the pool's pixels to label per round: after round ``r``
            (``r - 1`` rounds in ``prev_dir``'s history) the pool holds at most
            ``floor(r · round_budget · pixels)`` labelled pixels, and less than one region fewer
            (:mod:`halo.acquisition.budget`).
        batch_size: images per forward pass.
        num_workers: DataLoader workers.
        progress: show a tqdm progress bar.
        on_complete: called with the report once every mask and map is written, right before
            ``budget.json`` (e.g. to write the job's provenance: nothing of a failed round).
        annotator: :class:`~halo.acquisition.annotators.Simulated` (the default) or
            :class:`~halo.acquisition.annotators.Human`, whose round ends with its queries
            (``queries/manifest.jsonl``) and waits for the answers: no masks, no ``budget.json``.
        radius_model: a segmenter whose radius map the strategy reads in place of ``model``'s
            (``halo-src``: the run's source-only model; it runs on its own device, in eval mode).
        upsample: the labels are at their files' size (``active.label_size``): logits of
            another size are upsampled to it (bilinear, ``align_corners=True``, as the official
            code) and the pool is scored, budgeted and masked at that size.

    Returns:
        The :class:`~halo.acquisition.rounds.BudgetReport` written to ``budget.json`` (by a
        human round once its answers are imported).

    Raises:
        ValueError: bad arguments, duplicate ids, label/logit size mismatch, an image missing
            from the previous round.
        FileNotFoundError: ``prev_dir`` is not a complete round.
    """
    out_dir = Path(out_dir)
    prev_dir = None if prev_dir is None else Path(prev_dir)
    _check_acquire_args(out_dir, prev_dir, round_budget, batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    annotator = Simulated() if annotator is None else annotator
    with ExitStack() as stack:
        nets = (model, radius_model)
        state = _open_round(stack, out_dir, prev_dir, annotator, nets, dataset)
        # the labelled fraction allowed after this round: round_budget x round, over the pool
        account = PoolBudget(
            Fraction(float(round_budget)).limit_denominator(10**9) * (len(state.history) + 1)
        )
        for batch in progress_bar(loader, desc=f"acquire {strategy.name}", enabled=progress):
            ids = list(batch["id"])
            _check_ids(ids, out_dir, state.seen)
            prev_maps = _prev_maps(state.prev, ids, tuple(batch["label"].shape[-2:]))
            sel = _select(model, radius_model, strategy, batch, account, prev_maps, upsample)
            _write_batch(batch, sel, prev_maps[1], state, strategy.active_radius)
    return _finish(state, strategy, float(round_budget), account.target, prev_dir, on_complete)


@dataclass
class _RoundState:
    """What a round holds open while it walks the pool, and its running counts."""

    writer: RoundWriter
    queries: Any  # a person's QueryWriter, or None (the oracle answers now)
    prev: RoundState | None
    annotator: Any
    history: list[dict]
    sources: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    totals: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("pixels", "regions", "new", "cumulative", "before", "answered"), 0
        )
    )


def _open_round(stack: ExitStack, out_dir, prev_dir, annotator, nets, dataset) -> _RoundState:
    """Enter what a round holds open on ``stack``: the round writer, a person's queries, the
    previous round's state, eval mode of ``nets`` (restored after) and inference mode."""
    writer = stack.enter_context(RoundWriter(out_dir))
    queries = stack.enter_context(annotator.queries) if annotator.deferred else None
    prev = stack.enter_context(RoundState(prev_dir)) if prev_dir is not None else None
    for net in nets:
        if net is not None:
            stack.callback(net.train, net.training)
            net.eval()
    stack.enter_context(torch.inference_mode())
    history = [] if prev is None else list(prev.budget.get("history", []))
    sources = {s.id: str(s.image) for s in getattr(dataset, "samples", ())}
    return _RoundState(writer, queries, prev, annotator, history, sources)


def _finish(state: _RoundState, strategy, round_budget, target, prev_dir, on_complete):
    """Close the round: its report, ``on_complete``, then the queries (a person answers: the
    round waits) or ``budget.json`` (last: marks the round complete)."""
    seen, prev, queries, out_dir = state.seen, state.prev, state.queries, state.writer.round_dir
    if prev is not None and (missing := prev.budget.get("images", len(seen)) - len(seen)):
        log.warning("acquire: the pool has %d images fewer than %s", missing, prev_dir)
    answered = queries is None
    report = _budget_report(
        strategy, round_budget, len(seen), state.totals, state.history, target, answered
    )
    if on_complete is not None:
        on_complete(report)
    if queries is not None:  # a person answers: the queries are complete, the round waits
        queries.finish(report.to_dict(), prev_dir)
        log.debug("acquire %s into %s: queries written, %s", report.strategy, out_dir, report)
        return report
    write_budget(out_dir, report)  # last: marks the round complete
    log.debug("acquire %s into %s: %s", report.strategy, out_dir, report)
    return report


def _select(model, radius_model, strategy, batch, account, prev_maps, upsample):
    """Score one batch of the pool and select its regions (a :class:`Selection`)."""
    device = module_device(model)
    labels, ids = batch["label"], list(batch["id"])
    out = model(batch["image"].to(device))
    logits = out.logits
    shape = tuple(labels.shape[-2:])
    if upsample and tuple(logits.shape[-2:]) != shape:  # scored at the label size
        logits = F.interpolate(logits, size=shape, mode="bilinear", align_corners=True)
    if tuple(logits.shape[-2:]) != shape:
        raise ValueError(
            f"acquire: logits are {list(logits.shape[-2:])} but labels are "
            f"{list(labels.shape[-2:])} (images {ids})"
        )
    prev_blocked, prev_labelled = prev_maps
    return strategy.select(
        logits,
        account=account,
        radius=_radius(model, out, radius_model, batch["image"], shape if upsample else None)
        if strategy.needs_radius
        else None,
        blocked=None if prev_blocked is None else torch.from_numpy(prev_blocked).to(device),
        labelled=None if prev_labelled is None else torch.from_numpy(prev_labelled),
    )


def _write_batch(batch, sel, prev_labelled, state: _RoundState, a: int) -> None:
    """Write one batch's round files (the oracle's masks, or a person's queries) and add its
    counts to the round's totals."""
    writer, queries, totals, sources = state.writer, state.queries, state.totals, state.sources
    labels = batch["label"]
    shape = tuple(labels.shape[-2:])
    labelled = sel.labelled.cpu().numpy()
    blocked = sel.blocked.cpu().numpy()
    new = labelled if prev_labelled is None else labelled & ~prev_labelled
    if prev_labelled is not None:
        labelled = labelled | prev_labelled
    labels_np = labels.cpu().numpy()
    images = None
    if queries is not None:  # the images as the model saw them, for the person
        shown = batch["image"]
        if tuple(shown.shape[-2:]) != shape:  # the pool at the label size
            shown = F.interpolate(shown, size=shape, mode="bicubic", align_corners=False)
        pixels = shown.mul(255).round().clamp(0, 255).to(torch.uint8)
        images = pixels.permute(0, 2, 3, 1).cpu().numpy()
    for j, image_id in enumerate(list(batch["id"])):
        mask = None
        if queries is not None:
            queries.add(
                image_id,
                source=sources.get(image_id, ""),
                image=images[j],
                query=new[j],
                centres=sel.centres[j].cpu().numpy(),
                radius=a,
            )
        else:  # the oracle answers every pixel shown so far: its earlier answers are
            # the same ground truth, so no previous mask is read (no I/O per image)
            shown = labelled[j]
            mask = merge_answer(None, shown, state.annotator.answer(shown, labels_np[j]))
            totals["answered"] += int((new[j] & (mask != UNLABELLED)).sum())
        writer.add(image_id, mask=mask, blocked=blocked[j], labelled=labelled[j])
    totals["pixels"] += int(labels_np.size)
    totals["regions"] += sum(int(c.shape[0]) for c in sel.centres)
    totals["before"] += 0 if prev_labelled is None else int(prev_labelled.sum())
    totals["new"] += int(new.sum())
    totals["cumulative"] += int(labelled.sum())
