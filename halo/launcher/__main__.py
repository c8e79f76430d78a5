"""``python -m halo.launcher ARGS``: run ``halo ARGS`` through the fork server (or plainly).

Server control (used by the workflow's ``onstart``/``onsuccess``/``onerror``):

    python -m halo.launcher --serve SOCKET [--idle S] [--parent PID]
    python -m halo.launcher --stop SOCKET
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"] and len(argv) >= 2:
        from pathlib import Path

        from halo.launcher.server import serve

        options = dict(zip(argv[2::2], argv[3::2], strict=False))
        parent = options.get("--parent")
        serve(
            Path(argv[1]),
            idle=float(options.get("--idle", 900)),
            parent=int(parent) if parent else None,
        )
        return 0
    if argv[:1] == ["--stop"] and len(argv) == 2:
        from halo.launcher.client import stop_server

        stop_server(argv[1])
        return 0
    from halo.launcher.client import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
