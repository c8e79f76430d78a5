"""A new acquisition method is one module: dropped into halo/acquisition/plugins/ of a copy of
the project, it runs through ``halo acquire`` and plans in the workflow's dry run, with nothing
else edited."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''
"""Margin sampling: one minus the gap between the two likeliest classes, window-summed."""
from halo.acquisition.methods import METHODS, MethodPreset
from halo.acquisition.scores import window_sum
from halo.acquisition.strategies import Strategy, register_strategy

METHODS.add("margin", MethodPreset("margin", mask_radius=4))


@register_strategy("margin")
class MarginStrategy(Strategy):
    def score(self, logits, radius=None):
        top = logits.float().softmax(1).topk(2, dim=1).values
        return window_sum(1 - (top[:, 0] - top[:, 1]), self.active_radius)
'''


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)


def _project(tmp_path: Path, plugin: bool) -> Path:
    """A copy of the project (package, workflow, configs), with or without the plugin module."""
    project = tmp_path / ("with" if plugin else "without")
    skip = shutil.ignore_patterns("__pycache__")
    for name in ("halo", "workflow", "configs", "profiles"):
        shutil.copytree(ROOT / name, project / name, ignore=skip)
    shutil.copy2(ROOT / "Snakefile", project / "Snakefile")
    if plugin:
        (project / "halo/acquisition/plugins/margin.py").write_text(PLUGIN)
    return project


def test_a_method_from_one_module_runs_through_acquire_and_the_dry_run(tmp_path, tiny_data):
    project = _project(tmp_path, plugin=True)
    halo = [sys.executable, "-m", "halo.cli"]
    run = ["--config", "configs/test/tiny.yaml", "--set", f"data_root={tiny_data}"]
    run += ["--set", "method=margin", "--quiet"]
    res = _run([*halo, "pretrain", *run, "--out", "source"], project)
    assert res.returncode == 0, res.stderr[-2000:]
    res = _run(
        [*halo, "acquire", *run, "--checkpoint", "source/model.pt", "--round", "1", "--out", "r1"],
        project,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    budget = json.loads((project / "r1/budget.json").read_text())
    assert budget["strategy"] == "margin" and budget["mask_radius"] == 4
    assert budget["pixels_labelled_round"] > 0

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"benchmarks": {"synth-gta2cs": {"methods": ["margin"]}}}))
    dry = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile"]
    res = _run([*dry, "configs/test/workflow.yaml", str(grid)], project)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "method=margin" in res.stdout and "/margin/5/seed0/round1/" in res.stdout


def test_without_the_module_the_method_is_unknown(tmp_path, tiny_data):
    """The control: the same command in a copy without the plugin fails on the name."""
    project = _project(tmp_path, plugin=False)
    argv = [sys.executable, "-m", "halo.cli", "pretrain", "--config", "configs/test/tiny.yaml"]
    argv += ["--set", f"data_root={tiny_data}", "--set", "method=margin", "--out", "source"]
    res = _run(argv, project)
    assert res.returncode == 2
    assert "unknown strategy 'margin'" in res.stderr
    assert not (project / "source").exists()
