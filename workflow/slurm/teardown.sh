#!/usr/bin/env bash
# Stops what workflow/slurm/setup-one-node.sh started: slurmd, slurmctld, munged (by pid file).
set -uo pipefail

[ "$(id -u)" -eq 0 ] || { echo "teardown.sh: run as root" >&2; exit 2; }

stop() {  # stop <name> <pid file>: TERM, then wait up to 10 s for it to go
  local name=$1 pidfile=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "teardown.sh: $name ($pid) still running" >&2; return 1; }
    echo "stopped $name ($pid)"
  fi
  rm -f "$pidfile"
}

rc=0
stop slurmd /run/slurm/slurmd.pid || rc=1
stop slurmctld /run/slurm/slurmctld.pid || rc=1
stop munged /run/munge/munged.pid || rc=1
exit $rc
