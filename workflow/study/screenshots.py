"""The README's MLflow screenshots, taken in headless Chromium over a real tracking store.

The store is built from run records by the ``halo`` CLI itself (``halo track`` per record, then
``halo report``, which makes the tree of parent runs), exactly as the workflow's jobs log them;
then ``mlflow ui`` serves it on 127.0.0.1 and Chromium (the system's ``chromium`` and
``chromedriver``; nothing is downloaded) takes two pictures:

- ``mlflow_runs.png``: the experiment's runs table in *Model training* mode, the tree expanded
  (``report`` → one parent per method × budget with the mean ``final_miou`` of its seeds → the
  seeds), with the columns ``final_miou``, ``final_miou_std``, ``seeds`` and ``budget_used``;
- ``mlflow_compare.png``: MLflow's compare view of the cell parents at the top budget.

For the study (the three grid seeds, unpacked by ``grid.py gather --unpack DIR``)::

    uv run python workflow/study/screenshots.py --records DIR/runs --store /tmp/study-store \\
        --out docs/figures

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

from workflow.study.grid import report_args  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
COLUMNS = ("final_miou", "final_miou_std", "seeds", "budget_used")
HIDE = ("Dataset", "Source", "Models")
#: the start of the SVG path of the run tree's "expand" (plus) icon; "collapse" has none
PLUS = 'd="M7.25 7.25V4.5'


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
    call("report", *report, "--out", str(store / "results"), cwd=REPO)  # configs/ are relative
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


def close_assistant(driver) -> None:
    for b in _buttons(driver, label="Close"):  # the MLflow Assistant side panel
        b.click()
        time.sleep(0.5)


def runs_page(driver, url: str, experiment: str, out: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{url}/#/experiments/{experiment}?workflowType=machine_learning")
    _wait(lambda: _buttons(driver, text="Columns"), "Columns button")
    time.sleep(2)
    close_assistant(driver)
    _buttons(driver, text="Columns")[0].click()
    search = _wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, "input[placeholder='Search columns']"),
        "column search",
    )[0]
    tree = "//*[@data-testid='column-selector-tree']"
    for name in (*HIDE, *COLUMNS):
        search.send_keys(Keys.CONTROL, "a")
        search.send_keys(Keys.BACKSPACE)
        search.send_keys(name)
        box = f"{tree}//div[contains(@class,'tree-treenode')][normalize-space(.)='{name}']"
        box += "/span[contains(@class,'tree-checkbox')]"
        end = time.monotonic() + 10  # the menu filters as one types; a loaded machine lags
        while not (boxes := driver.find_elements(By.XPATH, box)) and time.monotonic() < end:
            time.sleep(0.3)
        if not boxes:  # final_miou_std needs two seeds
            print(f"the Columns menu has no {name!r}: left out", file=sys.stderr)
            continue
        boxes[0].click()
        time.sleep(0.3)
    search.send_keys(Keys.ESCAPE)
    time.sleep(1)
    expander = "button[data-component-id*='runnamecellrenderer']"
    for _ in range(4):  # expand the tree level by level: the report, then the cells
        closed = [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, expander)
            if PLUS in (b.get_attribute("innerHTML") or "")
        ]
        if not closed:
            break
        for b in closed:
            b.click()
            time.sleep(0.3)
        time.sleep(1)
    handle = driver.find_elements(
        By.CSS_SELECTOR, "[col-id='attributes.`Run Name`'] .ag-header-cell-resize"
    )
    if handle:  # widen Run Name so that the names are read whole
        ActionChains(driver).drag_and_drop_by_offset(handle[0], 160, 0).perform()
    driver.execute_script(
        "for (const v of document.querySelectorAll('.ag-body-viewport')) v.scrollTop = 0;"
    )
    time.sleep(1)
    driver.save_screenshot(str(out))


def compare_page(driver, url: str, experiment: str, run_ids: list[str], out: Path) -> None:
    """MLflow's compare view of ``run_ids``, its parallel-coordinates plot on ``final_miou``."""
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ids = json.dumps(run_ids, separators=(",", ":"))
    query = f'runs={ids}&experiments=["{experiment}"]&workflowType=machine_learning'
    driver.get(f"{url}/#/compare-runs?{query}")
    select = _wait(
        lambda: driver.find_elements(
            By.XPATH, "//div[normalize-space(text())='Metrics:']/following-sibling::div[1]"
        ),
        "Metrics selector",
    )[0]
    time.sleep(2)
    close_assistant(driver)
    for x in select.find_elements(By.CSS_SELECTOR, "[class*='select-selection-item-remove']"):
        x.click()  # the metric MLflow picked (the first alphabetically)
        time.sleep(0.3)
    select.click()
    option = _wait(
        lambda: driver.find_elements(
            By.CSS_SELECTOR, "[class*='select-item-option'][title='final_miou']"
        ),
        "final_miou option",
    )[0]
    option.click()
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)  # close the dropdown
    time.sleep(2)
    driver.save_screenshot(str(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=Path, help="a runs/ folder: log every metrics.json in it")
    p.add_argument(
        "--store", type=Path, required=True, help="the store's folder (new with --records)"
    )
    p.add_argument("--out", type=Path, required=True, help="folder of the two PNGs")
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
    top = max(float(c.data.tags["halo.budget"]) for c in cells)
    chosen = [c for c in cells if float(c.data.tags["halo.budget"]) == top]
    chosen.sort(key=lambda c: -c.data.metrics.get("final_miou", 0.0))
    args.out.mkdir(parents=True, exist_ok=True)
    proc, url = serve(uri, args.store)
    driver = None
    try:
        driver = browser(1600, 1000)
        runs_page(driver, url, exp.experiment_id, args.out / "mlflow_runs.png")
        driver.set_window_size(1600, 1400)
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
    print(f"{args.out / 'mlflow_runs.png'}, {args.out / 'mlflow_compare.png'} from {uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
