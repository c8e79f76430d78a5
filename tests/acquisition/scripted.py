"""A scripted annotator for the tests: answers a round's queries with the ground truth, exactly as a
careful person would (the queried pixels only; 255 everywhere else)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from halo.acquisition.queries import read_manifest, read_query
from halo.io import write_png


def ground_truth(data_root: Path, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Image id → the Cityscapes-style target pool's train ids at the pool's ``size``."""
    from halo.data import build_dataset

    ds = build_dataset("cityscapes", Path(data_root) / "cityscapes", "train", size=size)
    return {item["id"]: item["label"].numpy() for item in (ds[i] for i in range(len(ds)))}


def answer(round_dir: Path, truth: dict[str, np.ndarray], out: Path) -> dict[str, np.ndarray]:
    """Write ``out/<id>.png`` (train ids inside the queries, 255 elsewhere); the answers."""
    answers = {}
    for entry in read_manifest(round_dir):
        query = read_query(round_dir, entry)
        answers[entry["id"]] = np.where(query, truth[entry["id"]], 255).astype(np.uint8)
        write_png(Path(out) / f"{entry['id']}.png", answers[entry["id"]])
    return answers
