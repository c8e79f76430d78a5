#!/usr/bin/env bash
# Stop the cluster started by start.sh DIR: cancel jobs, then slurmd, slurmctld, slurmdbd, mariadbd,
# munged (by the pids in DIR/run, checked against the process name). `stop.sh DIR --rm` also
# deletes DIR. Safe to run twice / on a half-started cluster.
set -uo pipefail
DIR=${1:?usage: stop.sh DIR [--rm]}
RM=${2:-}
[ -d "$DIR" ] || exit 0
DIR=$(cd "$DIR" && pwd)
export SLURM_CONF=$DIR/etc/slurm.conf

alive() { # alive PID NAME: pid exists and its comm starts with NAME (guards against pid reuse)
    [ -n "$1" ] && [ -r "/proc/$1/comm" ] && case "$(cat "/proc/$1/comm")" in "$2"*) true;; *) false;; esac
}
stop_pidfile() { # stop_pidfile NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local name=$1 f=$DIR/run/$1.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 40); do alive "$pid" "$name" || break; sleep 0.25; done
        alive "$pid" "$name" && { echo "stop.sh: SIGKILL $name ($pid)" >&2; kill -KILL "$pid" 2>/dev/null; }
    fi
    rm -f "$f"
}

# cancel jobs so that no slurmstepd / job processes outlive the daemons
if [ -f "$DIR/run/slurmctld.pid" ] && alive "$(cat "$DIR/run/slurmctld.pid")" slurmctld; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null)
    if [ -n "$jobs" ]; then
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 20); do [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.5; done
    fi
fi
# slurmd and slurmctld each take 1-3 s to exit: stop them concurrently, then slurmdbd
stop_pidfile slurmd & stop_pidfile slurmctld & wait
stop_pidfile slurmdbd
if [ -S "$DIR/run/mysql.sock" ]; then
    timeout 30 mariadb-admin --no-defaults -S "$DIR/run/mysql.sock" -uroot shutdown 2>/dev/null
fi
stop_pidfile mariadbd
stop_pidfile munged
if [ "$RM" = "--rm" ]; then
    case "$DIR" in /|/tmp|/root|/home) echo "stop.sh: refusing to rm $DIR" >&2; exit 1;; esac
    rm -rf "$DIR"
fi
exit 0
