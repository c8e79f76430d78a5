"""One training loop for the three protocols: ``source``, ``active`` and ``supervised``.

- ``source``: source labels only (the source-only baseline; it initialises every ADA run);
- ``active``: a source batch and a target batch per step; the target labels are the acquired masks
  (255 = not acquired), plus an optional negative-learning term on the target predictions;
- ``supervised``: fully labelled target (the upper bound).

SGD, RiemannianSGD or AdamW (``train.optimizer``), encoder lr and 10× for decoder + head, linear warm-up then
poly or cosine decay over the whole schedule (continuous across active rounds: round r trains
the global steps [(r−1)·S, r·S) of R·S, at the rounds' own rate if ``train.round_lr`` is set). The batches, flips and dropout masks of global step t depend only
on (seed, t) (and the rank), so a run resumed from a checkpoint sees exactly the batches an
uninterrupted run would and ends with the same weights. Checkpoints hold the model, the optimiser
and the step, and are written atomically.

Device follows the model: nothing here picks a device. Under ``torch.distributed`` (``torchrun``)
the model is wrapped in DistributedDataParallel, each rank takes its slice of every global batch,
and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from halo.choices import TRAINING_PROTOCOLS
from halo.data.labels import IGNORE_INDEX
from halo.engine.batches import Batches
from halo.engine.checkpoint import save_checkpoint, unwrap
from halo.engine.errors import TrainingDiverged
from halo.engine.optim import build_optimizer, load_optimizer_state, lr_factor

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch RNG seed of global ``step`` on ``rank``: the model's randomness (dropout) is a
    function of (seed, step, rank) only, whatever step a run started or resumed at."""
    return (seed * 1_000_003 + step) * 1_009 + rank


def negative_learning_loss(logits: Tensor, *, threshold: float = 0.05) -> Tensor:
    """Negative learning on unlabelled pixels (as RIPU): push down classes the model already finds
    unlikely, ``−mean log(1 − p_c)`` over pixels and classes with ``p_c < threshold``.

    Args:
        logits: float [B, C, H, W].

    Returns:
        scalar loss (0 if no class is below the threshold).
    """
    prob = logits.float().softmax(dim=1)
    neg = (prob < threshold).float()
    loss = -(neg * torch.log((1.0 - prob).clamp_min(1e-6))).sum()
    return loss / neg.sum().clamp_min(1.0)


def local_consistency_loss(logits: Tensor, labels: Tensor, *, ignore_index: int = 255) -> Tensor:
    """RIPU's local consistency on labelled images: at the pixels of a label edge, the L1 distance
    between the softmax and its 3x3 neighbourhood mean, summed over classes, averaged.

    As the official ``LocalConsistentLoss`` (l1): a pixel is on an edge where the 8-neighbour
    Laplacian of the label map (zero padding: the image border counts as an edge unless the
    class id is 0) is not 0, and its own label is not ``ignore_index``; the neighbourhood mean
    pads by replication.

    Args:
        logits: float [B, C, H, W]; labels: int [B, H, W] (``ignore_index`` = unlabelled).

    Returns:
        scalar loss (0 where no pixel is on an edge).
    """
    prob = logits.float().softmax(dim=1)
    c = prob.shape[1]
    box = prob.new_full((c, 1, 3, 3), 1.0 / 9.0)
    mean = F.conv2d(F.pad(prob, (1, 1, 1, 1), mode="replicate"), box, groups=c)
    discrepancy = (prob - mean).abs().sum(dim=1)  # [B, H, W]
    laplace = prob.new_full((1, 1, 3, 3), -1.0)
    laplace[0, 0, 1, 1] = 8.0
    edges = F.conv2d(labels.unsqueeze(1).to(prob.dtype), laplace, padding=1).squeeze(1)
    mask = (edges.long() != 0) & (labels != ignore_index)
    return (discrepancy * mask).sum() / mask.sum().clamp_min(1)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """Which global steps this call trains, out of the whole schedule's ``total``."""

    start: int
    stop: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop <= self.total:
            raise ValueError(f"bad schedule {self}: need 0 <= start <= stop <= total")


def _kept(checkpoint: str | Path) -> str:
    if Path(checkpoint).is_file():
        return f"the last good checkpoint ({checkpoint}) is kept"
    return "no checkpoint had been written yet"


def _process_group(model: nn.Module, cfg) -> tuple[int, int]:
    """``(rank, world)`` of this process; a trainable decoder BatchNorm needs two images a
    process."""
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    # a trainable BatchNorm after the ASPP's image pooling sees one value per channel and image:
    # training needs two images a process (frozen BatchNorm, or BatchNorm over pixels such as
    # the SegFormer head's, does not)
    decoder = getattr(unwrap(model), "decoder", model)
    if cfg.batch_size // world < 2 and _pooled_batchnorm(decoder):
        raise ValueError(
            f"train.batch_size {cfg.batch_size} over {world} process(es) leaves "
            f"{cfg.batch_size // world} image per process; BatchNorm needs at least 2 in "
            "training (raise train.batch_size)"
        )
    return rank, world


def _pooled_batchnorm(decoder: nn.Module) -> bool:
    """Whether a trainable BatchNorm of ``decoder`` normalises image-pooled features (one value
    per channel and image: smp's ``ASPPPooling``)."""
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPPPooling

    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        for pool in decoder.modules()
        if isinstance(pool, ASPPPooling)
        for m in pool.modules()
    )


def _wrap(model: nn.Module, cfg) -> nn.Module:
    """The model as trained: DistributedDataParallel under torchrun (SyncBatchNorm with
    ``train.sync_bn``), else itself."""
    if not (dist.is_available() and dist.is_initialized()):
        return model
    device = next(model.parameters()).device
    net = nn.SyncBatchNorm.convert_sync_batchnorm(model) if cfg.sync_bn else model
    return nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None
    )


def _losses(net: nn.Module, batches: Batches, step: int, protocol, cfg) -> dict[str, Tensor]:
    """The loss terms of one step: ``source`` (+ ``consistency``), ``target`` (+ ``negative``)."""
    parts = {}
    active = protocol.name == "active"
    if protocol.source:
        x, y = batches.take("source", step)
        src_logits = net(x).logits.float()
        parts["source"] = F.cross_entropy(src_logits, y, ignore_index=IGNORE_INDEX)
        if active and cfg.local_consistency > 0:
            parts["consistency"] = cfg.local_consistency * local_consistency_loss(
                src_logits, y, ignore_index=IGNORE_INDEX
            )
    if protocol.target:
        x, y = batches.take("target", step)
        logits = net(x).logits.float()
        if (y != IGNORE_INDEX).any():
            parts["target"] = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
        else:  # keep every parameter in the graph (DDP) with a zero loss
            parts["target"] = logits.sum() * 0.0
        if active and cfg.negative_learning > 0:
            parts["negative"] = cfg.negative_learning * negative_learning_loss(logits)
    return parts


class _Saver:
    """Writes the training state (and snapshots) on rank 0; a checkpoint is only ever replaced
    by a good one: weights or BatchNorm statistics an update made non-finite (its loss was still
    finite) stop the run, and the previous checkpoint stays."""

    def __init__(self, net, optimizer, checkpoint, meta, rank, advice: str) -> None:
        self.net, self.optimizer, self.checkpoint = net, optimizer, checkpoint
        self.meta, self.rank, self.advice = meta, rank, advice

    def diverged(self, what: str) -> TrainingDiverged:
        """The error of a run stopped by ``what`` (names the checkpoint that is kept)."""
        return TrainingDiverged(f"{what}; stopped, {_kept(self.checkpoint)}. {self.advice}")

    def __call__(self, step: int, curve: list, path: Path | None = None) -> None:
        state = [t for t in self.net.state_dict().values() if t.is_floating_point()]
        if not bool(torch.stack([t.isfinite().all() for t in state]).all()):
            raise self.diverged(
                f"weights or BatchNorm statistics became non-finite before step {step} "
                f"({self.meta['protocol']})"
            )
        if self.rank != 0:
            return
        meta = {**self.meta, "curve": curve}
        if path is None:
            save_checkpoint(self.checkpoint, self.net, self.optimizer, step, meta)
        else:
            save_checkpoint(path, self.net, None, step, meta)


def _start_step(resume: dict | None, schedule: Schedule) -> int:
    """The step a run starts at: the schedule's start, or where ``resume`` stopped."""
    if resume is None:
        return schedule.start
    start = int(resume.get("step", schedule.start))
    if not schedule.start <= start <= schedule.stop:
        raise ValueError(f"resume step {start} outside the schedule {schedule}")
    return start


def _optimizer(net: nn.Module, cfg, base_lr: float, resume: dict | None):
    """The configured optimiser at ``base_lr``, continuing ``resume``'s state if it has one."""
    optimizer = build_optimizer(
        net,
        lr=base_lr,
        head_lr_mult=cfg.head_lr_mult,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        optimizer=cfg.optimizer,
        adam_beta2=cfg.adam_beta2,
    )
    if resume is not None and resume.get("optimizer") is not None:
        load_optimizer_state(optimizer, resume["optimizer"], cfg.optimizer)
    return optimizer


def _protocol(name: str, source, target):
    """The protocol called ``name``, with the datasets it needs given."""
    protocol = TRAINING_PROTOCOLS.lookup(name)
    if (protocol.source and source is None) or (protocol.target and target is None):
        raise ValueError(
            f"protocol {name!r} needs source={protocol.source}, target={protocol.target}"
        )
    return protocol


def train(
    model: nn.Module,
    *,
    protocol: str,
    schedule: Schedule,
    cfg,
    seed: int,
    checkpoint: str | Path,
    source: Dataset | None = None,
    target: Dataset | None = None,
    resume: dict | None = None,
    meta: dict | None = None,
    progress: bool = True,
    on_log: Callable[[dict], None] | None = None,
    snapshots: tuple[int, Path] | None = None,
) -> dict:
    """Train ``model`` over ``schedule`` and write ``checkpoint`` every ``cfg.checkpoint_every``
    steps and at the end.

    Args:
        model: a :class:`halo.models.segmenter.Segmenter` on the device to train on.
        protocol: ``source``, ``active`` or ``supervised``.
        schedule: the global steps to train now, and the whole schedule's length.
        cfg: a :class:`halo.config.TrainConfig`.
        seed: drives the batch order, flips and the per-step RNG state (dropout).
        checkpoint: where to write the training state (model, optimiser, step, ``meta``).
        source: labelled source dataset (``source`` and ``active``).
        target: target dataset with the labels to learn (acquired masks for ``active``, full
            labels for ``supervised``).
        resume: a checkpoint dict to continue from: the optimiser state is restored if present,
            and its ``step`` must lie in [schedule.start, schedule.stop].
        meta: extra entries stored in every checkpoint (config, backbone, class count, ...).
        on_log: called with ``{"step", "loss", "lr", ...}`` every few steps (rank 0 only).
        snapshots: ``(every, folder)``: also write the model (no optimiser state) to
            ``folder/stepNNNNNN.pt`` after every ``every``-th step before the last.

    Returns:
        ``{"step": final step, "loss": mean loss of the last 20 steps, "seconds": wall time,
        "history": [{"step", "loss", "lr"}, ...] (every 10th step of this call),
        "curve": [[step, loss, lr, time], ...]}``: every step's loss, learning rate and the Unix
        time (seconds) at its end, continued from
        ``resume["curve"]`` (checkpoints carry it), so a resumed run, or a round continuing the
        previous round's schedule, has the whole run's curve.

    Raises:
        TrainingDiverged: the loss became non-finite (the last checkpoint written is kept).
    """
    from halo.progress import progress as progress_bar

    data, job = (source, target), (seed, checkpoint, resume, meta, schedule)
    one_step, save, start = _prepare(model, protocol, data, cfg, *job)
    show = progress and save.rank == 0
    base_lr = one_step.base_lr
    history, recent = [], []
    # every step's [step, loss, lr] of the whole run: checkpoints carry it, so a resumed run (or
    # a round continuing the previous round) continues it; steps past the resume point are redone
    curve = [c for c in (resume or {}).get("curve", []) if c[0] < start]
    one_step.net.train()
    t0 = time.perf_counter()
    bar = progress_bar(range(start, schedule.stop), desc=f"train[{protocol}]", enabled=show)
    for step in bar:
        value, parts, factor = one_step(step, save)
        recent = [*recent[-19:], value]
        curve.append([step, value, base_lr * factor, time.time()])
        if step % 10 == 0 or step == schedule.stop - 1:
            entry = _logged(step, value, base_lr * factor, parts, bar)
            history.append(entry)
            if on_log is not None and save.rank == 0:
                on_log(entry)
        _checkpoints(save, step, schedule.stop, cfg.checkpoint_every, snapshots, curve)
    save(schedule.stop, curve)
    result = {"step": schedule.stop, "loss": float(np.mean(recent)) if recent else math.nan}
    return {**result, "seconds": time.perf_counter() - t0, "history": history, "curve": curve}


def _logged(step: int, loss: float, lr: float, parts: dict[str, Tensor], bar) -> dict:
    """The history entry of a logged step (also shown on the progress bar)."""
    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
    return {
        "step": step,
        "loss": loss,
        "lr": lr,
        **{k: float(v.detach()) for k, v in parts.items()},
    }


def _prepare(model, protocol: str, data, cfg, seed, checkpoint, resume, meta, schedule):
    """The run's step (the model as trained, its optimiser, the batches from where the run
    starts, autocast), its checkpoint writer and its first step; ``data`` is ``(source,
    target)``."""
    source, target = data
    proto = _protocol(protocol, source, target)
    start = _start_step(resume, schedule)
    rank, world = _process_group(model, cfg)
    meta = dict(meta or {}, protocol=protocol, total_steps=schedule.total)
    device = next(model.parameters()).device  # device follows the model
    span = (start, schedule.stop, schedule.total)
    batches = Batches(proto, cfg, seed, span, source, target, rank, world, device)
    net = _wrap(model, cfg)
    base_lr, warmup = cfg.phase_rate(proto.name)
    optimizer = _optimizer(net, cfg, base_lr, resume)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cfg.amp and device.type == "cuda"
        else contextlib.nullcontext()
    )
    active_rate = proto.name == "active" and cfg.round_lr is not None
    rate_key = "train.round_lr" if active_rate else "train.lr"
    save = _Saver(net, optimizer, checkpoint, meta, rank, f"Lower {rate_key} or check the data.")
    args = (net, optimizer, batches, rank, amp, warmup, schedule.total, base_lr)
    return _Step(*args), save, start


@dataclass(frozen=True)
class _Step:
    """One optimiser step at a global step of a training run."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    batches: Batches  # also the run's protocol, train config and seed
    rank: int
    amp: Any
    warmup: int
    total: int
    base_lr: float

    def __call__(self, step: int, save: _Saver) -> tuple[float, dict[str, Tensor], float]:
        """Train ``step``: ``(loss, its terms, the rate factor)``."""
        cfg, proto = self.batches.cfg, self.batches.protocol
        # The model's own randomness (the decoder's dropout) is seeded per step and rank, so a
        # resumed run draws exactly what an uninterrupted one would (one seed at the start would
        # give the resumed run other dropout masks).
        torch.manual_seed(step_seed(self.batches.seed, step, self.rank))
        factor = lr_factor(
            step,
            cfg.decay_steps or self.total,  # past the horizon the rate stays at 0
            warmup=self.warmup,
            power=cfg.poly_power,
            schedule=cfg.schedule,
            start=cfg.warmup_start,
            shift=cfg.warmup_shift,
        )
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * factor
        with self.amp:
            parts = _losses(self.net, self.batches, step, proto, cfg)
        loss = sum(parts.values())
        if not torch.isfinite(loss):
            raise save.diverged(f"loss became {loss.item()} at step {step} ({proto.name})")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), parts, factor


def _checkpoints(save: _Saver, step: int, stop: int, every: int, snapshots, curve) -> None:
    """After ``step``: the training state every ``every`` steps, the model every
    ``snapshots[0]`` steps into ``snapshots[1]`` (never at the last step: the end saves)."""
    if (step + 1) % every == 0 and step + 1 < stop:
        save(step + 1, curve)
    if snapshots and (step + 1) % snapshots[0] == 0 and step + 1 < stop:
        save(step + 1, curve, Path(snapshots[1]) / f"step{step + 1:06d}.pt")
