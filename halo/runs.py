"""Runs: the run folder's layout and the run record, the unit that tracking and the report read.

A *run* is one cell of the study grid: ``source`` (source-only), ``supervised`` (target fully
labelled) or an active-learning run of a method at a budget and seed. Its record is written by
``halo summarize`` to ``runs/<bench>/<backbone>/.../metrics.json`` from the evaluation metrics of
its checkpoints (``halo evaluate``) and, for active runs, the budget reports of its rounds
(``halo acquire``).

Run folders (docs/design.md, "Files"): this module names them, for the workflow (which resolves
its grid at parse time, so nothing here imports torch) and for the commands::

    runs/<bench>/<backbone>/source/<variant>/seed<s>/      source-only model of seed s
    runs/<bench>/<backbone>/supervised/<variant>/seed<s>/  target-supervised bound of seed s
    runs/<bench>/<backbone>/<method>/<budget%>/seed<s>/    an active run (from seed s's source
                                                           model) ...
        round<r>/                                          ... its rounds (halo.acquisition.rounds)

Each folder holds ``model.pt`` (checkpoint), ``eval.json`` (``halo evaluate``), and a run folder
``metrics.json`` (the record) and ``mlflow.json`` (``halo track``).

Record (all mIoU / IoU values in percent, ``None`` where undefined)::

    {
      "benchmark": "synth-gta2cs", "backbone": "deeplabv3plus-r18",
      "method": "halo" | "source" | "supervised" | any acquisition method,
      "kind": "active" | "source" | "supervised",
      "variant": "hyperbolic-hfr",          # model key (head, HFR, decoder width)
      "budget": 0.05 | None,                # total fraction of target pixels (active runs)
      "seed": 0,
      "miou": 41.2, "miou13": None,         # final checkpoint
      "per_class_iou": {name: float | None}, "class_names": [...],
      "class_pixel_share": {name: float | None}, "class_mean_radius": {name: float | None},
      "budget_used": 0.0527 | None,         # labelled fraction after the last round
      "rounds": [                           # active runs: one entry per round, in order
        {"round": 1, "miou": 30.1, "pixels_labelled_cumulative": 324,
         "fraction_cumulative": 0.026, "regions": 36}, ...],
      "steps": 600,                         # training steps of the final checkpoint
      "start_miou": 10.2 | None,            # active runs: the source-only model's mIoU (round 0)
      "started": ..., "finished": ...,      # Unix seconds: the run's jobs (job_span)
    }
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from halo.choices import TRAINING_PROTOCOLS
from halo.io import read_json

KINDS = tuple(TRAINING_PROTOCOLS)  # a run is what its model was trained on (halo.choices)

RUNS_ROOT = "runs"
MODEL_FILE = "model.pt"
EVAL_FILE = "eval.json"
RECORD_FILE = "metrics.json"
TRACKED_FILE = "mlflow.json"
TRAIN_LOG = "train_log.json"

#: Run folder patterns; their ``{fields}`` are the workflow's wildcards (``budget`` in percent).
SOURCE_RUN = RUNS_ROOT + "/{bench}/{backbone}/source/{variant}/seed{seed}"
SUPERVISED_RUN = RUNS_ROOT + "/{bench}/{backbone}/supervised/{variant}/seed{seed}"
ACTIVE_RUN = RUNS_ROOT + "/{bench}/{backbone}/{method}/{budget}/seed{seed}"
ROUND_NAME = "round{round}"
ROUND_DIR = f"{ACTIVE_RUN}/{ROUND_NAME}"

#: A run folder below ``runs/`` (its round folder optional), named groups for every part.
RUN_RE = re.compile(
    r"(?P<bench>[^/]+)/(?P<backbone>[^/]+)/"
    r"(?:(?P<kind>source|supervised)/(?P<variant>[^/]+)/seed(?P<fixed_seed>[0-9]+)"
    r"|(?P<method>[^/]+)/(?P<budget>[0-9.]+)/seed(?P<seed>[0-9]+)(?:/round(?P<round>[0-9]+))?)"
)


def published(out: str | os.PathLike) -> bool:
    """Whether the folder ``out`` holds a finished model (``model.pt`` appears only when its
    training is done): a failed command keeps such an ``--out`` (a rerun then only evaluates)."""
    return (Path(out) / MODEL_FILE).is_file()


def budget_str(percent: float | str) -> str:
    """The ``{budget}`` path component, in percent: 5 -> ``'5'``, 2.2 -> ``'2.2'``."""
    return f"{float(percent):g}"


def fixed_run(bench: str, backbone: str, kind: str, variant: str, seed: int | str) -> str:
    """The folder of seed ``seed``'s source-only (``kind="source"``) or supervised run; an active
    run of seed s starts from seed s's source-only model, so the spread over seeds covers the
    whole pipeline."""
    pattern = {"source": SOURCE_RUN, "supervised": SUPERVISED_RUN}.get(kind)
    if pattern is None:
        raise ValueError(f"fixed_run: kind must be source or supervised, got {kind!r}")
    return pattern.format(bench=bench, backbone=backbone, variant=variant, seed=seed)


def active_run(bench: str, backbone: str, method: str, budget: float | str, seed: int | str) -> str:
    """The folder of an active run (``budget`` in percent)."""
    return ACTIVE_RUN.format(
        bench=bench, backbone=backbone, method=method, budget=budget_str(budget), seed=seed
    )


def round_dir(run: str | os.PathLike, r: int | str) -> str:
    """Round ``r``'s folder of the active run folder ``run``."""
    return f"{os.fspath(run)}/{ROUND_NAME.format(round=r)}"


def parse_run(run: str) -> dict[str, str | None]:
    """A run folder below ``runs/`` as a dict: ``bench``, ``backbone``, ``kind`` (source,
    supervised, active or round), ``seed``, and ``variant`` or ``method``/``budget``/``round``.

    Raises:
        ValueError: not a run folder.
    """
    m = RUN_RE.fullmatch(run)
    if m is None:
        raise ValueError(f"not a run folder: {RUNS_ROOT}/{run}")
    d = m.groupdict()
    fixed_seed = d.pop("fixed_seed")
    d["seed"] = d["seed"] or fixed_seed
    if d["kind"] is None:
        d["kind"] = "round" if d["round"] else "active"
    return d


_FINAL_KEYS = (
    "miou",
    "miou13",
    "per_class_iou",
    "class_names",
    "class_pixel_share",
    "class_mean_radius",
)


def _check_record_inputs(
    kind: str, metrics: Sequence[dict], budgets: Sequence[dict], budget: float | None
) -> None:
    """:func:`run_record`'s argument checks (its ``Raises``)."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r}; valid: {', '.join(KINDS)}")
    if not metrics:
        raise ValueError("run_record: no metrics given")
    if kind == "active":
        if len(budgets) != len(metrics):
            raise ValueError(
                f"run_record: {len(metrics)} round metrics but {len(budgets)} budget reports"
            )
        if budget is None or not 0 < budget <= 1:
            raise ValueError(f"run_record: an active run needs a budget in (0, 1], got {budget}")
        order = [b.get("round") for b in budgets]
        if order != list(range(1, len(budgets) + 1)):
            raise ValueError(f"run_record: budget reports are for rounds {order}, expected 1..n")
    elif len(metrics) != 1 or budgets:
        raise ValueError(f"run_record: a {kind} run has exactly one metrics file and no budgets")
    missing = [k for k in _FINAL_KEYS if k not in metrics[-1]]
    if missing:
        raise ValueError(f"run_record: metrics lack {', '.join(missing)}")


def run_record(
    *,
    benchmark: str,
    backbone: str,
    method: str,
    kind: str,
    variant: str,
    seed: int,
    metrics: Sequence[dict],
    budgets: Sequence[dict] = (),
    budget: float | None = None,
    span: tuple[float, float] | None = None,
    start: dict | None = None,
) -> dict[str, Any]:
    """Combine a run's evaluation metrics (and budget reports) into its record.

    Args:
        benchmark, backbone, method, variant, seed: the run's identity.
        kind: ``source``, ``supervised`` or ``active``.
        metrics: ``halo evaluate`` outputs, one per round in round order for an active run (the
            last one is the final model), exactly one otherwise.
        budgets: ``budget.json`` of each round (active runs), same order and length as
            ``metrics``.
        budget: total budget fraction of an active run.
        span: (first job's start, last job's end) in Unix seconds (:func:`job_span`), if known.
        start: an active run's starting point, the source-only model's ``halo evaluate``
            metrics (its mIoU is the record's ``start_miou``: round 0).

    Returns:
        The record described in the module docstring.

    Raises:
        ValueError: wrong kind, missing metrics, rounds out of order or lengths that disagree.
    """
    _check_record_inputs(kind, metrics, budgets, budget)
    final = metrics[-1]
    rounds = (
        [
            {
                "round": b["round"],
                "miou": m["miou"],
                "pixels_labelled_cumulative": b["pixels_labelled_cumulative"],
                "fraction_cumulative": b["fraction_cumulative"],
                "regions": b["regions"],
            }
            for m, b in zip(metrics, budgets, strict=True)
        ]
        if kind == "active"
        else []
    )
    return {
        "benchmark": benchmark,
        "backbone": backbone,
        "method": method,
        "kind": kind,
        "variant": variant,
        "budget": budget if kind == "active" else None,
        "seed": seed,
        **{k: final[k] for k in _FINAL_KEYS},
        "budget_used": rounds[-1]["fraction_cumulative"] if rounds else None,
        "rounds": rounds,
        "steps": final.get("step"),
        "start_miou": start["miou"] if kind == "active" and start is not None else None,
        "started": None if span is None else span[0],
        "finished": None if span is None else span[1],
    }


def job_span(folders: Sequence[str | os.PathLike]) -> tuple[float, float] | None:
    """When the jobs that made a run ran: the earliest ``started`` and the latest ``finished`` of
    the provenance files (training's and acquisition's) in ``folders``; None if none says."""
    starts, ends = [], []
    for folder in folders:
        for path in sorted(Path(folder).glob("provenance*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data.get("started"), int | float):
                starts.append(float(data["started"]))
            if isinstance(data.get("finished"), int | float):
                ends.append(float(data["finished"]))
    return (min(starts), max(ends)) if starts and ends else None


def _last_round(record_path: str | os.PathLike, record: dict) -> Path | None:
    if record.get("kind") != "active" or not record.get("rounds"):
        return None
    return Path(round_dir(Path(record_path).parent, record["rounds"][-1]["round"]))


def acquired_counts(record_path: str | os.PathLike, record: dict) -> Any:
    """Labelled pixels per class (int64 ``[C]``) of an active run's last round, read from the
    label masks beside its record (``<run>/round<R>/masks/``); ``None`` for other runs or where
    the masks are not there (a record copied on its own)."""
    from halo.acquisition.rounds import iter_masks
    from halo.report import labelled_class_counts

    last = _last_round(record_path, record)
    masks = iter([]) if last is None else iter_masks(last)
    first = next(masks, None)  # masks are streamed: a real pool's do not fit in memory at once
    if first is None:
        return None
    return labelled_class_counts(itertools.chain([first], masks), len(record["class_names"]))


def train_losses(record_path: str | os.PathLike, record: dict) -> list[list[float]] | None:
    """The training losses of an active run as ``[step, loss]`` pairs, round 1 first: every
    step, from the last round's ``train_log.json`` curve (it continues the earlier rounds'),
    else each round's logged history; ``None`` for other runs or where a round's log is not
    there (a record copied on its own)."""
    if _last_round(record_path, record) is None:
        return None
    logs = []
    for r in record["rounds"]:
        log = Path(round_dir(Path(record_path).parent, r["round"])) / TRAIN_LOG
        if not log.is_file():
            return None
        logs.append(read_json(log, "training log"))
    curve = logs[-1].get("curve") if logs else None
    if curve:
        return [[float(c[0]), float(c[1])] for c in curve]
    out = [[float(h["step"]), float(h["loss"])] for log in logs for h in log.get("history", [])]
    return out or None
