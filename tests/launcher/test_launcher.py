"""The fork server runs a halo command exactly as the plain process would: same files, stdout,
stderr and exit code, in the client's folder and environment; a killed client ends its job; no
server means the plain process. The server here preloads only light modules (the workflow tests
run the real one, with torch, for the whole tiny grid)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halo.launcher import protocol
from halo.timing import process_start

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != protocol.ENV_VAR}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture
def server(tmp_path):
    """A launcher server (light preload) on a private socket; yields (socket path, process)."""
    sock = protocol.socket_path(tmp_path / "project")
    code = (
        "import sys; from pathlib import Path; from halo.launcher.server import serve; "
        "serve(Path(sys.argv[1]), modules=('json', 'halo.cli.commands'), idle=120)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = proc.stdout.readline()  # "serving on ..." once preloaded
    assert "serving on" in line, line + proc.stdout.read()
    yield sock, proc
    proc.kill()
    proc.wait()


def halo(args, cwd, sock=None, **kw):
    env = _env(**({protocol.ENV_VAR: str(sock)} if sock else {}))
    return subprocess.run(
        [sys.executable, "-m", "halo.launcher", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_command_through_the_server_equals_the_plain_one(server, tmp_path):
    sock, proc = server
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    args = ["synth", "--style", "gta", "--count", "3", "--size", "16x32", "--out", "out", "--quiet"]
    served = halo(args, tmp_path / "a", sock)
    plain = halo(args, tmp_path / "b")
    assert served.returncode == plain.returncode == 0, served.stderr + plain.stderr
    assert served.stdout.replace("/a", "/b") == plain.stdout  # relative --out: the client's cwd
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    for f in files:
        if (tmp_path / "a" / f).is_file():
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert any(f"halo {' '.join(args)}" in line for line in _server_lines(proc, 1))


def _server_lines(proc, n: int) -> list[str]:
    return [proc.stdout.readline() for _ in range(n)]


@pytest.mark.parametrize(
    "args, code",
    [
        (["--version"], 0),
        (["summarize", "--kind", "source", "--eval", "missing.json", "--out", "x.json"], 2),
        (["no-such-command"], 2),
    ],
)
def test_exit_codes_and_messages_are_the_plain_ones(server, tmp_path, args, code):
    sock, proc = server
    served = halo(args, tmp_path, sock)
    assert f"halo {' '.join(args)}" in _server_lines(proc, 1)[0]  # it ran in the server
    plain = halo(args, tmp_path)
    assert served.returncode == plain.returncode == code
    assert served.stdout == plain.stdout
    assert served.stderr.splitlines()[-1:] == plain.stderr.splitlines()[-1:]


def test_the_job_sees_the_clients_environment(server, tmp_path):
    """A variable only the client has (the MLflow store) and a path relative to its folder."""
    sock, proc = server
    env = {protocol.ENV_VAR: str(sock), "MLFLOW_TRACKING_URI": "sqlite:///store/mlflow.db"}
    (tmp_path / "store").mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "halo.launcher", "track", "--init"],
        cwd=tmp_path,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "halo track --init" in _server_lines(proc, 1)[0]  # it ran in the server
    assert "sqlite:///store/mlflow.db" in res.stdout
    assert (tmp_path / "store" / "mlflow.db").is_file()


def test_a_killed_client_ends_its_job(server, tmp_path):
    sock, proc = server
    count = 20000  # minutes of work: it cannot end by itself within the test's wait
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "halo.launcher",
            "synth",
            "--style",
            "gta",
            "--count",
            str(count),
            "--out",
            "big",
            "--quiet",
        ],
        cwd=tmp_path,
        env=_env(**{protocol.ENV_VAR: str(sock)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _children(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (job,) = _children(proc.pid)
    client.send_signal(signal.SIGKILL)
    client.wait()
    deadline = time.monotonic() + 30
    while job in _children(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job not in _children(proc.pid), "the job outlived its client"
    assert len(list((tmp_path / "big").rglob("*.png"))) < 2 * count  # it was cut short
    assert proc.poll() is None, "the server must keep serving"


def test_without_a_server_the_plain_process_runs(tmp_path):
    res = halo(["--version"], tmp_path, tmp_path / "no-such.sock")
    assert res.returncode == 0 and res.stdout.startswith("halo ")
    res = halo(["--version"], tmp_path)  # no HALO_LAUNCHER at all
    assert res.returncode == 0 and res.stdout.startswith("halo ")


def test_a_server_that_makes_no_job_means_the_plain_process(tmp_path):
    """A server that closes the connection before a job exists (stopping, failing to fork):
    the client runs the command itself instead of failing."""
    import threading

    sock_path = protocol.socket_path(tmp_path)
    protocol.private_dir(sock_path.parent)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)

    def refuse() -> None:
        conn, _ = listener.accept()
        _, fds = protocol.recv_request(conn)
        for fd in fds:
            os.close(fd)
        conn.close()  # no "+": no job

    thread = threading.Thread(target=refuse)
    thread.start()
    try:
        res = halo(["--version"], tmp_path, sock_path)
    finally:
        thread.join(timeout=60)
        listener.close()
    assert res.returncode == 0 and res.stdout.startswith("halo "), res.stderr


@pytest.mark.parametrize("telemetry", ["", "false"])
def test_mlflow_is_preloaded_only_with_its_telemetry_off(tmp_path, telemetry):
    """The server preloads MLflow after halo.tracking (which turns MLflow's telemetry off: no
    thread at import, so forking is safe); where the user turned telemetry on, MLflow is skipped
    and the server still serves."""
    sock = protocol.socket_path(tmp_path / "project")
    code = (
        "import sys; from pathlib import Path; from halo.launcher.server import serve; "
        "serve(Path(sys.argv[1]), modules=('json', 'halo.tracking', 'mlflow.entities'), idle=60)"
    )
    env = {k: v for k, v in _env().items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    if telemetry:
        env["MLFLOW_DISABLE_TELEMETRY"] = telemetry
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert f"preloaded {2 if telemetry else 3} modules" in line, line
    finally:
        proc.kill()
        proc.wait()


def test_stop_ends_the_server_and_removes_its_socket(server):
    sock, proc = server
    res = subprocess.run(
        [sys.executable, "-m", "halo.launcher", "--stop", str(sock)], env=_env(), timeout=60
    )
    assert res.returncode == 0
    assert proc.wait(timeout=30) == 0
    assert not sock.exists()


def test_the_server_leaves_with_its_parent(tmp_path):
    sock = protocol.socket_path(tmp_path)
    parent = subprocess.Popen(["sleep", "60"])
    code = (
        "import sys; from pathlib import Path; from halo.launcher.server import serve; "
        "serve(Path(sys.argv[1]), modules=('json',), parent=int(sys.argv[2]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock), str(parent.pid)],
        env=_env(),
        stdout=subprocess.DEVNULL,
    )
    parent.kill()
    parent.wait()
    assert proc.wait(timeout=120) == 0


def test_the_socket_folder_is_private(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(PermissionError, match="0700"):
        protocol.private_dir(folder)
    assert protocol.private_dir(tmp_path / "new").stat().st_mode & 0o777 == 0o700


def test_a_malformed_request_is_dropped_and_the_server_serves_on(server, tmp_path):
    sock, _ = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(b"\x00" * 3)  # no descriptors, half a header
    res = halo(["--version"], tmp_path, sock)
    assert res.returncode == 0 and res.stdout.startswith("halo ")


def test_socket_paths_fit_af_unix_and_differ_per_project(tmp_path):
    a, b = protocol.socket_path(tmp_path / ("a" * 50)), protocol.socket_path(tmp_path / "b")
    assert a != b and len(str(a)) < 100
    assert protocol.socket_path(tmp_path / "b") == b


def test_process_start_is_before_now():
    assert time.time() - 3600 < process_start() <= time.time()
