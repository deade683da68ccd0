// Internal interface between the portable MirrorBuffer code and one OS backend file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "picoring/mirror_buffer.hpp"

namespace picoring::detail {

// The system's mapping granularity (page size, or Windows allocation granularity).
std::size_t query_granularity() noexcept;

// Maps `size` bytes (already a multiple of the granularity) twice, back to back, and returns
// the first byte, or nullptr with `err` set. On success `used` names the backend that served.
// On failure nothing remains: no descriptor, no mapping, no name.
std::byte* map_mirror(std::size_t size, const MirrorOptions& options, Backend& used, Error& err) noexcept;

// The calling process's id; 0 where the system has no fork() (a mapping is then never
// inherited by another process).
std::uint64_t process_id() noexcept;

// Releases both views and the reservation that holds them.
void unmap_mirror(std::byte* base, std::size_t size) noexcept;

}  // namespace picoring::detail
