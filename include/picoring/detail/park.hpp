// Internal: parking and the wake-up fences of the thread-safe queues (implemented in src/park.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ratio>

#include "picoring/queue_status.hpp"

namespace picoring::detail {

// True while membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is registered for this process and
// working. It goes from false to true once, inside init_fences(), which every queue's creation
// calls before handing out its handles; it goes back to false, for good, if a membarrier call
// ever fails later (a seccomp filter installed after registration, ENOMEM): from then on both
// sides use ordinary fences. Defined once, in libpicoring (src/park.cpp), not as an inline
// variable: every module that links the library shares the one switch.
extern std::atomic<bool> asymmetric_fences;
void init_fences() noexcept;

// The two halves of a Dekker-style handshake between a fast side (publishes data, then checks
// whether anyone sleeps) and a slow side (announces it sleeps, then checks for data). With
// membarrier the fast side's half is a compiler barrier only: no instruction on the hot path.
inline void light_fence() noexcept {
  if (asymmetric_fences.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}
// Returns false when membarrier just failed and the fences fell back (see asymmetric_fences):
// the light side may have passed its compiler-only barrier during the switch, so the caller
// must not park for long on what it read after this fence.
bool heavy_fence() noexcept;

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

// The fast side, after publishing: wakes sleepers on `word` if `sleepers` says there are any.
inline void wake(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& word) noexcept {
  light_fence();
  if (sleepers.load(std::memory_order_relaxed) != 0) {
    word.fetch_add(1, std::memory_order_release);
    unpark_all(word);
  }
}

// The slow side: blocks until ready() holds (ok), the queue is closed and ready() still does
// not hold (closed), or the deadline passes (timed_out). ready() must re-read the shared
// counter it depends on. `sleepers` counts the threads parked on `word`.
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
    const bool fenced = heavy_fence();
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
