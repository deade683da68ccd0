#!/usr/bin/env bash
# Log scenario check: a 300,000-line Apache combined log, analysed through the byte stream, with
# every per-minute count and sliding-window sum compared with awk, the pattern count with
# grep -c, and the line count with wc -l; then what a real Apache log and a careless user do
# (escaped quotes, lines out of order, malformed and over-long lines, bad options).
# Usage: check.sh LOG_WINDOW_BINARY WORK_DIR [LINES]
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

# A log as Apache 2.4 writes it: \" inside the request line, lines in completion order (a slow
# request stamped 10:00:50 logged after 10:01:05), a request line of "-", a malformed line and
# a line longer than any ring granularity (70,000 bytes). --late 2 accepts the first late line;
# the one for 10:00 after 10:03 is too late. Every figure is worked out by hand here.
ua=$(head -c 70000 /dev/zero | tr '\0' 'x')
{
  echo '10.0.0.1 - - [26/Nov/2026:10:00:10 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"'
  echo '10.0.0.2 - - [26/Nov/2026:10:01:05 +0000] "GET /q=\"x\" HTTP/1.1" 200 5 "-" "a \"quoted\" agent"'
  echo '10.0.0.3 - - [26/Nov/2026:10:00:50 +0000] "POST /slow HTTP/1.1" 500 5 "-" "curl/8"'
  echo 'hello, not a log line'
  echo '10.0.0.4 - - [26/Nov/2026:10:03:00 +0000] "GET /a\\b HTTP/1.1" 200 5 "-" "curl/8"'
  echo '10.0.0.5 - - [26/Nov/2026:10:00:59 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"'
  echo "10.0.0.6 - - [26/Nov/2026:10:03:30 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"$ua\""
  echo '10.0.0.7 - - [26/Nov/2026:10:04:00 +0000] "-" 503 0 "-" "-"'
} >"$work/apache.log"
"$bin" "$work/apache.log" --window 2 --late 2 --ring 1 --minutes "$work/apache-ours.txt" \
  >"$work/apache-summary.txt" 2>"$work/apache-stderr.txt" || {
  echo "the Apache-style log stopped the analysis:"; cat "$work/apache-stderr.txt"; exit 1; }
printf '%s\n' '26/Nov/2026:10:00 2 1 2 1' '26/Nov/2026:10:01 1 0 3 1' '26/Nov/2026:10:03 1 0 1 0' \
  '26/Nov/2026:10:04 1 1 2 1' >"$work/apache-expected.txt"
diff "$work/apache-expected.txt" "$work/apache-ours.txt" || { echo "MISMATCH on the Apache-style log"; exit 1; }
for want in '^logs: 8 lines' 'worst 2-minute 5xx rate 50.0% (window ending 26/Nov/2026:10:00)' \
  '1 lines out of order (counted), 1 too late (over --late 2), 2 malformed'; do
  grep -q -- "$want" "$work/apache-summary.txt" || {
    echo "MISMATCH: the summary lacks '$want':"; cat "$work/apache-summary.txt"; exit 1; }
done
grep -q 'line 4 skipped: not in combined format' "$work/apache-stderr.txt" &&
  grep -q 'line 7 skipped: longer than the ring' "$work/apache-stderr.txt" || {
  echo "the skipped lines were not reported:"; cat "$work/apache-stderr.txt"; exit 1; }
echo "  Apache-style log: escaped quotes, 1 late line counted, 1 too late, 2 malformed skipped, minutes exact"

# No 5xx at all: the summary says so instead of naming an empty window.
head -n 1 "$work/apache.log" >"$work/ok.log"
"$bin" "$work/ok.log" | grep -q '1 minutes, no 5xx responses;' || { echo "no-5xx summary wrong"; exit 1; }
# Not a log at all: an error, not an empty analysis.
printf 'a\nb\n' >"$work/not-a-log.txt"
if "$bin" "$work/not-a-log.txt" >/dev/null 2>&1; then echo "a file with no log line was accepted"; exit 1; fi
# Usage errors exit 2 with a message, before anything is read.
for args in "--window -1" "--window 0" "--window 99999999999999999999" "--ring 0" "--ring 4294967296" \
  "--late x" "--window" "--pattern ''" "--bogus 1"; do
  set +e
  eval "\"$bin\" \"$work/ok.log\" $args" >/dev/null 2>"$work/usage.txt"
  rc=$?
  set -e
  [ $rc -eq 2 ] && grep -q "usage:" "$work/usage.txt" || { echo "'$args' gave exit $rc, not a usage error"; exit 1; }
done
"$bin" --generate 12x "$work/x.log" 2>/dev/null && { echo "--generate 12x was accepted"; exit 1; }
echo "  usage errors: 10 bad invocations each refused with exit 2"
