# Shared helpers: config validation, the grid, run paths and the halo CLI arguments of each job.
# All run settings are resolved by halo.config (the same code the CLI uses); nothing here
# duplicates the package's logic.

import re
import shlex
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from halo.config import BENCHMARKS, ConfigError, check_data, load_config

validate(config, "../schemas/config.schema.yaml")

SYNTH = {"root": "data/synth", "size": [64, 128], "seed": 0, "count": None, **config.get("synth", {})}
DATA_ROOT = config.get("data_root", "data")
THREADS = int(config.get("threads", 2))
# Every job runs the halo CLI of this checkout (`python -m halo.cli`), in the environment
# snakemake runs in (`uv run snakemake ...`) or, with --use-conda, in workflow/envs/halo.yaml.
ENV = "../envs/halo.yaml"
_PATH = f"PYTHONPATH={shlex.quote(str(Path(workflow.basedir).parent))}${{PYTHONPATH:+:$PYTHONPATH}}"
HALO = f"{_PATH} python -m halo.cli"
# Training jobs on several GPUs: torchrun starts one process per GPU (DistributedDataParallel).
GPUS = int(config.get("gpus_per_train_job", 1))
# Heavy jobs hold `gpu` units (the profile caps them) only where a GPU is visible; on a CPU-only
# machine they just share the cores. The SLURM profile sets them explicitly (set-resources).
import torch

GPU_UNIT = 1 if torch.cuda.is_available() else 0
HALO_TRAIN = (
    HALO if GPUS <= 1 else f"{_PATH} torchrun --standalone --nproc-per-node {GPUS} -m halo.cli"
)

unknown = [b for b in config["benchmarks"] if b not in BENCHMARKS]
if unknown:
    raise WorkflowError(
        f"config benchmarks: unknown {', '.join(unknown)}; valid: {', '.join(BENCHMARKS)}"
    )


def budget_str(percent):
    """5 -> '5', 2.2 -> '2.2' (the {budget} path component, in percent)."""
    return f"{float(percent):g}"


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
def run_config(bench, backbone, method, seed=None, budget=None):
    """The resolved, validated halo config of a grid cell (a bad cell fails before any job)."""
    spec = config["benchmarks"][bench]
    try:
        return load_config(spec["config"], run_sets(bench, backbone, method, seed, budget))
    except ConfigError as err:
        raise WorkflowError(f"config benchmarks.{bench}: {err}") from None


def halo_args(bench, backbone, method, seed=None, budget=None):
    """`--config FILE --set k=v ...` for the halo CLI."""
    run_config(bench, backbone, method, seed, budget)  # validated before the job starts
    sets = run_sets(bench, backbone, method, seed, budget)
    spec = config["benchmarks"][bench]
    return " ".join(
        ["--config", shlex.quote(spec["config"])]
        + [f"--set {shlex.quote(s)}" for s in sets]
    )


@cache
def variants(bench, backbone):
    """{model variant: a method that trains it}: one source-only model per variant."""
    spec = config["benchmarks"][bench]
    out = {}
    for method in [*methods_of(bench, backbone), *spec.get("supervised", [])]:
        out.setdefault(run_config(bench, backbone, method).model_key(), method)
    return out


def variant_of(bench, backbone, method):
    return run_config(bench, backbone, method).model_key()


def rounds_of(bench, backbone, method, budget, seed):
    return run_config(bench, backbone, method, int(seed), budget).active.rounds


# --- run folders --------------------------------------------------------------------------
# runs/<bench>/<backbone>/source/<variant>                  source-only model
# runs/<bench>/<backbone>/supervised/<variant>              target-supervised bound
# runs/<bench>/<backbone>/<method>/<budget>/seed<s>         an active run ...
# runs/<bench>/<backbone>/<method>/<budget>/seed<s>/round<r>  ... and its rounds

RUN_RE = re.compile(
    r"(?P<bench>[^/]+)/(?P<backbone>[^/]+)/"
    r"(?:(?P<kind>source|supervised)/(?P<variant>[^/]+)"
    r"|(?P<method>[^/]+)/(?P<budget>[0-9.]+)/seed(?P<seed>[0-9]+)(?:/round(?P<round>[0-9]+))?)"
)


def parse_run(run):
    """A run folder (below runs/) as a dict: bench, backbone, kind, variant/method, budget..."""
    m = RUN_RE.fullmatch(run)
    if m is None:
        raise WorkflowError(f"not a run folder: runs/{run}")
    d = m.groupdict()
    if d["kind"] is None:
        d["kind"] = "round" if d["round"] else "active"
    return d


def run_args(run):
    """halo CLI arguments (config and overrides) for the run folder `run` (below runs/)."""
    d = parse_run(run)
    if d["kind"] in ("source", "supervised"):
        methods = variants(d["bench"], d["backbone"])
        if d["variant"] not in methods:
            raise WorkflowError(
                f"runs/{run}: model variant {d['variant']!r} is not used by the grid of "
                f"{d['bench']} (variants: {', '.join(methods)})"
            )
        return halo_args(d["bench"], d["backbone"], methods[d["variant"]])
    return halo_args(d["bench"], d["backbone"], d["method"], int(d["seed"]), d["budget"])


def data_input(wildcards):
    """The benchmark's data: the synthetic folder (built by rule synth), or the real datasets,
    checked at once (missing folders fail here, before any job, naming what to get)."""
    bench = wildcards.bench
    if BENCHMARKS[bench].synthetic:
        return [SYNTH["root"]]
    spec = config["benchmarks"][bench]
    backbone = spec["backbones"][0]
    try:
        check_data(run_config(bench, backbone, spec["methods"][0]))
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    return []


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


def active_runs(bench):
    runs = [
        f"runs/{bench}/{backbone}/{method}/{budget_str(budget)}/seed{seed}"
        for g in grids(bench)
        for backbone in g["backbones"]
        for method in g["methods"]
        for budget in g["budgets"]
        for seed in g["seeds"]
    ]
    return list(dict.fromkeys(runs))


def fixed_runs(bench):
    """Source-only runs (every variant of the grid) and supervised bounds."""
    spec = config["benchmarks"][bench]
    out = []
    for backbone in backbones_of(bench):
        out += [f"runs/{bench}/{backbone}/source/{v}" for v in variants(bench, backbone)]
        out += [
            f"runs/{bench}/{backbone}/supervised/{variant_of(bench, backbone, m)}"
            for m in dict.fromkeys(spec.get("supervised", []))
        ]
    return list(dict.fromkeys(out))


def all_runs(bench):
    return fixed_runs(bench) + active_runs(bench)


def panels_method(bench):
    spec = config["benchmarks"][bench]
    return "halo" if "halo" in spec["methods"] else spec["methods"][0]


# --- inputs and parameters of the rules -------------------------------------------------


def round_dir(w):
    return f"{w.bench}/{w.backbone}/{w.method}/{w.budget}/seed{w.seed}/round{w.round}"


def previous_model(w):
    """Round 1 scores with the source-only model of the method's variant; round r>1 with r-1's."""
    r = int(w.round)
    if r == 1:
        variant = variant_of(w.bench, w.backbone, w.method)
        return f"runs/{w.bench}/{w.backbone}/source/{variant}/model.pt"
    return f"runs/{w.bench}/{w.backbone}/{w.method}/{w.budget}/seed{w.seed}/round{r - 1}/model.pt"


def previous_round(w):
    r = int(w.round)
    if not 1 <= r <= rounds_of(w.bench, w.backbone, w.method, w.budget, w.seed):
        raise WorkflowError(f"runs/{round_dir(w)}: round {r} is outside 1..active.rounds")
    if r == 1:
        return []
    return [f"runs/{w.bench}/{w.backbone}/{w.method}/{w.budget}/seed{w.seed}/round{r - 1}/budget.json"]


def summary_inputs(w):
    d = parse_run(w.run)
    if d["kind"] != "active":
        return {"eval": [f"runs/{w.run}/eval.json"], "budgets": []}
    rounds = range(1, rounds_of(d["bench"], d["backbone"], d["method"], d["budget"], d["seed"]) + 1)
    return {
        "eval": [f"runs/{w.run}/round{r}/eval.json" for r in rounds],
        "budgets": [f"runs/{w.run}/round{r}/budget.json" for r in rounds],
    }


def track_artifacts(w):
    """The run's resolved config and provenance (and its last round's budget report): files the
    training jobs wrote beside their checkpoints, attached to the MLflow run."""
    d = parse_run(w.run)
    folder = f"runs/{w.run}"
    if d["kind"] == "active":
        last = rounds_of(d["bench"], d["backbone"], d["method"], d["budget"], d["seed"])
        folder = f"{folder}/round{last}"
        files = ["config.yaml", "provenance.json", "train_log.json", "budget.json"]
    else:
        files = ["config.yaml", "provenance.json", "train_log.json"]
    return " ".join(f"{folder}/{f}" for f in files)


def report_inputs(w):
    bench = w.bench
    spec = config["benchmarks"][bench]
    method = panels_method(bench)
    backbone = spec["backbones"][0]
    variant = variant_of(bench, backbone, method)
    runs = all_runs(bench)
    return {
        "records": [f"{r}/metrics.json" for r in runs],
        "tracked": [f"{r}/mlflow.json" for r in runs],
        "panels": f"runs/{bench}/{backbone}/source/{variant}/model.pt",
    }


# Wildcard values: a benchmark of the config, lower-case names, numbers.
wildcard_constraints:
    bench="|".join(re.escape(b) for b in config["benchmarks"]),
    backbone=r"[a-z0-9][a-z0-9-]*",
    method=r"[a-z][a-z0-9-]*",
    variant=r"[a-z0-9][a-z0-9.-]*",
    budget=r"[0-9]+(\.[0-9]+)?",
    seed=r"[0-9]+",
    round=r"[0-9]+",
    run=re.sub(r"\(\?P<\w+>", "(?:", RUN_RE.pattern),
