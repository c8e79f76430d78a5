#!/usr/bin/env bash
# Bring up a real single-node SLURM 22.05 cluster (munged + MariaDB + slurmdbd + slurmctld +
# slurmd) without systemd, as root, with ALL state/conf/logs/spool under one folder.
#
#   start.sh DIR              (DIR is wiped and recreated)
#
# On success: prints the partition name (and only that) on stdout, exits 0 once `sinfo` shows
# the node idle and `sacct` answers. Progress goes to stderr. Then use the cluster with
#   . DIR/env.sh      # exports SLURM_CONF and puts DIR/bin (client shims) first on PATH
# Stop it with stop.sh DIR.
#
# Knobs (environment): SLURM_PARTITION (debug), SLURM_ACCOUNT (ci), SLURM_CLUSTER (ci),
#   SLURMCTLD_PORT (6817), SLURMD_PORT (6818), SLURMDBD_PORT (6819), MYSQL_PORT (3307),
#   SLURM_EXTRA_USERS (space-separated users to add to the account besides root and $(id -un)),
#   START_TIMEOUT (seconds per wait step, 60),
#   SLURM_ACCOUNTING=slurmdbd (default: MariaDB + slurmdbd, sacct works) or none (no MariaDB and no
#   slurmdbd: ~5 s faster, but sacct/sacctmgr/sshare fail; the snakemake plugin then needs
#   --slurm-status-command squeue --slurm-no-account).
# Needs (Debian 12): apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server
set -euo pipefail

DIR=${1:?usage: start.sh DIR}
PARTITION=${SLURM_PARTITION:-debug}
ACCOUNT=${SLURM_ACCOUNT:-ci}
CLUSTER=${SLURM_CLUSTER:-ci}
CTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
DBD_PORT=${SLURMDBD_PORT:-6819}
MYSQL_PORT=${MYSQL_PORT:-3307}
TIMEOUT=${START_TIMEOUT:-60}
ACCOUNTING=${SLURM_ACCOUNTING:-slurmdbd}
case "$ACCOUNTING" in slurmdbd|none) ;; *) echo "SLURM_ACCOUNTING must be slurmdbd or none" >&2; exit 2;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$(date +%s)

log() { echo "[start.sh +$(($(date +%s) - T0))s] $*" >&2; }
die() {
    log "ERROR: $*"
    for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }; done
    exit 1
}
# wait_for DESCRIPTION COMMAND...: retry COMMAND every 0.5 s up to $TIMEOUT s
wait_for() {
    local what=$1; shift
    local n=$((TIMEOUT * 2))
    until "$@" >/dev/null 2>&1; do
        n=$((n - 1)); [ "$n" -gt 0 ] || die "timed out waiting for $what"
        sleep 0.5
    done
    log "$what: ok"
}

[ "$(id -u)" = 0 ] || die "must run as root"
NEED="munged slurmctld slurmd sbatch srun sinfo scontrol"
[ "$ACCOUNTING" = slurmdbd ] && NEED="$NEED mariadbd mariadb-install-db mariadb mariadb-admin slurmdbd sacct sacctmgr"
for b in $NEED; do
    command -v "$b" >/dev/null || die "$b not found; apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
done
DIR=$(mkdir -p "$DIR" && cd "$DIR" && pwd)   # absolute
case "$DIR" in /|/tmp|/root|/home) die "refusing to wipe $DIR";; esac

# --- from scratch: stop whatever a previous start.sh left in DIR, then wipe it -----------------
if [ -d "$DIR/run" ]; then "$HERE/stop.sh" "$DIR" >&2 || true; fi
find "$DIR" -mindepth 1 -delete
mkdir -p "$DIR"/{etc,run,log,spool/slurmctld,spool/slurmd,mysql,bin}
chmod 700 "$DIR/etc"; chmod 755 "$DIR" "$DIR/run"   # munged wants its socket dir traversable

HOST=$(hostname -s)
# real CPU topology + memory, as slurmd sees them (first line of `slurmd -C`)
NODE_HW=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
log "node $HOST: $NODE_HW"

# --- munge ----------------------------------------------------------------------------------
mungekey -c -k "$DIR/etc/munge.key" 2>/dev/null || dd if=/dev/urandom of="$DIR/etc/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/etc/munge.key"
MUNGE_SOCK=$DIR/run/munge.sock
munged --force --socket="$MUNGE_SOCK" --key-file="$DIR/etc/munge.key" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/run/munged.seed" || die "munged failed"
wait_for munged sh -c "munge -S '$MUNGE_SOCK' -n | unmunge -S '$MUNGE_SOCK'"

if [ "$ACCOUNTING" = slurmdbd ]; then
# --- MariaDB (started directly, datadir under DIR, TCP on 127.0.0.1:$MYSQL_PORT) --------------
MYSQL_SOCK=$DIR/run/mysql.sock
mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
setsid mariadbd --no-defaults --user=root --datadir="$DIR/mysql" --socket="$MYSQL_SOCK" \
    --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$DIR/run/mariadbd.pid" \
    --log-error="$DIR/log/mariadbd.log" --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
wait_for mariadbd mariadb-admin --no-defaults -S "$MYSQL_SOCK" -uroot ping
mariadb --no-defaults -S "$MYSQL_SOCK" -uroot -e "
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
  FLUSH PRIVILEGES;" || die "creating the slurm DB user failed"
fi

# --- configs ----------------------------------------------------------------------------------
cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/etc/slurmdbd.conf"   # slurmdbd refuses a world-readable slurmdbd.conf

if [ "$ACCOUNTING" = slurmdbd ]; then
    # for the slurmdbd connection the munge socket is taken from AccountingStoragePass, not AuthInfo
    ACCT_CONF="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCK
AccountingStorageEnforce=associations"
else
    ACCT_CONF="AccountingStorageType=accounting_storage/none"
fi
cat >"$DIR/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$DIR/spool/slurmctld
SlurmdSpoolDir=$DIR/spool/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
$ACCT_CONF
NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# Client shims: snakemake-executor-plugin-slurm-jobstep strips every SLURM_* variable (SLURM_CONF
# included) from the environment of the `srun` it runs inside the job, so srun would look for
# /etc/slurm/slurm.conf. The shims default SLURM_CONF to this cluster's config.
for c in sbatch srun salloc sattach sacct sacctmgr squeue scontrol sinfo sshare scancel sstat sprio sreport sdiag; do
    real=$(command -v "$c" 2>/dev/null) || continue
    printf '#!/bin/sh\nSLURM_CONF="${SLURM_CONF:-%s}" exec %s "$@"\n' "$DIR/etc/slurm.conf" "$real" >"$DIR/bin/$c"
    chmod 755 "$DIR/bin/$c"
done
cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$DIR/etc/slurm.conf
case ":\$PATH:" in *":$DIR/bin:"*) ;; *) export PATH=$DIR/bin:\$PATH;; esac
EOF
export SLURM_CONF=$DIR/etc/slurm.conf
export PATH=$DIR/bin:$PATH

# --- slurmdbd + associations ------------------------------------------------------------------
if [ "$ACCOUNTING" = slurmdbd ]; then
slurmdbd || die "slurmdbd failed"   # finds slurmdbd.conf next to $SLURM_CONF
wait_for slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster "$CLUSTER" >/dev/null || true
sacctmgr -i add account "$ACCOUNT" Description="$ACCOUNT" Organization="$ACCOUNT" >/dev/null || true
USERS=$(printf '%s\n' root "$(id -un)" ${SLURM_EXTRA_USERS:-} | sort -u)
for u in $USERS; do
    sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null || true
done
sacctmgr -n -P list assoc account="$ACCOUNT" format=user | grep -qx root || die "association root/$ACCOUNT missing"
fi

# --- slurmctld + slurmd -----------------------------------------------------------------------
slurmctld || die "slurmctld failed"
wait_for slurmctld scontrol ping
slurmd || die "slurmd failed"
wait_for "node $HOST idle" sh -c "sinfo -h -n '$HOST' -o %T | grep -qx idle"
[ "$ACCOUNTING" = slurmdbd ] && wait_for sacct sacct -n -X -a
log "cluster up in $(($(date +%s) - T0))s; use: . $DIR/env.sh"
echo "$PARTITION"
