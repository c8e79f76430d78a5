"""The fork server: bind, preload the heavy imports, then fork one child per job.

The server binds its socket first (a job that starts meanwhile waits in the backlog instead of
falling back), then imports what every torch job needs (:data:`PRELOAD`), single-threaded and
without touching CUDA, so that forking is safe. Each accepted connection is forked; the child
takes the client's stdin/stdout/stderr, working folder and environment, sets torch's thread
count from the job's ``OMP_NUM_THREADS`` (torch read the server's at import), runs
:func:`halo.cli.main` and reports the exit code. A watcher thread in the child ends it when the
client goes away, as if the job had been killed. The server exits on ``stop``, after
``idle`` seconds without a request or a running job, or when the process ``parent``
(Snakemake) is gone.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from halo.launcher import protocol

# What a training, acquisition, evaluation or tracking job imports before its first useful work.
# MLflow starts a telemetry thread at import unless MLFLOW_DISABLE_TELEMETRY is set, which
# importing halo.tracking does first (its client and SQL store cost a `halo track` ~2-3 s of
# imports otherwise); preload() refuses to serve if any import left a thread running.
PRELOAD = (
    "torch",
    "torch.nn.functional",
    "segmentation_models_pytorch",
    "numpy",
    "PIL.Image",
    "yaml",
    "halo.cli.commands",
    "halo.config",
    "halo.engine.jobs",
    "halo.engine.evaluate",
    "halo.acquisition.loop",
    "halo.acquisition.strategies",
    "halo.models.segmenter",
    "halo.data.dataset",
    "halo.tracking",
    "mlflow.entities",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
)
# The job's thread settings come from its own environment, not the server's.
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def preload(modules=PRELOAD) -> list[str]:
    """Import ``modules`` in order; returns those imported. MLflow's are skipped where the user
    turned its telemetry on (MLFLOW_DISABLE_TELEMETRY false): its thread must not be forked."""
    done = []
    for name in modules:
        off = os.environ.get("MLFLOW_DISABLE_TELEMETRY", "").strip().lower() in ("true", "1")
        if name.split(".")[0] == "mlflow" and not off:
            continue
        importlib.import_module(name)
        done.append(name)
    if threading.active_count() != 1:  # forking a multi-threaded process is unsafe
        raise RuntimeError(f"launcher preload started threads: {threading.enumerate()}")
    return done


def _peer_uid(conn: socket.socket) -> int:
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _watch_client(conn: socket.socket) -> None:
    """End this child when the client closes its end (the job was killed or cancelled)."""
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass
    os._exit(128 + signal.SIGTERM)


def _run_child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked child: become the job, run it, report the exit code, exit."""
    code = 1
    try:
        protocol.send_accepted(conn)  # from here on the job exists: no fallback any more
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["HALO_T0"] = repr(float(request.get("t0", time.time())))
        sys.argv = ["halo", *request["argv"]]
        if sys.path and sys.path[0] != request["cwd"]:
            sys.path.insert(0, request["cwd"])
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:
            import torch

            torch.set_num_threads(int(threads))
        threading.Thread(target=_watch_client, args=(conn,), daemon=True).start()
        from halo.cli import main

        try:
            code = main(request["argv"])
        except SystemExit as exit_:  # argparse errors, --help
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        _shutdown_like_python()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            protocol.send_exit(conn, code)
        os._exit(code)


def _shutdown_like_python() -> None:
    """What interpreter exit does before the process ends: ``threading._shutdown`` (its exit
    hooks, e.g. concurrent.futures waking idle pool workers, then joining non-daemon threads such
    as an MLflow upload), then the atexit handlers."""
    import atexit

    threading._shutdown()
    atexit._run_exitfuncs()


def serve(
    path: Path,
    *,
    idle: float = 900.0,
    parent: int | None = None,
    modules=PRELOAD,
    ready=None,
) -> None:
    """Serve jobs on ``path`` until stopped, idle for ``idle`` s, or ``parent`` is gone."""
    for var in _THREAD_VARS:  # torch's default thread count is the machine's, as in a shell
        os.environ.pop(var, None)
    protocol.private_dir(path.parent)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket of a killed server
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(64)
    try:
        loaded = preload(modules)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        print(f"serving on {path} (pid {os.getpid()}, preloaded {len(loaded)} modules)", flush=True)
        if ready is not None:
            ready()
        last = time.monotonic()
        jobs: set[int] = set()
        while True:
            readable, _, _ = select.select([server], [], [], 1.0)
            if not readable:
                jobs = {pid for pid in jobs if _alive(pid)}
                if jobs:  # idle means no request and no job running
                    last = time.monotonic()
                gone = parent is not None and not _alive(parent)
                if gone or time.monotonic() - last > idle or not path.exists():
                    return
                continue
            conn, _ = server.accept()
            last = time.monotonic()
            with conn:
                if _peer_uid(conn) != os.getuid():
                    continue
                conn.settimeout(30)  # a stalled client cannot hold up the others
                try:
                    request, fds = protocol.recv_request(conn)
                except (ConnectionError, ValueError, OSError):
                    continue
                conn.settimeout(None)
                if request["argv"] == ["--launcher-stop"]:
                    for fd in fds:
                        os.close(fd)
                    protocol.send_accepted(conn)
                    protocol.send_exit(conn, 0)
                    return
                try:
                    pid = os.fork()
                except OSError:  # the client sees no "+" and runs the plain process
                    for fd in fds:
                        os.close(fd)
                    continue
                if pid == 0:
                    server.close()
                    _run_child(conn, request, fds)  # never returns
                jobs.add(pid)
                print(f"job {pid}: halo {' '.join(request['argv'])}", flush=True)
                for fd in fds:
                    os.close(fd)
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
