"""The Snakemake workflow and the DVC pipeline, run for real on the tiny grid.

One module-scoped project copy in a temporary git repository: the tiny workflow is started with
Snakemake, killed mid-run (SIGKILL to the whole process group), and completed by ``dvc repro``;
the tests then check the report, the MLflow store, the DVC metrics and that nothing is left to do.
Dry runs cover every shipped benchmark (the real ones against a fake data root).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from halo.runs import RECORD_FILE

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BENCH = "synth-gta2cs"
TINY = "configs/test/workflow.yaml"
pytestmark = pytest.mark.slow


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # halo, snakemake, dvc of this env
    env["MPLBACKEND"] = "Agg"
    return env


def run(args: list[str], cwd: Path, *, check: bool = True, timeout: float = 900):
    res = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}"
            f"\n--- stderr\n{res.stderr[-6000:]}"
        )
    return res


def snakemake(cwd: Path, *targets: str, extra: tuple[str, ...] = (), check: bool = True):
    # targets first: --configfile takes several values (ECOSYSTEM trap)
    return run(
        ["snakemake", *targets, "--cores", "2", *extra, "--configfile", TINY], cwd, check=check
    )


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "dvc.yaml", "params.yaml", ".dvcignore", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("workflow", "profiles", "configs", "halo"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project in a fresh git + DVC repository, with params.yaml pointing at the tiny grid."""
    dest = copy_project(tmp_path_factory.mktemp("project"))
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params.update(workflow_config=TINY, benchmarks=[BENCH], run_config="configs/test/tiny.yaml")
    (dest / "params.yaml").write_text(yaml.safe_dump(params))
    run(["git", "init", "-q"], dest)
    run(["dvc", "init", "-q"], dest)
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")  # the plot templates
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")  # and the offline page
    run(["git", "add", "-A"], dest)
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project"],
        dest,
    )
    return dest


@pytest.fixture(scope="module")
def built(project: Path) -> dict:
    """Start the tiny workflow, SIGKILL it (the whole process group) once an acquisition round
    exists -- so the source model is finished and other jobs are in flight -- then finish it
    with ``dvc repro``."""
    source_model = project / f"runs/{BENCH}/deeplabv3plus-r18/source/hyperbolic-hfr/seed0/model.pt"
    proc = subprocess.Popen(
        ["snakemake", f"results/{BENCH}/", "--cores", "2", "--configfile", TINY],
        cwd=project,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if list(project.glob(f"runs/{BENCH}/*/*/*/seed0/round1/budget.json")):
            break
        time.sleep(0.2)
    killed_running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert source_model.is_file(), "the workflow did not train the source model"
    stamp = source_model.stat().st_mtime_ns
    # Snakemake's own convention after a kill: its lock stays, a plain rerun is refused until
    # `snakemake --unlock` (docs/reliability.md)
    refused = snakemake(project, f"results/{BENCH}/", check=False)
    snakemake(project, extra=("--unlock",))
    repro = run(["dvc", "repro"], project)
    return {
        "repro": repro,
        "refused": refused,
        "source_stamp": stamp,
        "killed_running": killed_running,
    }


def test_killed_run_is_completed_without_redoing_finished_jobs(project, built):
    assert built["killed_running"], "the workflow had finished before it could be killed"
    refused = built["refused"]
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr
    model = project / f"runs/{BENCH}/deeplabv3plus-r18/source/hyperbolic-hfr/seed0/model.pt"
    assert model.stat().st_mtime_ns == built["source_stamp"]
    assert not list(project.glob("runs/**/.tmp-*")), "half-written files were left behind"


def test_report_files(project, built):
    out = project / "results" / BENCH
    for name in (
        "miou_table.csv",
        "miou_table.md",
        "miou_table.html",
        "per_class.csv",
        "budget_curve.png",
        "radius_vs_frequency.csv",
        "radius_vs_frequency.png",
        "radius_correlations.csv",
        "acquired_classes.csv",
        "training_stability.csv",
        "budget_curve.csv",
        "rounds.csv",
        "metrics.json",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    stability = (out / "training_stability.csv").read_text().splitlines()
    assert len(stability) == 1 + 2  # header + the two active runs (random, halo at 5 %)
    assert len(list((out / "acquisition").glob("*.png"))) == 1
    table = (out / "miou_table.md").read_text()
    for row in ("source-only", "supervised", "random", "halo"):
        assert row in table
    metrics = json.loads((out / "metrics.json").read_text())  # method -> budget -> seeds
    assert {"random", "halo"} <= set(metrics) and set(metrics["halo"]) == {"5%"}
    cells = [cell for budgets in metrics.values() for cell in budgets.values()]
    assert all(0 <= cell["seed0"] <= 100 and cell["mean"] == cell["seed0"] for cell in cells)


def test_runs_and_masks(project, built):
    run_dir = project / f"runs/{BENCH}/deeplabv3plus-r18/halo/5/seed0"
    record = json.loads((run_dir / "metrics.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert record["budget_used"] == pytest.approx(0.05, abs=0.01)
    masks = sorted((run_dir / "round2" / "masks").rglob("*.png"))
    assert len(masks) == 4  # one per target image (count 4)


def test_a_grid_archived_per_seed_reports_the_same_tables(project, built, tmp_path):
    """workflow/study/grid.py: a seed's archive holds every file the report reads (and no model),
    so the tables gathered from archives are the workflow's own, byte for byte."""
    script = project / "workflow" / "study" / "grid.py"
    archive = tmp_path / "seed0.tar.xz"
    run([sys.executable, str(script), "--grid", TINY, "archive", "--out", str(archive)], project)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names and all(n.startswith(f"runs/{BENCH}/") for n in names)
    assert not [n for n in names if n.endswith(".pt")], "an archive never holds a model"
    out, figures = tmp_path / "tables", tmp_path / "figures"
    gather = [sys.executable, str(script), "--grid", TINY, "gather", str(archive)]
    run([*gather, "--out", str(out), "--figures", str(figures)], project)
    results = project / "results" / BENCH
    tables = sorted(p.name for p in results.glob("*.csv"))
    assert "acquired_classes.csv" in tables and "training_stability.csv" in tables
    for name in tables:
        assert (out / name).read_bytes() == (results / name).read_bytes(), name
    assert (figures / "budget_curve.png").is_file()
    twice = run([*gather, str(archive), "--out", str(tmp_path / "t2")], project, check=False)
    assert twice.returncode != 0 and "is also in" in twice.stderr
    assert not (tmp_path / "t2").exists()


def test_a_seed_archived_in_parts_reports_the_same_tables(project, built, tmp_path):
    """grid.py --part: each method's archive holds its own runs and the seed's source and
    supervised runs; gathered together they give the workflow's tables byte for byte. A source
    run whose copies evaluate differently (a retrained, different model) is refused by name."""
    script = project / "workflow" / "study" / "grid.py"
    archives = []
    for part in ("random", "halo"):
        archives.append(tmp_path / f"seed0-{part}.tar.xz")
        cmd = [sys.executable, str(script), "--grid", TINY, "archive", "--seed", "0"]
        run([*cmd, "--part", part, "--out", str(archives[-1])], project)
    names = [set(tarfile.open(a).getnames()) for a in archives]
    assert any(f"/random/5/seed0/{RECORD_FILE}" in n for n in names[0])
    assert not any("/halo/5/seed0/" in n for n in names[0])
    shared = {n for n in names[0] & names[1] if n.endswith(RECORD_FILE)}
    assert {n.split("/")[3] for n in shared} == {"source", "supervised"}
    out = tmp_path / "tables"
    gather = [sys.executable, str(script), "--grid", TINY, "gather", *map(str, archives)]
    run([*gather, "--out", str(out)], project)
    results = project / "results" / BENCH
    for name in sorted(p.name for p in results.glob("*.csv")):
        assert (out / name).read_bytes() == (results / name).read_bytes(), name
    # the halo part's copy of the source model evaluates differently: refused, nothing written
    tampered = tmp_path / "tampered.tar.xz"
    with tarfile.open(archives[1]) as src, tarfile.open(tampered, "w:xz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if "/source/" in m.name and m.name.endswith("/eval.json"):
                record = json.loads(data)
                record["miou"] += 1.0
                data = json.dumps(record).encode()
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    bad = [*gather[:-2], str(archives[0]), str(tampered), "--out", str(tmp_path / "t2")]
    res = run(bad, project, check=False)
    assert (
        res.returncode != 0 and "differs from its copy" in res.stderr and "/source/" in res.stderr
    )
    assert not (tmp_path / "t2").exists()


def test_mlflow_has_every_run_once(project, built):
    from halo.tracking import find_runs

    runs = find_runs(BENCH, uri=f"sqlite:///{project / 'mlflow.db'}")
    names = sorted(r["name"] for r in runs)
    # source, supervised, random, halo, report and the parents of the 4 cells (2 active, the
    # source-only model's and the supervised bound's)
    assert len(names) == 9, names
    assert len(set(names)) == len(names)
    by_id = {r["run_id"]: r for r in runs}
    report = next(r for r in runs if r["name"] == "report")
    for r in runs:  # the tree: cells (top level) <- seeds; the report beside them
        kind, parent = r["tags"]["halo.kind"], r["tags"].get("mlflow.parentRunId")
        if kind in ("report", "cell"):
            assert parent is None, r["name"]
        else:
            assert by_id[parent]["tags"]["halo.kind"] == "cell", r["name"]
            if kind == "active":
                assert by_id[parent]["tags"]["halo.method"] == r["tags"]["halo.method"]
    halo = next(
        r
        for r in runs
        if r["tags"].get("halo.method") == "halo" and r["tags"]["halo.kind"] == "active"
    )
    assert "final_miou" in halo["metrics"]
    # what the MLflow UI shows: a model-training experiment, names that lead with the method,
    # the commit of the code, constants once (in the report run)
    assert halo["name"] == "halo · 5% · s0 · deeplabv3plus-r18"
    assert "source-only · hyperbolic-hfr · s0 · deeplabv3plus-r18" in names
    commit = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    for r in runs:
        if r["tags"]["halo.kind"] in ("source", "supervised", "active"):
            assert r["tags"]["mlflow.source.git.commit"] == commit, r["name"]
            assert not [k for k in r["metrics"] if k.startswith("pixel_share/")]
    assert [k for k in report["params"] if k.startswith("pixel_share/")]
    assert not report["metrics"]  # the chart view draws the cells' final_miou first
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    tags = client.get_experiment_by_name(BENCH).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    # the run spans its jobs: from the first job's process start to the last job's end
    run_dir = project / f"runs/{BENCH}/deeplabv3plus-r18/halo/5/seed0"
    starts = [json.loads(p.read_text())["started"] for p in run_dir.glob("round*/provenance*.json")]
    ends = [json.loads(p.read_text())["finished"] for p in run_dir.glob("round*/provenance*.json")]
    info = client.get_run(halo["run_id"]).info
    assert (info.start_time, info.end_time) == (int(min(starts) * 1000), int(max(ends) * 1000))
    assert info.end_time - info.start_time > 1000  # seconds of real jobs, not the logging
    # the loss curve has one point per step trained, across the kill and resume and all rounds
    tiny = yaml.safe_load((project / "configs/test/tiny.yaml").read_text())["train"]
    for r in runs:
        if r["tags"]["halo.kind"] not in ("source", "supervised", "active"):
            continue
        steps = {"source": tiny["source_steps"], "supervised": tiny["supervised_steps"]}.get(
            r["tags"]["halo.kind"], 2 * tiny["round_steps"]
        )
        curve = client.get_metric_history(r["run_id"], "train/loss")
        assert sorted(m.step for m in curve) == list(range(steps)), r["name"]
        # the data it saw, as dataset inputs; active runs start at step 0 (the source model)
        inputs = client.get_run(r["run_id"]).inputs.dataset_inputs
        contexts = sorted({t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs)
        expected = {"source": ["source"], "supervised": ["target"]}
        assert contexts == expected.get(r["tags"]["halo.kind"], ["source", "target"]), r["name"]
        assert all(len(i.dataset.digest) == 36 for i in inputs)
        if r["tags"]["halo.kind"] == "active":
            miou = client.get_metric_history(r["run_id"], "miou")
            assert sorted(m.step for m in miou) == [0, 1, 2], r["name"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _mlflow_server(project: Path, tmp_path: Path):
    """A real `mlflow server` on the project's store; yields (its URL, a REST getter)."""
    import urllib.request

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        ["mlflow", "server", "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=project, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def get(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{url}/api/2.0/mlflow{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                get(f"/experiments/get-by-name?experiment_name={BENCH}")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "server.log"
                ).read_text()[-3000:]
                time.sleep(0.5)
        yield url, get
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:  # uvicorn's graceful stop waits ~10 s for idle connections: not worth the suite's
            server.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def mlflow_ui(project, built, tmp_path_factory):
    """One real `mlflow server` on the finished project's store for the UI tests below (started
    once: each start costs seconds of the suite); yields (its URL, a REST getter)."""
    with _mlflow_server(project, tmp_path_factory.mktemp("mlflow-ui")) as served:
        yield served


def test_the_mlflow_server_serves_what_the_ui_shows(mlflow_ui):
    """A real `mlflow server` on the project's store, asked through the REST API the UI uses:
    the experiment opens as model training, runs carry their short names, the tree (the cells
    at the top level) and the loss curve."""
    _, get = mlflow_ui
    exp = get(f"/experiments/get-by-name?experiment_name={BENCH}")["experiment"]
    tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    runs = get("/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})
    by_name = {r["info"]["run_name"]: r for r in runs["runs"]}
    assert {"halo · 5% · s0 · deeplabv3plus-r18", "report"} <= set(by_name), sorted(by_name)
    halo = by_name["halo · 5% · s0 · deeplabv3plus-r18"]
    halo_tags = {t["key"]: t["value"] for t in halo["data"]["tags"]}
    parent = next(r for r in runs["runs"] if r["info"]["run_id"] == halo_tags["mlflow.parentRunId"])
    assert parent["info"]["run_name"] == "halo · 5% · deeplabv3plus-r18"
    assert "mlflow.parentRunId" not in {t["key"] for t in parent["data"]["tags"]}
    curve = get(f"/metrics/get-history?run_id={halo['info']['run_id']}&metric_key=train/loss")
    assert len(curve["metrics"]) >= 2


def test_one_click_on_the_experiment_page_charts_final_miou_by_method(mlflow_ui):
    """Headless Chromium on the MLflow UI over the project's store: from the experiment's page
    (the README's link), one click on the chart view shows a final_miou chart whose labels name
    every method's cell with its mean final mIoU."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import chromium

    url, get = mlflow_ui
    exp = get(f"/experiments/get-by-name?experiment_name={BENCH}")["experiment"]
    runs = get("/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})
    cells = {
        r["info"]["run_name"]: {m["key"]: m["value"] for m in r["data"]["metrics"]}
        for r in runs["runs"]
        if {"key": "halo.kind", "value": "cell"} in r["data"]["tags"]
    }
    assert {"halo · 5% · deeplabv3plus-r18", "random · 5% · deeplabv3plus-r18"} <= set(cells)
    driver = chromium(window="1400,900")
    try:
        driver.get(f"{url}/#/experiments/{exp['experiment_id']}/runs")
        chart = WebDriverWait(driver, 90).until(
            lambda d: d.find_element(By.XPATH, "//input[@value='CHART']/ancestor::label"),
            message="the experiment page's view switch",
        )
        chart.click()  # the one click

        def final_miou_card(d):  # its text (the legend's clipped entries too), bar labels
            cards = d.execute_script(
                "return Array.from(document.querySelectorAll("
                "'[data-testid=\"experiment-view-compare-runs-card\"]')).map(c => ["
                "c.innerText, Array.from(c.querySelectorAll('svg text')).map(t => t.textContent)])"
            )
            for text, bars in cards:
                lines = [x.strip() for x in text.splitlines() if x.strip()]
                named = any(x.startswith("halo ") for x in lines)
                if lines[:1] == ["final_miou"] and named and len(bars) >= len(cells):
                    return lines, bars  # drawn: a label per bar
            return False

        lines, bars = WebDriverWait(driver, 90).until(final_miou_card, message="a final_miou chart")
    finally:
        driver.quit()
    for name, metrics in cells.items():  # every cell by name, with its mean final mIoU
        assert name in lines, (name, lines)
        assert f"{metrics['final_miou']:.2f}" in bars, (name, metrics, bars)


def _page_text(driver, url: str, wanted, message: str) -> str:
    """Open ``url`` and wait until the page's text satisfies ``wanted``; return the text."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    return WebDriverWait(driver, 90).until(
        lambda d: (t := d.execute_script("return document.body.innerText")) and wanted(t) and t,
        message=message,
    )


def test_the_compare_view_opens_on_final_miou_and_a_run_page_shows_its_source(project, mlflow_ui):
    """Headless Chromium on the MLflow UI: comparing the cells opens its plot on final_miou (not
    on a constant such as ``seeds``); a seed run's page shows the command that made it and the
    commit of its code where MLflow shows a run's source."""
    from tests.conftest import chromium

    commit = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    url, get = mlflow_ui
    exp_id = get(f"/experiments/get-by-name?experiment_name={BENCH}")["experiment"]
    exp_id = exp_id["experiment_id"]
    runs = get("/runs/search", {"experiment_ids": [exp_id], "max_results": 100})["runs"]
    tags = {r["info"]["run_id"]: {t["key"]: t["value"] for t in r["data"]["tags"]} for r in runs}
    cells = [i for i, t in tags.items() if t["halo.kind"] == "cell"]
    seed = next(i for i, t in tags.items() if t["halo.kind"] == "active")
    driver = chromium(window="1400,900")
    try:
        compare = (
            f"{url}/#/compare-runs?runs={json.dumps(cells)}&experiments={json.dumps([exp_id])}"
        )
        text = _page_text(driver, compare, lambda t: "Metrics:" in t, "the compare view")
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        assert lines[lines.index("Metrics:") + 1] == "final_miou", lines[:40]
        page = f"{url}/#/experiments/{exp_id}/runs/{seed}"
        text = _page_text(driver, page, lambda t: commit[:7] in t, "the run's commit")
    finally:
        driver.quit()
    assert "halo train --protocol active" in text


def test_jobs_ran_through_the_launcher_and_every_job_says_where_its_time_went(project, built):
    """Training, acquisition and the report ran in the fork server (its log names them); the
    server is gone with Snakemake; bench/workflow_profile.py splits every job of the last run."""
    served = (project / "logs" / "launcher.log").read_text()
    for command in ("halo pretrain", "halo train --protocol active", "halo acquire", "halo report"):
        assert command in served, served[-2000:]
    from halo.launcher.protocol import socket_path

    sock = socket_path(project)
    deadline = time.monotonic() + 30  # it leaves within a second or two of Snakemake
    while time.monotonic() < deadline and sock.exists():
        time.sleep(0.2)
    leftover = run(["pgrep", "-f", f"halo.launcher --serve {sock}"], project, check=False)
    assert leftover.returncode == 1, leftover.stdout
    assert not sock.exists()
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import workflow_profile
    finally:
        sys.path.remove(str(ROOT / "bench"))
    logs = sorted((project / ".snakemake" / "log").glob("*.snakemake.log"))
    result = workflow_profile.profile(project, logs[-1])
    assert result["jobs_without_timing"] == 0
    assert {"train_round", "acquire", "summarize", "track", "report"} <= set(result["rules"])
    for row in result["rules"].values():
        assert row["startup"] + row["compute"] + row["write"] <= row["wall"] + 2 * row["jobs"]


def test_every_run_has_its_evaluation_from_the_training_job(project, built):
    """eval.json is written by the job that trained model.pt (--eval-out), one per model."""
    models = sorted(project.glob("runs/**/model.pt"))
    assert len(models) == 1 + 1 + 2 * 2  # source, supervised, 2 methods x 2 rounds
    for model in models:
        metrics = json.loads((model.parent / "eval.json").read_text())
        assert metrics["checkpoint"] == str(model.relative_to(project))
        assert ("budget" in metrics) == (model.parent.name.startswith("round"))
    source = json.loads(
        (
            project / f"runs/{BENCH}/deeplabv3plus-r18/source/hyperbolic-hfr/seed0/eval.json"
        ).read_text()
    )
    active = [
        rec
        for rec in map(
            json.loads, map(Path.read_text, project.glob(f"runs/{BENCH}/**/metrics.json"))
        )
        if rec["kind"] == "active"
    ]
    assert len(active) == 2
    for rec in active:
        assert rec["start_miou"] == source["miou"]  # round 0: the source model of its seed


def test_the_snakemake_report_holds_the_results(project, built):
    """`snakemake --report` carries the report's figures and tables; in headless Chromium its
    Results show the mIoU table inline (every method's row) and each file its own caption, the
    one halo.report.layout gives it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from halo.report.layout import CAPTIONS
    from tests.conftest import chromium

    res = snakemake(project, f"results/{BENCH}/", extra=("--report", "report.html"))
    added = res.stdout + res.stderr
    for name in ("budget_curve.png", "miou_table.html", "radius_vs_frequency.png", "runs.csv"):
        assert f"Adding {name}" in added, added[-3000:]
    wait = lambda d, found, what: WebDriverWait(d, 60).until(found, message=what)  # noqa: E731

    def result(d, name: str, button: str):  # the Results list, then a file's button
        d.get("about:blank")
        d.get((project / "report.html").as_uri())
        wait(
            d, lambda d: d.find_element(By.XPATH, "//a[normalize-space()='Results']"), "menu"
        ).click()
        row = f"//tr[td[normalize-space()='results/{BENCH}/{name}']]//a[@iconname='{button}']"
        wait(d, lambda d: d.find_element(By.XPATH, row), name).click()

    driver = chromium(window="1400,900")
    try:
        result(driver, "miou_table.html", "eye")
        frame = wait(driver, lambda d: d.find_element(By.TAG_NAME, "iframe"), "the table's frame")
        driver.switch_to.frame(frame)
        table = wait(driver, lambda d: d.find_element(By.TAG_NAME, "table").text, "the table")
        driver.switch_to.default_content()
        captions = {}
        for name in ("budget_curve.png", "miou_table.csv", "per_class.csv"):
            result(driver, name, "information-circle")
            text = wait(
                driver,
                lambda d: "DESCRIPTION" in (t := d.find_element(By.TAG_NAME, "body").text) and t,
                name,
            )
            captions[name] = text.split("DESCRIPTION", 1)[1].split("SIZE", 1)[0].strip()
    finally:
        driver.quit()
    for method in ("source-only", "random", "halo", "supervised"):
        assert f"deeplabv3plus-r18 {method}" in table, table
    for name, caption in captions.items():
        assert caption == f"{name} (report {BENCH}): {CAPTIONS[name]}", caption


def test_rerun_has_nothing_to_do(project, built):
    dry = snakemake(project, f"results/{BENCH}/", extra=("-n",))
    assert "Nothing to be done" in dry.stdout + dry.stderr
    status = run(["dvc", "status"], project)
    assert "up to date" in status.stdout.lower(), status.stdout
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    (entry,) = shown.values()  # the workspace
    metrics = entry["data"][f"results/{BENCH}/metrics.json"]["data"]
    assert set(metrics) == {"source-only", "supervised", "random", "halo"}  # compact
    assert set(metrics["halo"]["5%"]) == {"mean", "seed0"}
    # data-driven plots: the budget curve and the rounds from the report's CSV files
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    for name, x in (("budget_curve.csv", "budget"), ("rounds.csv", "round")):
        (plot,) = plots[f"results/{BENCH}/{name}"]
        values = plot["content"]["data"]["values"]
        assert plot["content"]["encoding"]["x"]["field"] == x
        assert plot["content"]["encoding"]["color"]["field"] == "series"
        assert {v["series"] for v in values} >= {"halo" if x == "budget" else "halo 5%"}
    rounds = [v for v in plots[f"results/{BENCH}/rounds.csv"][0]["content"]["data"]["values"]]
    assert sorted({int(v["round"]) for v in rounds}) == [0, 1, 2]


def test_a_moved_project_plans_nothing(project, built, tmp_path):
    """No rule carries a machine path: a finished project moved (or copied with its times, as
    `cp -a` does) elsewhere has nothing to do."""
    moved = tmp_path / "elsewhere" / "project"
    shutil.copytree(project, moved, symlinks=True)  # copy2: contents, modes and times
    dry = snakemake(moved, f"results/{BENCH}/", extra=("-n",))
    out = dry.stdout + dry.stderr
    assert "Nothing to be done" in out, out[-3000:]


def _round_results(folder: Path, report: str = BENCH) -> dict[str, bytes]:
    """Every evaluation, budget report and mask of the runs, and the report's metrics (under
    the name "report")."""
    out = {"report": (folder / f"results/{report}/metrics.json").read_bytes()}
    files = []
    for pattern in ("eval.json", "budget.json", "round*/masks/**/*.png"):
        files += folder.glob(f"runs/{BENCH}/**/{pattern}")  # (not the queries' masks)
    return out | {str(p.relative_to(folder)): p.read_bytes() for p in sorted(files)}


def test_a_person_in_the_loop_gets_the_simulated_results(project, built, tmp_path):
    """annotator: human on the tiny grid: the workflow stops after round 1's acquisition with the
    line that names the round and the commands; a scripted annotator answers each waiting round
    with the ground truth through `halo import-labels`, and the rerun finishes with the simulated
    oracle's results byte for byte (every eval.json, budget.json and mask, and metrics.json).
    It runs in a copy of the finished tiny project without its active runs: the person labels
    for the same source models (as after the README's default run), which are not trained again."""
    from halo.acquisition.queries import waiting_rounds
    from tests.acquisition import scripted

    human = tmp_path / "human"
    shutil.copytree(project, human, symlinks=True)
    for method in ("random", "halo"):  # the grid's active runs; source and supervised stay
        shutil.rmtree(human / f"runs/{BENCH}/deeplabv3plus-r18/{method}")
    default_report = _round_results(project)["report"]
    grid = "configs/test/human.yaml"
    cmd = ["snakemake", f"results/{BENCH}-human/", "--cores", "2", "--configfile", grid]
    first = run(cmd, human, check=False)
    assert first.returncode != 0
    waiting = waiting_rounds(human / "runs")
    assert waiting and all(r.name == "round1" for r in waiting)
    assert not list(human.glob(f"runs/{BENCH}/*/*/*/seed0/round*/budget.json"))
    assert "waits for labels" in first.stderr  # the job's line
    for folder in waiting:  # ... and onerror's list of every waiting round
        assert f"halo annotate {folder.relative_to(human)}" in first.stderr
    assert "MissingInputException" not in first.stderr
    assert "rule pretrain" not in first.stdout + first.stderr  # the source models are reused
    truth = scripted.ground_truth(human / "data/synth", (32, 64))
    imported = 0
    for _ in range(6):
        for folder in waiting_rounds(human / "runs"):
            labels = tmp_path / "labels" / folder.relative_to(human)
            scripted.answer(folder, truth, labels)
            run(["halo", "import-labels", str(folder.relative_to(human)), str(labels)], human)
            imported += 1
        if run(cmd, human, check=False).returncode == 0:
            break
    assert imported == 4  # two runs of two rounds
    assert not waiting_rounds(human / "runs")
    assert _round_results(human, f"{BENCH}-human") == _round_results(project)
    # its report has its own name: the default study's is the copied one, untouched
    assert (human / f"results/{BENCH}/metrics.json").read_bytes() == default_report
    dry = run([*cmd, "-n"], human)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_a_snakemake_only_run_is_recorded_for_dvc_with_dvc_commit(project, built):
    """After `snakemake` alone DVC has no lock and calls everything changed; `dvc commit -f`
    records what Snakemake made (README, "Set-up") without running anything."""
    lock = project / "dvc.lock"
    saved = lock.read_bytes()
    lock.unlink()
    assert "up to date" not in run(["dvc", "status"], project).stdout.lower()
    run(["dvc", "commit", "-f"], project)
    assert "up to date" in run(["dvc", "status"], project).stdout.lower()
    assert yaml.safe_load(lock.read_text()) == yaml.safe_load(saved)


def test_dvc_params_are_the_configs_and_exp_run_varies_them(project, built):
    """`dvc params diff` shows the run config's keys; `dvc exp run -S` reruns the grid with the
    new value (every job reads the run config, so Snakemake reruns them) and DVC records it."""
    key = "train.round_steps"
    before = yaml.safe_load((project / "configs/test/tiny.yaml").read_text())["train"][
        "round_steps"
    ]
    run(["dvc", "exp", "run", "-S", f"configs/test/tiny.yaml:{key}={before + 1}"], project)
    diff = run(["dvc", "params", "diff"], project).stdout
    assert key in diff and str(before + 1) in diff, diff
    round2 = project / f"runs/{BENCH}/deeplabv3plus-r18/halo/5/seed0/round2"
    assert (
        yaml.safe_load((round2 / "config.yaml").read_text())["train"]["round_steps"] == before + 1
    )
    assert json.loads((round2 / "eval.json").read_text())["step"] == 2 * (before + 1)
    assert "up to date" in run(["dvc", "status"], project).stdout.lower()
    dry = snakemake(project, f"results/{BENCH}/", extra=("-n",))
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # the README's cheap experiment: more acquisition panels redraw the report, one job
    models = {p: p.stat().st_mtime_ns for p in project.glob(f"runs/{BENCH}/**/*.json")}
    run(["dvc", "exp", "run", "-S", f"{TINY}:benchmarks.{BENCH}.panels=2"], project)
    assert len(list((project / f"results/{BENCH}/acquisition").glob("*.png"))) == 2
    assert {p: p.stat().st_mtime_ns for p in models} == models  # no run file rewritten
    run(["dvc", "exp", "run", "--dry"], project)  # plans, runs nothing
    header = run(["dvc", "exp", "show", "--csv"], project).stdout.splitlines()[0].split(",")
    assert len(header) <= 40, header  # the listed params, the metrics, the dependencies


def test_lint_is_clean(project):
    res = snakemake(project, extra=("--lint",), check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_human_grid_after_the_default_run_reuses_its_models_and_reports_apart(
    project, built, tmp_path
):
    """The source-only and supervised jobs depend on what they use, never on a grid's method
    list: after the tiny grid (random, halo), a person's grid of HALO alone at another budget
    (`report:` named) plans no pretrain and no supervised job, and its report goes to its own
    folder, leaving the default study's alone."""
    copy = tmp_path / "p"
    shutil.copytree(project, copy, symlinks=True)
    grid = yaml.safe_load((copy / TINY).read_text())
    grid["benchmarks"][BENCH].update(
        methods=["halo"], budgets=[2], annotator="human", report=f"{BENCH}-human"
    )
    (copy / "other.yaml").write_text(yaml.safe_dump(grid))
    dry = run(["snakemake", "-n", "--cores", "2", "--configfile", "other.yaml"], copy)
    out = dry.stdout + dry.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    assert "pretrain" not in counts and "supervised" not in counts, out[-3000:]
    assert int(counts["acquire_queries"]) > 0 and int(counts["report"]) == 1
    assert f"results/{BENCH}-human" in out and f"output: results/{BENCH}\n" not in out
    default = snakemake(copy, f"results/{BENCH}/", extra=("-n",))  # the default study: done
    assert "Nothing to be done" in default.stdout + default.stderr


def _damage(path: Path) -> None:
    """Cut a file to half its bytes (a copy or a write that stopped half-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_verify_names_each_corrupt_file_and_its_command_rebuilds_them(project, built, tmp_path):
    """halo verify on a copied finished project: clean → exit 0; five damaged files of five
    kinds (a mask PNG, an evaluation, an .npz map, a checkpoint, a report CSV) and a damaged
    MLflow store → exit 1, each named once with the output whose job rewrites it; the printed
    commands, run as printed, rebuild them, and verify is clean again."""
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    clean = run(["halo", "verify", "--configfile", TINY], copy)
    assert clean.stdout.strip().endswith("none corrupt"), clean.stdout
    last = copy / f"runs/{BENCH}/deeplabv3plus-r18/halo/5/seed0/round2"
    # (random's last round: a checkpoint whose rebuild reruns one training, not a chain)
    random_last = copy / f"runs/{BENCH}/deeplabv3plus-r18/random/5/seed0/round2"
    damaged = {
        sorted((last / "masks").rglob("*.png"))[0]: last / "budget.json",
        last / "eval.json": last / "model.pt",
        last / "labelled.npz": last / "budget.json",
        random_last / "model.pt": random_last / "model.pt",
        copy / f"results/{BENCH}/miou_table.csv": "report",
        copy / "mlflow.db": None,
    }
    for path in damaged:
        _damage(path)
    bad = run(["halo", "verify", "--configfile", TINY], copy, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    named = [ln for ln in bad.stdout.splitlines() if not ln.startswith(" ") and ": " in ln]
    assert len(named) == len(damaged), bad.stdout
    for path, target in damaged.items():
        (line,) = [ln for ln in named if ln.startswith(f"{path.relative_to(copy)}: ")]
        if target is not None:
            target = target if isinstance(target, str) else target.relative_to(copy)
            assert line.endswith(f"(rebuilt by {target})"), line
    commands = [ln.strip() for ln in bad.stdout.splitlines() if ln.startswith("  ")]
    assert commands[0].startswith("mv mlflow.db mlflow.db.bad"), commands
    assert f"--configfile {TINY}" in commands[-1] and f"results/{BENCH}/" in commands[-1]
    for command in commands:  # as printed ("uv run" is this environment's PATH here)
        args = command.split("#")[0].split()
        run(args[2:] if args[:2] == ["uv", "run"] else args, copy)
    again = run(["halo", "verify"], copy)
    assert again.stdout.strip().endswith("none corrupt"), again.stdout


def test_dvc_plots_draw_with_the_network_blocked(project, built, tmp_path):
    """`dvc plots show` writes a page that carries its own Vega: opened in headless Chromium
    with every network request refused, both data-driven plots draw marks."""
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.conftest import chromium

    out = tmp_path / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], project)
    page = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    driver = chromium("--host-resolver-rules=MAP * ~NOTFOUND")  # no name resolves
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        driver.get((out / "index.html").as_uri())
        inked = (
            "return Array.from(document.querySelectorAll('.vega-embed canvas')).map(c => {"
            "  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && d[i] < 200) n++;"
            "  return n; });"
        )
        counts = WebDriverWait(driver, 30).until(
            lambda d: (c := d.execute_script(inked)) and len(c) >= 2 and all(c) and c,
            message="two drawn Vega plots",
        )
        assert len(counts) == 2 and min(counts) > 500, counts  # axes, lines and points
    finally:
        driver.quit()
