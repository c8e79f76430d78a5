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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from halo.data.labels import IGNORE_INDEX
from halo.engine.checkpoint import save_checkpoint, unwrap
from halo.engine.errors import TrainingDiverged

log = logging.getLogger(__name__)

PROTOCOLS = ("source", "active", "supervised")


# --------------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------------


def lr_factor(
    step: int,
    total: int,
    *,
    warmup: int,
    power: float,
    schedule: str = "poly",
    start: float = 0.0,
) -> float:
    """Learning-rate multiplier at global ``step`` of ``total``: linear warm-up, then decay.

    ``start + (1 − start) · (step + 1) / warmup`` for the first ``warmup`` steps (from
    ``start``, e.g. the official 0.01, towards 1), then with
    ``p = (step − warmup) / (total − warmup)`` either ``(1 − p)^power`` (``poly``) or
    ``(1 + cos(π p)) / 2`` (``cosine``).
    """
    if step < warmup:
        return start + (1.0 - start) * (step + 1) / warmup
    p = min((step - warmup) / max(total - warmup, 1), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule != "poly":
        raise ValueError(f"unknown schedule {schedule!r}; valid: poly, cosine")
    return max(1.0 - p, 0.0) ** power


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


def random_hflip(images: Tensor, labels: Tensor, flips: Tensor) -> tuple[Tensor, Tensor]:
    """Flip the samples whose ``flips`` entry is True, horizontally.

    Args:
        images: [B, 3, H, W]; labels: [B, H, W]; flips: bool [B].
    """
    f = flips.to(images.device)
    images = torch.where(f[:, None, None, None], images.flip(-1), images)
    labels = torch.where(f[:, None, None], labels.flip(-1), labels)
    return images, labels


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class StepBatchSampler(Sampler[list[int]]):
    """Batches indexed by global step: the batch of step t depends only on (seed, t).

    Epoch e is a permutation of the dataset drawn from ``seed`` and e; the global batch of step t
    is the slice ``[t·B, (t+1)·B)`` of the concatenated epochs, and rank r of w takes the r-th of
    w equal parts of it.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        seed: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if size < 1:
            raise ValueError("StepBatchSampler: empty dataset")
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} must be divisible by world size {world}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world

    def _epoch(self, e: int) -> np.ndarray:
        return np.random.default_rng([self.seed, e]).permutation(self.size)

    def batch(self, step: int) -> list[int]:
        b = self.batch_size
        first, last = step * b, (step + 1) * b
        idx = np.concatenate(
            [self._epoch(e) for e in range(first // self.size, (last - 1) // self.size + 1)]
        )
        off = (first // self.size) * self.size
        glob = idx[first - off : last - off]
        part = b // self.world
        return glob[self.rank * part : (self.rank + 1) * part].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.stop - self.start


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


def _loader(
    ds: Dataset, batch_size: int, seed: int, schedule: Schedule, workers: int, rank: int, world: int
) -> Iterator[dict]:
    sampler = StepBatchSampler(
        len(ds),
        batch_size,
        seed=seed,
        start=schedule.start,
        stop=schedule.stop,
        rank=rank,
        world=world,
    )
    return iter(
        DataLoader(
            ds,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=False,
            pin_memory=False,
        )
    )


def _kept(checkpoint: str | Path) -> str:
    if Path(checkpoint).is_file():
        return f"the last good checkpoint ({checkpoint}) is kept"
    return "no checkpoint had been written yet"


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    head_lr_mult: float,
    momentum: float,
    weight_decay: float,
    optimizer: str = "sgd",
    adam_beta2: float = 0.999,
) -> torch.optim.Optimizer:
    """SGD (with ``momentum``), geoopt's RiemannianSGD (the official HALO code's optimiser for
    hyperbolic models: on Euclidean parameters it is SGD, but its momentum buffer starts at the
    first gradient, so the first update is about 1.9× SGD's) or AdamW (``betas = (momentum,
    adam_beta2)``, decoupled ``weight_decay``) over the model's parameter groups (decoder and
    head at ``lr × head_lr_mult``); every group remembers its ``initial_lr`` for the schedule."""
    groups = unwrap(model).param_groups(lr, head_lr_scale=head_lr_mult)
    for g in groups:
        g["initial_lr"] = g["lr"]
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(
            groups, lr=lr, betas=(momentum, adam_beta2), weight_decay=weight_decay
        )
    if optimizer == "riemannian-sgd":
        from geoopt.optim import RiemannianSGD

        return RiemannianSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; valid: sgd, adamw, riemannian-sgd")


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
        "curve": [[step, loss, lr], ...]}``: every step's loss and learning rate, continued from
        ``resume["curve"]`` (checkpoints carry it), so a resumed run, or a round continuing the
        previous round's schedule, has the whole run's curve.

    Raises:
        TrainingDiverged: the loss became non-finite (the last checkpoint written is kept).
    """
    from halo.progress import progress as progress_bar

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    need_src = protocol in ("source", "active")
    need_tgt = protocol in ("active", "supervised")
    if (need_src and source is None) or (need_tgt and target is None):
        raise ValueError(f"protocol {protocol!r} needs source={need_src}, target={need_tgt}")
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    # a trainable BatchNorm after the ASPP's image pooling sees one value per channel and image:
    # training needs two images a process (frozen BatchNorm, or BatchNorm over pixels, does not)
    decoder = getattr(unwrap(model), "decoder", model)
    if cfg.batch_size // world < 2 and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in decoder.modules()
    ):
        raise ValueError(
            f"train.batch_size {cfg.batch_size} over {world} process(es) leaves "
            f"{cfg.batch_size // world} image per process; BatchNorm needs at least 2 in "
            "training (raise train.batch_size)"
        )
    device = next(model.parameters()).device
    meta = dict(meta or {}, protocol=protocol, total_steps=schedule.total)

    start = schedule.start
    if resume is not None:
        start = int(resume.get("step", schedule.start))
        if not schedule.start <= start <= schedule.stop:
            raise ValueError(f"resume step {start} outside the schedule {schedule}")
    net: nn.Module = model
    if distributed:
        if cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    base_lr, warmup = cfg.phase_rate(protocol)
    rate_key = "train.round_lr" if protocol == "active" and cfg.round_lr is not None else "train.lr"
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
        saved = resume["optimizer"]
        group = (saved.get("param_groups") or [{}])[0]
        kind = "adamw" if "betas" in group else "riemannian-sgd" if "stabilize" in group else "sgd"
        if kind != cfg.optimizer:
            raise ValueError(
                f"the checkpoint to continue holds a {kind} optimiser state; train.optimizer is "
                f"{cfg.optimizer!r} (continue with the same optimiser, or start a new run)"
            )
        # the saved moments and step counts continue; the hyperparameters (base rates, betas,
        # momentum, decay) are this config's: load_state_dict would put the saved ones back
        config_groups = [
            {k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ]
        optimizer.load_state_dict(saved)
        for group, values in zip(optimizer.param_groups, config_groups, strict=True):
            group.update(values)

    run = Schedule(start, schedule.stop, schedule.total)
    workers = cfg.num_workers
    src_it = _loader(source, cfg.batch_size, seed, run, workers, rank, world) if need_src else None
    tgt_it = (
        _loader(target, cfg.batch_size, seed + 7919, run, workers, rank, world)
        if need_tgt
        else None
    )
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if cfg.amp and device.type == "cuda"
        else contextlib.nullcontext()
    )

    def batch(it, step, salt):
        b = next(it)
        images, labels = b["image"].to(device, non_blocking=True), b["label"].to(device)
        if cfg.hflip:
            g = torch.Generator().manual_seed(seed * 7 + salt * 1_000_000_007 + step)
            flips = torch.rand(images.shape[0], generator=g) < 0.5
            images, labels = random_hflip(images, labels, flips)
        return images, labels

    def save(step: int, path: Path | None = None) -> None:
        # a checkpoint is only ever replaced by a good one: weights or BatchNorm statistics an
        # update made non-finite (its loss was still finite) stop the run here, and the previous
        # checkpoint stays
        state = [t for t in net.state_dict().values() if t.is_floating_point()]
        if not bool(torch.stack([t.isfinite().all() for t in state]).all()):
            raise TrainingDiverged(
                f"weights or BatchNorm statistics became non-finite before step {step} "
                f"({protocol}); stopped, {_kept(checkpoint)}. Lower {rate_key} or check the data."
            )
        if rank == 0 and path is None:
            save_checkpoint(checkpoint, net, optimizer, step, {**meta, "curve": curve})
        elif rank == 0:
            save_checkpoint(path, net, None, step, {**meta, "curve": curve})

    history, recent = [], []
    # every step's [step, loss, lr] of the whole run: checkpoints carry it, so a resumed run (or
    # a round continuing the previous round) continues it; steps past the resume point are redone
    curve = [c for c in (resume or {}).get("curve", []) if c[0] < start]
    net.train()
    t0 = time.perf_counter()
    bar = progress_bar(
        range(start, schedule.stop),
        desc=f"train[{protocol}]",
        enabled=progress and rank == 0,
        total=schedule.stop - start,
    )
    step = start
    for step in bar:
        # The model's own randomness (the decoder's dropout) is seeded per step and rank, so a
        # resumed run draws exactly what an uninterrupted one would (one seed at the start would
        # give the resumed run other dropout masks).
        torch.manual_seed(step_seed(seed, step, rank))
        factor = lr_factor(
            step,
            cfg.decay_steps or schedule.total,  # past the horizon the rate stays at 0
            warmup=warmup,
            power=cfg.poly_power,
            schedule=cfg.schedule,
            start=cfg.warmup_start,
        )
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * factor
        parts = {}
        with amp:
            if need_src:
                x, y = batch(src_it, step, 1)
                src_logits = net(x).logits.float()
                parts["source"] = F.cross_entropy(src_logits, y, ignore_index=IGNORE_INDEX)
                if protocol == "active" and cfg.local_consistency > 0:
                    parts["consistency"] = cfg.local_consistency * local_consistency_loss(
                        src_logits, y, ignore_index=IGNORE_INDEX
                    )
            if need_tgt:
                x, y = batch(tgt_it, step, 2)
                logits = net(x).logits.float()
                if (y != IGNORE_INDEX).any():
                    parts["target"] = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
                else:  # keep every parameter in the graph (DDP) with a zero loss
                    parts["target"] = logits.sum() * 0.0
                if protocol == "active" and cfg.negative_learning > 0:
                    parts["negative"] = cfg.negative_learning * negative_learning_loss(logits)
        loss = sum(parts.values())
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at step {step} ({protocol}); stopped, "
                f"{_kept(checkpoint)}. Lower {rate_key} or check the data."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        recent = [*recent[-19:], value]
        curve.append([step, value, base_lr * factor])
        if step % 10 == 0 or step == schedule.stop - 1:
            entry = {
                "step": step,
                "loss": value,
                "lr": base_lr * factor,
                **{k: float(v.detach()) for k, v in parts.items()},
            }
            history.append(entry)
            bar.set_postfix(loss=f"{value:.3f}", lr=f"{base_lr * factor:.2e}")
            if on_log is not None and rank == 0:
                on_log(entry)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < schedule.stop:
            save(step + 1)
        if snapshots and (step + 1) % snapshots[0] == 0 and step + 1 < schedule.stop:
            save(step + 1, Path(snapshots[1]) / f"step{step + 1:06d}.pt")
    final = schedule.stop
    save(final)
    return {
        "step": final,
        "loss": float(np.mean(recent)) if recent else math.nan,
        "seconds": time.perf_counter() - t0,
        "history": history,
        "curve": curve,
    }
