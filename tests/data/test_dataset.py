"""SegmentationDataset: resizing, label id checks, decode errors naming the file, verify()."""

from __future__ import annotations

import numpy as np
import pytest

from halo.data import DataError, SegmentationDataset, build_dataset
from halo.data.dataset import SegmentationDataset as Direct
from tests.data.conftest import raw_map, save


def test_package_exposes_the_dataset_class():
    assert SegmentationDataset is Direct


def test_resize_bilinear_image_nearest_label(trees):
    lab = np.zeros((8, 12), np.uint8)
    lab[:, 6:] = 26  # car on the right half
    root = trees.cityscapes("val", {"lindau": lab})
    item = build_dataset("cityscapes", root, "val", size=(4, 6))[0]
    assert item["image"].shape == (3, 4, 6)
    assert set(item["label"].unique().tolist()) == {255, 13}
    assert (item["label"][:, 3:] == 13).all() and (item["label"][:, :3] == 255).all()


# ---- errors: each names the file or folder and the expectation --------------------------------


def test_unknown_label_id(trees):
    root = trees.cityscapes("train", {"aachen": raw_map([7, 34])})
    ds = build_dataset("cityscapes", root, "train")
    with pytest.raises(DataError, match=r"gtFine_labelIds\.png: ids \[34\] are not in"):
        ds[0]
    root = trees.synthia([raw_map([3, 300])])
    with pytest.raises(DataError, match=r"ids \[300\]"):
        build_dataset("synthia", root, "all")[0]


def test_size_mismatch(trees):
    root = trees.gta5([raw_map([7])])
    save(root / "labels" / "00001.png", raw_map([7], 9, 12), mode="P")
    with pytest.raises(DataError, match=r"size mismatch: image .*00001\.png is 12x8 but label"):
        build_dataset("gta5", root, "all")[0]


def test_truncated_and_corrupt_png(trees):
    root = trees.gta5([raw_map([7]), raw_map([8])])
    img = root / "images" / "00001.png"
    img.write_bytes(img.read_bytes()[:60])
    ds = build_dataset("gta5", root, "all")
    with pytest.raises(DataError, match=r"cannot read image .*00001\.png"):
        ds[0]
    (root / "labels" / "00002.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read label .*00002\.png"):
        ds[1]
    with pytest.raises(DataError):
        ds.verify()
    syn = trees.synthia([raw_map([3])])
    lab = syn / "RAND_CITYSCAPES" / "GT" / "LABELS" / "0000000.png"
    lab.write_bytes(lab.read_bytes()[:40])
    with pytest.raises(DataError, match=r"cannot read label .*0000000\.png"):
        build_dataset("synthia", syn, "all")[0]


def test_colour_label_is_rejected(trees):
    root = trees.cityscapes("train", {"aachen": raw_map([7])})
    lab = next((root / "gtFine").rglob("*.png"))
    save(lab, np.zeros((8, 12, 3), np.uint8))
    with pytest.raises(DataError, match="single-channel"):
        build_dataset("cityscapes", root, "train")[0]


def test_no_images_found(tmp_path):
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    (root / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        build_dataset("cityscapes", root, "train")


def test_verify_stamp_skips_unchanged_files_only(trees, tmp_path):
    root = trees.gta5([raw_map([7]), raw_map([8])])
    cache = tmp_path / "cache"
    ds = build_dataset("gta5", root, "all")
    assert ds.verify(cache=cache) is True  # decoded, stamp written
    assert ds.verify(cache=cache) is False  # unchanged files: the stamp is enough
    assert build_dataset("gta5", root, "all", (4, 6)).verify(cache=cache) is False  # any size
    # a file changed after its check (here: truncated) is decoded again and named
    img = root / "images" / "00002.png"
    img.write_bytes(img.read_bytes()[:60])
    with pytest.raises(DataError, match=r"cannot read image .*00002\.png"):
        build_dataset("gta5", root, "all").verify(cache=cache)
    assert len(list((cache / "verified").iterdir())) == 1  # no stamp for the broken state


def test_class_presence_is_read_once_then_from_the_stamp(trees, tmp_path, monkeypatch):
    """Which train ids each label holds (GTAV raw 7 = road 0, 26 = car 13, 24 = person 11);
    the stamp keeps them, so a second dataset of the same files decodes nothing; a stamp from
    before presence was recorded is completed by one decode."""
    import json

    root = trees.gta5([raw_map([7, 26]), raw_map([24]), raw_map([7])])
    cache = tmp_path / "cache"
    want = np.zeros((3, 19), bool)
    want[0, [0, 13]] = want[1, 11] = want[2, 0] = True
    assert np.array_equal(build_dataset("gta5", root, "all").class_presence(cache=cache), want)
    again = build_dataset("gta5", root, "all", (4, 6))  # any size: the files are the same

    def no_decode(self, index):
        raise AssertionError("decoded although the stamp has the presence")

    with monkeypatch.context() as m:
        m.setattr(Direct, "load_native", no_decode)
        assert np.array_equal(again.class_presence(cache=cache), want)
        assert again.verify(cache=cache) is False
    (stamp,) = (cache / "verified").iterdir()
    stamp.write_text(json.dumps({"dataset": "gta5", "samples": 3}))  # an older stamp
    assert np.array_equal(again.class_presence(cache=cache), want)
    assert len(json.loads(stamp.read_text())["presence"]) == 3
    assert np.array_equal(again.class_presence(), want)  # no cache: decoded each time
