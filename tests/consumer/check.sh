#!/usr/bin/env bash
# Builds and runs a tiny consumer project twice: against an installed picoring through
# find_package(picoring) (and pkg-config), and with picoring added by add_subdirectory().
# The consumer is built with strict warnings of its own but picoring must not push -Werror
# or its warning flags onto it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake -S "$root" -B "$work/lib" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPICORING_BUILD_TESTS=OFF \
  -DPICORING_BUILD_BENCHMARKS=OFF -DPICORING_BUILD_EXAMPLES=OFF -DPICORING_BUILD_SCENARIOS=OFF -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/lib" >/dev/null
cmake --install "$work/lib" >/dev/null

cmake -S "$root/tests/consumer" -B "$work/find" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/find" >/dev/null
"$work/find/consumer"

cmake -S "$root/tests/consumer" -B "$work/subdir" -G Ninja -DPICORING_CONSUMER_SUBDIR="$root" >/dev/null
cmake --build "$work/subdir" >/dev/null
"$work/subdir/consumer"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # the flags are meant to split into words
c++ -o "$work/pc-consumer" "$root/tests/consumer/main.cpp" $(pkg-config --cflags --libs picoring)
"$work/pc-consumer"
echo "consumers: find_package, add_subdirectory and pkg-config all build and run"
