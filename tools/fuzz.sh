#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) into
# ./build-fuzz and runs each for N seconds (default 20) on its seeds
# (fuzz/corpus/NAME) and past crashes (fuzz/regressions/NAME). Fails if any
# target crashes, leaks, times out or runs out of memory; the input is left in
# build-fuzz/artifacts/NAME/ (copy it to fuzz/regressions/NAME/ once fixed).
# New coverage-increasing inputs go to build-fuzz/corpus/NAME, never the
# source tree.
# Usage: tools/fuzz.sh [SECONDS] [NAME...]     (env: BUILD_DIR, FUZZ_JOBS)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
shift || true
BUILD_DIR=${BUILD_DIR:-build-fuzz}
ALL=(codec schema tsv job_config instance)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

# -O1 and line tables: quick to compile, readable stack traces. Every
# library gets coverage instrumentation and the sanitizers; only the fuzzer
# binaries link libFuzzer's main (fuzz/CMakeLists.txt).
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
  -DTESSERA_FUZZ=ON -DTESSERA_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target $(printf '%s_fuzzer ' "${TARGETS[@]}")

failed=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# The tsv target writes each input to a scratch file under TMPDIR: tmpfs
# doubles its speed.
fuzz_tmp=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && fuzz_tmp=/dev/shm
for name in "${TARGETS[@]}"; do
  work="$BUILD_DIR/corpus/$name"
  artifacts="$BUILD_DIR/artifacts/$name/"
  log="$BUILD_DIR/fuzz-$name.log"
  mkdir -p "$work" "$artifacts" "fuzz/regressions/$name"
  echo "--- fuzz $name (${SECONDS_PER_TARGET} s)"
  rc=0
  TMPDIR=$fuzz_tmp "$BUILD_DIR/fuzz/${name}_fuzzer" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$work" "fuzz/corpus/$name" "fuzz/regressions/$name" >"$log" 2>&1 || rc=$?
  # One summary line: executions, speed, edge coverage and corpus size.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  last=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
  echo "fuzz $name: rc=$rc execs=${execs:-?} execs/s=${speed:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?}"
  if [ "$rc" -ne 0 ]; then
    failed+=("$name")
    echo "fuzz $name FAILED; log $log; input in $artifacts:"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|abort' "$log" | head -n 20 || true
    ls -l "$artifacts"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET} s each without a crash"
