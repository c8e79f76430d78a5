"""A run record as MLflow fields: its identity key, run name, tags, params and metrics.

Pure functions of the record (and, for params, of a ``config.yaml``); mlflow is imported only
to build :class:`mlflow.entities.Metric` objects, inside :func:`_record_metrics`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["flatten", "run_key", "run_name"]

# MLflow's limits on a param value and a key (mlflow.utils.validation), kept here so the module
# imports without mlflow.
_MAX_PARAM_VALUE, _MAX_KEY = 6000, 250


def _safe(name: Any) -> str:
    """A valid, portable metric/param key part: ASCII letters, digits, ``_ . -``; others -> ``_``."""
    out = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name))
    return "_" if out in ("", ".", "..") else out


def _budget_str(budget: float | None) -> str:
    return "none" if budget is None else repr(float(budget))


def _percent(budget: float) -> str:
    return f"{round(float(budget) * 100, 6):g}%"


def run_key(record: Mapping[str, Any]) -> str:
    """The stable identity key of a run record (tag ``halo.key``)."""
    return "/".join(
        [
            str(record["benchmark"]),
            str(record["backbone"]),
            str(record["kind"]),
            str(record["method"]),
            str(record["variant"]),
            f"budget={_budget_str(record.get('budget'))}",
            f"seed={record['seed']}",
        ]
    )


def run_name(record: Mapping[str, Any]) -> str:
    """A short run name that leads with what tells runs apart (the MLflow runs table cuts long
    names): ``halo · 5% · s0 · <backbone>`` for active runs, ``source-only · <variant> · s0 ·
    <backbone>`` and ``supervised · <variant> · s0 · <backbone>`` for the others."""
    backbone, kind = record["backbone"], record["kind"]
    if kind == "active":
        return f"{record['method']} · {_percent(record['budget'])} · s{record['seed']} · {backbone}"
    label = "source-only" if kind == "source" else kind
    return f"{label} · {record['variant']} · s{record['seed']} · {backbone}"


def _tags(record: Mapping[str, Any]) -> dict[str, str]:
    key = run_key(record)
    return {
        "halo.key": key,
        "halo.benchmark": str(record["benchmark"]),
        "halo.backbone": str(record["backbone"]),
        "halo.method": str(record["method"]),
        "halo.kind": str(record["kind"]),
        "halo.variant": str(record["variant"]),
        "halo.budget": _budget_str(record.get("budget")),
        "halo.seed": str(record["seed"]),
        "halo.group": f"{record['backbone']}/{record['method']}",
        "halo.replicates": key.rsplit("/", 1)[0],
    }


def _param_value(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str)
    elif value is None:
        text = "none"
    else:
        text = str(value)
    return text if len(text) <= _MAX_PARAM_VALUE else text[: _MAX_PARAM_VALUE - 1] + "…"


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested mappings -> ``{"train.lr": 0.01, ...}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + sep, sep))
        else:
            out[key] = v
    return out


#: Per protocol, the config keys (or key prefixes) that belong to another protocol: a run's
#: params show its own fields only (a source-only model has no budget, a supervised bound no
#: method; ``method`` of a shared model is just the first grid method that uses it).
_OTHER_FIELDS = {
    "source": (
        "method",
        "active.",
        "train.round_steps",
        "train.supervised_steps",
        "train.negative_learning",
        "train.local_consistency",
        "train.round_lr",
        "train.round_warmup_steps",
    ),
    "supervised": (
        "method",
        "active.",
        "train.source_steps",
        "train.round_steps",
        "train.negative_learning",
        "train.local_consistency",
        "train.round_lr",
        "train.round_warmup_steps",
    ),
    "active": ("train.source_steps", "train.supervised_steps"),
}


def _resolved(path: Path) -> dict[str, Any]:
    """The values a run config resolves to (``halo.config``: the model options after the
    method's preset, the radii, the image sizes), or nothing if the file is not a halo config."""
    from halo.config import ConfigError, load_run

    try:
        run = load_run(path, [])
    except (ConfigError, ValueError, OSError):
        return {}
    return {
        **{f"model.{k}": v for k, v in run.model_options.items()},
        "model.key": run.model_key,
        "active.active_radius": run.active_radius,
        "active.mask_radius": run.mask_radius,
        "source_size": list(run.source_size),
        "target_size": list(run.target_size),
        # the active rounds' rate and warm-up as they ran (unset = the common ones)
        "train.round_lr": run.config.train.phase_rate("active")[0],
        "train.round_warmup_steps": run.config.train.phase_rate("active")[1],
    }


def _config_params(path: Path, kind: str | None = None) -> dict[str, str]:
    """A run's ``config.yaml`` as params: flattened, with the resolved values in place of the
    file's ``null`` defaults, and only the fields of the run's protocol ``kind``."""
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    flat = {**flatten(data), **_resolved(path)}
    other = _OTHER_FIELDS.get(kind or "", ())
    params = {}
    for k, v in flat.items():
        if any(k == o or (o.endswith(".") and k.startswith(o)) for o in other):
            continue
        key = "/".join(_safe(part) for part in str(k).split("/"))[:_MAX_KEY]
        params[key] = _param_value(v)
    return params


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _class_keys(names: Sequence[str]) -> dict[str, str]:
    """Class name -> sanitised metric suffix, unique even when two names sanitise alike."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = key = _safe(name)
        i = 2
        while key in used:
            key, i = f"{base}_{i}", i + 1
        used.add(key)
        out[name] = key
    return out


def _record_metrics(record: Mapping[str, Any], timestamp: int):
    from mlflow.entities import Metric

    metrics = []

    def add(key: str, value: Any, step: int = 0) -> None:
        if value is not None and _is_number(value):
            metrics.append(Metric(key, float(value), timestamp, int(step)))

    rounds = record.get("rounds") or []
    if record["kind"] == "active" and rounds:
        if _is_number(record.get("start_miou")):  # round 0: the source-only model, no labels
            add("miou", record["start_miou"], 0)
            add("labelled_fraction", 0.0, 0)
            add("pixels_labelled", 0, 0)
            add("regions", 0, 0)
        for r in rounds:
            add("miou", r.get("miou"), r["round"])
            add("labelled_fraction", r.get("fraction_cumulative"), r["round"])
            add("pixels_labelled", r.get("pixels_labelled_cumulative"), r["round"])
            add("regions", r.get("regions"), r["round"])
    else:
        add("miou", record.get("miou"), 0)
    add("final_miou", record.get("miou"))
    add("miou13", record.get("miou13"))
    add("budget_used", record.get("budget_used"))
    per_class = {
        "iou": record.get("per_class_iou") or {},
        "radius": record.get("class_mean_radius") or {},
    }  # class pixel shares are the validation set's, the same in every run: the report run
    names = list(record.get("class_names") or [])
    for table in per_class.values():
        names += [n for n in table if n not in names]
    keys = _class_keys(names)
    for prefix, table in per_class.items():
        for name in names:
            add(f"{prefix}/{keys[name]}", table.get(name))
    return metrics
