#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine for tests/test_slurm.py.
#
# Idempotent: does nothing when a controller already answers and the node is up.
# Otherwise installs Debian's slurm-wlm and munge (apt-get, as root), writes
# /etc/slurm/slurm.conf and gres.conf for this host (one node, all its CPUs,
# 80% of its memory, one fake GPU: Gres=gpu:1 backed by /dev/null), starts
# munged, slurmctld and slurmd, and waits until the node is idle.
#
# Accounting is off (no slurmdbd), so sacct does not work: Snakemake's SLURM
# plugin must be told --slurm-status-command squeue --slurm-no-account.
# Every finished job is recorded with its resources (TRES, GRES) in
# /var/log/slurm/jobcomp.log (jobcomp/filetxt), and stays visible to
# `scontrol show job` for an hour (MinJobAge).
#
# Exit status 0 when the cluster is up; non-zero, with the reason on stderr,
# when it cannot be started (the SLURM test then skips with that reason).
set -euo pipefail

log() { echo "setup-slurm: $*" >&2; }
. "$(dirname "$0")/apt-install.sh"

node_state() { timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

cluster_up() {
    command -v scontrol >/dev/null 2>&1 || return 1
    timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
    case "$(node_state)" in idle* | mixed* | allocated* | completing*) return 0 ;; *) return 1 ;; esac
}

if cluster_up; then
    log "a SLURM cluster is already running ($(sinfo -h -N -o '%N %T %G'))"
    exit 0
fi

require_root "install and start SLURM" || exit 1

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    apt_install slurm-wlm munge
fi

# ---- munge ------------------------------------------------------------------
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile /etc/munge/munge.key --force >&2
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged --force >&2 || munged --force >&2
    else
        munged --force >&2
    fi
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
fi
munge -n | unmunge >/dev/null || { log "munge does not work"; exit 1; }

# ---- slurm.conf / gres.conf ---------------------------------------------------
host=$(hostname -s)
cpus=$(nproc --all)
mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<EOF
# Written by saesim .ci/setup-slurm.sh: a single-node test cluster.
ClusterName=saesim
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
ReturnToService=2
SlurmdTimeout=300
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
cat >/etc/slurm/gres.conf <<EOF
NodeName=${host} Name=gpu File=/dev/null
EOF

# ---- daemons ------------------------------------------------------------------
# (re)start both daemons so that they read the configuration just written
for daemon in slurmd slurmctld; do
    if pid=$(pgrep -x "$daemon"); then
        log "stopping a stale $daemon ($pid)"
        kill $pid 2>/dev/null || true
        sleep 1
    fi
done
log "starting slurmctld and slurmd"
slurmctld >&2
slurmd >&2

for _ in $(seq 1 60); do
    if ! pgrep -x slurmctld >/dev/null || ! pgrep -x slurmd >/dev/null; then
        log "a SLURM daemon exited during start-up"
        break
    fi
    state=$(node_state || true)
    case "$state" in
        idle* | mixed* | allocated* | completing*) break ;;
        down* | drain* | fail*) scontrol update NodeName="${host}" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
done

if cluster_up; then
    log "SLURM is up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G')"
    exit 0
fi
log "SLURM did not come up (node state: '$(node_state || true)'); see /var/log/slurm/slurmctld.log and slurmd.log"
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 2>/dev/null || true
exit 1
