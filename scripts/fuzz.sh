#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, the `fuzz` preset: clang++ with ASan+UBSan) and runs
# each for a fixed time, starting from the checked-in seed corpus. Any finding fails the run
# and leaves the input that caused it in build/fuzz/findings/.
# Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER (default 60)] [FUZZER ...]
# Longer runs: scripts/fuzz.sh 3600 fuzz_queues. New corpus entries go to build/fuzz/corpus/,
# never into fuzz/corpus/ (merge the interesting ones by hand with -merge=1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(fuzz_ring fuzz_byte_stream fuzz_queues fuzz_record_ring fuzz_shared_queue fuzz_http_request)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/findings
status=0
for f in "${fuzzers[@]}"; do
  bin=$(find build/fuzz -type f -name "$f" -perm -u+x | head -n 1)
  [ -n "$bin" ] || { echo "fuzz: no binary for $f"; exit 1; }
  work=build/fuzz/corpus/$f
  mkdir -p "$work"
  # Inputs up to 4 KiB, whatever their length (-len_control=0); one process, so the time is
  # the fuzzer's own; the seed corpus is read, never written.
  if "$bin" -max_total_time="$seconds" -max_len=4096 -len_control=0 -print_final_stats=1 \
      -artifact_prefix=build/fuzz/findings/"$f"- "$work" "fuzz/corpus/$f" >build/fuzz/"$f".log 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/"$f".log)
    echo "fuzz: $f: ${runs:-?} inputs in ${seconds} s, no finding"
  else
    echo "fuzz: $f FOUND A DEFECT (input in build/fuzz/findings/):"
    grep -E "check failed|ERROR|SUMMARY|^    #[0-9] " build/fuzz/"$f".log | head -20
    status=1
  fi
done
exit $status
