"""The ``folder`` dataset (your own images): classes matched to the protocol by name, label ids
mapped through classes.yaml, unlabelled images, split lists, ``halo check-data`` and a human round
on a folder target; every malformed folder is one error naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from halo.acquisition.queries import read_manifest
from halo.cli import main
from halo.data import DataError, build_dataset
from halo.data.folder import label_table, read_classes
from halo.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, get_protocol
from halo.io import write_png
from tests.acquisition import scripted
from tests.engine.conftest import TINY_CONFIG

SIZE = (32, 64)
OWN_ID = {i: 18 - i for i in range(19)}  # the folder's own ids: the train ids reversed


def _classes(names=CITYSCAPES_CLASSES) -> dict:
    return {
        "classes": [
            {"id": OWN_ID[i], "name": n, "color": CITYSCAPES_PALETTE[i].tolist()}
            for i, n in enumerate(names)
        ]
    }


@pytest.fixture(scope="module")
def cityscapes(tiny_data):
    return build_dataset("cityscapes", tiny_data / "cityscapes", "train", size=SIZE)


def _make_folder(root: Path, cityscapes, *, labels: bool = True, jpeg: int | None = None) -> Path:
    """The tiny target pool as a folder dataset: images/<city>/<stem>.png (one .jpg if asked),
    labels/ in the folder's own ids, classes.yaml."""
    (root / "images").mkdir(parents=True)
    (root / "classes.yaml").write_text(yaml.safe_dump(_classes()))
    back = np.full(256, 255, np.uint8)
    back[list(OWN_ID)] = list(OWN_ID.values())
    for k, sample in enumerate(cityscapes.samples):
        image, label = cityscapes.load(k)
        if k == jpeg:
            Image.fromarray(image).save(root / "images" / f"{sample.id}.jpg".replace("/", "_"))
        else:
            write_png(root / "images" / f"{sample.id}.png", image)
        if labels:
            write_png(root / "labels" / f"{sample.id}.png", back[label])
    return root


def test_a_folder_loads_like_the_official_layout(tmp_path, cityscapes):
    root = _make_folder(tmp_path / "own", cityscapes)
    ds = build_dataset("folder", root, "all", size=SIZE)
    assert ds.ids == sorted(cityscapes.ids)
    assert ds.verify()
    for k, image_id in enumerate(ds.ids):
        ref = cityscapes[cityscapes.ids.index(image_id)]
        item = ds[k]
        assert item["id"] == image_id
        assert np.array_equal(item["label"].numpy(), ref["label"].numpy())
        assert np.array_equal(item["image"].numpy(), ref["image"].numpy())


def test_jpeg_images_and_images_without_labels(tmp_path, cityscapes):
    root = _make_folder(tmp_path / "own", cityscapes, labels=False, jpeg=0)
    ds = build_dataset("folder", root, "all")
    assert any(s.image.suffix == ".jpg" for s in ds.samples)
    assert all(s.label is None for s in ds.samples)
    assert (ds[0]["label"] == 255).all()


def test_split_lists(tmp_path, cityscapes):
    root = _make_folder(tmp_path / "own", cityscapes)
    chosen = sorted(cityscapes.ids)[1:3]
    (root / "val.txt").write_text("\n".join(chosen) + "\n")
    assert build_dataset("folder", root, "val").ids == chosen
    (root / "val.txt").write_text("no/such_image\n")
    with pytest.raises(DataError, match=r"val\.txt: image 'no/such_image' is not under"):
        build_dataset("folder", root, "val")
    with pytest.raises(DataError, match=r"missing file list .*test\.txt"):
        build_dataset("folder", root, "test")


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "missing file .*classes.yaml"),
        ("classes: [", "not valid YAML"),
        ("names: [road]", "expected 'classes:'"),
        ("classes:\n  - {id: 0, name: road}", r"classes\[0\] must be"),
        ("classes:\n  - {id: 255, name: road, color: [1, 2, 3]}", r"classes\[0\] must be"),
        (
            "classes:\n  - {id: 0, name: road, color: [1, 2, 3]}\n"
            "  - {id: 0, name: sky, color: [1, 2, 4]}",
            "repeats the id 0",
        ),
    ],
    ids=["missing", "yaml", "key", "colour", "id", "repeat"],
)
def test_malformed_classes_file_is_named(tmp_path, cityscapes, content, expect):
    root = _make_folder(tmp_path / "own", cityscapes)
    if content is None:
        (root / "classes.yaml").unlink()
    else:
        (root / "classes.yaml").write_text(content)
    with pytest.raises(DataError, match=expect):
        build_dataset("folder", root, "all")


def test_classes_are_matched_to_the_protocol_by_name(tmp_path):
    (tmp_path / "classes.yaml").write_text(
        "classes:\n  - {id: 7, name: Road, color: [1, 2, 3]}\n"
        "  - {id: 9, name: car, color: [4, 5, 6]}\n"
    )
    lut, known = label_table(tmp_path, get_protocol("cityscapes19"))
    assert lut[7] == 0 and lut[9] == CITYSCAPES_CLASSES.index("car") and lut[8] == 255
    assert known[[7, 9, 255]].all() and known.sum() == 3
    assert [c["name"] for c in read_classes(tmp_path)] == ["Road", "car"]
    (tmp_path / "classes.yaml").write_text("classes:\n  - {id: 0, name: boat, color: [1, 2, 3]}")
    with pytest.raises(DataError, match="class 'boat' is not a class of the cityscapes19"):
        label_table(tmp_path, get_protocol("cityscapes19"))


def test_a_label_id_not_in_classes_yaml_is_corrupt_data(tmp_path, cityscapes):
    root = _make_folder(tmp_path / "own", cityscapes)
    first = sorted(cityscapes.ids)[0]
    write_png(root / "labels" / f"{first}.png", np.full(SIZE, 40, np.uint8))
    ds = build_dataset("folder", root, "all")
    with pytest.raises(DataError, match=r"ids \[40\] are not in the folder label table"):
        ds.verify()


def _check_data(data_root: Path, *sets: str) -> list[str]:
    argv = ["check-data", "--config", str(TINY_CONFIG), "--set", f"data_root={data_root}"]
    for s in sets:
        argv += ["--set", s]
    return argv


def test_check_data_covers_a_folder_target(tiny_data, tmp_path, cityscapes, capsys):
    root = Path(shutil.copytree(tiny_data, tmp_path / "data"))
    _make_folder(root / "own", cityscapes)
    assert main([*_check_data(root, "target_data=own", "val_data=own"), "--verify"]) == 0
    assert "data in place" in capsys.readouterr().out
    shutil.rmtree(root / "own" / "images")
    assert main(_check_data(root, "target_data=own")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{root / 'own' / 'images'}" in err[0] and "your own images" in err[0]
    _make_folder(tmp_path / "other", cityscapes)
    classes = _classes()
    classes["classes"][0]["name"] = "boat"
    (tmp_path / "other" / "classes.yaml").write_text(yaml.safe_dump(classes))
    assert main(_check_data(root, f"target_data={tmp_path / 'other'}")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "class 'boat' is not a class" in err[0]


def test_a_human_round_on_a_folder_of_unlabelled_images(tiny_data, tmp_path, cityscapes):
    """The loop on your own images: a folder without labels as the target pool, the queries out,
    a person's labels in."""
    root = Path(shutil.copytree(tiny_data, tmp_path / "data"))
    _make_folder(root / "own", cityscapes, labels=False)
    common = ["--config", str(TINY_CONFIG), "--quiet", "--set", f"data_root={root}"]
    common += ["--set", "target_data=own"]
    assert main(["pretrain", *common, "--out", str(tmp_path / "src")]) == 0
    out = tmp_path / "round1"
    argv = ["acquire", *common, "--checkpoint", str(tmp_path / "src" / "model.pt")]
    assert main([*argv, "--round", "1", "--out", str(out), "--annotator", "human"]) == 0
    entries = read_manifest(out)
    assert {e["id"] for e in entries} == set(cityscapes.ids)
    assert all(Path(e["image"]).parent.parent.name == "images" for e in entries)
    truth = scripted.ground_truth(tiny_data, SIZE)
    scripted.answer(out, truth, tmp_path / "labels")
    assert main(["import-labels", str(out), str(tmp_path / "labels")]) == 0
    assert (out / "budget.json").is_file()
