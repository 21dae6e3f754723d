#!/usr/bin/env bash
# Launches a Tessera cluster with mpirun: rank 0 the scheduler, ranks
# 1..S the servers (server rank = MPI rank - 1), ranks S+1..S+W the workers
# (worker rank = MPI rank - 1 - S). MPI only hands every rank the
# scheduler's address and the cluster token (tools/cli/mpi_bootstrap.h);
# the data plane is ZeroMQ. See docs/deploy.md ("mpirun").
#
# Usage:
#   tessera_mpirun.sh --servers S --workers W [options] -- train JOB.yaml [--set k=v ...]
#   tessera_mpirun.sh --servers S --workers W [options] -- local --program smoke
#
# Options:
#   --servers S         parameter servers (required)
#   --workers W         workers (required)
#   --hostfile FILE     Open MPI hostfile (hostfile.example); without it, this machine
#   --interface NAME    every rank binds to and advertises its own IPv4 address on
#                       NAME (e.g. eth0); MPI's TCP traffic uses it too. Without it,
#                       one host: 127.0.0.1; several: each host's name
#   --oversubscribe     more ranks than cores (one machine, tests)
#   --tessera PATH      the tessera binary on every host (default: tessera in PATH)
#   --mpirun PATH       default: mpirun in PATH
#   --dry-run           print the mpirun command instead of running it
# Any other option before -- goes to mpirun unchanged (e.g. --mca ...).
# `train` gets --set cluster.servers=S --set cluster.workers=W, so the job
# file agrees with the ranks; `local` and `bench kv` get --servers S --workers W.
# TESSERA_CLUSTER_TOKEN, TESSERA_CURVE_DIR and TESSERA_ID_SALT(_FILE), when set, go to
# every rank (the key directory must exist at that path on every host).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

servers="" workers="" hostfile="" interface="" tessera="tessera" mpirun="mpirun"
dry_run=0
mpi_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --hostfile) hostfile="$2"; shift 2 ;;
    --interface) interface="$2"; shift 2 ;;
    --tessera) tessera="$2"; shift 2 ;;
    --mpirun) mpirun="$2"; shift 2 ;;
    --oversubscribe) mpi_args+=(--oversubscribe); shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) mpi_args+=("$1"); shift ;;
  esac
done
[[ "$servers" =~ ^[0-9]+$ && "$workers" =~ ^[1-9][0-9]*$ && $# -ge 1 ]] || usage

np=$((1 + servers + workers))
subcommand="$1"
shift
tessera_args=("$subcommand" "$@")
case "$subcommand" in
  train) tessera_args+=(--set "cluster.servers=$servers" --set "cluster.workers=$workers") ;;
  local) tessera_args+=(--servers "$servers" --workers "$workers") ;;
  bench) tessera_args+=(--servers "$servers" --workers "$workers") ;;
  *) echo "tessera_mpirun.sh: '$subcommand' does not run under mpirun (train, local, bench kv)" >&2
     exit 2 ;;
esac

cmd=("$mpirun" -np "$np")
[ "$(id -u)" -eq 0 ] && cmd+=(--allow-run-as-root)
[ -n "$hostfile" ] && cmd+=(--hostfile "$hostfile")
if [ -n "$interface" ]; then
  cmd+=(-x "TESSERA_INTERFACE=$interface" --mca btl_tcp_if_include "$interface"
        --mca oob_tcp_if_include "$interface")
fi
for var in TESSERA_CLUSTER_TOKEN TESSERA_CURVE_DIR TESSERA_ID_SALT TESSERA_ID_SALT_FILE; do
  [ -n "${!var:-}" ] && cmd+=(-x "$var")
done
cmd+=("${mpi_args[@]}" "$tessera" "${tessera_args[@]}")

echo "tessera_mpirun.sh: $np ranks: 0 scheduler, 1..$servers servers, $((servers + 1))..$((np - 1)) workers" >&2
if [ "$dry_run" -eq 1 ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
exec "${cmd[@]}"
