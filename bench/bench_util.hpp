// Shared by the benchmark programs (Linux: they pin threads with the GNU affinity calls).
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace picoring_bench {

// The work a consumer does with a window: sum it as 64-bit words (vectorised), then the tail
// bytes. Every side of every comparison uses this same function.
inline std::uint64_t checksum(std::span<const std::byte> s) {
  std::uint64_t a = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    a += w;
  }
  for (; i < s.size(); ++i) a += static_cast<std::uint64_t>(s[i]);
  return a;
}

// The median of samples (the upper one of an even count); samples must not be empty.
inline double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// Rounds of a comparison: contender k = 0 .. n-1 runs once per round, round r in the order
// r, r + 1, ... (rotated, so that none always runs first or right after the same neighbour).
// run(k) returns its seconds. Kept: each contender's samples, and for k > 0 the ratio
// t[k] / t[0] taken within each round (a shared machine changes regime between rounds far more
// than within one; report the ratios' median).
struct Rounds {
  std::vector<std::vector<double>> seconds;
  std::vector<std::vector<double>> ratio_to_first;
};
template <class Run>
Rounds rotated_rounds(int rounds, std::size_t n, Run run) {
  Rounds out{std::vector<std::vector<double>>(n), std::vector<std::vector<double>>(n)};
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> t(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = (static_cast<std::size_t>(r) + i) % n;
      t[k] = run(k);
      out.seconds[k].push_back(t[k]);
    }
    for (std::size_t k = 1; k < n; ++k) out.ratio_to_first[k].push_back(t[k] / t[0]);
  }
  return out;
}

// The command line of the comparison benchmarks: --runs R (rounds), an amount per run (--mib N,
// --messages N: `amount_flag`), --quick (the smoke tests' one short run: `quick`). Whole numbers
// from 1 to the limits only ("12x", "0", "-5" are refused); on anything else prints the usage and
// returns false (exit with 2 then).
struct RunOptions {
  long long runs;
  long long amount;
};
inline bool parse_run_options(int argc, char** argv, const char* amount_flag, long long amount_max, RunOptions quick,
                              RunOptions& options) {
  const auto whole = [](const char* text, long long max, long long& out) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > max) return false;
    out = v;
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      options = quick;
    } else if (a == "--runs" && i + 1 < argc && whole(argv[i + 1], 100000, options.runs)) {
      ++i;
    } else if (a == amount_flag && i + 1 < argc && whole(argv[i + 1], amount_max, options.amount)) {
      ++i;
    } else {
      std::fprintf(stderr, "usage: %s [--runs R] [%s N] [--quick]  (whole numbers, N at most %lld)\n", argv[0],
                   amount_flag, amount_max);
      return false;
    }
  }
  return true;
}

// The CPUs this process may run on, as found before any thread pinned itself (the first pin
// reads it first).
inline const cpu_set_t& startup_affinity() {
  static const cpu_set_t set = [] {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (sched_getaffinity(0, sizeof s, &s) != 0) CPU_SET(0, &s);
    return s;
  }();
  return set;
}

// Pins the calling thread to one CPU (taken modulo the CPUs there are, so that a harness written
// for CPUs 0 and 1 still runs on a one-CPU machine). Returns false when the system refuses.
inline bool pin_this_thread(int cpu) {
  (void)startup_affinity();
  const unsigned n = std::thread::hardware_concurrency();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu) % (n == 0 ? 1 : n), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Lets the calling thread run on the CPUs the process started with again. Threads inherit their
// creator's affinity: a harness that pinned its main thread for a two-thread table and then
// starts unpinned threads for another must call this first, or they all share that one CPU.
inline bool unpin_this_thread() {
  return pthread_setaffinity_np(pthread_self(), sizeof(cpu_set_t), &startup_affinity()) == 0;
}

}  // namespace picoring_bench
