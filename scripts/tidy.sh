#!/usr/bin/env bash
# clang-tidy over every C++ file of the project (library, tests, benchmarks, examples, Python module,
# scenarios), with the checks in .clang-tidy; fails on any warning. Needs the dev build's
# compile database (cmake --preset dev writes it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/dev/compile_commands.json ]; then cmake --preset dev >/dev/null; fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Judged by what it prints: run-clang-tidy's exit status differs between LLVM versions.
# The database holds GCC's command lines: GCC-only warning flags must not read as errors.
run-clang-tidy -p build/dev -j "$(nproc)" -quiet -extra-arg=-Wno-unknown-warning-option \
  "$PWD/(src|tests|bench|examples|scenarios|python)/" >"$out" 2>&1 || true
if grep -qE "(warning|error):" "$out"; then
  sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -v "warnings generated" >&2  # run-clang-tidy 14 always asks for color
  echo "clang-tidy: the warnings above fail the run" >&2
  exit 1
fi
echo "clang-tidy: clean ($(grep -c '^clang-tidy' "$out" || true) files)"
