"""halo.data: the dataset registry, the layout view, missing_folders, imports without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import halo.data
from halo.data import DATASETS, LAYOUTS, DataError, build_dataset, missing_folders
from tests.data.conftest import raw_map

#: The layouts as they were written out by hand before each dataset module declared its own.
EXPECTED_LAYOUTS = {
    "gta5": (("images", "labels"), "GTAV: download.visinf.tu-darmstadt.de/data/from_games"),
    "cityscapes": (
        ("leftImg8bit/{split}", "gtFine/{split}"),
        "Cityscapes: leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip from "
        "www.cityscapes-dataset.com",
    ),
    "synthia": (
        ("RAND_CITYSCAPES/RGB", "RAND_CITYSCAPES/GT/LABELS"),
        "SYNTHIA-RAND-CITYSCAPES from synthia-dataset.net",
    ),
    "acdc": (
        ("rgb_anon", "gt"),
        "ACDC: rgb_anon_trainvaltest.zip + gt_trainval.zip from acdc.vision.ee.ethz.ch",
    ),
    "folder": (
        ("images",),
        "your own images: <root>/images/, optional <root>/labels/ and <root>/classes.yaml "
        "(README, 'Label your own data')",
    ),
}
OFFICIAL = ["gta5", "cityscapes", "synthia", "acdc"]  # the real layouts; then your own folder


def test_registry_holds_each_dataset_module_in_order():
    assert list(DATASETS) == [*OFFICIAL, "folder"]
    for name, module in DATASETS.items():
        assert module.LAYOUT.name == name and callable(module.samples)
    with pytest.raises(ValueError, match="unknown dataset 'kitti'; valid: gta5, cityscapes"):
        DATASETS.lookup("kitti")


def test_layouts_view_is_derived_and_read_only():
    assert dict(LAYOUTS) == EXPECTED_LAYOUTS
    with pytest.raises(TypeError):
        LAYOUTS["kitti"] = ((), "")  # type: ignore[index]


def test_missing_folders(trees, tmp_path):
    assert missing_folders("cityscapes", tmp_path / "nope", "train") == [tmp_path / "nope"]
    root = trees.cityscapes("train", {"aachen": raw_map([7])})
    assert missing_folders("cityscapes", root, "train") == []
    assert missing_folders("cityscapes", root, "val") == [
        root / "leftImg8bit" / "val",
        root / "gtFine" / "val",
    ]
    assert missing_folders("acdc", root, "val") == [root / "rgb_anon", root / "gt"]
    with pytest.raises(ValueError, match="unknown dataset 'kitti'; valid: gta5, cityscapes"):
        missing_folders("kitti", root, "train")


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_dataset("cityscapes", tmp_path / "nope", "train")


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="valid: gta5, cityscapes, synthia, acdc"):
        build_dataset("kitti", tmp_path, "train")


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        halo.data.nothing  # noqa: B018


def test_layouts_import_without_torch():
    """The workflow checks data while it parses: no torch import on the way (subprocess: this
    test process has torch already)."""
    code = (
        "import sys\n"
        "import halo.data, halo.data.layout, halo.data.readers, halo.data.synthetic\n"
        "from halo.data import acdc, cityscapes, gta5, synthia, DATASETS, LAYOUTS\n"
        "halo.data.missing_folders('cityscapes', 'data/x', 'train')\n"
        f"[DATASETS[n].LAYOUT.paths('r', 'train', '/'.join(DATASETS[n].LAYOUT.id_fields)) "
        f"for n in {OFFICIAL!r}]\n"
        "halo.data.missing_folders('folder', 'data/x', 'all')\n"
        "from halo.data import folder\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
