"""Parent runs: the MLflow UI's tree of a benchmark's runs, built by the report job alone.

The study (the benchmark's ``report`` run) is the root; under it one parent run per backbone ×
method × budget holds that cell's seeds as children, and the source-only and supervised runs
hang from the root directly. Parents are made after every run is logged, by the one report job
of the benchmark, so no two jobs ever race to create the same parent: each child only gets the
tag ``mlflow.parentRunId`` set (idempotent). A parent is keyed like any run (``halo.key =
cell/<backbone>/<method>/<budget>``) and replaced only when its children or their scores change;
it carries the cell's mean ``final_miou`` over the seeds and their number.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from halo.tracking.fields import _percent

PARENT = "mlflow.parentRunId"


def cell_key(backbone: str, method: str, budget: str) -> str:
    return f"cell/{backbone}/{method}/budget={budget}"


def link_runs(client, experiment_id: str, report_id: str, runs: list, *, uri: str) -> dict:
    """Create the cell parents and set every run's parent; ``{child run id: parent run id}``.

    ``runs``: the experiment's runs (``mlflow.entities.Run``) other than the report."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    from halo.tracking.keyed import _digest, _new_run

    cells: dict[tuple[str, str, str], list] = defaultdict(list)
    parents: dict[str, str] = {}
    for run in runs:
        tags = run.data.tags
        if tags.get("halo.kind") == "active":
            cells[(tags["halo.backbone"], tags["halo.method"], tags["halo.budget"])].append(run)
        elif tags.get("halo.kind") in ("source", "supervised"):
            parents[run.info.run_id] = report_id
    for (backbone, method, budget), children in sorted(cells.items()):
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
            PARENT: report_id,
        }

        def fill(run_id: str, finals=finals, method=method, budget=budget) -> None:
            now = get_current_time_millis()
            metrics = [Metric("seeds", float(len(finals)), now, 0)]
            if finals:
                metrics.append(Metric("final_miou", statistics.fmean(finals), now, 0))
            if len(finals) > 1:
                metrics.append(Metric("final_miou_std", statistics.stdev(finals), now, 0))
            params = [Param("method", method), Param("budget", budget)]
            client.log_batch(run_id, metrics=metrics, params=params, synchronous=True)

        name = f"{method} · {_percent(float(budget))} · {backbone}"
        parent_id = _new_run(client, experiment_id, name, tags, fill, uri=uri)
        client.set_tag(parent_id, PARENT, report_id)  # a re-logged report is a new root
        for child in children:
            parents[child.info.run_id] = parent_id
    for child_id, parent_id in parents.items():
        client.set_tag(child_id, PARENT, parent_id)
    return parents
