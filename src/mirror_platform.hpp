// Internal interface between the portable MirrorBuffer code and one OS backend file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "picoring/mirror_buffer.hpp"

namespace picoring::detail {

// The system's mapping granularity (page size, or Windows allocation granularity).
std::size_t query_granularity() noexcept;

// The page size of a huge-page choice on this system (the PMD size for transparent, 2 MiB or
// 1 GiB for explicit), or 0 when the system offers none of that kind.
std::size_t query_huge_page_size(HugePages kind) noexcept;

struct Mapped {
  std::byte* base = nullptr;  // null on failure
  Backend backend = Backend::automatic;
  std::size_t page_size = 0;
  bool locked = false;
};

// Maps `size` bytes (already a multiple of the granularity, and of the huge page size when
// options ask for one) twice, back to back, and makes them resident as options.residency asks.
// On failure returns base == nullptr with `err` set, and nothing remains: no descriptor, no
// mapping, no name.
Mapped map_mirror(std::size_t size, const MirrorOptions& options, Error& err) noexcept;

// The calling process's id; 0 where the system has no fork() (a mapping is then never
// inherited by another process).
std::uint64_t process_id() noexcept;

// Releases both views and the reservation that holds them; `locked`: map_mirror locked them
// (Windows unlocks and gives back the working set it grew for them).
void unmap_mirror(std::byte* base, std::size_t size, bool locked) noexcept;

}  // namespace picoring::detail
