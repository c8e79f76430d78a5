"""SYNTHIA: 16-bit label PNGs (class id in the first channel), 19- and 16-class protocols."""

from __future__ import annotations

from halo.data import build_dataset, label_encoding
from halo.data import labels as L
from tests.data.conftest import check_item, raw_map


def test_synthia_16bit_labels_and_protocols(trees):
    labs = [raw_map([3, 4, 2, 8, 10, 16, 0])]
    root = trees.synthia(labs)
    ds19 = build_dataset("synthia", root, "all")
    check_item(ds19[0], L.id_to_train_id(label_encoding("synthia")), labs[0])
    ds16 = build_dataset("synthia", root, "all", protocol="synthia16")
    check_item(ds16[0], L.id_to_train_id(label_encoding("synthia"), "synthia16"), labs[0])
    assert ds16.num_classes == 16
    names = L.class_names("synthia16")
    assert [names[v] if v != 255 else None for v in ds16[0]["label"][0, :7].tolist()] == [
        "road", "sidewalk", "building", "car", "person", None, None,
    ]  # fmt: skip
