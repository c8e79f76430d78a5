"""Loading: a YAML file plus ``--set`` overrides → a validated config → a resolved run.

The only reader of config files. :func:`load_run` is what commands call: the run is resolved once
here and passed down (docs/design.md, "The resolved run").
"""

from __future__ import annotations

from pathlib import Path

import yaml

from halo.config.errors import ConfigError
from halo.config.run import Run, resolve
from halo.config.schema import Config, _build, _merge, check_ranges, parse_overrides

__all__ = ["build_config", "load_config", "load_run", "validate"]


def validate(cfg: Config) -> Run:
    """Check every value against its range and every name against its registry; the run.

    Raises:
        ConfigError: naming the key and what was expected.
    """
    check_ranges(cfg)
    return resolve(cfg)


METHOD_OVERRIDES = "method_overrides"
"""A config file's per-method settings: ``method_overrides: {ripu: {train: {...}}}`` applies to
runs of that method, over the file's own keys and under ``--set`` (the official RIPU run's
consistency loss in configs/benchmarks/gta2cs.yaml)."""


def _method_overrides(data: dict, sets: dict) -> dict:
    """``data`` without its ``method_overrides``, with the entry of the run's method merged in.

    Raises:
        ConfigError: the section is not a mapping of method names to mappings, or names an
            unknown method.
    """
    data = dict(data)
    per_method = data.pop(METHOD_OVERRIDES, None)
    if per_method is None:
        return data
    if not isinstance(per_method, dict) or not all(
        isinstance(v, dict) for v in per_method.values()
    ):
        raise ConfigError(f"{METHOD_OVERRIDES}: expected a mapping of method names to settings")
    from halo.acquisition.methods import METHODS

    for name in per_method:
        try:
            METHODS.lookup(str(name))
        except ValueError as err:
            raise ConfigError(f"{METHOD_OVERRIDES}.{name}: {err}") from None
    per_method = {str(name).lower(): entry for name, entry in per_method.items()}
    method = str(sets.get("method", data.get("method", Config.method))).lower()
    if METHOD_OVERRIDES in per_method.get(method, {}):
        raise ConfigError(f"{METHOD_OVERRIDES}.{method}: cannot nest {METHOD_OVERRIDES}")
    return _merge(data, per_method.get(method, {}))


def _build_run(data: dict | None, overrides: list[str] | tuple[str, ...]) -> Run:
    sets = parse_overrides(list(overrides))
    merged = _merge(_method_overrides(data or {}, sets), sets)
    return validate(_build(Config, merged, ""))


def build_config(data: dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build and validate a :class:`Config` from plain data plus ``--set`` overrides."""
    return _build_run(data, overrides).config


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of keys at the top")
    return data


def load_run(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Run:
    """Read a YAML config file (``None``: defaults only), apply overrides, validate, resolve."""
    path = None if path is None else Path(path)
    data = {} if path is None else _read(path)
    try:
        return _build_run(data, overrides)
    except ConfigError as err:
        raise ConfigError(_blame(path, data, list(overrides), err)) from None


def _blame(path: Path | None, data: dict, overrides: list[str], err: ConfigError) -> str:
    """The error named after what caused it: the file, else the first ``--set`` that breaks it."""
    try:
        _build_run(data, [])
    except ConfigError as file_err:
        return f"{path}: {file_err}" if path else str(file_err)
    for i, item in enumerate(overrides):
        try:
            _build_run(data, overrides[: i + 1])
        except ConfigError as set_err:
            text = str(set_err)
            return text if text.startswith("--set") else f"--set {item}: {text}"
    return f"--set: {err}"


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config file (``None``: defaults only), apply overrides, validate."""
    return load_run(path, overrides).config
