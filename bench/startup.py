"""Job start-up of real ``halo`` commands against ``python -c "import torch"``, side by side.

For ``halo train`` (an active round), ``halo acquire``, ``halo evaluate`` and ``halo track``
(the source run into a SQLite MLflow store) on the tiny test config, run N times each,
interleaved: the plain process (``python -m halo.cli``) and the same command through the
launcher's fork server (``python -m halo.launcher``, the workflow's way).
Start-up is what the command's own timing line reports (process start → first useful work,
halo/timing.py); the reference is the wall time of ``python -c "import torch"`` measured in the
same loop. Prints the medians and the ratios; the server's one-time preload is printed too.

    uv run python bench/startup.py            # 3 repetitions
    uv run python bench/startup.py --reps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from halo.launcher.protocol import ENV_VAR, socket_path  # noqa: E402
from halo.timing import parse  # noqa: E402

CONFIG = ["--config", str(ROOT / "configs/test/tiny.yaml"), "--set", "data_root=data"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra)
    return env


def sh(args: list[str], cwd: Path, env: dict) -> tuple[float, dict | None]:
    """Run a command; (wall seconds, its timing line or None)."""
    t = time.perf_counter()
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return wall, parse(res.stderr)


def commands(i: int) -> dict[str, list[str]]:
    """The three jobs (fresh output folders per repetition)."""
    return {
        "train (active round)": [
            "train", *CONFIG, "--set", "method=halo", "--round", "1",
            "--init", "src/model.pt", "--masks", "round1", "--out", f"out/train{i}", "--quiet",
        ],
        "acquire": [
            "acquire", *CONFIG, "--set", "method=halo", "--checkpoint", "src/model.pt",
            "--round", "1", "--out", f"out/acquire{i}", "--quiet",
        ],
        "evaluate": [
            "evaluate", *CONFIG, "--checkpoint", "src/model.pt", "--out", f"out/eval{i}.json",
            "--quiet",
        ],
        # (logs the source run again: idempotent, so every repetition finds it; its imports of
        # MLflow come after its timing's start-up mark: compare its wall times)
        "track": [
            "track", "--record", "src/metrics.json", "--artifacts", "src/config.yaml",
            "--uri", "sqlite:///mlflow.db", "--out", f"out/track{i}.json",
        ],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="halo-startup-") as tmp:
        work = Path(tmp)
        plain = _env()
        print("preparing the tiny benchmark, a source model and a round folder ...")
        sh([py, "-m", "halo.cli", "synth", "--count", "4", "--size", "32x64", "--out", "data",
            "--quiet"], work, plain)  # fmt: skip
        sh([py, "-m", "halo.cli", "pretrain", *CONFIG, "--out", "src", "--quiet"], work, plain)
        sh([py, "-m", "halo.cli", "acquire", *CONFIG, "--set", "method=halo", "--checkpoint",
            "src/model.pt", "--round", "1", "--out", "round1", "--quiet"], work, plain)  # fmt: skip
        sh([py, "-m", "halo.cli", "evaluate", *CONFIG, "--checkpoint", "src/model.pt", "--out",
            "src/eval.json", "--quiet"], work, plain)  # fmt: skip
        sh([py, "-m", "halo.cli", "summarize", *CONFIG, "--kind", "source", "--eval",
            "src/eval.json", "--out", "src/metrics.json"], work, plain)  # fmt: skip
        sh([py, "-m", "halo.cli", "track", "--record", "src/metrics.json", "--uri",
            "sqlite:///mlflow.db", "--out", "src/mlflow.json"], work, plain)  # fmt: skip
        sock = socket_path(work)
        t = time.perf_counter()
        server = subprocess.Popen(
            [py, "-m", "halo.launcher", "--serve", str(sock)],
            cwd=work, env=plain, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        server.stdout.readline()  # "serving on ..." once preloaded
        preload = time.perf_counter() - t
        served = _env(**{ENV_VAR: str(sock)})
        rows: dict[str, dict[str, list[float]]] = {}
        torch_walls: list[float] = []
        try:
            for i in range(args.reps):
                torch_walls.append(sh([py, "-c", "import torch"], work, plain)[0])
                for name, cmd in commands(i).items():
                    row = rows.setdefault(
                        name, {"plain": [], "launcher": [], "pwall": [], "lwall": []}
                    )
                    wall, timing = sh([py, "-m", "halo.cli", *cmd], work, plain)
                    row["plain"].append(timing["startup"])
                    row["pwall"].append(wall)
                    cmd = [c.replace(f"{i}", f"{i}l") if c.startswith("out/") else c for c in cmd]
                    wall, timing = sh([py, "-m", "halo.launcher", *cmd], work, served)
                    row["launcher"].append(timing["startup"])
                    row["lwall"].append(wall)
        finally:
            server.terminate()
            server.wait()
    ref = statistics.median(torch_walls)
    print(f"\npython -c 'import torch': {ref:.2f} s (median of {args.reps})")
    print(f"launcher server preload (once per snakemake invocation): {preload:.1f} s\n")
    print("| command | plain start-up s | × import torch | launcher start-up s | × import torch "
          "| plain wall s | launcher wall s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        p, q = statistics.median(row["plain"]), statistics.median(row["launcher"])
        print(
            f"| {name} | {p:.2f} | {p / ref:.2f} | {q:.2f} | {q / ref:.2f} | "
            f"{statistics.median(row['pwall']):.2f} | {statistics.median(row['lwall']):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
