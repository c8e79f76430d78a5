"""Parent runs: the MLflow UI's tree of a benchmark's runs, built by the report job alone.

One parent run per cell -- backbone × method × budget for active runs, backbone × variant for
the source-only models and for the supervised bound -- holds that cell's seeds as children. The
parents are the experiment's top-level runs (with the ``report`` run beside them), so the runs
table lists one row per method and budget with its mean ``final_miou``, and the chart view
(one click) compares them by name. Parents are made after every run is logged, by the one
report job of the benchmark, so no two jobs ever race to create the same parent: each child
only gets the tag ``mlflow.parentRunId`` set (idempotent). A parent is keyed like any run
(``halo.key = cell/<backbone>/<method>/<budget>``) and replaced only when its children or their
scores change; it carries the cell's mean ``final_miou`` over the seeds (logged first: the
compare view opens on it), its spread and the number of seeds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from halo.tracking.fields import _percent

PARENT = "mlflow.parentRunId"


def cell_key(backbone: str, method: str, budget: str) -> str:
    return f"cell/{backbone}/{method}/budget={budget}"


def _cell(tags: dict) -> tuple[str, str, str, str] | None:
    """``(backbone, method, budget, name)`` of a run's cell, from its tags; ``None``: no cell."""
    backbone, kind = tags.get("halo.backbone", ""), tags.get("halo.kind")
    if kind == "active":
        method, budget = tags["halo.method"], tags["halo.budget"]
        return backbone, method, budget, f"{method} · {_percent(float(budget))} · {backbone}"
    if kind in ("source", "supervised"):
        label = "source-only" if kind == "source" else kind
        variant = tags.get("halo.variant", "")
        return backbone, f"{label}/{variant}", kind, f"{label} · {variant} · {backbone}"
    return None


def link_runs(client, experiment_id: str, report_id: str, runs: list, *, uri: str) -> dict:
    """Create the cell parents and set every run's parent; ``{child run id: parent run id}``.

    ``runs``: the experiment's runs (``mlflow.entities.Run``) other than the report; the report
    itself (``report_id``) is not in the tree."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    from halo.tracking.keyed import _digest, _new_run

    cells: dict[tuple[str, str, str, str], list] = defaultdict(list)
    parents: dict[str, str] = {}
    for run in runs:
        cell = _cell(run.data.tags)
        if cell is not None:
            cells[cell].append(run)
    for (backbone, method, budget, name), children in sorted(cells.items()):
        scores = sorted(
            (c.data.tags.get("halo.seed", ""), c.data.metrics.get("final_miou")) for c in children
        )
        finals = [s for _, s in scores if s is not None]
        key = cell_key(backbone, method, budget)
        tags = {
            "halo.key": key,
            "halo.kind": "cell",
            "halo.backbone": backbone,
            "halo.method": method,
            "halo.budget": budget,
            "halo.digest": _digest({"key": key, "scores": scores}, []),
        }

        def fill(run_id: str, finals=finals, method=method, budget=budget) -> None:
            now = get_current_time_millis()
            metrics = [Metric("final_miou", statistics.fmean(finals), now, 0)] if finals else []
            if len(finals) > 1:
                metrics.append(Metric("final_miou_std", statistics.stdev(finals), now, 0))
            metrics.append(Metric("seeds", float(len(finals)), now, 0))
            params = [Param("method", method), Param("budget", budget)]
            client.log_batch(run_id, metrics=metrics, params=params, synchronous=True)

        parent_id = _new_run(client, experiment_id, name, tags, fill, uri=uri)
        if PARENT in client.get_run(parent_id).data.tags:  # a store of the older layout
            client.delete_tag(parent_id, PARENT)
        for child in children:
            parents[child.info.run_id] = parent_id
    for child_id, parent_id in parents.items():
        client.set_tag(child_id, PARENT, parent_id)
    return parents
