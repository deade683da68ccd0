#!/usr/bin/env bash
# clang-tidy over every C++ file of the project (library, tests, benchmarks, examples, Python module,
# scenarios), with the checks in .clang-tidy; fails on any warning. Needs the dev build's
# compile database (cmake --preset dev writes it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/dev/compile_commands.json ]; then cmake --preset dev >/dev/null; fi
out="$(mktemp)"
db="$(mktemp -d)"
trap 'rm -rf "$out" "$db"' EXIT
# One entry per file: some tests are compiled twice (the no-elision build adds a flag the checks
# do not depend on), and clang-tidy would analyse every entry of a file, at twice the time.
/usr/bin/python3 -c '
import json, sys
seen, kept = set(), []
for entry in json.load(open(sys.argv[1])):
    if entry["file"] not in seen:
        seen.add(entry["file"])
        kept.append(entry)
json.dump(kept, open(sys.argv[2], "w"), indent=1)
' build/dev/compile_commands.json "$db/compile_commands.json"
# Judged by what it prints: run-clang-tidy's exit status differs between LLVM versions.
# The database holds GCC's command lines: GCC-only warning flags must not read as errors.
run-clang-tidy -p "$db" -j "$(nproc)" -quiet -extra-arg=-Wno-unknown-warning-option \
  "$PWD/(src|tests|bench|examples|scenarios|python)/" >"$out" 2>&1 || true
if grep -qE "(warning|error):" "$out"; then
  sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -v "warnings generated" >&2  # run-clang-tidy 14 always asks for color
  echo "clang-tidy: the warnings above fail the run" >&2
  exit 1
fi
echo "clang-tidy: clean ($(grep -c '^clang-tidy' "$out" || true) files)"

# The Windows halves (#if defined(_WIN32)) are not in the dev build: the files that have one are
# checked again for the mingw-w64 target, against its headers (those the windows preset builds with).
mingw_cxx="$(ls -d /usr/lib/gcc/x86_64-w64-mingw32/*-posix/include/c++ 2>/dev/null | head -1)"
if [ -z "$mingw_cxx" ]; then
  echo "clang-tidy (Windows target): skipped, mingw-w64's headers are not installed (scripts/setup.sh --tests)"
  exit 0
fi
windows_files=(src/mirror_windows.cpp src/mirror_common.cpp src/park.cpp src/shared_queue.cpp
               tests/mirror_buffer_test.cpp tests/readme_test.cpp tests/residency_test.cpp tests/shared_queue_test.cpp)
printf '%s\n' "${windows_files[@]}" |
  xargs -P "$(nproc)" -I{} clang-tidy -quiet {} -- --target=x86_64-w64-mingw32 -std=c++20 -Iinclude -Isrc -Itests \
    -nostdinc++ -isystem "$mingw_cxx" -isystem "$mingw_cxx/x86_64-w64-mingw32" -isystem /usr/x86_64-w64-mingw32/include \
    -isystem /usr/src/googletest/googletest/include -DWIN32_LEAN_AND_MEAN -DNOMINMAX -DPICORING_SOURCE_DIR=\"$PWD\" \
    >"$out" 2>&1 || true
if grep -qE "(warning|error):" "$out"; then
  grep -v "warnings generated" "$out" >&2
  echo "clang-tidy (Windows target): the warnings above fail the run" >&2
  exit 1
fi
echo "clang-tidy (Windows target): clean (${#windows_files[@]} files)"
