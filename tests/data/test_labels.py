import numpy as np
import pytest

from halo.data import DATASETS, label_encoding
from halo.data import labels as L


def test_cityscapes_labelids_map_to_the_19_train_ids():
    lut = L.id_to_train_id(label_encoding("cityscapes"))
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
    np.testing.assert_array_equal(
        L.id_to_train_id(label_encoding("gta5")), L.id_to_train_id(label_encoding("cityscapes"))
    )


def test_synthia_to_19_and_16_classes():
    lut19 = L.id_to_train_id(label_encoding("synthia"))
    assert lut19[3] == L.CITYSCAPES_CLASSES.index("road")
    assert lut19[10] == L.CITYSCAPES_CLASSES.index("person")
    assert lut19[21] == L.CITYSCAPES_CLASSES.index("wall")
    assert lut19[0] == lut19[13] == lut19[14] == lut19[22] == 255  # void, parking, road-work, lane
    lut16 = L.id_to_train_id(label_encoding("synthia"), "synthia16")
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
    lut = L.id_to_train_id(label_encoding("acdc"))
    np.testing.assert_array_equal(lut[:19], np.arange(19))
    assert (lut[19:] == 255).all()


#: the datasets whose layout declares a label encoding (not the folder dataset's classes.yaml)
ENCODED = [n for n in DATASETS if DATASETS[n].LAYOUT.encoding is not None]


@pytest.mark.parametrize("dataset", ENCODED)
def test_every_known_id_maps_and_unknown_ids_are_ignored(dataset):
    encoding = label_encoding(dataset)
    lut, known = L.id_to_train_id(encoding), encoding.known_ids()
    assert (lut[~known] == 255).all()
    assert known.sum() >= 19


@pytest.mark.parametrize("dataset", ENCODED)
def test_each_dataset_writes_labels_its_own_reader_reads_back(dataset, tmp_path):
    """A dataset module owns its labels: train ids written with its writer and read with its
    reader come back as the same train ids (void stays void)."""
    layout = DATASETS[dataset].LAYOUT
    train = np.random.default_rng(0).integers(0, 19, (16, 24)).astype(np.uint8)
    train[0] = 255
    path = tmp_path / "label.png"
    layout.write_label(path, layout.encoding.raw_ids()[train])
    back = layout.encoding.train_ids()[layout.read_label(path)]
    np.testing.assert_array_equal(back, train)


def test_protocol_palette_and_names():
    p = L.get_protocol("synthia16")
    assert p.palette.shape == (16, 3)
    np.testing.assert_array_equal(p.palette[0], L.CITYSCAPES_PALETTE[0])


@pytest.mark.parametrize("bad", [("kitti", "cityscapes19"), ("cityscapes", "coco")])
def test_unknown_names_list_the_valid_ones(bad):
    with pytest.raises(ValueError, match="valid:"):
        L.id_to_train_id(label_encoding(bad[0]), bad[1])
