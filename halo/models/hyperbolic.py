"""Poincaré-ball operations for the hyperbolic head: pure tensor functions.

Curvature is ``c > 0`` everywhere in this module (the ball has sectional curvature ``-c`` and
radius ``1/sqrt(c)``); geoopt's ``k = -c`` convention appears only where geoopt is called (the
tests, which check every function here against ``geoopt.manifolds.stereographic.math``).

The functions follow geoopt's definitions exactly but are written for the segmentation head's
layout (channels on ``dim=1``, every pixel at once) and for float32 safety near the boundary:

* :func:`expmap0` matches geoopt's ``project(expmap0(v))``: the projection onto the ball of
  norm ``(1 - eps)/sqrt(c)`` (``eps`` dtype-aware, as geoopt's ``project``) is done by capping the
  tangent norm before ``tanh``, which is the same map without a second norm.
* :func:`mlr_logits` is HALO's hyperbolic multinomial logistic regression,
  ``logit_k(x) = 2 ||a_k|| d±(x, H_{p_k, a_k})`` with geoopt's signed ``dist2plane``. The Möbius
  addition ``(-p_k) ⊕ x`` is expanded algebraically (see the function's docstring), so the whole
  map costs one ``[K, D] x [D, pixels]`` matrix product plus elementwise work on ``[B, K, H, W]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "ball_eps",
    "expmap0",
    "max_tangent_norm",
    "mlr_logits",
    "radius",
    "radius_of_norm",
    "tangent_radius",
]

# geoopt's ``project`` boundary epsilon: float32 keeps ||x|| <= (1 - 4e-3)/sqrt(c), float64 1e-5.
_BALL_EPS = {torch.float64: 1e-5, torch.float32: 4e-3, torch.float16: 1e-2, torch.bfloat16: 1e-2}
# Smallest norm used as a divisor (geoopt's MIN_NORM).
_MIN_NORM = 1e-15


def _check_curvature(c: float) -> float:
    if isinstance(c, Tensor):
        raise TypeError("c must be a Python float > 0 (the ball's curvature is -c), got a Tensor")
    c = float(c)
    if not math.isfinite(c) or c <= 0.0:
        raise ValueError(f"c must be a finite float > 0 (the ball's curvature is -c), got {c}")
    return c


def _check_floating(name: str, t: Tensor) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")


def ball_eps(dtype: torch.dtype) -> float:
    """Boundary epsilon for ``dtype``, as geoopt's ``project`` uses it.

    Points are kept at ``||x|| <= (1 - eps) / sqrt(c)``.

    Args:
        dtype: a floating dtype.

    Returns:
        ``4e-3`` for float32, ``1e-5`` for float64, ``1e-2`` for float16/bfloat16.
    """
    try:
        return _BALL_EPS[dtype]
    except KeyError:
        raise TypeError(
            f"dtype must be one of {sorted(str(d) for d in _BALL_EPS)}, got {dtype}"
        ) from None


def max_tangent_norm(dtype: torch.dtype, *, c: float) -> float:
    """Largest tangent norm ``||v||`` whose ``expmap0`` stays inside the projection cap.

    ``||expmap0(v)|| = tanh(sqrt(c) ||v||) / sqrt(c)``, so the cap ``(1 - eps)/sqrt(c)`` is reached
    at ``||v|| = artanh(1 - eps) / sqrt(c)`` (≈ 3.106 for float32 and c = 1, i.e. a ball radius
    of ≈ 6.21).

    Args:
        dtype: a floating dtype (selects ``eps``, see :func:`ball_eps`).
        c: curvature, ``> 0``.

    Returns:
        The cap as a Python float.
    """
    c = _check_curvature(c)
    return math.atanh(1.0 - ball_eps(dtype)) / math.sqrt(c)


def expmap0(v: Tensor, *, c: float, dim: int = -1, project: bool = True) -> Tensor:
    """Exponential map at the origin of the Poincaré ball of curvature ``-c``.

    ``expmap0(v) = tanh(sqrt(c) ||v||) v / (sqrt(c) ||v||)`` (geoopt's ``expmap0`` with
    ``k = -c``). With ``project=True`` the result is kept at ``||x|| <= (1 - eps)/sqrt(c)`` with
    geoopt's dtype-aware ``eps`` (:func:`ball_eps`) — identical to geoopt's ``project`` but done
    by capping the tangent norm, so no second norm is computed.

    Args:
        v: tangent vectors at the origin, any shape ``[..., D, ...]``, floating dtype.
        c: curvature, ``> 0``.
        dim: the vector dimension of ``v`` (``1`` for ``[B, D, H, W]`` feature maps).
        project: cap the norm as geoopt's ``project`` does (default).

    Returns:
        Ball points, same shape, dtype and device as ``v``.
    """
    _check_floating("v", v)
    c = _check_curvature(c)
    sqrt_c = math.sqrt(c)
    norm = torch.linalg.vector_norm(v, dim=dim, keepdim=True).clamp_min(_MIN_NORM)
    arg = norm * sqrt_c
    if project:
        arg = arg.clamp_max(math.atanh(1.0 - ball_eps(v.dtype)))
    return v * (torch.tanh(arg) / (norm * sqrt_c))


def radius(x: Tensor, *, c: float, dim: int = -1, keepdim: bool = False) -> Tensor:
    """Hyperbolic distance from the origin, ``d(0, x) = (2/sqrt(c)) artanh(sqrt(c) ||x||)``.

    ``sqrt(c) ||x||`` is clamped below 1 (by the dtype's machine epsilon) so points on or past the
    boundary give a large finite value, not ``inf``.

    Args:
        x: ball points, any shape ``[..., D, ...]``, floating dtype.
        c: curvature, ``> 0``.
        dim: the vector dimension of ``x``.
        keepdim: keep ``dim`` as size 1.

    Returns:
        Radii ``>= 0``, ``x``'s shape without ``dim`` (or with size 1), ``x``'s dtype.
    """
    _check_floating("x", x)
    return radius_of_norm(torch.linalg.vector_norm(x, dim=dim, keepdim=keepdim), c=c)


def radius_of_norm(norm: Tensor, *, c: float) -> Tensor:
    """:func:`radius` from the points' Euclidean norms ``||x||`` (any shape, floating): for
    callers that accumulate the norm themselves (e.g. over channel chunks)."""
    _check_floating("norm", norm)
    c = _check_curvature(c)
    sqrt_c = math.sqrt(c)
    scaled = (norm * sqrt_c).clamp_max(1.0 - torch.finfo(norm.dtype).eps)
    return torch.atanh(scaled) * (2.0 / sqrt_c)


def tangent_radius(v: Tensor, *, dim: int = -1, keepdim: bool = False) -> Tensor:
    """Radius of ``expmap0(v, project=False)`` from its tangent vector: ``2 ||v||``, for every c.

    ``d(0, expmap0(v)) = (2/sqrt(c)) artanh(tanh(sqrt(c) ||v||)) = 2 ||v||`` exactly, so unlike
    :func:`radius` of a projected point it never saturates at the projection cap (docs/design.md, "The method").

    Args:
        v: tangent vectors at the origin, any shape ``[..., D, ...]``, floating dtype.
        dim: the vector dimension of ``v``.
        keepdim: keep ``dim`` as size 1.

    Returns:
        Radii ``>= 0``, ``v``'s shape without ``dim`` (or with size 1), ``v``'s dtype.
    """
    _check_floating("v", v)
    return 2.0 * torch.linalg.vector_norm(v, dim=dim, keepdim=keepdim)


def mlr_logits(x: Tensor, p: Tensor, a: Tensor, *, c: float) -> Tensor:
    """Hyperbolic multinomial logistic regression logits for every pixel at once.

    ``logit_k(x) = 2 ||a_k|| d±(x, H_k)`` where ``d±`` is the signed distance from ``x`` to the
    gyroplane ``H_k`` through ``p_k`` with normal ``a_k`` (geoopt's ``dist2plane(x, p_k, a_k,
    k=-c, signed=True)``). The constant 2 replaces Ganea et al.'s conformal factor
    ``λ_{p_k} = 2/(1 - c||p_k||²)``, as in the official HALO code.

    With ``u = -p_k ⊕ x`` (Möbius addition) and ``â = a/||a||``,
    ``d± = asinh(2 sqrt(c) <u, â> / (1 - c||u||²)) / sqrt(c)``. Writing
    ``u = (A (-p) + B x) / D`` with ``A = 1 - 2c<p,x> + c||x||²``, ``B = 1 - c||p||²`` and the
    gyro identity ``1 - c||u||² = B (1 - c||x||²) / D``, the denominator ``D`` cancels and

    ``asinh argument = 2 sqrt(c) / (1 - c||x||²) * (<x, w_k> - (1 + c||x||²) γ_k)``,
    ``γ_k = <p_k, â_k> / (1 - c||p_k||²)``, ``w_k = â_k + 2 c γ_k p_k``,

    so one ``[K, D] @ [D, pixels]`` product and elementwise ops on ``[B, K, H, W]`` suffice: no
    ``[B, K, D, H, W]`` tensor, no clamp on ``D``. ``1 - c||x||²`` and ``1 - c||p||²`` are clamped
    at the projection cap's value ``1 - (1 - eps)²`` (:func:`ball_eps`), so points on or past the
    boundary give finite logits and gradients; inside the cap the result is geoopt's exactly.

    Args:
        x: ball points ``[B, D, H, W]`` (any trailing spatial dims ``[B, D, *S]``), floating.
        p: class points in the ball ``[K, D]``, same dtype/device as ``x``.
        a: class normals (tangent vectors at ``p``) ``[K, D]``, same dtype/device as ``x``.
        c: curvature, ``> 0``.

    Returns:
        Logits ``[B, K, H, W]`` (``[B, K, *S]``), ``x``'s dtype and device.
    """
    _check_floating("x", x)
    _check_floating("p", p)
    _check_floating("a", a)
    c = _check_curvature(c)
    if x.dim() < 2:
        raise ValueError(f"x must be [B, D, H, W] (or [B, D, *S]), got shape {tuple(x.shape)}")
    if p.dim() != 2 or a.shape != p.shape or p.shape[1] != x.shape[1]:
        raise ValueError(
            "p and a must both be [K, D] with D = x.shape[1] = "
            f"{x.shape[1]}, got p {tuple(p.shape)} and a {tuple(a.shape)}"
        )
    if p.dtype != x.dtype or a.dtype != x.dtype:
        raise TypeError(f"x, p and a must share a dtype, got {x.dtype}, {p.dtype}, {a.dtype}")

    sqrt_c = math.sqrt(c)
    eps = ball_eps(x.dtype)
    floor = 1.0 - (1.0 - eps) ** 2  # 1 - c||y||² at the projection cap

    # Per-class constants, [K] and [K, D].
    a_norm = torch.linalg.vector_norm(a, dim=1).clamp_min(_MIN_NORM)
    a_hat = a / a_norm[:, None]
    p_sq = (p * p).sum(dim=1)
    gamma = (p * a_hat).sum(dim=1) / (1.0 - c * p_sq).clamp_min(floor)
    w = a_hat + (2.0 * c) * gamma[:, None] * p

    # Per-pixel quantities, [B, 1, N] and [B, K, N].
    batch, dim = x.shape[:2]
    x_flat = x.reshape(batch, dim, -1)
    x_sq = (x_flat * x_flat).sum(dim=1, keepdim=True)
    scale = (2.0 * sqrt_c) / (1.0 - c * x_sq).clamp_min(floor)
    xw = torch.matmul(w, x_flat)
    arg = scale * xw - (scale * (1.0 + c * x_sq)) * gamma[None, :, None]
    logits = torch.asinh(arg) * ((2.0 / sqrt_c) * a_norm)[None, :, None]
    return logits.reshape(batch, p.shape[0], *x.shape[2:])
