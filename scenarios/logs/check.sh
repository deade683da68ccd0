#!/usr/bin/env bash
# Log scenario check: a 300,000-line Apache combined log, analysed through the byte stream, with
# every per-minute count and sliding-window sum compared with awk, the pattern count with
# grep -c, and the line count with wc -l. Usage: check.sh LOG_WINDOW_BINARY WORK_DIR [LINES]
set -euo pipefail
bin=$1 work=$2 lines=${3:-300000}
mkdir -p "$work"
"$bin" --generate "$lines" "$work/access.log" --seed 1
"$bin" "$work/access.log" --window 5 --pattern "POST /api/" --minutes "$work/ours.txt" >"$work/summary.txt"

# The reference: per minute (field 4 is "[dd/Mon/yyyy:hh:mm:ss", field 9 the status), then the
# sums over each minute and the four before it (the log has a line in every minute).
awk -v W=5 '
  { m = substr($4, 2, 17); if (m != last) { n++; label[n] = m; last = m } req[n]++; if ($9 ~ /^5/) err[n]++ }
  END {
    for (i = 1; i <= n; i++) {
      wr = 0; we = 0
      for (j = (i - W + 1 > 1 ? i - W + 1 : 1); j <= i; j++) { wr += req[j]; we += err[j] }
      printf "%s %d %d %d %d\n", label[i], req[i], err[i] + 0, wr, we
    }
  }' "$work/access.log" >"$work/awk.txt"
if ! diff -q "$work/awk.txt" "$work/ours.txt" >/dev/null; then
  echo "MISMATCH per-minute counts (first differences):"
  diff "$work/awk.txt" "$work/ours.txt" | head -10
  exit 1
fi
echo "  per-minute counts and 5-minute window sums: $(wc -l <"$work/ours.txt") minutes identical to awk"
expected_hits=$(grep -c -F "POST /api/" "$work/access.log")
grep -q "; $expected_hits lines contain \"POST /api/\"" "$work/summary.txt" || {
  echo "MISMATCH pattern count: grep -c says $expected_hits"; cat "$work/summary.txt"; exit 1; }
echo "  lines containing \"POST /api/\": $expected_hits, as grep -c -F"
grep -q "^logs: $(wc -l <"$work/access.log") lines" "$work/summary.txt" || {
  echo "MISMATCH line count: wc -l says $(wc -l <"$work/access.log")"; exit 1; }
laps=$(sed -n 's/.*wrapped \([0-9]*\) times.*/\1/p' "$work/summary.txt")
[ "${laps:-0}" -ge 100 ] || { echo "the log crossed the end of the ring only ${laps:-0} times"; exit 1; }
cat "$work/summary.txt"
