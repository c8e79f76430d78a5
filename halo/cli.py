"""The ``halo`` command line: the only place that reads config files, picks devices and writes files.

Snakemake rules and DVC stages call these sub-commands; they never duplicate their logic.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be HEIGHTxWIDTH, e.g. 64x128; got {text!r}"
        ) from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return h, w


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic datasets in the real layouts."""
    from halo.data import synthetic

    if args.style is None:
        written = synthetic.write_benchmark(
            args.out,
            size=args.size,
            seed=args.seed,
            count=args.count,
            conditions=args.conditions,
            progress=not args.quiet,
        )
        jobs = [
            (split, stats, Path(args.out) / dataset)
            for dataset, splits in written.items()
            for split, stats in splits.items()
        ]
    else:
        stats = synthetic.write_dataset(
            args.style,
            args.out,
            split=args.split,
            count=args.count or 100,
            size=args.size,
            seed=args.seed,
            conditions=args.conditions,
            progress=not args.quiet,
        )
        jobs = [(args.split, stats, Path(args.out))]
    for split, stats, out in jobs:
        rare = sorted(stats["share"].items(), key=lambda kv: kv[1])[:3]
        print(
            f"{stats['style']:>10}/{split:<5} {stats['images']:>5} images → {out}  "
            f"(rarest: {', '.join(f'{c} {100 * v:.2f}%' for c, v in rare)})"
        )
    return 0


# --------------------------------------------------------------------------------------------
# Shared shell: config, device, provenance
# --------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace):
    from halo.config import load_config

    return load_config(args.config, args.set or [])


def pick_device(name: str = "auto"):
    """The device a job runs on: ``auto`` = this rank's GPU under torchrun, else the visible GPU
    with the most free memory, else the CPU."""
    import torch

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


def _init_distributed(device) -> tuple[int, int]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); (rank, world)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def git_revision() -> str | None:
    """The source tree's git revision (with ``-dirty`` if modified), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_provenance(
    out_dir: Path, cfg, command: str, extra: dict | None = None, *, name: str = "provenance.json"
) -> None:
    """Write the resolved config and the git revision, command and versions beside outputs."""
    import platform

    import torch
    import yaml

    from halo import __version__
    from halo.config import to_dict
    from halo.io import write_json, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    write_json(
        out_dir / name,
        {
            "command": command,
            "argv": sys.argv,
            "git_revision": git_revision(),
            "halo_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "host": platform.node(),
            **(extra or {}),
        },
    )


def _dataset(cfg, which: str, verify: bool = True):
    """Build the benchmark's ``source``, ``target`` or ``val`` dataset at its configured size.

    With ``verify`` every file is decoded once before any work (a corrupt PNG, unknown label
    ids or mismatched sizes fail here, naming the file), unless the files, unchanged, were
    verified before (a stamp in :func:`halo.io.cache_dir`)."""
    from halo.data import build_dataset
    from halo.io import cache_dir

    bench = cfg.bench
    spec = getattr(bench, which)
    size = cfg.sizes[0] if which == "source" else cfg.sizes[1]
    ds = build_dataset(
        spec.dataset,
        cfg.root / spec.folder,
        spec.split,
        size,
        protocol=bench.protocol,
        **spec.options,
    )
    if verify:
        ds.verify(cache=cache_dir())
    return ds


def _model(cfg, num_classes: int):
    from halo.models.segmenter import build_backbone

    return build_backbone(cfg.backbone, num_classes, **cfg.model_options())


def _meta(cfg, num_classes: int, **extra) -> dict:
    from halo.config import to_dict

    return {
        "config": to_dict(cfg),
        "backbone": cfg.backbone,
        "model_key": cfg.model_key(),
        "model_options": cfg.model_options(),
        "num_classes": num_classes,
        **extra,
    }


def _check_fits(ckpt: dict, cfg, num_classes: int, where: Path) -> None:
    """A checkpoint from another backbone, head variant or class count is a clear error."""
    mine = {"backbone": cfg.backbone, "model_key": cfg.model_key(), "num_classes": num_classes}
    theirs = {k: ckpt.get(k) for k in mine}
    if theirs != mine:
        raise ValueError(f"checkpoint {where} was trained for {theirs}, this config needs {mine}")


def _run_training(
    args,
    cfg,
    *,
    protocol: str,
    out_dir: Path,
    schedule,
    source=None,
    target=None,
    init: Path | None = None,
    extra_meta: dict | None = None,
) -> int:
    """Train (resuming an interrupted run), then publish ``out_dir/model.pt`` atomically.

    Progress is checkpointed to ``out_dir/train_state.pt``; the final ``model.pt`` appears only
    when the schedule is complete, so a killed job leaves no half-done model behind and a
    restarted job continues from the last checkpoint.
    """
    import torch

    from halo.data.labels import get_protocol
    from halo.engine import train as T
    from halo.io import remove_stray_temp, write_json

    device = pick_device(args.device)
    rank, _world = _init_distributed(device)
    num_classes = get_protocol(cfg.bench.protocol).num_classes
    init_ckpt = None
    if init is not None:  # checked before any work: a missing or foreign checkpoint fails here
        init_ckpt = T.load_checkpoint(init)
        _check_fits(init_ckpt, cfg, num_classes, init)
    # The run's identity names the init checkpoint by what it holds, not by how its path was
    # typed (relative or absolute paths to one checkpoint must resume the same run).
    init_id = (
        None
        if init_ckpt is None
        else [init_ckpt.get("fingerprint") or str(init), init_ckpt.get("step")]
    )
    fingerprint = cfg.fingerprint(protocol, schedule, init_id)
    final, state_path = out_dir / "model.pt", out_dir / "train_state.pt"
    if rank == 0:  # half-written files of a killed run (SIGKILL mid-write)
        remove_stray_temp(
            out_dir, ("train_state.pt", "train_log.json", "config.yaml", "provenance.json")
        )
    if final.is_file():
        done = T.load_checkpoint(final)
        if done.get("fingerprint") == fingerprint and done.get("step") == schedule.stop:
            print(f"{final} is complete (step {schedule.stop}); nothing to do")
            return 0
    torch.manual_seed(cfg.seed)
    model = _model(cfg, num_classes)
    resume = None
    if state_path.is_file():
        state = T.load_checkpoint(state_path)
        if state.get("fingerprint") == fingerprint:
            T.load_weights(model, state, where=str(state_path))
            resume = state
            print(f"resuming from {state_path} at step {state['step']}")
    if resume is None and init_ckpt is not None:
        T.load_weights(model, init_ckpt, where=str(init))
        if init_ckpt.get("protocol") == protocol and init_ckpt.get("step") == schedule.start:
            resume = init_ckpt  # continue the previous round's optimiser and schedule
    model.to(device)
    meta = _meta(cfg, num_classes, fingerprint=fingerprint, **(extra_meta or {}))
    if rank == 0:
        write_provenance(out_dir, cfg, f"halo {args.command}", {"protocol": protocol})
    result = T.train(
        model,
        protocol=protocol,
        schedule=schedule,
        cfg=cfg.train,
        seed=cfg.seed,
        checkpoint=state_path,
        source=source,
        target=target,
        resume=resume,
        meta=meta,
        progress=not args.quiet,
    )
    if rank == 0:
        os.replace(state_path, final)
        write_json(
            out_dir / "train_log.json",
            {k: result[k] for k in ("step", "loss", "seconds", "history")},
        )
        print(
            f"trained {protocol} to step {result['step']} in {result['seconds']:.0f}s, "
            f"loss {result['loss']:.4f} → {final}"
        )
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Source-only training: the baseline and the initialisation of every ADA run."""
    from halo.engine.train import Schedule

    cfg = _load(args)
    source = _dataset(cfg, "source")
    steps = cfg.train.source_steps
    return _run_training(
        args,
        cfg,
        protocol="source",
        out_dir=Path(args.out),
        schedule=Schedule(0, steps, steps),
        source=source,
    )


def cmd_train(args: argparse.Namespace) -> int:
    """An active-learning round (source + acquired target labels) or the supervised bound."""
    from halo.engine.train import MaskedTarget, Schedule

    cfg = _load(args)
    out = Path(args.out)
    if args.protocol == "supervised":
        steps = cfg.train.supervised_steps
        return _run_training(
            args,
            cfg,
            protocol="supervised",
            out_dir=out,
            schedule=Schedule(0, steps, steps),
            target=_dataset(cfg, "target"),
        )
    if args.round is None or args.init is None or args.masks is None:
        raise ValueError("--protocol active needs --round, --init and --masks")
    rounds, per = cfg.active.rounds, cfg.train.round_steps
    if not 1 <= args.round <= rounds:
        raise ValueError(f"--round {args.round}: expected 1..{rounds} (active.rounds)")
    masks = Path(args.masks) / "masks"
    target = MaskedTarget(_dataset(cfg, "target"), masks)
    schedule = Schedule((args.round - 1) * per, args.round * per, rounds * per)
    return _run_training(
        args,
        cfg,
        protocol="active",
        out_dir=out,
        schedule=schedule,
        source=_dataset(cfg, "source"),
        target=target,
        init=Path(args.init),
        extra_meta={"round": args.round},
    )


def cmd_acquire(args: argparse.Namespace) -> int:
    """Score the target pool with a checkpoint and write the next round's label masks."""
    from halo.acquisition.masks import acquire
    from halo.acquisition.strategies import build_strategy
    from halo.data.labels import get_protocol
    from halo.engine.train import load_checkpoint, load_weights

    cfg = _load(args)
    rounds = cfg.active.rounds
    if not 1 <= args.round <= rounds:
        raise ValueError(f"--round {args.round}: expected 1..{rounds} (active.rounds)")
    if (args.round == 1) != (args.prev is None):
        raise ValueError(
            "--prev (the previous round's folder) is required for rounds > 1 "
            "and not allowed for round 1"
        )
    num_classes = get_protocol(cfg.bench.protocol).num_classes
    ckpt_path = Path(args.checkpoint)
    ckpt = load_checkpoint(ckpt_path)
    _check_fits(ckpt, cfg, num_classes, ckpt_path)  # cheap: before the pool is decoded
    target = _dataset(cfg, "target")
    device = pick_device(args.device)
    model = _model(cfg, num_classes)
    load_weights(model, ckpt, where=str(ckpt_path))
    model.to(device)
    a, m = cfg.selection_radii()
    options = {"seed": cfg.seed * 1000 + args.round} if cfg.method == "random" else {}
    strategy = build_strategy(cfg.method, **options)
    out = Path(args.out)
    write_provenance(
        out,
        cfg,
        "halo acquire",
        {"round": args.round, "checkpoint": str(ckpt_path)},
        name="provenance_acquire.json",  # the round folder's provenance.json is training's
    )
    report = acquire(
        model,
        target,
        strategy,
        out_dir=out,
        prev_dir=Path(args.prev) if args.prev else None,
        round_budget=cfg.active.budget / rounds,
        batch_size=cfg.active.batch_size,
        active_radius=a,
        mask_radius=m,
        progress=not args.quiet,
    )
    print(f"round {args.round}: labelled {report}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """mIoU (and mIoU* for SYNTHIA) of a checkpoint on the benchmark's target validation set."""
    import json

    from halo.data.labels import get_protocol
    from halo.engine.evaluate import evaluate
    from halo.engine.train import load_checkpoint, load_weights
    from halo.io import write_json

    cfg = _load(args)
    val = _dataset(cfg, "val")
    protocol = get_protocol(cfg.bench.protocol)
    ckpt_path = Path(args.checkpoint)
    ckpt = load_checkpoint(ckpt_path)
    _check_fits(ckpt, cfg, protocol.num_classes, ckpt_path)
    device = pick_device(args.device)
    model = _model(cfg, protocol.num_classes)
    load_weights(model, ckpt, where=str(ckpt_path))
    model.to(device)
    result = evaluate(
        model,
        val,
        batch_size=cfg.eval.batch_size,
        flip=cfg.eval.flip,
        subset13=protocol.subset13,
        progress=not args.quiet,
    )
    metrics = result.to_metrics(list(protocol.classes))
    metrics.update(
        checkpoint=str(ckpt_path),
        step=ckpt.get("step"),
        protocol=ckpt.get("protocol"),
        round=ckpt.get("round"),
    )
    if args.budget:
        metrics["budget"] = json.loads(Path(args.budget).read_text())
    out = Path(args.out)
    write_json(out, metrics)
    print(f"mIoU {metrics['miou']:.2f} on {len(val)} images → {out}")
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    """Check that the benchmark's datasets are in place (folders only; cheap)."""
    from halo.config import check_data

    cfg = _load(args)
    check_data(cfg)
    if args.verify:  # pair every file, then decode every image and label once
        for which in ("source", "target", "val"):
            ds = _dataset(cfg, which, verify=False)
            ds.verify()  # always decodes (no stamp is consulted)
            print(f"{which}: {len(ds)} image/label pairs decoded, ids within the label table")
    print(f"{cfg.benchmark}: data in place under {cfg.root}")
    return 0


def _read_json(path: str | Path, what: str) -> dict:
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None


def cmd_summarize(args: argparse.Namespace) -> int:
    """Combine a run's evaluation metrics (and budget reports) into its run record."""
    from halo.io import write_json
    from halo.runs import run_record

    cfg = _load(args)
    active = args.kind == "active"
    if active and len(args.budgets or []) != len(args.eval):
        raise ValueError("--kind active needs one --budgets file per --eval file (round order)")
    if active and len(args.eval) != cfg.active.rounds:
        raise ValueError(
            f"--eval: {len(args.eval)} files for {cfg.active.rounds} rounds (active.rounds)"
        )
    record = run_record(
        benchmark=cfg.benchmark,
        backbone=cfg.backbone,
        method=cfg.method if active else args.kind,
        kind=args.kind,
        variant=cfg.model_key(),
        seed=cfg.seed,
        metrics=[_read_json(p, "metrics") for p in args.eval],
        budgets=[_read_json(p, "budget report") for p in args.budgets or []],
        budget=cfg.active.budget if active else None,
    )
    write_json(Path(args.out), record)
    print(f"{record['kind']} run {record['method']}: mIoU {record['miou']:.2f} → {args.out}")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    """Log a run record to MLflow (idempotent), or initialise the tracking store."""
    from halo import tracking
    from halo.io import write_json

    if args.init:
        uri = tracking.init_store(args.uri)
        print(f"tracking store ready: {uri}")
        return 0
    if not args.record or not args.out:
        raise ValueError("halo track needs --record and --out (or --init)")
    record = _read_json(args.record, "run record")
    artifacts = [Path(args.record), *map(Path, args.artifacts or [])]
    for path in artifacts:
        if not path.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist")
    uri = tracking.tracking_uri(args.uri)
    run_id = tracking.log_run(record, artifacts=artifacts, uri=uri)
    write_json(
        Path(args.out),
        {"run_id": run_id, "tracking_uri": uri, "experiment": record["benchmark"]},
    )
    print(f"logged {record['kind']} run {record['method']} → MLflow run {run_id} ({uri})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Tables and figures of a benchmark's runs into one folder (and the MLflow report run)."""
    import shutil
    import tempfile

    from halo import report

    cfg = _load(args)
    records = [_read_json(p, "run record") for p in args.records]
    acquired = [
        _acquired_counts(Path(p), rec) for p, rec in zip(args.records, records, strict=True)
    ]
    losses = [_train_losses(Path(p), rec) for p, rec in zip(args.records, records, strict=True)]
    panels = None
    if args.panels_checkpoint and args.panels > 0:
        panels = _acquisition_panels(args, cfg)
    out = Path(args.out)
    # Build in a sibling temp folder and swap it in: a killed report leaves no half-written folder.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        summary = report.build_report(
            records,
            tmp,
            benchmark=cfg.benchmark,
            panels=panels,
            acquired=acquired,
            losses=losses,
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not args.no_track:
        from halo import tracking

        files = [out / f for f in summary["files"]]
        tracking.log_report(cfg.benchmark, files, summary=summary, uri=tracking.tracking_uri())
    print(f"report of {len(records)} runs → {out}")
    return 0


def _acquired_counts(record_path: Path, record: dict):
    """Labelled pixels per class of an active run's last round, read from the label masks in
    ``<run>/round<R>/masks/`` beside its record (``runs/.../seed<s>/metrics.json``); ``None``
    for other runs or where the masks are not there (a record copied on its own)."""
    from halo.acquisition.masks import MASKS_DIR, read_mask
    from halo.report import labelled_class_counts

    if record.get("kind") != "active" or not record.get("rounds"):
        return None
    masks = record_path.parent / f"round{record['rounds'][-1]['round']}" / MASKS_DIR
    files = sorted(masks.rglob("*.png")) if masks.is_dir() else []
    if not files:
        return None
    return labelled_class_counts((read_mask(f) for f in files), len(record["class_names"]))


def _train_losses(record_path: Path, record: dict) -> list[float] | None:
    """The logged training losses of an active run, round 1 first, read from each round's
    ``train_log.json`` beside its record; ``None`` for other runs or where a round's log is not
    there (a record copied on its own)."""
    if record.get("kind") != "active" or not record.get("rounds"):
        return None
    out: list[float] = []
    for r in record["rounds"]:
        log = record_path.parent / f"round{r['round']}" / "train_log.json"
        if not log.is_file():
            return None
        out += [float(h["loss"]) for h in _read_json(log, "training log").get("history", [])]
    return out or None


def _acquisition_panels(args: argparse.Namespace, cfg) -> list[dict]:
    """Score a few target images with a checkpoint, for the report's acquisition figures."""
    from halo.acquisition.strategies import build_strategy
    from halo.data.labels import get_protocol
    from halo.engine.train import load_checkpoint, load_weights
    from halo.report import acquisition_panels

    num_classes = get_protocol(cfg.bench.protocol).num_classes
    path = Path(args.panels_checkpoint)
    ckpt = load_checkpoint(path)
    _check_fits(ckpt, cfg, num_classes, path)
    model = _model(cfg, num_classes)
    load_weights(model, ckpt, where=str(path))
    model.to(pick_device(args.device))
    target = _dataset(cfg, "target")
    a, m = cfg.selection_radii()
    options = {"seed": cfg.seed} if cfg.method == "random" else {}
    count = min(args.panels, len(target))
    indices = [round(i * (len(target) - 1) / max(count - 1, 1)) for i in range(count)]
    return acquisition_panels(
        model,
        target,
        build_strategy(cfg.method, **options),
        indices,
        round_budget=cfg.active.budget / cfg.active.rounds,
        active_radius=a,
        mask_radius=m,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halo",
        description="HALO-AL: hyperbolic active learning for semantic segmentation under "
        "domain shift.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "synth",
        help="write the embedded synthetic benchmark in the real datasets' layouts",
        description="Write synthetic street scenes in the layout of GTAV (style gta), "
        "Cityscapes (cityscapes), SYNTHIA (synthia) or ACDC (acdc). Without --style, write the "
        "default benchmark: OUT/gta5, OUT/synthia, OUT/cityscapes and OUT/acdc.",
    )
    p.add_argument(
        "--style",
        choices=("gta", "cityscapes", "synthia", "acdc"),
        default=None,
        help="domain style to write (default: the whole default benchmark)",
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="split to write with --style (default: train)",
    )
    p.add_argument(
        "--count",
        type=_positive,
        default=None,
        help="images per split (per ACDC condition); default: 100 with --style, "
        "else the default benchmark's counts (400 train / 100 val, ACDC 100 / 25)",
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(64, 128),
        metavar="HxW",
        help="image size (default: 64x128)",
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument(
        "--conditions",
        nargs="+",
        default=["fog", "night", "rain", "snow"],
        choices=("fog", "night", "rain", "snow"),
        help="ACDC conditions to write",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            default=None,
            help="YAML run config (default: the built-in defaults, see configs/)",
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. --set train.batch_size=4 (repeatable)",
        )
        p.add_argument(
            "--device",
            default="auto",
            help="auto (this rank's GPU if present, else CPU), cpu, cuda or cuda:N",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "pretrain",
        help="train the source-only model (initialises every ADA run)",
        description="Train on source labels only for train.source_steps steps. Writes "
        "OUT/model.pt (model, optimiser, step), OUT/config.yaml, OUT/provenance.json and "
        "OUT/train_log.json; a killed run restarted with the same arguments resumes from "
        "OUT/train_state.pt. Works under torchrun --nproc-per-node N.",
    )
    common(p)
    p.add_argument(
        "--out", required=True, help="output folder, e.g. runs/<bench>/<backbone>/source"
    )
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser(
        "train",
        help="train one active-learning round, or the target-supervised bound",
        description="--protocol active: fine-tune from --init (the source model for round 1, "
        "the previous round's model.pt after) on source labels plus the target labels acquired "
        "in --masks (a round folder); the schedule (warm-up + poly decay) runs continuously "
        "over all rounds. --protocol supervised: train on fully labelled target data. Writes "
        "OUT/model.pt; resumes from OUT/train_state.pt if killed. Works under torchrun.",
    )
    common(p)
    p.add_argument("--protocol", choices=("active", "supervised"), default="active")
    p.add_argument("--round", type=_positive, default=None, help="round number r (1..rounds)")
    p.add_argument("--init", default=None, help="checkpoint to start from (active)")
    p.add_argument("--masks", default=None, help="round folder holding masks/ (active)")
    p.add_argument("--out", required=True, help="output folder (the round folder)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "acquire",
        help="score the target pool and write the next round's label masks",
        description="Run --checkpoint over the target pool, score pixels with the config's "
        "method, select regions under the round budget (active.budget / active.rounds) and "
        "write OUT/masks/<id>.png (cumulative, 255 = unlabelled), OUT/blocked.npz and "
        "OUT/budget.json (written last: its presence marks a complete round).",
    )
    common(p)
    p.add_argument("--checkpoint", required=True, help="model to score with")
    p.add_argument("--round", type=_positive, required=True, help="round number r (1..rounds)")
    p.add_argument("--prev", default=None, help="the previous round's folder (rounds > 1)")
    p.add_argument("--out", required=True, help="this round's folder")
    p.set_defaults(func=cmd_acquire)

    p = sub.add_parser(
        "evaluate",
        help="mIoU of a checkpoint on the target validation set",
        description="Evaluate --checkpoint on the benchmark's target validation split and write "
        "a metrics JSON: mIoU (percent), mIoU* (SYNTHIA 13 classes), per-class IoU, class pixel "
        "share and class-average hyperbolic radius.",
    )
    common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--budget", default=None, help="a round's budget.json to include")
    p.add_argument("--out", required=True, help="metrics JSON path")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "check-data",
        help="check that a benchmark's datasets are in place",
        description="Check, without opening any file, that the benchmark's source, target and "
        "validation datasets are under data_root in their official layouts; name every missing "
        "folder and where to get the data. The workflow runs this before any job. With "
        "--verify, also pair every image with its label and decode every file once (a corrupt "
        "or truncated PNG, an unknown label id or mismatched sizes fail naming the file): run it "
        "once on new real data before a long training.",
    )
    common(p)
    p.add_argument("--verify", action="store_true", help="decode every image and label once")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser(
        "summarize",
        help="combine a run's evaluation metrics into its run record (metrics.json)",
        description="Write a run record (halo.runs): identity from the config, final mIoU, "
        "per-class IoU and radius, and for an active run the mIoU and labelled budget of every "
        "round. --eval takes halo evaluate outputs (one per round, in order, for an active run).",
    )
    common(p)
    p.add_argument("--kind", choices=("source", "supervised", "active"), required=True)
    p.add_argument("--eval", nargs="+", required=True, help="halo evaluate metrics JSON files")
    p.add_argument("--budgets", nargs="+", default=None, help="budget.json of each round (active)")
    p.add_argument("--out", required=True, help="run record path (metrics.json)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser(
        "track",
        help="log a run record to MLflow (idempotent), or initialise the store",
        description="Log a run record (halo summarize) with its artifacts to MLflow: one "
        "experiment per benchmark, one run per (backbone, method, budget, seed); a retried job "
        "replaces its run instead of duplicating it. The store is MLFLOW_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working folder. --init creates or upgrades the store once, "
        "before parallel jobs write to it.",
    )
    p.add_argument("--init", action="store_true", help="create/upgrade the tracking store only")
    p.add_argument("--record", default=None, help="run record (metrics.json)")
    p.add_argument("--artifacts", nargs="*", default=[], help="files to attach to the run")
    p.add_argument("--uri", default=None, help="tracking URI (default: see above)")
    p.add_argument("--out", default=None, help="where to write {run_id, tracking_uri}")
    p.set_defaults(func=cmd_track)

    p = sub.add_parser(
        "report",
        help="tables and figures of a benchmark's runs",
        description="Write OUT/miou_table.{csv,md}, per_class.csv, budget_curve.png, "
        "radius_vs_frequency.{csv,png} and acquisition/*.png (image | radius | entropy | score "
        "| selected pixels, scored with --panels-checkpoint and the config's method), and log "
        "them to MLflow as the benchmark's 'report' run. OUT is replaced as a whole.",
    )
    common(p)
    p.add_argument("--records", nargs="+", required=True, help="run records (metrics.json)")
    p.add_argument("--panels-checkpoint", default=None, help="model for the acquisition figures")
    p.add_argument("--panels", type=int, default=3, help="target images to draw (default 3)")
    p.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")
    p.add_argument("--out", required=True, help="report folder, e.g. results/<bench>")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``halo`` console script."""
    from halo.engine.errors import TrainingDiverged

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad input: one clear line, non-zero exit
        print(f"halo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:  # the last good checkpoint is kept for inspection
        print(f"halo {args.command}: error: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
