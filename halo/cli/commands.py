"""The ``halo`` sub-commands: parse, call, print.

Each command loads the resolved run (:func:`halo.config.load_run`), calls one function of the
package (one job of :mod:`halo.engine.jobs`, the report, tracking, the synthetic writer) and
prints one line. Snakemake rules and DVC stages call these commands; they never duplicate them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from halo import timing
from halo.io import read_json, write_json


def _run(args: argparse.Namespace):
    from halo.config import load_run

    return load_run(args.config, args.set or [])


def dry_run(args: argparse.Namespace) -> int:
    """``--dry-run``: the resolved run as YAML on stdout (halo.config.describe_run)."""
    import yaml

    from halo.config import describe_run

    print(yaml.safe_dump(describe_run(_run(args)), sort_keys=False), end="")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic datasets in the real layouts."""
    from halo.data import synthetic

    scale = dict(args.scale)  # checked by the writer before its first file
    timing.mark("compute")
    if args.style is None:
        written = synthetic.write_benchmark(
            args.out,
            size=args.size,
            seed=args.seed,
            count=args.count,
            conditions=args.conditions,
            scale=scale,
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
            scale=scale,
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


def _engine_options(args: argparse.Namespace) -> dict:
    return {"device": args.device, "progress": not args.quiet}


def _say_trained(trained, protocol: str) -> None:
    """What a training job did, and the evaluation after it (``--eval-out``)."""
    result, model = trained.result, trained.model
    if result is None:  # another rank than 0 under torchrun
        return
    if result.get("complete"):
        print(f"{model} is complete (step {result['step']}); nothing to do")
    else:
        print(
            f"trained {protocol} to step {result['step']} in {result['seconds']:.0f}s, "
            f"loss {result['loss']:.4f} → {model}"
        )
    if trained.metrics is not None:
        _say_evaluated(trained.metrics, trained.eval_out)


def _say_evaluated(metrics: dict, out) -> None:
    print(f"mIoU {metrics['miou']:.2f} on {metrics['num_images']} images → {out}")


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Source-only training: the baseline and the initialisation of every ADA run."""
    from halo.engine import jobs

    trained = jobs.pretrain(
        _run(args),
        Path(args.out),
        eval_out=_path(args.eval_out),
        snapshots=args.snapshots or 0,
        **_engine_options(args),
    )
    _say_trained(trained, "source")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """An active-learning round (source + acquired target labels) or the supervised bound."""
    from halo.engine import jobs

    trained = jobs.train(
        _run(args),
        Path(args.out),
        protocol=args.protocol,
        round=args.round,
        init=_path(args.init),
        masks=_path(args.masks),
        eval_out=_path(args.eval_out),
        snapshots=args.snapshots or 0,
        **_engine_options(args),
    )
    _say_trained(trained, args.protocol)
    return 0


def cmd_acquire(args: argparse.Namespace) -> int:
    """Score the target pool with a checkpoint and write the next round's label masks."""
    from halo.engine import jobs

    report = jobs.acquire(
        _run(args),
        args.round,
        checkpoint=Path(args.checkpoint),
        prev=Path(args.prev) if args.prev else None,
        out_dir=Path(args.out),
        annotator=args.annotator,
        source_checkpoint=Path(args.source_checkpoint) if args.source_checkpoint else None,
        **_engine_options(args),
    )
    if args.annotator == "human":
        print(
            f"round {args.round}: {report.regions} regions queried in {report.images} images "
            f"→ {args.out}/queries; label them: halo annotate {args.out}"
        )
    else:
        print(f"round {args.round}: labelled {report}")
    return 0


def _labelled(report, round_dir: str) -> None:
    from halo.acquisition.queries import ANSWERS_REPORT

    counts = read_json(Path(round_dir) / ANSWERS_REPORT, "answers report")
    print(
        f"round {report.round} complete: {counts['pixels_answered']} of "
        f"{counts['pixels_queried']} queried pixels labelled ({counts['pixels_unanswered']} left "
        f"unlabelled) in {counts['images']} images → {round_dir}/masks"
    )


def cmd_import_labels(args: argparse.Namespace) -> int:
    """Check a labels folder or CVAT zip against a round's queries, then complete the round."""
    from halo.acquisition.answers import import_answers, read_answers

    answers = read_answers(args.round_dir, args.source, ids=args.ids)
    timing.mark("write")
    _labelled(import_answers(args.round_dir, answers, origin=str(args.source)), args.round_dir)
    return 0


def cmd_complete_round(args: argparse.Namespace) -> int:
    """Complete a human round from its imported answers (or say it waits for labels)."""
    from halo.acquisition.answers import complete_round

    _labelled(complete_round(args.round_dir), args.round_dir)
    return 0


def cmd_export_queries(args: argparse.Namespace) -> int:
    """Write a round's queries as a CVAT 'Segmentation mask 1.1' zip."""
    from halo.acquisition import cvat

    count = cvat.write_zip(args.round_dir, args.dest)
    print(f"{count} images with their queries → {args.dest} (CVAT 'Segmentation mask 1.1')")
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    """Serve the labelling page of a round's queries until it is finished."""
    from halo.annotate import serve

    timing.mark("compute")  # the person's session is the command's work, not its start-up
    return serve(args.round_dir, port=args.port, open_browser=args.open)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """mIoU (and mIoU* for SYNTHIA) of a checkpoint on the benchmark's target validation set
    (``--on source``: the source's held-out val split)."""
    from halo.engine import jobs

    out = Path(args.out)
    metrics = jobs.evaluate(
        _run(args),
        Path(args.checkpoint),
        out,
        budget=_path(args.budget),
        on=args.on,
        **_engine_options(args),
    )
    _say_evaluated(metrics, out)
    return 0


def cmd_check_data(args: argparse.Namespace) -> int:
    """Check that the benchmark's datasets are in place (folders only; cheap)."""
    from halo.engine import jobs

    run = _run(args)
    for which, pairs in jobs.check_data(run, verify=args.verify):
        print(f"{which}: {pairs} image/label pairs decoded, ids within the label table")
    print(f"{run.benchmark.name}: data in place under {run.root}")
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    """Combine a run's evaluation metrics (and budget reports) into its run record."""
    from halo.runs import job_span, run_record

    run = _run(args)
    timing.mark("compute")
    cfg = run.config
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
        variant=run.model_key,
        seed=cfg.seed,
        metrics=[read_json(p, "metrics") for p in args.eval],
        budgets=[read_json(p, "budget report") for p in args.budgets or []],
        budget=cfg.active.budget if active else None,
        span=job_span([Path(p).parent for p in args.eval]),
        start=read_json(args.start_eval, "metrics") if active and args.start_eval else None,
    )
    write_json(Path(args.out), record)
    print(f"{record['kind']} run {record['method']}: mIoU {record['miou']:.2f} → {args.out}")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    """Log a run record to MLflow (idempotent), or initialise the tracking store."""
    from halo import tracking

    if args.init:
        uri = tracking.init_store(args.uri)
        print(f"tracking store ready: {uri}")
        return 0
    if not args.record or not args.out:
        raise ValueError("halo track needs --record and --out (or --init)")
    record = read_json(args.record, "run record")
    artifacts = [Path(args.record), *map(Path, args.artifacts or [])]
    for path in artifacts:
        if not path.is_file():
            raise FileNotFoundError(f"artifact {path} does not exist")
    uri = tracking.tracking_uri(args.uri)
    timing.mark("compute")
    run_id = tracking.log_run(record, artifacts=artifacts, uri=uri)
    write_json(
        Path(args.out),
        {
            "run_id": run_id,
            "tracking_uri": tracking.portable_uri(uri),
            "experiment": record["benchmark"],
        },
    )
    print(f"logged {record['kind']} run {record['method']} → MLflow run {run_id} ({uri})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Tables and figures of a benchmark's runs into one folder (and the MLflow report run)."""
    from halo import report, runs

    run = _run(args)
    timing.mark("compute")
    records = [read_json(p, "run record") for p in args.records]
    acquired = [runs.acquired_counts(p, rec) for p, rec in zip(args.records, records, strict=True)]
    losses = [runs.train_losses(p, rec) for p, rec in zip(args.records, records, strict=True)]
    panels = None
    if args.panels_checkpoint and args.panels > 0:
        from halo.engine import jobs

        panels = jobs.preview_panels(
            run, Path(args.panels_checkpoint), args.panels, device=args.device
        )
    out = Path(args.out)
    # Build in a sibling temp folder and swap it in: a killed report leaves no half-written folder.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        summary = report.build_report(
            records,
            tmp,
            benchmark=run.benchmark.name,
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
    timing.mark("write")
    if not args.no_track:
        from halo import tracking

        files = [out / f for f in summary["files"]]
        # the validation set's class pixel shares, the same in every run: logged once, here
        shares = {"pixel_share": records[0].get("class_pixel_share", {})} if records else {}
        tracking.log_report(
            run.benchmark.name,
            files,
            summary={**summary, **shares},
            uri=tracking.tracking_uri(),
            name=out.name,
        )
    print(f"report of {len(records)} runs → {out}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Read every run file of the project; list the corrupt ones and the command that rebuilds
    them (exit 1), or say that all read (exit 0)."""
    import sys

    from halo.engine import jobs

    def progress(n: int) -> None:
        if not args.quiet and sys.stderr.isatty() and n % 100 == 0:
            print(f"\r{n} files read", end="", file=sys.stderr, flush=True)

    count, faults, commands = jobs.verify(args.root, args.configfile, progress)
    for fault in faults:
        rebuilt = f" (rebuilt by {fault.target})" if fault.target else ""
        print(f"{fault.path}: {fault.cause}{rebuilt}")
    if not faults:
        print(f"{count} files read, none corrupt")
        return 0
    print(f"{len(faults)} of {count} files corrupt; rebuild them and every job after them with:")
    for line in commands:
        print(f"  {line}")
    return 1
