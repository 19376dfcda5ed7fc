#!/usr/bin/env bash
# A real single-node SLURM on this machine (slurmctld + slurmd + munged), for tests/test_slurm.py.
#
#   tests/workflow/cluster/start-slurm.sh          # install if missing, configure, start, wait until idle
#   tests/workflow/cluster/start-slurm.sh stop     # stop the daemons this script started (and only those)
#
# Idempotent: daemons already running are left alone and not recorded as ours. Needs root (and, on
# first use, Debian's apt). The cluster has one node named `hostname -s`, one default partition
# ($LASERFLOW_TEST_PARTITION, default "laserflow"), no GPUs and no accounting database, so `sacct`
# does not work: the executor plugin must query job states with `squeue`, which keeps finished jobs
# for MinJobAge seconds.
set -euo pipefail

STATE_DIR=/run/laserflow-slurm # pid files of the daemons this script started
CONF=/etc/slurm/slurm.conf
MARK="# Written by laserflow tests/workflow/cluster/start-slurm.sh; rewritten on every start."
PARTITION=${LASERFLOW_TEST_PARTITION:-laserflow}
NODE=$(hostname -s)
LOG_DIR=/var/log/slurm

die() {
    echo "start-slurm: error: $*" >&2
    exit 1
}

alive() { # pid name: is pid a live process called name?
    [[ -n $1 && -r /proc/$1/comm && $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]]
}

pid_of() { # pid file -> pid (empty if none)
    [[ -r $1 ]] && tr -dc '0-9' <"$1" || true
}

record() { # name pid file: remember that we started this daemon
    mkdir -p "$STATE_DIR"
    local pid
    for _ in $(seq 50); do
        pid=$(pid_of "$2")
        alive "$pid" "$1" && {
            echo "$pid" >"$STATE_DIR/$1.pid"
            return 0
        }
        sleep 0.1
    done
    die "$1 did not start; see ${3:-its log}"
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        pid=$(pid_of "$STATE_DIR/$name.pid")
        if alive "$pid" "$name"; then
            kill "$pid"
            for _ in $(seq 100); do
                alive "$pid" "$name" || break
                sleep 0.1
            done
            if alive "$pid" "$name"; then
                kill -9 "$pid"
            fi
            echo "start-slurm: stopped $name ($pid)"
        fi
        rm -f "$STATE_DIR/$name.pid"
    done
    # With a configuration but no controller, SLURM's tools wait ~10 s before failing, and the
    # executor plugin runs `scontrol show config` whenever Snakemake loads it (every run, every
    # job): remove our configuration once no controller runs, so they fail at once.
    if ! pgrep -x slurmctld >/dev/null && [[ -e $CONF ]] && grep -qxF "$MARK" "$CONF"; then
        rm -f "$CONF"
    fi
}

install_packages() {
    local missing=()
    for tool in munged slurmctld slurmd sinfo sbatch squeue scontrol; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install slurm-wlm and munge"
    echo "start-slurm: installing slurm-wlm and munge (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 700 /etc/munge
        head -c 1024 /dev/urandom >/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0 # a munged is already running
    fi
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
    record munged /run/munge/munged.pid /var/log/munge/munged.log
    munge -n | unmunge >/dev/null || die "munged does not answer; see /var/log/munge/munged.log"
}

write_conf() {
    if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to overwrite a real cluster's configuration"
    fi
    local mem_mb
    mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024)) # leave 1 GiB to the OS
    install -d "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
    cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=laserflow
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue is the only status source without accounting: keep finished jobs visible for an hour.
MinJobAge=3600
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -e $CONF ]] && cmp -s "$CONF" "$CONF.tmp"; then
        rm "$CONF.tmp"
        return 1 # unchanged
    fi
    mv "$CONF.tmp" "$CONF"
    return 0
}

node_state() {
    sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n1 || true
}

start() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts system daemons)"
    install_packages
    start_munge
    local changed=0 pid
    write_conf && changed=1
    if [[ $changed -eq 1 ]] && scontrol ping >/dev/null 2>&1; then
        echo "start-slurm: configuration changed; restarting the daemons this script started"
        stop
        start_munge
    fi

    if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
        slurmctld -c # fresh state: a test cluster keeps no jobs across restarts
        record slurmctld /run/slurmctld.pid "$LOG_DIR/slurmctld.log"
    fi
    pid=$(pid_of /run/slurmd.pid)
    if ! alive "$pid" slurmd; then
        slurmd
        record slurmd /run/slurmd.pid "$LOG_DIR/slurmd.log"
    fi

    local state=""
    for _ in $(seq 120); do
        state=$(node_state)
        case $state in
        idle | mix | alloc) break ;;
        down* | drain* | drng* | fail*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
        esac
        sleep 0.5
    done
    case $state in
    idle | mix | alloc) ;;
    *)
        tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
        die "node $NODE is '${state:-unknown}', not idle, after 60 s"
        ;;
    esac
    sinfo
}

case ${1:-start} in
start) start ;;
stop) stop ;;
*) die "usage: $0 [start|stop]" ;;
esac
