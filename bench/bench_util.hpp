// Shared by the benchmark programs.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

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

}  // namespace picoring_bench
