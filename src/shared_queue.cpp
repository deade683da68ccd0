// The operating-system half of the shared queues (picoring/shared_queue.hpp): the sealed memfd,
// its mappings, shared futexes, the peer's liveness and descriptor passing on Linux; a section,
// its views, named events and process handles on Windows. Elsewhere creation and attachment
// report "not supported".
#include "picoring/shared_queue.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/time_types.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mirror_platform.hpp"
#elif defined(_WIN32)
#include <windows.h>

#include <cwchar>

#include "mirror_platform.hpp"
#endif

namespace picoring {
namespace detail {

#if defined(_WIN32)
namespace {
// The queue's memory is a pagefile-backed section; its handle travels where Linux passes the
// memfd. Handles have 32 significant bits on every Windows (sign-extended between 32- and 64-bit
// processes, as Microsoft documents for interprocess use), so an int carries one. A handle is an
// integer the system gives out as a pointer type: the cast is what it is for.
HANDLE as_handle(int h) noexcept {
  return reinterpret_cast<HANDLE>(static_cast<std::intptr_t>(h));  // NOLINT(performance-no-int-to-ptr)
}
int as_int(HANDLE h) noexcept { return static_cast<int>(reinterpret_cast<std::intptr_t>(h)); }
}  // namespace
#endif

#if defined(__linux__) || defined(_WIN32)
namespace {

// Each system's half below defines these two.
std::int32_t self_pid() noexcept;
// True when the process `pid` names has exited or never was: its role may be claimed again.
bool process_gone(std::int32_t pid) noexcept;

Error corrupt(const char* step) { return {make_error_code(errc::corrupt_shared_state), step}; }

std::atomic<std::int32_t>& pid_of(SharedHeader& h, SharedRole role) noexcept {
  return role == SharedRole::writer ? h.writer_pid : h.reader_pid;
}

bool valid(Residency residency, Error& err) noexcept {
  if (residency == Residency::on_demand || residency == Residency::populate || residency == Residency::lock ||
      residency == Residency::lock_if_allowed)
    return true;
  err = {std::make_error_code(std::errc::invalid_argument), "select residency"};
  return false;
}

// The creator's header, written in zeroed memory before the queue's handle can leave this
// process: counters 0, open, and the creator's role claimed.
void write_header(SharedHeader* at, SharedLayout layout, std::size_t header_bytes, std::size_t data_bytes,
                  SharedRole role, std::uint32_t fences, std::uint64_t wake_id) noexcept {
  SharedHeader* h = std::construct_at(at);
  h->magic = SharedHeader::kMagic;
  h->version = SharedHeader::kVersion;
  h->kind = layout.kind;
  h->element_size = layout.element_size;
  h->header_bytes = header_bytes;
  h->data_bytes = data_bytes;
  h->wake_id = wake_id;
  h->fences.store(fences, std::memory_order_relaxed);
  pid_of(*h, role).store(self_pid(), std::memory_order_release);
}

// The layout as the creator wrote it must be what the memory's size says: read once, then only
// the values computed here are used.
bool check_header(const SharedHeader& h, SharedLayout layout, std::size_t header_bytes, std::size_t data_bytes,
                  Error& err) noexcept {
  if (h.magic != SharedHeader::kMagic || h.version != SharedHeader::kVersion) {
    err = corrupt("check header (magic and version: not a picoring shared queue of this version)");
  } else if (h.kind != layout.kind) {
    err = corrupt("check header (kind: records, bytes and slots do not mix, or not a known kind)");
  } else if (h.element_size != layout.element_size || data_bytes % layout.element_size != 0) {
    err = corrupt("check header (element size: the slots are of another type's size)");
  } else if (h.header_bytes != header_bytes || h.data_bytes != data_bytes) {
    err = corrupt("check header (layout, page size and capacity against the memory's size)");
  } else {
    return true;
  }
  return false;
}

// The role is free, or held by a process that has exited without giving it up (a crash): a new
// reader then continues from the records the dead one had not released (at least once).
bool claim_role(SharedHeader& h, SharedRole role, Error& err) noexcept {
  auto& holder = pid_of(h, role);
  std::int32_t seen = 0;
  bool claimed = holder.compare_exchange_strong(seen, self_pid(), std::memory_order_acq_rel);
  if (!claimed && seen != 0 && seen != self_pid() && process_gone(seen)) {
    claimed = holder.compare_exchange_strong(seen, self_pid(), std::memory_order_acq_rel);
  }
  if (!claimed) {
    err = {std::make_error_code(std::errc::device_or_resource_busy), role == SharedRole::writer
                                                                         ? "claim the writer role (the queue has one)"
                                                                         : "claim the reader role (the queue has one)"};
  }
  return claimed;
}

// Leaving: the queue closed (which wakes the peer), the role given up if still ours.
void give_up_role(SharedRegion& r, SharedHeader& h, SharedRole role) noexcept {
  r.close();
  std::int32_t me = self_pid();
  pid_of(h, role).compare_exchange_strong(me, 0, std::memory_order_acq_rel);
}

}  // namespace
#endif

#if defined(__linux__)
namespace {

constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW;

Error os_error(const char* step) { return {std::error_code(errno, std::system_category()), step}; }

std::int32_t self_pid() noexcept { return static_cast<std::int32_t>(::getpid()); }
// A negative id would make kill() name a process group: such a header is not believed.
bool process_gone(std::int32_t pid) noexcept { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

// Registers this process for membarrier(GLOBAL_EXPEDITED), once: then a sleeper in the other
// process can run a barrier on this process's threads. False when the kernel (before 4.16), a
// seccomp filter or an emulator refuses.
//
// The commands are the kernel's ABI values, not <linux/membarrier.h>'s names: those are enum
// constants, invisible to the preprocessor, so a `#if defined(MEMBARRIER_CMD_...)` test (which an
// earlier version had) is always false and silently left every queue on full fences.
constexpr int kMembarrierQuery = 0;
constexpr int kMembarrierGlobalExpedited = 1 << 1;
constexpr int kMembarrierRegisterGlobalExpedited = 1 << 2;

bool global_membarrier_registered() noexcept {
  static const bool registered = [] {
#if defined(SYS_membarrier)
    const long cmds = ::syscall(SYS_membarrier, kMembarrierQuery, 0, 0);
    return cmds > 0 && (cmds & kMembarrierGlobalExpedited) != 0 &&
           ::syscall(SYS_membarrier, kMembarrierRegisterGlobalExpedited, 0, 0) == 0;
#else
    return false;
#endif
  }();
  return registered;
}

// Maps `data_bytes` of fd from offset `header_bytes` twice, back to back, inside one reservation
// (never unmapped and mapped again elsewhere: no other thread can take the range meanwhile).
std::byte* map_mirrored(int fd, std::size_t header_bytes, std::size_t data_bytes, Error& err) noexcept {
  void* base = ::mmap(nullptr, 2 * data_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    err = os_error("mmap reservation (PROT_NONE, 2x size)");
    return nullptr;
  }
  auto* bytes = static_cast<std::byte*>(base);
  for (int view = 0; view < 2; ++view) {
    void* at = bytes + static_cast<std::size_t>(view) * data_bytes;
    if (::mmap(at, data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(header_bytes)) ==
        MAP_FAILED) {
      err = os_error(view == 0 ? "mmap first data view (MAP_FIXED)" : "mmap second data view (MAP_FIXED)");
      ::munmap(base, 2 * data_bytes);
      return nullptr;
    }
  }
  // A child of fork() gets neither view (as MirrorBuffer's default): it attaches by descriptor.
  if (::madvise(base, 2 * data_bytes, MADV_DONTFORK) != 0) {
    err = os_error("madvise(MADV_DONTFORK)");
    ::munmap(base, 2 * data_bytes);
    return nullptr;
  }
  return bytes;
}

SharedHeader* map_header(int fd, std::size_t header_bytes, Error& err) noexcept {
  void* h = ::mmap(nullptr, header_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (h == MAP_FAILED) {
    err = os_error("mmap header");
    return nullptr;
  }
  if (::madvise(h, header_bytes, MADV_DONTFORK) != 0) {
    err = os_error("madvise(MADV_DONTFORK)");
    ::munmap(h, header_bytes);
    return nullptr;
  }
  return static_cast<SharedHeader*>(h);
}

#if !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older C libraries lack the name
#endif

// Faults in [at, at + bytes) for writing without writing anything: the peer may be writing
// records there. Kernels before 5.14 (EINVAL) get a reading touch per page, which maps the
// shared pages too.
bool populate(std::byte* at, std::size_t bytes, Error& err) noexcept {
  if (::madvise(at, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno != EINVAL) {
    err = os_error("madvise(MADV_POPULATE_WRITE)");
    return false;
  }
  const std::size_t page = allocation_granularity();
  unsigned sink = 0;
  for (std::size_t off = 0; off < bytes; off += page)
    sink += static_cast<unsigned>(*static_cast<volatile std::byte*>(at + off));
  static_cast<void>(sink);
  return true;
}

}  // namespace

// This process's mapping (header page, both data views) made resident as asked.
bool SharedRegion::make_resident(SharedRegion& r, Residency residency, Error& err) noexcept {
  using detail::write_each_page;
  if (residency == Residency::on_demand) return true;
  auto* header = reinterpret_cast<std::byte*>(r.header_);
  const auto data = static_cast<std::size_t>(r.capacity_);
  if (residency == Residency::lock || residency == Residency::lock_if_allowed) {
    if (::mlock(header, r.header_bytes_) == 0 && ::mlock(r.data_, 2 * data) == 0) {
      r.locked_ = true;
      write_each_page(r.data_, 2 * data);
      return true;
    }
    const int e = errno;
    ::munlock(header, r.header_bytes_);  // unmapping would unlock too; the fallback keeps the mapping
    if (residency == Residency::lock) {
      err = {std::error_code(e, std::system_category()),
             "mlock (header and both data views count against RLIMIT_MEMLOCK, ulimit -l)"};
      return false;
    }
  }
  if (!populate(header, r.header_bytes_, err) || !populate(r.data_, 2 * data, err)) return false;
  write_each_page(r.data_, 2 * data);
  return true;
}

SharedRegion SharedRegion::create(std::size_t min_capacity, SharedLayout layout, SharedRole role, Residency residency,
                                  Error& err) noexcept {
  err = {};
  if (!valid(residency, err)) return {};
  const std::size_t page = allocation_granularity();
  // Whole pages of whole units (every page size is a multiple of the records' 8-byte
  // alignment); the header takes one page of its own.
  const std::size_t data = mirror_size_for(min_capacity, layout.element_size, err);
  if (err) return {};
  if (data > (std::numeric_limits<std::size_t>::max() - page) / 2 ||
      data > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()) - page) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return {};
  }
  SharedRegion r;
  r.owner_ = self_pid();
  r.fd_ = static_cast<int>(::syscall(SYS_memfd_create, "picoring-shared-queue", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (r.fd_ < 0) {
    err = os_error("memfd_create(MFD_ALLOW_SEALING)");
    return {};
  }
  if (::ftruncate(r.fd_, static_cast<off_t>(page + data)) != 0) {
    err = os_error("ftruncate");
    return {};
  }
  // Sealed before the descriptor can leave this process: the size never changes again.
  if (::fcntl(r.fd_, F_ADD_SEALS, kRequiredSeals | F_SEAL_SEAL) != 0) {
    err = os_error("fcntl(F_ADD_SEALS)");
    return {};
  }
  r.header_bytes_ = page;
  r.header_ = map_header(r.fd_, page, err);
  if (r.header_ == nullptr) return {};
  r.data_ = map_mirrored(r.fd_, page, data, err);
  if (r.data_ == nullptr) return {};
  r.capacity_ = data;
  if (!make_resident(r, residency, err)) return {};
  write_header(r.header_, layout, page, data, role, global_membarrier_registered() ? 0 : 1, 0);
  r.role_ = role;
  r.has_role_ = true;
  return r;
}

SharedRegion SharedRegion::attach(int fd, SharedLayout layout, SharedRole role, Residency residency,
                                  Error& err) noexcept {
  err = {};
  if (!valid(residency, err)) return {};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    err = os_error("fstat");
    return {};
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    err = os_error("fcntl(F_GET_SEALS) (not a memfd?)");
    return {};
  }
  if ((seals & kRequiredSeals) != kRequiredSeals) {
    err = corrupt("check seals (the memfd must be sealed against shrinking and growing)");
    return {};
  }
  const std::size_t page = allocation_granularity();
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (st.st_size <= 0 || size <= page || size % page != 0 ||
      (size - page) / 2 > std::numeric_limits<std::size_t>::max() / 2) {
    err = corrupt("check size (one header page and whole pages of data)");
    return {};
  }
  const auto data = static_cast<std::size_t>(size - page);
  SharedRegion r;
  r.owner_ = self_pid();
  r.fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r.fd_ < 0) {
    err = os_error("fcntl(F_DUPFD_CLOEXEC)");
    return {};
  }
  r.header_bytes_ = page;
  r.header_ = map_header(r.fd_, page, err);
  if (r.header_ == nullptr) return {};
  if (!check_header(*r.header_, layout, page, data, err)) return {};
  r.data_ = map_mirrored(r.fd_, page, data, err);
  if (r.data_ == nullptr) return {};
  r.capacity_ = data;
  if (!make_resident(r, residency, err)) return {};
  if (!global_membarrier_registered()) r.header_->fences.store(1, std::memory_order_seq_cst);
  if (!claim_role(*r.header_, role, err)) return {};
  r.role_ = role;
  r.has_role_ = true;
  return r;
}

SharedRegion::~SharedRegion() {
  // In a child of fork() nothing here is mapped (MADV_DONTFORK) and the queue is the parent's.
  if (owner_ != 0 && owner_ != self_pid()) return;
  if (header_ != nullptr) {
    if (has_role_) give_up_role(*this, *header_, role_);
    ::munmap(header_, header_bytes_);
  }
  if (data_ != nullptr) ::munmap(data_, 2 * static_cast<std::size_t>(capacity_));
  if (peer_fd_ >= 0) ::close(peer_fd_);
  close_fd();
}

void SharedRegion::close_fd() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool SharedRegion::peer_alive() noexcept {
  if (header_ == nullptr) return false;
  const SharedRole peer = role_ == SharedRole::writer ? SharedRole::reader : SharedRole::writer;
  const std::int32_t pid = pid_of(*header_, peer).load(std::memory_order_acquire);
  if (pid == 0) return true;  // not attached yet (a writer may start before its reader)
  if (pid < 0) return false;  // no process has such an id: a corrupt header
  if (pid != peer_pid_) {
    if (peer_fd_ >= 0) ::close(peer_fd_);
    peer_pid_ = pid;
#if defined(SYS_pidfd_open)
    peer_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (peer_fd_ < 0 && errno == ESRCH) return false;
#else
    peer_fd_ = -1;
#endif
  }
  if (peer_fd_ >= 0) {
    pollfd p{peer_fd_, POLLIN, 0};
    // A pidfd becomes readable when its process exits (a zombie included).
    return ::poll(&p, 1, 0) == 0;
  }
  return ::kill(pid, 0) == 0 || errno != ESRCH;  // kernels before 5.3: no pidfd
}

void SharedRegion::park(std::atomic<std::uint32_t>& word, std::uint32_t seen,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) return;
  auto left = deadline - now;
  if (left > std::chrono::milliseconds(20)) left = std::chrono::milliseconds(20);  // then the peer is looked at
  timespec ts{};
  ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
  // FUTEX_WAIT without _PRIVATE: the word is in memory shared with another process.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void SharedRegion::heavy_fence() noexcept {
#if defined(SYS_membarrier)
  if (header_->fences.load(std::memory_order_relaxed) == 0) {
    if (::syscall(SYS_membarrier, kMembarrierGlobalExpedited, 0, 0) == 0) return;
    header_->fences.store(1, std::memory_order_seq_cst);  // refused now (seccomp): fences from here on
  }
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void SharedRegion::wake(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

#elif defined(_WIN32)
namespace {

Error os_error(const char* step, DWORD e = ::GetLastError()) {
  return {std::error_code(static_cast<int>(e), std::system_category()), step};
}
// Process ids are DWORDs kept in the header's int32 fields bit for bit (0: none); every other
// value, negative ones included, names a process.
std::int32_t self_pid() noexcept { return static_cast<std::int32_t>(::GetCurrentProcessId()); }
DWORD as_process_id(std::int32_t pid) noexcept { return static_cast<DWORD>(static_cast<std::uint32_t>(pid)); }

// Windows reuses an id only once nothing holds a handle to the old process.
bool process_gone(std::int32_t pid) noexcept {
  HANDLE p = ::OpenProcess(SYNCHRONIZE, FALSE, as_process_id(pid));
  if (p == nullptr) return ::GetLastError() == ERROR_INVALID_PARAMETER;  // no such process
  const bool gone = ::WaitForSingleObject(p, 0) == WAIT_OBJECT_0;
  ::CloseHandle(p);
  return gone;
}

// The size of the section behind h, from a view of all of it (released at once).
bool section_size(HANDLE h, std::uint64_t& size, Error& err) noexcept {
  void* view = ::MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
  if (view == nullptr) {
    err = os_error("MapViewOfFile (the whole section, to measure it: not a section handle?)");
    return false;
  }
  MEMORY_BASIC_INFORMATION info{};
  const SIZE_T got = ::VirtualQuery(view, &info, sizeof info);
  const DWORD e = ::GetLastError();
  ::UnmapViewOfFile(view);
  if (got == 0) {
    err = os_error("VirtualQuery (the section's size)", e);
    return false;
  }
  size = info.RegionSize;
  return true;
}

SharedHeader* map_header(HANDLE section, std::size_t header_bytes, Error& err) noexcept {
  void* h = ::MapViewOfFile(section, FILE_MAP_ALL_ACCESS, 0, 0, header_bytes);
  if (h == nullptr) err = os_error("MapViewOfFile (header)");
  return static_cast<SharedHeader*>(h);
}

// The wake-up events stand for Linux's shared futexes (WaitOnAddress does not cross processes):
// auto-reset, one per word, each waited on by its one sleeper (the reader on data, the writer on
// space). They are named from the header's wake_id, so the second process needs no handle from
// the first, and the names go with the last handle. A peer that writes another id can only make
// this side wait on another picoring queue's event: its waits then end at the 20 ms look.
HANDLE open_event(std::uint64_t id, bool data, bool& existed, Error& err) noexcept {
  wchar_t name[64] = {};
  std::swprintf(name, 64, L"Local\\picoring-queue-%016llx-%ls", static_cast<unsigned long long>(id),
                data ? L"data" : L"space");
  HANDLE e = ::CreateEventW(nullptr, FALSE, FALSE, name);
  if (e == nullptr) {
    err = os_error(data ? "CreateEvent (data wake-up event)" : "CreateEvent (space wake-up event)");
    return nullptr;
  }
  existed = ::GetLastError() == ERROR_ALREADY_EXISTS;
  return e;
}

// A fresh id: this process's id, a clock and a counter, mixed (splitmix64's finaliser).
std::uint64_t new_wake_id() noexcept {
  static std::atomic<std::uint64_t> counter{0};
  LARGE_INTEGER t{};
  ::QueryPerformanceCounter(&t);
  std::uint64_t x = (static_cast<std::uint64_t>(::GetCurrentProcessId()) << 32) ^
                    static_cast<std::uint64_t>(t.QuadPart) ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

}  // namespace

bool SharedRegion::make_resident(SharedRegion& r, Residency residency, Error& err) noexcept {
  using detail::write_each_page;
  if (residency == Residency::on_demand) return true;
  const auto data = static_cast<std::size_t>(r.capacity_);
  if (residency == Residency::lock || residency == Residency::lock_if_allowed) {
    Error lock_err;
    r.locked_ = lock_mirror_views(r.data_, data, lock_err);
    if (!r.locked_ && residency == Residency::lock) {
      err = lock_err;
      return false;
    }
  }
  // The section is committed (SEC_COMMIT): a read per page maps it in this process without
  // writing what the peer may be writing, then one store per page as on Linux.
  SYSTEM_INFO info{};
  ::GetSystemInfo(&info);
  const std::size_t page = info.dwPageSize > 0 ? info.dwPageSize : 4096;
  unsigned sink = 0;
  auto* header = reinterpret_cast<std::byte*>(r.header_);
  for (std::size_t off = 0; off < r.header_bytes_; off += page)
    sink += static_cast<unsigned>(*static_cast<volatile std::byte*>(header + off));
  static_cast<void>(sink);
  write_each_page(r.data_, 2 * data);
  return true;
}

SharedRegion SharedRegion::create(std::size_t min_capacity, SharedLayout layout, SharedRole role, Residency residency,
                                  Error& err) noexcept {
  err = {};
  if (!valid(residency, err)) return {};
  const std::size_t page = allocation_granularity();  // 64 KiB: views start on it
  const std::size_t data = mirror_size_for(min_capacity, layout.element_size, err);
  if (err) return {};
  if (data > (std::numeric_limits<std::size_t>::max() - page) / 2) {
    err = {make_error_code(errc::size_overflow), "size computation"};
    return {};
  }
  SharedRegion r;
  r.owner_ = self_pid();
  const auto total = static_cast<std::uint64_t>(page) + data;
  HANDLE section =
      ::CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE | SEC_COMMIT, static_cast<DWORD>(total >> 32),
                           static_cast<DWORD>(total & 0xFFFFFFFFu), nullptr);
  if (section == nullptr) {
    err = os_error("CreateFileMapping (SEC_COMMIT)");
    return {};
  }
  r.fd_ = as_int(section);
  r.header_bytes_ = page;
  r.header_ = map_header(section, page, err);
  if (r.header_ == nullptr) return {};
  r.data_ = map_section_mirrored(section, page, data, err);
  if (r.data_ == nullptr) return {};
  r.capacity_ = data;
  // Two new events; an id whose names exist already (another queue's) is drawn again.
  std::uint64_t id = 0;
  for (int attempt = 0; attempt < 16 && r.space_event_ < 0; ++attempt) {
    id = new_wake_id();
    bool existed = false;
    HANDLE d = open_event(id, true, existed, err);
    if (d == nullptr) return {};
    if (existed) {
      ::CloseHandle(d);
      continue;
    }
    HANDLE s = open_event(id, false, existed, err);
    if (s == nullptr || existed) {
      ::CloseHandle(d);
      if (s == nullptr) return {};
      ::CloseHandle(s);
      continue;
    }
    r.data_event_ = as_int(d);
    r.space_event_ = as_int(s);
  }
  if (r.space_event_ < 0) {
    err = os_error("CreateEvent (a new name for the wake-up events, 16 tries)", ERROR_ALREADY_EXISTS);
    return {};
  }
  if (!make_resident(r, residency, err)) return {};
  write_header(r.header_, layout, page, data, role, 1, id);  // fences: no membarrier across processes
  r.role_ = role;
  r.has_role_ = true;
  return r;
}

SharedRegion SharedRegion::attach(int fd, SharedLayout layout, SharedRole role, Residency residency,
                                  Error& err) noexcept {
  err = {};
  if (!valid(residency, err)) return {};
  std::uint64_t size = 0;
  if (!section_size(as_handle(fd), size, err)) return {};
  const std::size_t page = allocation_granularity();
  if (size <= page || size % page != 0 || (size - page) / 2 > std::numeric_limits<std::size_t>::max() / 2) {
    err = corrupt("check size (one header granule and whole granules of data)");
    return {};
  }
  const auto data = static_cast<std::size_t>(size - page);
  SharedRegion r;
  r.owner_ = self_pid();
  HANDLE mine = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), as_handle(fd), ::GetCurrentProcess(), &mine, 0, FALSE,
                         DUPLICATE_SAME_ACCESS)) {
    err = os_error("DuplicateHandle (a handle of our own on the section)");
    return {};
  }
  r.fd_ = as_int(mine);
  r.header_bytes_ = page;
  r.header_ = map_header(mine, page, err);
  if (r.header_ == nullptr) return {};
  if (!check_header(*r.header_, layout, page, data, err)) return {};
  const std::uint64_t id = r.header_->wake_id;
  if (id == 0) {
    err = corrupt("check header (no wake-up events named)");
    return {};
  }
  r.data_ = map_section_mirrored(mine, page, data, err);
  if (r.data_ == nullptr) return {};
  r.capacity_ = data;
  bool existed = false;
  HANDLE d = open_event(id, true, existed, err);
  if (d == nullptr) return {};
  r.data_event_ = as_int(d);
  HANDLE s = open_event(id, false, existed, err);
  if (s == nullptr) return {};
  r.space_event_ = as_int(s);
  if (!make_resident(r, residency, err)) return {};
  r.header_->fences.store(1, std::memory_order_seq_cst);
  if (!claim_role(*r.header_, role, err)) return {};
  r.role_ = role;
  r.has_role_ = true;
  return r;
}

SharedRegion::~SharedRegion() {
  if (header_ != nullptr) {
    if (has_role_) give_up_role(*this, *header_, role_);
    ::UnmapViewOfFile(header_);
  }
  if (data_ != nullptr) unmap_mirror(data_, static_cast<std::size_t>(capacity_), locked_);
  if (data_event_ >= 0) ::CloseHandle(as_handle(data_event_));
  if (space_event_ >= 0) ::CloseHandle(as_handle(space_event_));
  if (peer_fd_ >= 0) ::CloseHandle(as_handle(peer_fd_));
  close_fd();
}

void SharedRegion::close_fd() noexcept {
  if (fd_ >= 0) ::CloseHandle(as_handle(fd_));
  fd_ = -1;
}

bool SharedRegion::peer_alive() noexcept {
  if (header_ == nullptr) return false;
  const SharedRole peer = role_ == SharedRole::writer ? SharedRole::reader : SharedRole::writer;
  const std::int32_t pid = pid_of(*header_, peer).load(std::memory_order_acquire);
  if (pid == 0) return true;  // not attached yet (a writer may start before its reader)
  if (pid != peer_pid_) {
    if (peer_fd_ >= 0) ::CloseHandle(as_handle(peer_fd_));
    peer_fd_ = -1;
    peer_pid_ = pid;
    HANDLE p = ::OpenProcess(SYNCHRONIZE, FALSE, as_process_id(pid));
    if (p == nullptr) return ::GetLastError() != ERROR_INVALID_PARAMETER;  // no such process: gone
    peer_fd_ = as_int(p);  // held: the id cannot be reused while we look at it
  }
  if (peer_fd_ < 0) return !process_gone(pid);
  return ::WaitForSingleObject(as_handle(peer_fd_), 0) == WAIT_TIMEOUT;
}

void SharedRegion::park(std::atomic<std::uint32_t>& word, std::uint32_t seen,
                        std::chrono::steady_clock::time_point deadline) noexcept {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline || word.load(std::memory_order_acquire) != seen) return;
  auto left = deadline - now;
  if (left > std::chrono::milliseconds(20)) left = std::chrono::milliseconds(20);  // then the peer is looked at
  const int event = &word == &header_->data_word ? data_event_ : space_event_;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  // A wake-up set while nobody waited is kept by the event and ends the next wait at once:
  // none is lost between the look at the word above and the wait.
  ::WaitForSingleObject(as_handle(event), static_cast<DWORD>(ms));
}

void SharedRegion::heavy_fence() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

void SharedRegion::wake(std::atomic<std::uint32_t>& word) noexcept {
  if (header_ == nullptr) return;
  ::SetEvent(as_handle(&word == &header_->data_word ? data_event_ : space_event_));
}

#else  // neither Linux nor Windows

SharedRegion SharedRegion::create(std::size_t, SharedLayout, SharedRole, Residency, Error& err) noexcept {
  err = {std::make_error_code(std::errc::not_supported), "shared queues (Linux and Windows only)"};
  return {};
}
SharedRegion SharedRegion::attach(int, SharedLayout, SharedRole, Residency, Error& err) noexcept {
  err = {std::make_error_code(std::errc::not_supported), "shared queues (Linux and Windows only)"};
  return {};
}
SharedRegion::~SharedRegion() = default;
void SharedRegion::close_fd() noexcept {}
bool SharedRegion::peer_alive() noexcept { return false; }
void SharedRegion::park(std::atomic<std::uint32_t>&, std::uint32_t, std::chrono::steady_clock::time_point) noexcept {}
void SharedRegion::wake(std::atomic<std::uint32_t>&) noexcept {}
void SharedRegion::heavy_fence() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

#endif

void SharedRegion::close() noexcept {
  if (header_ == nullptr) return;
  header_->closed.store(1, std::memory_order_seq_cst);
  header_->data_word.fetch_add(1, std::memory_order_seq_cst);
  header_->space_word.fetch_add(1, std::memory_order_seq_cst);
  wake(header_->data_word);
  wake(header_->space_word);
}

// The fan-in's half of the wake handshake for many lanes at once: one membarrier serves every
// writer process (GLOBAL_EXPEDITED runs a barrier on all of them), then a fence for the lanes in
// fence mode. A refused membarrier switches the lanes that relied on it to fences, as
// SharedRegion::heavy_fence does for one.
void heavy_fence_lanes(SharedHeader* const* headers, std::size_t n) noexcept {
#if defined(__linux__) && defined(SYS_membarrier)
  bool asymmetric = false;
  for (std::size_t i = 0; i < n; ++i)
    asymmetric = asymmetric || headers[i]->fences.load(std::memory_order_relaxed) == 0;
  if (asymmetric && ::syscall(SYS_membarrier, kMembarrierGlobalExpedited, 0, 0) != 0) {
    for (std::size_t i = 0; i < n; ++i) headers[i]->fences.store(1, std::memory_order_seq_cst);
  }
#else
  (void)headers;
  (void)n;
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

// Sleeps until one lane's data word no longer holds what was seen, the deadline, or 20 ms (the
// peers' check). futex_waitv (Linux 5.16) waits on every word at once; where the kernel or an
// emulator lacks it, the sleep is on the first word and at most 1 ms, so that the caller looks
// at every lane again soon.
void park_on_lanes(SharedRegion* const* lanes, SharedHeader* const* headers, const std::uint32_t* seen, std::size_t n,
                   std::chrono::steady_clock::time_point deadline) noexcept {
  (void)lanes;
#if defined(__linux__)
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline || n == 0) return;
  auto left = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(20));
#if defined(SYS_futex_waitv)
  static std::atomic<bool> no_waitv{false};
  if (!no_waitv.load(std::memory_order_relaxed)) {
    std::array<futex_waitv, SharedRecordFanIn::kMaxLanes> waiters{};
    for (std::size_t i = 0; i < n; ++i) {
      waiters[i].val = seen[i];
      waiters[i].uaddr = reinterpret_cast<std::uintptr_t>(&headers[i]->data_word);
      waiters[i].flags = FUTEX_32;  // not FUTEX_PRIVATE_FLAG: the words are shared between processes
    }
    timespec mono{};
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count() + mono.tv_nsec;
    __kernel_timespec until{};  // 64-bit fields on every ABI, as the system call wants
    until.tv_sec = static_cast<long long>(mono.tv_sec) + ns / 1'000'000'000;
    until.tv_nsec = ns % 1'000'000'000;
    if (::syscall(SYS_futex_waitv, waiters.data(), static_cast<unsigned>(n), 0u, &until, CLOCK_MONOTONIC) >= 0 ||
        errno != ENOSYS) {
      return;
    }
    no_waitv.store(true, std::memory_order_relaxed);
  }
#endif
  left = std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(1));
  timespec ts{};
  ts.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&headers[0]->data_word), FUTEX_WAIT, seen[0], &ts, nullptr, 0);
#elif defined(_WIN32)
  // The lanes' data events, the first 64 of them (WaitForMultipleObjects' limit) for the whole
  // sleep; with more lanes, at most 1 ms (the system timer may stretch it to 16) before the
  // caller looks at every lane again. A word that moved already ends the park at once.
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline || n == 0) return;
  auto left = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(20));
  if (n > MAXIMUM_WAIT_OBJECTS)
    left = std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(1));
  std::array<HANDLE, MAXIMUM_WAIT_OBJECTS> events{};
  const std::size_t count = std::min<std::size_t>(n, MAXIMUM_WAIT_OBJECTS);
  for (std::size_t i = 0; i < n; ++i) {
    if (headers[i]->data_word.load(std::memory_order_acquire) != seen[i]) return;
    if (i < count) events[i] = as_handle(lanes[i]->data_event());
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  ::WaitForMultipleObjects(static_cast<DWORD>(count), events.data(), FALSE, static_cast<DWORD>(ms));
#else
  (void)headers;
  (void)seen;
  (void)n;
  (void)deadline;
#endif
}

}  // namespace detail

QueueStatus SharedRecordFanIn::wait_until(std::chrono::steady_clock::time_point deadline) {
  for (int i = 0;; ++i) {
    if (any_readable()) return QueueStatus::ok;
    if (lanes_.empty()) return QueueStatus::closed;
    if (i >= detail::kSpinsBeforeParking) break;
    detail::cpu_relax();
  }
  std::array<detail::SharedRegion*, kMaxLanes> regions{};
  std::array<detail::SharedHeader*, kMaxLanes> headers{};
  std::array<std::uint32_t, kMaxLanes> seen{};
  for (;;) {
    // Announce a sleeper on every lane, then look at every lane (shared_wait's handshake, once
    // per lane, with one fence for all). Nothing is dropped while the announcements stand: a
    // dropped lane's header is unmapped.
    const std::size_t n = lanes_.size();
    for (std::size_t i = 0; i < n; ++i) {
      regions[i] = &lanes_[i].r_;
      headers[i] = regions[i]->header();
      seen[i] = headers[i]->data_word.load(std::memory_order_acquire);
      headers[i]->reader_sleeping.fetch_add(1, std::memory_order_seq_cst);
    }
    detail::heavy_fence_lanes(headers.data(), n);
    bool ready = false;
    bool ended = false;
    std::exception_ptr failure;
    std::size_t failed = n;
    for (std::size_t i = 0; i < n && !ready && !failure; ++i) {
      try {
        ready = lanes_[i].readable(false) != 0;
      } catch (...) {
        failure = std::current_exception();
        failed = i;
      }
    }
    for (std::size_t i = 0; i < n && !ready && !failure && !ended; ++i) ended = lanes_[i].closed();
    // The writers' processes are looked at once per park's longest sleep, not before every park:
    // a pidfd poll per lane is a system call per lane.
    const auto now = std::chrono::steady_clock::now();
    if (!ready && !failure && !ended && now - peers_checked_ >= kPeerCheckPeriod) {
      peers_checked_ = now;
      for (std::size_t i = 0; i < n && !ended; ++i) ended = !lanes_[i].r_.peer_alive();
    }
    if (!ready && !ended && !failure) detail::park_on_lanes(regions.data(), headers.data(), seen.data(), n, deadline);
    for (std::size_t i = 0; i < n; ++i) headers[i]->reader_sleeping.fetch_sub(1, std::memory_order_relaxed);

    if (failure) {
      drop(failed);  // readable() throws only for a corrupt lane, which it closed
      std::rethrow_exception(failure);
    }
    if (ready) return QueueStatus::ok;
    if (ended) {
      // A writer's process that died without closing leaves its lane open: close it, so that it
      // is dropped once drained, like a lane its writer closed.
      for (std::size_t i = n; i-- > 0;) {
        SharedRecordReader& lane = lanes_[i];
        if (!lane.closed() && !lane.r_.peer_alive()) lane.close();
        if (lane.closed() && !has_record(i)) drop(i);
      }
      if (lanes_.empty()) return QueueStatus::closed;
      continue;  // what is left may have records now
    }
    if (std::chrono::steady_clock::now() >= deadline) return any_readable() ? QueueStatus::ok : QueueStatus::timed_out;
  }
}

#if defined(__linux__)

void send_fd(int socket, int fd) {
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n = 0;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) throw std::system_error(errno, std::system_category(), "picoring: sendmsg(SCM_RIGHTS) failed");
}

int receive_fd(int socket) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw std::system_error(errno, std::system_category(), "picoring: recvmsg(SCM_RIGHTS) failed");
  // Every descriptor that arrived is ours to close, whatever else is wrong with the message.
  int received = -1;
  int extra = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (received < 0) {
        received = fd;
      } else {
        ::close(fd);
        ++extra;
      }
    }
  }
  if (n == 0 && received < 0)
    throw std::system_error(ECONNRESET, std::system_category(), "picoring: recvmsg: the peer closed the socket");
  if (received < 0 || extra != 0 || (msg.msg_flags & MSG_CTRUNC) != 0) {
    if (received >= 0) ::close(received);
    throw std::system_error(EBADMSG, std::system_category(), "picoring: recvmsg: not exactly one descriptor");
  }
  return received;
}

int duplicate_for_process(int, std::uint32_t) {
  throw std::system_error(std::make_error_code(std::errc::not_supported),
                          "picoring: duplicate_for_process (Windows only: on Linux use send_fd or inheritance)");
}

#elif defined(_WIN32)

int duplicate_for_process(int fd, std::uint32_t process_id) {
  HANDLE target = ::OpenProcess(PROCESS_DUP_HANDLE, FALSE, process_id);
  if (target == nullptr)
    throw std::system_error(static_cast<int>(::GetLastError()), std::system_category(),
                            "picoring: OpenProcess(PROCESS_DUP_HANDLE) failed");
  HANDLE copy = nullptr;
  const BOOL ok =
      ::DuplicateHandle(::GetCurrentProcess(), detail::as_handle(fd), target, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS);
  const DWORD e = ::GetLastError();
  ::CloseHandle(target);
  if (!ok) throw std::system_error(static_cast<int>(e), std::system_category(), "picoring: DuplicateHandle failed");
  return detail::as_int(copy);
}

void send_fd(int, int) {
  throw std::system_error(std::make_error_code(std::errc::not_supported), "picoring: send_fd (Linux only)");
}
int receive_fd(int) {
  throw std::system_error(std::make_error_code(std::errc::not_supported), "picoring: receive_fd (Linux only)");
}

#else

int duplicate_for_process(int, std::uint32_t) {
  throw std::system_error(std::make_error_code(std::errc::not_supported),
                          "picoring: duplicate_for_process (Windows only)");
}

void send_fd(int, int) {
  throw std::system_error(std::make_error_code(std::errc::not_supported), "picoring: send_fd (Linux only)");
}
int receive_fd(int) {
  throw std::system_error(std::make_error_code(std::errc::not_supported), "picoring: receive_fd (Linux only)");
}

#endif

}  // namespace picoring
