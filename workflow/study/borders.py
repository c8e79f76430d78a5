"""Where the strategies look: the share of acquired pixels near the image borders (issue #29).

Reads the last round's label masks of every active run of an unpacked grid (``grid.py gather
--unpack DIR``) and writes one row per run: the share of its labelled pixels within ``--band``
pixels of the left or right border, and of the top or bottom border, beside the share of the
image those bands cover (what a uniform draw would give), the share of rare-class pixels among
the labelled pixels in the side bands and elsewhere (``--rare-from``: what a pixel spent at the
sides buys), and the run's final mIoU::

    uv run python workflow/study/borders.py DIR/runs/synth-gta2cs/deeplabv3plus-r18 \\
        --rare-from docs/study/radius_vs_frequency.csv --out docs/study/borders.csv

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


def border_counts(masks, band: int, rare: frozenset[int] = frozenset()) -> dict[str, float]:
    """Labelled pixels in all, in the side bands and in the end bands over ``masks`` (uint8
    ``[H, W]``, 255 = unlabelled), the bands' share of the pixels, and the share of rare-class
    pixels (class ids ``rare``) among the labelled pixels in the side bands and elsewhere (what
    a pixel spent at the sides buys)."""
    total = sides = ends = pixels = side_px = end_px = side_rare = rest_rare = 0
    ids = np.fromiter(rare, dtype=np.int64) if rare else np.zeros(0, np.int64)
    for mask in masks:
        mask = np.asarray(mask)
        labelled = mask != UNLABELLED
        s, e = band_masks(labelled.shape, band)
        is_rare = np.isin(mask, ids) & labelled
        total += int(labelled.sum())
        sides += int((labelled & s).sum())
        ends += int((labelled & e).sum())
        side_rare += int((is_rare & s).sum())
        rest_rare += int((is_rare & ~s).sum())
        pixels += labelled.size
        side_px += int(s.sum())
        end_px += int(e.sum())
    nan = float("nan")
    return {
        "labelled": total,
        "side_share": sides / total if total else nan,
        "end_share": ends / total if total else nan,
        "side_expected": side_px / pixels if pixels else nan,
        "end_expected": end_px / pixels if pixels else nan,
        "side_rare_share": side_rare / sides if sides else nan,
        "rest_rare_share": rest_rare / (total - sides) if total > sides else nan,
    }


def runs_table(runs: Path, band: int, rare: frozenset[int] = frozenset()) -> pd.DataFrame:
    """One row per active run below ``runs`` (``<method>/<budget>/seed<s>/metrics.json``);
    ``rare``: the class ids :func:`border_counts` counts as rare."""
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
                **border_counts(iter_masks(last), band, rare),
                "miou": record["miou"],
            }
        )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and budget: seed means of the shares, and the mean paired (per seed)
    difference of the side share to random's."""
    keys = ["method", "budget"]
    cols = ["side_share", "end_share", "side_expected", "side_rare_share", "rest_rare_share"]
    out = table.groupby(keys)[[c for c in cols if c in table.columns] + ["miou"]].mean()
    rnd = table[table["method"] == "random"].set_index(["budget", "seed"])["side_share"]
    diff = table.join(rnd.rename("random_side"), on=["budget", "seed"])
    diff["side_vs_random"] = diff["side_share"] - diff["random_side"]
    out["side_vs_random"] = diff.groupby(keys)["side_vs_random"].mean()
    return out.reset_index()


def rare_ids(frequency_csv: Path) -> frozenset[int]:
    """The ids of the classes under 1 % of the evaluated target pixels in a report's
    ``radius_vs_frequency.csv`` (claims.py's rare classes); exits with one line naming the file
    when it is missing or names a class the label set does not have."""
    from halo.data.labels import CITYSCAPES_CLASSES

    if not frequency_csv.is_file():
        sys.exit(f"borders: {frequency_csv}: missing (expected the report's class shares)")
    freq = pd.read_csv(frequency_csv)
    names = list(freq.loc[freq["pixel_share"] < 0.01, "class"])
    unknown = [n for n in names if n not in CITYSCAPES_CLASSES]
    if unknown:
        sys.exit(f"borders: {frequency_csv}: unknown class {unknown[0]!r}")
    return frozenset(CITYSCAPES_CLASSES.index(n) for n in names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, help="DIR/runs/<bench>/<backbone> of an unpacked grid")
    ap.add_argument("--band", type=int, default=16, help="band width in pixels (default 16)")
    ap.add_argument(
        "--rare-from",
        type=Path,
        default=None,
        help="the report's radius_vs_frequency.csv: its classes under 1 %% are the rare ones",
    )
    ap.add_argument("--out", type=Path, required=True, help="the per-run CSV")
    args = ap.parse_args(argv)
    if args.band < 1:
        ap.error("--band: expected >= 1")
    rare = rare_ids(args.rare_from) if args.rare_from else frozenset()
    table = runs_table(args.runs, args.band, rare)
    if table.empty:
        sys.exit(f"borders: {args.runs}: no active runs with label masks")
    write_text(args.out, table.to_csv(index=False, lineterminator="\n"))
    print(summary(table).to_markdown(index=False, floatfmt=".3f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
