#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying the SLURM presets.
#
#   scripts/local_slurm.sh start   # prints: export SLURM_CONF=<dir>/slurm.conf
#   scripts/local_slurm.sh stop
#
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge); installs
# nothing. Everything (config, munge key and socket, state, logs, pid files) lives in
# $LOCAL_SLURM_DIR (default /tmp/local-slurm); `stop` ends only the daemons whose pid files
# are there. Ports: $LOCAL_SLURM_CTLD_PORT (6817) and $LOCAL_SLURM_SLURMD_PORT (6818).
# There is no accounting store: sacct answers "accounting storage is disabled".
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/local-slurm}
CTLD_PORT=${LOCAL_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${LOCAL_SLURM_SLURMD_PORT:-6818}
DAEMONS=(slurmd slurmctld munged)  # stopped in this order

running() { [[ -f "$DIR/$1.pid" ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

write_config() {
    local cpus mem_mb host
    cpus=$(nproc)
    ((cpus < 2)) && cpus=2  # two tasks at once: the multi-worker test
    # Below the machine's memory, or slurmd finds less than configured and drains the node.
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    host=$(hostname -s)
    cat >"$DIR/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
# The daemons reach munged through this folder's socket; a requeued job may start again
# after cred_expire seconds (default 120).
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.socket,cred_expire=5
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# What works in a container without cgroups or an accounting database:
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1  # a requeued job starts once its BeginTime passes
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
KillWait=30
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    if running slurmctld; then
        echo "export SLURM_CONF=$DIR/slurm.conf"
        return
    fi
    rm -rf "$DIR/state" "$DIR/spool"
    mkdir -p "$DIR/state" "$DIR/spool"
    chmod 700 "$DIR"
    write_config
    if [[ ! -f "$DIR/munge.key" ]]; then  # mungekey came with munge 0.5.14
        mungekey --create --keyfile="$DIR/munge.key" 2>/dev/null ||
            head -c 1024 /dev/urandom >"$DIR/munge.key"
    fi
    chmod 600 "$DIR/munge.key"
    munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" \
        --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed"
    export SLURM_CONF=$DIR/slurm.conf
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 60); do
        if [[ "$(sinfo -h -N -o %t 2>/dev/null)" == idle ]]; then
            echo "export SLURM_CONF=$SLURM_CONF"
            return
        fi
        sleep 0.5
    done
    echo "local SLURM did not become idle in 30 s; sinfo says: $(sinfo -N 2>&1)" >&2
    tail -n 20 "$DIR"/*.log >&2 || true
    stop
    exit 1
}

stop() {
    if running slurmctld; then  # its jobs first: their processes are not the daemons' children
        SLURM_CONF=$DIR/slurm.conf scancel --full --user="$(id -un)" 2>/dev/null || true
    fi
    local name pid
    for name in "${DAEMONS[@]}"; do
        running "$name" || continue
        pid=$(cat "$DIR/$name.pid")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$DIR/$name.pid"
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
