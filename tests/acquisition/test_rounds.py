"""The round folder: mask paths and ids, label masks, reading them back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from halo.acquisition.rounds import label_mask, mask_path, read_mask
from halo.io import write_png

# --- mask files ----------------------------------------------------------------------------


def test_mask_path_and_bad_ids(tmp_path: Path) -> None:
    assert mask_path(tmp_path, "aachen/aachen_000000_000019") == (
        tmp_path / "masks" / "aachen" / "aachen_000000_000019.png"
    )
    for bad in ("", "/abs", "a/../b", "a//b", "a\\b", "./a"):
        with pytest.raises(ValueError, match="image id"):
            mask_path(tmp_path, bad)


def test_label_mask_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 19, (7, 9))
    label[0, 0] = 255
    labelled = rng.random((7, 9)) < 0.5
    labelled[0, 0] = True
    mask = label_mask(labelled, label)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask[labelled], label[labelled])
    assert (mask[~labelled] == 255).all() and mask[0, 0] == 255
    write_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        label_mask(labelled, label + 300)
    with pytest.raises(ValueError, match="one \\[H, W\\] shape"):
        label_mask(labelled[:, :3], label)
