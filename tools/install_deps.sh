#!/usr/bin/env bash
# Installs every Debian 12 package Tessera needs to build, test and run.
# Idempotent; works on a minimal Debian 12 (debootstrap --variant=minbase bookworm).
# Usage: sudo tools/install_deps.sh   (or as root)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  # clang for the fuzz targets (tools/fuzz.sh); libFuzzer and the sanitizer
  # runtimes are in libclang-rt-14-dev, only a Recommends of clang-14's deps
  clang libclang-rt-14-dev
  # libraries
  libzmq3-dev cppzmq-dev libflatbuffers-dev flatbuffers-compiler libeigen3-dev
  libopenmpi-dev openmpi-bin prometheus-cpp-dev libgtest-dev libgmock-dev
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev zlib1g-dev libcpp-httplib-dev
  libcli11-dev libssl-dev libbrotli-dev
  # tools used by tests (process inspection)
  procps python3
  # a real Prometheus server and promtool for the monitoring tests
  # (tests/e2e/prometheus_test.cc, tests/deploy: alert rules, metric lint)
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
