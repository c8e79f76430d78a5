"""Scene plans: Cityscapes-like class imbalance, each domain's classes."""

from __future__ import annotations

import numpy as np

from halo.data import labels as L
from halo.data import synthetic


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


def test_plans_are_drawn_with_the_styles_scene_statistics():
    rng = synthetic.sample_rng(0, "synthia", "train", 0)
    plan = synthetic.make_plan(synthetic.STYLES["synthia"].scene, 64, 128, rng)
    assert plan.label.shape == plan.inst.shape == plan.depth.shape == (64, 128)
    _, label = synthetic.generate_sample("synthia", "train", 0, size=(64, 128))
    np.testing.assert_array_equal(plan.label, label)
