"""Provenance: the resolved config and the git revision, command and versions beside outputs.

Every job that writes a model or a round records here what made it (docs/design.md, "Files"):
``config.yaml`` (the config as resolved from the file and overrides) and a provenance JSON.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from halo import __version__
from halo.io import write_json, write_text

__all__ = ["CONFIG_FILE", "PROVENANCE_FILE", "git_revision", "write_provenance"]

CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"


def git_revision() -> str | None:
    """The source tree's git revision (with ``-dirty`` if modified), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_provenance(
    out_dir: Path,
    cfg: Any,
    command: str,
    extra: dict | None = None,
    *,
    name: str = PROVENANCE_FILE,
) -> None:
    """Write ``out_dir/config.yaml`` (``cfg``, a :class:`halo.config.Config`) and
    ``out_dir/<name>`` (command, argv, git revision, versions, host, ``extra``)."""
    import time

    import torch
    import yaml

    from halo import timing
    from halo.config import to_dict

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CONFIG_FILE, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    write_json(
        out_dir / name,
        {
            "command": command,
            "argv": sys.argv,
            "git_revision": git_revision(),
            "halo_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "host": platform.node(),
            # the job's span (Unix seconds): its process start, and now (the work is done)
            "started": timing.started(),
            "finished": time.time(),
            **(extra or {}),
        },
    )
