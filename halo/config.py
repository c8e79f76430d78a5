"""Run configuration: frozen dataclasses, benchmark presets, strict loading and validation.

A config is a small YAML file (see ``configs/``); every key has a default here, every key in a file
or in a ``--set key=value`` override must exist (a typo is an error naming the key and listing the
valid ones), and names (benchmark, backbone, method, head) are checked against their registries
before any work starts. Nothing here reads files except :func:`load_config`'s YAML, which only the
CLI calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad config file, key or value; the message names the key and what was expected."""


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a benchmark: registry name, folder under the data root, split, options."""

    dataset: str
    folder: str
    split: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """Source → target adaptation task: datasets, class protocol and default image sizes."""

    name: str
    protocol: str
    source: DatasetSpec
    target: DatasetSpec
    val: DatasetSpec
    source_size: tuple[int, int]
    target_size: tuple[int, int]
    synthetic: bool
    default_root: str


def _bench(name, protocol, source, target, val, sizes, synthetic):
    return Benchmark(
        name,
        protocol,
        DatasetSpec(*source),
        DatasetSpec(*target),
        DatasetSpec(*val),
        sizes[0],
        sizes[1],
        synthetic,
        "data/synth" if synthetic else "data",
    )


_SYNTH = ((64, 128), (64, 128))
_REAL_CS = ((720, 1280), (640, 1280))  # the paper's GTAV / Cityscapes resolutions
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        _bench(
            "synth-gta2cs",
            "cityscapes19",
            ("gta5", "gta5", "train"),
            ("cityscapes", "cityscapes", "train"),
            ("cityscapes", "cityscapes", "val"),
            _SYNTH,
            True,
        ),
        _bench(
            "synth-synthia2cs",
            "synthia16",
            ("synthia", "synthia", "train"),
            ("cityscapes", "cityscapes", "train"),
            ("cityscapes", "cityscapes", "val"),
            _SYNTH,
            True,
        ),
        _bench(
            "synth-cs2acdc",
            "cityscapes19",
            ("cityscapes", "cityscapes", "train"),
            ("acdc", "acdc", "train"),
            ("acdc", "acdc", "val"),
            _SYNTH,
            True,
        ),
        _bench(
            "gta2cs",
            "cityscapes19",
            ("gta5", "gta5", "all"),
            ("cityscapes", "cityscapes", "train"),
            ("cityscapes", "cityscapes", "val"),
            _REAL_CS,
            False,
        ),
        _bench(
            "synthia2cs",
            "synthia16",
            ("synthia", "synthia", "all"),
            ("cityscapes", "cityscapes", "train"),
            ("cityscapes", "cityscapes", "val"),
            ((768, 1280), (640, 1280)),  # SYNTHIA is 760x1280; 768 = 48x16 fits the stride
            False,
        ),
        _bench(
            "cs2acdc",
            "cityscapes19",
            ("cityscapes", "cityscapes", "train"),
            ("acdc", "acdc", "train"),
            ("acdc", "acdc", "val"),
            ((640, 1280), (544, 960)),  # ACDC at half resolution, height rounded to the stride
            False,
        ),
    )
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name lists the valid ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ConfigError(
            f"benchmark: unknown name {name!r}; valid: {', '.join(BENCHMARKS)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Config sections
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Segmenter options. ``None`` means: the method's preset, else the backbone's default."""

    head: str | None = None
    hfr: bool | None = None
    embed_dim: int = 64
    curvature: float = 1.0
    decoder_channels: int | None = None
    encoder_weights: str | None = None


@dataclass(frozen=True)
class ActiveConfig:
    """Acquisition: total budget (fraction of target pixels) split evenly over the rounds."""

    budget: float = 0.05
    rounds: int = 5
    active_radius: int | None = None
    mask_radius: int | None = None
    batch_size: int = 8


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (SGD, warm-up then poly decay) and checkpointing."""

    batch_size: int = 8
    source_steps: int = 400
    round_steps: int = 100
    supervised_steps: int = 400
    lr: float = 1e-3
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 20
    poly_power: float = 0.9
    negative_learning: float = 0.0
    hflip: bool = True
    checkpoint_every: int = 50
    amp: bool = True
    sync_bn: bool = False
    num_workers: int = 0


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 8
    flip: bool = False


@dataclass(frozen=True)
class Config:
    """A whole run: benchmark, model, method, budget, schedule and seed."""

    benchmark: str = "synth-gta2cs"
    data_root: str | None = None
    source_size: tuple[int, int] | None = None
    target_size: tuple[int, int] | None = None
    backbone: str = "deeplabv3plus-r18"
    method: str = "halo"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # ---- derived, resolved values --------------------------------------------------------

    @property
    def bench(self) -> Benchmark:
        return get_benchmark(self.benchmark)

    @property
    def root(self) -> Path:
        return Path(self.data_root or self.bench.default_root)

    @property
    def sizes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(source (H, W), target (H, W))."""
        b = self.bench
        return tuple(self.source_size or b.source_size), tuple(self.target_size or b.target_size)

    def method_preset(self) -> dict:
        """What the method requires of the model and of selection (from its registry entry)."""
        return method_preset(self.method)

    def model_options(self) -> dict:
        """Keyword arguments for ``halo.models.segmenter.build_backbone`` (after presets)."""
        preset = self.method_preset()["model"]
        m = self.model
        options: dict[str, Any] = {
            "head": m.head or preset.get("head", "hyperbolic"),
            "encoder_weights": m.encoder_weights,
        }
        # HFR: explicit value, else the method's preset, else the head's default (on only for
        # the hyperbolic head); always explicit here so model_key() names what is built.
        hfr = m.hfr if m.hfr is not None else preset.get("hfr")
        options["hfr"] = bool(hfr) if hfr is not None else options["head"] == "hyperbolic"
        channels = m.decoder_channels or preset.get("decoder_channels")
        if channels is not None:
            options["decoder_channels"] = channels
        if options["head"] == "hyperbolic":
            options.update(embed_dim=m.embed_dim, curvature=m.curvature)
        return options

    def model_key(self) -> str:
        """Short name of the model variant: runs with the same key share one source model."""
        o = self.model_options()
        key = o["head"]
        if o.get("hfr"):
            key += "-hfr"
        if "decoder_channels" in o:
            key += f"-d{o['decoder_channels']}"
        if o["head"] == "hyperbolic" and (self.model.embed_dim, self.model.curvature) != (64, 1.0):
            key += f"-e{self.model.embed_dim}-c{self.model.curvature:g}"
        if self.model.encoder_weights:
            key += f"-{self.model.encoder_weights}"
        return key

    def selection_radii(self) -> tuple[int, int]:
        """(active radius a, block radius m): the config's, else the method's preset."""
        p = self.method_preset()
        a = self.active.active_radius if self.active.active_radius is not None else p["active"]
        m = self.active.mask_radius if self.active.mask_radius is not None else p["mask"]
        return a, m

    def fingerprint(self, *parts: object) -> str:
        """A short hash of this config (and ``parts``): identifies a run for resumption."""
        blob = json.dumps([to_dict(self), *map(str, parts)], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_data(cfg: Config) -> None:
    """Fail at once, naming every missing folder and where to get the data, if the benchmark's
    datasets are not under the data root in their official layouts."""
    from halo.data import LAYOUTS, missing_folders

    bench = cfg.bench
    missing, how = [], []
    for spec in (bench.source, bench.target, bench.val):
        gone = missing_folders(spec.dataset, cfg.root / spec.folder, spec.split)
        gone = [p for p in gone if p not in missing]
        if gone:
            missing += gone
            how.append(LAYOUTS[spec.dataset][1])
    if missing:
        hint = (
            f"Write it with `halo synth --out {cfg.root}`"
            if bench.synthetic
            else "Get "
            + "; ".join(dict.fromkeys(how))
            + f", and put or symlink it under {cfg.root}"
        )
        raise ConfigError(
            f"benchmark {bench.name}: data missing under data_root {cfg.root}: "
            + ", ".join(str(p) for p in missing)
            + f". {hint} (see README, 'Real datasets')."
        )


def method_preset(name: str) -> dict:
    """``{"model": {...}, "active": a, "mask": m}`` for an acquisition method name."""
    from halo.acquisition.strategies import get_strategy_class

    cls = get_strategy_class(name)
    return {
        "model": dict(getattr(cls, "model_preset", {}) or {}),
        "active": int(getattr(cls, "active_radius", 1)),
        "mask": int(getattr(cls, "mask_radius", 5)),
    }


# --------------------------------------------------------------------------------------------
# Loading
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
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            return True, float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        return False, value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
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
        raise ConfigError(
            f"unknown config key {key!r}; valid keys{' of ' + where if where else ''}: "
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


def build_config(data: dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build and validate a :class:`Config` from plain data plus ``--set`` overrides."""
    merged = _merge(data or {}, parse_overrides(list(overrides)))
    cfg = _build(Config, merged, "")
    validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config file (``None``: defaults only), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping of keys at the top")
    try:
        return build_config(data, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path else str(err)) from None


def validate(cfg: Config) -> None:
    """Check names against their registries and values against their ranges."""
    from halo.models.heads import HEADS
    from halo.models.segmenter import BACKBONES, check_input_size

    bench = get_benchmark(cfg.benchmark)
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"backbone: unknown name {cfg.backbone!r}; valid: {', '.join(BACKBONES)}")
    try:
        preset = cfg.method_preset()
    except ValueError as err:
        raise ConfigError(f"method: {err}") from None
    head = cfg.model.head or preset["model"].get("head", "hyperbolic")
    if head not in HEADS:
        raise ConfigError(f"model.head: unknown name {head!r}; valid: {', '.join(HEADS)}")
    a = cfg.active
    if not 0.0 < a.budget <= 1.0:
        raise ConfigError(f"active.budget: expected a fraction in (0, 1], got {a.budget}")
    if a.rounds < 1:
        raise ConfigError(f"active.rounds: expected >= 1, got {a.rounds}")
    for name in ("active_radius", "mask_radius"):
        v = getattr(a, name)
        if v is not None and v < 0:
            raise ConfigError(f"active.{name}: expected >= 0, got {v}")
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
    for name in ("lr", "head_lr_mult"):
        if not getattr(t, name) > 0:
            raise ConfigError(f"train.{name}: expected > 0, got {getattr(t, name)}")
    if not 0 <= t.momentum < 1 or t.weight_decay < 0 or t.negative_learning < 0:
        raise ConfigError(
            "train: momentum must be in [0, 1), weight_decay and negative_learning >= 0"
        )
    if cfg.eval.batch_size < 1 or cfg.active.batch_size < 1:
        raise ConfigError("eval.batch_size and active.batch_size must be >= 1")
    if cfg.model.embed_dim < 2 or not cfg.model.curvature > 0:
        raise ConfigError("model.embed_dim must be >= 2 and model.curvature > 0")
    for what, size in zip(("source_size", "target_size"), cfg.sizes, strict=True):
        try:
            check_input_size(cfg.backbone, *size)
        except ValueError as err:
            raise ConfigError(f"{what} {list(size)} (benchmark {bench.name}): {err}") from None
