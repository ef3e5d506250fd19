#!/usr/bin/env bash
# A one-node Slurm (Debian 12's slurm-wlm 22.05 + munge) on this machine, to run the SLURM profile
# for real: `tests/test_cluster.py` (pytest -m cluster). Run as root; idempotent (reinstalls
# nothing, rewrites the config, restarts the daemons). No systemd needed: the daemons are started
# directly. Stop them with workflow/slurm/teardown.sh.
#
# The node: partitions `cpu` (default) and `gpu`, a `gpu` GRES of 2 "GPUs" backed by device files
# (slurmd drops a count-only gres line, so File= is required; /dev/null and /dev/zero stand in),
# cores and memory consumable (cons_tres, CR_Core_Memory) and EnforcePartLimits=ALL, so a job
# asking more CPUs, memory or GPUs than the node has is rejected by sbatch at submit instead of
# pending forever. No accounting database: the profile polls job status with squeue, and
# MinJobAge=300 keeps finished jobs listed long enough for it.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "setup-one-node.sh: run as root" >&2; exit 2; }

CONF_DIR=/etc/slurm
NODE=$(hostname -s)
GPUS=${GPUS:-2}
GPU_FILES=${GPU_FILES:-/dev/null,/dev/zero}   # one file per GPU; must count $GPUS
RESERVED_MB=${RESERVED_MB:-2048}              # memory kept back for the OS and the submitting host

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

# --- munge: key (the package makes one; make it if absent), run dir, daemon ----------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge

# --- slurm.conf from what slurmd sees on this machine -------------------------------------------
# `slurmd -C` prints "NodeName=... CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ... RealMemory=N"
HW=$(slurmd -C | head -1)
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(field CPUs); SOCKETS=$(field SocketsPerBoard); CORES=$(field CoresPerSocket)
THREADS=$(field ThreadsPerCore); MEM=$(field RealMemory)
MEM=$(( MEM > RESERVED_MB * 2 ? MEM - RESERVED_MB : MEM ))

install -d -o slurm -g slurm -m 0755 /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/slurm

cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by workflow/slurm/setup-one-node.sh: a one-node test cluster.
ClusterName=rome-test
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
# reject at submit what no node or partition can ever run (instead of pending forever)
EnforcePartLimits=ALL
# finished jobs stay visible to squeue (the profile's status command) for 5 minutes
MinJobAge=300
ReturnToService=2
SlurmdTimeout=300
NodeName=$NODE CPUs=$CPUS Sockets=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEM Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
EOF

cat >"$CONF_DIR/gres.conf" <<EOF
# Written by workflow/slurm/setup-one-node.sh: $GPUS stand-in GPUs (a count-only line is dropped by slurmd)
NodeName=$NODE Name=gpu File=$GPU_FILES
EOF

# --- (re)start the daemons -----------------------------------------------------------------------
"$(dirname "$0")/teardown.sh" >/dev/null 2>&1 || true

runuser -u munge -- /usr/sbin/munged
for _ in $(seq 20); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n </dev/null | unmunge >/dev/null || { echo "setup-one-node.sh: munged does not answer" >&2; exit 1; }

slurmctld -c        # -c: clear the saved state of earlier test jobs
slurmd

for _ in $(seq 60); do
  state=$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | sort -u | head -1 || true)
  if [ "$state" = idle ]; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "setup-one-node.sh: node $NODE is '${state:-unknown}', not idle after 60 s; see /var/log/slurm/" >&2
exit 1
