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
exit $status
