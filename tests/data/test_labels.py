import numpy as np
import pytest

from halo.data import labels as L


def test_cityscapes_labelids_map_to_the_19_train_ids():
    lut = L.id_to_train_id("cityscapes")
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    expected = {
        7: 0,
        8: 1,
        11: 2,
        12: 3,
        13: 4,
        17: 5,
        19: 6,
        20: 7,
        21: 8,
        22: 9,
        23: 10,
        24: 11,
        25: 12,
        26: 13,
        27: 14,
        28: 15,
        31: 16,
        32: 17,
        33: 18,
    }
    for raw in range(256):
        assert lut[raw] == expected.get(raw, 255), raw
    assert sorted(lut[lut != 255].tolist()) == list(range(19))


def test_gta5_uses_cityscapes_ids():
    np.testing.assert_array_equal(L.id_to_train_id("gta5"), L.id_to_train_id("cityscapes"))


def test_synthia_to_19_and_16_classes():
    lut19 = L.id_to_train_id("synthia")
    assert lut19[3] == L.CITYSCAPES_CLASSES.index("road")
    assert lut19[10] == L.CITYSCAPES_CLASSES.index("person")
    assert lut19[21] == L.CITYSCAPES_CLASSES.index("wall")
    assert lut19[0] == lut19[13] == lut19[14] == lut19[22] == 255  # void, parking, road-work, lane
    lut16 = L.id_to_train_id("synthia", "synthia16")
    names = L.class_names("synthia16")
    assert len(names) == 16 and "terrain" not in names and "truck" not in names
    for raw, cls in {3: "road", 1: "sky", 8: "car", 11: "bicycle", 12: "motorcycle"}.items():
        assert names[lut16[raw]] == cls
    assert lut16[16] == lut16[18] == lut16[20] == 255  # terrain, truck, train: not in the protocol
    assert sorted(lut16[lut16 != 255].tolist()) == list(range(16))


def test_mIoU_star_subset_is_13_classes_without_wall_fence_pole():
    p = L.get_protocol("synthia16")
    sub = [p.classes[i] for i in p.subset13]
    assert len(sub) == 13 and not {"wall", "fence", "pole"} & set(sub)


def test_acdc_train_ids_are_identity():
    lut = L.id_to_train_id("acdc")
    np.testing.assert_array_equal(lut[:19], np.arange(19))
    assert (lut[19:] == 255).all()


@pytest.mark.parametrize("dataset", L.DATASETS)
def test_every_known_id_maps_and_unknown_ids_are_ignored(dataset):
    lut, known = L.id_to_train_id(dataset), L.known_ids(dataset)
    assert (lut[~known] == 255).all()
    assert known.sum() >= 19


def test_protocol_palette_and_names():
    p = L.get_protocol("synthia16")
    assert p.palette.shape == (16, 3)
    np.testing.assert_array_equal(p.palette[0], L.CITYSCAPES_PALETTE[0])


@pytest.mark.parametrize("bad", [("kitti", "cityscapes19"), ("cityscapes", "coco")])
def test_unknown_names_list_the_valid_ones(bad):
    with pytest.raises(ValueError, match="valid:"):
        L.id_to_train_id(*bad)
