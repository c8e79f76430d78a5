"""The batches of a training run, indexed by global step.

The batch of step t depends only on (seed, t) (and the rank), and so do its flips: a run resumed
from a checkpoint sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from halo.choices import SOURCE_ORDERS

__all__ = ["Batches", "StepBatchSampler", "balanced_length", "class_balanced_order", "random_hflip"]

#: draws per sub-epoch of the class-balanced list (official ``core/datasets/gtav.py:36``)
SUB_EPOCH = 3000


def random_hflip(images: Tensor, labels: Tensor, flips: Tensor) -> tuple[Tensor, Tensor]:
    """Flip the samples whose ``flips`` entry is True, horizontally.

    Args:
        images: [B, 3, H, W]; labels: [B, H, W]; flips: bool [B].
    """
    f = flips.to(images.device)
    images = torch.where(f[:, None, None, None], images.flip(-1), images)
    labels = torch.where(f[:, None, None], labels.flip(-1), labels)
    return images, labels


def balanced_length(images: int, sub_epoch: int = SUB_EPOCH) -> int:
    """The length of the class-balanced list for a run that reads ``images`` source images:
    whole sub-epochs, one more than ``images // sub_epoch`` (official ``gtav.py:41``)."""
    return (images // sub_epoch + 1) * sub_epoch


def class_balanced_order(
    presence: np.ndarray, length: int, seed: int, *, sub_epoch: int = SUB_EPOCH
) -> np.ndarray:
    """The official class-balanced source list (``core/datasets/gtav.py:31-59``): ``length``
    sample indices drawn in sub-epochs of ``sub_epoch``.

    Each draw picks a class ``c`` with probability ∝ ``1 / log(1.01 + d_c)``, where ``d_c`` is
    class c's share of the class occurrences among the sub-epoch's draws so far (the number of
    drawn images holding c over the sum of that number over classes; all 0 at a sub-epoch's
    start), then takes the next image of ``c``'s list; a class's list is a seeded
    permutation of the images that hold it, reshuffled when used up. Classes no image holds are
    never drawn (the official code fails on them). The draws are sequential — each one's weights
    depend on every earlier draw of its sub-epoch — so the loop is over draws (about 4 s for
    the 126,000 of the paper's GTAV run, once per training job).

    Args:
        presence: bool [N, C], which classes each sample holds (:meth:`SegmentationDataset.
            class_presence`).
        length: how many indices to draw. seed: the list's random state.

    Returns:
        int64 [length] indices into the N samples.
    """
    presence = np.asarray(presence, dtype=bool)
    c = presence.shape[1]
    held = [k for k in range(c) if presence[:, k].any()]
    if not held:
        raise ValueError("class-balanced order: no sample holds any class (are they labelled?)")
    rng = np.random.default_rng([seed, 0xBA1A])
    lists = {k: rng.permutation(np.flatnonzero(presence[:, k])).tolist() for k in held}
    classes_of = [np.flatnonzero(row).tolist() for row in presence]
    nxt = dict.fromkeys(held, 0)
    u = rng.random(length).tolist()
    out = [0] * length
    slot = {k: j for j, k in enumerate(held)}  # the held classes' places in ``counts``
    for i in range(length):  # plain floats: 19-element NumPy calls cost more than they save
        if i % sub_epoch == 0:
            counts, total = [0] * len(held), 0
        w = [1.0 / math.log(1.01 + (x / total if total else 0.0)) for x in counts]
        cdf = list(itertools.accumulate(w))
        k = held[min(bisect.bisect_right(cdf, u[i] * cdf[-1]), len(held) - 1)]
        if nxt[k] == len(lists[k]):
            lists[k], nxt[k] = rng.permutation(lists[k]).tolist(), 0
        out[i] = lists[k][nxt[k]]
        nxt[k] += 1
        for j in classes_of[out[i]]:
            counts[slot[j]] += 1
            total += 1
    return np.asarray(out, dtype=np.int64)


class StepBatchSampler(Sampler[list[int]]):
    """Batches indexed by global step: the batch of step t depends only on (seed, t).

    Epoch e is a permutation of the dataset (or of ``pool``, a list of its indices that may
    repeat them, e.g. :func:`class_balanced_order`) drawn from ``seed`` and e; the global batch of step t
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
        pool: np.ndarray | None = None,
    ) -> None:
        if pool is not None:
            size = len(pool)
        if size < 1:
            raise ValueError("StepBatchSampler: empty dataset")
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} must be divisible by world size {world}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self.pool = None if pool is None else np.asarray(pool, dtype=np.int64)

    def _epoch(self, e: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, e]).permutation(self.size)
        return order if self.pool is None else self.pool[order]

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


def uniform_pool(ds, images: int, seed: int) -> None:
    """``train.source_order: uniform``: every epoch a permutation of the dataset (no pool)."""
    del ds, images, seed


def balanced_pool(ds, images: int, seed: int) -> np.ndarray:
    """``train.source_order: balanced``: the official class-balanced list for a run that reads
    ``images`` source images (:func:`class_balanced_order`), from the classes each label holds
    (read once per dataset version, then from its verification stamp)."""
    from halo.io import cache_dir

    presence = ds.class_presence(cache=cache_dir())
    return class_balanced_order(presence, balanced_length(images), seed)


def _loader(
    ds: Dataset,
    batch_size: int,
    seed: int,
    start: int,
    stop: int,
    workers: int,
    rank: int,
    world: int,
    pool: np.ndarray | None = None,
) -> Iterator[dict]:
    sampler = StepBatchSampler(
        len(ds),
        batch_size,
        seed=seed,
        start=start,
        stop=stop,
        rank=rank,
        world=world,
        pool=pool,
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


class Batches:
    """The batches of each global step: source and target loaders indexed by step (each rank
    its slice), moved to the model's device and flipped per (seed, step) with ``train.hflip``.
    The source's epochs permute the dataset or the pool of ``train.source_order``
    (:data:`halo.choices.SOURCE_ORDERS`) for the schedule's ``total`` steps."""

    def __init__(self, protocol, cfg, seed, span, source, target, rank, world, device):
        workers, self.cfg, self.seed, self.device = cfg.num_workers, cfg, seed, device
        self.protocol = protocol
        start, stop, total = span
        self.source = None
        if protocol.source:
            pool = SOURCE_ORDERS.lookup(cfg.source_order)(source, cfg.batch_size * total, seed)
            self.source = _loader(
                source, cfg.batch_size, seed, start, stop, workers, rank, world, pool
            )
        self.target = (
            _loader(target, cfg.batch_size, seed + 7919, start, stop, workers, rank, world)
            if protocol.target
            else None
        )

    def take(self, which: str, step: int) -> tuple[Tensor, Tensor]:
        """The next batch of ``which`` (``source`` or ``target``) for ``step``."""
        it, salt = (self.source, 1) if which == "source" else (self.target, 2)
        b = next(it)
        images, labels = b["image"].to(self.device, non_blocking=True), b["label"].to(self.device)
        if self.cfg.hflip:
            g = torch.Generator().manual_seed(self.seed * 7 + salt * 1_000_000_007 + step)
            flips = torch.rand(images.shape[0], generator=g) < 0.5
            images, labels = random_hflip(images, labels, flips)
        return images, labels
