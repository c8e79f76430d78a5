#!/usr/bin/env bash
# The study's tables, figures and write-up blocks from the committed grid (issue #29), once
# docs/study/grid2 holds everything the driver (drive.sh) made: its log ends with "grid done".
# Nothing is trained: the archives hold every run's evaluations, grid2/rounds-source the
# in-domain scores of the round models, grid2/out the radius experiments and the held-out
# rate choice. Run from the checkout:
#
#   bash workflow/study/finalize.sh [SCRATCH]
#
# SCRATCH (default: a new temporary folder) gets the unpacked runs. PARTIAL=1 skips the "grid
# done" check: a dry run on an unfinished grid, whose tables are not the study's.
set -euo pipefail
G=docs/study/grid2
S=${1:-$(mktemp -d)}
PY=${PY:-"uv run --no-sync python"}
if [ "${PARTIAL:-0}" != 1 ] && ! grep -q " grid done " "$G/times.log"; then
  echo "finalize: $G/times.log: no 'grid done' line (the driver has not finished)" >&2
  exit 1
fi
[ -e "$S/unpack" ] && { echo "finalize: $S/unpack: exists (give a new folder)" >&2; exit 1; }
mkdir -p "$S/radius"
RUNS=$S/unpack/runs/synth-gta2cs/deeplabv3plus-r18
$PY workflow/study/grid.py gather "$G"/seed*.tar.xz --out docs/study \
  --figures docs/figures/study --unpack "$S/unpack"
# the radius experiments' rows, then the rounds and the in-domain rows from the grid's runs
[ -f "$G/out/radius_experiments.csv" ] && cp "$G/out/radius_experiments.csv" docs/study/
[ -d "$G/rounds-source" ] && cp -r "$G/rounds-source" "$S/radius/"
$PY workflow/study/radius.py --root "$S/radius" --seeds 0 1 2 --only rounds rounds-source \
  --grid-runs "$RUNS" --out docs/study/radius_experiments.csv > /dev/null
# the held-out rate choice: the settings, run one at a time, joined in the order of their rate
if [ -d "$G/out/round_lr_select" ]; then
  settings=$(ls "$G/out/round_lr_select" | sed 's/^lr//' | sort -g | sed "s#^#$G/out/round_lr_select/lr#")
  # shellcheck disable=SC2086
  $PY workflow/study/sweep.py --concat $settings --out docs/study/round_lr_select
fi
$PY workflow/study/borders.py "$RUNS" --rare-from docs/study/radius_vs_frequency.csv \
  --out docs/study/borders.csv > /dev/null
$PY workflow/study/figures.py --grid-runs "$RUNS" --experiments docs/study/radius_experiments.csv \
  --out docs/figures/study
$PY workflow/study/claims.py docs/study > /dev/null
$PY workflow/study/findings.py docs/study --refresh README.md docs/study.md docs/study/README.md
echo "finalize: tables in docs/study, figures in docs/figures/study, runs in $S/unpack"
