// Internal: blocking support for the thread-safe queues (implemented in src/park.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace picoring::detail {

// True once membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is registered for this process. It
// only ever goes from false to true, inside init_fences(), which every queue's creation calls
// before handing out its handles; so all threads using a queue agree on its value.
inline std::atomic<bool> asymmetric_fences{false};
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
void heavy_fence() noexcept;

// Sleeps while `word` holds `expected`, until unpark_all(word), the deadline, or spuriously.
void park(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
          std::chrono::steady_clock::time_point deadline) noexcept;
void unpark_all(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace picoring::detail
