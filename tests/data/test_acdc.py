"""ACDC: ``rgb_anon/<condition>/{split}/<sequence>/`` with train-id labels, by condition."""

from __future__ import annotations

import pytest

from halo.data import DataError, build_dataset, label_encoding
from halo.data import labels as L
from tests.data.conftest import check_item, raw_map


def test_acdc_conditions(trees):
    labs = {"fog": raw_map([0, 1, 255]), "night": raw_map([13, 10, 2]), "snow": raw_map([8])}
    root = trees.acdc("val", labs)
    ds = build_dataset("acdc", root, "val", conditions=["fog", "night", "snow"])
    assert len(ds) == 3 and ds.ids[0].startswith("fog/GOPR")
    check_item(ds[1], L.id_to_train_id(label_encoding("acdc")), labs["night"])
    fog = build_dataset("acdc", root, "val", conditions=["fog"])
    assert len(fog) == 1
    with pytest.raises(DataError, match=r"rgb_anon/rain/val"):
        build_dataset("acdc", root, "val", conditions=["rain"])
    with pytest.raises(ValueError, match="fog"):
        build_dataset("acdc", root, "val", conditions=["haze"])


def test_samples_keep_the_order_of_the_conditions(trees):
    root = trees.acdc("val", {"snow": raw_map([8]), "fog": raw_map([0])})
    ds = build_dataset("acdc", root, "val", conditions=["snow", "fog"])
    assert [i.split("/")[0] for i in ds.ids] == ["snow", "fog"]
    assert build_dataset("acdc", root, "val", conditions="fog").ids == ds.ids[1:]
