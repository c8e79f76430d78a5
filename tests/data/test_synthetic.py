"""The synthetic benchmark: determinism, real layouts read back, imbalance, domain shift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halo.data import build_dataset, synthetic
from halo.data import labels as L

SIZE = (32, 64)
READ_BACK = {  # style → (dataset, split argument to read, protocol, options)
    "gta": ("gta5", "train", "cityscapes19", {}),
    "cityscapes": ("cityscapes", "train", "cityscapes19", {}),
    "synthia": ("synthia", "train", "synthia16", {}),
    "acdc": ("acdc", "train", "cityscapes19", {"conditions": ["night", "snow"]}),
}


def test_same_seed_and_index_same_bytes():
    a = synthetic.generate_sample("cityscapes", "train", 3, seed=1, size=SIZE)
    b = synthetic.generate_sample("cityscapes", "train", 3, seed=1, size=SIZE)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    c = synthetic.generate_sample("cityscapes", "train", 4, seed=1, size=SIZE)
    d = synthetic.generate_sample("cityscapes", "train", 3, seed=2, size=SIZE)
    assert a[0].tobytes() != c[0].tobytes() and a[0].tobytes() != d[0].tobytes()


def test_written_files_do_not_depend_on_count(tmp_path):
    synthetic.write_dataset("gta", tmp_path / "a", count=2, size=SIZE, seed=5)
    synthetic.write_dataset("gta", tmp_path / "b", count=4, size=SIZE, seed=5)
    for sub in ("images/00002.png", "labels/00002.png"):
        assert (tmp_path / "a" / sub).read_bytes() == (tmp_path / "b" / sub).read_bytes()


@pytest.mark.parametrize("style", synthetic.STYLES)
def test_each_style_reads_back_through_the_real_loader(tmp_path, style):
    dataset, split, protocol, opts = READ_BACK[style]
    conds = opts.get("conditions", synthetic.CONDITIONS)
    synthetic.write_dataset(
        style, tmp_path, split="train", count=3, size=SIZE, seed=0, conditions=conds
    )
    ds = build_dataset(dataset, tmp_path, split, protocol=protocol, **opts)
    assert len(ds) == 3 * (len(conds) if style == "acdc" else 1)
    to_protocol = L.get_protocol(protocol).from_cityscapes19()
    conditions = conds if style == "acdc" else [None]
    expected = {}
    for cond in conditions:
        for i in range(3):
            image, label = synthetic.generate_sample(style, "train", i, size=SIZE, condition=cond)
            _, _, sid = synthetic.sample_paths(style, tmp_path, "train", i, cond)
            expected[sid] = (image, to_protocol[label])
    for k in range(len(ds)):
        item = ds[k]
        image, label = expected[item["id"]]
        np.testing.assert_array_equal(item["label"].numpy(), label)
        np.testing.assert_allclose(item["image"].numpy().transpose(1, 2, 0) * 255, image, atol=1e-3)
    stats = json.loads((tmp_path / "class_stats.json").read_text())["train"]
    assert abs(sum(stats["share"].values()) + stats["void_share"] - 1) < 1e-9


def test_class_imbalance_like_cityscapes():
    hist = np.zeros(256)
    for i in range(40):
        _, label = synthetic.generate_sample("cityscapes", "train", i, size=(64, 128))
        hist += np.bincount(label.ravel(), minlength=256)
    share = hist[:19] / hist.sum()
    names = L.CITYSCAPES_CLASSES
    top3 = sum(share[names.index(c)] for c in ("road", "building", "vegetation"))
    assert top3 > 0.55
    rare = [c for c in names if 0 < share[names.index(c)] < 0.01]
    assert {"traffic light", "traffic sign", "rider", "bicycle"} <= set(rare)
    assert (share > 0).sum() >= 16


def test_synthia_has_no_classes_outside_its_protocol():
    for i in range(10):
        _, label = synthetic.generate_sample("synthia", "train", i, size=(64, 128))
        present = {L.CITYSCAPES_CLASSES[c] for c in np.unique(label) if c != 255}
        assert not present & {"terrain", "truck", "train"}


def test_target_style_shifts_class_appearance():
    """Mean colour per class differs between source and target; some target classes look like
    another class of the source (a structured shift, not just noise)."""

    def class_means(style):
        sums, counts = np.zeros((19, 3)), np.zeros(19)
        for i in range(12):
            img, lab = synthetic.generate_sample(style, "train", i, size=(64, 128))
            m = lab < 19
            np.add.at(sums, lab[m], img[m].astype(float))
            counts += np.bincount(lab[m], minlength=19)
        return sums / np.maximum(counts, 1)[:, None]

    src, tgt = class_means("gta"), class_means("cityscapes")
    idx = L.CITYSCAPES_CLASSES.index
    dist = np.linalg.norm(src - tgt, axis=1)
    assert (dist[[idx("sidewalk"), idx("pole"), idx("terrain"), idx("wall")]] > 40).all()
    # target sidewalk is nearer to source road than to source sidewalk
    t_sw = tgt[idx("sidewalk")]
    assert np.linalg.norm(t_sw - src[idx("road")]) < np.linalg.norm(t_sw - src[idx("sidewalk")])


def test_acdc_conditions_differ():
    fog = synthetic.generate_sample("acdc", "val", 0, size=(64, 128), condition="fog")[0]
    night = synthetic.generate_sample("acdc", "val", 0, size=(64, 128), condition="night")[0]
    assert fog.mean() > night.mean() + 60
    assert fog.std() < synthetic.generate_sample("cityscapes", "val", 0, size=(64, 128))[0].std()


def test_acdc_conditions_change_sky_ground_and_contrast():
    """Each condition has its own sky and ground, and less contrast than clear weather."""

    def stats(style, condition=None):
        out = []
        for i in range(6):
            img, lab = synthetic.generate_sample(
                style, "val", i, size=(64, 128), condition=condition
            )
            img = img.astype(np.float64)
            sky = img[lab == 10].mean() if (lab == 10).any() else np.nan
            out.append((sky, img[lab == 0].mean(), img.std()))
        return np.nanmean(np.array(out), 0)

    _, clear_road, clear_std = stats("cityscapes")
    got = {c: stats("acdc", c) for c in synthetic.CONDITIONS}
    assert got["night"][0] < 40 < 120 < got["rain"][0] < 180 < got["fog"][0]
    assert got["snow"][0] > 180
    assert got["snow"][1] > clear_road + 30 > got["rain"][1] + 30 > got["night"][1] + 30
    assert all(got[c][2] < clear_std for c in synthetic.CONDITIONS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"style": "kitti"}, "valid: gta, cityscapes"),
        ({"style": "acdc", "condition": None}, "needs a condition"),
        ({"style": "gta", "size": (8, 8)}, "at least 16x16"),
    ],
)
def test_bad_generator_arguments(kwargs, match):
    style = kwargs.pop("style")
    with pytest.raises(ValueError, match=match):
        synthetic.generate_sample(style, "train", 0, **kwargs)


def test_bad_write_arguments_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="count"):
        synthetic.write_dataset("gta", tmp_path / "x", count=0)
    with pytest.raises(ValueError, match="split"):
        synthetic.write_dataset("gta", tmp_path / "x", split="dev")
    assert not (tmp_path / "x").exists()
