#!/usr/bin/env bash
# The study's grid between its machine and the checkout (issue #29; docs/study/grid2/README.md).
# Run from the main checkout:
#
#   bash workflow/study/resume.sh start     # worktree, environment, state from grid2/, driver
#   bash workflow/study/resume.sh collect   # what the driver kept, into docs/study/grid2/
#
# start: makes the grid's worktree $WORKTREE from the branch study2-grid if it is not there,
# `uv sync --locked` in it, copies the archives, times.log, the .done marks and rounds-source/ of
# docs/study/grid2 into $ARCHIVES and its out/ into $OUT (what is there already is kept), and
# starts drive.sh in the background (unless it runs already; NO_START=1: everything but that).
# collect: copies what the driver kept (archives, times.log, .done marks, rounds-source/, out/,
# and seed 0's HALO acquisition panels) into docs/study/grid2 and names what is new; it
# commits nothing.
set -euo pipefail
WORKTREE=${WORKTREE:-/tmp/study2}
ARCHIVES=${ARCHIVES:-/tmp/study2-archives}
OUT=${OUT:-/tmp/study3-out}
G=docs/study/grid2
[ -d "$G" ] || { echo "resume: $G: not found (run from the main checkout)" >&2; exit 1; }

start() {
  if [ ! -e "$WORKTREE" ]; then
    git worktree prune
    git worktree add "$WORKTREE" study2-grid
  fi
  (cd "$WORKTREE" && uv sync --locked -q)
  mkdir -p "$ARCHIVES" "$OUT"
  cp -n "$G"/seed*.tar.xz "$ARCHIVES"/ 2>/dev/null || true
  cp -n "$G"/*.done "$ARCHIVES"/ 2>/dev/null || true
  [ -f "$ARCHIVES/times.log" ] || cp "$G/times.log" "$ARCHIVES/times.log"
  [ -d "$G/rounds-source" ] && cp -rn "$G/rounds-source" "$ARCHIVES"/
  [ -d "$G/out" ] && cp -rn "$G/out/." "$OUT"/
  if pgrep -f "bash workflow/study/drive.sh" > /dev/null; then
    echo "resume: the driver runs already"
  elif [ "${NO_START:-0}" = 1 ]; then
    echo "resume: $WORKTREE ready, state in $ARCHIVES and $OUT (not started: NO_START=1)"
  else
    echo "$(date -Is) resumed from $G (state kept on this machine, the rest copied back) $(git -C "$WORKTREE" rev-parse --short HEAD)" \
      >> "$ARCHIVES/times.log"
    (cd "$WORKTREE" && ARCHIVES=$ARCHIVES OUT=$OUT setsid nohup bash workflow/study/drive.sh \
      > "$ARCHIVES/driver.out" 2>&1 &)
    echo "resume: the driver started in $WORKTREE (tail $ARCHIVES/times.log)"
  fi
}

collect() {
  local a b new=()
  for a in "$ARCHIVES"/seed*.tar.xz "$ARCHIVES"/*.done; do
    [ -f "$a" ] || continue
    b=${a##*/}
    [ -f "$G/$b" ] && continue
    cp "$a" "$G/.$b.tmp" && mv "$G/.$b.tmp" "$G/$b"
    new+=("$b")
  done
  for a in "$ARCHIVES"/panels/seed0-halo*; do  # one seed's acquisition panels (the borders)
    [ -d "$a" ] && [ ! -d "$G/panels/${a##*/}" ] && mkdir -p "$G/panels" && cp -r "$a" "$G/panels/"
  done
  [ -d "$ARCHIVES/rounds-source" ] && cp -ru "$ARCHIVES/rounds-source" "$G"/
  if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    mkdir -p "$G/out" && cp -ru "$OUT/." "$G/out/" && find "$G/out" -name '.tmp-*' -delete
  fi
  [ -f "$ARCHIVES/times.log" ] && cp "$ARCHIVES/times.log" "$G/times.log"
  echo "${new[*]:-}"
}

case "${1:-}" in
  start) start ;;
  collect) collect ;;
  *) echo "usage: resume.sh start|collect" >&2; exit 2 ;;
esac
