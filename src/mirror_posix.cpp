// POSIX backend (Linux, macOS, BSD): a shared-memory file descriptor mapped twice into one
// PROT_NONE reservation of twice the size. The two views are placed with MAP_FIXED *inside*
// the reservation we own, so no other thread can take the address range in between (unlike
// unmapping a probe region and mapping at a hint, which races).
#if !defined(_FILE_OFFSET_BITS)
// 32-bit systems: sizes above 2 GiB need a 64-bit off_t. A reserved name, as feature-test
// macros are.
// NOLINTNEXTLINE(bugprone-reserved-identifier)
#define _FILE_OFFSET_BITS 64
#endif

#include <fcntl.h>
#if defined(__linux__)
#include <linux/mempolicy.h>
#include <sys/syscall.h>
#endif
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "mirror_platform.hpp"

namespace picoring::detail {
namespace {

std::error_code os_error(int e) { return {e, std::system_category()}; }

// Errors that mean "this mechanism is not available here", as opposed to a real failure
// such as ENOMEM or EMFILE that another backend would meet too.
bool is_refusal(int e) {
  return e == ENOSYS || e == EPERM || e == EACCES || e == EINVAL || e == ENOENT || e == EOPNOTSUPP || e == EROFS;
}

int fail(Error& err, const char* step, int e = errno) {
  err = {os_error(e), step};
  return -1;
}

void close_keeping_errno(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
}

#if defined(__linux__)
// From <linux/memfd.h>, which older C libraries' <sys/mman.h> lacks.
#if !defined(MFD_HUGETLB)
#define MFD_HUGETLB 0x0004U
#endif
constexpr unsigned kMfdHugeShift = 26;  // MFD_HUGE_SHIFT: log2 of the page size in bits 26-31

int open_memfd(Error& err) {
  const int fd = ::memfd_create("picoring", MFD_CLOEXEC);
  return fd >= 0 ? fd : fail(err, "memfd_create");
}
// A memfd of hugetlb pages of `page` bytes (a power of two).
int open_memfd_huge(std::size_t page, Error& err) {
  const auto log2 = static_cast<unsigned>(__builtin_ctzll(page));
  const int fd = ::memfd_create("picoring", MFD_CLOEXEC | MFD_HUGETLB | (log2 << kMfdHugeShift));
  return fd >= 0 ? fd : fail(err, "memfd_create (MFD_HUGETLB)");
}

// The first number in a small /sys file, or 0.
std::size_t read_sys_number(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[64] = {};
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  return n > 0 ? static_cast<std::size_t>(std::strtoull(text, nullptr, 10)) : 0;
}
#endif

// A process-wide counter plus the pid plus a random value: two threads, or two processes,
// never compute the same name; O_EXCL catches a stale object left by a crashed process and
// we simply try another name.
int open_posix_shm(Error& err) {
  static std::atomic<std::uint32_t> counter{0};
  static const std::uint32_t salt = [] {
    const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    return static_cast<std::uint32_t>(t) ^ static_cast<std::uint32_t>(static_cast<std::uint64_t>(t) >> 32) ^
           static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(&counter));
  }();
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint32_t n = counter.fetch_add(1, std::memory_order_relaxed);
    // "/pr.<pid>.<n>.<mix>": at most 4 + 8 + 1 + 8 + 1 + 8 = 30 characters, under macOS's
    // 31-character limit for shm names.
    char name[32];
    std::snprintf(name, sizeof name, "/pr.%x.%x.%x", static_cast<unsigned>(::getpid()), static_cast<unsigned>(n),
                  static_cast<unsigned>((n * 2654435761u) ^ salt));
    const int fd = ::shm_open(name, O_RDWR | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return fail(err, "shm_open");
    }
    // The name is only a rendezvous we do not need: remove it at once so nothing can leak
    // it, not even a crash between here and the end of creation.
    if (::shm_unlink(name) != 0) {
      const int e = errno;
      ::close(fd);
      return fail(err, "shm_unlink", e);
    }
    // shm_open cannot set close-on-exec atomically; nothing of ours forks in between.
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
  }
  return fail(err, "shm_open (no unique name after 64 tries)", EEXIST);
}

int open_tmpfile(Error& err) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): only a concurrent setenv races, and that is the caller's
  const char* tmpdir = std::getenv("TMPDIR");
  const char* dirs[] = {"/dev/shm", tmpdir, "/tmp"};
  int last = ENOENT;
  for (const char* dir : dirs) {
    if (dir == nullptr || *dir == '\0') continue;
    // The pid in the name tells whose file it is while it exists (between mkostemp and
    // unlink, or after a crash in between).
    std::string path = std::string(dir) + "/picoring-" + std::to_string(::getpid()) + "-XXXXXX";
#if defined(__linux__) || defined(__FreeBSD__)
    const int fd = ::mkostemp(path.data(), O_CLOEXEC);
#else
    const int fd = ::mkstemp(path.data());
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    if (fd < 0) {
      last = errno;
      continue;
    }
    if (::unlink(path.c_str()) != 0) {
      const int e = errno;
      ::close(fd);
      return fail(err, "unlink temporary file", e);
    }
    return fd;
  }
  return fail(err, "mkostemp", last);
}

// Sizes the object. tmpfs mounts (/dev/shm, /tmp) have a size limit that ftruncate does not
// check; a ring larger than the free space there would be created and then die of SIGBUS on
// first write. Allocating the blocks now turns that into ENOSPC at creation. memfd objects
// live on the kernel's internal mount, which has no such limit, and stay sparse.
bool size_object(int fd, std::size_t size, Backend backend, Error& err) {
  if (size > static_cast<std::size_t>(std::numeric_limits<off_t>::max())) {
    err = {make_error_code(errc::size_overflow), "ftruncate (size exceeds off_t)"};
    return false;
  }
  // Growing a file past RLIMIT_FSIZE (ulimit -f, common in sandboxes and CI runners) does not
  // fail: the kernel sends SIGXFSZ, which kills the process. memfd objects count too. Check
  // first and report what ftruncate would have reported with the signal ignored.
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      static_cast<std::uint64_t>(size) > static_cast<std::uint64_t>(limit.rlim_cur)) {
    err = {os_error(EFBIG), "ftruncate (size exceeds RLIMIT_FSIZE)"};
    return false;
  }
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    fail(err, "ftruncate");
    return false;
  }
#if defined(__linux__)
  if (backend != Backend::memfd) {
    const int e = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (e != 0 && e != EOPNOTSUPP && e != EINVAL) {
      fail(err, "posix_fallocate", e);
      return false;
    }
  }
#else
  (void)backend;
#endif
  return true;
}

int open_backend(Backend backend, Error& err) {
  switch (backend) {
    case Backend::memfd:
#if defined(__linux__)
      return open_memfd(err);
#else
      return fail(err, "memfd_create (not available on this system)", ENOSYS);
#endif
    case Backend::posix_shm:
      return open_posix_shm(err);
    case Backend::tmpfile:
      return open_tmpfile(err);
    case Backend::windows_placeholder:
    case Backend::windows_legacy:
      return fail(err, "select backend (Windows only: not available on this system)", ENOSYS);
    case Backend::automatic:
      break;
  }
  return fail(err, "select backend", EINVAL);
}

// A PROT_NONE reservation of 2 * size bytes starting at a multiple of `align` (a power of two;
// hugetlb views must start on a huge page, and transparent huge pages need aligned views).
// The slack around the aligned range is our own reservation, so trimming it races with no one.
std::byte* reserve(std::size_t size, std::size_t align, Error& err) {
  const std::size_t slack = align > 1 ? align : 0;
  if (2 * size > std::numeric_limits<std::size_t>::max() - slack) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return nullptr;
  }
  // MAP_NORESERVE: the reservation only holds addresses; it must not be charged as memory.
  void* reservation = ::mmap(nullptr, 2 * size + slack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reservation == MAP_FAILED) {
    fail(err, "mmap reservation (PROT_NONE, 2x size)");
    return nullptr;
  }
  auto* start = static_cast<std::byte*>(reservation);
  if (slack == 0) return start;
  const auto address = reinterpret_cast<std::uintptr_t>(start);
  const std::size_t head = static_cast<std::size_t>((align - address % align) % align);
  if (head != 0) ::munmap(start, head);
  if (slack - head != 0) ::munmap(start + head + 2 * size, slack - head);
  return start + head;
}

std::byte* map_views(int fd, std::size_t size, std::size_t align, bool hugetlb, const MirrorOptions& options,
                     Error& err) {
  std::byte* base = reserve(size, align, err);
  if (base == nullptr) return nullptr;
  const int prot = PROT_READ | PROT_WRITE;
  const char* step = nullptr;
  if (::mmap(base, size, prot, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    // hugetlb pages are reserved when the first view is mapped: ENOMEM means too few are free.
    step = hugetlb ? "mmap first view (hugetlb: too few free huge pages? see /proc/sys/vm/nr_hugepages)"
                   : "mmap first view (MAP_FIXED)";
  } else if (::mmap(base + size, size, prot, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    step = "mmap second view (MAP_FIXED)";
  }
#if defined(MADV_DONTFORK)
  else if (options.fork == ForkPolicy::exclude && ::madvise(base, 2 * size, MADV_DONTFORK) != 0) {
    step = "madvise(MADV_DONTFORK)";
  }
#else
  else if (options.fork == ForkPolicy::exclude && ::minherit(base, 2 * size, INHERIT_NONE) != 0) {
    step = "minherit(INHERIT_NONE)";
  }
#endif
  if (step != nullptr) {
    const int e = errno;
    ::munmap(base, 2 * size);  // removes the reservation and whatever view made it in
    fail(err, step, e);
    return nullptr;
  }
  return base;
}

std::byte* map_with(Backend backend, std::size_t size, const MirrorOptions& options, Error& err) {
  const int fd = open_backend(backend, err);
  if (fd < 0) return nullptr;
  std::byte* base = nullptr;
  const std::size_t align =
      options.huge_pages == HugePages::transparent ? query_huge_page_size(HugePages::transparent) : 0;
  if (size_object(fd, size, backend, err)) base = map_views(fd, size, align, false, options, err);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: kernels without shmem THP refuse it, and base pages are then what we have.
  if (base != nullptr && align != 0) ::madvise(base, 2 * size, MADV_HUGEPAGE);
#endif
  // The mappings keep the object alive; a live ring holds no descriptor.
  close_keeping_errno(fd);
  return base;
}

#if defined(__linux__)
std::byte* map_hugetlb(std::size_t size, std::size_t page, const MirrorOptions& options, Error& err) {
  const int fd = open_memfd_huge(page, err);
  if (fd < 0) return nullptr;
  std::byte* base = nullptr;
  if (size_object(fd, size, Backend::memfd, err)) base = map_views(fd, size, page, true, options, err);
  close_keeping_errno(fd);
  return base;
}
#endif

#if !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older C libraries lack the name
#endif

// Faults in every page of one view for writing. MADV_POPULATE_WRITE does it in one call (and
// reports ENOMEM instead of killing the process); kernels before 5.14 answer EINVAL, and a touch
// loop does the same work there: each page read and written back (the memory is fresh, so the
// write changes nothing but the page-table entry).
bool populate_view(std::byte* view, std::size_t size, Error& err) {
#if defined(__linux__)
  if (::madvise(view, size, MADV_POPULATE_WRITE) == 0) return true;
  if (errno != EINVAL) {
    fail(err, "madvise(MADV_POPULATE_WRITE)");
    return false;
  }
#else
  (void)err;
#endif
  const std::size_t page = query_granularity();
  for (std::size_t at = 0; at < size; at += page) {
    volatile std::byte* p = view + at;
    *p = *p;
  }
  return true;
}

// Binds the object's pages to one NUMA node. On a shared mapping the policy is the object's,
// so it holds for both views; set before any page is touched (the mirror check comes later).
bool bind_to_node(std::byte* base, std::size_t size, int node, Error& err) {
  if (node < 0) return true;
#if defined(__linux__)
  constexpr int kBits = 8 * static_cast<int>(sizeof(unsigned long));
  constexpr int kWords = 16;  // nodes 0..1023
  if (node >= kBits * kWords) {
    fail(err, "mbind (node number too large)", EINVAL);
    return false;
  }
  unsigned long mask[kWords] = {};
  mask[node / kBits] = 1UL << (node % kBits);
  if (::syscall(SYS_mbind, base, 2 * size, MPOL_BIND, mask, static_cast<unsigned long>(kBits) * kWords, 0UL) != 0) {
    fail(err, "mbind (MPOL_BIND to the requested NUMA node)");
    return false;
  }
  return true;
#else
  (void)base;
  (void)size;
  fail(err, "NUMA binding (Linux only)", ENOTSUP);
  return false;
#endif
}

// Applies options.residency to a fresh mapping. False, with err set, when a required lock is
// refused or population fails; the caller unmaps.
bool make_resident(std::byte* base, std::size_t size, Residency residency, bool& locked, Error& err) {
  locked = false;
  if (residency == Residency::on_demand) return true;
  if (residency == Residency::lock || residency == Residency::lock_if_allowed) {
    // mlock faults every page in, through both views, and keeps them.
    if (::mlock(base, 2 * size) == 0) {
      locked = true;
      write_each_page(base, 2 * size);
      return true;
    }
    if (residency == Residency::lock) {
      fail(err, "mlock (both views count against RLIMIT_MEMLOCK, ulimit -l)");
      return false;
    }
  }
  if (!populate_view(base, size, err) || !populate_view(base + size, size, err)) return false;
  write_each_page(base, 2 * size);
  return true;
}

}  // namespace

std::size_t query_granularity() noexcept {
  const long page = ::sysconf(_SC_PAGESIZE);
  // sysconf cannot fail for this name on any system we know. If it did, 64 KiB is a multiple of
  // every page size in use (4, 16, 64 KiB), so sizes and view addresses stay valid; a guess of
  // 4 KiB would not be on a 16 KiB-page system.
  return page > 0 ? static_cast<std::size_t>(page) : std::size_t{65536};
}

std::size_t query_huge_page_size(HugePages kind) noexcept {
#if defined(__linux__)
  switch (kind) {
    case HugePages::transparent:
      return read_sys_number("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
    case HugePages::explicit_2mb:
      return ::access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0 ? std::size_t{2} << 20 : 0;
    case HugePages::explicit_1gb:
      return ::access("/sys/kernel/mm/hugepages/hugepages-1048576kB", F_OK) == 0 ? std::size_t{1} << 30 : 0;
    case HugePages::none:
      break;
  }
#else
  (void)kind;
#endif
  return 0;
}

namespace {

// The views, by the backend options ask for (or each in turn for automatic).
Mapped map_base_pages(std::size_t size, const MirrorOptions& options, Error& err) {
  if (options.backend != Backend::automatic) {
    std::byte* base = map_with(options.backend, size, options, err);
    return {base, options.backend, query_granularity(), false};
  }
  for (Backend backend : {Backend::memfd, Backend::posix_shm, Backend::tmpfile}) {
    err = {};
    std::byte* base = map_with(backend, size, options, err);
    if (base != nullptr) return {base, backend, query_granularity(), false};
    // Only a refusal of the mechanism itself justifies trying the next one.
    if (err.code.category() != std::system_category() || !is_refusal(err.code.value())) break;
  }
  return {};
}

Mapped map_pages(std::size_t size, const MirrorOptions& options, Error& err) {
  if (options.huge_pages != HugePages::explicit_2mb && options.huge_pages != HugePages::explicit_1gb)
    return map_base_pages(size, options, err);
#if defined(__linux__)
  if (options.backend == Backend::automatic || options.backend == Backend::memfd) {
    const std::size_t page = query_huge_page_size(options.huge_pages);
    if (std::byte* base = map_hugetlb(size, page, options, err)) return {base, Backend::memfd, page, false};
  } else {
    err = {os_error(EINVAL), "select backend (explicit huge pages need memfd)"};
  }
#else
  err = {os_error(ENOTSUP), "huge pages (hugetlb is Linux only)"};
#endif
  if (!options.huge_pages_fallback) return {};
  err = {};
  return map_base_pages(size, options, err);
}

}  // namespace

Mapped map_mirror(std::size_t size, const MirrorOptions& options, Error& err) noexcept {
  if (size > std::numeric_limits<std::size_t>::max() / 2) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return {};
  }
  Mapped mapped = map_pages(size, options, err);
  if (mapped.base == nullptr) return {};
  if (!bind_to_node(mapped.base, size, options.numa_node, err) ||
      !make_resident(mapped.base, size, options.residency, mapped.locked, err)) {
    ::munmap(mapped.base, 2 * size);
    return {};
  }
  return mapped;
}

std::uint64_t process_id() noexcept { return static_cast<std::uint64_t>(::getpid()); }

// munmap also unlocks what mlock locked: `locked` needs no work here.
void unmap_mirror(std::byte* base, std::size_t size, bool /*locked*/) noexcept { ::munmap(base, 2 * size); }

}  // namespace picoring::detail
