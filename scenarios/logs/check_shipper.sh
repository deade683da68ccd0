#!/usr/bin/env bash
# The log shipper (examples/log_shipper.cpp) on the log scenario's generated access log: every
# line must arrive in the analyser process intact (the shipper checks that), and the status
# classes it counts must be awk's.
# Usage: check_shipper.sh LOG_WINDOW_BINARY LOG_SHIPPER_BINARY WORK_DIR
set -euo pipefail
gen=$1 shipper=$2 work=$3
mkdir -p "$work"
"$gen" --generate 100000 "$work/access.log" --seed 7
"$shipper" "$work/access.log" --ring 16384 >"$work/shipper.txt"
cat "$work/shipper.txt"
grep -q "received every line intact" "$work/shipper.txt"
expected=$(awk '{ c = substr($9, 1, 1); n[c]++ } END { printf "2xx %d, 3xx %d, 4xx %d, 5xx %d", n["2"], n["3"], n["4"], n["5"] }' "$work/access.log")
grep -q "; $expected, other 0" "$work/shipper.txt" || { echo "MISMATCH status classes: awk says $expected"; exit 1; }
echo "log shipper: status classes identical to awk ($expected)"
