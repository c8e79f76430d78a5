"""Heads: registry, output contract, HFR, hyperbolic numerics, and a toy training run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from halo.models.heads import (
    HEADS,
    HFR,
    HFR_FLOOR,
    EuclideanHead,
    HeadOutput,
    HyperbolicHead,
    build_head,
    hfr_reweight,
)
from halo.models.hyperbolic import ball_eps, expmap0, mlr_logits, radius

SEEDS = range(3)


def _features(seed: int, shape=(2, 32, 6, 9), dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------------------------------------
# registry and output contract


def test_registry_names() -> None:
    assert set(HEADS) == {"euclidean", "hyperbolic"}
    assert all(name == name.lower() for name in HEADS)


def test_unknown_head_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown head 'poincare'.*euclidean, hyperbolic"):
        build_head("poincare", 32, 5)


def test_head_name_case_insensitive() -> None:
    assert isinstance(build_head("Hyperbolic", 32, 5), HyperbolicHead)


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("seed", SEEDS)
def test_head_output_contract(name, seed) -> None:
    torch.manual_seed(seed)
    head = build_head(name, 32, 5)
    out = head(_features(seed))
    assert isinstance(out, HeadOutput)
    assert out.logits.shape == (2, 5, 6, 9)
    assert out.embeddings.shape == (2, head.embed_dim, 6, 9)
    assert out.radius.shape == (2, 6, 9)
    for t in out:
        assert t.dtype == torch.float32
        assert torch.isfinite(t).all()
    assert (out.radius >= 0).all()
    out.logits.sum().backward()
    for param in head.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_rejects_wrong_channels(name) -> None:
    head = build_head(name, 32, 5)
    with pytest.raises(ValueError, match="32 channels"):
        head(torch.randn(2, 16, 4, 4))
    with pytest.raises(ValueError, match=r"\[B, C, h, w\]"):
        head(torch.randn(2, 32, 4))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"curvature": 0.0}, "curvature"),
        ({"curvature": -1.0}, "curvature"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_hyperbolic_head_bad_options(options, match) -> None:
    with pytest.raises(ValueError, match=match):
        HyperbolicHead(32, 5, **options)


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        EuclideanHead(32, 0)
    with pytest.raises(ValueError, match="in_channels"):
        HyperbolicHead(-1, 5)


# ---------------------------------------------------------------------------------------------
# Euclidean head


def test_euclidean_embeddings_and_radius_are_the_features() -> None:
    head = EuclideanHead(32, 5)
    f = _features(0)
    out = head(f)
    torch.testing.assert_close(out.embeddings, f)
    torch.testing.assert_close(out.radius, torch.linalg.vector_norm(f, dim=1))
    torch.testing.assert_close(out.logits, head.classifier(f))


def test_euclidean_head_with_hfr_reports_the_reweighted_features() -> None:
    head = EuclideanHead(32, 5, hfr=True)
    out = head(_features(1))
    torch.testing.assert_close(out.radius, torch.linalg.vector_norm(out.embeddings, dim=1))
    torch.testing.assert_close(out.logits, head.classifier(out.embeddings))


# ---------------------------------------------------------------------------------------------
# HFR


@pytest.mark.parametrize("seed", SEEDS)
def test_hfr_weights_positive_even_when_the_mlp_is_negative(seed) -> None:
    torch.manual_seed(seed)
    hfr = HFR(16)
    f = _features(seed, (3, 16, 5, 5))
    assert (hfr.channel_weights(f) >= HFR_FLOOR).all()
    with torch.no_grad():
        hfr.mlp[-1].bias.fill_(-10.0)
    weights = hfr.channel_weights(f)
    torch.testing.assert_close(weights, torch.full_like(weights, HFR_FLOOR))


@pytest.mark.parametrize("seed", SEEDS)
def test_hfr_channel_maps_have_the_weight_as_norm(seed) -> None:
    # After HFR, channel d of image b has L2 norm (over pixels) equal to its weight w[b, d].
    hfr = HFR(16)
    f = _features(seed, (3, 16, 5, 7))
    out = hfr(f)
    norms = torch.linalg.vector_norm(out.flatten(2), dim=2)
    torch.testing.assert_close(norms, hfr.channel_weights(f), rtol=1e-5, atol=1e-7)


def test_hfr_matches_the_linear_formulation() -> None:
    # The official code runs Linear/BatchNorm1d/ReLU/Linear on the flattened pixels of the batch;
    # our 1x1-conv MLP must be the same map (training-mode BatchNorm included).
    torch.manual_seed(0)
    hfr = HFR(8)
    linear = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8))
    with torch.no_grad():
        for conv_i, lin_i in ((0, 0), (3, 3)):
            linear[lin_i].weight.copy_(hfr.mlp[conv_i].weight[:, :, 0, 0])
            linear[lin_i].bias.copy_(hfr.mlp[conv_i].bias)
    f = _features(1, (2, 8, 4, 6))
    pixels = f.permute(0, 2, 3, 1).reshape(-1, 8)
    expected = linear(pixels).view(2, 24, 8).mean(dim=1).clamp_min(HFR_FLOOR)
    torch.testing.assert_close(hfr.channel_weights(f), expected, rtol=1e-5, atol=1e-6)
    normalised = F.normalize(f.reshape(2, 8, 24), dim=-1).reshape_as(f)
    torch.testing.assert_close(hfr(f), normalised * expected[:, :, None, None])


def test_hfr_reweight_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"weights \[B, D\]"):
        hfr_reweight(torch.ones(2, 4, 3, 3), torch.ones(2, 5))


# ---------------------------------------------------------------------------------------------
# hyperbolic head


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("curvature", [0.5, 1.0, 2.0])
def test_hyperbolic_head_is_the_composition(seed, curvature) -> None:
    torch.manual_seed(seed)
    head = HyperbolicHead(32, 5, embed_dim=16, curvature=curvature)
    f = _features(seed)
    out = head(f)
    tangent = head.hfr(head.reduce(f))
    points = expmap0(tangent, c=curvature, dim=1)
    torch.testing.assert_close(out.embeddings, points)
    torch.testing.assert_close(out.radius, 2.0 * torch.linalg.vector_norm(tangent, dim=1))
    p = expmap0(head.class_tangents, c=curvature, dim=1)
    torch.testing.assert_close(out.logits, mlr_logits(points, p, head.normals, c=curvature))


def test_hyperbolic_radius_is_the_distance_of_the_embedding() -> None:
    head = HyperbolicHead(32, 5, hfr=False)
    out = head(_features(2) * 0.05)  # small tangents: far from the projection cap
    torch.testing.assert_close(out.radius, radius(out.embeddings, c=1.0, dim=1), rtol=1e-4, atol=0)


@pytest.mark.parametrize("curvature", [0.5, 1.0, 2.0])
def test_class_points_and_embeddings_stay_in_the_ball(curvature) -> None:
    head = HyperbolicHead(32, 5, curvature=curvature, hfr=False)
    with torch.no_grad():
        head.class_tangents.mul_(1e4)  # what a huge SGD step could do to the tangent parameter
        head.reduce.weight.mul_(1e4)
    out = head(_features(0))
    cap = (1.0 - ball_eps(torch.float32)) / math.sqrt(curvature)
    tol = 1.0 + 1e-6
    assert (torch.linalg.vector_norm(head.class_points(), dim=1) <= cap * tol).all()
    assert (torch.linalg.vector_norm(out.embeddings, dim=1) <= cap * tol).all()
    assert torch.isfinite(out.logits).all()
    # The radius is read from the tangent vector, so it does not stop at the cap.
    assert out.radius.max() > 10.0 * 2.0 * math.atanh(1.0 - ball_eps(torch.float32))


def test_hyperbolic_head_float64_precision_option() -> None:
    torch.manual_seed(0)
    head32 = HyperbolicHead(32, 5)
    head64 = HyperbolicHead(32, 5, precision="float64")
    head64.load_state_dict(head32.state_dict())
    f = _features(3)
    out32, out64 = head32(f), head64(f)
    assert out64.logits.dtype == torch.float32
    scale = out64.logits.abs().mean().item()
    torch.testing.assert_close(out32.logits, out64.logits, rtol=1e-4, atol=1e-4 * scale)
    out64.logits.sum().backward()
    assert head64.normals.grad.dtype == torch.float32


def test_hyperbolic_head_under_autocast_stays_float32() -> None:
    head = HyperbolicHead(32, 5)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = head(_features(4))
    assert out.logits.dtype == torch.float32
    assert out.embeddings.dtype == torch.float32
    assert torch.isfinite(out.logits).all()


def test_hyperbolic_head_follows_double_input() -> None:
    head = HyperbolicHead(32, 5).double()
    out = head(_features(5, dtype=torch.float64))
    assert out.logits.dtype == torch.float64 and out.radius.dtype == torch.float64


def test_parameters_are_plain_tensors() -> None:
    # Tangent parameterisation: plain torch optimisers (and DDP) work, no ManifoldParameter.
    head = HyperbolicHead(32, 5)
    assert all(type(p) is nn.Parameter for p in head.parameters())
    assert {n for n, _ in head.named_parameters()} >= {"class_tangents", "normals"}


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("seed", SEEDS)
def test_head_trains_on_a_toy_problem(name, seed) -> None:
    # Class-dependent feature means at every pixel; a few SGD steps must lower the loss, no NaN.
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    num_classes, channels = 4, 16
    centres = torch.randn(num_classes, channels, generator=gen) * 2.0
    labels = torch.randint(0, num_classes, (4, 8, 8), generator=gen)
    features = centres[labels].permute(0, 3, 1, 2) + 0.5 * torch.randn(
        4, channels, 8, 8, generator=gen
    )
    head = build_head(name, channels, num_classes)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = F.cross_entropy(head(features).logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        assert math.isfinite(losses[-1])
        assert all(torch.isfinite(p).all() for p in head.parameters())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(HEADS))
def test_head_follows_the_device(name) -> None:
    head = build_head(name, 32, 5).to("cuda")
    out = head(_features(0).to("cuda"))
    assert all(t.device.type == "cuda" for t in out)
    out.logits.sum().backward()


def test_hfr_without_normalisation_only_scales_and_keys_its_own_source_model():
    from halo.config import build_config, resolve
    from halo.models.heads import hfr_reweight

    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 4, 3, 5, generator=gen), torch.rand(2, 4, generator=gen) + 0.1
    torch.testing.assert_close(hfr_reweight(x, w, normalize=False), x * w[:, :, None, None])
    norms = hfr_reweight(x, w).flatten(2).norm(dim=2)
    torch.testing.assert_close(norms, w)  # normalised: each channel's norm is its weight
    raw = resolve(build_config(overrides=["model.hfr_normalize=false"]))
    assert raw.model_key == "hyperbolic-hfrraw" and raw.model_options["hfr_normalize"] is False
    assert resolve(build_config(overrides=[])).model_key == "hyperbolic-hfr"
    head = HyperbolicHead(8, 3, embed_dim=4, hfr_normalize=False)
    assert head.hfr.normalize is False
