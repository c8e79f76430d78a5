"""Writers: determinism, the real layouts read back, the default benchmark, bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halo.data import DATASETS, build_dataset, synthetic
from halo.data import labels as L
from halo.data.synthetic import writers

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


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("style", list(synthetic.STYLES))
def test_writer_and_reader_agree_on_every_path(tmp_path, style, split):
    """What the writer puts where, the dataset module finds there, under the same ids."""
    conds = ["rain", "fog"] if style == "acdc" else [None]
    synthetic.write_dataset(
        style, tmp_path, split=split, count=3, size=SIZE, conditions=["rain", "fog"]
    )
    dataset = DATASETS[synthetic.STYLES[style].layout.name]
    options = {"conditions": conds} if style == "acdc" else {}
    found = dataset.samples(tmp_path, split, **options)
    written = [
        synthetic.sample_paths(style, tmp_path, split, i, c) for c in conds for i in range(3)
    ]
    assert sorted((s.id, s.image, s.label) for s in found) == sorted(
        (sid, image, label) for image, label, sid in written
    )
    assert set(tmp_path.rglob("*.png")) == {p for s in found for p in (s.image, s.label)}


def test_sample_ids_are_named_like_the_real_files(tmp_path):
    assert synthetic.sample_id("gta", "val", 0) == "30001"
    assert synthetic.sample_id("synthia", "train", 12) == "0000012"
    assert synthetic.sample_id("cityscapes", "val", 4) == "lindau/lindau_000001_000023"
    assert synthetic.sample_id("acdc", "train", 51, "rain") == "rain/GOPR0421/GOPR0421_frame_000001"
    image, label, sid = synthetic.sample_paths("acdc", tmp_path, "train", 51, "rain")
    assert (image, label) == DATASETS["acdc"].LAYOUT.paths(tmp_path, "train", sid)
    assert image == tmp_path / "rgb_anon/rain/train/GOPR0421/GOPR0421_frame_000001_rgb_anon.png"


def test_the_default_benchmark_table():
    assert synthetic.BENCHMARK == (
        ("gta", "train", 400),
        ("gta", "val", 100),
        ("synthia", "train", 400),
        ("cityscapes", "train", 400),
        ("cityscapes", "val", 100),
        ("acdc", "train", 100),
        ("acdc", "val", 25),
    )


def test_write_benchmark_writes_one_folder_per_dataset(tmp_path):
    stats = synthetic.write_benchmark(tmp_path, size=SIZE, seed=0, count=1, conditions=["fog"])
    assert {d: list(s) for d, s in stats.items()} == {
        "gta5": ["train", "val"],
        "synthia": ["train"],
        "cityscapes": ["train", "val"],
        "acdc": ["train", "val"],
    }
    assert list(stats) == ["gta5", "synthia", "cityscapes", "acdc"]  # the order written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acdc", "cityscapes", "gta5", "synthia"]
    for dataset, splits in stats.items():
        assert json.loads((tmp_path / dataset / "class_stats.json").read_text()) == splits
        for split, split_stats in splits.items():
            options = {"conditions": ["fog"]} if dataset == "acdc" else {}
            assert len(build_dataset(dataset, tmp_path / dataset, split, **options)) == 1
            assert split_stats["images"] == 1
    # the same bytes as the style written on its own
    synthetic.write_dataset("cityscapes", tmp_path / "alone", split="val", count=1, size=SIZE)
    sid = synthetic.sample_id("cityscapes", "val", 0)
    for a, b in zip(
        DATASETS["cityscapes"].LAYOUT.paths(tmp_path / "cityscapes", "val", sid),
        DATASETS["cityscapes"].LAYOUT.paths(tmp_path / "alone", "val", sid),
        strict=True,
    ):
        assert a.read_bytes() == b.read_bytes()


def test_write_benchmark_counts_come_from_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "BENCHMARK", (("gta", "train", 2), ("acdc", "val", 1)))
    stats = synthetic.write_benchmark(tmp_path, size=SIZE, seed=3)
    assert stats["gta5"]["train"]["images"] == 2
    assert stats["acdc"]["val"]["images"] == 4  # one per condition
    assert stats["gta5"]["train"]["seed"] == 3 and stats["gta5"]["train"]["size"] == [32, 64]


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


def test_bad_scales_are_refused_before_any_file(tmp_path):
    for scale, match in (
        ({"sky": 2.0}, "'sky' is not a class whose count scales; one of person, rider"),
        ({"person": -1.0}, "person=-1.0; expected a finite factor >= 0"),
        ({"person": float("nan")}, "expected a finite factor"),
    ):
        with pytest.raises(ValueError, match=match):
            synthetic.write_dataset("gta", tmp_path / "x", count=1, size=SIZE, scale=scale)
    assert not (tmp_path / "x").exists()


def test_scale_is_recorded_in_the_class_stats(tmp_path):
    stats = synthetic.write_dataset("gta", tmp_path, count=2, size=SIZE, scale={"person": 3})
    assert stats["scale"] == {"person": 3}
    assert json.loads((tmp_path / "class_stats.json").read_text())["train"]["scale"] == {
        "person": 3
    }
    plain = synthetic.write_dataset("gta", tmp_path / "plain", count=2, size=SIZE)
    assert "scale" not in plain
