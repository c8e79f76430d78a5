"""A small waiting human round, built without a model: two 24x40 images with a few 3x3 regions
(radius 1), two of them clipped at the border and one with a pixel an earlier round showed."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from halo.acquisition.queries import QueryWriter, class_table, read_manifest, read_query
from halo.acquisition.rounds import BudgetReport, RoundWriter
from halo.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE

SIZE = (24, 40)
RADIUS = 1
CENTRES = {  # image id -> region centres (row, col), in the order of the manifest
    "city/img_a": [(5, 5), (12, 20), (0, 39)],  # (0, 39): clipped at the top-right corner
    "img_b": [(10, 10), (23, 0), (15, 30), (4, 20)],  # (23, 0): clipped at the bottom-left
}
SHOWN_BEFORE = {"img_b": [(14, 29)]}  # in a region's window, but not new: not queried


def window(shape: tuple[int, int], centre, radius: int = RADIUS) -> np.ndarray:
    """bool ``[H, W]``: the region's ``(2a+1)²`` window, clipped at the border."""
    out = np.zeros(shape, dtype=bool)
    row, col = centre
    out[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1] = True
    return out


def make_round(round_dir: Path) -> Path:
    """Write the round's maps and queries as a human acquisition round does; returns it."""
    rng = np.random.default_rng(0)
    classes = class_table(CITYSCAPES_CLASSES, CITYSCAPES_PALETTE)
    queried = {}
    with (
        RoundWriter(round_dir) as writer,
        QueryWriter(round_dir, round=1, classes=classes, checkpoint="sha256:test") as queries,
    ):
        for image_id, centres in CENTRES.items():
            query = np.zeros(SIZE, dtype=bool)
            for centre in centres:
                query |= window(SIZE, centre)
            for row, col in SHOWN_BEFORE.get(image_id, ()):
                query[row, col] = False
            image = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
            queries.add(
                image_id,
                source=f"{image_id}.png",
                image=image,
                query=query,
                centres=np.array(centres),
                radius=RADIUS,
            )
            writer.add(image_id, mask=None, blocked=query, labelled=query)
            queried[image_id] = int(query.sum())
    total, new = len(CENTRES) * SIZE[0] * SIZE[1], sum(queried.values())
    report = BudgetReport(
        strategy="random",
        round=1,
        round_budget=0.05,
        active_radius=RADIUS,
        mask_radius=RADIUS,
        images=len(CENTRES),
        pixels_total=total,
        regions=sum(len(c) for c in CENTRES.values()),
        pixels_target_round=sum(9 * len(c) for c in CENTRES.values()),
        pixels_labelled_round=new,
        pixels_labelled_cumulative=new,
        history=(
            {
                "round": 1,
                "pixels_labelled": new,
                "fraction": new / total,
                "pixels_labelled_cumulative": new,
                "fraction_cumulative": new / total,
            },
        ),
    )
    queries.finish(report.to_dict(), None)
    return round_dir


@pytest.fixture
def round_dir(tmp_path: Path) -> Path:
    """A waiting human round 1 (queries written, no masks, no budget.json)."""
    return make_round(tmp_path / "round1")


def region_masks(round_dir: Path) -> dict[str, list[np.ndarray]]:
    """Per image id, bool ``[H, W]`` per region: its queried pixels (query ∩ window)."""
    out = {}
    for entry in read_manifest(round_dir):
        query = read_query(round_dir, entry)
        out[entry["id"]] = [
            query & window(query.shape, r["centre"], r["radius"]) for r in entry["regions"]
        ]
    return out


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
