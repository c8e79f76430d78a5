"""The workflow parses light: a dry run of the default target plans the whole grid without
importing torch (docs/design.md, section "Import weight")."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_of_the_default_target_imports_no_torch(tmp_path: Path) -> None:
    shutil.copy2(ROOT / "Snakefile", tmp_path / "Snakefile")
    for name in ("workflow", "profiles", "configs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "2",
            "results/synth-gta2cs/",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    imported = {
        m.group(1).strip()
        for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|(.*)$", res.stderr, flags=re.M)
    }
    assert "halo.config" in {m.strip() for m in imported}  # the grid was resolved by halo
    heavy = sorted(
        m for m in imported if m.split(".")[0] in ("torch", "segmentation_models_pytorch")
    )
    assert not heavy, f"the dry run imported {heavy[:5]}"
    # the top-level Snakefile was found, and the local profile beside it
    assert "Using workflow specific profile profiles/default" in res.stdout + res.stderr
    jobs = re.search(r"^total\s+(\d+)$", res.stdout, flags=re.M)
    assert jobs and int(jobs.group(1)) == 44, res.stdout[-2000:]


def _documented_snakemake_commands() -> list[tuple[str, list[str]]]:
    """Every ``snakemake ...`` command line the docs and configs give a reader to type: where
    it is and its arguments after ``snakemake`` (comments and shell continuations handled)."""
    import shlex

    files = [ROOT / "README.md", ROOT / "dvc.yaml", *sorted((ROOT / "docs").rglob("*.md"))]
    files += [
        *sorted((ROOT / "configs").rglob("*.yaml")),
        *sorted((ROOT / "workflow").rglob("*.py")),
    ]
    found = []
    for path in files:
        lines = path.read_text().splitlines()
        n = 0
        while n < len(lines):
            start, line = n + 1, lines[n]
            while line.endswith("\\") and n + 1 < len(lines):  # a shell continuation
                n += 1
                line = line[:-1] + " " + lines[n].lstrip("# ")
            n += 1
            m = re.search(r"snakemake( [^`|;#']*)", line.lstrip("#").strip().strip("`"))
            if m and "--configfile" in m.group(1):
                found.append((f"{path.relative_to(ROOT)}:{start}", shlex.split(m.group(1))))
    return found


def test_every_documented_snakemake_command_keeps_its_targets():
    """Snakemake's --configfile takes several values, so a target written after it is read as
    a config file and the command fails before any job; every documented command is parsed with
    Snakemake's own parser: its config files are files of the repository, its targets targets."""
    from snakemake.cli import get_argument_parser

    commands = _documented_snakemake_commands()
    assert any("configs/study.yaml" in args for _, args in commands)  # the study's one command
    params = yaml.safe_load((ROOT / "params.yaml").read_text())  # dvc.yaml's ${...}
    params["item"] = params["benchmarks"][0]
    parser = get_argument_parser()
    for where, args in commands:
        args = [re.sub(r"\$\{(\w+)\}", lambda m: str(params[m.group(1)]), a) for a in args]
        parsed = parser.parse_args(args)
        for f in parsed.configfile or []:
            assert (ROOT / f).is_file(), f"{where}: {f} is not a config file"


def test_an_unknown_annotator_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    """The workflow checks `annotator:` against halo.choices.ANNOTATORS (no second list)."""
    from halo.choices import ANNOTATORS

    shutil.copy2(ROOT / "Snakefile", tmp_path / "Snakefile")
    for name in ("workflow", "profiles", "configs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    extra = tmp_path / "robot.yaml"
    extra.write_text(yaml.safe_dump({"benchmarks": {"synth-gta2cs": {"annotator": "robot"}}}))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(extra)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "benchmarks.synth-gta2cs.annotator: unknown 'robot'" in out, out[-2000:]
    assert f"valid: {', '.join(ANNOTATORS)}" in out


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    """Links and pictures of README.md and docs/ name files that exist (a moved or deleted figure
    fails here)."""
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken
