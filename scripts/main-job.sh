#!/usr/bin/env bash
# The main job: a Release build, its tests, then the benchmark tables (picoring vs baselines).
# Results are written to build/release/bench-results/ as well as printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --workflow --preset release
mkdir -p build/release/bench-results
build/release/bench/picoring_tables --out build/release/bench-results "$@"
