"""Benchmark ``select_regions`` against the plain greedy loop, side by side in one process.

On a ``640 x 1280`` map at a 1 % budget (``a = 1``, ``m = 5``: 911 regions) it times

- ``fast``: :func:`halo.acquisition.selection.select_regions`;
- ``greedy``: the plain loop of docs/design.md ("The method") -- one ``argmax`` over the whole map per region (first
  maximum = lowest row-major index on ties), then label / block the windows around it;

asserts that both give identical centres (same order), labelled and blocked masks, and prints the
speed ratio. Maps: ``random`` (uniform noise), ``smooth`` (a realistic ``A = R ⊙ H``: min-max
product of two blurred noise fields) and ``constant`` (all ties, like flat sky or saturated
entropy: greedy order = row-major order); the aim is >= 50x on each, on CPU. Runs on CPU, and on CUDA too when present.
The two sides alternate within every repeat, so machine load hits both alike. JSON goes to
``--out`` (default ``bench/out/selection.json``) with the thread count and the load average.

    uv run python bench/selection.py [--repeats 5] [--threads 1] [--maps random smooth]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from benchlib import machine, timed, write_report

from halo.acquisition.selection import Selection, regions_per_image, select_regions

MAPS = ("random", "smooth", "constant")


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``[H, W]`` map (reflect padding)."""
    r = max(1, int(3 * sigma))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = k / k.sum()
    y = F.pad(x[None, None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return F.conv2d(y, k.view(1, 1, -1, 1))[0, 0]


def _minmax(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min())


def make_map(kind: str, height: int, width: int, seed: int) -> torch.Tensor:
    """A float32 ``[H, W]`` acquisition map of the given kind (CPU, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "random":
        return torch.rand(height, width, generator=gen)
    if kind == "smooth":
        radius = _blur(torch.rand(height, width, generator=gen), 12.0)
        entropy = _blur(torch.rand(height, width, generator=gen), 3.0)
        return _minmax(radius) * _minmax(entropy)
    if kind == "constant":
        return torch.zeros(height, width)
    raise ValueError(f"unknown map kind {kind!r}; valid: {', '.join(MAPS)}")


def plain_greedy(score: torch.Tensor, num_regions: int, a: int, m: int) -> Selection:
    """docs/design.md ("The method") verbatim: argmax over the map per region (the map must have no ``-inf``)."""
    w = score.shape[1]
    work = score.clone()
    alive = torch.ones_like(score, dtype=torch.bool)
    labelled = torch.zeros_like(alive)
    centres = []
    for _ in range(num_regions):
        p = int(torch.argmax(work))
        y, x = divmod(p, w)
        if not bool(alive[y, x]):  # everything blocked: argmax fell on a -inf pixel
            break
        centres.append((y, x))
        labelled[max(0, y - a) : y + a + 1, max(0, x - a) : x + a + 1] = True
        alive[max(0, y - m) : y + m + 1, max(0, x - m) : x + m + 1] = False
        work[max(0, y - m) : y + m + 1, max(0, x - m) : x + m + 1] = -torch.inf
    cent = torch.tensor(centres, dtype=torch.int64, device=score.device).reshape(-1, 2)
    return Selection(cent, labelled, ~alive)


def bench_map(
    kind: str, device: torch.device, args: argparse.Namespace, num_regions: int
) -> dict[str, object]:
    score = make_map(kind, args.height, args.width, args.seed).to(device)
    a, m = args.active_radius, args.mask_radius
    sides: dict[str, Callable[[], Selection]] = {
        "fast": lambda: select_regions(score, num_regions, active_radius=a, mask_radius=m),
        "greedy": lambda: plain_greedy(score, num_regions, a, m),
    }
    sides["fast"]()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sides}
    results: dict[str, Selection] = {}
    for _ in range(args.repeats):
        for name, fn in sides.items():
            dt, results[name] = timed(fn, device)
            times[name].append(dt)
    fast, ref = results["fast"], results["greedy"]
    equal = (
        torch.equal(fast.centres, ref.centres)
        and torch.equal(fast.labelled, ref.labelled)
        and torch.equal(fast.blocked, ref.blocked)
    )
    if not equal:
        raise AssertionError(f"{kind} on {device}: select_regions differs from the plain greedy")
    med = {name: statistics.median(t) for name, t in times.items()}
    row = {
        "map": kind,
        "device": str(device),
        "regions": int(fast.centres.shape[0]),
        "fast_median_s": med["fast"],
        "fast_min_s": min(times["fast"]),
        "greedy_median_s": med["greedy"],
        "greedy_min_s": min(times["greedy"]),
        "speedup_median": med["greedy"] / med["fast"],
        "equal": equal,
    }
    print(
        f"{kind:>9} {device.type:>4}: select_regions {1e3 * med['fast']:8.2f} ms | plain greedy "
        f"{1e3 * med['greedy']:8.1f} ms | x{row['speedup_median']:.0f} | "
        f"{row['regions']} regions, identical"
    )
    return row


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--budget", type=float, default=0.01)
    parser.add_argument("--active-radius", type=int, default=1)
    parser.add_argument("--mask-radius", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--maps", nargs="+", default=list(MAPS), choices=MAPS)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--out", type=Path, default=Path("bench/out/selection.json"))
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    num_regions = regions_per_image(args.height, args.width, args.budget, args.active_radius)
    rows = [bench_map(kind, dev, args, num_regions) for dev in devices for kind in args.maps]
    report = {
        "name": "select",
        "shape": [args.height, args.width],
        "budget": args.budget,
        "active_radius": args.active_radius,
        "mask_radius": args.mask_radius,
        "num_regions": num_regions,
        "repeats": args.repeats,
        **machine(),
        "results": rows,
    }
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
