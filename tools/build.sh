#!/usr/bin/env bash
# Configures and builds Tessera (Release) into ./build. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_WERROR=ON "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
