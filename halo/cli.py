"""The ``halo`` command line: the only place that reads config files, picks devices and writes files.

Snakemake rules and DVC stages call these sub-commands; they never duplicate their logic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

#: The default synthetic benchmark: (style, split, images per split [per ACDC condition]).
DEFAULT_SYNTH_SET: tuple[tuple[str, str, int], ...] = (
    ("gta", "train", 400),
    ("synthia", "train", 400),
    ("cityscapes", "train", 400),
    ("cityscapes", "val", 100),
    ("acdc", "train", 100),
    ("acdc", "val", 25),
)
SYNTH_FOLDER = {"gta": "gta5", "cityscapes": "cityscapes", "synthia": "synthia", "acdc": "acdc"}


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be HEIGHTxWIDTH, e.g. 128x256; got {text!r}"
        ) from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return h, w


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic datasets in the real layouts."""
    from halo.data import synthetic

    if args.style is None:
        jobs = [
            (style, split, args.count or n, Path(args.out) / SYNTH_FOLDER[style])
            for style, split, n in DEFAULT_SYNTH_SET
        ]
    else:
        jobs = [(args.style, args.split, args.count or 100, Path(args.out))]
    for style, split, count, out in jobs:
        stats = synthetic.write_dataset(
            style,
            out,
            split=split,
            count=count,
            size=args.size,
            seed=args.seed,
            conditions=args.conditions,
            progress=not args.quiet,
        )
        rare = sorted(stats["share"].items(), key=lambda kv: kv[1])[:3]
        print(
            f"{style:>10}/{split:<5} {stats['images']:>5} images → {out}  "
            f"(rarest: {', '.join(f'{c} {100 * v:.2f}%' for c, v in rare)})"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halo",
        description="HALO-AL: hyperbolic active learning for semantic segmentation under "
        "domain shift.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "synth",
        help="write the embedded synthetic benchmark in the real datasets' layouts",
        description="Write synthetic street scenes in the layout of GTAV (style gta), "
        "Cityscapes (cityscapes), SYNTHIA (synthia) or ACDC (acdc). Without --style, write the "
        "default benchmark: OUT/gta5, OUT/synthia, OUT/cityscapes and OUT/acdc.",
    )
    p.add_argument(
        "--style",
        choices=("gta", "cityscapes", "synthia", "acdc"),
        default=None,
        help="domain style to write (default: the whole default benchmark)",
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="train",
        help="split to write with --style (default: train)",
    )
    p.add_argument(
        "--count",
        type=_positive,
        default=None,
        help="images per split (per ACDC condition); default: 100 with --style, "
        "else the default benchmark's counts (400 train / 100 val, ACDC 100 / 25)",
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(128, 256),
        metavar="HxW",
        help="image size (default: 128x256)",
    )
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p.add_argument(
        "--conditions",
        nargs="+",
        default=["fog", "night", "rain", "snow"],
        choices=("fog", "night", "rain", "snow"),
        help="ACDC conditions to write",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``halo`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad input: one clear line, non-zero exit
        print(f"halo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
