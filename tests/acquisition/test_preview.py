"""halo.acquisition.preview: the acquisition panels with the real segmenter, drawn by the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from halo import report
from halo.acquisition.preview import acquisition_panels
from halo.acquisition.scores import pixel_entropy, window_sum
from halo.acquisition.strategies import build_strategy
from halo.data import build_dataset
from halo.data.synthetic import write_dataset
from halo.models.segmenter import build_backbone
from tests.report.conftest import BENCH, R18, assert_png, study

H, W = 32, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cityscapes")
    write_dataset("cityscapes", root, split="val", count=2, size=(H, W), seed=0, progress=False)
    return build_dataset("cityscapes", root, "val")


@pytest.fixture(scope="module")
def hyperbolic_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(R18, 19, encoder_weights=None)


@pytest.fixture(scope="module")
def euclidean_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_backbone(R18, 19, encoder_weights=None, head="euclidean")


def window_pixels(centres: np.ndarray, a: int) -> int:
    """Pixels in the (2a+1)² windows around centres, clipped at the border (no overlaps)."""
    rows = np.minimum(centres[:, 0] + a, H - 1) - np.maximum(centres[:, 0] - a, 0) + 1
    cols = np.minimum(centres[:, 1] + a, W - 1) - np.maximum(centres[:, 1] - a, 0) + 1
    return int((rows * cols).sum())


def test_halo_panels_match_the_strategy(target, hyperbolic_model: torch.nn.Module) -> None:
    model = hyperbolic_model.train()
    strategy = build_strategy("halo")
    panels = acquisition_panels(model, target, strategy, [1, 0], round_budget=0.02)
    assert model.training  # restored
    assert [p["id"] for p in panels] == [target[1]["id"], target[0]["id"]]
    allowed = math.floor(H * W * 0.02)  # each image is a pool of its own
    model.eval()
    with torch.no_grad():
        for index, panel in zip([1, 0], panels, strict=True):
            assert panel["image"].dtype == np.uint8 and panel["image"].shape == (H, W, 3)
            for key in ("radius", "entropy", "score"):
                assert panel[key].shape == (H, W) and panel[key].dtype == np.float32
            assert panel["selected"].dtype == bool and panel["selected"].shape == (H, W)
            assert panel["pixels_allowed"] == allowed
            assert (panel["active_radius"], panel["mask_radius"]) == (1, 5)
            # budget arithmetic: disjoint 3x3 windows (m = 5 > 2a), clipped at the border,
            # at most the allowance and less than one region below it
            assert allowed - 9 < panel["selected"].sum() == window_pixels(panel["centres"], 1)
            assert panel["selected"].sum() <= allowed
            # the same as the strategy's own round on a fresh forward pass
            out = model(target[index]["image"].unsqueeze(0))
            sel = strategy.select(out.logits, round_budget=0.02, radius=out.radius)
            np.testing.assert_array_equal(panel["selected"], sel.labelled[0].numpy())
            np.testing.assert_array_equal(panel["centres"], sel.centres[0].numpy())
            entropy = window_sum(pixel_entropy(out.logits), 1)[0].numpy()
            np.testing.assert_allclose(panel["entropy"], entropy, rtol=1e-5, atol=1e-6)
            assert 0 <= panel["entropy"].min() and panel["entropy"].max() <= 9 + 1e-5
            assert panel["radius"].min() > 0
            assert np.isfinite(panel["score"]).all()
            assert 0 <= panel["score"].min() and panel["score"].max() <= 1
    np.testing.assert_array_equal(
        panels[1]["image"], (target[0]["image"].permute(1, 2, 0) * 255).round().byte().numpy()
    )


def test_ripu_panels_on_a_euclidean_model(
    tmp_path: Path, target, euclidean_model: torch.nn.Module, hyperbolic_model: torch.nn.Module
) -> None:
    model = euclidean_model.eval()
    ripu = build_strategy("ripu")
    panels = acquisition_panels(
        model, target, ripu.with_radii(active_radius=2, mask_radius=6), [0], round_budget=0.02
    )
    assert not model.training
    (panel,) = panels
    assert panel["radius"] is None
    allowed = math.floor(H * W * 0.02)  # regions of 5x5
    assert (panel["active_radius"], panel["mask_radius"]) == (2, 6)
    assert allowed - 25 < panel["selected"].sum() == window_pixels(panel["centres"], 2) <= allowed
    assert ripu.active_radius == 1 and ripu.mask_radius == 3  # the caller's strategy untouched

    entropy = acquisition_panels(
        hyperbolic_model, target, build_strategy("entropy"), [0], round_budget=0.02
    )
    paths = report.write_acquisition_figures([*entropy, panel], tmp_path)
    safe = target[0]["id"].replace("/", "__")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        f"acquisition/{safe}.png",
        f"acquisition/{safe}-ripu.png",
    ]
    for p in paths:
        assert_png(p)
    with Image.open(paths[0]) as img:
        assert img.size[0] > 3 * img.size[1]  # five panels side by side

    summary = report.build_report(study(), tmp_path / "rep", benchmark=BENCH, panels=entropy)
    assert f"acquisition/{safe}.png" in summary["files"]
    assert_png(tmp_path / "rep" / "acquisition" / f"{safe}.png")
