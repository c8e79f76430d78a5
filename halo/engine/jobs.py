"""The jobs: one function per ``halo`` command that runs a model or reads run files.

The CLI (:mod:`halo.cli.commands`) parses, calls exactly one function of this module and prints
what it returns (docs/design.md, "Commands and jobs"). A job takes a resolved
:class:`~halo.config.Run` and plain paths, does all of its work here (train *and* evaluate,
with the rule for the training state in between) and returns what the command says.

The failure rule a job leaves to its caller: a command that fails removes the ``--out`` folder
it created, unless a finished ``model.pt`` was published there (:func:`halo.runs.published`): a training
whose evaluation then fails keeps its model and its training state, and a rerun only evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from halo import timing
from halo.engine import scoring, session
from halo.io import write_json
from halo.runs import MODEL_FILE

if TYPE_CHECKING:
    from halo.config import Run

__all__ = [
    "Trained",
    "acquire",
    "check_data",
    "evaluate",
    "pretrain",
    "preview_panels",
    "train",
    "verify",
]

acquire = scoring.acquire_round  # one acquisition round (its own module: scoring)
preview_panels = scoring.preview_panels  # the report's acquisition figures


@dataclass(frozen=True)
class Trained:
    """What a training job did: ``result`` of the session (``None`` on a rank other than 0),
    the published model, and the evaluation written after it (``--eval-out``)."""

    result: dict | None
    model: Path
    metrics: dict | None = None
    eval_out: Path | None = None


def evaluate(
    run: Run,
    checkpoint: Path,
    out: Path,
    *,
    budget: Path | None = None,
    on: str = "target",
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Evaluate ``checkpoint`` and write the metrics JSON ``out`` (``halo evaluate``)."""
    metrics = scoring.evaluate_checkpoint(
        run, checkpoint, budget=budget, on=on, device=device, progress=progress
    )
    timing.mark("write")
    write_json(out, metrics)
    return metrics


def _then_evaluate(
    run: Run,
    train_call: Callable[..., dict | None],
    out: Path,
    *,
    eval_out: Path | None,
    budget: Path | None,
    device: str,
    progress: bool,
    snapshots: int,
) -> Trained:
    """Train, then (``eval_out``) evaluate the finished model in the same process.

    With ``eval_out`` the final training state stays beside ``model.pt`` until the evaluation is
    written (:func:`halo.engine.session.drop_state`): an evaluation that fails or is killed
    leaves a model and a state from which a rerun only publishes and evaluates again."""
    result = train_call(
        keep_state=eval_out is not None, snapshot_every=snapshots, device=device, progress=progress
    )
    model = out / MODEL_FILE
    if result is None or eval_out is None:  # nothing to evaluate, or a rank other than 0
        return Trained(result, model)
    metrics = evaluate(run, model, eval_out, budget=budget, device=device, progress=progress)
    session.drop_state(out)
    return Trained(result, model, metrics, eval_out)


def pretrain(
    run: Run,
    out: Path,
    *,
    eval_out: Path | None = None,
    snapshots: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> Trained:
    """``halo pretrain``: the source-only model into ``out`` (and its evaluation)."""

    def call(**options):
        return session.train_source(run, out, **options)

    options = {"device": device, "progress": progress, "snapshots": snapshots}
    return _then_evaluate(run, call, out, eval_out=eval_out, budget=None, **options)


def train(
    run: Run,
    out: Path,
    *,
    protocol: str = "active",
    round: int | None = None,
    init: Path | None = None,
    masks: Path | None = None,
    eval_out: Path | None = None,
    snapshots: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> Trained:
    """``halo train``: one active round from ``init`` on the labels of ``masks``, or the
    supervised bound (``protocol="supervised"``), into ``out`` (and its evaluation; an active
    round's includes its ``budget.json``)."""
    budget = None
    if protocol == "supervised":

        def call(**options):
            return session.train_supervised(run, out, **options)

    else:
        if round is None or init is None or masks is None:
            raise ValueError("--protocol active needs --round, --init and --masks")
        budget = session.budget_file(Path(masks))

        def call(**options):
            return session.train_round(
                run, round, init=Path(init), round_dir=Path(masks), out_dir=out, **options
            )

    options = {"device": device, "progress": progress, "snapshots": snapshots}
    return _then_evaluate(run, call, out, eval_out=eval_out, budget=budget, **options)


def check_data(run: Run, *, verify: bool = False) -> list[tuple[str, int]]:
    """``halo check-data``: the benchmark's folders in place (cheap); with ``verify``, every
    image paired with its label and decoded once. Returns ``[(which, pairs decoded)]``."""
    from halo.config import check_data as folders_in_place
    from halo.engine.runtime import dataset

    folders_in_place(run)
    timing.mark("compute")
    decoded = []
    if verify:
        for which in ("source", "target", "val"):
            ds = dataset(run, which, verify=False)
            ds.verify()  # always decodes (no stamp is consulted)
            decoded.append((which, len(ds)))
    return decoded


def verify(root: Path, configfile: str | None, progress: Callable[[int], None] | None = None):
    """``halo verify``: ``(files read, faults, the commands that rebuild them)`` (no commands
    when nothing is corrupt)."""
    from halo.engine.verify import rebuild_command, verify_project

    timing.mark("compute")
    count, faults = verify_project(root, progress)
    return count, faults, (rebuild_command(faults, configfile) if faults else [])
