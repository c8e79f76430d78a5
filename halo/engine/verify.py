"""``halo verify``: read every run file the workflow will use and name the corrupt ones.

Snakemake decides what to rerun from file times, so a file that is there but damaged (a truncated
``eval.json``, a mask PNG cut short by a full disk, a checkpoint copied half-way) is never noticed
until a later job fails on it -- or, worse, reads it. :func:`verify_project` opens each file with
the reader its consumer uses (``read_json``, ``read_budget``, ``read_mask``, ``np.load`` without
pickle, ``load_checkpoint``, ``yaml.safe_load``, the SQLite store's ``quick_check``) and returns
one :class:`Fault` per file that fails, with the workflow output whose job rewrites it
(:func:`rebuild_target`). Nothing is written. docs/reliability.md, "Rebuilding a deleted or
corrupt output", says how the list is used.
"""

from __future__ import annotations

import os
import sqlite3
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halo.acquisition.rounds import (
    BLOCKED_FILE,
    BUDGET_FILE,
    LABELLED_FILE,
    MASKS_DIR,
    PROVENANCE_FILE,
    read_budget,
    read_mask,
)
from halo.io import read_json
from halo.runs import MODEL_FILE, RECORD_FILE, RUNS_ROOT

__all__ = ["Fault", "rebuild_command", "rebuild_target", "verify_project"]

RESULTS_ROOT = "results"
STORE_FILE = "mlflow.db"
_ACQUIRE_FILES = (BUDGET_FILE, BLOCKED_FILE, LABELLED_FILE, PROVENANCE_FILE)


@dataclass(frozen=True)
class Fault:
    """One corrupt file: its path (relative to the project), why, and what rebuilds it."""

    path: str
    cause: str
    target: str  # a workflow output or rule name for ``snakemake --forcerun``; "" for the store


def _json(path: Path) -> None:
    if path.name == BUDGET_FILE and path.parent.name.startswith("round"):
        read_budget(path.parent)  # a round's budget: its schema too
    else:
        read_json(path, "file")


def _png(path: Path) -> None:
    if MASKS_DIR in path.parts:
        read_mask(path)
        return
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # PIL raises many kinds for a damaged file
        raise ValueError(f"not a readable PNG ({err})") from None


def _npz(path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            for name in npz.files:  # each member's CRC is checked as it is read
                npz[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"not a readable .npz ({err})") from None


def _checkpoint(path: Path) -> None:
    import torch

    if path.name == MODEL_FILE:
        from halo.engine.checkpoint import load_checkpoint

        load_checkpoint(path)
        return
    try:  # other .pt files (a training's resumable state): plain data only, like the model
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"not a readable checkpoint ({str(err).splitlines()[0]})") from None


def _yaml(path: Path) -> None:
    import yaml

    try:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"not readable YAML ({' '.join(str(err).split())})") from None


def _csv(path: Path) -> None:
    """A table the report wrote: UTF-8, every row as wide as the header, ending in a newline
    (a file cut short mostly still parses: its last row is short, or the newline is gone)."""
    import csv
    import io

    try:
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"not a readable CSV ({err})") from None
    if not rows or not text.endswith("\n"):
        raise ValueError("a CSV cut short (empty, or no newline after its last row)")
    short = [i for i, row in enumerate(rows[1:], 2) if len(row) != len(rows[0])]
    if short:
        raise ValueError(f"CSV row {short[0]} has not the header's {len(rows[0])} fields")


READERS: dict[str, Callable[[Path], None]] = {
    ".json": _json,
    ".png": _png,
    ".npz": _npz,
    ".pt": _checkpoint,
    ".yaml": _yaml,
    ".csv": _csv,
}


def rebuild_target(rel: Path) -> str:
    """The workflow output whose job rewrites the project file ``rel`` (relative path).

    A round's acquisition files and masks → its ``budget.json`` (the acquire job); a training
    folder's files → its ``model.pt`` (the train job); ``metrics.json`` and ``mlflow.json`` are
    outputs of their own; anything under ``results/`` → the ``report`` rule.
    """
    parts = rel.parts
    if parts and parts[0] == RESULTS_ROOT:
        return "report"
    folder = rel.parent
    if MASKS_DIR in parts:
        folder = Path(*parts[: parts.index(MASKS_DIR)])
        return str(folder / BUDGET_FILE)
    if rel.name in _ACQUIRE_FILES:
        return str(folder / BUDGET_FILE)
    if rel.name in (RECORD_FILE, "mlflow.json"):
        return str(rel)
    return str(folder / MODEL_FILE)


def _files(root: Path) -> Iterator[Path]:
    """Every file the readers know under ``runs/`` and ``results/``, in a stable order; hidden
    files (Snakemake's stamps, a killed writer's ``.tmp-*``) are not run files."""
    for top in (RUNS_ROOT, RESULTS_ROOT):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith(".") and Path(name).suffix in READERS:
                    yield Path(dirpath) / name


def _store_fault(root: Path) -> Fault | None:
    """The SQLite tracking store's own integrity check (read-only)."""
    path = root / STORE_FILE
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as err:
        return Fault(STORE_FILE, f"not a readable SQLite database ({err})", "")
    if rows != [("ok",)]:
        return Fault(STORE_FILE, f"damaged SQLite database ({rows[0][0]})", "")
    return None


def verify_project(
    root: str | os.PathLike, progress: Callable[[int], None] | None = None
) -> tuple[int, list[Fault]]:
    """Read every run file of the project at ``root``.

    Returns:
        ``(files read, faults)``; a fault per file its reader refused, in path order.

    Raises:
        FileNotFoundError: ``root`` has neither ``runs/`` nor ``results/``.
    """
    root = Path(root)
    if not any((root / top).is_dir() for top in (RUNS_ROOT, RESULTS_ROOT)):
        raise FileNotFoundError(
            f"{root}: no {RUNS_ROOT}/ or {RESULTS_ROOT}/ folder (run halo verify in the project "
            "folder, or pass it as --root)"
        )
    faults, count = [], 0
    for path in _files(root):
        rel = path.relative_to(root)
        count += 1
        try:
            READERS[path.suffix](path)
        except (ValueError, OSError) as err:
            cause = " ".join(str(err).split()).replace(f"{path}: ", "").replace(f" {path}", "")
            faults.append(Fault(str(rel), cause[:240], rebuild_target(rel)))
        if progress is not None:
            progress(count)
    store = _store_fault(root)
    return count + (root / STORE_FILE).is_file(), faults + ([store] if store else [])


def rebuild_command(faults: list[Fault], configfile: str | None = None) -> list[str]:
    """The commands that rebuild ``faults``: a damaged store moved aside, then one Snakemake run
    that forces each damaged file's job (and so every job after it) for the benchmarks concerned
    (no target: the workflow's default ones)."""
    lines, forced = [], sorted({f.target for f in faults if f.target})
    if any(f.path == STORE_FILE for f in faults):
        lines.append(f"mv {STORE_FILE} {STORE_FILE}.bad   # the track jobs log every run again")
        forced.append("track")
    if not forced:
        return lines
    benches = sorted({Path(f.path).parts[1] for f in faults if len(Path(f.path).parts) > 2})
    # targets first and each multi-valued option last but one: --forcerun and --configfile
    # take several values each
    words = ["uv run snakemake", *(f"{RESULTS_ROOT}/{b}/" for b in benches), "--cores 2"]
    words += ["--forcerun", *forced] + ([f"--configfile {configfile}"] if configfile else [])
    return [*lines, " ".join(words)]
