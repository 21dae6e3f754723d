#!/usr/bin/env bash
# deploy/mpi/tessera_mpirun.sh on this machine with --oversubscribe:
#  1. --dry-run prints the documented layout and mpirun command;
#  2. a cluster of 1 scheduler, 2 servers and 2 workers running the smoke
#     program, every rank bound to the interface given by --interface lo:
#     exits 0 and cluster.json lists 5 nodes, all on 127.0.0.1;
#  3. an interface that does not exist fails every rank at once (exit != 0,
#     no rank left waiting for the scheduler).
# Usage: mpirun_script_test.sh SCRIPT TESSERA_BIN MPIRUN
set -euo pipefail
script=$1 tessera=$2 mpirun=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers without CMA
export TESSERA_CLUSTER_TOKEN=mpirun-script-test-token

# 1. Layout and command.
out=$("$script" --servers 2 --workers 2 --oversubscribe --tessera "$tessera" --mpirun "$mpirun" \
        --dry-run -- train job.yaml 2>&1)
grep -q "5 ranks: 0 scheduler, 1..2 servers, 3..4 workers" <<<"$out" || fail "layout: $out"
grep -q -- "-np 5" <<<"$out" || fail "np: $out"
grep -q -- "--set cluster.servers=2 --set cluster.workers=2" <<<"$out" || fail "sets: $out"
grep -q -- "-x TESSERA_CLUSTER_TOKEN" <<<"$out" || fail "token export: $out"
if "$script" --servers 2 -- train job.yaml 2>/dev/null; then fail "accepted no --workers"; fi

# 2. A real run on loopback.
timeout 120 "$script" --servers 2 --workers 2 --oversubscribe --interface lo \
  --tessera "$tessera" --mpirun "$mpirun" -- local --program smoke --output-dir "$dir/run" \
  >"$dir/run.log" 2>&1 || { cat "$dir/run.log"; fail "the smoke cluster failed"; }
[ -f "$dir/run/cluster.json" ] || { cat "$dir/run.log"; fail "no cluster.json"; }
nodes=$(grep -o '"role"' "$dir/run/cluster.json" | wc -l)
[ "$nodes" -eq 5 ] || fail "cluster.json lists $nodes nodes: $(cat "$dir/run/cluster.json")"
if grep -o 'tcp://[0-9.]*' "$dir/run/cluster.json" | grep -v 'tcp://127\.0\.0\.1$'; then
  fail "a node not on lo's address: $(cat "$dir/run/cluster.json")"
fi

# 3. A missing interface: every rank gives up together.
if timeout 60 "$script" --servers 1 --workers 1 --oversubscribe --interface no-such-if0 \
     --tessera "$tessera" --mpirun "$mpirun" -- local --program smoke >"$dir/bad.log" 2>&1; then
  fail "ran without the interface"
fi
[ "$(tail -c 200 "$dir/bad.log" | wc -c)" -gt 0 ] || true
grep -q "no-such-if0" "$dir/bad.log" || { cat "$dir/bad.log"; fail "no error naming the interface"; }
echo "PASS"
