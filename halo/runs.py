"""Run records: one JSON document per finished run, the unit that tracking and the report read.

A *run* is one cell of the study grid: ``source`` (source-only), ``supervised`` (target fully
labelled) or an active-learning run of a method at a budget and seed. Its record is written by
``halo summarize`` to ``runs/<bench>/<backbone>/.../metrics.json`` from the evaluation metrics of
its checkpoints (``halo evaluate``) and, for active runs, the budget reports of its rounds
(``halo acquire``). Pure functions: reading and writing files is the CLI's job.

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
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KINDS = ("source", "supervised", "active")

_FINAL_KEYS = (
    "miou",
    "miou13",
    "per_class_iou",
    "class_names",
    "class_pixel_share",
    "class_mean_radius",
)


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

    Returns:
        The record described in the module docstring.

    Raises:
        ValueError: wrong kind, missing metrics, rounds out of order or lengths that disagree.
    """
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
    final = metrics[-1]
    missing = [k for k in _FINAL_KEYS if k not in final]
    if missing:
        raise ValueError(f"run_record: metrics lack {', '.join(missing)}")
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
    }
