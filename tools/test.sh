#!/usr/bin/env bash
# Runs every CTest label (unit, cluster, e2e, mpirun) on the build in ./build.
set -euo pipefail
cd "$(dirname "$0")/../${BUILD_DIR:-build}"
ctest -j2 --output-on-failure "$@"
