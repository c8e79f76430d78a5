"""GTAV: ``images/NNNNN.png`` with palette ``labels/NNNNN.png``, split ``all`` or file lists."""

from __future__ import annotations

from halo.data import build_dataset, label_encoding
from halo.data import labels as L
from tests.data.conftest import check_item, raw_map


def test_gta5_all_and_file_list(trees):
    labs = [raw_map([7, 8, 26, 0, 33]), raw_map([11, 21, 23, 24, 3])]
    root = trees.gta5(labs, lists={"val": [1]})
    ds = build_dataset("gta5", root, "all")
    assert ds.ids == ["00001", "00002"]
    lut = L.id_to_train_id(label_encoding("gta5"))
    for i in range(2):
        check_item(ds[i], lut, labs[i])
    assert ds[0]["label"][0, :5].tolist() == [0, 1, 13, 255, 18]
    val = build_dataset("gta5", root, "val")
    assert val.ids == ["00002"]
