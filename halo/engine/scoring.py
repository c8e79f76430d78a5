"""The jobs that run a model over data without training it: an acquisition round, the evaluation
of a checkpoint, and the acquisition previews of the report.

Each is one function called by the thin CLI with a resolved :class:`~halo.config.Run`
(docs/design.md, "Commands and jobs"); devices, datasets and models from checkpoints come from
:mod:`halo.engine.runtime` and :mod:`halo.engine.restore`.

- :func:`acquire_round`: one acquisition round into a round folder;
- :func:`evaluate_checkpoint`: mIoU and per-class statistics of a checkpoint;
- :func:`preview_panels`: what a first round sees on a few target images (the report's figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from halo import timing
from halo.engine.restore import model_from_checkpoint
from halo.engine.runtime import EVAL_ON, check_round, dataset, pick_device
from halo.io import read_json
from halo.provenance import write_provenance

if TYPE_CHECKING:
    from halo.acquisition.rounds import BudgetReport
    from halo.config import Run

__all__ = ["acquire_round", "build_round_strategy", "evaluate_checkpoint", "preview_panels"]


def build_round_strategy(run: Run, *, seed: int):
    """The run's strategy, built once with its radii (``seed`` drives ``random``)."""
    from halo.acquisition.strategies import build_strategy

    options = {"seed": seed} if run.method.needs_seed else {}
    return build_strategy(
        run.config.method,
        active_radius=run.active_radius,
        mask_radius=run.mask_radius,
        **options,
    )


def acquire_round(
    run: Run,
    r: int,
    *,
    checkpoint: Path,
    prev: Path | None,
    out_dir: Path,
    device: str = "auto",
    progress: bool = True,
    annotator: str = "simulated",
    source_checkpoint: Path | None = None,
) -> BudgetReport:
    """Score the target pool with ``checkpoint`` and write round ``r``'s folder (with
    ``annotator="human"``: its queries, and the round waits for the answers). A method whose
    radius comes from the source model reads it from ``source_checkpoint``."""
    from halo.acquisition.annotators import Human
    from halo.acquisition.loop import acquire
    from halo.acquisition.queries import QueryWriter, class_table, file_sha256
    from halo.acquisition.rounds import PROVENANCE_FILE, read_budget
    from halo.choices import ANNOTATORS

    check_round(run, r)
    if (r == 1) != (prev is None):
        raise ValueError(
            "--prev (the previous round's folder) is required for rounds > 1 "
            "and not allowed for round 1"
        )
    if prev is not None:
        read_budget(prev)  # a missing or broken budget.json fails here, before any work
    kind = ANNOTATORS.lookup(annotator)
    from_source = run.method.radius_from == "source"
    if from_source != (source_checkpoint is not None):
        raise ValueError(
            f"--source-checkpoint: method {run.config.method!r} "
            + (
                "reads the source model's radius: give the source-only model.pt"
                if from_source
                else "does not read a source model's radius: leave it out"
            )
        )
    model, _ = model_from_checkpoint(run, checkpoint, pick_device(device))  # before the pool
    radius_model = None
    if source_checkpoint is not None:
        radius_model, _ = model_from_checkpoint(run, source_checkpoint, pick_device(device))
    target = dataset(run, "target", label_size=run.config.active.label_size)
    if kind is Human:
        queries = QueryWriter(
            out_dir,
            round=r,
            classes=class_table(run.protocol.classes, run.protocol.palette),
            checkpoint=file_sha256(checkpoint),
        )
        annotator_obj = Human(queries)
    else:
        annotator_obj = kind()

    def provenance(_report: BudgetReport) -> None:  # written once the round's files are
        write_provenance(
            out_dir,
            run.config,
            "halo acquire",
            {"round": r, "checkpoint": str(checkpoint), "annotator": annotator},
            name=PROVENANCE_FILE,  # the round folder's provenance.json is training's
        )

    timing.mark("compute")
    return acquire(
        model,
        target,
        build_round_strategy(run, seed=run.config.seed * 1000 + r),
        out_dir=out_dir,
        prev_dir=prev,
        round_budget=run.round_budget,
        batch_size=run.config.active.batch_size,
        progress=progress,
        on_complete=provenance,
        annotator=annotator_obj,
        radius_model=radius_model,
        upsample=run.config.active.label_size,
    )


def evaluate_checkpoint(
    run: Run,
    checkpoint: Path,
    *,
    budget: Path | None = None,
    on: str = "target",
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """mIoU (and mIoU* for SYNTHIA), per-class IoU, pixel shares and radii of a checkpoint on
    the target validation set (``on="source"``: the source's held-out ``val`` split), as the
    metrics dict ``halo evaluate`` writes."""
    from halo.engine.evaluate import evaluate

    if on not in EVAL_ON:
        raise ValueError(f"on: expected one of {', '.join(EVAL_ON)}, got {on!r}")
    model, ckpt = model_from_checkpoint(run, checkpoint, pick_device(device))
    val = dataset(run, EVAL_ON[on], label_size=run.config.eval.label_size)
    timing.mark("compute")
    result = evaluate(
        model,
        val,
        batch_size=run.config.eval.batch_size,
        flip=run.config.eval.flip,
        subset13=run.protocol.subset13,
        progress=progress,
        label_size=run.config.eval.label_size,
    )
    metrics = result.to_metrics(list(run.class_names))
    metrics.update(
        on=on,
        checkpoint=str(checkpoint),
        step=ckpt.get("step"),
        protocol=ckpt.get("protocol"),
        round=ckpt.get("round"),
    )
    if budget is not None:
        metrics["budget"] = read_json(budget, "budget report")
    return metrics


def preview_panels(run: Run, checkpoint: Path, count: int, *, device: str = "auto") -> list[dict]:
    """Score ``count`` evenly spaced target images with ``checkpoint``, as a first round would
    (the report's acquisition figures)."""
    from halo.acquisition.preview import acquisition_panels

    model, _ = model_from_checkpoint(run, checkpoint, pick_device(device))
    target = dataset(run, "target")
    count = min(count, len(target))
    indices = [round(i * (len(target) - 1) / max(count - 1, 1)) for i in range(count)]
    return acquisition_panels(
        model,
        target,
        build_round_strategy(run, seed=run.config.seed),
        indices,
        round_budget=run.round_budget,
    )
