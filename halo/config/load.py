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


def _build_run(data: dict | None, overrides: list[str] | tuple[str, ...]) -> Run:
    merged = _merge(data or {}, parse_overrides(list(overrides)))
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
