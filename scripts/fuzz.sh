#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, the `fuzz` preset: clang++ with ASan+UBSan) and runs
# each for a fixed time, starting from the checked-in seed corpus. Any finding fails the run
# and leaves the input that caused it in build/fuzz/findings/.
# Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER (default 60)] [FUZZER ...]
# Longer runs: scripts/fuzz.sh 3600 fuzz_queues. New corpus entries go to build/fuzz/corpus/,
# never into fuzz/corpus/ (merge the interesting ones by hand with -merge=1).
# Fuzzers run side by side, PICORING_FUZZ_JOBS at a time (default: the number of CPUs): each is
# one single-threaded process, so each still gets its SECONDS of a CPU, and the suite takes
# SECONDS x fuzzers / CPUs instead of SECONDS x fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(fuzz_ring fuzz_byte_stream fuzz_queues fuzz_record_ring fuzz_shared_queue fuzz_http_request)
jobs=${PICORING_FUZZ_JOBS:-$(nproc)}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/findings

# Runs one fuzzer; its verdict goes to build/fuzz/FUZZER.verdict (ok or found), its output to
# build/fuzz/FUZZER.log.
fuzz_one() {
  local f=$1 bin work
  bin=$(find build/fuzz -type f -name "$f" -perm -u+x | head -n 1)
  if [ -z "$bin" ]; then
    echo "no binary for $f" >build/fuzz/"$f".log
    echo missing >build/fuzz/"$f".verdict
    return
  fi
  work=build/fuzz/corpus/$f
  mkdir -p "$work"
  # Inputs up to 4 KiB, whatever their length (-len_control=0); one process, so the time is
  # the fuzzer's own; the seed corpus is read, never written.
  if "$bin" -max_total_time="$seconds" -max_len=4096 -len_control=0 -print_final_stats=1 \
      -artifact_prefix=build/fuzz/findings/"$f"- "$work" "fuzz/corpus/$f" >build/fuzz/"$f".log 2>&1; then
    echo ok >build/fuzz/"$f".verdict
  else
    echo found >build/fuzz/"$f".verdict
  fi
}

for f in "${fuzzers[@]}"; do
  rm -f build/fuzz/"$f".verdict
  fuzz_one "$f" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait

status=0
for f in "${fuzzers[@]}"; do
  case "$(cat build/fuzz/"$f".verdict 2>/dev/null || echo missing)" in
    ok)
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/"$f".log)
      echo "fuzz: $f: ${runs:-?} inputs in ${seconds} s, no finding"
      ;;
    found)
      echo "fuzz: $f FOUND A DEFECT (input in build/fuzz/findings/):"
      grep -E "check failed|ERROR|SUMMARY|^    #[0-9] " build/fuzz/"$f".log | head -20
      status=1
      ;;
    *)
      echo "fuzz: $f did not run:"
      head -5 build/fuzz/"$f".log 2>/dev/null || true
      status=1
      ;;
  esac
done
exit $status
