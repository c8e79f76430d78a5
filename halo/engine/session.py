"""The run life cycle: devices, datasets, models from checkpoints, and the jobs themselves.

Every ``halo`` command that trains is one function here, called by the thin
CLI with a resolved :class:`~halo.config.Run` (docs/design.md, "Commands and jobs"):

- :func:`train_source`, :func:`train_supervised`, :func:`train_round`: the resumable training
  session (:func:`train_session`): a killed job restarts from ``train_state.pt``; ``model.pt``
  appears only when the schedule is complete;
- the jobs that run a model without training it (acquisition, evaluation, previews) are in
  :mod:`halo.engine.scoring`.

The device is picked here and only here (``auto``: this rank's GPU under torchrun, else the
visible GPU with the most free memory, else the CPU); below this module, device follows data.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from halo import timing
from halo.engine.checkpoint import check_fits, load_checkpoint, load_weights
from halo.engine.train import Schedule, train
from halo.io import check_writable, remove_stray_temp, write_json
from halo.provenance import CONFIG_FILE, PROVENANCE_FILE, write_provenance
from halo.runs import MODEL_FILE, TRAIN_LOG

if TYPE_CHECKING:
    from halo.config import Run
    from halo.data.dataset import SegmentationDataset

__all__ = [
    "budget_file",
    "build_model",
    "check_round",
    "dataset",
    "drop_state",
    "init_distributed",
    "model_from_checkpoint",
    "pick_device",
    "train_round",
    "train_session",
    "train_source",
    "train_supervised",
]

STATE_FILE = "train_state.pt"


# --------------------------------------------------------------------------------------------
# Devices, datasets, models
# --------------------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    """The device a job runs on: ``auto`` = this rank's GPU under torchrun, else the visible GPU
    with the most free memory, else the CPU."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        return device
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if "LOCAL_RANK" in os.environ:  # torchrun: one GPU per local rank
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    # Snakemake assigns no GPU ids: a job alone on its process takes the GPU with the most free
    # memory (the visible ones; CUDA_VISIBLE_DEVICES, e.g. from SLURM, restricts them).
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    return torch.device("cuda", max(range(len(free)), key=free.__getitem__))


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); (rank, world)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


SNAPSHOTS_DIR = "snapshots"  # where --snapshots N writes the model (below a job's --out)
#: ``halo evaluate --on``: the target's val set, or the source dataset's held-out val split
EVAL_ON = {"target": "val", "source": "source-val"}


def dataset(
    run: Run, which: str, verify: bool = True, label_size: bool = False
) -> SegmentationDataset:
    """The benchmark's ``source``, ``target`` or ``val`` dataset at its configured size, or
    ``source-val``: the source dataset's ``val`` split at the source size (held out from
    training only where the source trains on another split, as the synthetic GTAV's ``train``).

    With ``verify`` every file is decoded once before any work (a corrupt PNG, unknown label
    ids or mismatched sizes fail here, naming the file), unless the files, unchanged, were
    verified before (a stamp in :func:`halo.io.cache_dir`). ``label_size``: labels at their
    files' size (evaluation with ``eval.label_size``)."""
    from halo.data import build_dataset
    from halo.io import cache_dir

    source_val = dataclasses.replace(run.benchmark.source, split="val")
    spec = source_val if which == "source-val" else getattr(run.benchmark, which)
    size = run.source_size if which in ("source", "source-val") else run.target_size
    ds = build_dataset(
        spec.dataset,
        run.root / spec.folder,
        spec.split,
        size,
        protocol=run.benchmark.protocol,
        resample=run.config.resize,
        label_size=label_size,
        **spec.options,
    )
    if verify:
        ds.verify(cache=cache_dir())
    return ds


def build_model(run: Run) -> nn.Module:
    """The run's segmenter, freshly initialised (from the torch RNG), on the CPU."""
    from halo.models.segmenter import build_backbone

    return build_backbone(run.config.backbone, run.num_classes, **run.model_options)


def _load_fitting(run: Run, path: Path) -> dict:
    """A checkpoint, loaded (plain data only) and checked to fit ``run``."""
    ckpt = load_checkpoint(path)
    check_fits(ckpt, run, path)
    return ckpt


def model_from_checkpoint(
    run: Run, path: str | os.PathLike, device: torch.device
) -> tuple[nn.Module, dict]:
    """Load a checkpoint, check that it fits ``run``, build the model, load the weights, move it
    to ``device``: ``(model, checkpoint dict)``.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: unreadable, or trained for another backbone, variant or class count (checked
            before the model is built).
    """
    path = Path(path)
    ckpt = _load_fitting(run, path)
    model = build_model(run)
    load_weights(model, ckpt, where=str(path))
    return model.to(device), ckpt


def _meta(run: Run, **extra: Any) -> dict:
    """What every checkpoint of ``run`` says about itself."""
    from halo.config import to_dict

    return {
        "config": to_dict(run.config),
        "backbone": run.config.backbone,
        "model_key": run.model_key,
        "model_options": dict(run.model_options),
        "num_classes": run.num_classes,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


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
    init_path, init_ckpt = init if init is not None else (None, None)
    # The run's identity names the init checkpoint by what it holds, not by how its path was
    # typed (relative or absolute paths to one checkpoint must resume the same run).
    init_id = (
        None
        if init_ckpt is None
        else [init_ckpt.get("fingerprint") or str(init_path), init_ckpt.get("step")]
    )
    fingerprint = run.fingerprint(protocol, schedule, init_id)
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
    resume = None
    if state_path.is_file():
        state = load_checkpoint(state_path)
        if state.get("fingerprint") == fingerprint:
            load_weights(model, state, where=str(state_path))
            resume = state
            print(f"resuming from {state_path} at step {state['step']}")
    if resume is None and init_ckpt is not None:
        load_weights(model, init_ckpt, where=str(init_path))
        if init_ckpt.get("protocol") == protocol and init_ckpt.get("step") == schedule.start:
            resume = init_ckpt  # continue the previous round's optimiser and schedule
    model.to(dev)
    meta = _meta(run, fingerprint=fingerprint, **(extra_meta or {}))
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
    # what made the model, written once it exists (a failed run leaves no provenance behind);
    # model.pt last: it marks the run complete
    datasets = {  # the data the model saw (MLflow's dataset inputs, halo.tracking)
        which: getattr(ds, "dataset", ds).describe()  # a round's MaskedTarget wraps the pool
        for which, ds in (("source", source), ("target", target))
        if ds is not None and hasattr(getattr(ds, "dataset", ds), "describe")
    }
    extra = {"protocol": protocol, "device": str(dev), "datasets": datasets}
    write_provenance(out_dir, run.config, command, extra)
    keys = ("step", "loss", "seconds", "history", "curve")
    write_json(out_dir / TRAIN_LOG, {k: result[k] for k in keys})
    if keep_state:
        link = out_dir / f".tmp-{MODEL_FILE}.link"
        link.unlink(missing_ok=True)
        os.link(state_path, link)
        os.replace(link, final)
    else:
        os.replace(state_path, final)
    return result


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


def check_round(run: Run, r: int) -> None:
    rounds = run.config.active.rounds
    if not 1 <= r <= rounds:
        raise ValueError(f"--round {r}: expected 1..{rounds} (active.rounds)")


def train_round(
    run: Run, r: int, *, init: Path, round_dir: Path, out_dir: Path, **options: Any
) -> dict | None:
    """Active round ``r``: fine-tune from ``init`` on source labels plus the labels of
    ``round_dir``; the schedule (warm-up, then the configured decay) runs continuously over all
    rounds, each round its span of it (:meth:`~halo.config.Run.round_span`)."""
    from halo.acquisition.rounds import MaskedTarget, read_budget

    check_round(run, r)
    read_budget(round_dir)  # a missing or broken budget.json fails here, before any step
    start = (init, _load_fitting(run, init))  # a missing, foreign or unsafe model fails first
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
