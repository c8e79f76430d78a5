"""Optimisers and the learning-rate schedule of a training job.

The names are :data:`halo.choices.OPTIMIZERS` and :data:`halo.choices.SCHEDULES`; this module
holds the torch side: the builders the optimiser names point to, the rate factor of a step, and
how a continued run takes over a saved optimiser state.
"""

from __future__ import annotations

import torch
from torch import nn

from halo.choices import OPTIMIZERS, SCHEDULES
from halo.engine.checkpoint import unwrap

__all__ = ["adamw", "build_optimizer", "load_optimizer_state", "lr_factor", "riemannian_sgd", "sgd"]


def lr_factor(
    step: int,
    total: int,
    *,
    warmup: int,
    power: float,
    schedule: str = "poly",
    start: float = 0.0,
    shift: int = 1,
) -> float:
    """Learning-rate multiplier at global ``step`` of ``total``: linear warm-up, then decay.

    ``start + (1 − start) · (step + shift) / warmup`` for the first ``warmup`` steps (from
    ``start``, e.g. the official 0.01, towards 1; ``shift`` 0 is torch's ``LinearLR`` stepped
    after each optimiser step, 1 reaches 1 on the warm-up's last step), then with
    ``p = (step − warmup) / (total − warmup)`` either ``(1 − p)^power`` (``poly``) or
    ``(1 + cos(π p)) / 2`` (``cosine``): :data:`halo.choices.SCHEDULES`.
    """
    if step < warmup:
        return start + (1.0 - start) * (step + shift) / warmup
    p = min((step - warmup) / max(total - warmup, 1), 1.0)
    return SCHEDULES.lookup(schedule)(p, power)


def sgd(groups, *, lr, momentum, weight_decay, adam_beta2) -> torch.optim.Optimizer:
    """SGD with ``momentum``; ``weight_decay`` is L2 in the gradient."""
    del adam_beta2
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def adamw(groups, *, lr, momentum, weight_decay, adam_beta2) -> torch.optim.Optimizer:
    """AdamW with ``betas = (momentum, adam_beta2)`` and decoupled ``weight_decay``."""
    return torch.optim.AdamW(groups, lr=lr, betas=(momentum, adam_beta2), weight_decay=weight_decay)


def riemannian_sgd(groups, *, lr, momentum, weight_decay, adam_beta2) -> torch.optim.Optimizer:
    """geoopt's RiemannianSGD, the official HALO code's optimiser for hyperbolic models: on
    Euclidean parameters it is SGD, but its momentum buffer starts at the first gradient, so the
    first update is about 1.9× SGD's."""
    from geoopt.optim import RiemannianSGD

    del adam_beta2
    return RiemannianSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    head_lr_mult: float,
    momentum: float,
    weight_decay: float,
    optimizer: str = "sgd",
    adam_beta2: float = 0.999,
) -> torch.optim.Optimizer:
    """The ``optimizer`` of :data:`halo.choices.OPTIMIZERS` over the model's parameter groups
    (decoder and head at ``lr × head_lr_mult``); every group remembers its ``initial_lr`` for
    the schedule."""
    build = OPTIMIZERS.lookup(optimizer)  # an unknown name fails before the groups are made
    groups = unwrap(model).param_groups(lr, head_lr_scale=head_lr_mult)
    for g in groups:
        g["initial_lr"] = g["lr"]
    return build(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, adam_beta2=adam_beta2)


def _saved_kind(saved: dict) -> str:
    group = (saved.get("param_groups") or [{}])[0]
    return "adamw" if "betas" in group else "riemannian-sgd" if "stabilize" in group else "sgd"


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict, name: str) -> None:
    """Continue ``saved`` (a checkpoint's optimiser state) in ``optimizer`` (``name`` of
    :data:`~halo.choices.OPTIMIZERS`): the saved moments and step counts continue; the
    hyperparameters (base rates, betas, momentum, decay) stay this config's — a plain
    ``load_state_dict`` would put the saved ones back.

    Raises:
        ValueError: the state is another optimiser's.
    """
    kind = _saved_kind(saved)
    if kind != name:
        raise ValueError(
            f"the checkpoint to continue holds a {kind} optimiser state; train.optimizer is "
            f"{name!r} (continue with the same optimiser, or start a new run)"
        )
    config_groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, values in zip(optimizer.param_groups, config_groups, strict=True):
        group.update(values)
