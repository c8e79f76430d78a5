"""File decoding: SYNTHIA's 16-bit labels (first channel only), 8-bit labels, RGB images."""

from __future__ import annotations

import numpy as np
import pytest

from halo.data import DataError
from halo.data.readers import read_label_8bit, read_label_16bit_first_channel, read_rgb
from tests.data.conftest import raw_map, rgb, save, save_synthia_label


def test_synthia_instance_channel_ignored(tmp_path):
    p = save_synthia_label(tmp_path / "x.png", raw_map([5, 6]))
    np.testing.assert_array_equal(read_label_16bit_first_channel(p), raw_map([5, 6]))


def test_8bit_labels_grey_and_palette_and_rgb_images(tmp_path):
    lab = raw_map([7, 26, 33])
    np.testing.assert_array_equal(read_label_8bit(save(tmp_path / "l.png", lab)), lab)
    np.testing.assert_array_equal(read_label_8bit(save(tmp_path / "p.png", lab, mode="P")), lab)
    image = rgb(8, 12, 0)
    np.testing.assert_array_equal(read_rgb(save(tmp_path / "i.png", image)), image)


def test_missing_16bit_label_is_named(tmp_path):
    with pytest.raises(DataError, match=r"cannot read label .*nope\.png: no such file"):
        read_label_16bit_first_channel(tmp_path / "nope.png")
