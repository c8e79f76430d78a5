# Shared helpers: config validation, the grid, and the input functions (get_*) of every rule.
# Light imports only, no torch at parse time: every grid cell is resolved by halo.config and every
# run folder is named by halo.runs -- the same code the halo commands use; nothing here
# duplicates the package's logic.

import os
import re
import shlex
from functools import cache

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from halo.acquisition.methods import METHODS
from halo.choices import ANNOTATORS
from halo.acquisition.queries import MANIFEST_FILE, waiting_rounds
from halo.acquisition.rounds import BLOCKED_FILE, BUDGET_FILE, LABELLED_FILE, MASKS_DIR
from halo.config import BENCHMARKS, ConfigError, check_data, load_run
from halo.devices import visible_gpus
from halo.launcher.protocol import ENV_VAR as LAUNCHER_ENV
from halo.launcher.protocol import socket_path
from halo.provenance import CONFIG_FILE, PROVENANCE_FILE
from halo.runs import (
    ACTIVE_RUN,
    EVAL_FILE,
    MODEL_FILE,
    RECORD_FILE,
    ROUND_DIR,
    RUN_RE,
    RUNS_ROOT,
    SOURCE_RUN,
    SUPERVISED_RUN,
    TRACKED_FILE,
    TRAIN_LOG,
    active_run,
    fixed_run,
    parse_run,
    round_dir,
)

validate(config, "../schemas/config.schema.yaml")

SYNTH = {"root": "data/synth", "size": [64, 128], "seed": 0, "count": None, **config.get("synth", {})}
DATA_ROOT = config.get("data_root", "data")
THREADS = int(config.get("threads", 2))
# Every job runs the halo CLI of this checkout: `python -m halo.cli` from the working directory
# (the repository root) imports ./halo first, in the environment snakemake runs in
# (`uv run snakemake ...`) or, with --use-conda, in workflow/envs/halo.yaml. No machine path
# appears in a rule, so a moved or copied project plans nothing anew.
ENV = "../envs/halo.yaml"
HALO_CLI = "python -m halo.cli"
# With the launcher (default), jobs run `python -m halo.launcher`: the same command, handed to a
# fork server that has torch and smp imported (started by onstart, one per invocation, its
# socket named by halo.launcher.protocol and passed in the environment, never in a rule).
# Without a server (SLURM nodes, --config launcher=False) it runs as `python -m halo.cli`.
# Not with --use-conda or containers: the server runs in Snakemake's interpreter, not the job's.
_deploy = getattr(getattr(workflow, "deployment_settings", None), "deployment_method", None)
LAUNCHER = bool(config.get("launcher", True)) and not _deploy
LAUNCHER_SOCKET = str(socket_path(os.getcwd()))
if LAUNCHER:
    os.environ[LAUNCHER_ENV] = LAUNCHER_SOCKET
HALO = "python -m halo.launcher" if LAUNCHER else HALO_CLI
# Training jobs on several GPUs: torchrun starts one process per GPU (DistributedDataParallel).
GPUS = int(config.get("gpus_per_train_job", 1))
HALO_TRAIN = HALO if GPUS <= 1 else f"torchrun --standalone --nproc-per-node {GPUS} -m halo.cli"


# Heavy jobs hold `gpu` units (the profile caps them) only where a GPU is visible; on a CPU-only
# machine they just share the cores. The SLURM profile sets them explicitly (set-resources).
GPU_UNIT = 1 if visible_gpus() else 0

unknown = [b for b in config["benchmarks"] if b not in BENCHMARKS]
if unknown:
    raise WorkflowError(
        f"config benchmarks: unknown {', '.join(unknown)}; valid: {', '.join(BENCHMARKS)}"
    )
for _bench, _spec in config["benchmarks"].items():  # the names of halo.choices.ANNOTATORS
    if _spec.get("annotator", "simulated") not in ANNOTATORS:
        raise WorkflowError(
            f"config benchmarks.{_bench}.annotator: unknown {_spec['annotator']!r}; "
            f"valid: {', '.join(ANNOTATORS)}"
        )



def _one_of(names):
    """A wildcard regex matching exactly `names` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


# Who labels each benchmark's regions: rule acquire (the simulated oracle, the round completes in
# the job) or acquire_queries + labels (a person: the round waits for `halo import-labels`).
HUMAN = [b for b, spec in config["benchmarks"].items() if spec.get("annotator") == "human"]
SIMULATED_BENCH = _one_of(b for b in config["benchmarks"] if b not in HUMAN)
HUMAN_BENCH = _one_of(HUMAN)


# Each grid's report under its own name (`report:` of a benchmark, default the benchmark):
# results/<report>/ and the MLflow run report:<report>, so a second grid of one benchmark (the
# human loop) leaves the first one's report alone.
REPORTS = {spec.get("report", b): b for b, spec in config["benchmarks"].items()}
if len(REPORTS) != len(config["benchmarks"]) or any(
    r != b and r in config["benchmarks"] for r, b in REPORTS.items()
):
    raise WorkflowError("workflow config: every benchmark's report name must be its own")


def report_of(bench):
    """The report folder name of ``bench`` (results/<name>)."""
    return config["benchmarks"][bench].get("report", bench)


def waiting_message():
    """Rounds whose queries wait for labels, and what to run next (printed by onerror)."""
    grid = {run for bench in HUMAN for run in active_runs(bench)}  # this config's runs only
    rounds = [r for r in waiting_rounds(RUNS_ROOT) if str(r.parent) in grid]
    if not rounds:
        return ""
    lines = [f"{len(rounds)} round(s) wait for labels. Label each in the browser or import labels:"]
    lines += [f"    halo annotate {r}    # or: halo import-labels {r} FOLDER_OR_CVAT_ZIP" for r in rounds]
    lines.append("then run the same snakemake command again.")
    return "\n".join(lines)


# --- the grid -------------------------------------------------------------------------------


def run_sets(bench, backbone, method, seed=None, budget=None):
    """The --set overrides of one grid cell (budget in percent, as in paths)."""
    spec = config["benchmarks"][bench]
    root = SYNTH["root"] if BENCHMARKS[bench].synthetic else DATA_ROOT
    sets = [f"benchmark={bench}", *spec.get("set", [])]
    sets += [f"backbone={backbone}", f"method={method}", f"data_root={root}"]
    if seed is not None:
        sets.append(f"seed={seed}")
    if budget is not None:
        sets.append(f"active.budget={round(float(budget) / 100, 10)!r}")
    return sets


@cache
def resolved(bench, backbone, method, seed=None, budget=None):
    """The resolved halo run of a grid cell (a bad cell fails before any job)."""
    spec = config["benchmarks"][bench]
    try:
        return load_run(spec["config"], run_sets(bench, backbone, method, seed, budget))
    except ConfigError as err:
        raise WorkflowError(f"config benchmarks.{bench}: {err}") from None


def halo_args(bench, backbone, method, seed=None, budget=None):
    """`--config FILE --set k=v ...` for the halo CLI."""
    resolved(bench, backbone, method, seed, budget)  # validated before the job starts
    sets = run_sets(bench, backbone, method, seed, budget)
    spec = config["benchmarks"][bench]
    return " ".join(
        ["--config", shlex.quote(spec["config"])] + [f"--set {shlex.quote(s)}" for s in sets]
    )


def grids(bench):
    """The benchmark's cross products: its own, then each `extra` entry (missing keys inherited)."""
    spec = config["benchmarks"][bench]
    keys = ("backbones", "methods", "budgets", "seeds")
    main = {k: spec[k] for k in keys}
    return [main] + [{**main, **extra} for extra in spec.get("extra", [])]


def methods_of(bench, backbone=None):
    """Every method of the benchmark's grids (with `backbone`), in order of first appearance."""
    return list(
        dict.fromkeys(
            m
            for g in grids(bench)
            if backbone is None or backbone in g["backbones"]
            for m in g["methods"]
        )
    )


def backbones_of(bench):
    return list(dict.fromkeys(b for g in grids(bench) for b in g["backbones"]))


@cache
def variants(bench, backbone):
    """{model variant: the method whose config trains it}: one source-only model per variant.

    The method is the first *registered* one (halo.acquisition.methods) with that model, not the
    grid's first: a source or supervised job's command line then depends only on what it trains
    (variant, seed, data, config), so grids with other method lists share its model."""
    spec = config["benchmarks"][bench]
    grid = [*methods_of(bench, backbone), *spec.get("supervised", [])]
    out = {}
    for method in grid:
        key = resolved(bench, backbone, method).model_key
        if key not in out:
            out[key] = next(
                (m for m in METHODS if resolved(bench, backbone, m).model_key == key), method
            )
    return out


def variant_of(bench, backbone, method):
    return resolved(bench, backbone, method).model_key


def rounds_of(bench, backbone, method, budget, seed):
    return resolved(bench, backbone, method, int(seed), budget).config.active.rounds


def active_runs(bench):
    runs = [
        active_run(bench, backbone, method, budget, seed)
        for g in grids(bench)
        for backbone in g["backbones"]
        for method in g["methods"]
        for budget in g["budgets"]
        for seed in g["seeds"]
    ]
    return list(dict.fromkeys(runs))


def seeds_of(bench):
    """Every seed of the benchmark's grids, in order of first appearance: each has its own
    source-only model (and supervised bound), so the spread over seeds covers the whole
    pipeline."""
    return list(dict.fromkeys(int(s) for g in grids(bench) for s in g["seeds"]))


def fixed_runs(bench):
    """Source-only runs (every variant of the grid) and supervised bounds, one per seed."""
    spec = config["benchmarks"][bench]
    out = []
    for backbone in backbones_of(bench):
        for seed in seeds_of(bench):
            out += [
                fixed_run(bench, backbone, "source", v, seed) for v in variants(bench, backbone)
            ]
            out += [
                fixed_run(bench, backbone, "supervised", variant_of(bench, backbone, m), seed)
                for m in dict.fromkeys(spec.get("supervised", []))
            ]
    return list(dict.fromkeys(out))


def all_runs(bench):
    return fixed_runs(bench) + active_runs(bench)


@cache
def report_captions():
    """What each report file holds (halo.report.layout.CAPTIONS), for the Snakemake report's
    captions; imported only when a report job is planned (halo.report loads matplotlib)."""
    from halo.report.layout import CAPTIONS

    return dict(CAPTIONS)


def panels_method(bench):
    spec = config["benchmarks"][bench]
    return "halo" if "halo" in spec["methods"] else spec["methods"][0]


def run_parts(run):
    """A run folder (below runs/) as a dict (halo.runs.parse_run), as a workflow error."""
    try:
        return parse_run(run)
    except ValueError as err:
        raise WorkflowError(str(err)) from None


def run_args(run):
    """halo CLI arguments (config and overrides) for the run folder `run` (below runs/)."""
    d = run_parts(run)
    if d["kind"] in ("source", "supervised"):
        methods = variants(d["bench"], d["backbone"])
        if d["variant"] not in methods:
            raise WorkflowError(
                f"{RUNS_ROOT}/{run}: model variant {d['variant']!r} is not used by the grid of "
                f"{d['bench']} (variants: {', '.join(methods)})"
            )
        return halo_args(d["bench"], d["backbone"], methods[d["variant"]], int(d["seed"]))
    return halo_args(d["bench"], d["backbone"], d["method"], int(d["seed"]), d["budget"])


def path_of(pattern, w):
    """A run folder pattern of halo.runs filled in with a job's wildcards."""
    return pattern.format(**{k: w[k] for k in w.keys()})


def round_run(w):
    """A job's round folder below runs/ (for run_args)."""
    return path_of(ROUND_DIR, w).removeprefix(f"{RUNS_ROOT}/")


# --- input functions ------------------------------------------------------------------------


def get_data(wildcards):
    """The benchmark's data: the synthetic folder (built by rule synth), or the real datasets,
    checked at once (missing folders fail here, before any job, naming what to get)."""
    bench = wildcards.bench
    if BENCHMARKS[bench].synthetic:
        return [SYNTH["root"]]
    spec = config["benchmarks"][bench]
    try:
        check_data(resolved(bench, spec["backbones"][0], spec["methods"][0]))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    return []


def get_run_config(w):
    """The benchmark's run config file: an input of every job that reads it, so a changed config
    (`dvc exp run -S configs/synth.yaml:train.lr=...`, an edit) reruns those jobs."""
    return config["benchmarks"][w.bench]["config"]


def get_previous_model(w):
    """Round 1 scores with the source-only model of the method's variant and the run's seed;
    round r>1 with r-1's."""
    r = int(w.round)
    if r == 1:
        variant = variant_of(w.bench, w.backbone, w.method)
        return f"{fixed_run(w.bench, w.backbone, 'source', variant, w.seed)}/{MODEL_FILE}"
    return f"{round_dir(path_of(ACTIVE_RUN, w), r - 1)}/{MODEL_FILE}"


def get_source_radius_model(w):
    """The source-only model whose radius the method's score reads (halo-src, halo-src-inv), as
    a list: empty for a method that reads the scored model's own radius."""
    if resolved(w.bench, w.backbone, w.method).method.radius_from != "source":
        return []
    variant = variant_of(w.bench, w.backbone, w.method)
    return [f"{fixed_run(w.bench, w.backbone, 'source', variant, w.seed)}/{MODEL_FILE}"]


def source_radius_arg(input):
    """``--source-checkpoint PATH`` for a job whose input names a source radius model."""
    return f"--source-checkpoint {input.radius[0]}" if input.radius else ""


def get_previous_round(w):
    """The previous round's completion marker (none for round 1)."""
    r = int(w.round)
    if not 1 <= r <= rounds_of(w.bench, w.backbone, w.method, w.budget, w.seed):
        raise WorkflowError(f"{path_of(ROUND_DIR, w)}: round {r} is outside 1..active.rounds")
    if r == 1:
        return []
    return [f"{round_dir(path_of(ACTIVE_RUN, w), r - 1)}/{BUDGET_FILE}"]


def get_summary_inputs(w):
    d = run_parts(w.run)
    if d["kind"] != "active":
        return {"eval": [f"{RUNS_ROOT}/{w.run}/{EVAL_FILE}"], "budgets": [], "start": []}
    rounds = range(1, rounds_of(d["bench"], d["backbone"], d["method"], d["budget"], d["seed"]) + 1)
    folders = [round_dir(f"{RUNS_ROOT}/{w.run}", r) for r in rounds]
    variant = variant_of(d["bench"], d["backbone"], d["method"])
    return {
        "eval": [f"{f}/{EVAL_FILE}" for f in folders],
        "budgets": [f"{f}/{BUDGET_FILE}" for f in folders],
        "start": [
            f"{fixed_run(d['bench'], d['backbone'], 'source', variant, d['seed'])}/{EVAL_FILE}"
        ],
    }


def get_track_artifacts(w):
    """The run's resolved config and provenance (and its last round's budget report): files the
    training jobs wrote beside their checkpoints, attached to the MLflow run."""
    d = run_parts(w.run)
    folder = f"{RUNS_ROOT}/{w.run}"
    files = [CONFIG_FILE, PROVENANCE_FILE, TRAIN_LOG]
    if d["kind"] == "active":
        last = rounds_of(d["bench"], d["backbone"], d["method"], d["budget"], d["seed"])
        folder = round_dir(folder, last)
        files.append(BUDGET_FILE)
    return " ".join(f"{folder}/{f}" for f in files)


def get_report_inputs(w):
    bench = REPORTS[w.report]
    spec = config["benchmarks"][bench]
    backbone = spec["backbones"][0]
    variant = variant_of(bench, backbone, panels_method(bench))
    runs = all_runs(bench)
    return {
        "records": [f"{r}/{RECORD_FILE}" for r in runs],
        "tracked": [f"{r}/{TRACKED_FILE}" for r in runs],
        "panels": f"{fixed_run(bench, backbone, 'source', variant, seeds_of(bench)[0])}/{MODEL_FILE}",
    }


# Wildcard values: a benchmark of the config, lower-case names, numbers.
wildcard_constraints:
    bench="|".join(re.escape(b) for b in config["benchmarks"]),
    report=_one_of(REPORTS),
    backbone=r"[a-z0-9][a-z0-9-]*",
    method=r"[a-z][a-z0-9-]*",
    variant=r"[a-z0-9][a-z0-9.-]*",
    budget=r"[0-9]+(\.[0-9]+)?",
    seed=r"[0-9]+",
    round=r"[0-9]+",
    run=re.sub(r"\(\?P<\w+>", "(?:", RUN_RE.pattern),


def _check_grids():
    """Every cell of every grid resolved once at parse time: a bad config value (a YAML tag, an
    unknown key in `set:`) stops the run with one line naming the benchmark and the key, before
    any job and without Snakemake's traceback of the input function that would meet it."""
    import sys

    for bench in config["benchmarks"]:
        spec = config["benchmarks"][bench]
        for g in grids(bench):
            for backbone in g["backbones"]:
                for method in [*g["methods"], *spec.get("supervised", [])]:
                    try:
                        resolved(bench, backbone, method)
                    except WorkflowError as err:
                        print(f"snakemake: error: {' '.join(str(err).split())}", file=sys.stderr)
                        sys.exit(2)


_check_grids()
