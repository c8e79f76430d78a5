"""The resolved run: a config plus everything derived from it, computed once at load.

A :class:`Run` is what every command, job and module below the CLI receives: the validated
:class:`~halo.config.schema.Config` (what the user set) together with its benchmark, class
protocol, method preset, the segmenter options after presets, the model key (the variant that
names a source model), the selection radii and the image sizes (docs/design.md, "The resolved
run"). Nothing downstream asks a registry for a preset again. Torch-free: the workflow resolves
every grid cell at parse time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from halo.acquisition.methods import METHODS, MethodPreset
from halo.config.benchmarks import Benchmark, DatasetSpec, get_benchmark
from halo.config.errors import ConfigError
from halo.config.schema import Config, to_dict
from halo.data.labels import ClassProtocol, get_protocol
from halo.models.presets import BACKBONES, DECODERS, HEADS, check_input_size
from halo.registry import did_you_mean

__all__ = ["Run", "check_data", "describe_run", "resolve"]


@dataclass(frozen=True)
class Run:
    """A run, resolved.

    Attributes:
        config: the validated config as the user set it, with the training options its method
            fixes (``-nl`` methods: ``train.negative_learning``); what ``config.yaml`` records.
        benchmark: the benchmark's datasets, protocol and default sizes.
        protocol: the class protocol (``num_classes``, class names, SYNTHIA's 13-class subset).
        method: the method's preset (model requirements, radii).
        model_options: keyword arguments of ``halo.models.segmenter.build_backbone`` after the
            method's preset and the backbone's defaults (read-only).
        model_key: the model variant (``hyperbolic-hfr``, ``euclidean-d512``, ...): runs with the
            same key share one source-only model.
        active_radius: ``a``: a region labels ``(2a+1)²`` pixels (the config's, else the preset's).
        mask_radius: ``m``: a centre blocks its ``(2m+1)²`` window.
        source_size: source images' (H, W).
        target_size: target images' (H, W).
        root: the data root.
    """

    config: Config
    benchmark: Benchmark
    protocol: ClassProtocol
    method: MethodPreset
    model_options: Mapping[str, Any]
    model_key: str
    active_radius: int
    mask_radius: int
    source_size: tuple[int, int]
    target_size: tuple[int, int]
    root: Path

    @property
    def num_classes(self) -> int:
        return self.protocol.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.protocol.classes)

    @property
    def round_budget(self) -> float:
        """The fraction of each image's pixels one round labels: budget / rounds."""
        return self.config.active.budget / self.config.active.rounds

    def round_span(self, r: int) -> tuple[int, int, int]:
        """``(start, stop, total)``: the global steps round ``r`` (1-based) trains in the active
        phase of ``total = rounds x train.round_steps`` steps: evenly spaced, or from
        ``active.round_starts`` (each start rounded to the nearest step)."""
        rounds, per = self.config.active.rounds, self.config.train.round_steps
        total = rounds * per
        starts = self.config.active.round_starts
        if starts is None:
            return (r - 1) * per, r * per, total
        edges = [round(s * total) for s in starts] + [total]
        return edges[r - 1], edges[r], total

    def fingerprint(self, *parts: object) -> str:
        """A short hash of the config (and ``parts``): identifies a run for resumption."""
        blob = json.dumps([to_dict(self.config), *map(str, parts)], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _model_options(cfg: Config, preset: MethodPreset) -> dict[str, Any]:
    """``build_backbone`` options: the config's, else the method's preset, else the defaults."""
    m = cfg.model
    options: dict[str, Any] = {
        "head": m.head or preset.model.get("head", "hyperbolic"),
        "encoder_weights": m.encoder_weights,
    }
    # HFR: explicit value, else the method's preset, else the head's default (on only for the
    # hyperbolic head); always explicit here so the model key names what is built.
    hfr = m.hfr if m.hfr is not None else preset.model.get("hfr")
    options["hfr"] = bool(hfr) if hfr is not None else options["head"] == "hyperbolic"
    channels = m.decoder_channels or preset.model.get("decoder_channels")
    if channels is not None:
        options["decoder_channels"] = channels
    if options["head"] == "hyperbolic":
        options.update(embed_dim=m.embed_dim, curvature=m.curvature)
        if options["hfr"] and not m.hfr_normalize:
            options["hfr_normalize"] = False
    if m.decoder != "smp":
        options["decoder"] = m.decoder
    # the encoder's BatchNorm frozen (the official recipe with pretrained weights)
    if m.frozen_bn if m.frozen_bn is not None else bool(m.encoder_weights):
        options["frozen_bn"] = True
    return options


def _check_decoder(cfg: Config, options: Mapping[str, Any]) -> None:
    """``model.decoder`` names a decoder; ``official`` only for a DeepLabV3+ or SegFormer
    backbone, and for SegFormer's hyperbolic head with the ball as wide as the decoder."""
    name = cfg.model.decoder
    if name not in DECODERS:
        valid = ", ".join(DECODERS)
        raise ConfigError(
            f"model.decoder: unknown name {name!r}{did_you_mean(name, DECODERS)}; valid: {valid}"
        )
    preset = BACKBONES.lookup(cfg.backbone)
    if name != "official":
        return
    if preset.arch not in ("deeplabv3plus", "segformer"):
        raise ConfigError(
            f"model.decoder: 'official' is the official DeepLabV3+ or SegFormer decoder; "
            f"backbone {cfg.backbone!r} is {preset.arch} (use model.decoder=smp)"
        )
    width = options.get("decoder_channels") or preset.decoder_channels
    hyperbolic = options["head"] == "hyperbolic"
    if preset.arch == "segformer" and hyperbolic and cfg.model.embed_dim != width:
        raise ConfigError(
            f"model.embed_dim: the official SegFormer head maps the {width}-d decoder features "
            f"into the ball as they are; expected {width} with model.decoder=official, got "
            f"{cfg.model.embed_dim}"
        )


def _model_key(cfg: Config, options: Mapping[str, Any]) -> str:
    key = options["head"]
    if options.get("hfr"):
        key += "-hfr" if options.get("hfr_normalize", True) else "-hfrraw"
    if "decoder_channels" in options:
        key += f"-d{options['decoder_channels']}"
    if options["head"] == "hyperbolic" and (cfg.model.embed_dim, cfg.model.curvature) != (64, 1.0):
        key += f"-e{cfg.model.embed_dim}-c{cfg.model.curvature:g}"
    if cfg.model.encoder_weights:
        key += f"-{cfg.model.encoder_weights}"
    if options.get("frozen_bn", False) != bool(cfg.model.encoder_weights):  # not the default
        key += "-frozenbn" if options.get("frozen_bn") else "-bn"
    if "decoder" in options:
        key += f"-{options['decoder']}dec"
    return key


def resolve(cfg: Config) -> Run:
    """Resolve a config: check its names against their registries and its image sizes against
    the backbone, and derive the run's model options, model key and radii.

    Raises:
        ConfigError: an unknown benchmark, backbone, method or head (the valid names listed), or
            an image size the backbone cannot take; the message names the key.
    """
    bench = get_benchmark(cfg.benchmark)
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"backbone: unknown name {cfg.backbone!r}; valid: {', '.join(BACKBONES)}")
    try:
        preset = METHODS.lookup(cfg.method)
    except ValueError as err:
        raise ConfigError(f"method: {err}") from None
    options = _model_options(cfg, preset)
    if options["head"] not in HEADS:
        raise ConfigError(
            f"model.head: unknown name {options['head']!r}; valid: {', '.join(HEADS)}"
        )
    _check_decoder(cfg, options)
    sizes = (
        tuple(cfg.source_size or bench.source_size),
        tuple(cfg.target_size or bench.target_size),
    )
    for what, size in zip(("source_size", "target_size"), sizes, strict=True):
        try:
            check_input_size(cfg.backbone, *size)
        except ValueError as err:
            raise ConfigError(f"{what} {list(size)} (benchmark {bench.name}): {err}") from None
    bench = _with_folders(bench, cfg)
    if preset.train:  # training options the method fixes (the -nl methods)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **preset.train))
    a = cfg.active
    return Run(
        config=cfg,
        benchmark=bench,
        protocol=get_protocol(bench.protocol),
        method=preset,
        model_options=MappingProxyType(options),
        model_key=_model_key(cfg, options),
        active_radius=a.active_radius if a.active_radius is not None else preset.active_radius,
        mask_radius=a.mask_radius if a.mask_radius is not None else preset.mask_radius,
        source_size=sizes[0],
        target_size=sizes[1],
        root=Path(cfg.data_root or bench.default_root),
    )


def _with_folders(bench: Benchmark, cfg: Config) -> Benchmark:
    """The benchmark with its target pool and/or validation set replaced by folder datasets
    (``target_data``, ``val_data``: a folder under ``data_root``, or an absolute path;
    :mod:`halo.data.folder`)."""
    changes = {
        which: DatasetSpec("folder", path, "all")
        for which, path in (("target", cfg.target_data), ("val", cfg.val_data))
        if path is not None
    }
    for which, spec in changes.items():
        if not spec.folder.strip():
            raise ConfigError(f"{which}_data: expected a folder dataset's path, got ''")
    if cfg.val_split is not None and "val" not in changes:  # e.g. the synthetic "select" split
        if not cfg.val_split.strip() or "/" in cfg.val_split:
            raise ConfigError(f"val_split: expected a split name, got {cfg.val_split!r}")
        changes["val"] = dataclasses.replace(bench.val, split=cfg.val_split)
    return dataclasses.replace(bench, **changes) if changes else bench


def check_data(run: Run) -> None:
    """Fail at once, naming every missing folder and where to get the data, if the benchmark's
    datasets are not under the data root in their official layouts."""
    from halo.data import LAYOUTS, missing_folders

    bench, root = run.benchmark, run.root
    missing, how = [], []
    for spec in (bench.source, bench.target, bench.val):
        gone = missing_folders(spec.dataset, root / spec.folder, spec.split)
        gone = [p for p in gone if p not in missing]
        if gone:
            missing += gone
            how.append(None if bench.synthetic and spec.dataset != "folder" else spec.dataset)
    if not missing:
        for spec in (bench.target, bench.val):  # a folder dataset's classes.yaml, at once
            if spec.dataset == "folder":
                from halo.data.folder import label_table

                try:
                    label_table(root / spec.folder, run.protocol)
                except ValueError as err:
                    raise ConfigError(f"{spec.folder}: {err}") from None
    if missing:
        real = [LAYOUTS[d][1] for d in dict.fromkeys(how) if d is not None]
        hint = f"Write it with `halo synth --out {root}`" if None in how else ""
        if real:
            hint += ("; g" if hint else "G") + "et " + "; ".join(real)
            hint += f", and put or symlink it under {root}"
        raise ConfigError(
            f"benchmark {bench.name}: data missing under data_root {root}: "
            + ", ".join(str(p) for p in missing)
            + f". {hint} (see docs/real-data.md)."
        )


def describe_run(run: Run) -> dict:
    """The resolved run as plain data (``halo ... --dry-run``): the config as it will train,
    then what was derived from it."""
    return {
        **to_dict(run.config),
        "resolved": {
            "model_options": dict(run.model_options),
            "model_key": run.model_key,
            "active_radius": run.active_radius,
            "mask_radius": run.mask_radius,
            "source_size": list(run.source_size),
            "target_size": list(run.target_size),
            "round_spans": [
                list(run.round_span(r)) for r in range(1, run.config.active.rounds + 1)
            ],
        },
    }
