#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying `resflow sweep --launcher slurm` and for CI
# (README.md, "Sweeps on Slurm"). Run as root; no systemd needed.
#
#   bash scripts/slurm-local.sh          install (Debian/Ubuntu packages, if missing), configure, start,
#                                        wait until the node is idle. Running it again is fine.
#   bash scripts/slurm-local.sh stop     stop the daemons it started.
#   bash scripts/slurm-local.sh status   print sinfo, or say the cluster is down (exit 1).
#
# The cluster: one node with this machine's CPUs and memory (`slurmd -C`), CPU and memory consumable
# (two trials can share the node), no cgroups (proctrack/linuxproc, task/none), no accounting, requeue
# allowed. Files: /etc/slurm/slurm.conf (only replaced when this script wrote it), state, logs and pid
# files under /var/lib/slurm-local, /var/log/slurm-local and /run/slurm-local.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK='# written by resflow scripts/slurm-local.sh'
STATE=/var/lib/slurm-local
LOGS=/var/log/slurm-local
RUN=/run/slurm-local
MUNGE_RUN=/run/munge

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: $*" >&2; exit 1; }

alive() { # pid file -> running?
  [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_one() { # name pidfile
  if alive "$2"; then
    local pid; pid=$(cat "$2")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$2"
}

cmd=${1:-start}
case "$cmd" in
  stop)
    stop_one slurmd "$RUN/slurmd.pid"
    stop_one slurmctld "$RUN/slurmctld.pid"
    stop_one munged "$MUNGE_RUN/munged.pid"
    exit 0 ;;
  status)
    if command -v sinfo >/dev/null && sinfo >/dev/null 2>&1; then sinfo; exit 0; fi
    echo "slurm-local: the cluster is not up (run: bash scripts/slurm-local.sh)"; exit 1 ;;
  start) ;;
  *) die "unknown command '$cmd' (expected start, stop or status)" ;;
esac

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"
t0=$(date +%s)

# 1. packages
need=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  command -v apt-get >/dev/null || die "apt-get not found: install ${need[*]} with your package manager"
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get install -y -q --no-install-recommends "${need[@]}" > "$LOGS-apt.log" 2>&1; }
  mkdir -p "$(dirname "$LOGS")"
  # daemons must not be started by the packages' scripts: this script starts them itself
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; trap 'rm -f "$policy"' EXIT; fi
  apt_install || { apt-get update -q > /dev/null 2>&1 && apt_install; } || die "apt-get install failed (see $LOGS-apt.log)"
fi

# 2. slurm.conf
if [[ -e $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
  die "$CONF exists and was not written by this script; leaving it alone (move it away to use this script)"
fi
mkdir -p "$STATE/ctld" "$STATE/d" "$LOGS" "$RUN" /etc/slurm
node_line=$(slurmd -C | head -1)
node=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<< "$node_line")
cpus=$(grep -oE 'CPUs=[0-9]+' <<< "$node_line" | cut -d= -f2)
mem=$(grep -oE 'RealMemory=[0-9]+' <<< "$node_line" | cut -d= -f2)
# leave some memory to the system, so the node is not drained for "low RealMemory" when free memory dips
mem=$(( mem > 2048 ? mem - 512 : mem ))
defmem=$(( mem / cpus / 2 > 256 ? mem / cpus / 2 : 256 ))
new_conf=$(cat <<EOF
$MARK
ClusterName=resflow-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$defmem
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
MinJobAge=30
KillWait=10
InactiveLimit=0
SlurmdTimeout=60
MaxArraySize=100001
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
)
changed=0
if [[ ! -e $CONF ]] || [[ "$(cat "$CONF")" != "$new_conf" ]]; then
  printf '%s\n' "$new_conf" > "$CONF"; changed=1; say "wrote $CONF (node $node: $cpus CPUs, ${mem} MiB)"
fi

# 3. munge
if [[ ! -s /etc/munge/munge.key ]]; then
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then mungekey --create --force > /dev/null
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
# a munged already answering (started by this script, or by the system) is kept
if ! alive "$MUNGE_RUN/munged.pid" && ! { munge -n 2>/dev/null | unmunge > /dev/null 2>&1; }; then
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_RUN/munged.pid"
  say "started munged"
fi

# 4. slurmctld and slurmd (restarted when the configuration changed)
if ((changed)); then stop_one slurmd "$RUN/slurmd.pid"; stop_one slurmctld "$RUN/slurmctld.pid"; fi
if ! alive "$RUN/slurmctld.pid"; then slurmctld; say "started slurmctld"; fi
if ! alive "$RUN/slurmd.pid"; then slurmd; say "started slurmd"; fi

# 5. wait for the node
for i in $(seq 1 120); do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mixed|allocated) say "node $node is $state ($(( $(date +%s) - t0 )) s)"; exit 0 ;;
    down*|drain*|fail*) scontrol update nodename="$node" state=resume > /dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
die "node $node did not become idle (state '${state:-none}'); see $LOGS/slurmctld.log and $LOGS/slurmd.log"
