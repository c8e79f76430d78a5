"""The MLflow pictures of docs/workflow.md, taken in headless Chromium over a real tracking store,
of what a user sees: no panel closed, no column added, no tree expanded.

The store is built from run records by the ``halo`` CLI itself (``halo track`` per record, then
``halo report``, which makes the tree of parent runs), exactly as the workflow's jobs log them;
then ``mlflow ui`` serves it on 127.0.0.1 and Chromium (the system's ``chromium`` and
``chromedriver``; nothing is downloaded) takes three pictures at 1600x1000, each after the clicks
the README names:

- ``mlflow_runs.png``: the README's link (``#/experiments/<id>/runs``), as it opens;
- ``mlflow_chart.png``: after one click on the chart view (the second icon above the table);
- ``mlflow_compare.png``: MLflow's compare view of the cells at the top budget, as it opens.

For the default study (the records of ``uv run snakemake results/synth-gta2cs/``)::

    uv run python workflow/study/screenshots.py --records runs --grid configs/workflow.yaml \\
        --store /tmp/default-store --out docs/figures

``--store`` must be a new folder (it gets ``mlflow.db`` and ``mlartifacts/``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from halo.acquisition.methods import METHODS  # noqa: E402
from workflow.study.grid import report_args  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def build_store(records: list[Path], store: Path, grid: Path, bench: str) -> str:
    """Log ``records`` into a new store under ``store`` with the ``halo`` CLI; its URI."""
    if store.exists():
        raise SystemExit(f"--store {store}: exists (give a new folder)")
    store.mkdir(parents=True)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    halo = [sys.executable, "-m", "halo.cli"]

    def call(*args: str, cwd: Path = store) -> None:
        subprocess.run([*halo, *args], check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)

    call("track", "--init")
    for i, r in enumerate(records):
        call("track", "--record", str(r), "--out", str(store / "tracked" / f"{i}.json"))
    report = [*report_args(grid, bench), "--records", *map(str, records), "--panels", "0"]
    # the report folder named as the benchmark: its run is the one that links the cells
    call("report", *report, "--out", str(store / "results" / bench), cwd=REPO)  # configs/ relative
    return uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(uri: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow ui`` on a free local port; the process and its base URL once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(  # its own session: stop() ends the server and its workers
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"mlflow ui exited with {proc.returncode}") from None
            time.sleep(0.5)
    stop(proc)
    raise SystemExit(f"mlflow ui did not answer on {url} within 2 min")


def stop(proc: subprocess.Popen) -> None:
    """End ``mlflow ui`` and every process of its session."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(a)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _buttons(driver, *, text: str | None = None, label: str | None = None) -> list:
    """The page's buttons with this text or aria-label ([] while React re-renders them)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, "button")
            if (text is None or b.text.strip() == text)
            and (label is None or b.get_attribute("aria-label") == label)
        ]
    except StaleElementReferenceException:
        return []


def _wait(find, what: str, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = find()
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"the MLflow page showed no {what} within {timeout:.0f} s")


def _settle(driver) -> None:
    """Wait until the page's text stops changing (MLflow draws in several passes)."""
    last, end = None, time.monotonic() + 30
    while time.monotonic() < end:
        time.sleep(1.5)
        now = driver.execute_script("return document.body.innerText")
        if now == last:
            return
        last = now


def runs_page(driver, url: str, experiment: str, out: Path) -> None:
    """The README's link as it opens; then one click on the chart view."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/#/experiments/{experiment}/runs")
    chart = _wait(
        lambda: driver.find_elements(By.XPATH, "//input[@value='CHART']/ancestor::label"),
        "chart view switch",
    )[0]
    _wait(lambda: " · " in driver.execute_script("return document.body.innerText"), "runs")
    _settle(driver)
    driver.save_screenshot(str(out / "mlflow_runs.png"))
    chart.click()
    cards = "[data-testid='experiment-view-compare-runs-card'] svg text"
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, cards), "final_miou chart")
    _settle(driver)
    driver.save_screenshot(str(out / "mlflow_chart.png"))


def compare_page(driver, url: str, experiment: str, run_ids: list[str], out: Path) -> None:
    """MLflow's compare view of ``run_ids`` as it opens (its plot starts on ``final_miou``)."""
    import json

    from selenium.webdriver.common.by import By

    ids = json.dumps(run_ids, separators=(",", ":"))
    driver.get(f'{url}/#/compare-runs?runs={ids}&experiments=["{experiment}"]')
    _wait(lambda: driver.find_elements(By.XPATH, "//*[normalize-space(text())='Metrics:']"), "plot")
    _settle(driver)
    driver.save_screenshot(str(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=Path, help="a runs/ folder: log every metrics.json in it")
    p.add_argument(
        "--store", type=Path, required=True, help="the store's folder (new with --records)"
    )
    p.add_argument("--out", type=Path, required=True, help="folder of the three PNGs")
    p.add_argument("--grid", type=Path, default=REPO / "configs" / "study.yaml")
    p.add_argument("--bench", default="synth-gta2cs")
    args = p.parse_args(argv)
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not Path(tool).is_file():
            raise SystemExit(f"{tool}: not found (apt-get install chromium chromium-driver)")
    if args.records is not None:
        records = sorted(args.records.rglob("metrics.json"))
        if not records:
            raise SystemExit(f"--records {args.records}: no metrics.json below it")
        uri = build_store(records, args.store.resolve(), args.grid, args.bench)
    else:
        uri = f"sqlite:///{(args.store / 'mlflow.db').resolve()}"

    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(args.bench)
    if exp is None:
        raise SystemExit(f"{uri}: no experiment {args.bench!r}")
    cells = client.search_runs([exp.experiment_id], "tags.`halo.kind` = 'cell'", max_results=500)
    if not cells:
        raise SystemExit(f"{uri}: no cell runs in {args.bench!r} (log the report: halo report)")
    active = [c for c in cells if c.data.tags.get("halo.method") in METHODS]
    if not active:
        raise SystemExit(f"{uri}: no active-learning cells in {args.bench!r}")
    top = max(float(c.data.tags["halo.budget"]) for c in active)
    chosen = [c for c in active if float(c.data.tags["halo.budget"]) == top]
    chosen += [c for c in cells if c not in active]  # the source-only and supervised bounds
    chosen.sort(key=lambda c: -c.data.metrics.get("final_miou", 0.0))
    args.out.mkdir(parents=True, exist_ok=True)
    proc, url = serve(uri, args.store)
    driver = None
    try:
        driver = browser(1600, 1000)
        runs_page(driver, url, exp.experiment_id, args.out)
        compare_page(
            driver,
            url,
            exp.experiment_id,
            [c.info.run_id for c in chosen],
            args.out / "mlflow_compare.png",
        )
    finally:
        if driver is not None:
            driver.quit()
        stop(proc)
    names = ("mlflow_runs.png", "mlflow_chart.png", "mlflow_compare.png")
    print(", ".join(str(args.out / n) for n in names), f"from {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
