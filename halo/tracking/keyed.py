"""One live run per key: the digest of what a run logs, the runs of a key, and the logger that
keeps exactly one complete run per key (halo.tracking.runs, module docstring)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from halo.tracking.store import key_lock


def _runs_with_key(client, experiment_id: str, key: str) -> list:
    from mlflow.entities import ViewType

    if "'" not in key:
        flt = f"tags.`halo.key` = '{key}'"
    elif '"' not in key:
        flt = f'tags.`halo.key` = "{key}"'
    else:  # both quote kinds: filter here instead
        flt = ""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], flt, ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        runs += [r for r in page if r.data.tags.get("halo.key") == key]
        token = page.token
        if not token:
            return runs


def _digest(content: object, files: Sequence[tuple[Path, str | None]]) -> str:
    """A hash of what a run logs: ``content`` (JSON) and every file's place and bytes."""
    h = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    for path, folder in files:
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                h.update(f"\0{folder}\0{f.relative_to(path.parent).as_posix()}\0".encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:32]


def _new_run(
    client,
    experiment_id: str,
    name: str,
    tags: dict[str, str],
    fill,
    *,
    uri: str,
    span: tuple[int, int] | None = None,
) -> str:
    """The run that stays for ``tags["halo.key"]``: an existing complete run with the same
    ``halo.digest``, else a new one (created, filled by ``fill(run_id)``, finished) that replaces
    every other run of the key. Loggers of one key take turns (see the module docstring)."""
    key = tags["halo.key"]
    with key_lock(uri, experiment_id, key):
        others = _runs_with_key(client, experiment_id, key)
        same = [
            r
            for r in others
            if r.info.status == "FINISHED" and r.data.tags.get("halo.digest") == tags["halo.digest"]
        ]
        if same:  # logged before, identically: nothing to do
            return max(same, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id
        start, end = span if span is not None else (None, None)
        run_id = client.create_run(
            experiment_id, run_name=name, tags=tags, start_time=start
        ).info.run_id
        try:
            fill(run_id)
            client.set_terminated(run_id, "FINISHED", end_time=end)
        except BaseException:
            try:
                client.delete_run(run_id)
            except Exception:
                pass
            raise
        for other in others:
            client.delete_run(other.info.run_id)
        return run_id
