"""Cityscapes: ``leftImg8bit/{split}/<city>/`` with ``gtFine/{split}/<city>/*_labelIds.png``."""

from __future__ import annotations

from halo.data import build_dataset, label_encoding
from halo.data import labels as L
from tests.data.conftest import check_item, raw_map


def test_cityscapes_official_layout(trees):
    labs = {"aachen": raw_map([7, 26, 24]), "bremen": raw_map([23, 1, 17])}
    root = trees.cityscapes("train", labs)
    ds = build_dataset("cityscapes", root, "train")
    assert ds.ids == ["aachen/aachen_000000_000019", "bremen/bremen_000001_000019"]
    lut = L.id_to_train_id(label_encoding("cityscapes"))
    check_item(ds[0], lut, labs["aachen"])
    check_item(ds[1], lut, labs["bremen"])


def test_unlabelled_test_split(trees):
    root = trees.cityscapes("test", {"berlin": raw_map([7])})
    for p in (root / "gtFine").rglob("*.png"):
        p.unlink()
    item = build_dataset("cityscapes", root, "test")[0]
    assert (item["label"] == 255).all()
