// picoring: mirrored memory.
//
// A MirrorBuffer is `size()` bytes of memory mapped twice, back to back:
//
//   virtual:  [ view 1: bytes 0 .. N-1 ][ view 2: the same bytes again ]
//   physical:  \_________ one set of N bytes of pages _________/
//
// so data()[i] and data()[i + size()] are the same byte for every i < size(). Any window
// of at most size() bytes starting inside view 1 is one contiguous range, even when it
// wraps past the end of the ring.
//
// This header is free of operating-system headers; the backends live in src/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>

namespace picoring {

// Which kernel object backs the memory, and (on Windows) how the views are placed.
// `automatic` tries the ones of this system in the order listed and moves to the next only when
// a step is *refused* (POSIX: ENOSYS, EPERM, EACCES, EINVAL, ENOENT, EOPNOTSUPP, EROFS: seccomp
// filters, old kernels, a missing /dev/shm; Windows: placeholder calls missing or rejected as
// invalid or unsupported). Any other failure (out of memory, out of file descriptors) is reported
// at once; when every backend is refused, the last refusal is reported. Forcing a backend tries
// only it; forcing one of another system fails with a "not available" step.
enum class Backend {
  automatic,
  memfd,      // Linux memfd_create(MFD_CLOEXEC): anonymous, no name, no size limit of a mount.
  posix_shm,  // shm_open with a name unique per process and per call, unlinked at once (macOS, BSD).
  tmpfile,    // mkostemp(O_CLOEXEC) in /dev/shm (then $TMPDIR, /tmp), unlinked at once.
  // Windows: a pagefile-backed section mapped into a placeholder reservation (VirtualAlloc2 +
  // MapViewOfFile3, Windows 10 1803+): no other thread can take the range while it is mapped.
  windows_placeholder,
  // Windows without placeholders (older versions, wine): reserve to find a free range, release
  // it, map both views there (MapViewOfFileEx); a range taken meanwhile is detected and retried.
  windows_legacy,
};

// What a child created by fork() sees of the buffer.
//   exclude (default): the mapping is marked MADV_DONTFORK; the child has no memory at that
//     address. A ring is private to the process that made it; a child that touches it faults
//     at once instead of silently sharing data with its parent (the indices would not be
//     shared, so two processes writing "their" ring would corrupt each other's data).
//     Destroying an inherited buffer, ring or queue in the child is safe and does nothing to
//     memory: it is recognised by the creator's process id (see inherited()), so it neither
//     unmaps that address range (where the child may have mapped something else since) nor runs
//     element destructors on memory the child does not have. Any other use in the child faults.
//   share: the child inherits the mapping and shares the bytes with the parent (MAP_SHARED).
//     Useful only when the caller coordinates the two processes itself.
// Windows has no fork() and never passes views to child processes; the policy is ignored there.
// Any other value is rejected at creation (std::errc::invalid_argument, step "select fork policy").
enum class ForkPolicy { exclude, share };

// Error conditions that are not operating-system errors. Their category is picoring_category().
enum class errc {
  zero_size = 1,    // a size or capacity of zero was requested
  size_overflow,    // the rounded size, or twice it, does not fit the address space
  mirror_mismatch,  // the two views were mapped but do not show the same bytes
  // a queue shared with another process: its memory is not a picoring queue of this layout, or
  // the peer wrote a counter or record length that cannot be right
  corrupt_shared_state,
};

const std::error_category& picoring_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// The outcome of a non-throwing creation. `step` names the step that failed with a static
// string ("memfd_create", "ftruncate", "mmap second view (MAP_FIXED)", ...); `code` carries
// the OS error (std::system_category) or a picoring::errc.
struct Error {
  std::error_code code;
  const char* step = "";

  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  std::string message() const;  // "picoring: <step> failed: <code message>"
};

// Throws the exception matching `err`: std::invalid_argument for errc::zero_size,
// std::length_error for errc::size_overflow, std::system_error otherwise (what() names the step).
[[noreturn]] void throw_error(const Error& err);

// The granularity a mirror's size must be a multiple of: the page size on POSIX systems
// (4 KiB on x86-64, 16 KiB on Apple Silicon, 4-64 KiB on aarch64 Linux), the 64 KiB
// allocation granularity on Windows. Queried once from the system, never assumed.
std::size_t allocation_granularity() noexcept;

// The byte size of the smallest mirror that holds at least `min_elements` elements of
// `element_size` bytes: a multiple of allocation_granularity() *and* of element_size, so
// the mirror wraps exactly where the element index wraps (for 24-byte elements and 4 KiB
// pages that is a multiple of 12 KiB, i.e. 512 elements). Sets `err` on zero or overflow.
std::size_t mirror_size_for(std::size_t min_elements, std::size_t element_size, Error& err) noexcept;

// Whether the pages stay in memory. Ring memory is shared memory (shmem): the kernel allocates
// a page at its first touch and may take it away again when the ring goes cold (proactive
// reclaim, memory-cgroup pressure), so a later lap pays page faults. Real-time code (an audio
// callback) and latency-critical paths cannot take them.
//   on_demand (default): pages come at first touch, as for any fresh memory.
//   populate: both views are pre-faulted at creation (MADV_POPULATE_WRITE, or a touch loop on
//     kernels before 5.14), so the first lap pays no fault. The kernel may still reclaim them.
//   lock: populated and mlock()ed, so they stay: creation fails ("mlock ...", ENOMEM or EPERM)
//     when RLIMIT_MEMLOCK (ulimit -l) is too low; both views count against it, i.e. twice the
//     ring, unless the process has CAP_IPC_LOCK. Unlocked when the buffer is destroyed.
//   lock_if_allowed: lock when the limit allows, else populate only; locked() says which.
// Windows: populate is a touch loop; lock is VirtualLock on both views, after growing the
// process's minimum and maximum working set by twice the ring (VirtualLock cannot lock more
// than the minimum working set holds); both are shrunk back when the buffer is destroyed.
// Refused locks fail with the step ("SetProcessWorkingSetSize ...", "VirtualLock ...") and the
// Windows error (ERROR_WORKING_SET_QUOTA, ERROR_NO_SYSTEM_RESOURCES).
enum class Residency { on_demand, populate, lock, lock_if_allowed };

// Page size of the backing memory. Huge pages cut TLB misses for rings of many megabytes.
//   none (default): the system's base page (allocation_granularity()).
//   transparent: asks the kernel for transparent huge pages (MADV_HUGEPAGE on the shmem views,
//     which honours it when /sys/kernel/mm/transparent_hugepage/shmem_enabled is "advise" or
//     "always"). A hint: the size is rounded to the PMD size (2 MiB on x86-64) and the views
//     aligned to it; page_size() stays the base page, /proc/self/smaps shows what was granted.
//   explicit_2mb, explicit_1gb: hugetlb pages (memfd_create with MFD_HUGETLB, Linux only); the
//     size is rounded to the huge page; the pages must be reserved beforehand
//     (/proc/sys/vm/nr_hugepages or hugepages-*/nr_hugepages). Without enough free pages,
//     creation fails (ENOMEM, the step names hugetlb), or with `huge_pages_fallback` the buffer
//     uses base pages instead: page_size() says which.
enum class HugePages { none, transparent, explicit_2mb, explicit_1gb };

struct MirrorOptions {
  Backend backend = Backend::automatic;
  ForkPolicy fork = ForkPolicy::exclude;
  Residency residency = Residency::on_demand;
  HugePages huge_pages = HugePages::none;
  // Explicit huge pages unavailable (none reserved, no such size, not Linux, a backend other
  // than memfd forced): use base pages instead of failing. page_size() tells what was used.
  bool huge_pages_fallback = false;
  // NUMA node to take the pages from (mbind(MPOL_BIND) on the memory object, before any page
  // is touched, so populate and lock allocate there too); -1 (default): the kernel's policy.
  // A node the system does not have fails at creation (EINVAL, step "mbind"). Linux only:
  // elsewhere any other value than -1 is refused (not supported).
  int numa_node = -1;
};

// The page size a HugePages choice gives on this system: the PMD size for transparent (2 MiB
// on x86-64), 2 MiB or 1 GiB for explicit_*; 0 when the system offers none of that kind (and
// for none). Explicit pages must still be reserved to be available.
std::size_t huge_page_size(HugePages kind) noexcept;

// Owns one mirrored mapping. Move-only; the destructor releases both views and the range they
// occupy (POSIX: one munmap; Windows: two UnmapViewOfFile). The file descriptor or section
// handle is closed as soon as both views are mapped, so a live buffer holds no descriptor, no
// handle and no name. A default-constructed or moved-from buffer is empty.
//
// Windows: the section is pagefile-backed and committed at creation (SEC_COMMIT), so a ring
// counts against the commit limit like any allocation of its size, and running out of commit
// fails at creation ("CreateFileMapping"), never on first touch.
//
// Thread safety: creation and destruction of distinct buffers may run concurrently
// (no global state but an atomic counter for shm names). The bytes are plain memory.
class MirrorBuffer {
 public:
  MirrorBuffer() noexcept = default;

  // Maps at least min_elements * element_size bytes, rounded by mirror_size_for().
  // Throws as throw_error() describes. Verifies that a byte written through one view is
  // seen through the other before it returns. Complexity: a handful of system calls,
  // independent of the size; no page is touched but the first.
  explicit MirrorBuffer(std::size_t min_bytes, MirrorOptions options = {}) : MirrorBuffer(min_bytes, 1, options) {}
  MirrorBuffer(std::size_t min_elements, std::size_t element_size, MirrorOptions options = {});

  // Non-throwing creation: on failure returns an empty buffer and sets `err`; nothing is
  // left behind (no descriptor, mapping or name).
  static MirrorBuffer create(std::size_t min_elements, std::size_t element_size, MirrorOptions options,
                             Error& err) noexcept;

  MirrorBuffer(MirrorBuffer&& other) noexcept;
  MirrorBuffer& operator=(MirrorBuffer&& other) noexcept;
  MirrorBuffer(const MirrorBuffer&) = delete;
  MirrorBuffer& operator=(const MirrorBuffer&) = delete;
  ~MirrorBuffer();

  // First byte of view 1; view 2 starts at data() + size(). Null when empty.
  std::byte* data() const noexcept { return base_; }
  // Bytes in one view (the ring's physical size). Zero when empty.
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return base_ == nullptr; }
  explicit operator bool() const noexcept { return base_ != nullptr; }
  // The backend that created this buffer (automatic when empty).
  Backend backend() const noexcept { return backend_; }
  // Bytes per page of the memory behind it: allocation_granularity()'s page, or the hugetlb
  // page size with HugePages::explicit_*. Zero when empty.
  std::size_t page_size() const noexcept { return page_size_; }
  // True when the pages are mlock()ed (Residency::lock, or lock_if_allowed where allowed).
  bool locked() const noexcept { return locked_; }
  // True in a child of fork() when the buffer was created with ForkPolicy::exclude: the memory
  // is not mapped in this process. Destruction and reset() then release nothing. Costs a
  // getpid() call when the policy is exclude (not a hot-path query). Always false on Windows.
  bool inherited() const noexcept;

  // Releases the memory now; the buffer becomes empty.
  void reset() noexcept;

 private:
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  Backend backend_ = Backend::automatic;
  std::uint64_t owner_ = 0;  // creator's process id with ForkPolicy::exclude, else 0
  std::size_t page_size_ = 0;
  bool locked_ = false;
};

const char* to_string(Backend b) noexcept;

// Rollback blocks in the containers' headers. Without exceptions (-fno-exceptions) nothing
// can throw, so the rollback is dead code and these expand to plain statements.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define PICORING_TRY try
#define PICORING_CATCH_ALL catch (...)
#define PICORING_RETHROW throw
#else
#define PICORING_TRY if (true)
#define PICORING_CATCH_ALL else
#define PICORING_RETHROW static_cast<void>(0)
#endif

namespace detail {
// Out of line (in libpicoring) so that the containers' headers compile with -fno-exceptions; there a
// rejected call terminates (use the non-throwing forms instead).
[[noreturn]] void throw_out_of_range(const char* what);
[[noreturn]] void throw_length_error(const char* what);
[[noreturn]] void throw_invalid_argument(const char* what);
[[noreturn]] void throw_logic_error(const char* what);
}  // namespace detail

}  // namespace picoring

template <>
struct std::is_error_code_enum<picoring::errc> : std::true_type {};
