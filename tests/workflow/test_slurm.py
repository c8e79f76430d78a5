"""The cluster path for real: the tiny grid through ``profiles/slurm`` on a single-node SLURM.

``tests/workflow/slurm/start.sh`` starts a real SLURM 22.05 (munge, MariaDB + slurmdbd for
``sacct``, slurmctld, slurmd; Debian's packages) from scratch in a temporary folder, as root;
Snakemake submits every job with the SLURM executor plugin, exactly as on a cluster's login node.
The models, masks and evaluations must equal a local run's byte for byte.

About 6 minutes on 2 cores (each job is an sbatch submission that starts Python anew), so it is
marked ``slurm`` and left out of the default ``uv run pytest``; ``.ci/run`` runs it after the
suite with ``uv run pytest -m slurm``. Skipped without root or without SLURM installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_workflow import BENCH, ROOT, TINY, _env, _round_results, copy_project

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SLURM = Path(__file__).parent / "slurm"  # start.sh / stop.sh
HEAVY = ("pretrain", "supervised", "train_round", "acquire", "acquire_queries")
GRID = "configs/test/slurm.yaml"


def _project(dest: Path) -> Path:
    """The project with a smaller tiny grid: the source model and HALO's two rounds."""
    project = copy_project(dest)
    grid = yaml.safe_load((ROOT / TINY).read_text())
    grid["benchmarks"][BENCH].update(methods=["halo"], supervised=[])
    (project / GRID).write_text(yaml.safe_dump(grid))
    return project


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster: the environment that reaches it and its partition."""
    need = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sbatch")
    missing = [b for b in need if shutil.which(b) is None]
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and SLURM (missing: {missing or 'root'}); .ci/run installs it")
    folder = tmp_path_factory.mktemp("slurm") / "cluster"
    started = subprocess.run(
        [str(SLURM / "start.sh"), str(folder)], capture_output=True, text=True, timeout=300
    )
    assert started.returncode == 0, started.stderr[-4000:]
    env = _env()
    env["SLURM_CONF"] = str(folder / "etc" / "slurm.conf")
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env['PATH']}"  # client shims (start.sh)
    try:
        yield {"env": env, "partition": started.stdout.strip()}
    finally:
        subprocess.run([str(SLURM / "stop.sh"), str(folder)], capture_output=True, timeout=120)


def test_the_grid_runs_on_a_real_slurm_cluster(cluster, tmp_path):
    local = _project(tmp_path / "local")
    done = subprocess.run(
        ["snakemake", f"results/{BENCH}/", "--cores", "2", "--configfile", GRID],
        cwd=local,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-6000:]

    remote = _project(tmp_path / "cluster")
    part = cluster["partition"]
    resources = [
        f"{rule}:{key}={value}"
        for rule in HEAVY
        for key, value in (
            ("gpu", 0),
            ("slurm_partition", part),
            ("mem_mb", 1500),
            ("cpus_per_task", 1),
            ("runtime", 30),
        )
    ]  # the profile's GPU partition and sizes, replaced for a 2-core node
    cmd = [
        "snakemake",
        f"results/{BENCH}/",
        "--workflow-profile",
        "profiles/slurm",
        "--configfile",
        GRID,
        "--jobs",
        "4",
        "--latency-wait",
        "5",
        "--default-resources",
        f"slurm_partition={part}",
        "slurm_account=ci",
        "runtime=30",
        "mem_mb=1500",
        "cpus_per_task=1",
        "--set-resources",
        *resources,
        "--set-threads",
        *(f"{rule}=1" for rule in HEAVY),
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "2",
    ]
    done = subprocess.run(
        cmd, cwd=remote, env=cluster["env"], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stderr[-6000:]
    submitted = re.findall(
        r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/", done.stderr
    )
    assert len(submitted) == 11, submitted  # every job of the grid went through sbatch
    assert {"synth", "pretrain", "acquire", "train_round", "summarize", "track", "report"} <= set(
        submitted
    )
    accounted = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--format=JobName,State"],
        env=cluster["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert accounted and all(line.endswith("|COMPLETED") for line in accounted), accounted
    assert _round_results(remote) == _round_results(local)
