#!/usr/bin/env bash
# The test command: installs every package (tools/install_deps.sh), builds
# (tools/build.sh), runs every CTest label (unit, cluster, e2e, mpirun), then
# builds the libFuzzer targets with clang and runs each for 20 s (tools/fuzz.sh),
# then builds what the cluster tests need under ASan+UBSan and under TSan
# (clang, build-asan and build-tsan) and runs `ctest -L cluster` under each
# (tools/sanitize.sh). Prints the duration of each stage and the total. Run as
# root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
stage_start=$start
stage() {
  local now; now=$(date +%s)
  echo "=== [check] $1 (previous stage took $((now - stage_start)) s)"
  stage_start=$now
}
stage "install packages"
tools/install_deps.sh
stage "configure + build"
tools/build.sh
stage "ctest"
tools/test.sh
stage "fuzz (clang build + 20 s per target)"
tools/fuzz.sh 20
stage "ASan+UBSan: build + cluster tests"
tools/sanitize.sh asan
stage "TSan: build + cluster tests"
tools/sanitize.sh tsan
stage "done"
echo "=== [check] total $(($(date +%s) - start)) s"
