#!/usr/bin/env bash
# The whole test suite: Debug with g++ (then clang-tidy and a clang-format check) and with clang++ (warnings as errors), AddressSanitizer +
# UBSan, ThreadSanitizer, 32-bit x86 and 64-bit Arm with 4, 16 and 64 KiB pages (static, under
# qemu-user), 64-bit Windows (mingw-w64, under wine), then the install rules checked by the
# consumer projects (find_package, add_subdirectory, pkg-config), the Python package installed by
# pip, then every libFuzzer harness
# for a fixed time (PICORING_FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's heading says when it started (seconds since this script began): where CI time goes.
stage() { echo "=== $* [at ${SECONDS} s]"; }
scripts/setup.sh --tests
for preset in dev clang asan tsan i686 aarch64; do
  stage "workflow preset: $preset"
  cmake --workflow --preset "$preset"
  if [ "$preset" = dev ]; then
    stage "clang-tidy (src/, tests/, bench/, examples/, scenarios/)"
    scripts/tidy.sh
    stage "clang-format (every tracked C++ file, .clang-format)"
    git ls-files -z '*.cpp' '*.hpp' '*.h' | xargs -0 clang-format --dry-run --Werror
  fi
done
stage "workflow preset: windows"
# Boot wine once, outside the build's and ctest's output pipes (see cmake/toolchains/wine-run.sh).
# Its test preset runs a failed test once more (repeat until-pass:2): wine has been seen not to
# start a test process at all (0.01 s, no output) in a suite that then passed whole; a test that
# fails twice still fails the step.
cmake/toolchains/wine-run.sh cmd /c exit >/dev/null 2>&1
cmake --workflow --preset windows
WINEPREFIX="${WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/picoring-wine}" wineserver -k || true
stage "consumers: find_package(picoring) and add_subdirectory"
tests/consumer/check.sh
stage "python: pip install . into a fresh venv (offline: Debian's build tools), then pytest on the installed package"
venv="$(mktemp -d)/venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q --no-build-isolation --no-deps .
(cd "$(dirname "$venv")" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "$OLDPWD/python/tests")
rm -rf "$(dirname "$venv")"
stage "fuzzers: each for ${PICORING_FUZZ_SECONDS:-60} s from the seed corpus, as many at once as there are CPUs (scripts/fuzz.sh runs them longer)"
scripts/fuzz.sh "${PICORING_FUZZ_SECONDS:-60}"
stage "all test suites passed"
