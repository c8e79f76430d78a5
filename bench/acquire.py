"""Benchmark acquisition throughput over a target pool: batched scoring vs one image at a time.

One full ``halo.acquisition.loop.acquire`` round (forward pass, HALO scores, region selection,
masks and label maps written) over a synthetic Cityscapes-style pool, with ``--batch-size`` images
per forward pass vs 1, side by side in one process (the two alternate within every repeat). Both
sides must write identical label maps (batching may not change what is selected). Prints images/s
of each and their ratio, and writes JSON (``--out``, default ``bench/out/acquire.json``).

    uv run python bench/acquire.py [--pool 64] [--size 64 128] [--batch-size 8] [--threads 1]

The model is untrained (weights do not change the work done); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from benchlib import device_name, machine, side_by_side, write_report

from halo.acquisition.loop import acquire
from halo.acquisition.rounds import BLOCKED_FILE, LABELLED_FILE, MASKS_DIR
from halo.config import load_run
from halo.data import build_dataset
from halo.data.synthetic import write_dataset
from halo.engine.restore import build_model
from halo.engine.scoring import build_round_strategy


def _pool(root: Path, count: int, size: tuple[int, int]):
    write_dataset("cityscapes", root, split="train", count=count, size=size, seed=0)
    return build_dataset("cityscapes", root, "train", size)


def _selection(folder: Path) -> dict[str, bytes]:
    """What a round wrote: the label maps and every mask file, as bytes."""
    out = {p.name: p.read_bytes() for p in (folder / LABELLED_FILE, folder / BLOCKED_FILE)}
    out.update(
        {str(p.relative_to(folder)): p.read_bytes() for p in (folder / MASKS_DIR).rglob("*.png")}
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=64, help="target images")
    parser.add_argument("--size", type=int, nargs=2, default=[64, 128], help="height width")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--method", default="halo")
    parser.add_argument("--backbone", default="deeplabv3plus-r18")
    parser.add_argument("--budget", type=float, default=0.01, help="round budget (fraction)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/out/acquire.json"))
    args = parser.parse_args(argv)
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 (it is compared with batch size 1)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = (args.size[0], args.size[1])
    run = load_run(None, [f"method={args.method}", f"backbone={args.backbone}"])
    torch.manual_seed(0)
    model = build_model(run).to(device)
    strategy = build_round_strategy(run, seed=0)

    with tempfile.TemporaryDirectory(prefix="halo-bench-acquire-") as tmp:
        tmp = Path(tmp)
        pool = _pool(tmp / "cityscapes", args.pool, size)

        def run(batch_size: int):
            def go() -> None:
                acquire(
                    model,
                    pool,
                    strategy,
                    out_dir=tmp / f"b{batch_size}",
                    round_budget=args.budget,
                    batch_size=batch_size,
                    progress=False,
                )

            return go

        sides = {f"batch {args.batch_size}": run(args.batch_size), "batch 1": run(1)}
        timings = side_by_side(sides, device, args.repeats, args.warmup)
        # on CUDA, kernels chosen per batch size may round differently: ties could then break
        # differently, so a mismatch there is reported, not raised
        same = _selection(tmp / f"b{args.batch_size}") == _selection(tmp / "b1")
        if not same and device.type == "cpu":
            raise AssertionError("batched and one-at-a-time acquisition selected different pixels")

    rate = {name: args.pool / t["median_s"] for name, t in timings.items()}
    ratio = rate[f"batch {args.batch_size}"] / rate["batch 1"]
    report = {
        "benchmark": "acquire",
        **machine(),
        "device": device_name(device),
        "pool": args.pool,
        "size": list(size),
        "method": args.method,
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "timings": timings,
        "images_per_s": rate,
        "speedup_batched_over_single": ratio,
        "identical_selection": same,
    }
    print(
        f"[{device.type}] acquire {args.method}, {args.pool} images {size[0]}x{size[1]}: "
        f"batch {args.batch_size} {rate[f'batch {args.batch_size}']:.1f} img/s, "
        f"batch 1 {rate['batch 1']:.1f} img/s -> x{ratio:.2f}; "
        f"{'identical selections' if same else 'SELECTIONS DIFFER'}"
    )
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
