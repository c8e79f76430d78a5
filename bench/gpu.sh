#!/usr/bin/env bash
# The real-size pipeline on a CUDA machine (issue #30): N training steps of each job kind of
# configs/benchmarks/gta2cs.yaml at 720x1280 / 640x1280 with ResNet-101 (random weights), then
# step time, images/s, peak memory and the paper grid's wall time on one GPU and on four.
#   bash bench/gpu.sh [N] [DEVICE] [BATCH]     # defaults: 20 steps, cuda, batch 8
# It runs on CPU too (bash bench/gpu.sh 1 cpu 1), which is how the test suite checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-20}"; device="${2:-cuda}"; batch="${3:-8}"
py="${PYTHON:-uv run python}"   # the project's environment (override: PYTHON=...)
work="$(mktemp -d "${TMPDIR:-/tmp}/halo-gpu-XXXXXX")"
trap 'rm -rf "$work"' EXIT
$py bench/realsize.py --work "$work/run" --device "$device" --steps "$steps" \
    --batch "$batch" --images "$batch" --extrapolate --out "$work/result.json"
$py - "$work/result.json" "$device" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
per = r["s_per_step_active"]
print(f"{sys.argv[2]}: {per:.3f} s/step at batch {r['batch']} (source + target): "
      f"{2 * r['batch'] / per:.1f} images/s; peak host memory "
      f"{max(j['peak_mb'] for j in r['jobs'].values()):.0f} MB")
gpu = [j["gpu_peak_mb"] for j in r["jobs"].values() if j.get("gpu_peak_mb")]
if gpu:
    print(f"peak GPU memory: {max(gpu):.0f} MB (max over the jobs)")
PY
