"""The ``halo`` argument parser: every sub-command, its options and its help text."""

from __future__ import annotations

import argparse

from halo.choices import ANNOTATORS, TRAINING_PROTOCOLS
from halo.cli import commands

__all__ = ["build_parser"]


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


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return port


def _scale(text: str) -> tuple[str, float]:
    """CLASS=FACTOR as (name, factor); which classes and factors are allowed is
    :func:`halo.data.synthetic.scale_map`'s to say."""
    name, sep, factor = text.rpartition("=")
    try:
        value = float(factor)
    except ValueError:
        value = None
    if not sep or not name or value is None:
        raise argparse.ArgumentTypeError(f"expected CLASS=FACTOR, e.g. person=4; got {text!r}")
    return name, value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _common(p: argparse.ArgumentParser, device: bool = True) -> None:
    """The run options: --config, --set, --quiet, --dry-run and (for commands that run a model)
    --device."""
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
    if device:
        p.add_argument(
            "--device",
            default="auto",
            help="auto (this rank's GPU if present, else CPU), cpu, cuda or cuda:N",
        )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved run (the config after the method's preset, the model "
        "options and key, the radii, the image sizes) as YAML and exit; nothing is read "
        "or written",
    )


def _queried_round(p: argparse.ArgumentParser) -> None:
    """The round folder argument of the human-loop commands."""
    p.add_argument("round_dir", metavar="ROUND_DIR", help="a round folder with queries/")


def _eval_out(p: argparse.ArgumentParser) -> None:
    """What a training command can do beside training: evaluate, and keep snapshots."""
    p.add_argument(
        "--eval-out",
        default=None,
        metavar="FILE",
        help="also evaluate the finished model.pt and write halo evaluate's metrics JSON "
        "here (the same file, in the same process; an active round includes its "
        "budget.json from --masks)",
    )
    p.add_argument(
        "--snapshots",
        type=_positive,
        default=None,
        metavar="N",
        help="also write the model every N steps to OUT/snapshots/stepNNNNNN.pt (for halo "
        "evaluate: how a measure moves through training); not part of the run's identity",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``halo`` parser; each sub-command's ``func`` is its :mod:`halo.cli.commands` function
    (one builder per command below, in the order ``halo --help`` lists them)."""
    from halo import __version__

    parser = argparse.ArgumentParser(
        prog="halo",
        description="HALO-AL: hyperbolic active learning for semantic segmentation under "
        "domain shift.",
    )
    parser.add_argument("--version", action="version", version=f"halo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for build in _BUILDERS:
        build(sub)
    return parser


def _synth_parser(sub) -> None:
    from halo.data.synthetic import CONDITIONS, STYLES

    p = sub.add_parser(
        "synth",
        help="write the embedded synthetic benchmark in the real datasets' layouts",
        description="Write synthetic street scenes in the layout of GTAV (style gta), "
        "Cityscapes (cityscapes), SYNTHIA (synthia) or ACDC (acdc). Without --style, write the "
        "default benchmark: OUT/gta5, OUT/synthia, OUT/cityscapes and OUT/acdc.",
    )
    p.add_argument(
        "--style",
        choices=tuple(STYLES),
        default=None,
        help="domain style to write (default: the whole default benchmark)",
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test", "select"),
        default="train",
        help="split to write with --style (default: train; select: a labelled split held out "
        "for choosing settings, disjoint from val: run configs read it with val_split=select)",
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
        default=list(CONDITIONS),
        choices=CONDITIONS,
        help="ACDC conditions to write",
    )
    p.add_argument(
        "--scale",
        type=_scale,
        action="append",
        default=[],
        metavar="CLASS=FACTOR",
        help="multiply how many objects of CLASS each scene holds (person, rider, car, truck, "
        "bus, train, motorcycle, bicycle), everything else of every scene unchanged: the "
        "frequency intervention of the radius experiments (repeatable)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=commands.cmd_synth)


def _pretrain_parser(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train the source-only model (initialises every ADA run)",
        description="Train on source labels only for train.source_steps steps. Writes "
        "OUT/model.pt (model, optimiser, step), OUT/config.yaml, OUT/provenance.json and "
        "OUT/train_log.json; a killed run restarted with the same arguments resumes from "
        "OUT/train_state.pt. Works under torchrun --nproc-per-node N.",
    )
    _common(p)
    p.add_argument(
        "--out",
        required=True,
        help="output folder, e.g. runs/<bench>/<backbone>/source/<variant>/seed<s> (the workflow's)",
    )
    _eval_out(p)
    p.set_defaults(func=commands.cmd_pretrain)


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one active-learning round, or the target-supervised bound",
        description="--protocol active: fine-tune from --init (the source model for round 1, "
        "the previous round's model.pt after) on source labels plus the target labels acquired "
        "in --masks (a round folder); the schedule (a linear warm-up, then train.schedule: cosine "
        "by default, or poly) runs continuously over all rounds. --protocol supervised: train on fully labelled target data. Writes "
        "OUT/model.pt; resumes from OUT/train_state.pt if killed. Works under torchrun.",
    )
    _common(p)
    p.add_argument(
        "--protocol",
        choices=[name for name, p in TRAINING_PROTOCOLS.items() if p.target],
        default="active",
        help="active: one active-learning round (needs --round, --init, --masks); supervised: "
        "the fully labelled target bound (default: active)",
    )
    p.add_argument("--round", type=_positive, default=None, help="round number r (1..rounds)")
    p.add_argument("--init", default=None, help="checkpoint to start from (active)")
    p.add_argument("--masks", default=None, help="round folder holding masks/ (active)")
    p.add_argument("--out", required=True, help="output folder (the round folder)")
    _eval_out(p)
    p.set_defaults(func=commands.cmd_train)


def _acquire_parser(sub) -> None:
    p = sub.add_parser(
        "acquire",
        help="score the target pool and write the next round's label masks",
        description="Run --checkpoint over the target pool, score pixels with the config's "
        "method, select regions under the round budget (after round r at most "
        "r x active.budget / active.rounds of the pool's pixels, less than one region fewer) and "
        "write OUT/masks/<id>.png (cumulative, 255 = unlabelled), OUT/blocked.npz and "
        "OUT/budget.json (written last: its presence marks a complete round).",
    )
    _common(p)
    p.add_argument("--checkpoint", required=True, help="model to score with")
    p.add_argument("--round", type=_positive, required=True, help="round number r (1..rounds)")
    p.add_argument("--prev", default=None, help="the previous round's folder (rounds > 1)")
    p.add_argument(
        "--source-checkpoint",
        default=None,
        help="the run's source-only model, whose radius the score reads (methods halo-src, "
        "halo-src-inv; required there, refused elsewhere)",
    )
    p.add_argument("--out", required=True, help="this round's folder")
    p.add_argument(
        "--annotator",
        choices=tuple(ANNOTATORS),
        default="simulated",
        help="simulated: the ground truth labels the regions now; human: write OUT/queries/ "
        "(manifest.jsonl, query masks, previews) for a person, and the round waits for "
        "`halo annotate` or `halo import-labels` (default: simulated)",
    )
    p.set_defaults(func=commands.cmd_acquire)


def _annotate_parser(sub) -> None:
    p = sub.add_parser(
        "annotate",
        help="label a round's queried regions in the browser",
        description="Serve a labelling page for ROUND_DIR's queries on http://127.0.0.1:PORT: "
        "one image at a time, the queried regions magnified, a class palette (number keys), "
        "unsure, undo and autosave (ROUND_DIR/drafts/, resumable). Finishing imports the labels "
        "like `halo import-labels` and completes the round; the server then exits.",
    )
    _queried_round(p)
    p.add_argument("--port", type=_port, default=8321, help="port on 127.0.0.1 (default 8321)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=commands.cmd_annotate)


def _import_labels_parser(sub) -> None:
    p = sub.add_parser(
        "import-labels",
        help="import a person's labels of a round's queries and complete the round",
        description="Check FROM against ROUND_DIR's queries, then write ROUND_DIR/answers/, the "
        "round's masks/ and budget.json (last). FROM is a folder of single-channel PNGs named "
        "<image id>.png (train ids, 255 = not labelled; --ids label for Cityscapes labelIds) or "
        "a CVAT 'Segmentation mask 1.1' zip. A label outside the queried regions, an unknown "
        "class or colour, a size mismatch or a missing image stops the import before anything "
        "is written; queried pixels left unlabelled are allowed and counted (answers.json).",
    )
    _queried_round(p)
    p.add_argument("source", metavar="FROM", help="folder of class-id PNGs, or a CVAT zip")
    p.add_argument(
        "--ids",
        choices=("train", "label"),
        default="train",
        help="what a folder's PNG values are: the run's train ids or Cityscapes labelIds",
    )
    p.set_defaults(func=commands.cmd_import_labels)


def _export_queries_parser(sub) -> None:
    p = sub.add_parser(
        "export-queries",
        help="write a round's queries for an annotation tool (CVAT)",
        description="Write ROUND_DIR's queries as a CVAT 'Segmentation mask 1.1' zip: the images, "
        "labelmap.txt with the run's classes plus 'query', and class masks with every queried "
        "pixel painted 'query'. Repaint them in CVAT, export the task in the same format and "
        "`halo import-labels ROUND_DIR THAT.zip`.",
    )
    _queried_round(p)
    p.add_argument("--format", choices=("cvat",), default="cvat", help="the tool's format")
    p.add_argument("dest", metavar="OUT.zip", help="the zip to write")
    p.set_defaults(func=commands.cmd_export_queries)


def _complete_round_parser(sub) -> None:
    p = sub.add_parser(
        "complete-round",
        help="complete a human round from its imported labels (the workflow's labels job)",
        description="Write ROUND_DIR's masks/ and budget.json from ROUND_DIR/answers/ (what "
        "`halo import-labels` and `halo annotate` write). Without answers it exits 2 with one "
        "line naming the round and the commands that label it.",
    )
    _queried_round(p)
    p.set_defaults(func=commands.cmd_complete_round)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="mIoU of a checkpoint on the target validation set",
        description="Evaluate --checkpoint on the benchmark's target validation split (--on "
        "source: the source dataset's held-out val split, in-domain) and write a metrics JSON: "
        "mIoU (percent), mIoU* (SYNTHIA 13 classes), per-class IoU, class pixel share and "
        "class-average hyperbolic radius.",
    )
    _common(p)
    p.add_argument("--checkpoint", required=True, help="model.pt to evaluate")
    p.add_argument(
        "--on",
        choices=("target", "source"),
        default="target",
        help="target: the benchmark's target val set (default); source: the source dataset's "
        "val split (synthetic GTAV/SYNTHIA: val.txt, written by halo synth; real GTAV/SYNTHIA: "
        "your own val.txt of images kept out of the source split)",
    )
    p.add_argument("--budget", default=None, help="a round's budget.json to include")
    p.add_argument("--out", required=True, help="metrics JSON path")
    p.set_defaults(func=commands.cmd_evaluate)


def _check_data_parser(sub) -> None:
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
    _common(p, device=False)
    p.add_argument("--verify", action="store_true", help="decode every image and label once")
    p.set_defaults(func=commands.cmd_check_data)


def _summarize_parser(sub) -> None:
    p = sub.add_parser(
        "summarize",
        help="combine a run's evaluation metrics into its run record (metrics.json)",
        description="Write a run record (halo.runs): identity from the config, final mIoU, "
        "per-class IoU and radius, and for an active run the mIoU and labelled budget of every "
        "round. --eval takes halo evaluate outputs (one per round, in order, for an active run).",
    )
    _common(p, device=False)
    p.add_argument(
        "--kind",
        choices=tuple(TRAINING_PROTOCOLS),
        required=True,
        help="which run this is: the source-only model, the supervised bound or an active run",
    )
    p.add_argument("--eval", nargs="+", required=True, help="halo evaluate metrics JSON files")
    p.add_argument("--budgets", nargs="+", default=None, help="budget.json of each round (active)")
    p.add_argument(
        "--start-eval",
        default=None,
        metavar="FILE",
        help="the source-only model's metrics JSON (active): the run's round 0",
    )
    p.add_argument("--out", required=True, help="run record path (metrics.json)")
    p.set_defaults(func=commands.cmd_summarize)


def _track_parser(sub) -> None:
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
    p.set_defaults(func=commands.cmd_track)


def _report_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="tables and figures of a benchmark's runs",
        description="Write into OUT: miou_table.{csv,md} (mean, std and labelled fraction per "
        "cell), runs.csv (every seed), per_class.csv, acquired_classes.csv, "
        "training_stability.csv, budget_curve.{png,csv}, rounds.csv, "
        "radius_vs_frequency.{csv,png}, radius_correlations.csv, metrics.json, summary.json and "
        "acquisition/*.png (image | radius | entropy | score | selected pixels, scored with "
        "--panels-checkpoint and the config's method); files without data are left out. Log "
        "them to MLflow as the benchmark's 'report' run. OUT is replaced as a whole.",
    )
    _common(p)
    p.add_argument("--records", nargs="+", required=True, help="run records (metrics.json)")
    p.add_argument("--panels-checkpoint", default=None, help="model for the acquisition figures")
    p.add_argument("--panels", type=int, default=3, help="target images to draw (default 3)")
    p.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")
    p.add_argument("--out", required=True, help="report folder, e.g. results/<bench>")
    p.set_defaults(func=commands.cmd_report)


def _verify_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="read every run file the workflow will use; list the corrupt ones",
        description="Open every file under runs/ and results/ with the reader its job uses "
        "(JSON, budget reports, mask PNGs, .npz maps, checkpoints without pickle, YAML, CSV) "
        "and the MLflow store's SQLite check; print each corrupt file with the workflow output "
        "whose job rewrites it, then the one command that rebuilds them and everything after "
        "them. Exit 0: every file reads; exit 1: some are corrupt. Nothing is written.",
    )
    p.add_argument("--root", default=".", help="the project folder (default: here)")
    p.add_argument(
        "--configfile",
        default=None,
        metavar="FILE",
        help="the workflow config you ran with, e.g. configs/study.yaml (put into the command)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=commands.cmd_verify)


#: one builder per sub-command, in the order of ``halo --help``
_BUILDERS = (
    _synth_parser,
    _pretrain_parser,
    _train_parser,
    _acquire_parser,
    _annotate_parser,
    _import_labels_parser,
    _export_queries_parser,
    _complete_round_parser,
    _evaluate_parser,
    _check_data_parser,
    _summarize_parser,
    _track_parser,
    _report_parser,
    _verify_parser,
)
