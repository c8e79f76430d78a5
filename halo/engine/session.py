"""The training job: a resumable training session and the three things it trains.

- :func:`train_source`, :func:`train_supervised`, :func:`train_round`: the resumable training
  session (:func:`train_session`): a killed job restarts from ``train_state.pt``; ``model.pt``
  appears only when the schedule is complete. :mod:`halo.engine.jobs` calls them (and evaluates
  after them); devices and datasets come from :mod:`halo.engine.runtime`, models from
  :mod:`halo.engine.restore`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from halo import timing
from halo.engine.checkpoint import load_checkpoint, load_weights
from halo.engine.restore import build_model, checkpoint_meta, load_fitting
from halo.engine.runtime import check_round, dataset, init_distributed, pick_device
from halo.engine.train import Schedule, train
from halo.io import check_writable, remove_stray_temp, write_json
from halo.provenance import CONFIG_FILE, PROVENANCE_FILE, write_provenance
from halo.runs import MODEL_FILE, TRAIN_LOG

if TYPE_CHECKING:
    from halo.config import Run

__all__ = [
    "STATE_FILE",
    "budget_file",
    "drop_state",
    "train_round",
    "train_session",
    "train_source",
    "train_supervised",
]

STATE_FILE = "train_state.pt"
SNAPSHOTS_DIR = "snapshots"  # where --snapshots N writes the model (below a job's --out)


def train_session(
    run: Run,
    *,
    protocol: str,
    out_dir: Path,
    schedule: Schedule,
    command: str,
    source: Any = None,
    target: Any = None,
    init: tuple[Path, dict] | None = None,
    extra_meta: dict | None = None,
    device: str = "auto",
    progress: bool = True,
    keep_state: bool = False,
    snapshot_every: int = 0,
) -> dict | None:
    """Train (resuming an interrupted run), then publish ``out_dir/model.pt`` atomically.

    ``snapshot_every`` > 0: also write the model every that many steps to ``out_dir/snapshots/``.

    With ``keep_state`` the final ``train_state.pt`` stays beside ``model.pt`` (a hard link, no
    copy) until :func:`drop_state`: work that follows in the same job (``--eval-out``) can fail
    or be killed, and a rerun then resumes at the last step and only publishes again, instead of
    training anew (Snakemake deletes a failed job's outputs, ``model.pt`` among them).

    ``init`` is ``(path, checkpoint)`` of the model to start from, loaded and checked by the
    caller (:func:`_load_fitting`) before any data is decoded. Progress is checkpointed to ``out_dir/train_state.pt``; the final ``model.pt`` appears only
    when the schedule is complete, so a killed job leaves no half-done model behind and a
    restarted job continues from the last checkpoint.

    Returns:
        On rank 0 the training result (``step``, ``loss``, ``seconds``, ``history``), or
        ``{"step", "complete": True}`` when ``model.pt`` was already complete; ``None`` on the
        other ranks.
    """
    dev = pick_device(device)
    rank, _world = init_distributed(dev)
    fingerprint = _fingerprint(run, protocol, schedule, init)
    final, state_path = out_dir / MODEL_FILE, out_dir / STATE_FILE
    if rank == 0:  # half-written files of a killed run (SIGKILL mid-write)
        remove_stray_temp(
            out_dir, (STATE_FILE, MODEL_FILE, TRAIN_LOG, CONFIG_FILE, PROVENANCE_FILE)
        )
    if final.is_file():
        done = load_checkpoint(final)
        if done.get("fingerprint") == fingerprint and done.get("step") == schedule.stop:
            return {"step": schedule.stop, "complete": True}
    torch.manual_seed(run.config.seed)
    model = build_model(run)
    if rank == 0:  # --out must take the checkpoints before the first step, not after 50
        check_writable(out_dir, checkpoint_bytes(model, run.config.train.optimizer))
    resume = _starting_point(model, state_path, fingerprint, init, protocol, schedule)
    model.to(dev)
    meta = checkpoint_meta(run, fingerprint=fingerprint, **(extra_meta or {}))
    timing.mark("compute")
    result = train(
        model,
        protocol=protocol,
        schedule=schedule,
        cfg=run.config.train,
        seed=run.config.seed,
        checkpoint=state_path,
        source=source,
        target=target,
        resume=resume,
        meta=meta,
        progress=progress,
        snapshots=(snapshot_every, out_dir / SNAPSHOTS_DIR) if snapshot_every else None,
    )
    timing.mark("write")
    if rank != 0:
        return None
    _publish(run, out_dir, result, command, protocol, dev, (source, target), keep_state)
    return result


def _fingerprint(run: Run, protocol: str, schedule: Schedule, init) -> str:
    """The identity of a training run (what a resumed or completed run must match)."""
    init_path, init_ckpt = init if init is not None else (None, None)
    # The run's identity names the init checkpoint by what it holds, not by how its path was
    # typed (relative or absolute paths to one checkpoint must resume the same run).
    init_id = (
        None
        if init_ckpt is None
        else [init_ckpt.get("fingerprint") or str(init_path), init_ckpt.get("step")]
    )
    return run.fingerprint(protocol, schedule, init_id)


def _starting_point(model, state_path: Path, fingerprint, init, protocol, schedule) -> dict | None:
    """Load into ``model`` where this run starts: its own interrupted state, else the ``init``
    checkpoint; returns the checkpoint to continue (optimiser and schedule) or ``None``."""
    if state_path.is_file():
        state = load_checkpoint(state_path)
        if state.get("fingerprint") == fingerprint:
            load_weights(model, state, where=str(state_path))
            print(f"resuming from {state_path} at step {state['step']}")
            return state
    if init is None:
        return None
    init_path, init_ckpt = init
    load_weights(model, init_ckpt, where=str(init_path))
    if init_ckpt.get("protocol") == protocol and init_ckpt.get("step") == schedule.start:
        return init_ckpt  # continue the previous round's optimiser and schedule
    return None


def _publish(run, out_dir: Path, result, command, protocol, dev, data, keep_state) -> None:
    """What made the model, written once it exists (a failed run leaves no provenance behind);
    ``model.pt`` last: it marks the run complete (with ``keep_state`` a hard link of the final
    training state, which stays until :func:`drop_state`)."""
    datasets = {  # the data the model saw (MLflow's dataset inputs, halo.tracking)
        which: getattr(ds, "dataset", ds).describe()  # a round's MaskedTarget wraps the pool
        for which, ds in zip(("source", "target"), data, strict=True)
        if ds is not None and hasattr(getattr(ds, "dataset", ds), "describe")
    }
    extra = {"protocol": protocol, "device": str(dev), "datasets": datasets}
    write_provenance(out_dir, run.config, command, extra)
    keys = ("step", "loss", "seconds", "history", "curve")
    write_json(out_dir / TRAIN_LOG, {k: result[k] for k in keys})
    final, state_path = out_dir / MODEL_FILE, out_dir / STATE_FILE
    if keep_state:
        link = out_dir / f".tmp-{MODEL_FILE}.link"
        link.unlink(missing_ok=True)
        os.link(state_path, link)
        os.replace(link, final)
    else:
        os.replace(state_path, final)


def checkpoint_bytes(model: nn.Module, optimizer: str) -> int:
    """About what a job's checkpoints take on disk at once: the training state (the weights and
    the optimiser's moments: two for AdamW, one for SGD's momentum) and the published model,
    float32, plus 16 MB of the rest."""
    weights = sum(p.numel() for p in model.parameters()) * 4
    moments = 2 if optimizer == "adamw" else 1
    return weights * (2 + moments) + (16 << 20)


def drop_state(out_dir: Path) -> None:
    """Remove a ``train_state.pt`` kept by ``train_session(keep_state=True)`` once the job's work
    is done (only the hard link of the published ``model.pt``)."""
    state, final = out_dir / STATE_FILE, out_dir / MODEL_FILE
    if state.is_file() and final.is_file() and os.path.samefile(state, final):
        state.unlink()


def train_source(run: Run, out_dir: Path, **options: Any) -> dict | None:
    """Source-only training (``train.source_steps``): the baseline and every ADA run's start."""
    steps = run.config.train.source_steps
    return train_session(
        run,
        protocol="source",
        out_dir=out_dir,
        schedule=Schedule(0, steps, steps),
        command="halo pretrain",
        source=dataset(run, "source"),
        **options,
    )


def train_supervised(run: Run, out_dir: Path, **options: Any) -> dict | None:
    """The target-supervised bound (``train.supervised_steps`` on the fully labelled target)."""
    steps = run.config.train.supervised_steps
    return train_session(
        run,
        protocol="supervised",
        out_dir=out_dir,
        schedule=Schedule(0, steps, steps),
        command="halo train",
        target=dataset(run, "target"),
        **options,
    )


def budget_file(round_dir: Path) -> Path:
    """The budget report of a round folder (what ``--eval-out`` of an active round includes)."""
    from halo.acquisition.rounds import BUDGET_FILE

    return Path(round_dir) / BUDGET_FILE


def train_round(
    run: Run, r: int, *, init: Path, round_dir: Path, out_dir: Path, **options: Any
) -> dict | None:
    """Active round ``r``: fine-tune from ``init`` on source labels plus the labels of
    ``round_dir``; the schedule (warm-up, then the configured decay) runs continuously over all
    rounds, each round its span of it (:meth:`~halo.config.Run.round_span`)."""
    from halo.acquisition.rounds import MaskedTarget, read_budget

    check_round(run, r)
    read_budget(round_dir)  # a missing or broken budget.json fails here, before any step
    start = (init, load_fitting(run, init))  # a missing, foreign or unsafe model fails first
    target = MaskedTarget(dataset(run, "target"), round_dir, resize=run.config.active.label_size)
    return train_session(
        run,
        protocol="active",
        out_dir=out_dir,
        schedule=Schedule(*run.round_span(r)),
        command="halo train",
        source=dataset(run, "source"),
        target=target,
        init=start,
        extra_meta={"round": r},
        **options,
    )
