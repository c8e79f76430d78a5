"""Layouts: path templates → sample paths, required folders, discovery and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from halo.data import DataError, acdc, build_dataset, cityscapes, gta5, synthia
from halo.data.labels import CITYSCAPES_LABEL_IDS
from halo.data.layout import Layout, Sample
from halo.data.readers import read_label_8bit, write_label_8bit
from tests.data.conftest import raw_map

R = Path("/r")


@pytest.mark.parametrize(
    ("layout", "split", "sid", "image", "label"),
    [
        (gta5.LAYOUT, "all", "00001", "images/00001.png", "labels/00001.png"),
        (
            cityscapes.LAYOUT,
            "val",
            "lindau/lindau_000001_000019",
            "leftImg8bit/val/lindau/lindau_000001_000019_leftImg8bit.png",
            "gtFine/val/lindau/lindau_000001_000019_gtFine_labelIds.png",
        ),
        (
            synthia.LAYOUT,
            "train",
            "0000007",
            "RAND_CITYSCAPES/RGB/0000007.png",
            "RAND_CITYSCAPES/GT/LABELS/0000007.png",
        ),
        (
            acdc.LAYOUT,
            "train",
            "fog/GOPR0475/GOPR0475_frame_000041",
            "rgb_anon/fog/train/GOPR0475/GOPR0475_frame_000041_rgb_anon.png",
            "gt/fog/train/GOPR0475/GOPR0475_frame_000041_gt_labelTrainIds.png",
        ),
    ],
)
def test_paths_of_a_sample_in_each_official_layout(layout, split, sid, image, label):
    assert layout.paths(R, split, sid) == (R / image, R / label)
    assert layout.paths(str(R), split, sid) == (R / image, R / label)


def test_ids_folders_and_split_lists_follow_from_the_templates():
    assert gta5.LAYOUT.id_fields == ("stem",) and gta5.LAYOUT.split_lists
    assert synthia.LAYOUT.split_lists
    assert cityscapes.LAYOUT.id_fields == ("city", "stem") and not cityscapes.LAYOUT.split_lists
    assert acdc.LAYOUT.id_fields == ("condition", "sequence", "stem")
    assert acdc.LAYOUT.folders == ("rgb_anon", "gt")
    assert cityscapes.LAYOUT.folders == ("leftImg8bit/{split}", "gtFine/{split}")
    assert cityscapes.LAYOUT.image_folder(R, "val") == R / "leftImg8bit" / "val"
    assert acdc.LAYOUT.image_folder(R, "val") == R / "rgb_anon"


def test_a_sample_id_needs_every_id_part():
    with pytest.raises(ValueError, match=r"expected <city>/<stem>"):
        cityscapes.LAYOUT.paths(R, "val", "lindau_000001_000019")
    with pytest.raises(ValueError, match=r"expected <condition>/<sequence>/<stem>"):
        acdc.LAYOUT.paths(R, "val", "fog/GOPR0475")


@pytest.mark.parametrize(
    ("image", "label", "match"),
    [
        ("images/{stem}.png", "labels/{name}.png", "fields of the image"),
        ("images/{split}.png", "labels/{split}.png", "distinct id fields"),
        ("images/{a}/{a}.png", "labels/{a}.png", "distinct id fields"),
        ("images/{split}/{a}.png", "labels/{a}.png", "split"),
        ("images/{a!r}.png", "labels/{a}.png", "plain"),
    ],
)
def test_inconsistent_templates_are_rejected(image, label, match):
    with pytest.raises(ValueError, match=match):
        Layout(
            "x",
            "X",
            image,
            label,
            "ids",
            CITYSCAPES_LABEL_IDS,
            read_label_8bit,
            write_label_8bit,
            "nowhere",
        )


def test_discovery_pairs_by_the_layout_and_ignores_other_files(trees):
    root = trees.cityscapes("train", {"aachen": raw_map([7]), "bremen": raw_map([8])})
    (root / "leftImg8bit" / "train" / "aachen" / "notes.txt").write_text("x")
    (root / "leftImg8bit" / "train" / "aachen" / "other.png").write_bytes(b"")
    (root / "leftImg8bit" / "train" / "stray_leftImg8bit.png").write_bytes(b"")  # no city folder
    found = cityscapes.samples(root, "train")
    assert [s.id for s in found] == ["aachen/aachen_000000_000019", "bremen/bremen_000001_000019"]
    for s in found:
        assert (s.image, s.label) == cityscapes.LAYOUT.paths(root, "train", s.id)
        assert s.image.is_file() and s.label.is_file()


def test_discovery_of_every_acdc_condition_at_once(trees):
    root = trees.acdc("val", {"snow": raw_map([8]), "fog": raw_map([0])})
    every = acdc.LAYOUT.discover(root, "val")
    assert [s.id.split("/")[0] for s in every] == ["fog", "snow"]  # sorted by id
    assert every == sorted(acdc.samples(root, "val", ["snow", "fog"]), key=lambda s: s.id)
    with pytest.raises(ValueError, match="no id field 'weather'"):
        acdc.LAYOUT.discover(root, "val", weather="fog")


def test_unlabelled_split_gives_no_label_path(trees):
    root = trees.cityscapes("test", {"berlin": raw_map([7])})
    for p in (root / "gtFine").rglob("*.png"):
        p.unlink()
    (sample,) = cityscapes.samples(root, "test")
    assert isinstance(sample, Sample) and sample.label is None


# ---- discovery errors: each names the file or folder and the expectation ----------------------


def test_missing_split_folder_and_split_list(trees):
    root = trees.cityscapes("train", {"aachen": raw_map([7])})
    with pytest.raises(DataError, match=r"leftImg8bit/val"):
        build_dataset("cityscapes", root, "val")
    gta = trees.gta5([raw_map([7])])
    with pytest.raises(DataError, match=r"train\.txt"):
        build_dataset("gta5", gta, "train")


def test_missing_label_folder_is_named_with_its_format(trees):
    root = trees.synthia([raw_map([3])])
    for p in (root / "RAND_CITYSCAPES" / "GT" / "LABELS").iterdir():
        p.unlink()
    (root / "RAND_CITYSCAPES" / "GT" / "LABELS").rmdir()
    with pytest.raises(DataError, match=r"missing folder .*RAND_CITYSCAPES/GT/LABELS .*16-bit"):
        build_dataset("synthia", root, "all")


def test_image_without_label(trees):
    root = trees.gta5([raw_map([7]), raw_map([8])])
    (root / "labels" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"00002\.png has no label: expected .*labels/00002\.png"):
        build_dataset("gta5", root, "all")


def test_split_list_naming_a_missing_image(trees):
    root = trees.gta5([raw_map([7])], lists={"val": [0, 4]})
    with pytest.raises(DataError, match=r"split 'val' lists 00005\.png, but .*images/00005\.png"):
        build_dataset("gta5", root, "val")


def test_empty_split_list(trees):
    gta = trees.gta5([raw_map([7])])
    (gta / "val.txt").write_text("\n")
    with pytest.raises(DataError, match="empty"):
        build_dataset("gta5", gta, "val")
