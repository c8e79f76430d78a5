"""Who labels a round's regions: the simulated oracle or a person (docs/design.md, "Human in the
loop").

An annotator gets each image's *query* (bool ``[H, W]``: the pixels this round shows for the first
time) inside the one acquisition round of :func:`halo.acquisition.loop.acquire`, and either
answers at once or defers:

- ``simulated``: the oracle of the benchmarks; its answer is the ground truth inside the pixels
  shown so far (:meth:`Simulated.answer`), and the round completes in the acquisition job;
- ``human``: writes the queries (:class:`~halo.acquisition.queries.QueryWriter`) and defers; the
  round completes when the answers are imported (:mod:`halo.acquisition.answers`).

Either way the masks come from :func:`~halo.acquisition.answers.merge_answer`: the oracle's
answer covers every pixel shown so far, a person's this round's new pixels, merged into the
previous round's masks. Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

from halo.acquisition.queries import QueryWriter
from halo.acquisition.rounds import UNLABELLED

__all__ = ["Human", "Simulated"]


class Simulated:
    """The simulated oracle: reveals the ground truth of the queried pixels."""

    name = "simulated"
    deferred = False

    def answer(self, query: np.ndarray, label: np.ndarray) -> np.ndarray:
        """uint8 ``[H, W]``: ``label`` inside ``query`` (bool ``[H, W]``), 255 elsewhere.

        ``label`` is the int ground truth ``[H, W]`` in ``[0, 255]`` (255 = ignore).
        """
        label = np.asarray(label)
        if label.size and (int(label.min()) < 0 or int(label.max()) > UNLABELLED):
            raise ValueError(
                f"simulated annotator: label values must be in [0, 255], got "
                f"[{label.min()}, {label.max()}]"
            )
        return np.where(query, label, UNLABELLED).astype(np.uint8)


class Human:
    """A person: the round's queries are written for them and the round waits for the answers.

    Args:
        queries: the writer of this round's queries (entered by the acquisition round).
    """

    name = "human"
    deferred = True

    def __init__(self, queries: QueryWriter) -> None:
        self.queries = queries
