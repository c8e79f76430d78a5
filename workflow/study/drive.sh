#!/usr/bin/env bash
# The whole study of issue #29, resumable, from a fixed commit in a separate worktree (so that
# nothing committed meanwhile moves a number); run it in the background from that worktree:
#
#   git worktree add /tmp/study2 <commit> && cd /tmp/study2 && uv sync --locked
#   setsid nohup bash workflow/study/drive.sh > /tmp/study2-archives/driver.out 2>&1 &
#
# In order: the grid's parts for the four main methods, the negative-learning block (before the
# source-radius methods: if negative learning changes a verdict it becomes the study's default,
# issue #29 item 4, and those would be run with it: nlcheck.py stops the driver then) and the
# source-radius methods over seeds 0-4
# (workflow/study/grid.py run --seed S --part P); the radius experiments (radius.py, seeds 0-2,
# one step per experiment); the held-out round-rate choice (sweep.py --select 100, one step per
# setting); the ablation block. Every step skips what is done (an archive, a .done mark), so a
# stopped machine costs the step in flight only: everything a later step or the write-up reads is
# small and lands in $ARCHIVES or $OUT (copy them back, and the driver goes on where it was).
# After a part is archived, the round-1 and last-round models of its main methods are scored
# in-domain (`radius.py --only rounds-source`: `halo evaluate --on source`) into
# $ARCHIVES/rounds-source/, then every checkpoint of the part goes, and its acquisition panels
# are kept beside the archive: the VM's disk would not hold the grid's models, and a machine
# that stops would lose them anyway. Once a radius experiment or a rate setting is done, its
# checkpoints go too (their evaluations, which the tables are made of, stay). The rounds rows and
# the rounds-source rows are made at the end from the archives (findings: finalize.sh). Each
# start and end goes to $ARCHIVES/times.log (findings.py's cost section reads a copy of it).
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

in_domain() {  # $1 seed, $2 part: the round-1 and last models of the runs still there, in-domain
  # (radius.py --only rounds-source: which methods, which rounds, the command; a score already in
  # $ARCHIVES/rounds-source is not made again, a part whose models are gone has nothing to score)
  $PY workflow/study/radius.py --root "$ARCHIVES" --only rounds-source --grid-runs "$RUNS" \
    --out "$ARCHIVES/logs/rounds-source.csv" --jobs 2 >> "$ARCHIVES/seed$1-$2.log" 2>&1
}

prune() {  # $1 seed, $2 part: every checkpoint of the part's runs
  local methods=$2 f
  case $2 in
    extra1) methods="random-nl entropy-nl ripu-nl halo-nl" ;;
    extra2) methods="radius halo-nohfr featnorm" ;;
  esac
  for m in $methods; do
    for f in "$RUNS/$m"/*/"seed$1"/round*/*.pt; do
      [ -f "$f" ] && rm -f "$f"
    done
  done
  return 0
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
    in_domain "$s" "$1" || { log "seed $s part $1 in-domain scores failed"; exit 1; }
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
for p in random entropy ripu halo extra1; do part $p; done
# does negative learning change a verdict? then it becomes the default: stop here (exit 3)
step nl-check $PY workflow/study/nlcheck.py "$ARCHIVES"
for p in halo-src halo-src-inv; do part $p; done
for e in regime training head frequency labels; do
  step "radius-$e" $PY workflow/study/radius.py --root "$RADIUS_ROOT" --seeds 0 1 2 --only "$e" \
    --out "$OUT/radius_experiments.csv" --jobs 2
done
drop_models "$RADIUS_ROOT"
for setting in lr3e-4=0.0003 lr1e-3=0.001 lr3e-3=0.003 lr1e-2=0.01 lr3e-2=0.03; do
  name=${setting%%=*}
  step "select-$name" $PY workflow/study/sweep.py --grid configs/sweeps/round_lr.yaml \
    --setting "$name" "train.round_lr=${setting#*=}" --select 100 --root "$SELECT_ROOT" \
    --out "$OUT/round_lr_select/$name" --cores 2
  drop_models "$SELECT_ROOT/$name"
done
part extra2
log "grid done"
