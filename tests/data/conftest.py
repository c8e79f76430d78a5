"""Fixture trees in the official dataset layouts, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Save a PNG; mode "P" writes a palette image with a full 256-colour palette (like GTAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    if mode == "P":  # without a full palette Pillow writes fewer bits and changes the indices
        im.putpalette(np.random.default_rng(0).integers(0, 256, 768).tolist())
    im.save(path)
    return path


def save_synthia_label(path: Path, ids: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((*ids.shape, 3), np.uint16)
    arr[..., 2] = ids  # BGR: first PNG channel
    arr[..., 1] = 7  # instance channel: must be ignored
    assert cv2.imwrite(str(path), arr)
    return path


def raw_map(values: list[int], h: int = 8, w: int = 12) -> np.ndarray:
    """A label map that cycles through ``values`` in row-major order."""
    dtype = np.uint8 if max(values) < 256 else np.uint16
    return np.resize(np.asarray(values, dtype), (h, w))


def check_item(item, lut, raw, h=8, w=12):
    """``item`` is a loader item of an [h, w] image whose label is ``lut[raw]``."""
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, h, w)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (h, w)
    np.testing.assert_array_equal(item["label"].numpy(), lut[raw])


class Trees:
    """Builders of tiny datasets in each official layout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gta5(self, labels: list[np.ndarray], lists: dict[str, list[int]] | None = None) -> Path:
        root = self.root / "gta5"
        for i, lab in enumerate(labels):
            save(root / "images" / f"{i + 1:05d}.png", rgb(*lab.shape, i))
            save(root / "labels" / f"{i + 1:05d}.png", lab, mode="P")
        for split, idx in (lists or {}).items():
            (root / f"{split}.txt").write_text("".join(f"{i + 1:05d}.png\n" for i in idx))
        return root

    def cityscapes(self, split: str, labels: dict[str, np.ndarray]) -> Path:
        root = self.root / "cityscapes"
        for k, (city, lab) in enumerate(labels.items()):
            city = city.split("#")[0]
            stem = f"{city}_{k:06d}_000019"
            save(
                root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", rgb(*lab.shape, k)
            )
            save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", lab)
        return root

    def synthia(self, labels: list[np.ndarray]) -> Path:
        root = self.root / "synthia"
        for i, lab in enumerate(labels):
            save(root / "RAND_CITYSCAPES" / "RGB" / f"{i:07d}.png", rgb(*lab.shape, i))
            save_synthia_label(root / "RAND_CITYSCAPES" / "GT" / "LABELS" / f"{i:07d}.png", lab)
        return root

    def acdc(self, split: str, labels: dict[str, np.ndarray]) -> Path:
        root = self.root / "acdc"
        for k, (cond, lab) in enumerate(labels.items()):
            cond = cond.split("#")[0]
            seq = f"GOPR{475 + k:04d}"
            stem = f"{seq}_frame_{k:06d}"
            save(
                root / "rgb_anon" / cond / split / seq / f"{stem}_rgb_anon.png", rgb(*lab.shape, k)
            )
            save(root / "gt" / cond / split / seq / f"{stem}_gt_labelTrainIds.png", lab)
        return root


@pytest.fixture
def trees(tmp_path: Path) -> Trees:
    return Trees(tmp_path)
