"""Benchmark the hyperbolic head, side by side in one process, on CPU and (when present) CUDA.

(a) ``mlr_logits`` forward + backward in float32 vs the same computation in float64
    (64 channels, 19 classes, a 2 x 160 x 320 map) -- acceptance: float32 >= 1.5x faster on CPU.
(b) one full training step (forward, cross-entropy, backward, SGD step) of the segmenter with the
    hyperbolic head vs the Euclidean head, same backbone (default ``deeplabv3plus-r18`` at
    2 x 3 x 128 x 256) -- acceptance: hyperbolic within 1.2x of Euclidean.
(c) the same training step with the hyperbolic head's ball operations (``expmap0`` with its
    projection, for the pixels and the class points) through geoopt's ``PoincareBall`` vs the
    fused float32 ones of ``halo.models.hyperbolic`` (the MLR is the fused one on both sides:
    geoopt has none) -- the question: does geoopt's path cost more than 10 % of a step?

The two sides of each comparison alternate within every repeat, so machine load hits both alike;
the medians and their ratio are printed and written as JSON (``--out``, default
``bench/out/head.json``, with the thread count and the load average at the start). On a small
machine shared with other jobs, several intra-op threads mostly wait for each other (a fixed cost
per op that shrinks every ratio towards 1): compare with ``--threads 1`` there.

    uv run python bench/head.py [--repeats 15] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import geoopt
import torch
import torch.nn.functional as F
from benchlib import device_name, machine, side_by_side, write_report

from halo.models import heads
from halo.models.hyperbolic import expmap0, mlr_logits
from halo.models.segmenter import build_backbone

NUM_CLASSES = 19
EMBED_DIM = 64


def bench_mlr(device: torch.device, repeats: int, warmup: int, shape: tuple[int, ...]) -> dict:
    """(a) mlr_logits forward + backward, float32 vs float64, on ``shape = (B, H, W)``."""
    batch, height, width = shape
    gen = torch.Generator().manual_seed(0)
    tangent = torch.randn(batch, EMBED_DIM, height, width, generator=gen) * 0.3
    x32 = expmap0(tangent, c=1.0, dim=1).to(device)
    p32 = expmap0(torch.randn(NUM_CLASSES, EMBED_DIM, generator=gen) * 0.5, c=1.0).to(device)
    a32 = torch.randn(NUM_CLASSES, EMBED_DIM, generator=gen).to(device)
    upstream32 = torch.randn(batch, NUM_CLASSES, height, width, generator=gen).to(device)
    inputs = {
        torch.float32: (x32, p32, a32, upstream32),
        torch.float64: tuple(t.double() for t in (x32, p32, a32, upstream32)),
    }

    def step(dtype: torch.dtype) -> Callable[[], object]:
        x, p, a, upstream = inputs[dtype]
        leaves = [t.clone().requires_grad_(True) for t in (x, p, a)]

        def run() -> None:
            for leaf in leaves:
                leaf.grad = None
            logits = mlr_logits(*leaves, c=1.0)
            logits.backward(upstream)

        return run

    timings = side_by_side(
        {"float32": step(torch.float32), "float64": step(torch.float64)}, device, repeats, warmup
    )
    ratio = timings["float64"]["median_s"] / timings["float32"]["median_s"]
    return {
        "what": "mlr_logits forward+backward",
        "shape": {"B": batch, "D": EMBED_DIM, "K": NUM_CLASSES, "H": height, "W": width},
        "timings": timings,
        "speedup_float32_over_float64": ratio,
        "acceptance": ">= 1.5 on CPU",
    }


def bench_train_step(
    device: torch.device, repeats: int, warmup: int, backbone: str, shape: tuple[int, ...]
) -> dict:
    """(b) one SGD training step of the segmenter, hyperbolic head vs Euclidean head."""
    batch, height, width = shape
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, height, width, generator=gen).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch, height, width), generator=gen).to(device)

    def step(head: str) -> Callable[[], object]:
        torch.manual_seed(0)  # same backbone initialisation for both heads
        model = build_backbone(backbone, NUM_CLASSES, head=head).to(device).train()
        optimizer = torch.optim.SGD(
            model.param_groups(1e-3), lr=1e-3, momentum=0.9, weight_decay=5e-4
        )

        def run() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images).logits, labels)
            loss.backward()
            optimizer.step()
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"non-finite loss with the {head} head")

        return run

    timings = side_by_side(
        {"hyperbolic": step("hyperbolic"), "euclidean": step("euclidean")},
        device,
        repeats,
        warmup,
    )
    ratio = timings["hyperbolic"]["median_s"] / timings["euclidean"]["median_s"]
    return {
        "what": "training step (forward, cross-entropy, backward, SGD)",
        "backbone": backbone,
        "shape": {"B": batch, "C": 3, "H": height, "W": width, "K": NUM_CLASSES},
        "timings": timings,
        "hyperbolic_over_euclidean": ratio,
        "acceptance": "<= 1.2",
    }


def bench_geoopt(
    device: torch.device, repeats: int, warmup: int, backbone: str, shape: tuple[int, ...]
) -> dict:
    """(c) a hyperbolic training step, ball operations fused vs through geoopt's PoincareBall."""
    batch, height, width = shape
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, height, width, generator=gen).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch, height, width), generator=gen).to(device)
    balls: dict[float, geoopt.PoincareBall] = {}

    def geoopt_expmap0(v: torch.Tensor, *, c: float, dim: int = -1) -> torch.Tensor:
        ball = balls.setdefault(c, geoopt.PoincareBall(c=c).to(v.device))
        return ball.expmap0(v, dim=dim, project=True)

    def step(ops: str) -> Callable[[], object]:
        torch.manual_seed(0)  # same initialisation for both sides
        model = build_backbone(backbone, NUM_CLASSES, head="hyperbolic").to(device).train()
        optimizer = torch.optim.SGD(
            model.param_groups(1e-3), lr=1e-3, momentum=0.9, weight_decay=5e-4
        )
        ball_op = geoopt_expmap0 if ops == "geoopt" else expmap0

        def run() -> None:
            heads.expmap0 = ball_op  # the head's expmap0 (pixels and class points) for this side
            try:
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(images).logits, labels)
                loss.backward()
                optimizer.step()
            finally:
                heads.expmap0 = expmap0
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"non-finite loss with {ops} ball operations")

        return run

    timings = side_by_side(
        {"fused": step("fused"), "geoopt": step("geoopt")}, device, repeats, warmup
    )
    extra = timings["geoopt"]["median_s"] / timings["fused"]["median_s"] - 1.0
    return {
        "what": "hyperbolic training step, ball operations fused vs geoopt PoincareBall",
        "backbone": backbone,
        "shape": {"B": batch, "C": 3, "H": height, "W": width, "K": NUM_CLASSES},
        "timings": timings,
        "geoopt_extra_fraction_of_step": extra,
        "question": "> 0.10: geoopt's path costs more than 10 % of a training step",
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/head.json"))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--device",
        action="append",
        choices=["cpu", "cuda"],
        help="repeatable; default: cpu, plus cuda when available",
    )
    parser.add_argument("--backbone", default="deeplabv3plus-r18")
    parser.add_argument("--mlr-shape", type=int, nargs=3, default=[2, 160, 320])
    parser.add_argument("--step-shape", type=int, nargs=3, default=[2, 128, 256])
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        parser.error("--device cuda given but CUDA is not available")

    report: dict = {"benchmark": "head", **machine(), "results": {}}
    for name in devices:
        device = torch.device(name)
        mlr = bench_mlr(device, args.repeats, args.warmup, tuple(args.mlr_shape))
        step = bench_train_step(
            device, args.repeats, args.warmup, args.backbone, tuple(args.step_shape)
        )
        geo = bench_geoopt(device, args.repeats, args.warmup, args.backbone, tuple(args.step_shape))
        report["results"][name] = {
            "device": device_name(device),
            "mlr": mlr,
            "train_step": step,
            "geoopt": geo,
        }
        ms = {k: v["median_s"] * 1e3 for k, v in mlr["timings"].items()}
        print(
            f"[{name}] (a) mlr_logits fwd+bwd: float32 {ms['float32']:.1f} ms, "
            f"float64 {ms['float64']:.1f} ms -> float32 is "
            f"{mlr['speedup_float32_over_float64']:.2f}x faster (acceptance on CPU: >= 1.5)"
        )
        ms = {k: v["median_s"] * 1e3 for k, v in step["timings"].items()}
        print(
            f"[{name}] (b) {args.backbone} train step: hyperbolic {ms['hyperbolic']:.1f} ms, "
            f"euclidean {ms['euclidean']:.1f} ms -> ratio "
            f"{step['hyperbolic_over_euclidean']:.3f} (acceptance: <= 1.2)"
        )
        ms = {k: v["median_s"] * 1e3 for k, v in geo["timings"].items()}
        print(
            f"[{name}] (c) hyperbolic train step, ball ops fused {ms['fused']:.1f} ms, geoopt "
            f"{ms['geoopt']:.1f} ms -> geoopt adds {100 * geo['geoopt_extra_fraction_of_step']:.1f}"
            " % of a step"
        )
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
