"""Run configuration: the schema a user sets, the benchmarks, loading and the resolved run.

============ ===============================================================================
module       owns
============ ===============================================================================
schema       the frozen dataclasses of every key, strict parsing, range checks
benchmarks   the benchmark registry (datasets, class protocol, default sizes)
run          :class:`Run`: a config resolved once (model options, model key, radii, classes)
load         reading YAML and ``--set`` overrides into a validated config and its run
============ ===============================================================================

Torch-free: the Snakemake workflow resolves its whole grid with this package at parse time.
"""

from halo.config.benchmarks import BENCHMARKS, Benchmark, DatasetSpec, get_benchmark
from halo.config.errors import ConfigError
from halo.config.load import build_config, load_config, load_run, validate
from halo.config.run import Run, check_data, describe_run, resolve
from halo.config.schema import (
    ActiveConfig,
    Config,
    EvalConfig,
    ModelConfig,
    TrainConfig,
    parse_overrides,
    to_dict,
)

__all__ = [
    "BENCHMARKS",
    "ActiveConfig",
    "Benchmark",
    "Config",
    "ConfigError",
    "DatasetSpec",
    "EvalConfig",
    "ModelConfig",
    "Run",
    "TrainConfig",
    "build_config",
    "check_data",
    "describe_run",
    "get_benchmark",
    "load_config",
    "load_run",
    "parse_overrides",
    "resolve",
    "to_dict",
    "validate",
]
