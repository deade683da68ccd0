// Shared by the benchmark programs (Linux: they pin threads with the GNU affinity calls).
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
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

// Pins the calling thread to one CPU (taken modulo the CPUs there are, so that a harness written
// for CPUs 0 and 1 still runs on a one-CPU machine). Returns false when the system refuses.
inline bool pin_this_thread(int cpu) {
  const unsigned n = std::thread::hardware_concurrency();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu) % (n == 0 ? 1 : n), &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace picoring_bench
