"""Styles: the style table, domain shift in appearance, the ACDC conditions."""

from __future__ import annotations

import numpy as np
import pytest

from halo.data import acdc, cityscapes, gta5, synthetic, synthia
from halo.data import labels as L


def test_each_style_is_written_as_one_dataset():
    assert list(synthetic.STYLES) == ["gta", "cityscapes", "synthia", "acdc"]
    layouts = {name: style.layout for name, style in synthetic.STYLES.items()}
    assert layouts == {
        "gta": gta5.LAYOUT,
        "cityscapes": cityscapes.LAYOUT,
        "synthia": synthia.LAYOUT,
        "acdc": acdc.LAYOUT,
    }
    assert synthetic.CONDITIONS is acdc.CONDITIONS


def test_style_names_are_exact():
    """The name seeds the generator, so only the exact name is a style."""
    assert synthetic.get_style("gta") is synthetic.STYLES["gta"]
    for name in ("kitti", "GTA"):
        with pytest.raises(ValueError, match="valid: gta, cityscapes, synthia, acdc"):
            synthetic.get_style(name)


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


def test_unknown_condition():
    rng = synthetic.sample_rng(0, "acdc", "val", 0, "fog")
    plan = synthetic.make_plan(synthetic.STYLES["acdc"].scene, 32, 64, rng)
    with pytest.raises(ValueError, match="unknown ACDC condition 'haze'; valid: fog, night"):
        synthetic.render(plan, "acdc", rng, "haze")
