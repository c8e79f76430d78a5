"""The launcher's socket and messages (the only place that knows them).

One request per connection, on a Unix stream socket:

1. client → server: an 8-byte big-endian length with the client's stdin, stdout and stderr
   attached (``SCM_RIGHTS``), then that many bytes of JSON:
   ``{"argv": [...], "cwd": str, "env": {...}, "t0": float}`` (``t0``: the client's process
   start, Unix seconds; the job's start-up is measured from it);
2. child → client: ``+`` as soon as it exists (the job is accepted), then the exit code as
   ASCII digits and a newline; then the connection closes.

A connection that closes before ``+`` means no job process was made (the server stopped or
failed first): the client runs the plain process instead. One that closes after ``+`` but
before the exit code means the child died (the client exits 1 and says so); a client that goes
away (Snakemake killed the job) makes the child exit too.

Only the server's own user may connect: the socket lives in a folder of mode 0700 and the
server checks the peer's uid (``SO_PEERCRED``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import tempfile
from pathlib import Path

ENV_VAR = "HALO_LAUNCHER"  # the socket path jobs connect to; unset = no launcher
HEADER = struct.Struct(">Q")
MAX_REQUEST = 16 * 2**20  # bytes of JSON a request may carry


def socket_path(project: str | os.PathLike) -> Path:
    """The server socket of a project folder: private to the user, short enough for AF_UNIX
    (108 bytes), the same for every invocation in that folder."""
    key = hashlib.sha1(str(Path(project).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"halo-launcher-{os.getuid()}" / f"{key}.sock"


def private_dir(path: Path) -> Path:
    """Create (or check) the socket's folder: owned by this user, mode 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not path.is_dir() or path.is_symlink():
        raise PermissionError(
            f"{path}: launcher folder must be a directory owned by you, mode 0700"
        )
    return path


def send_request(sock: socket.socket, request: dict, fds: list[int]) -> None:
    payload = json.dumps(request).encode()
    socket.send_fds(sock, [HEADER.pack(len(payload))], fds)
    sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("launcher request cut short")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_request(sock: socket.socket) -> tuple[dict, list[int]]:
    """One request and the client's three file descriptors (closed on a malformed request)."""
    data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, 3)
    try:
        if len(data) < HEADER.size:
            data += _recv_exact(sock, HEADER.size - len(data))
        (n,) = HEADER.unpack(data)
        if n > MAX_REQUEST or len(fds) != 3:
            raise ConnectionError(f"launcher request: {n} bytes, {len(fds)} descriptors")
        request = json.loads(_recv_exact(sock, n))
        argv = request.get("argv") if isinstance(request, dict) else None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ConnectionError("launcher request: no argv of strings")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


ACCEPTED = b"+"


def send_accepted(sock: socket.socket) -> None:
    sock.sendall(ACCEPTED)


def recv_accepted(sock: socket.socket) -> bool:
    """Whether a job process took the request (False: the connection closed first)."""
    try:
        return sock.recv(1) == ACCEPTED
    except OSError:
        return False


def send_exit(sock: socket.socket, code: int) -> None:
    sock.sendall(f"{code}\n".encode())


def recv_exit(sock: socket.socket) -> int | None:
    """The child's exit code, or None when the connection closed without one."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            return None
        data += chunk
    return int(data)
