"""The batches of a training run, indexed by global step.

The batch of step t depends only on (seed, t) (and the rank), and so do its flips: a run resumed
from a checkpoint sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["Batches", "StepBatchSampler", "random_hflip"]


def random_hflip(images: Tensor, labels: Tensor, flips: Tensor) -> tuple[Tensor, Tensor]:
    """Flip the samples whose ``flips`` entry is True, horizontally.

    Args:
        images: [B, 3, H, W]; labels: [B, H, W]; flips: bool [B].
    """
    f = flips.to(images.device)
    images = torch.where(f[:, None, None, None], images.flip(-1), images)
    labels = torch.where(f[:, None, None], labels.flip(-1), labels)
    return images, labels


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


def _loader(
    ds: Dataset,
    batch_size: int,
    seed: int,
    start: int,
    stop: int,
    workers: int,
    rank: int,
    world: int,
) -> Iterator[dict]:
    sampler = StepBatchSampler(
        len(ds),
        batch_size,
        seed=seed,
        start=start,
        stop=stop,
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


class Batches:
    """The batches of each global step: source and target loaders indexed by step (each rank
    its slice), moved to the model's device and flipped per (seed, step) with ``train.hflip``."""

    def __init__(self, protocol, cfg, seed, start, stop, source, target, rank, world, device):
        workers, self.cfg, self.seed, self.device = cfg.num_workers, cfg, seed, device
        self.protocol = protocol
        self.source = (
            _loader(source, cfg.batch_size, seed, start, stop, workers, rank, world)
            if protocol.source
            else None
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
