"""The ``halo`` command line: a thin shell over the package (parse, call, print).

:mod:`halo.cli.parser` declares every sub-command and option, :mod:`halo.cli.commands` calls the
package; this module is the one error path of every command (docs/design.md, "Commands and
jobs"):

- bad input (a config key, a file's content, a missing file, a checkpoint that would run code)
  → exit 2 and one line naming the key or file;
- an environment fault (a full disk, a read-only folder, no permission) → exit 1 and one line
  naming the path and the cause;
- a training run whose loss diverged → exit 3 (its last good checkpoint is kept).

A command that fails leaves its ``--out`` as it found it: an ``--out`` the command created is
removed again, so a failed command never leaves a config, provenance or half a result behind.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from halo.cli.parser import build_parser
from halo.runs import published

__all__ = ["build_parser", "main"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe_os_error(err: OSError) -> str:
    """``<path>: <cause>`` of an environment fault."""
    cause = err.strerror or str(err) or type(err).__name__
    return cause if err.filename is None else f"{err.filename}: {cause}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``halo`` console script."""
    from halo import timing

    timing.start()
    args = build_parser().parse_args(argv)
    code = _run_command(args)
    if code == 0:  # where the job's time went (bench/workflow_profile.py reads it)
        print(timing.line(args.command), file=sys.stderr, flush=True)
    return code


def _remove_stray_temp(args) -> None:
    """What a killed run of this command left half-written for its outputs: removed at start."""
    from halo.io import remove_stray_temp_of

    for name in ("out", "round_dir", "eval_out", "dest"):
        value = getattr(args, name, None)
        if value:
            remove_stray_temp_of(value)


def _run_command(args) -> int:
    """Run the parsed command; the one error path (module docstring)."""
    from halo.engine.errors import TrainingDiverged

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out) if getattr(args, "out", None) else None
    created = out is not None and not out.exists()
    try:
        if getattr(args, "dry_run", False):  # before any work: --out is not touched
            from halo.cli.commands import dry_run

            return dry_run(args)
        _remove_stray_temp(args)
        return args.func(args)
    except TrainingDiverged as err:  # the last good checkpoint is kept for inspection
        print(f"halo {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as err:  # bad input
        code, message = 2, _one_line(err)
    except OSError as err:  # the environment: disk, permissions, read-only folders
        code, message = 1, _one_line(_describe_os_error(err))
    except Exception as err:  # a tracking-store fault (SQLite below MLflow) is one line too
        from halo.tracking.store import store_fault

        fault = store_fault(err, getattr(args, "uri", None))
        if fault is None:
            raise
        code = 2 if isinstance(fault, ValueError) else 1
        message = _one_line(fault if code == 2 else _describe_os_error(fault))
    # a training whose model.pt is published keeps it when what follows (--eval-out) fails:
    # a rerun then only evaluates (halo.runs.published)
    if created and out is not None and out.exists() and not published(out):
        _remove(out)
    print(f"halo {args.command}: error: {message}", file=sys.stderr)
    return code
