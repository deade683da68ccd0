#!/usr/bin/env bash
# Installs the Debian packages the build, tests and benchmarks need, when any is missing.
# Usage: setup.sh [--tests] [--main-job]   (both: everything CI needs)
# Runs apt-get as root, or through sudo. Safe to run again: it does nothing when all are there.
set -euo pipefail
packages=(cmake ninja-build g++ googletest libgtest-dev libgmock-dev libbenchmark-dev pkg-config)
# The scenarios (built and run in every native build) read WAV files, and are checked with sox,
# curl, ab, wrk and a python3 script of raw-socket clients.
packages+=(libsndfile1-dev sox curl apache2-utils wrk python3)
# The Python module (PICORING_PYTHON, on in the dev and release presets): pybind11 and numpy.
packages+=(python3-dev pybind11-dev python3-numpy)
for arg in "$@"; do
  case "$arg" in
    # The main job also builds the benchmarks' peers, and draws a chart.
    # nginx is the HTTP scenario's peer in the same run.
    --main-job) packages+=(libboost-dev libjack-jackd2-dev libreaderwriterqueue-dev libconcurrentqueue-dev libatomic-queue-dev python3-matplotlib nginx-light) ;;
    # The test suite also builds with clang and runs clang-tidy and clang-format, cross-builds for i686 and aarch64
    # run under qemu-user, a Windows cross build run under wine, and the libFuzzer harnesses (clang's runtime).
    # pytest runs the Python tests; venv, pip, setuptools and wheel check that pip installs the package.
    --tests) packages+=(clang clang-tidy clang-format libclang-rt-14-dev g++-i686-linux-gnu g++-aarch64-linux-gnu qemu-user mingw-w64 wine wine64
                        python3-pytest python3-venv python3-pip python3-setuptools python3-wheel) ;;
    *) echo "setup.sh: unknown option $arg (use --tests and/or --main-job)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
