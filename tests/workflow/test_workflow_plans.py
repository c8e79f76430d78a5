"""The workflow's plans (dry runs) of every shipped grid, and its refusals before any job: the
tests that need no finished project, apart from test_workflow.py's module so that pytest-xdist
runs them beside it."""

from __future__ import annotations

import re
import sys
import time

import yaml

from tests.workflow.test_workflow import BENCH, ROOT, TINY, copy_project, run


def test_the_study_grid_parts_cover_its_cells_once(tmp_path):
    """configs/study.yaml in parts: every (method, budget) cell of the grid in exactly one part,
    the supervised bound in the first part only; a part restricts a seed's config file."""
    sys.path.insert(0, str(ROOT / "workflow" / "study"))
    import grid as study_grid

    spec = yaml.safe_load((ROOT / "configs/study.yaml").read_text())["benchmarks"][BENCH]
    blocks = [spec, *spec["extra"]]
    cells = [(m, b) for blk in blocks for m in blk["methods"] for b in blk["budgets"]]
    parts = study_grid.parts(spec)
    covered = [(m, b) for p in parts.values() for m in p["methods"] for b in p["budgets"]]
    assert sorted(covered) == sorted(cells) and len(set(covered)) == len(covered)
    assert [bool(p["supervised"]) for p in parts.values()] == [True] + [False] * (len(parts) - 1)
    assert all(p["extra"] == [] for p in parts.values())
    assert len(study_grid.todo(spec, tmp_path)) == len(parts) * len(spec["seeds"])
    (tmp_path / "seed0-random.tar.xz").touch()
    (tmp_path / "seed3-extra2.tar.xz").touch()
    left = study_grid.todo(spec, tmp_path)
    assert left[0] == (1, "random") and (0, "random") not in left and (3, "extra2") not in left
    assert left[-1] == (4, "extra2") and len(left) == len(parts) * len(spec["seeds"]) - 2


def test_dry_run_every_shipped_benchmark(tmp_path):
    """Every benchmark of configs/workflow.yaml plans; real ones against a fake data root."""
    project = copy_project(tmp_path / "p")
    fake = tmp_path / "fake"
    run(
        ["halo", "synth", "--count", "1", "--size", "32x64", "--out", str(fake), "--quiet"],
        tmp_path,
    )
    grid = yaml.safe_load((ROOT / "configs/workflow.yaml").read_text())["benchmarks"]
    targets = [f"results/{b}/" for b in grid]
    res = run(
        ["snakemake", *targets, "-n", "--cores", "8", "--config", f"data_root={fake}"], project
    )
    out = res.stdout + res.stderr
    for bench in grid:
        assert f"results/{bench}" in out
    assert "report" in out


def test_the_shipped_human_grid_plans_queries_and_labels(tmp_path):
    """configs/human.yaml (README, "Label your own data"): each of its 5 rounds is an
    acquisition that writes queries and a labels job; it shares the default study's source
    model."""
    project = copy_project(tmp_path / "p")
    res = run(["snakemake", "-n", "--cores", "2", "--configfile", "configs/human.yaml"], project)
    out = res.stdout + res.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.MULTILINE))
    assert jobs["acquire_queries"] == "5" and jobs["labels"] == "5", jobs
    assert "acquire" not in jobs and jobs["pretrain"] == "1"
    assert "runs/synth-gta2cs/deeplabv3plus-r18/halo/0.5/seed0/round5/queries/manifest.jsonl" in out


CONFIG_STUDY = ("--configfile", "study.yaml")


def test_study_grid_with_extra_cells_plans(tmp_path):
    """configs/study.yaml: 6 methods x 3 budgets x 5 seeds, plus 4 negative-learning twins and 3
    ablations at 5 % x 5 seeds, one source model per model variant and seed, one supervised
    bound per seed; a cell in both grids counts once; the source-radius methods read their
    seed's source model."""
    project = copy_project(tmp_path / "p")
    study = yaml.safe_load((ROOT / "configs/study.yaml").read_text())
    spec = study["benchmarks"][BENCH]
    spec["extra"].append({"methods": ["halo"], "budgets": [5]})  # already in the main grid
    (project / "study.yaml").write_text(yaml.safe_dump(study))
    res = run(
        ["snakemake", f"results/{BENCH}/", "-n", "-p", "--cores", "2", *CONFIG_STUDY],
        project,
    )
    out = res.stdout + res.stderr
    counts = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE)
    }
    seeds = 5
    active = 6 * 3 * seeds + (4 + 3) * seeds
    # + sources + supervised bounds, one per seed
    assert counts["summarize"] == counts["track"] == active + 4 * seeds + 1 * seeds
    # hyperbolic-hfr (random, entropy, halo, halo-src(-inv), the -nl twins but ripu-nl, radius),
    # euclidean-d512 (ripu, ripu-nl), hyperbolic (halo-nohfr), euclidean (featnorm), per seed
    assert counts["pretrain"] == 4 * seeds and counts["supervised"] == seeds
    for seed in range(seeds):
        assert f"{BENCH}/deeplabv3plus-r18/source/hyperbolic-hfr/seed{seed}/model.pt" in out
    assert counts["acquire"] == counts["train_round"] == active * 5
    for name in ("halo-nohfr", "featnorm", "radius", "halo-nl", "random-nl"):
        assert f"{BENCH}/deeplabv3plus-r18/{name}/5/seed4" in out
        assert f"{BENCH}/deeplabv3plus-r18/{name}/1/seed0" not in out
    source3 = f"--source-checkpoint runs/{BENCH}/deeplabv3plus-r18/source/hyperbolic-hfr/seed3/"
    for name in ("halo-src", "halo-src-inv"):
        acquires = [
            line
            for line in out.splitlines()
            if " acquire " in line and f"/{name}/2.2/seed3/round" in line
        ]
        assert len(acquires) == 5 and all(source3 in line for line in acquires)
    assert all(
        "--source-checkpoint" not in line
        for line in out.splitlines()
        if " acquire " in line and "/halo/" in line
    )


def test_real_benchmark_without_data_stops_at_once(tmp_path):
    project = copy_project(tmp_path / "p")
    start = time.monotonic()
    res = run(
        [
            "snakemake",
            "results/gta2cs/",
            "--cores",
            "8",
            "--config",
            f"data_root={tmp_path / 'none'}",
        ],
        project,
        check=False,
    )
    assert res.returncode != 0
    err = res.stdout + res.stderr
    assert "gta5" in err and "cityscapes" in err and "download.visinf" in err
    assert not (project / "runs").exists() and not (project / "results").exists()
    assert time.monotonic() - start < 120


def test_a_refused_yaml_tag_in_a_grid_is_one_line_before_any_job(tmp_path):
    project = copy_project(tmp_path / "p")
    grid = yaml.safe_load((project / TINY).read_text())
    grid["benchmarks"][BENCH]["set"] = ["train.lr=!!python/object/apply:os.system ['echo hi']"]
    (project / "bad.yaml").write_text(yaml.safe_dump(grid))
    argv = ["snakemake", f"results/{BENCH}/", "-n", "--cores", "2", "--configfile", "bad.yaml"]
    res = run(argv, project, check=False)
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln.lower()]
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(errors) == 1 and "train.lr" in errors[0] and "python/object" in errors[0], errors
    assert "Traceback" not in res.stderr and not (project / "runs").exists()
