#!/usr/bin/env bash
# A single-node Slurm on this machine, from Debian's packages (slurmctld, slurmd, munge), for
# the test of deploy/slurm/submit.sh (tests/shards/slurm.rs) and for trying the scripts by hand.
#
#   deploy/slurm/local-cluster.sh install      apt-get the packages (root; once per machine)
#   deploy/slurm/local-cluster.sh start DIR    start munged, slurmctld and slurmd with DIR/slurm.conf
#                                              (prints `export SLURM_CONF=DIR/slurm.conf`)
#   deploy/slurm/local-cluster.sh stop DIR     stop the daemons started for DIR (by their pid files)
set -euo pipefail

cmd="${1:-}"
case "$cmd" in
install)
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    ;;
start)
    D="$(realpath -m "${2:?usage: $0 start DIR}")"
    mkdir -p "$D/state" "$D/spool" "$D/log"
    mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        /usr/sbin/munged --force
    fi
    munge -n | unmunge >/dev/null
    export SLURM_CONF="$D/slurm.conf"
    cpus="$(nproc)"
    cat >"$SLURM_CONF" <<CONF
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=localhost CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    slurmctld -i
    slurmd
    for _ in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "export SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        sleep 1
    done
    echo "slurm did not come up; see $D/log" >&2
    exit 1
    ;;
stop)
    D="$(realpath -m "${2:?usage: $0 stop DIR}")"
    for pid in "$D/slurmd.pid" "$D/slurmctld.pid"; do
        if [ -s "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; fi
    done
    ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
