"""The benchmarks: source → target tasks, their datasets, class protocol and default sizes.

Torch-free, like the whole config layer (the workflow resolves its grid at parse time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from halo.config.errors import ConfigError
from halo.registry import Registry

__all__ = ["BENCHMARKS", "Benchmark", "DatasetSpec", "get_benchmark"]


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
BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    (
        (b.name, b)
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
    ),
    ordered=True,
)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name lists the valid ones."""
    if name not in BENCHMARKS:
        raise ConfigError(f"benchmark: unknown name {name!r}; {BENCHMARKS.listing()}")
    return BENCHMARKS[name]
