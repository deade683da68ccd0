// Internal: parking and the wake-up fences of the thread-safe queues (implemented in src/park.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ratio>

#include "picoring/queue_status.hpp"

namespace picoring::detail {

// The blocking handshake is Dekker's, between a fast side (publishes data, then reads a sleepers
// word) and a slow side (counts itself in that word, then looks for data); each needs a full
// barrier between its store and its load. With membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
// the slow side's barrier is that system call, which runs one on every thread of the process,
// and the fast side's is a compiler barrier: no instruction on the hot path. Without it, the
// fast side must fence too. It learns so from the word it reads anyway, not from a global flag
// (a global's load and branch cost the single-thread push + pop 15-20%: docs/benchmarks.md,
// Path cost): a sleepers word with this bit set says "fence, then read me again".
inline constexpr std::uint32_t kFastSideFences = 1U << 31;

// True while membarrier is registered for this process and working. It goes from false to true
// once, inside init_fences(); it goes back to false, for good, if a membarrier call ever fails
// later (a seccomp filter installed after registration, ENOMEM). Read by the slow side only.
// Defined once, in libpicoring (src/park.cpp): every module that links the library shares it.
extern std::atomic<bool> asymmetric_fences;
void init_fences() noexcept;
// The value a new sleepers word starts with: 0 when membarrier is in force, else the fence bit.
// Registers membarrier first (init_fences), so a queue's words are its first use of it.
std::uint32_t sleepers_start() noexcept;
// The slow side's barrier, after counting itself in `sleepers`. Where membarrier is not (or no
// longer) in force, sets the fence bit in `sleepers` first. Returns false when that bit was set
// just now: a fast side may have read the word before it, with only a compiler barrier, so the
// caller must not park for long on what it reads after this.
bool heavy_fence(std::atomic<std::uint32_t>& sleepers) noexcept;

// The point `timeout` from now, saturated: a timeout past the clock's range (nanoseconds::max(),
// hours::max(), a huge double) means "no deadline" and gives time_point::max(), never an
// overflowed value in the past. A zero, negative or NaN timeout gives now.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
  using Clock = std::chrono::steady_clock;
  using Tick = Clock::duration;
  const auto now = Clock::now();
  if (!(timeout > timeout.zero())) return now;
  // Half the clock's remaining range (still more than a century) leaves room for the rounding
  // of the comparisons below.
  const Tick limit = (Clock::time_point::max() - now) / 2;
  if constexpr (std::chrono::treat_as_floating_point_v<Rep> || std::ratio_less_equal_v<Period, typename Tick::period>) {
    if (timeout >= std::chrono::duration<double, typename Tick::period>(limit)) return Clock::time_point::max();
  } else {
    // Coarser integer units (seconds, hours): compare in the caller's unit, which divides.
    if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(limit)) {
      return Clock::time_point::max();
    }
  }
  return now + std::chrono::ceil<Tick>(timeout);
}

// Sleeps while `word` holds `expected`, until unpark_all(word), the deadline, or spuriously.
void park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          std::chrono::steady_clock::time_point deadline) noexcept;
void unpark_all(std::atomic<std::uint32_t>& word) noexcept;

// Counters written by different threads are kept this far apart (two 64-byte lines, because
// adjacent-line prefetchers pull pairs).
inline constexpr std::size_t kFalseSharingRange = 128;
inline constexpr int kSpinsBeforeParking = 256;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// wake_sleepers' rest, out of line (src/park.cpp), for a word found not 0.
void wake_seen(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& word, std::uint32_t seen) noexcept;
// The fast side's look at a sleepers word, once its publication is ordered before this load
// (by wake()'s compiler barrier, or by a wake() just before on another word): wakes the sleepers
// on `word` if there are any. A set fence bit sends it through a full fence and a second read.
inline void wake_sleepers(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& word) noexcept {
  const std::uint32_t seen = sleepers.load(std::memory_order_relaxed);
  if (seen != 0) wake_seen(sleepers, word, seen);
}
// The fast side, after publishing: wakes sleepers on `word` if `sleepers` says there are any.
inline void wake(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& word) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  wake_sleepers(sleepers, word);
}

// The slow side: blocks until ready() holds (ok), the queue is closed and ready() still does
// not hold (closed), or the deadline passes (timed_out). ready() must re-read the shared
// counter it depends on. `sleepers` counts the threads parked on `word` (below the fence bit).
template <class Ready>
QueueStatus wait_until(Ready ready, const std::atomic<std::uint32_t>& closed, std::atomic<std::uint32_t>& sleepers,
                       std::atomic<std::uint32_t>& word, std::chrono::steady_clock::time_point deadline) {
  for (int i = 0; i < kSpinsBeforeParking; ++i) {
    if (ready()) return QueueStatus::ok;
    if (closed.load(std::memory_order_acquire) != 0) return ready() ? QueueStatus::ok : QueueStatus::closed;
    cpu_relax();
  }
  for (;;) {
    const std::uint32_t seen = word.load(std::memory_order_acquire);
    sleepers.fetch_add(1, std::memory_order_relaxed);
    const bool fenced = heavy_fence(sleepers);
    QueueStatus outcome = QueueStatus::ok;
    bool done = true;
    if (ready()) {
      outcome = QueueStatus::ok;
    } else if (closed.load(std::memory_order_acquire) != 0) {
      outcome = ready() ? QueueStatus::ok : QueueStatus::closed;
    } else if (std::chrono::steady_clock::now() >= deadline) {
      outcome = QueueStatus::timed_out;
    } else {
      // After a fence fallback a wakeup may have been lost: look again within a millisecond.
      const auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      park(word, seen, fenced || deadline < soon ? deadline : soon);
      done = false;
    }
    sleepers.fetch_sub(1, std::memory_order_relaxed);
    if (done) return outcome;
  }
}

}  // namespace picoring::detail
