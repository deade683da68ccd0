#!/usr/bin/env bash
# The main job: a Release build and its tests, then the benchmark tables (picoring against a
# classic two-memcpy ring and memcpy), written to build/release/bench-results/ (results.csv,
# results.json, tables.md, speedup.png, records.md, asio.md, ipc.md, python.md) as well as printed. Extra arguments go to the
# benchmark program (--quick, --max-mib N). Then the four scenarios, one summary line each.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --main-job
cmake --workflow --preset release
out=build/release/bench-results
mkdir -p "$out"
build/release/bench/picoring_tables --out "$out" "$@" | tee "$out/tables.md"
/usr/bin/python3 bench/plot.py "$out/results.csv" "$out/speedup.png"
echo "chart: $out/speedup.png"
build/release/bench/picoring_record_bench | tee "$out/records.md"
if [ -x build/release/bench/picoring_asio_bench ]; then build/release/bench/picoring_asio_bench | tee "$out/asio.md"; fi
build/release/bench/picoring_ipc_bench | tee "$out/ipc.md"
echo
python="$(sed -n 's/^Python3_EXECUTABLE:FILEPATH=//p' build/release/CMakeCache.txt)"
PYTHONPATH=build/release/python "${python:-python3}" bench/python_windows.py --markdown | tee "$out/python.md"
echo
PYTHONPATH=build/release/python "${python:-python3}" bench/python_messages.py --markdown | tee -a "$out/python.md"
echo
PYTHONPATH=build/release/python "${python:-python3}" bench/python_streams.py --markdown | tee -a "$out/python.md"
echo
echo "## Scenarios (each checked against an independent tool; see scenarios/README.md)"
bin=build/release/scenarios
scenarios/audio/check.sh "$bin/audio_frames" "$bin/audio-work" | grep '^audio:'
scenarios/network/check.sh "$bin/http_server" "$bin/network-work" | grep '^network:'
echo "network: side by side with nginx in the same run (ab -c 8):"
scenarios/network/compare_nginx.sh "$bin/http_server" "$bin/nginx-work"
scenarios/logs/check.sh "$bin/log_window" "$bin/logs-work" | grep '^logs:'
build/release/examples/message_passing 20000000
