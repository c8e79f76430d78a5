"""One acquisition round (acquire) end to end with the real segmenter: files, budget, resume."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import Dataset

from halo.acquisition.loop import acquire
from halo.acquisition.rounds import (
    BLOCKED_FILE,
    BUDGET_FILE,
    LABELLED_FILE,
    RoundState,
    label_mask,
    mask_path,
    read_budget,
    read_mask,
    round_complete,
)
from halo.acquisition.strategies import build_strategy
from halo.models.segmenter import build_backbone

H, W, C = 32, 64, 5
BUDGET = 0.02  # per round: floor(0.02 * 2048) = 40 pixels an image, 4-5 regions


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class Pool(Dataset):
    """Random images and labels in the target item format (255 = ignore on a few pixels)."""

    def __init__(self, n: int = 5, seed: int = 0, fail_at: int | None = None) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, H, W, generator=gen)
        self.labels = torch.randint(0, C, (n, H, W), generator=gen)
        self.labels[torch.rand(n, H, W, generator=gen) < 0.1] = 255
        self.ids = [f"city{i % 2}/img_{i:03d}" for i in range(n)]
        self.fail_at = fail_at

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        if i == self.fail_at:
            raise RuntimeError("simulated crash while loading")
        return {"image": self.images[i], "label": self.labels[i], "id": self.ids[i]}


@pytest.fixture(scope="module")
def hyperbolic_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone("deeplabv3plus-r18", C, encoder_weights=None)


@pytest.fixture(scope="module")
def euclidean_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_backbone("deeplabv3plus-r18", C, encoder_weights=None, head="euclidean")


def files_of(round_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(round_dir)): p.read_bytes()
        for p in sorted(round_dir.rglob("*"))
        if p.is_file()
    }


# --- acquire -------------------------------------------------------------------------------


def test_two_rounds_write_cumulative_masks_and_budget(
    tmp_path: Path, hyperbolic_model: torch.nn.Module
) -> None:
    pool = Pool()
    strategy = build_strategy("halo")
    r1 = acquire(
        hyperbolic_model,
        pool,
        strategy,
        out_dir=tmp_path / "r1",
        round_budget=BUDGET,
        batch_size=2,
        progress=False,
    )
    r2 = acquire(
        hyperbolic_model,
        pool,
        strategy,
        out_dir=tmp_path / "r2",
        prev_dir=tmp_path / "r1",
        round_budget=BUDGET,
        batch_size=3,
        progress=False,
    )
    for report, r in ((r1, 1), (r2, 2)):
        assert round_complete(tmp_path / f"r{r}")
        assert read_budget(tmp_path / f"r{r}") == json.loads(json.dumps(report.to_dict()))
        assert report.round == r and report.images == 5 and report.pixels_total == 5 * H * W
        # exact budget: after round r at most floor(r * BUDGET * pixels), < one region fewer
        target = math.floor(r * BUDGET * 5 * H * W)
        assert target - 9 < report.pixels_labelled_cumulative <= target
        before = 0 if r == 1 else r1.pixels_labelled_cumulative
        assert report.pixels_target_round == target - before
        assert report.pixels_labelled_round <= report.pixels_target_round
        assert report.regions * 4 <= report.pixels_labelled_round <= report.regions * 9
    assert r2.pixels_labelled_cumulative == r1.pixels_labelled_round + r2.pixels_labelled_round
    assert [h["round"] for h in r2.history] == [1, 2]
    assert math.isclose(r2.fraction_cumulative, r2.pixels_labelled_cumulative / (5 * H * W))
    with RoundState(tmp_path / "r1") as s1, RoundState(tmp_path / "r2") as s2:
        for i, image_id in enumerate(pool.ids):
            b1, l1 = s1.maps(image_id, (H, W))
            b2, l2 = s2.maps(image_id, (H, W))
            assert (b2 >= b1).all() and (l2 >= l1).all() and l2.sum() > l1.sum()
            label = pool.labels[i].numpy()
            for r, lab in ((1, l1), (2, l2)):
                mask = read_mask(mask_path(tmp_path / f"r{r}", image_id))
                np.testing.assert_array_equal(mask, label_mask(lab, label))  # cumulative GT
            assert (b1 >= l1).all()  # every labelled window lies in its centre's block


def test_same_seed_gives_identical_bytes(tmp_path: Path, hyperbolic_model: torch.nn.Module) -> None:
    pool = Pool(seed=2)
    for run in ("a", "b"):
        acquire(
            hyperbolic_model,
            pool,
            build_strategy("random", seed=3),
            out_dir=tmp_path / run,
            round_budget=0.05,
            batch_size=2,
            progress=False,
        )
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == 5 + 3
    assert a == b
    acquire(
        hyperbolic_model,
        pool,
        build_strategy("random", seed=4),
        out_dir=tmp_path / "c",
        round_budget=0.05,
        batch_size=2,
        progress=False,
    )
    assert files_of(tmp_path / "c") != a


def test_batch_size_does_not_change_the_masks(
    tmp_path: Path, euclidean_model: torch.nn.Module
) -> None:
    pool = Pool(seed=3)
    for bs in (1, 4):
        acquire(
            euclidean_model,
            pool,
            build_strategy("entropy"),
            out_dir=tmp_path / f"bs{bs}",
            round_budget=BUDGET,
            batch_size=bs,
            progress=False,
        )
    assert files_of(tmp_path / "bs1") == files_of(tmp_path / "bs4")


@pytest.mark.parametrize("name", ["ripu", "featnorm", "radius"])
def test_other_strategies_run(tmp_path: Path, euclidean_model: torch.nn.Module, name: str) -> None:
    report = acquire(
        euclidean_model,
        Pool(n=2),
        build_strategy(name),
        out_dir=tmp_path,
        round_budget=BUDGET,
        progress=False,
    )
    target = math.floor(BUDGET * 2 * H * W)
    assert report.strategy == name and target - 9 < report.pixels_labelled_round <= target
    assert report.mask_radius == build_strategy(name).mask_radius


def test_radii_overrides_and_model_mode_restored(
    tmp_path: Path, hyperbolic_model: torch.nn.Module
) -> None:
    hyperbolic_model.train()
    report = acquire(
        hyperbolic_model,
        Pool(n=2),
        build_strategy("entropy", active_radius=2, mask_radius=6),
        out_dir=tmp_path,
        round_budget=BUDGET,
        progress=False,
    )
    assert hyperbolic_model.training
    assert (report.active_radius, report.mask_radius) == (2, 6)
    target = math.floor(BUDGET * 2 * H * W)  # one region is 25 pixels now
    assert target - 25 < report.pixels_labelled_round <= target
    hyperbolic_model.eval()
    acquire(
        hyperbolic_model,
        Pool(n=1),
        build_strategy("entropy"),
        out_dir=tmp_path / "x",
        round_budget=BUDGET,
        progress=False,
    )
    assert not hyperbolic_model.training


def test_a_crash_leaves_no_complete_round(
    tmp_path: Path, hyperbolic_model: torch.nn.Module
) -> None:
    out = tmp_path / "r1"
    acquire(
        hyperbolic_model,
        Pool(),
        build_strategy("entropy"),
        out_dir=out,
        round_budget=BUDGET,
        progress=False,
    )
    assert round_complete(out)
    with pytest.raises(RuntimeError, match="simulated crash"):
        acquire(
            hyperbolic_model,
            Pool(fail_at=3),
            build_strategy("entropy"),
            out_dir=out,
            round_budget=BUDGET,
            batch_size=2,
            progress=False,
        )
    assert not round_complete(out)  # the stale marker went first
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp-")]
    with pytest.raises(FileNotFoundError, match="incomplete"):
        acquire(
            hyperbolic_model,
            Pool(),
            build_strategy("entropy"),
            out_dir=tmp_path / "r2",
            prev_dir=out,
            round_budget=BUDGET,
            progress=False,
        )
    # the files of the complete round it replaced are still whole (atomic writes)
    assert (out / BLOCKED_FILE).is_file() and (out / LABELLED_FILE).is_file()
    assert not (out / BUDGET_FILE).exists()


class _Duplicates(Pool):
    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["id"] = "same"
        return item


class _WrongSize(Pool):
    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        item["label"] = item["label"][:16]
        return item


def test_bad_pools_and_rounds_raise(tmp_path: Path, hyperbolic_model: torch.nn.Module) -> None:
    strategy = build_strategy("entropy")

    def run(pool: Dataset, out: str, **kw) -> None:
        acquire(
            hyperbolic_model,
            pool,
            strategy,
            out_dir=tmp_path / out,
            progress=False,
            round_budget=kw.pop("round_budget", BUDGET),
            **kw,
        )

    with pytest.raises(ValueError, match="appears twice"):
        run(_Duplicates(n=2), "dup")
    with pytest.raises(ValueError, match="labels are"):
        run(_WrongSize(n=1), "size")
    with pytest.raises(ValueError, match="round_budget"):
        run(Pool(n=1), "budget", round_budget=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        run(Pool(n=1), "bs", batch_size=0)
    run(Pool(n=2), "r1")
    with pytest.raises(ValueError, match="same folder"):
        run(Pool(n=2), "r1", prev_dir=tmp_path / "r1")
    with pytest.raises(ValueError, match="no map for image"):
        run(Pool(n=3), "r2", prev_dir=tmp_path / "r1")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_random_masks_are_identical_on_cpu_and_cuda(
    tmp_path: Path, hyperbolic_model: torch.nn.Module
) -> None:
    pool = Pool(seed=5)
    acquire(
        hyperbolic_model,
        pool,
        build_strategy("random", seed=1),
        out_dir=tmp_path / "cpu",
        round_budget=0.05,
        batch_size=2,
        progress=False,
    )
    gpu_model = copy.deepcopy(hyperbolic_model).cuda()
    acquire(
        gpu_model,
        pool,
        build_strategy("random", seed=1),
        out_dir=tmp_path / "cuda",
        round_budget=0.05,
        batch_size=2,
        progress=False,
    )
    assert files_of(tmp_path / "cpu") == files_of(tmp_path / "cuda")


def test_source_radius_methods_read_the_radius_model(
    tmp_path: Path, hyperbolic_model: torch.nn.Module
) -> None:
    """halo-src scores the model's entropy with ``radius_model``'s radius: with the scored model
    as its own radius model it is HALO; with another model the masks follow that radius, and
    halo-src-inv inverts it."""

    def masks(name: str, out: str, radius_model=None) -> dict[str, bytes]:
        acquire(
            hyperbolic_model,
            Pool(n=3),
            build_strategy(name),
            out_dir=tmp_path / out,
            round_budget=BUDGET,
            progress=False,
            radius_model=radius_model,
        )
        return {k: v for k, v in files_of(tmp_path / out).items() if k.startswith("masks")}

    torch.manual_seed(7)
    other = build_backbone("deeplabv3plus-r18", C, encoder_weights=None).train()
    assert masks("halo-src", "self", hyperbolic_model) == masks("halo", "halo")
    with_other = masks("halo-src", "other", other)
    assert with_other != masks("halo", "halo2")
    assert masks("halo-src-inv", "inv", other) != with_other
    assert other.training  # the radius model's mode is restored


def test_at_the_label_size_the_radius_is_of_the_upsampled_ball_points():
    """Scored at the label size (``active.label_size``), the radius map is the hyperbolic radius of
    the embeddings upsampled (bilinear, align_corners=True) to that size, as the official code
    computes it, not the decoder-size radius map upsampled; without it, the model's own map."""
    import torch.nn.functional as F

    from halo.acquisition.loop import _radius
    from halo.models.hyperbolic import radius

    torch.manual_seed(0)
    model = build_backbone("deeplabv3plus-r18", 5, curvature=0.5).eval()
    images = torch.rand(2, 3, 32, 64)
    with torch.no_grad():
        out = model(images)
        plain = _radius(model, out, None, images)
        big = _radius(model, out, None, images, (48, 96))
        other = _radius(model, out, model, images, (48, 96))  # a radius model: its own points
    assert torch.equal(plain, out.radius) and plain.shape == (2, 8, 16)
    points = F.interpolate(out.embeddings, size=(48, 96), mode="bilinear", align_corners=True)
    assert big.shape == (2, 48, 96)
    assert torch.allclose(big, radius(points, c=0.5, dim=1))
    assert torch.allclose(other, big)
    upsampled = F.interpolate(
        out.radius[:, None], size=(48, 96), mode="bilinear", align_corners=True
    )
    assert not torch.allclose(big, upsampled[:, 0], atol=1e-4)  # the two rules differ


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    d=st.integers(1, 12),
    hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    size=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    chunk=st.integers(1, 4000),
    c=st.floats(0.1, 2.0),
)
def test_the_upsampled_radius_is_the_same_in_any_channel_chunks(b, d, hw, size, chunk, c):
    """Summing the squared norm over channel chunks (bounded memory for a 768-d ball at the
    label size) gives the radius of the points upsampled at once, whatever the chunk size."""
    import torch.nn.functional as F

    from halo.acquisition.loop import upsampled_radius
    from halo.models.hyperbolic import expmap0, radius

    g = torch.Generator().manual_seed(b * 1000 + d)
    points = expmap0(torch.randn(b, d, *hw, generator=g, dtype=torch.float64), c=c, dim=1)
    whole = radius(
        F.interpolate(points, size=size, mode="bilinear", align_corners=True), c=c, dim=1
    )
    chunked = upsampled_radius(points, size, c=c, chunk_bytes=chunk)
    assert chunked.shape == (b, *size) and chunked.dtype == points.dtype
    assert torch.allclose(chunked, whole, rtol=1e-10, atol=1e-12)
