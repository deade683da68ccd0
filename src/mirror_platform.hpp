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

// One store per page of [at, at + bytes), once the kernel has made the pages present (populate
// or lock). On the AMD EPYC virtual machines this project is measured on, pages the kernel made
// present (MADV_POPULATE_WRITE, mlock) and then first written by two threads streaming through
// the ring stay 2-4x slower to stream through, for good, while the same pages written once per
// page beforehand run as fast as private memory (docs/benchmarks.md, "Pages populated by the
// kernel"). Why is not known (these machines expose no PMU). Safe while another process writes
// there (a shared queue's peer): the store is a compare-and-swap of the byte with itself,
// retried until it holds, so it never puts back a value the peer replaced.
void write_each_page(std::byte* at, std::size_t bytes) noexcept;

#if defined(_WIN32)
// Windows, for the shared queues: [offset, offset + size) of the section behind `section` (a
// HANDLE) mapped twice, back to back, as map_mirror maps its own (placeholders where Windows
// offers them, else the legacy path). Released with unmap_mirror.
std::byte* map_section_mirrored(void* section, std::uint64_t offset, std::size_t size, Error& err) noexcept;
// VirtualLock on both views, the working set grown for them; on failure nothing stays locked.
bool lock_mirror_views(std::byte* base, std::size_t size, Error& err) noexcept;
#endif

// The calling process's id; 0 where the system has no fork() (a mapping is then never
// inherited by another process).
std::uint64_t process_id() noexcept;

// Releases both views and the reservation that holds them; `locked`: map_mirror locked them
// (Windows unlocks and gives back the working set it grew for them).
void unmap_mirror(std::byte* base, std::size_t size, bool locked) noexcept;

}  // namespace picoring::detail
