// Windows backend: a pagefile-backed section (CreateFileMapping) viewed twice, back to back.
//
// Preferred path (Windows 10 1803 and later): reserve one placeholder of twice the size
// (VirtualAlloc2 with MEM_RESERVE_PLACEHOLDER), split it in two (VirtualFree with
// MEM_PRESERVE_PLACEHOLDER), and replace each half by a view (MapViewOfFile3 with
// MEM_REPLACE_PLACEHOLDER). The address range is ours from the first call to the last, so no
// other thread can take it in between.
//
// Legacy path (older Windows, and wine, which refuses placeholders): reserve 2x to find a free
// range, release it, and map both views at that address with MapViewOfFileEx. Another thread can
// take the range between the release and the maps; that is detected (the map fails) and retried
// with a new range a bounded number of times.
//
// Views must start on the allocation granularity (64 KiB), which query_granularity() reports,
// so every size reaching this file is a multiple of it.
#include <windows.h>

#include <cstdint>
#include <limits>
#include <mutex>

#include "mirror_platform.hpp"

// Not defined by every SDK (mingw-w64 defines them only for NTDDI_WIN10_RS4 and later).
#if !defined(MEM_RESERVE_PLACEHOLDER)
#define MEM_RESERVE_PLACEHOLDER 0x00040000
#endif
#if !defined(MEM_REPLACE_PLACEHOLDER)
#define MEM_REPLACE_PLACEHOLDER 0x00004000
#endif
#if !defined(MEM_PRESERVE_PLACEHOLDER)
#define MEM_PRESERVE_PLACEHOLDER 0x00000002
#endif

namespace picoring::detail {
namespace {

// The extended-parameter arguments are always null here, so they are declared as void* and
// the SDK's MEM_EXTENDED_PARAMETER is not needed.
using VirtualAlloc2Fn = PVOID(WINAPI*)(HANDLE, PVOID, SIZE_T, ULONG, ULONG, void*, ULONG);
using MapViewOfFile3Fn = PVOID(WINAPI*)(HANDLE, HANDLE, PVOID, ULONG64, SIZE_T, ULONG, ULONG, void*, ULONG);

struct PlaceholderApi {
  VirtualAlloc2Fn virtual_alloc2 = nullptr;
  MapViewOfFile3Fn map_view_of_file3 = nullptr;
  explicit operator bool() const { return virtual_alloc2 != nullptr && map_view_of_file3 != nullptr; }
};

// Resolved at run time: linking them directly would make the library refuse to load on
// Windows versions without them (and mingw-w64 ships no import library for them).
const PlaceholderApi& placeholder_api() {
  static const PlaceholderApi api = [] {
    PlaceholderApi a;
    HMODULE kernelbase = ::GetModuleHandleW(L"kernelbase.dll");
    if (kernelbase == nullptr) kernelbase = ::LoadLibraryW(L"kernelbase.dll");
    if (kernelbase != nullptr) {
      // GetProcAddress returns a generic FARPROC; the casts give it the documented signatures.
      a.virtual_alloc2 =
          reinterpret_cast<VirtualAlloc2Fn>(reinterpret_cast<void*>(::GetProcAddress(kernelbase, "VirtualAlloc2")));
      a.map_view_of_file3 =
          reinterpret_cast<MapViewOfFile3Fn>(reinterpret_cast<void*>(::GetProcAddress(kernelbase, "MapViewOfFile3")));
    }
    return a;
  }();
  return api;
}

std::error_code os_error(DWORD e) { return {static_cast<int>(e), std::system_category()}; }

void fail(Error& err, const char* step, DWORD e = ::GetLastError()) { err = {os_error(e), step}; }

// Errors that mean "placeholders are not supported here" rather than a real failure.
bool is_refusal(DWORD e) {
  return e == ERROR_INVALID_PARAMETER || e == ERROR_NOT_SUPPORTED || e == ERROR_CALL_NOT_IMPLEMENTED ||
         e == ERROR_PROC_NOT_FOUND || e == ERROR_INVALID_FUNCTION;
}

// A pagefile-backed section of `size` bytes (committed now, so running out of commit fails
// here rather than on first touch).
HANDLE create_section(std::size_t size, Error& err) {
  const auto bytes = static_cast<std::uint64_t>(size);
  HANDLE section =
      ::CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE | SEC_COMMIT, static_cast<DWORD>(bytes >> 32),
                           static_cast<DWORD>(bytes & 0xFFFFFFFFu), nullptr);
  if (section == nullptr) fail(err, "CreateFileMapping");
  return section;
}

std::byte* map_placeholder(HANDLE section, std::uint64_t offset, std::size_t size, Error& err) {
  const PlaceholderApi& api = placeholder_api();
  if (!api) {
    fail(err, "VirtualAlloc2 (not available on this system)", ERROR_PROC_NOT_FOUND);
    return nullptr;
  }
  HANDLE process = ::GetCurrentProcess();
  auto* base = static_cast<std::byte*>(
      api.virtual_alloc2(process, nullptr, 2 * size, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS, nullptr, 0));
  if (base == nullptr) {
    fail(err, "VirtualAlloc2 (MEM_RESERVE_PLACEHOLDER, 2x size)");
    return nullptr;
  }
  // Split into two placeholders of `size` each. Until a view replaces one, it is released with
  // VirtualFree(MEM_RELEASE); afterwards, UnmapViewOfFile releases the view and its range.
  if (!::VirtualFree(base, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)) {
    fail(err, "VirtualFree (split placeholder)");
    ::VirtualFree(base, 0, MEM_RELEASE);
    return nullptr;
  }
  void* first =
      api.map_view_of_file3(section, process, base, offset, size, MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE, nullptr, 0);
  if (first == nullptr) {
    fail(err, "MapViewOfFile3 first view (MEM_REPLACE_PLACEHOLDER)");
    ::VirtualFree(base, 0, MEM_RELEASE);
    ::VirtualFree(base + size, 0, MEM_RELEASE);
    return nullptr;
  }
  void* second = api.map_view_of_file3(section, process, base + size, offset, size, MEM_REPLACE_PLACEHOLDER,
                                       PAGE_READWRITE, nullptr, 0);
  if (second == nullptr) {
    fail(err, "MapViewOfFile3 second view (MEM_REPLACE_PLACEHOLDER)");
    ::UnmapViewOfFile(first);
    ::VirtualFree(base + size, 0, MEM_RELEASE);
    return nullptr;
  }
  return base;
}

std::byte* map_legacy(HANDLE section, std::uint64_t offset, std::size_t size, Error& err) {
  // Each failed try means another thread mapped something into the range we had just released;
  // a new range is found and tried. 64 consecutive losses would mean something else is wrong.
  constexpr int max_tries = 64;
  DWORD last = ERROR_SUCCESS;
  for (int attempt = 0; attempt < max_tries; ++attempt) {
    void* probe = ::VirtualAlloc(nullptr, 2 * size, MEM_RESERVE, PAGE_NOACCESS);
    if (probe == nullptr) {
      fail(err, "VirtualAlloc (reserve 2x size to find an address)");
      return nullptr;
    }
    ::VirtualFree(probe, 0, MEM_RELEASE);
    auto* base = static_cast<std::byte*>(probe);
    const auto high = static_cast<DWORD>(offset >> 32);
    const auto low = static_cast<DWORD>(offset & 0xFFFFFFFFu);
    void* first = ::MapViewOfFileEx(section, FILE_MAP_ALL_ACCESS, high, low, size, base);
    if (first == nullptr) {
      last = ::GetLastError();
      continue;
    }
    void* second = ::MapViewOfFileEx(section, FILE_MAP_ALL_ACCESS, high, low, size, base + size);
    if (second == nullptr) {
      last = ::GetLastError();
      ::UnmapViewOfFile(first);
      continue;
    }
    return base;
  }
  fail(err, "MapViewOfFileEx (the address range was taken by another thread 64 times)", last);
  return nullptr;
}

}  // namespace

std::size_t query_granularity() noexcept {
  SYSTEM_INFO info{};
  ::GetSystemInfo(&info);
  return info.dwAllocationGranularity > 0 ? info.dwAllocationGranularity : 65536;
}

// Windows large pages need SeLockMemoryPrivilege and non-section memory; not offered here.
std::size_t query_huge_page_size(HugePages) noexcept { return 0; }

namespace {

// Both views of [offset, offset + size) of `section`, by the backend asked for (automatic: the
// placeholders, then the legacy path if they are refused).
std::byte* map_section_views(HANDLE section, std::uint64_t offset, std::size_t size, Backend wanted, Backend& used,
                             Error& err) noexcept {
  std::byte* base = nullptr;
  if (wanted != Backend::windows_legacy) {
    base = map_placeholder(section, offset, size, err);
    if (base != nullptr) used = Backend::windows_placeholder;
  }
  const bool refused =
      err && err.code.category() == std::system_category() && is_refusal(static_cast<DWORD>(err.code.value()));
  if (base == nullptr && (wanted == Backend::windows_legacy || (wanted == Backend::automatic && refused))) {
    err = {};
    base = map_legacy(section, offset, size, err);
    if (base != nullptr) used = Backend::windows_legacy;
  }
  return base;
}

std::byte* map_views(std::size_t size, const MirrorOptions& options, Backend& used, Error& err) noexcept {
  const Backend wanted = options.backend;
  if (wanted != Backend::automatic && wanted != Backend::windows_placeholder && wanted != Backend::windows_legacy) {
    fail(err, "select backend (not available on Windows)", ERROR_NOT_SUPPORTED);
    return nullptr;
  }
  // ForkPolicy has no meaning here: Windows has no fork(), and a child process never
  // inherits views.
  HANDLE section = create_section(size, err);
  if (section == nullptr) return nullptr;
  std::byte* base = map_section_views(section, 0, size, wanted, used, err);
  // The views keep the section alive; a live ring holds no handle.
  ::CloseHandle(section);
  return base;
}

// VirtualLock keeps pages in the working set, and a process may lock only as many pages as its
// minimum working set holds (less a small overhead), which starts small (about 200 KiB). So
// the minimum and maximum grow by what the views lock, both views counted (the working set
// counts virtual pages), and shrink by as much when they are unlocked. One mutex, so that two
// threads' read-modify-write of the sizes cannot lose an update; code elsewhere in the process
// that sets the working set size itself is not coordinated with.
std::mutex working_set_mutex;

bool grow_working_set(SIZE_T by, bool grow, Error& err) noexcept {
  std::lock_guard lock(working_set_mutex);
  HANDLE process = ::GetCurrentProcess();
  SIZE_T minimum = 0;
  SIZE_T maximum = 0;
  if (!::GetProcessWorkingSetSize(process, &minimum, &maximum)) {
    fail(err, "GetProcessWorkingSetSize");
    return false;
  }
  if (grow) {
    if (minimum > std::numeric_limits<SIZE_T>::max() - by || maximum > std::numeric_limits<SIZE_T>::max() - by) {
      err = {make_error_code(errc::size_overflow), "SetProcessWorkingSetSize (grow for VirtualLock)"};
      return false;
    }
    minimum += by;
    maximum += by;
  } else {
    minimum = minimum > by ? minimum - by : minimum;
    maximum = maximum > by ? maximum - by : maximum;
  }
  if (!::SetProcessWorkingSetSize(process, minimum, maximum)) {
    fail(err, grow ? "SetProcessWorkingSetSize (grow for VirtualLock)" : "SetProcessWorkingSetSize (shrink)");
    return false;
  }
  return true;
}

// Locks both views; on failure nothing stays locked and the working set is as it was.
bool lock_views(std::byte* base, std::size_t size, Error& err) noexcept {
  if (!grow_working_set(2 * size, true, err)) return false;
  if (!::VirtualLock(base, size)) {
    fail(err, "VirtualLock (first view)");
  } else if (!::VirtualLock(base + size, size)) {
    fail(err, "VirtualLock (second view)");
    ::VirtualUnlock(base, size);
  } else {
    return true;
  }
  Error ignored;
  grow_working_set(2 * size, false, ignored);
  return false;
}

void unlock_views(std::byte* base, std::size_t size) noexcept {
  ::VirtualUnlock(base, size);
  ::VirtualUnlock(base + size, size);
  Error ignored;
  grow_working_set(2 * size, false, ignored);
}

}  // namespace

Mapped map_mirror(std::size_t size, const MirrorOptions& options, Error& err) noexcept {
  if (size > std::numeric_limits<std::size_t>::max() / 2) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return {};
  }
  if (options.numa_node >= 0) {
    fail(err, "NUMA binding (not supported on Windows)", ERROR_NOT_SUPPORTED);
    return {};
  }
  Mapped mapped;
  mapped.page_size = query_granularity();
  mapped.base = map_views(size, options, mapped.backend, err);
  if (mapped.base == nullptr) return {};
  // populate and lock: the section is committed already (SEC_COMMIT); touching each page
  // through both views maps it, so the first lap takes no fault.
  if (options.residency != Residency::on_demand) {
    SYSTEM_INFO info{};
    ::GetSystemInfo(&info);
    const std::size_t page = info.dwPageSize > 0 ? info.dwPageSize : 4096;
    for (std::size_t at = 0; at < 2 * size; at += page) {
      volatile std::byte* p = mapped.base + at;
      *p = *p;
    }
  }
  if (options.residency == Residency::lock || options.residency == Residency::lock_if_allowed) {
    Error lock_err;
    mapped.locked = lock_views(mapped.base, size, lock_err);
    if (!mapped.locked && options.residency == Residency::lock) {
      unmap_mirror(mapped.base, size, false);
      err = lock_err;
      return {};
    }
  }
  return mapped;
}

std::byte* map_section_mirrored(void* section, std::uint64_t offset, std::size_t size, Error& err) noexcept {
  Backend used = Backend::automatic;
  return map_section_views(static_cast<HANDLE>(section), offset, size, Backend::automatic, used, err);
}

bool lock_mirror_views(std::byte* base, std::size_t size, Error& err) noexcept { return lock_views(base, size, err); }

std::uint64_t process_id() noexcept { return 0; }  // no fork(): views never reach another process

void unmap_mirror(std::byte* base, std::size_t size, bool locked) noexcept {
  if (locked) unlock_views(base, size);
  ::UnmapViewOfFile(base);
  ::UnmapViewOfFile(base + size);
}

}  // namespace picoring::detail
