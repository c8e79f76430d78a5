#!/usr/bin/env bash
# The whole study of issue #29, resumable, from a fixed commit in a separate worktree (so that
# nothing committed meanwhile moves a number); run it in the background from that worktree:
#
#   git worktree add /tmp/study2 <commit> && cd /tmp/study2 && uv sync --locked
#   setsid nohup bash workflow/study/drive.sh > /tmp/study2-archives/driver.out 2>&1 &
#
# In order: the grid's parts for the four main methods, the negative-learning block (before the
# source-radius methods: if negative learning changes a verdict it becomes the study's default,
# issue #29 item 4, and those would be run with it) and the source-radius methods over seeds 0-4
# (workflow/study/grid.py run --seed S --part P); the radius experiments (radius.py, seeds 0-2,
# with the grid's rounds); the held-out round-rate choice (sweep.py --select 100); the ablation
# block; the rounds rows once more. Every step skips what is done (an archive, a .done mark), so
# a stopped machine costs the step in flight only.
# After a part is archived its round checkpoints are deleted but round 1's and the last round's
# model of the six main methods (radius.py scores those in-domain), and its acquisition panels
# are kept beside the archive. Once the radius experiments and the rate choice are done, their
# checkpoints go too (their evaluations, which the tables are made of, stay): the VM's disk holds
# the grid's kept models, or those, not all at once. Each start and end goes to
# $ARCHIVES/times.log (findings.py's cost section reads a copy of it).
set -u
ARCHIVES=${ARCHIVES:-/tmp/study2-archives}
RADIUS_ROOT=${RADIUS_ROOT:-/tmp/study3-root}
SELECT_ROOT=${SELECT_ROOT:-/tmp/study3-sweep}
OUT=${OUT:-/tmp/study3-out}
SEEDS=${SEEDS:-"0 1 2 3 4"}
RUNS=runs/synth-gta2cs/deeplabv3plus-r18
PY=${PY:-"uv run --no-sync python"}  # (the tests put a recorder here)
mkdir -p "$ARCHIVES" "$OUT"
log() { echo "$(date -Is) $* $(git rev-parse --short HEAD)" >> "$ARCHIVES/times.log"; }

prune() {  # $1 seed, $2 part
  local keep=0 methods=$2 d f r
  case $2 in
    random|entropy|ripu|halo|halo-src|halo-src-inv) keep=1 ;;
    extra1) methods="random-nl entropy-nl ripu-nl halo-nl" ;;
    extra2) methods="radius halo-nohfr featnorm" ;;
  esac
  for m in $methods; do
    for d in "$RUNS/$m"/*/"seed$1"/round*; do
      [ -d "$d" ] || continue
      r=${d##*/round}
      for f in "$d"/*.pt; do
        [ -f "$f" ] || continue
        [ $keep = 1 ] && [ "${f##*/}" = model.pt ] && { [ "$r" = 1 ] || [ "$r" = 5 ]; } && continue
        rm -f "$f"
      done
    done
  done
}

part() {  # every seed of one part
  local s out rc
  for s in $SEEDS; do
    out=$ARCHIVES/seed$s-$1.tar.xz
    [ -f "$out" ] && continue
    log "seed $s part $1 start"
    $PY workflow/study/grid.py run --seed "$s" --part "$1" --out "$out" --cores 2 \
      --rerun-incomplete >> "$ARCHIVES/seed$s-$1.log" 2>&1
    rc=$?
    log "seed $s part $1 end rc=$rc"
    [ $rc = 0 ] || exit $rc
    mkdir -p "$ARCHIVES/panels/seed$s-$1"
    cp results/synth-gta2cs/acquisition/*.png "$ARCHIVES/panels/seed$s-$1/" 2>/dev/null
    prune "$s" "$1"
  done
}

drop_models() {  # a finished step's root: its checkpoints go, its evaluations stay
  [ -d "$1" ] && find "$1" -name '*.pt' -type f -delete
  return 0
}

step() {  # $1 name, then the command; skipped once $ARCHIVES/$1.done exists
  local name=$1 rc
  shift
  [ -f "$ARCHIVES/$name.done" ] && return 0
  log "$name start"
  "$@" >> "$ARCHIVES/$name.log" 2>&1
  rc=$?
  log "$name end rc=$rc"
  [ $rc = 0 ] || exit $rc
  touch "$ARCHIVES/$name.done"
}

# a machine stopped mid-part leaves Snakemake's locks: cleared when no Snakemake runs here
pgrep -f "snakemake .*--directory $PWD( |$)" > /dev/null || rm -f .snakemake/locks/*.lock
for p in random entropy ripu halo extra1 halo-src halo-src-inv; do part $p; done
step radius $PY workflow/study/radius.py --root "$RADIUS_ROOT" --seeds 0 1 2 \
  --grid-runs "$PWD/$RUNS" --out "$OUT/radius_experiments.csv" --jobs 2
drop_models "$RADIUS_ROOT"
step select $PY workflow/study/sweep.py --grid configs/sweeps/round_lr.yaml \
  --setting lr3e-4 train.round_lr=0.0003 --setting lr1e-3 train.round_lr=0.001 \
  --setting lr3e-3 train.round_lr=0.003 --setting lr1e-2 train.round_lr=0.01 \
  --setting lr3e-2 train.round_lr=0.03 --share-source --select 100 \
  --root "$SELECT_ROOT" --out "$OUT/round_lr_select" --cores 2
drop_models "$SELECT_ROOT"
part extra2
step rounds $PY workflow/study/radius.py --root "$RADIUS_ROOT" --seeds 0 1 2 --only rounds \
  --grid-runs "$PWD/$RUNS" --out "$OUT/radius_experiments.csv" --jobs 2
log "grid done"
