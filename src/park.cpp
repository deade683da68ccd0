// Parking and asymmetric fences for the thread-safe queues. Linux: futex and membarrier;
// Windows: WaitOnAddress; elsewhere: a bounded sleep. Outside Linux the fences are ordinary
// sequentially consistent ones.
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <thread>

#include "picoring/detail/park.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#elif defined(_WIN32)
#include <windows.h>
#endif

namespace picoring {

bool fences_use_membarrier() noexcept { return detail::asymmetric_fences.load(std::memory_order_acquire); }

}  // namespace picoring

namespace picoring::detail {

std::atomic<bool> asymmetric_fences{false};

void init_fences() noexcept {
  static const bool done = [] {
#if defined(__linux__) && defined(SYS_membarrier)
    const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
        ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
      asymmetric_fences.store(true, std::memory_order_release);
    }
#endif
    return true;
  }();
  (void)done;
}

std::uint32_t sleepers_start() noexcept {
  init_fences();
  return asymmetric_fences.load(std::memory_order_acquire) ? 0 : kFastSideFences;
}

bool heavy_fence(std::atomic<std::uint32_t>& sleepers) noexcept {
#if defined(__linux__) && defined(SYS_membarrier)
  if (asymmetric_fences.load(std::memory_order_relaxed)) {
    // Every running thread of this process executes a full barrier before this returns, so the
    // fast side's plain compiler barrier acts as a full one relative to this point.
    if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return true;
    // Refused after registration (a seccomp filter installed since, ENOMEM): the fast side's
    // compiler barrier no longer pairs with anything. Ordinary fences for good, for every queue:
    // each word gets its fence bit from its next sleeper, below.
    asymmetric_fences.store(false, std::memory_order_seq_cst);
  }
#endif
  bool fenced = true;
  if ((sleepers.load(std::memory_order_relaxed) & kFastSideFences) == 0) {
    sleepers.fetch_or(kFastSideFences, std::memory_order_seq_cst);
    fenced = false;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return fenced;
}

void wake_seen(std::atomic<std::uint32_t>& sleepers, std::atomic<std::uint32_t>& word, std::uint32_t seen) noexcept {
  if ((seen & kFastSideFences) != 0) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    seen = sleepers.load(std::memory_order_relaxed) & ~kFastSideFences;
    if (seen == 0) return;
  }
  word.fetch_add(1, std::memory_order_release);
  unpark_all(word);
}

void park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          std::chrono::steady_clock::time_point deadline) noexcept {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) return;
  auto left = deadline - now;
  if (left > std::chrono::hours(1)) left = std::chrono::hours(1);  // the caller loops; keep timespec sane
#if defined(__linux__)
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(secs.count());
  ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count());
  // Returns at once if the word no longer holds `expected` (the waker changed it first).
  ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr, 0);
#elif defined(_WIN32)
  // Whole milliseconds, rounded up so a short wait still sleeps; the caller re-checks its deadline.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  auto* address = const_cast<std::atomic<std::uint32_t>*>(&word);  // the API takes a non-const address
  ::WaitOnAddress(address, &expected, sizeof expected, static_cast<DWORD>(ms));
#else
  if (word.load(std::memory_order_acquire) != expected) return;
  std::this_thread::sleep_for(left < std::chrono::microseconds(50) ? left : std::chrono::microseconds(50));
#endif
}

void unpark_all(std::atomic<std::uint32_t>& word) noexcept {
#if defined(__linux__)
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#elif defined(_WIN32)
  ::WakeByAddressAll(&word);
#else
  (void)word;  // sleepers poll
#endif
}

}  // namespace picoring::detail
