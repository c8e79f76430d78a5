"""Suite-wide fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One torch thread per process: pytest-xdist runs one worker per core, and the halo commands the
# tests start inherit this (Snakemake's jobs get their rule's `threads` instead). Two threads per
# worker on two cores oversubscribe them: the idle suite took 5 min 51 s with them, 5 min 22 s
# without (docs/performance.md). Set before any test module imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _halo_cache(tmp_path_factory):
    """halo's cache (stamps of verified datasets) in a temporary folder, for this process and
    the halo subprocesses the tests start, never in the user's home."""
    previous = os.environ.get("HALO_CACHE_DIR")
    os.environ["HALO_CACHE_DIR"] = str(tmp_path_factory.mktemp("halo_cache"))
    yield
    if previous is None:
        os.environ.pop("HALO_CACHE_DIR", None)
    else:
        os.environ["HALO_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data root for ``configs/test/tiny.yaml`` (synth-gta2cs at 32x64): 4 GTAV-style source
    images (and 4 held out: ``val``), 4 Cityscapes-style target images and 4 validation images,
    written by ``halo synth``."""
    from halo.cli import main

    root = tmp_path_factory.mktemp("synth")
    for style, split, folder in (
        ("gta", "train", "gta5"),
        ("gta", "val", "gta5"),
        ("cityscapes", "train", "cityscapes"),
        ("cityscapes", "val", "cityscapes"),
    ):
        code = main(
            [
                "synth",
                "--style",
                style,
                "--split",
                split,
                "--count",
                "4",
                "--size",
                "32x64",
                "--out",
                str(root / folder),
                "--quiet",
            ]
        )
        assert code == 0
    return root


def pytest_collection_modifyitems(config, items):
    """The longest modules first (the real tiny workflow runs for minutes): under pytest-xdist
    (``--dist loadscope``: a module's tests, and its module fixtures, stay on one worker) the
    other worker shares the rest meanwhile instead of waiting for it at the end."""
    first = ("tests/workflow/test_workflow.py", "tests/engine/", "tests/launcher/")

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(first) if path.startswith(p)), len(first))

    items.sort(key=rank)


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium(*extra: str, window: str = "1400,1000"):
    """Headless Chromium with the system's chromedriver (selenium never downloads a driver);
    skips the test where either is missing. ``extra``: more command-line switches."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    for arg in (f"--window-size={window}", *extra):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
