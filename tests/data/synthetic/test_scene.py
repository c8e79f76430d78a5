"""Scene plans: Cityscapes-like class imbalance, each domain's classes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from halo.data import labels as L
from halo.data import synthetic
from halo.data.synthetic.plan import BIKE, MOTO, PERSON, RIDER


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


@pytest.mark.parametrize("cls", synthetic.SCALABLE)
@pytest.mark.parametrize("factor", [0.0, 3.0])
def test_scaling_one_class_moves_nothing_else(cls, factor):
    """The frequency intervention: scaling one class's count changes that class's pixels (and
    what its objects cover) and nothing else; a rider brings its two-wheeler."""
    scene = synthetic.STYLES["gta"].scene
    scaled = dataclasses.replace(scene, scale={cls: factor})
    changed = own = 0
    follows = {cls} | ({BIKE, MOTO} if cls == RIDER else set())
    for i in range(12):
        a = synthetic.make_plan(scene, 64, 128, synthetic.sample_rng(0, "gta", "train", i))
        b = synthetic.make_plan(scaled, 64, 128, synthetic.sample_rng(0, "gta", "train", i))
        objs = np.isin(a.inst, [k for k, c in enumerate(a.classes) if c in follows])
        objs |= np.isin(b.inst, [k for k, c in enumerate(b.classes) if c in follows])
        assert np.array_equal(a.label[~objs], b.label[~objs])
        assert np.array_equal(a.depth[~objs], b.depth[~objs])
        changed += int((a.label != b.label).any())
        own += int((b.label == cls).sum()) - int((a.label == cls).sum())
        # nested: a scene keeps its objects (some dropped below 1, more added above)
        n_a, n_b = a.classes.count(cls), b.classes.count(cls)
        assert n_b >= n_a if factor > 1 else n_b <= n_a
    assert changed > 0
    assert own > 0 if factor > 1 else own < 0


def test_small_classes_are_rare_but_present():
    hist = np.zeros(256)
    for i in range(60):
        _, label = synthetic.generate_sample("cityscapes", "train", i, size=(64, 128))
        hist += np.bincount(label.ravel(), minlength=256)
    share = hist[:19] / hist[hist.nonzero()].sum()
    for c in (PERSON, RIDER, BIKE, MOTO):
        assert 0.0005 < share[c] < 0.015, L.CITYSCAPES_CLASSES[c]  # 60 images: noisy
