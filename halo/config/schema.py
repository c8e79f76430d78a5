"""The config schema: frozen dataclasses of what a user can set, strict parsing, range checks.

A config is a small YAML file (see ``configs/``); every key has a default here, every key in a file
or in a ``--set key=value`` override must exist (a typo is an error naming the key and listing the
valid ones). Names (benchmark, backbone, method, head) are checked when the config is resolved
(:mod:`halo.config.run`); :mod:`halo.config.load` reads files.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from halo.choices import OPTIMIZERS as _OPTIMIZERS
from halo.choices import SCHEDULES as _SCHEDULES
from halo.choices import SOURCE_ORDERS as _SOURCE_ORDERS
from halo.config.errors import ConfigError
from halo.registry import did_you_mean


@dataclass(frozen=True)
class ModelConfig:
    """Segmenter options. ``None`` means: the method's preset, else the backbone's default."""

    head: str | None = None
    hfr: bool | None = None
    embed_dim: int = 64
    curvature: float = 1.0
    decoder_channels: int | None = None
    encoder_weights: str | None = None
    frozen_bn: bool | None = None  # None: frozen exactly when encoder_weights is set
    hfr_normalize: bool = True  # HFR's per-channel L2 normalisation (False: the ablation)
    decoder: str = "smp"  # smp's decoder, or "official": DeepLabV3+ as the official code's


@dataclass(frozen=True)
class ActiveConfig:
    """Acquisition: total budget (fraction of target pixels) split evenly over the rounds.

    ``round_starts`` places the rounds in the active phase: round ``r`` selects at fraction
    ``round_starts[r-1]`` of the phase's ``rounds x train.round_steps`` steps and trains until
    the next round's (the official code: ``[0, 0.25, 0.5, 0.67, 0.83]``); ``null`` spaces them
    evenly (``round_steps`` each). ``label_size``: the pool is scored at the label files' size
    (logits upsampled to it, the budget counted in its pixels, masks written at it and resized
    by nearest neighbour for training), as the official code; otherwise at ``target_size``.
    """

    budget: float = 0.05
    rounds: int = 5
    active_radius: int | None = None
    mask_radius: int | None = None
    batch_size: int = 8
    round_starts: tuple[float, ...] | None = None
    label_size: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (SGD or AdamW; linear warm-up, then poly or cosine decay) and checkpointing.

    ``momentum`` is SGD's momentum and AdamW's β1 (``adam_beta2`` its β2). ``round_lr`` and
    ``round_warmup_steps`` are the active rounds' own rate and warm-up (``null``: ``lr`` and
    ``warmup_steps``); the rounds' schedule runs once over all rounds. Step ``t`` of a warm-up
    of ``W`` steps trains at ``warmup_start + (1 − warmup_start)·(t + warmup_shift)/W``:
    ``warmup_shift: 1`` reaches the full rate on the warm-up's last step; ``0`` starts at exactly
    ``warmup_start`` and reaches it on the first step after, as torch's ``LinearLR`` stepped after
    each optimiser step (the official code).
    """

    batch_size: int = 8
    source_steps: int = 400
    round_steps: int = 100
    supervised_steps: int = 400
    optimizer: str = "sgd"
    lr: float = 1e-3
    round_lr: float | None = None
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 5e-4
    warmup_steps: int = 20
    warmup_start: float = 0.0
    warmup_shift: int = 1
    round_warmup_steps: int | None = None
    schedule: str = "poly"
    poly_power: float = 0.9
    decay_steps: int | None = None  # the decay's horizon in steps (null: the run's length)
    negative_learning: float = 0.0
    local_consistency: float = 0.0
    hflip: bool = True
    source_order: str = "uniform"  # the source images' order: SOURCE_ORDERS
    checkpoint_every: int = 50
    amp: bool = True
    sync_bn: bool = False
    num_workers: int = 0

    def phase_rate(self, protocol: str) -> tuple[float, int]:
        """``(base learning rate, warm-up steps)`` of a training protocol: the active rounds
        have their own (``round_lr``, ``round_warmup_steps``; unset = ``lr``,
        ``warmup_steps``)."""
        if protocol == "active":
            lr = self.lr if self.round_lr is None else self.round_lr
            warmup = (
                self.warmup_steps if self.round_warmup_steps is None else self.round_warmup_steps
            )
            return lr, warmup
        return self.lr, self.warmup_steps


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 8
    flip: bool = False
    label_size: bool = False  # predictions upsampled to the label files' size (official)


@dataclass(frozen=True)
class Config:
    """A whole run: benchmark, model, method, budget, schedule and seed."""

    benchmark: str = "synth-gta2cs"
    data_root: str | None = None
    target_data: str | None = None
    val_data: str | None = None
    val_split: str | None = None  # evaluate on this split of the benchmark's val dataset
    source_size: tuple[int, int] | None = None
    target_size: tuple[int, int] | None = None
    resize: str = "bilinear"  # how images are resized to those sizes (labels: nearest)
    backbone: str = "deeplabv3plus-r18"
    method: str = "halo"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check/convert ``value`` against an annotation; returns (ok, converted value)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return True, None
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            ok, v = _type_ok(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is float:  # finite numbers only: inf and nan are never a learning rate or a budget
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return math.isfinite(value), float(value)
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            return math.isfinite(float(value)), float(value)  # YAML 1.1 reads 1e-3 as a string
        return False, value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    if origin is tuple and typing.get_args(tp)[1:] == (Ellipsis,):  # tuple[float, ...]
        if isinstance(value, (list, tuple)):
            items = [_type_ok(v, typing.get_args(tp)[0]) for v in value]
            if all(ok for ok, _ in items):
                return True, tuple(v for _, v in items)
        return False, value
    if origin is tuple:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return True, (int(value[0]), int(value[1]))
        return False, value
    return True, value


def _build(cls: type, data: dict, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        hint = did_you_mean(str(unknown[0]), fields)
        raise ConfigError(
            f"unknown config key {key!r}{hint}; valid keys{' of ' + where if where else ''}: "
            f"{', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
            continue
        ok, converted = _type_ok(value, tp)
        if not ok:
            raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r}")
        kwargs[name] = converted
    return cls(**kwargs)


def _describe(tp: Any) -> str:
    """``tuple[int, int] | None`` → "[height, width] (two integers) or null"."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is tuple:
        return "[height, width] (two integers)"
    if tp is float:
        return "float (a finite number)"
    return getattr(tp, "__name__", str(tp))


def to_dict(cfg: Any) -> dict:
    """The config as plain data (tuples as lists), ready for YAML/JSON."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {k!r} is not a section")
    node[keys[-1]] = value


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict:
    """``["train.batch_size=4", "method=entropy"]`` → nested dict (values parsed as YAML)."""
    data: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. train.batch_size=4)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {err}") from None
        _set_path(data, key.strip(), value)
    return data


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: ``resize``: PIL's filter for images (halo.data.transforms.resize_pair).
RESIZE = ("bilinear", "bicubic")

#: train.optimizer, train.schedule and train.source_order (halo.engine builds them).
OPTIMIZERS = tuple(_OPTIMIZERS)  # the names (halo.choices)
SCHEDULES = tuple(_SCHEDULES)
SOURCE_ORDERS = tuple(_SOURCE_ORDERS)

#: Seeds drive torch (per-step seeds up to ~1e9 x seed must fit 64 bits) and numpy generators.
MAX_SEED = 2**32 - 1


def check_ranges(cfg: Config) -> None:
    """Check every number of ``cfg`` against its range; a ConfigError names the key."""
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed: expected an integer in [0, {MAX_SEED}], got {cfg.seed}")
    a = cfg.active
    if not 0.0 < a.budget <= 1.0:
        raise ConfigError(f"active.budget: expected a fraction in (0, 1], got {a.budget}")
    if a.rounds < 1:
        raise ConfigError(f"active.rounds: expected >= 1, got {a.rounds}")
    for name in ("active_radius", "mask_radius"):
        v = getattr(a, name)
        if v is not None and v < 0:
            raise ConfigError(f"active.{name}: expected >= 0, got {v}")
    starts = a.round_starts
    if starts is not None and not (
        len(starts) == a.rounds
        and starts[0] == 0
        and all(x < y for x, y in itertools.pairwise(starts))
        and starts[-1] < 1
    ):
        raise ConfigError(
            f"active.round_starts: expected {a.rounds} increasing fractions (one per round) from "
            f"0 and below 1, got {list(starts)}"
        )
    t = cfg.train
    for name in (
        "batch_size",
        "source_steps",
        "round_steps",
        "supervised_steps",
        "checkpoint_every",
    ):
        if getattr(t, name) < 1:
            raise ConfigError(f"train.{name}: expected >= 1, got {getattr(t, name)}")
    if t.warmup_steps < 0 or t.num_workers < 0:
        raise ConfigError("train.warmup_steps and train.num_workers must be >= 0")
    if not 0 <= t.warmup_start < 1:
        raise ConfigError(f"train.warmup_start: expected a factor in [0, 1), got {t.warmup_start}")
    if t.warmup_shift not in (0, 1):
        raise ConfigError(f"train.warmup_shift: expected 0 or 1, got {t.warmup_shift!r}")
    if t.warmup_shift == 0 and t.warmup_start == 0 and t.warmup_steps > 0:
        raise ConfigError(
            "train.warmup_shift: 0 needs train.warmup_start > 0 (the first step would train at "
            "rate 0, which torch's LinearLR does not allow either)"
        )
    if t.round_warmup_steps is not None and t.round_warmup_steps < 0:
        raise ConfigError(f"train.round_warmup_steps: expected >= 0, got {t.round_warmup_steps}")
    for name in ("lr", "round_lr", "head_lr_mult"):
        value = getattr(t, name)
        if value is not None and not value > 0:
            raise ConfigError(f"train.{name}: expected > 0, got {value}")
    for name, valid in (
        ("optimizer", OPTIMIZERS),
        ("schedule", SCHEDULES),
        ("source_order", SOURCE_ORDERS),
    ):
        if getattr(t, name) not in valid:
            raise ConfigError(
                f"train.{name}: expected one of {', '.join(valid)}, got {getattr(t, name)!r}"
            )
    if not 0 <= t.adam_beta2 < 1:
        raise ConfigError(f"train.adam_beta2: expected a value in [0, 1), got {t.adam_beta2}")
    if not 0 <= t.momentum < 1 or min(t.weight_decay, t.negative_learning) < 0:
        raise ConfigError(
            "train: momentum must be in [0, 1), weight_decay and negative_learning >= 0"
        )
    if t.decay_steps is not None and t.decay_steps <= t.warmup_steps:
        raise ConfigError(
            f"train.decay_steps: expected more than warmup_steps ({t.warmup_steps}) or null, got "
            f"{t.decay_steps}"
        )
    if t.local_consistency < 0:
        raise ConfigError(f"train.local_consistency: expected >= 0, got {t.local_consistency}")
    if cfg.resize not in RESIZE:
        raise ConfigError(f"resize: expected one of {', '.join(RESIZE)}, got {cfg.resize!r}")
    if cfg.eval.batch_size < 1 or cfg.active.batch_size < 1:
        raise ConfigError("eval.batch_size and active.batch_size must be >= 1")
    if cfg.model.embed_dim < 2 or not cfg.model.curvature > 0:
        raise ConfigError("model.embed_dim must be >= 2 and model.curvature > 0")
