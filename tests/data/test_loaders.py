"""Every loader on fixture trees written in its official layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halo.data import DataError, build_dataset
from halo.data import labels as L
from tests.data.conftest import raw_map, save, save_synthia_label


def check_item(item, lut, raw, h=8, w=12):
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, h, w)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.int64 and item["label"].shape == (h, w)
    np.testing.assert_array_equal(item["label"].numpy(), lut[raw])


def test_gta5_all_and_file_list(trees):
    labs = [raw_map([7, 8, 26, 0, 33]), raw_map([11, 21, 23, 24, 3])]
    root = trees.gta5(labs, lists={"val": [1]})
    ds = build_dataset("gta5", root, "all")
    assert ds.ids == ["00001", "00002"]
    lut = L.id_to_train_id("gta5")
    for i in range(2):
        check_item(ds[i], lut, labs[i])
    assert ds[0]["label"][0, :5].tolist() == [0, 1, 13, 255, 18]
    val = build_dataset("gta5", root, "val")
    assert val.ids == ["00002"]


def test_cityscapes_official_layout(trees):
    labs = {"aachen": raw_map([7, 26, 24]), "bremen": raw_map([23, 1, 17])}
    root = trees.cityscapes("train", labs)
    ds = build_dataset("cityscapes", root, "train")
    assert ds.ids == ["aachen/aachen_000000_000019", "bremen/bremen_000001_000019"]
    lut = L.id_to_train_id("cityscapes")
    check_item(ds[0], lut, labs["aachen"])
    check_item(ds[1], lut, labs["bremen"])


def test_synthia_16bit_labels_and_protocols(trees):
    labs = [raw_map([3, 4, 2, 8, 10, 16, 0])]
    root = trees.synthia(labs)
    ds19 = build_dataset("synthia", root, "all")
    check_item(ds19[0], L.id_to_train_id("synthia"), labs[0])
    ds16 = build_dataset("synthia", root, "all", protocol="synthia16")
    check_item(ds16[0], L.id_to_train_id("synthia", "synthia16"), labs[0])
    assert ds16.num_classes == 16
    names = L.class_names("synthia16")
    assert [names[v] if v != 255 else None for v in ds16[0]["label"][0, :7].tolist()] == [
        "road", "sidewalk", "building", "car", "person", None, None,
    ]


def test_acdc_conditions(trees):
    labs = {"fog": raw_map([0, 1, 255]), "night": raw_map([13, 10, 2]), "snow": raw_map([8])}
    root = trees.acdc("val", labs)
    ds = build_dataset("acdc", root, "val", conditions=["fog", "night", "snow"])
    assert len(ds) == 3 and ds.ids[0].startswith("fog/GOPR")
    check_item(ds[1], L.id_to_train_id("acdc"), labs["night"])
    fog = build_dataset("acdc", root, "val", conditions=["fog"])
    assert len(fog) == 1
    with pytest.raises(DataError, match=r"rgb_anon/rain/val"):
        build_dataset("acdc", root, "val", conditions=["rain"])
    with pytest.raises(ValueError, match="fog"):
        build_dataset("acdc", root, "val", conditions=["haze"])


def test_resize_bilinear_image_nearest_label(trees):
    lab = np.zeros((8, 12), np.uint8)
    lab[:, 6:] = 26  # car on the right half
    root = trees.cityscapes("val", {"lindau": lab})
    item = build_dataset("cityscapes", root, "val", size=(4, 6))[0]
    assert item["image"].shape == (3, 4, 6)
    assert set(item["label"].unique().tolist()) == {255, 13}
    assert (item["label"][:, 3:] == 13).all() and (item["label"][:, :3] == 255).all()


# ---- errors: each names the file or folder and the expectation --------------------------------


def test_missing_root_and_split(tmp_path, trees):
    with pytest.raises(DataError, match="does not exist"):
        build_dataset("cityscapes", tmp_path / "nope", "train")
    root = trees.cityscapes("train", {"aachen": raw_map([7])})
    with pytest.raises(DataError, match=r"leftImg8bit/val"):
        build_dataset("cityscapes", root, "val")
    gta = trees.gta5([raw_map([7])])
    with pytest.raises(DataError, match=r"train\.txt"):
        build_dataset("gta5", gta, "train")


def test_image_without_label(trees):
    root = trees.gta5([raw_map([7]), raw_map([8])])
    (root / "labels" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"00002\.png has no label: expected .*labels/00002\.png"):
        build_dataset("gta5", root, "all")


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


def test_empty_split(trees, tmp_path):
    root = tmp_path / "cityscapes"
    (root / "leftImg8bit" / "train" / "aachen").mkdir(parents=True)
    (root / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        build_dataset("cityscapes", root, "train")
    gta = trees.gta5([raw_map([7])])
    (gta / "val.txt").write_text("\n")
    with pytest.raises(DataError, match="empty"):
        build_dataset("gta5", gta, "val")


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="valid: gta5, cityscapes, synthia, acdc"):
        build_dataset("kitti", tmp_path, "train")


def test_unlabelled_test_split(trees):
    root = trees.cityscapes("test", {"berlin": raw_map([7])})
    for p in (root / "gtFine").rglob("*.png"):
        p.unlink()
    item = build_dataset("cityscapes", root, "test")[0]
    assert (item["label"] == 255).all()


def test_synthia_instance_channel_ignored(tmp_path):
    p = save_synthia_label(tmp_path / "x.png", raw_map([5, 6]))
    from halo.data.readers import read_label_16bit_first_channel

    np.testing.assert_array_equal(read_label_16bit_first_channel(p), raw_map([5, 6]))


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
