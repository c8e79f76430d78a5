# HALO-AL workflow: benchmark x backbone x method x budget x seed -> data, training, acquisition,
# evaluation, tracking and report jobs, each a `halo` CLI call.
#
#   uv run snakemake --cores 2 results/synth-gta2cs/     # one benchmark's grid and report
#   uv run snakemake --cores 2 -n results/gta2cs/         # dry run of a real benchmark
#
# Run from the repository root (Snakemake finds this Snakefile by itself); the rules live in
# workflow/rules/. The grid is configs/workflow.yaml (validated by
# workflow/schemas/config.schema.yaml); the local profile profiles/default/ is loaded
# automatically, the SLURM one with --workflow-profile profiles/slurm.

import sys

from snakemake.utils import min_version

min_version("9.19")


configfile: "configs/workflow.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/records.smk"
include: "workflow/rules/report.smk"


onstart:
    # The fork server first (it imports torch while the store is set up), then one process
    # creates/upgrades the MLflow store before parallel jobs write to it.
    if LAUNCHER:
        shell(
            "mkdir -p logs && python -m halo.launcher --serve {LAUNCHER_SOCKET:q} "
            f"--parent {os.getpid()} >> logs/launcher.log 2>&1 &"
        )
    shell("mkdir -p logs && {HALO_CLI} track --init > logs/mlflow_init.log 2>&1")


onsuccess:
    if LAUNCHER:
        shell("python -m halo.launcher --stop {LAUNCHER_SOCKET:q}")


onerror:
    if LAUNCHER:
        shell("python -m halo.launcher --stop {LAUNCHER_SOCKET:q}")
    if waiting_message():  # annotator: human -- the rounds that wait for a person's labels
        print(waiting_message(), file=sys.stderr)


rule all:
    default_target: True
    input:
        [f"results/{report_of(b)}" for b in config.get("targets", list(config["benchmarks"])[:1])],
