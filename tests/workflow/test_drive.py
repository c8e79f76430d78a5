"""workflow/study/drive.sh: the study's resumable driver, run for real with a recorder in place of
Python (each "command" notes its arguments and writes its --out), in a scratch git checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDER = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$*" in *"--part $FAIL "*|*"$FAIL.py "*) exit 3 ;; esac
prev=""
for a in "$@"; do
  if [ "$prev" = "--out" ]; then mkdir -p "$(dirname "$a")"; : > "$a"; fi
  prev=$a
done
"""
PARTS = ["random", "entropy", "ripu", "halo", "extra1", "halo-src", "halo-src-inv"]


def _checkout(tmp: Path) -> dict:
    work = tmp / "work"
    rounds = work / "runs/synth-gta2cs/deeplabv3plus-r18/halo/5/seed0"
    for r in range(1, 6):
        (rounds / f"round{r}").mkdir(parents=True)
        for name in ("model.pt", "optim.pt"):
            (rounds / f"round{r}" / name).write_bytes(b"x")
    nl = work / "runs/synth-gta2cs/deeplabv3plus-r18/halo-nl/5/seed0/round1"
    nl.mkdir(parents=True)
    (nl / "model.pt").write_bytes(b"x")
    (work / ".snakemake/locks").mkdir(parents=True)
    (work / ".snakemake/locks/0.output.lock").write_text("stale")  # a stopped machine's
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
         "-m", "x"],
        cwd=work, check=True,
    )  # fmt: skip
    recorder = tmp / "py"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    roots = {}
    # a finished step's checkpoints and evaluations (the selection sweep's: a setting's folder)
    for name, sub in (("RADIUS_ROOT", "m"), ("SELECT_ROOT", "lr1e-2")):
        roots[name] = tmp / name.lower()
        (roots[name] / sub / "seed0/snapshots").mkdir(parents=True)
        for f in ("seed0/model.pt", "seed0/snapshots/step000100.pt", "seed0/eval.json"):
            (roots[name] / sub / f).write_text("x")
    env = {**os.environ, "PY": str(recorder), "CALLS": str(tmp / "calls"), "SEEDS": "0",
           "ARCHIVES": str(tmp / "archives"), "OUT": str(tmp / "out"), "FAIL": "none",
           **{k: str(v) for k, v in roots.items()}}  # fmt: skip
    return {"work": work, "rounds": rounds, "nl": nl, "env": env, "roots": roots}


def _drive(c: dict, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "workflow/study/drive.sh")],
        cwd=c["work"], env={**c["env"], **env}, capture_output=True, text=True,
    )  # fmt: skip


def _calls(tmp: Path) -> list[str]:
    path = tmp / "calls"
    return path.read_text().splitlines() if path.exists() else []


def _parts(calls: list[str]) -> list[str]:
    return [x.split("--part ")[1].split()[0] for x in calls if "--part " in x]


def test_the_driver_runs_the_study_in_order_prunes_and_resumes(tmp_path):
    c = _checkout(tmp_path)
    assert _drive(c, FAIL="ripu").returncode == 3  # a failed part stops the driver there
    assert not list((c["work"] / ".snakemake/locks").iterdir())  # no Snakemake ran: cleared
    first = _calls(tmp_path)
    assert _parts(first) == PARTS[:3]
    assert all(len(list(r.rglob("*.pt"))) == 2 for r in c["roots"].values())  # not done yet
    assert _drive(c, FAIL="nlcheck").returncode == 3  # NL changed a verdict: stop before halo-src
    calls = _calls(tmp_path)[len(first) :]
    assert calls[-1].split()[0].endswith("nlcheck.py") and "--part halo-src" not in " ".join(calls)
    assert _drive(c).returncode == 0  # the rerun resumes at the check
    calls = _calls(tmp_path)[len(first) :]
    assert _parts(calls) == [*PARTS[2:], "extra2"]
    scripts = [x.split()[0].rsplit("/", 1)[1] for x in calls]
    scores = ["grid.py", "radius.py"]  # every part, then its models' in-domain scores
    assert scripts == (
        scores * 3 + ["nlcheck.py"] * 2 + scores * 2 + ["radius.py"] * 5 + ["sweep.py"] * 5 + scores
    )  # fmt: skip
    # in-domain: radius.py's rounds-source, into the archives, from the runs of the checkout
    runs = c["rounds"].parents[2].relative_to(c["work"])
    for x in (x for x in calls if "rounds-source" in x):
        assert f"--root {tmp_path / 'archives'} --only rounds-source --grid-runs {runs} " in x
    experiments = [x.split("--only ")[1].split()[0] for x in calls if "radius.py" in x]
    steps = ["regime", "training", "head", "frequency", "labels"]
    assert experiments == ["rounds-source"] * 5 + steps + ["rounds-source"]
    sweeps = [x for x in calls if "sweep.py" in x]
    assert all("--select 100" in x and x.count("--setting") == 1 for x in sweeps)
    assert [x.split("--out ")[1].split()[0].rsplit("/", 1)[1] for x in sweeps] == [
        "lr3e-4", "lr1e-3", "lr3e-3", "lr1e-2", "lr3e-2"
    ]  # fmt: skip
    assert not list(c["work"].rglob("*.pt"))  # every part's checkpoints go once it is archived
    for root in c["roots"].values():  # the radius and selection steps' models: gone once done
        assert [p.name for p in root.rglob("*") if p.is_file()] == ["eval.json"]
    log = (tmp_path / "archives/times.log").read_text()
    assert "seed 0 part ripu end rc=3" in log and log.rstrip().split()[-3:-1] == ["grid", "done"]
    assert _drive(c).returncode == 0 and len(_calls(tmp_path)) == len(first) + len(calls)


def test_a_failed_in_domain_score_stops_the_driver_and_keeps_the_models(tmp_path):
    c = _checkout(tmp_path)
    assert _drive(c, FAIL="radius").returncode == 1
    assert _parts(_calls(tmp_path)) == ["random"]
    assert (
        "seed 0 part random in-domain scores failed"
        in (tmp_path / "archives/times.log").read_text()
    )
    assert len(list(c["rounds"].rglob("*.pt"))) == 10  # nothing pruned: the scores can be redone


def test_resume_collects_what_the_driver_kept_into_grid2(tmp_path):
    """workflow/study/resume.sh collect: the archives, marks, in-domain scores, step outputs,
    log and seed 0's HALO panels come into docs/study/grid2; a second run finds nothing new."""
    repo, archives, out = tmp_path / "repo", tmp_path / "archives", tmp_path / "out"
    grid2 = repo / "docs/study/grid2"
    grid2.mkdir(parents=True)
    (archives / "rounds-source/halo/5/seed0").mkdir(parents=True)
    (archives / "rounds-source/halo/5/seed0/round5.json").write_text("{}")
    for name in ("seed0-halo.tar.xz", "radius-regime.done", "times.log"):
        (archives / name).write_text(name)
    for part in ("seed0-halo", "seed1-halo", "seed0-ripu"):
        (archives / "panels" / part).mkdir(parents=True)
        (archives / "panels" / part / "a.png").write_bytes(b"png")
    (out / "round_lr_select/lr1e-2").mkdir(parents=True)
    (out / "round_lr_select/lr1e-2/miou_table.csv").write_text("x")
    (out / ".tmp-radius_experiments.csv").write_text("half")  # a step writing it right now
    env = {**os.environ, "ARCHIVES": str(archives), "OUT": str(out)}
    script = ROOT / "workflow/study/resume.sh"

    def collect() -> str:
        run = subprocess.run(["bash", str(script), "collect"], cwd=repo, env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        return run.stdout.strip()

    assert collect() == "seed0-halo.tar.xz radius-regime.done"
    kept = sorted(str(p.relative_to(grid2)) for p in grid2.rglob("*") if p.is_file())
    assert kept == [
        "out/round_lr_select/lr1e-2/miou_table.csv",
        "panels/seed0-halo/a.png",
        "radius-regime.done",
        "rounds-source/halo/5/seed0/round5.json",
        "seed0-halo.tar.xz",
        "times.log",
    ]
    assert collect() == ""
    bad = subprocess.run(["bash", str(script), "collect"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "docs/study/grid2: not found" in bad.stderr
