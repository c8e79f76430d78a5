"""Training loop pieces: schedule, step-indexed batches, augmentation, losses, checkpoints."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from halo.choices import TRAINING_PROTOCOLS
from halo.config import TrainConfig
from halo.engine import batches as B
from halo.engine import train as T
from halo.engine.checkpoint import load_checkpoint, load_weights, save_checkpoint


def test_lr_warmup_then_poly_decay():
    f = [T.lr_factor(s, 100, warmup=10, power=0.9) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[9:]))
    assert f[10] == pytest.approx(1.0) and f[-1] == pytest.approx((1 - 89 / 90) ** 0.9)
    assert T.lr_factor(0, 10, warmup=0, power=1.0) == 1.0


def test_lr_warmup_then_cosine_decay():
    f = [T.lr_factor(s, 100, warmup=10, power=0.9, schedule="cosine") for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[55] == pytest.approx(0.5) and f[100] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(f[9:]))
    # symmetric about the midpoint of the decay: cos(pi p) = -cos(pi (1 - p))
    assert all(f[10 + k] + f[100 - k] == pytest.approx(1.0) for k in range(91))
    with pytest.raises(ValueError, match="unknown schedule"):
        T.lr_factor(20, 100, warmup=10, power=0.9, schedule="step")


def test_the_rounds_have_their_own_rate_and_warmup():
    from halo.config import TrainConfig

    common = TrainConfig(lr=0.01, warmup_steps=20)
    assert [common.phase_rate(p) for p in TRAINING_PROTOCOLS] == [(0.01, 20)] * 3
    own = TrainConfig(lr=0.01, warmup_steps=20, round_lr=0.002, round_warmup_steps=5)
    assert own.phase_rate("active") == (0.002, 5)
    assert own.phase_rate("source") == own.phase_rate("supervised") == (0.01, 20)


def test_step_batches_depend_only_on_seed_and_step():
    a = B.StepBatchSampler(10, 4, seed=3, start=0, stop=8)
    b = B.StepBatchSampler(10, 4, seed=3, start=5, stop=8)
    assert list(a)[5:] == list(b)
    steps = list(a)
    # consecutive batches walk through permutations: every index once per epoch
    flat = [i for batch in steps for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert list(B.StepBatchSampler(10, 4, seed=4, start=0, stop=8)) != steps


def test_step_batches_split_across_ranks():
    full = B.StepBatchSampler(7, 4, seed=0, start=0, stop=5)
    r0 = B.StepBatchSampler(7, 4, seed=0, start=0, stop=5, rank=0, world=2)
    r1 = B.StepBatchSampler(7, 4, seed=0, start=0, stop=5, rank=1, world=2)
    for g, a, b in zip(full, r0, r1, strict=True):
        assert a + b == g
    with pytest.raises(ValueError, match="divisible"):
        B.StepBatchSampler(7, 3, seed=0, start=0, stop=1, world=2)


def test_hflip_flips_selected_samples_only():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).view(2, 3, 2, 4)
    y = torch.arange(2 * 2 * 4).view(2, 2, 4)
    fx, fy = B.random_hflip(x, y, torch.tensor([True, False]))
    assert torch.equal(fx[0], x[0].flip(-1)) and torch.equal(fx[1], x[1])
    assert torch.equal(fy[0], y[0].flip(-1)) and torch.equal(fy[1], y[1])


def test_negative_learning_pushes_unlikely_classes_down():
    logits = torch.tensor([[4.0, 0.0, -4.0]]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    logits.requires_grad_(True)
    loss = T.negative_learning_loss(logits)
    loss.backward()
    assert loss.item() > 0 and logits.grad[0, 2].gt(0).all()  # gradient step lowers class 2
    confident = torch.tensor([[0.0, 0.0, 0.0]]).view(1, 3, 1, 1)
    assert T.negative_learning_loss(confident).item() == 0.0


def test_checkpoint_roundtrip_and_mismatch(tmp_path):
    from halo.models.segmenter import build_backbone

    model = build_backbone("deeplabv3plus-r18", 5)
    opt = T.build_optimizer(model, lr=1e-3, head_lr_mult=10, momentum=0.9, weight_decay=5e-4)
    save_checkpoint(tmp_path / "m.pt", model, opt, 7, {"backbone": "deeplabv3plus-r18"})
    ck = load_checkpoint(tmp_path / "m.pt")
    assert ck["step"] == 7 and ck["backbone"] == "deeplabv3plus-r18"
    other = build_backbone("deeplabv3plus-r18", 6)
    with pytest.raises(ValueError, match="does not fit this model"):
        load_weights(other, ck)
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_adamw_has_its_betas_decoupled_decay_and_the_head_multiplier():
    from halo.models.segmenter import build_backbone

    model = build_backbone("deeplabv3plus-r18", 5)
    opt = T.build_optimizer(
        model,
        lr=1e-3,
        head_lr_mult=10,
        momentum=0.8,
        weight_decay=0.05,
        optimizer="adamw",
        adam_beta2=0.99,
    )
    assert isinstance(opt, torch.optim.AdamW)
    assert {g["betas"] for g in opt.param_groups} == {(0.8, 0.99)}
    assert {g["weight_decay"] for g in opt.param_groups} == {0.05}
    lrs = sorted(g["initial_lr"] for g in opt.param_groups)
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="unknown optimizer"):
        T.build_optimizer(
            model, lr=1e-3, head_lr_mult=1, momentum=0.9, weight_decay=0, optimizer="lbfgs"
        )


def test_head_gets_ten_times_the_encoder_lr():
    from halo.models.segmenter import build_backbone

    model = build_backbone("deeplabv3plus-r18", 5)
    opt = T.build_optimizer(model, lr=1e-3, head_lr_mult=10, momentum=0.9, weight_decay=5e-4)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-2)
    assert not math.isnan(lrs[0])


def test_riemannian_sgd_is_sgd_but_for_its_first_momentum_step():
    """geoopt's RiemannianSGD (the official optimiser of hyperbolic models) on the segmenter's
    Euclidean parameters: its first update is (1 + momentum) x SGD's (the buffer starts at the
    gradient), later ones follow SGD's recursion; its state is told apart on resume."""
    from halo.models.segmenter import build_backbone

    torch.manual_seed(0)
    base = build_backbone("deeplabv3plus-r18", 5)
    grads = [torch.randn_like(p) for p in base.parameters()]
    deltas = {}
    for kind in ("sgd", "riemannian-sgd"):
        model = build_backbone("deeplabv3plus-r18", 5)
        model.load_state_dict(base.state_dict())
        opt = T.build_optimizer(
            model, lr=1e-2, head_lr_mult=1, momentum=0.9, weight_decay=0.0, optimizer=kind
        )
        before = [p.detach().clone() for p in model.parameters()]
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g.clone()
        opt.step()
        deltas[kind] = [(p.detach() - b) for p, b in zip(model.parameters(), before, strict=True)]
        if kind == "riemannian-sgd":
            assert "stabilize" in opt.state_dict()["param_groups"][0]  # what resume reads
    for s, r in zip(deltas["sgd"], deltas["riemannian-sgd"], strict=True):
        assert torch.allclose(r, 1.9 * s, atol=1e-6)


class _Images(torch.utils.data.Dataset):
    """Four random 32x64 images with random labels (some ignored)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(4, 3, 32, 64, generator=g)
        self.labels = torch.randint(0, 5, (4, 32, 64), generator=g)
        self.labels[:, :4] = 255

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "id": f"img{i}"}


def _fit(tmp_path, name, stop, resume=None, batch_size=2, protocol="source", **train):
    from halo.config import TrainConfig
    from halo.models.segmenter import build_backbone

    torch.manual_seed(0)
    model = build_backbone("deeplabv3plus-r18", 5)
    if resume is not None:
        load_weights(model, resume)
    cfg = TrainConfig(batch_size=batch_size, warmup_steps=1, checkpoint_every=100, **train)
    T.train(
        model,
        protocol=protocol,
        schedule=T.Schedule(0, stop, 4),
        cfg=cfg,
        seed=3,
        checkpoint=tmp_path / name,
        source=_Images(),
        target=_Images() if protocol == "active" else None,
        resume=resume,
        progress=False,
    )
    return load_checkpoint(tmp_path / name)


def test_step_seed_depends_on_seed_step_and_rank():
    seeds = {T.step_seed(s, t, r) for s in range(3) for t in range(50) for r in range(4)}
    assert len(seeds) == 3 * 50 * 4


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, optimizer):
    """The segmenter has dropout (DeepLabV3+'s ASPP): its masks are drawn per step, so stopping
    at step 2 and resuming from the checkpoint (weights and optimiser state: SGD's momentum,
    AdamW's moments) gives exactly the uninterrupted run's weights."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = _fit(tmp_path, "whole.pt", 4, optimizer=optimizer)
        half = _fit(tmp_path, "half.pt", 2, optimizer=optimizer)
        resumed = _fit(tmp_path, "resumed.pt", 4, resume=half, optimizer=optimizer)
    finally:
        torch.set_num_threads(threads)
    assert half["step"] == 2 and resumed["step"] == whole["step"] == 4
    assert not torch.equal(
        half["model"]["encoder.conv1.weight"], whole["model"]["encoder.conv1.weight"]
    )
    for key, value in whole["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def test_batch_of_one_per_process_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="BatchNorm needs at least 2"):
        _fit(tmp_path, "one.pt", 1, batch_size=1)


def test_only_a_batchnorm_after_image_pooling_needs_two_images():
    """DeepLabV3+'s image-pooling branch normalises one value per channel and image; a
    BatchNorm over pixels (the official SegFormer head's, trained at 1 image per GPU) does not
    need two images, and a frozen one needs none."""
    from halo.models.segmenter import build_backbone

    assert T._pooled_batchnorm(build_backbone("deeplabv3plus-r18", 5).decoder)
    frozen = build_backbone("deeplabv3plus-r18", 5, frozen_bn=True)
    assert not T._pooled_batchnorm(frozen.decoder)
    segformer = build_backbone("segformer-b0", 5, decoder="official", embed_dim=256)
    assert not T._pooled_batchnorm(segformer.decoder)
    segformer.train()(torch.rand(1, 3, 64, 64)).logits.sum().backward()  # batch 1 trains


def test_an_optimiser_state_of_another_kind_is_refused(tmp_path):
    half = _fit(tmp_path, "half.pt", 2, optimizer="sgd")
    with pytest.raises(
        ValueError, match=r"holds a sgd optimiser state; train\.optimizer is 'adamw'"
    ):
        _fit(tmp_path, "other.pt", 4, resume=half, optimizer="adamw")


def test_the_rounds_train_at_their_own_rate(tmp_path):
    """An active run's curve follows train.round_lr and train.round_warmup_steps; a source run's
    the common rate (the curve is what MLflow plots as train/lr)."""
    active = _fit(tmp_path, "a.pt", 4, protocol="active", round_lr=0.004, round_warmup_steps=2)
    assert [round(c[2], 12) for c in active["curve"]] == [
        round(0.004 * T.lr_factor(s, 4, warmup=2, power=0.9), 12) for s in range(4)
    ]
    rates = sorted(g["initial_lr"] for g in active["optimizer"]["param_groups"])
    assert rates[0] == pytest.approx(0.004) and rates[-1] == pytest.approx(0.04)  # head x10
    source = _fit(tmp_path, "s.pt", 4, round_lr=0.004, round_warmup_steps=2)
    assert [round(c[2], 12) for c in source["curve"]] == [
        round(1e-3 * T.lr_factor(s, 4, warmup=1, power=0.9), 12) for s in range(4)
    ]


def test_a_continued_round_takes_the_configs_rates_and_the_saved_moments(tmp_path):
    """Continuing a round's optimiser state keeps its moments but this config's hyperparameters:
    load_state_dict alone would bring back the saved base rates and betas."""
    _fit(tmp_path, "half.pt", 2, protocol="active", optimizer="adamw", round_lr=0.004)
    half = tmp_path / "half.pt"  # loaded anew for each run: training moves the state it loads
    same = _fit(
        tmp_path,
        "same.pt",
        4,
        resume=load_checkpoint(half),
        protocol="active",
        optimizer="adamw",
        round_lr=0.004,
    )
    other = _fit(
        tmp_path,
        "other.pt",
        4,
        resume=load_checkpoint(half),
        protocol="active",
        optimizer="adamw",
        round_lr=0.002,
        adam_beta2=0.99,
    )
    groups = other["optimizer"]["param_groups"]
    assert sorted(g["initial_lr"] for g in groups) == pytest.approx([0.002, 0.02])
    assert {tuple(g["betas"]) for g in groups} == {(0.9, 0.99)}
    assert [c[2] for c in other["curve"][2:]] == pytest.approx(
        [0.002 * T.lr_factor(s, 4, warmup=1, power=0.9) for s in (2, 3)]
    )
    # the moments continued (AdamW's step count is 4, not 2) and the two runs differ
    assert max(int(st["step"]) for st in other["optimizer"]["state"].values()) == 4
    key = "encoder.conv1.weight"
    assert not torch.equal(same["model"][key], other["model"][key])


def test_warmup_starts_at_its_factor_and_a_zero_start_is_the_plain_ramp() -> None:
    plain = [T.lr_factor(s, 100, warmup=10, power=0.5) for s in range(100)]
    zero = [T.lr_factor(s, 100, warmup=10, power=0.5, start=0.0) for s in range(100)]
    assert plain == zero  # bit for bit: the default changes nothing
    f = [T.lr_factor(s, 100, warmup=10, power=0.5, start=0.01) for s in range(100)]
    assert f[0] == pytest.approx(0.01 + 0.99 * 0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in itertools.pairwise(f[:10]))
    assert f[10:] == plain[10:]  # the decay does not depend on where the ramp started


@pytest.mark.parametrize("start", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("warmup", [1, 7, 600])
def test_a_warmup_without_shift_is_torchs_linear_lr_stepped_after_each_step(start, warmup) -> None:
    """``shift=0`` gives the official schedule: ``LinearLR(start_factor, total_iters=W)`` stepped
    after every optimiser step (the rate of step t is the factor before its t-th scheduler
    step), then the decay from the warm-up's end; ``shift=1`` is the same ramp one step on."""
    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start, total_iters=warmup)
    official = []
    for _ in range(warmup + 1):
        official.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [
        T.lr_factor(s, 2000, warmup=warmup, power=0.5, start=start, shift=0)
        for s in range(warmup + 1)
    ]
    assert ours == pytest.approx(official, rel=1e-12, abs=1e-12)
    ahead = [T.lr_factor(s, 2000, warmup=warmup, power=0.5, start=start) for s in range(warmup)]
    assert ahead == pytest.approx(official[1:], rel=1e-12, abs=1e-12)


def test_a_batch_of_one_trains_when_the_decoder_batchnorm_is_frozen(tmp_path):
    """The official recipe's FrozenBatchNorm makes one image a process trainable (the HFR's
    BatchNorm runs over pixels)."""
    from halo.models.segmenter import build_backbone

    torch.manual_seed(0)
    model = build_backbone("deeplabv3plus-r18", 5, encoder_weights=None, frozen_bn=True)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "running_mean" in k}
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.rand(2, 3, 32, 64, generator=gen), torch.randint(0, 5, (2, 32, 64))
    source = [{"image": images[i], "label": labels[i]} for i in range(2)]
    cfg = TrainConfig(batch_size=1, source_steps=2, warmup_steps=0, checkpoint_every=10)
    T.train(model, protocol="source", schedule=T.Schedule(0, 2, 2), cfg=cfg, seed=0,
            checkpoint=tmp_path / "c.pt", source=source, progress=False)  # fmt: skip
    after = model.state_dict()
    for k, v in frozen.items():
        if k.startswith(("encoder.", "decoder.")):
            assert torch.equal(after[k], v), k  # frozen statistics never move


def _lcr_reference(logits, labels):
    """The official LocalConsistentLoss (l1), written out with loops over the 3x3 offsets."""
    p = logits.softmax(dim=1)
    padded = F.pad(p, (1, 1, 1, 1), mode="replicate")
    h, w = labels.shape[-2:]
    mean = sum(padded[..., i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9
    lab = F.pad(labels.float(), (1, 1, 1, 1))  # zero padding
    lap = 8 * labels.float() - sum(
        lab[..., i : i + h, j : j + w] for i in range(3) for j in range(3) if (i, j) != (1, 1)
    )
    mask = (lap.long() != 0) & (labels != 255)
    return (p - mean).abs().sum(dim=1)[mask].mean()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9))
def test_local_consistency_is_the_official_loss(seed, b, h, w):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, 5, h, w, generator=g) * 3
    labels = torch.randint(0, 5, (b, h, w), generator=g)
    labels[torch.rand(b, h, w, generator=g) < 0.2] = 255
    got = T.local_consistency_loss(logits, labels)
    want = _lcr_reference(logits, labels)
    if torch.isnan(want):  # no edge pixel: the official mean of nothing; ours is 0
        assert got.item() == 0.0
    else:
        assert torch.allclose(got, want, atol=1e-6)


def test_local_consistency_is_zero_for_a_constant_prediction_and_has_gradients():
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[:, :, 3:] = 1
    flat = torch.zeros(1, 3, 6, 6, requires_grad=True)
    assert abs(T.local_consistency_loss(flat, labels).item()) < 1e-6  # float rounding of 1/9
    noisy = torch.randn(1, 3, 6, 6, requires_grad=True)
    T.local_consistency_loss(noisy, labels).backward()
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0
