"""The launcher client: hand the job to the server, or become the plain ``halo`` process.

Imports only the standard library and :mod:`halo.launcher.protocol`, so it starts in tens of
milliseconds. Every way the server can be unavailable (no ``HALO_LAUNCHER``, no socket, refused,
a server of another user) falls back to ``exec python -m halo.cli ARGS``: the launcher can make
a job faster, never make it fail.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from halo.launcher import protocol
from halo.timing import process_start


def plain(argv: list[str]) -> None:
    """Replace this process with ``python -m halo.cli ARGV`` (never returns)."""
    os.environ.setdefault("HALO_T0", repr(process_start()))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "halo.cli", *argv])


def connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def run(argv: list[str]) -> int:
    path = os.environ.get(protocol.ENV_VAR)
    sock = connect(path) if path else None
    if sock is None:
        plain(argv)
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "t0": process_start()}
    try:
        protocol.send_request(sock, request, [0, 1, 2])
    except OSError:  # the server went away between connect and send
        sock.close()
        plain(argv)
    if not protocol.recv_accepted(sock):  # no job process was made: nothing ran yet
        sock.close()
        plain(argv)

    def stop(signum, _frame):  # closing the connection ends the child
        sock.close()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        code = protocol.recv_exit(sock)
    except OSError:
        code = None
    if code is None:
        print("halo: error: the launcher's job process ended without an exit code", file=sys.stderr)
        return 1
    return code


def stop_server(path: str) -> bool:
    """Ask the server on ``path`` to exit; False when none answers."""
    sock = connect(path)
    if sock is None:
        return False
    with sock:
        protocol.send_request(sock, {"argv": ["--launcher-stop"]}, [0, 1, 2])
        return protocol.recv_accepted(sock) and protocol.recv_exit(sock) == 0
