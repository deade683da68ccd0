#!/usr/bin/env bash
# Audio scenario check: a 20 s sweep plus noise made by sox, processed through the ring; whole-
# file figures compared with `sox stats`, every frame and filtered sample with the whole-array
# computation (--verify). Usage: check.sh AUDIO_FRAMES_BINARY WORK_DIR
set -euo pipefail
bin=$1 work=$2
command -v sox >/dev/null || { echo "scenario audio: needs sox (apt-get install sox)"; exit 1; }
mkdir -p "$work"
# -R: repeatable noise, so every run checks the same file.
sox -R -n -r 48000 -c 1 -b 16 "$work/sweep.wav" synth 20 sine 40-16000 vol 0.5
sox -R -n -r 48000 -c 1 -b 16 "$work/noise.wav" synth 20 whitenoise vol 0.1
sox -R -m "$work/sweep.wav" "$work/noise.wav" "$work/input.wav"

"$bin" "$work/input.wav" --stats --verify --frames "$work/frames.txt" --filtered "$work/filtered.wav" >"$work/ours.txt"
sox "$work/input.wav" -n stats 2>"$work/sox_stats.txt"

# name in our output | label in sox's | tolerance (sox prints levels to 6 decimals, dB to 2)
status=0
while IFS='|' read -r ours label tol; do
  a=$(awk -v k="$ours" '$1 == k { print $2 }' "$work/ours.txt")
  b=$(awk -v l="$label" 'index($0, l) == 1 { print $NF }' "$work/sox_stats.txt")
  if awk -v a="$a" -v b="$b" -v t="$tol" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; then
    echo "  $ours: ours $a, sox $b"
  else
    echo "  MISMATCH $ours: ours '$a', sox '$b' (tolerance $tol)"
    status=1
  fi
done <<'LIST'
dc_offset|DC offset|0.0000015
min_level|Min level|0.0000015
max_level|Max level|0.0000015
rms_lev_db|RMS lev dB|0.015
LIST
samples=$(awk '$1 == "samples" { print $2 }' "$work/ours.txt")
[ "$samples" = "$(soxi -s "$work/input.wav")" ] || { echo "  MISMATCH sample count $samples"; status=1; }
[ "$(soxi -s "$work/filtered.wav" 2>/dev/null)" = "$samples" ] || { echo "  MISMATCH filtered length"; status=1; }
grep '^audio:' "$work/ours.txt"
# The test's own requirement, not the program's: this input crosses the ring's end many times.
laps=$(sed -n 's/.*wrapped \([0-9]*\) times.*/\1/p' "$work/ours.txt")
[ "${laps:-0}" -ge 10 ] || { echo "  the input wrapped the ring only ${laps:-0} times"; status=1; }

# Files users have: a short clip (less than one ring), a header without samples, a truncated
# recording, and output paths that cannot be written.
sox -R -n -r 8000 -c 1 -b 16 "$work/short.wav" synth 0.125 sine 440
"$bin" "$work/short.wav" --verify --stats >"$work/short.txt" ||
  { echo "  a 1000-sample clip failed:"; cat "$work/short.txt"; status=1; }
grep -q '^samples 1000$' "$work/short.txt" || { echo "  the short clip's sample count is wrong"; status=1; }
head -c 44 "$work/input.wav" >"$work/header-only.wav"
"$bin" "$work/header-only.wav" --stats --verify >"$work/empty.txt" 2>&1 || { echo "  a header-only WAV failed"; status=1; }
if grep -qi nan "$work/empty.txt" || ! grep -q '^samples 0$' "$work/empty.txt"; then
  echo "  a header-only WAV printed:"; cat "$work/empty.txt"; status=1
fi
head -c 100000 "$work/input.wav" >"$work/truncated.wav"
"$bin" "$work/truncated.wav" --verify >"$work/truncated.txt" 2>&1 || { echo "  a truncated WAV failed"; status=1; }
grep -q 'warning: .*truncated' "$work/truncated.txt" && grep -q '(truncated file)' "$work/truncated.txt" ||
  { echo "  a truncated WAV was analysed without a warning:"; cat "$work/truncated.txt"; status=1; }
for opt in --frames --filtered; do
  set +e
  "$bin" "$work/short.wav" $opt /nonexistent-dir/out >/dev/null 2>"$work/unwritable.txt"
  rc=$?
  set -e
  [ $rc -eq 1 ] && grep -q "cannot write $opt /nonexistent-dir/out" "$work/unwritable.txt" ||
    { echo "  $opt to an unwritable path: exit $rc, '$(cat "$work/unwritable.txt")'"; status=1; }
done
for args in "" "--frames" "$work/short.wav --bogus" "$work/short.wav --frames"; do
  set +e
  # shellcheck disable=SC2086 # the words are separate arguments
  "$bin" $args >/dev/null 2>"$work/usage.txt"
  rc=$?
  set -e
  [ $rc -eq 2 ] && grep -q usage: "$work/usage.txt" || { echo "  '$args': exit $rc, not a usage error"; status=1; }
done
[ $status -eq 0 ] && echo "  short, header-only and truncated files, unwritable outputs and usage errors: handled"
exit $status
