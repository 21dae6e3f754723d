#!/usr/bin/env bash
# The main job: installs every package, builds, generates a synthetic
# e-commerce click log and trains DeepFM on a local cluster of processes
# (2 servers, 2 workers), printing held-out AUC next to the Bayes-optimal AUC.
# Results: runs/demo/eval.json, runs/demo/model/, runs/demo/cluster.json.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh
TESSERA=build/tools/tessera
"$TESSERA" gen --out examples/demo/data --rows "${DEMO_ROWS:-500000}" --seed 1
"$TESSERA" train examples/demo/job.yaml "$@"
