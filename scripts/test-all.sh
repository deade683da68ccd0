#!/usr/bin/env bash
# The whole test suite: Debug with g++ and with clang++ (warnings as errors), AddressSanitizer +
# UBSan, ThreadSanitizer, 32-bit x86 and 64-bit Arm with 4, 16 and 64 KiB pages (static, under qemu-user),
# then the install rules checked by two consumer projects (find_package and add_subdirectory).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
for preset in dev clang asan tsan i686 aarch64; do
  echo "=== workflow preset: $preset"
  cmake --workflow --preset "$preset"
done
echo "=== consumers: find_package(picoring) and add_subdirectory"
tests/consumer/check.sh
echo "=== all test suites passed"
