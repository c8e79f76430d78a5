"""The paper's pipeline at its real sizes, a few steps of each job kind, on CPU or GPU (issue #30).

Writes a handful of synthetic images in the official layouts at the real sizes (GTAV-style
source 720×1280; Cityscapes-style target and val at the Cityscapes files' 1024×2048, which the
config resizes to 640×1280 and scores and evaluates at the label size), then runs the `halo` commands of one
active run of a paper config (default `configs/benchmarks/gta2cs.yaml`, random weights: nothing
is downloaded) with the step counts cut to ``--steps``: pretrain (+ its evaluation), one
acquisition round, one active round (+ its evaluation). Each command runs as its own process; the
script records its wall time, its compute time (the job's own `halo timing` line), the seconds
per training step and its peak resident memory (VmHWM), and prints a table::

    uv run python bench/realsize.py --work /tmp/realsize --steps 2            # CPU, ResNet-101
    uv run python bench/realsize.py --backbone segformer-b4 --steps 1 \\
        --set source_size=[640,1280] --set model.decoder=smp --set model.hfr=false ...
                                           # SegFormer-B4 (inputs multiples of 32, as acdc's)

``--extrapolate`` also prints what the paper's grid (3 budgets × 4 methods, each with its source
model, and the supervised bound) would take at these per-step and per-image costs, on one device
and on four (bench/gpu.sh runs this on a CUDA machine).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from halo.config import load_run  # noqa: E402
from halo.io import write_json  # noqa: E402

SOURCE = (720, 1280)  # the GTAV-style source files as written (the config resizes them)
LABEL = (1024, 2048)  # the Cityscapes files: acquisition and evaluation at this size
#: runs a halo command in this process and prints its peak memory (its own VmHWM) last
WRAPPER = (
    "import sys\n"
    "from halo.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
    "print('PEAK_KB', hwm, file=sys.stderr)\n"
    "torch = sys.modules.get('torch')\n"
    "if torch is not None and torch.cuda.is_available():\n"
    "    print('GPU_PEAK_MB', torch.cuda.max_memory_allocated() / 2**20, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def synth(root: Path, images: int) -> None:
    """The official layouts at the real sizes: GTAV-style train, Cityscapes-style train and val."""
    for style, folder, split, size in (
        ("gta", "gta5", "train", SOURCE),
        ("cityscapes", "cityscapes", "train", LABEL),
        ("cityscapes", "cityscapes", "val", LABEL),
    ):
        argv = ["synth", "--style", style, "--split", split, "--count", str(images)]
        argv += ["--size", f"{size[0]}x{size[1]}", "--out", str(root / folder), "--quiet"]
        run_halo(argv, quiet=True)


def run_halo(argv: list[str], quiet: bool = False) -> dict:
    """Run one halo command; its wall seconds, compute seconds and peak memory (MB)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv], cwd=REPO, capture_output=True, text=True
    )
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"realsize: halo {' '.join(argv[:1])} failed:\n{done.stderr[-3000:]}")
    peak = re.search(r"PEAK_KB (\d+)", done.stderr)
    timing = re.search(r"halo timing: .*?compute=([\d.]+)", done.stderr)
    out = {"wall_s": wall, "peak_mb": int(peak.group(1)) / 1024 if peak else None}
    out["compute_s"] = float(timing.group(1)) if timing else None
    gpu = re.search(r"GPU_PEAK_MB ([\d.]+)", done.stderr)
    out["gpu_peak_mb"] = float(gpu.group(1)) if gpu else None
    if not quiet:
        print(f"  {argv[0]:<9} wall {wall:7.1f} s, peak {out['peak_mb']:.0f} MB", flush=True)
    return out


def _mask_shape(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.height, img.width


def train_seconds(folder: Path) -> float:
    """Seconds the training loop itself took (the job's train_log.json)."""
    return float(json.loads((folder / "train_log.json").read_text())["seconds"])


def pipeline(args: argparse.Namespace) -> dict:
    """Pretrain, acquire, one active round: every job kind once at the real sizes."""
    work, data = args.work, args.work / "data"
    synth(data, args.images)
    sets = [
        f"data_root={data}",
        f"backbone={args.backbone}",
        "model.encoder_weights=null",  # random weights: nothing to download
        f"train.source_steps={args.steps}",
        f"train.round_steps={args.steps}",
        f"train.batch_size={args.batch}",
        f"train.warmup_steps={args.steps}",
        "active.round_starts=null",
        f"active.batch_size={args.batch}",
        f"eval.batch_size={args.batch}",
        "train.num_workers=0",
        f"train.checkpoint_every={args.steps}",
        *args.set,  # the caller's own overrides last
    ]
    common = ["--config", str(args.config), "--device", args.device, "--quiet"]
    for s in sets:
        common += ["--set", s]
    src, r1 = work / "source", work / "round1"
    jobs = {}
    jobs["pretrain"] = run_halo(
        ["pretrain", *common, "--out", str(src), "--eval-out", str(src / "eval.json")]
    )
    jobs["pretrain"]["train_s"] = train_seconds(src)
    jobs["acquire"] = run_halo(
        [
            "acquire",
            *common,
            "--checkpoint",
            str(src / "model.pt"),
            "--round",
            "1",
            "--out",
            str(r1),
        ]
    )
    argv = ["train", "--protocol", "active", *common, "--round", "1", "--init"]
    argv += [str(src / "model.pt"), "--masks", str(r1), "--out", str(r1)]
    jobs["train"] = run_halo([*argv, "--eval-out", str(r1 / "eval.json")])
    jobs["train"]["train_s"] = train_seconds(r1)
    jobs["evaluate"] = run_halo(
        ["evaluate", *common, "--checkpoint", str(src / "model.pt"), "--out", str(work / "e.json")]
    )
    budget = json.loads((r1 / "budget.json").read_text())
    masks = sorted((r1 / "masks").rglob("*.png"))
    run = load_run(
        args.config, sets
    )  # the sizes the model saw (the config's, else the benchmark's)
    return {
        "backbone": args.backbone,
        "device": args.device,
        "images": args.images,
        "batch": args.batch,
        "steps": args.steps,
        "files_size": list(SOURCE),  # the source files as written (the target's: LABEL)
        "source_size": list(run.source_size),
        "target_size": list(run.target_size),
        "label_size": list(LABEL),
        "mask_size": list(_mask_shape(masks[0])),
        "labelled_fraction_round1": budget["fraction_round"],
        "jobs": jobs,
        "s_per_step_source": jobs["pretrain"]["train_s"] / args.steps,
        "s_per_step_active": jobs["train"]["train_s"] / args.steps,
        # acquisition scores every pool image once: its compute time per image
        "s_per_image_acquire": (jobs["acquire"]["compute_s"] or jobs["acquire"]["wall_s"])
        / args.images,
        "s_per_image_evaluate": (jobs["evaluate"]["compute_s"] or jobs["evaluate"]["wall_s"])
        / args.images,
        "model_mb": (src / "model.pt").stat().st_size / 2**20,
        "mask_kb": sum(p.stat().st_size for p in masks) / max(len(masks), 1) / 1024,
    }


#: the paper's grid on GTAV -> Cityscapes: what one benchmark needs (docs/real-data.md)
PAPER = {
    "steps": 15375,  # source-only and adaptation run, each (official: 60k iterations / 4 GPUs)
    "batch": 8,  # 8 source + 8 target a step
    "pool": 2975,  # Cityscapes train: scored once a round
    "val": 500,  # Cityscapes val: evaluated after every round
    "rounds": 5,
    "active_runs": 12,  # 3 budgets x 4 methods
    "source_models": 2,  # hyperbolic-hfr (random, entropy, HALO) and euclidean-d512 (RIPU)
    "supervised": 1,
}


def extrapolate(m: dict) -> dict:
    """The paper's grid at the measured per-step and per-image costs (a step's cost scaled
    linearly from the measured batch to the paper's 8): device-hours on one device, and the wall
    time on four (four jobs at a time, never below one run's chain: source model, then its five
    rounds)."""
    p = PAPER
    scale = p["batch"] / m["batch"]
    source = p["steps"] * m["s_per_step_source"] * scale + p["val"] * m["s_per_image_evaluate"]
    rounds = p["rounds"] * (
        p["pool"] * m["s_per_image_acquire"] + p["val"] * m["s_per_image_evaluate"]
    )
    active = p["steps"] * m["s_per_step_active"] * scale + rounds
    total = (p["source_models"] + p["supervised"]) * source + p["active_runs"] * active
    chain = source + active
    checkpoints = p["active_runs"] * p["rounds"] + p["source_models"] + p["supervised"]
    return {
        "source_run_h": source / 3600,
        "active_run_h": active / 3600,
        "grid_device_h": total / 3600,
        "grid_wall_1_h": total / 3600,
        "grid_wall_4_h": max(total / 4, chain) / 3600,
        "disk_checkpoints_gb": checkpoints * m["model_mb"] / 1024,
        "disk_masks_gb": p["active_runs"] * p["rounds"] * p["pool"] * m["mask_kb"] / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs/benchmarks/gta2cs.yaml")
    ap.add_argument("--backbone", default="deeplabv3plus-r101")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--work", type=Path, required=True, help="a new folder for data and runs")
    ap.add_argument("--images", type=int, default=2, help="images per split")
    ap.add_argument("--steps", type=int, default=2, help="training steps per job")
    ap.add_argument("--batch", type=int, default=1, help="images a step (source and target)")
    ap.add_argument("--extrapolate", action="store_true", help="print the paper grid's cost")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeat)"
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    if args.work.exists() and any(args.work.iterdir()):
        ap.error(f"--work {args.work}: exists and is not empty (give a new folder)")
    for name in ("images", "steps", "batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name}: expected >= 1")
    print(f"{args.backbone} on {args.device}: {args.images} images a split, {args.steps} steps")
    result = pipeline(args)
    print(
        f"inputs: source {'x'.join(map(str, result['source_size']))}, target "
        f"{'x'.join(map(str, result['target_size']))}; masks "
        f"{result['mask_size'][0]}x{result['mask_size'][1]} (label files {LABEL[0]}x{LABEL[1]})"
    )
    print(
        f"s/step: source {result['s_per_step_source']:.2f}, active {result['s_per_step_active']:.2f}"
        f" (batch {args.batch}); s/image: acquire {result['s_per_image_acquire']:.2f}, evaluate "
        f"{result['s_per_image_evaluate']:.2f}; peak "
        f"{max(j['peak_mb'] for j in result['jobs'].values()):.0f} MB"
    )
    if args.extrapolate:
        result["paper_grid"] = extrapolate(result)
        g = result["paper_grid"]
        print(
            f"paper grid (12 active runs, 2 source models, 1 supervised): "
            f"{g['grid_device_h']:.1f} device-hours; wall {g['grid_wall_1_h']:.1f} h on one "
            f"device, {g['grid_wall_4_h']:.1f} h on four; disk {g['disk_checkpoints_gb']:.1f} GB "
            f"of checkpoints, {g['disk_masks_gb']:.2f} GB of masks"
        )
    if args.out is not None:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
