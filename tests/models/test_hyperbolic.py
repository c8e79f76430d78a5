"""Poincaré-ball ops against geoopt's float64 evaluation (geoopt's own test style).

Seeds x dtypes x curvatures, points from the origin up to (and past) the projection cap. The
float64 references go through ``geoopt.manifolds.stereographic.math`` with ``k = -c``.
"""

from __future__ import annotations

import math

import geoopt.manifolds.stereographic.math as gmath
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from halo.models.hyperbolic import (
    ball_eps,
    expmap0,
    max_tangent_norm,
    mlr_logits,
    radius,
    tangent_radius,
)

SEEDS = range(4)
DTYPES = [torch.float32, torch.float64]
CURVATURES = [0.1, 1.0, 3.0]
# The acceptance tolerances: relative error to geoopt's float64 evaluation.
RTOL = {torch.float32: 1e-4, torch.float64: 1e-6}


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def gen(request) -> torch.Generator:
    return torch.Generator().manual_seed(request.param)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(params=CURVATURES, ids=lambda c: f"c{c}")
def c(request) -> float:
    return request.param


def _k(c: float) -> torch.Tensor:
    return torch.tensor(-c, dtype=torch.float64)


def _tangents(shape, dim, max_norm, gen, *, include_cap=True) -> torch.Tensor:
    """Float64 tangent vectors with random directions and norms in [0, max_norm].

    With ``include_cap`` the first vector along the batch has norm exactly ``max_norm``.
    """
    v = torch.randn(shape, generator=gen, dtype=torch.float64)
    v = v / torch.linalg.vector_norm(v, dim=dim, keepdim=True)
    norm_shape = list(shape)
    norm_shape[dim] = 1
    norms = torch.rand(norm_shape, generator=gen, dtype=torch.float64) * max_norm
    if include_cap:
        norms.view(-1)[0] = max_norm
    return v * norms


def _ref_mlr(x: torch.Tensor, p: torch.Tensor, a: torch.Tensor, c: float) -> torch.Tensor:
    """``2 ||a_k|| dist2plane(x, p_k, a_k, signed=True)`` in float64 through geoopt, [B, K, H, W].

    geoopt's ``arsinh`` is ``log(z + sqrt(1 + z^2))``, which cancels for large negative ``z``
    (that is, far on the negative side near the boundary), so each distance is taken from the
    side where it is positive: ``d(x; p, a) = -d(x; p, -a)``.
    """
    x64 = x.double().movedim(1, -1)[..., None, :]  # [B, H, W, 1, D]
    p64, a64 = p.double(), a.double()
    d_pos = gmath.dist2plane(x64, p64, a64, k=_k(c), signed=True)  # [B, H, W, K]
    d_neg = -gmath.dist2plane(x64, p64, -a64, k=_k(c), signed=True)
    d = torch.where(d_pos > 0, d_pos, d_neg)
    return (2.0 * torch.linalg.vector_norm(a64, dim=-1) * d).movedim(-1, 1)


def _assert_close_to_ref(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    """Relative error within RTOL[dtype]; values near 0 are judged against the map's scale.

    A logit near 0 is a difference of O(scale) terms, so no float32 evaluation is relatively
    accurate there; the absolute floor is RTOL x the mean |logit|, still far below any error a
    wrong formula (a missing factor, a wrong sign) would give.
    """
    assert out.dtype == dtype
    rtol = RTOL[dtype]
    atol = rtol * ref.abs().mean().item()
    torch.testing.assert_close(out.double(), ref, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# expmap0, radius


def test_ball_eps_follows_geoopt_project() -> None:
    assert ball_eps(torch.float32) == 4e-3
    assert ball_eps(torch.float64) == 1e-5
    with pytest.raises(TypeError, match="dtype"):
        ball_eps(torch.int64)


@pytest.mark.parametrize("scale", [0.3, 1.0, 3.0])
def test_expmap0_matches_geoopt(gen, dtype, c, scale) -> None:
    # Up to 3x the cap: beyond it, geoopt's project() and our tangent cap must agree.
    v = _tangents((50, 16), -1, scale * max_tangent_norm(dtype, c=c), gen).to(dtype)
    out = expmap0(v, c=c)
    ref = gmath.project(gmath.expmap0(v.double(), k=_k(c)), k=_k(c), eps=ball_eps(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref, rtol=RTOL[dtype], atol=0.0)


def test_expmap0_unprojected_matches_geoopt(gen, c) -> None:
    v = _tangents((50, 16), -1, 10.0 / math.sqrt(c), gen)
    torch.testing.assert_close(
        expmap0(v, c=c, project=False), gmath.expmap0(v, k=_k(c)), rtol=1e-12, atol=0.0
    )


def test_expmap0_channel_dim(gen, c) -> None:
    v = _tangents((2, 8, 3, 5), 1, 4.0, gen)
    by_channel = expmap0(v, c=c, dim=1)
    by_last = expmap0(v.movedim(1, -1), c=c).movedim(-1, 1)
    torch.testing.assert_close(by_channel, by_last, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("norm", [0.0, 1e-20, 1e-3, 10.0, 1e6, 1e30])
def test_expmap0_finite_and_capped(dtype, c, norm) -> None:
    v = torch.full((4, 16), norm / 4.0, dtype=dtype, requires_grad=True)
    x = expmap0(v, c=c)
    cap = (1.0 - ball_eps(dtype)) / math.sqrt(c)
    assert torch.isfinite(x).all()
    assert (torch.linalg.vector_norm(x, dim=-1) <= cap * (1 + 4 * torch.finfo(dtype).eps)).all()
    x.sum().backward()
    assert torch.isfinite(v.grad).all()


def test_radius_matches_geoopt_dist0(gen, dtype, c) -> None:
    x = expmap0(_tangents((50, 16), -1, max_tangent_norm(dtype, c=c), gen), c=c).to(dtype)
    ref = gmath.dist0(x.double(), k=_k(c))
    torch.testing.assert_close(radius(x, c=c).double(), ref, rtol=RTOL[dtype], atol=0.0)


def test_radius_finite_on_and_past_boundary(dtype, c) -> None:
    direction = torch.ones(3, 8, dtype=dtype) / math.sqrt(8)
    scales = torch.tensor([1.0, 1.0 + 1e-7, 2.0], dtype=dtype)[:, None] / math.sqrt(c)
    x = (direction * scales).requires_grad_(True)
    r = radius(x, c=c)
    assert torch.isfinite(r).all() and (r > 0).all()
    r.sum().backward()
    assert torch.isfinite(x.grad).all()


@settings(max_examples=50, deadline=None)
@given(
    norm=st.floats(min_value=0.0, max_value=5.0),
    c=st.floats(min_value=0.05, max_value=5.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_tangent_radius_is_distance_of_expmap0(norm, c, seed) -> None:
    # d(0, expmap0(v)) = 2 ||v|| for every c (docs/design.md, "The method"), checked in float64 through geoopt.
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(16, generator=gen, dtype=torch.float64)
    v = v / torch.linalg.vector_norm(v) * norm / math.sqrt(c)
    x = gmath.expmap0(v, k=_k(c))
    torch.testing.assert_close(tangent_radius(v), gmath.dist0(x, k=_k(c)), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(radius(x, c=c), gmath.dist0(x, k=_k(c)), rtol=1e-9, atol=1e-12)


def test_tangent_radius_does_not_saturate_at_the_cap(c) -> None:
    # The projected point's radius stops at the cap (~6.2 in float32), the tangent one does not.
    v = torch.zeros(3, 16)
    v[:, 0] = torch.tensor([1.0, 5.0, 20.0]) / math.sqrt(c)
    cap_radius = 2.0 * max_tangent_norm(torch.float32, c=c)
    r_point = radius(expmap0(v, c=c), c=c)
    torch.testing.assert_close(r_point[1:], torch.full((2,), cap_radius), rtol=1e-4, atol=0.0)
    torch.testing.assert_close(tangent_radius(v), 2.0 * v[:, 0], rtol=1e-6, atol=0.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_curvature_must_be_positive(bad) -> None:
    with pytest.raises(ValueError, match="c must be"):
        expmap0(torch.ones(2, 3), c=bad)
    with pytest.raises(ValueError, match="c must be"):
        radius(torch.ones(2, 3) * 0.1, c=bad)


def test_curvature_tensor_rejected() -> None:
    with pytest.raises(TypeError, match="Python float"):
        expmap0(torch.ones(2, 3), c=torch.tensor(1.0))


def test_integer_input_rejected() -> None:
    with pytest.raises(TypeError, match="floating"):
        expmap0(torch.ones(2, 3, dtype=torch.int64), c=1.0)


# ---------------------------------------------------------------------------------------------
# mlr_logits


def _mlr_inputs(gen, dtype, c, *, x_scale=1.0, p_scale=0.5, shape=(2, 16, 5, 7), classes=7):
    """Ball points x [B, D, H, W] and class points/normals [K, D] in ``dtype``.

    ``x_scale`` / ``p_scale`` are fractions of the dtype's tangent cap (1.0 reaches the cap).
    """
    cap = max_tangent_norm(dtype, c=c)
    x = expmap0(_tangents(shape, 1, x_scale * cap, gen), c=c, dim=1).to(dtype)
    p = expmap0(_tangents((classes, shape[1]), 1, p_scale * cap, gen), c=c).to(dtype)
    a = torch.randn(classes, shape[1], generator=gen, dtype=torch.float64).to(dtype)
    return x, p, a


@pytest.mark.parametrize("x_scale", [0.2, 0.7, 1.0], ids=["center", "mid", "boundary"])
def test_mlr_logits_matches_geoopt_dist2plane(gen, dtype, c, x_scale) -> None:
    x, p, a = _mlr_inputs(gen, dtype, c, x_scale=x_scale)
    _assert_close_to_ref(mlr_logits(x, p, a, c=c), _ref_mlr(x, p, a, c), dtype)


def test_mlr_logits_class_points_near_boundary(gen, dtype, c) -> None:
    x, p, a = _mlr_inputs(gen, dtype, c, x_scale=1.0, p_scale=0.9)
    _assert_close_to_ref(mlr_logits(x, p, a, c=c), _ref_mlr(x, p, a, c), dtype)


def test_mlr_logits_at_head_size(gen, dtype) -> None:
    # HALO's head: D = 64, K = 19.
    x, p, a = _mlr_inputs(gen, dtype, 1.0, shape=(2, 64, 6, 10), classes=19)
    _assert_close_to_ref(mlr_logits(x, p, a, c=1.0), _ref_mlr(x, p, a, 1.0), dtype)


def test_mlr_logits_zero_on_the_class_plane(gen, dtype, c) -> None:
    # x = p_k lies on the gyroplane H_k, so logit_k(p_k) = 0; a step along a_k makes it positive.
    _, p, a = _mlr_inputs(gen, dtype, c, classes=5)
    x = p.T[None, :, :, None]  # [1, D, K, 1]: pixel j is p_j
    logits = mlr_logits(x, p, a, c=c)[0, :, :, 0]  # [K, K]
    scale = logits.abs().mean().item()
    torch.testing.assert_close(
        torch.diagonal(logits), torch.zeros(5, dtype=dtype), rtol=0, atol=RTOL[dtype] * scale
    )
    step = p + 1e-2 * a / torch.linalg.vector_norm(a, dim=1, keepdim=True) / math.sqrt(c)
    stepped = mlr_logits(step.T[None, :, :, None], p, a, c=c)[0, :, :, 0]
    assert (torch.diagonal(stepped) > 0).all()


def test_mlr_logits_grads_match_geoopt(gen, c) -> None:
    x, p, a = _mlr_inputs(gen, torch.float32, c, x_scale=0.9)
    weights = torch.randn(x.shape[0], p.shape[0], *x.shape[2:], generator=gen)
    leaves = [t.clone().requires_grad_(True) for t in (x, p, a)]
    (mlr_logits(*leaves, c=c) * weights).sum().backward()
    refs = [t.double().requires_grad_(True) for t in (x, p, a)]
    (_ref_mlr(*refs, c) * weights.double()).sum().backward()
    for name, ours, ref in zip("xpa", leaves, refs, strict=True):
        scale = ref.grad.abs().mean().item()
        torch.testing.assert_close(
            ours.grad.double(), ref.grad, rtol=1e-3, atol=1e-3 * scale, msg=f"grad of {name}"
        )


def test_mlr_logits_gradcheck(gen) -> None:
    x, p, a = _mlr_inputs(gen, torch.float64, 1.0, x_scale=0.8, shape=(1, 4, 2, 3), classes=3)
    inputs = tuple(t.requires_grad_(True) for t in (x, p, a))
    assert torch.autograd.gradcheck(lambda *t: mlr_logits(*t, c=1.0), inputs)


@pytest.mark.parametrize("norm", [1.0 - 1e-3, 1.0, 1.0 + 1e-7, 1.5, 1e3])
def test_mlr_logits_finite_on_and_past_boundary(gen, dtype, c, norm) -> None:
    # ||x|| -> 1/sqrt(c) (and beyond, which the head never produces): finite values and grads.
    x, p, a = _mlr_inputs(gen, dtype, c)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * (norm / math.sqrt(c))
    p = p / torch.linalg.vector_norm(p, dim=1, keepdim=True) * (norm / math.sqrt(c))
    leaves = [t.clone().requires_grad_(True) for t in (x, p, a)]
    logits = mlr_logits(*leaves, c=c)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    for t in leaves:
        assert torch.isfinite(t.grad).all()


def test_mlr_logits_zero_normal_finite(dtype) -> None:
    x = torch.full((1, 4, 2, 2), 0.1, dtype=dtype)
    p = torch.zeros(3, 4, dtype=dtype, requires_grad=True)
    a = torch.zeros(3, 4, dtype=dtype, requires_grad=True)
    logits = mlr_logits(x, p, a, c=1.0)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("spatial", [(), (7,), (3, 5), (2, 3, 4)])
def test_mlr_logits_shape(gen, spatial) -> None:
    x = expmap0(torch.randn(2, 8, *spatial, generator=gen), c=1.0, dim=1)
    p = expmap0(torch.randn(5, 8, generator=gen), c=1.0)
    logits = mlr_logits(x, p, torch.randn(5, 8, generator=gen), c=1.0)
    assert logits.shape == (2, 5, *spatial)
    assert logits.dtype == torch.float32


def test_mlr_logits_bad_input() -> None:
    x, p, a = torch.zeros(1, 4, 2, 2), torch.zeros(3, 4), torch.ones(3, 4)
    with pytest.raises(ValueError, match=r"p and a must both be \[K, D\]"):
        mlr_logits(x, torch.zeros(3, 5), a, c=1.0)
    with pytest.raises(ValueError, match=r"p and a must both be \[K, D\]"):
        mlr_logits(x, p, torch.ones(2, 4), c=1.0)
    with pytest.raises(ValueError, match=r"x must be \[B, D, H, W\]"):
        mlr_logits(torch.zeros(4), p, a, c=1.0)
    with pytest.raises(TypeError, match="share a dtype"):
        mlr_logits(x, p.double(), a, c=1.0)
    with pytest.raises(ValueError, match="c must be"):
        mlr_logits(x, p, a, c=-1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mlr_logits_follows_the_device(gen) -> None:
    x, p, a = _mlr_inputs(gen, torch.float32, 1.0, x_scale=0.9)
    cpu = mlr_logits(x, p, a, c=1.0)
    cuda = mlr_logits(x.to("cuda"), p.to("cuda"), a.to("cuda"), c=1.0)
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-4, atol=1e-4 * cpu.abs().mean().item())
    v = torch.randn(4, 8, device="cuda")
    assert expmap0(v, c=1.0).device == v.device
    assert radius(expmap0(v, c=1.0), c=1.0).device == v.device
