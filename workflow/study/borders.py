"""Where the strategies look: the share of acquired pixels near the image borders (issue #29).

Reads the last round's label masks of every active run of an unpacked grid (``grid.py gather
--unpack DIR``) and writes one row per run: the share of its labelled pixels within ``--band``
pixels of the left or right border, and of the top or bottom border, beside the share of the
image those bands cover (what a uniform draw would give), and the run's final mIoU::

    uv run python workflow/study/borders.py DIR/runs/synth-gta2cs/deeplabv3plus-r18 \\
        --out docs/study/borders.csv

A labelled pixel is one whose mask holds a class (255 = not labelled; a labelled pixel whose
ground truth is void counts as not labelled). Then, per method and budget, the seed means and
the paired difference to random of the left/right share are printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from halo.acquisition.rounds import UNLABELLED, iter_masks  # noqa: E402
from halo.io import read_json, write_text  # noqa: E402
from halo.runs import RECORD_FILE, round_dir  # noqa: E402


def band_masks(shape: tuple[int, int], band: int) -> tuple[np.ndarray, np.ndarray]:
    """``(sides, ends)``: bool ``[H, W]``, the pixels within ``band`` of the left or right
    border, and of the top or bottom border."""
    h, w = shape
    cols, rows = np.arange(w), np.arange(h)
    sides = (cols < band) | (cols >= w - band)
    ends = (rows < band) | (rows >= h - band)
    return np.broadcast_to(sides[None, :], shape), np.broadcast_to(ends[:, None], shape)


def border_counts(masks, band: int) -> dict[str, float]:
    """Labelled pixels in all, in the side bands and in the end bands over ``masks`` (uint8
    ``[H, W]``, 255 = unlabelled), and the bands' share of the pixels."""
    total = sides = ends = pixels = side_px = end_px = 0
    for mask in masks:
        labelled = np.asarray(mask) != UNLABELLED
        s, e = band_masks(labelled.shape, band)
        total += int(labelled.sum())
        sides += int((labelled & s).sum())
        ends += int((labelled & e).sum())
        pixels += labelled.size
        side_px += int(s.sum())
        end_px += int(e.sum())
    return {
        "labelled": total,
        "side_share": sides / total if total else float("nan"),
        "end_share": ends / total if total else float("nan"),
        "side_expected": side_px / pixels if pixels else float("nan"),
        "end_expected": end_px / pixels if pixels else float("nan"),
    }


def runs_table(runs: Path, band: int) -> pd.DataFrame:
    """One row per active run below ``runs`` (``<method>/<budget>/seed<s>/metrics.json``)."""
    rows = []
    for record_path in sorted(runs.glob(f"*/*/seed*/{RECORD_FILE}")):
        record = read_json(record_path, "run record")
        rounds = record.get("rounds") or []
        if record.get("kind") != "active" or not rounds:
            continue
        last = Path(round_dir(record_path.parent, rounds[-1]["round"]))
        rows.append(
            {
                "method": record["method"],
                "budget": record["budget"],
                "seed": record["seed"],
                "band": band,
                **border_counts(iter_masks(last), band),
                "miou": record["miou"],
            }
        )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and budget: seed means of the shares, and the mean paired (per seed)
    difference of the side share to random's."""
    keys = ["method", "budget"]
    out = table.groupby(keys)[["side_share", "end_share", "side_expected", "miou"]].mean()
    rnd = table[table["method"] == "random"].set_index(["budget", "seed"])["side_share"]
    diff = table.join(rnd.rename("random_side"), on=["budget", "seed"])
    diff["side_vs_random"] = diff["side_share"] - diff["random_side"]
    out["side_vs_random"] = diff.groupby(keys)["side_vs_random"].mean()
    return out.reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, help="DIR/runs/<bench>/<backbone> of an unpacked grid")
    ap.add_argument("--band", type=int, default=16, help="band width in pixels (default 16)")
    ap.add_argument("--out", type=Path, required=True, help="the per-run CSV")
    args = ap.parse_args(argv)
    if args.band < 1:
        ap.error("--band: expected >= 1")
    table = runs_table(args.runs, args.band)
    if table.empty:
        sys.exit(f"borders: {args.runs}: no active runs with label masks")
    write_text(args.out, table.to_csv(index=False, lineterminator="\n"))
    print(summary(table).to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
