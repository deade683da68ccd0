// Element types and helpers shared by the test files.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>

#include "picoring/spsc.hpp"  // picoring::QueueStatus

#if defined(__linux__)
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#elif defined(_WIN32)
#include <windows.h>
#endif

namespace picoring_test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// Set (to the emulator's name) by presets whose tests run under an emulator (qemu-user for
// i686 here). A few tests check kernel behaviour the emulator does not reproduce.
inline const char* emulator() { return std::getenv("PICORING_TEST_EMULATOR"); }

// Multiplies iteration counts; CI's emulated cross builds (wine, qemu) set it below 1.
inline double scale() {
  const char* s = std::getenv("PICORING_TEST_SCALE");
  const double v = s != nullptr ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}
inline std::size_t scaled(std::size_t n) {
  const auto v = static_cast<std::size_t>(static_cast<double>(n) * scale());
  return v > 0 ? v : 1;
}

// Releases N threads at once, like std::latch::arrive_and_wait. std::latch is not used: the
// mingw-w64 libstdc++ (GCC 12) implements atomic waits without futexes, and there a thread can
// miss the final arrival and sleep forever (seen under wine: the consumer never started while
// the producer filled the queue). Spinning with yield is enough for a start line.
class StartLine {
 public:
  explicit StartLine(int n) : left_(n) {}
  void arrive_and_wait() {
    left_.fetch_sub(1, std::memory_order_acq_rel);
    while (left_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

 private:
  std::atomic<int> left_;
};

// A trivially copyable element of exactly N bytes whose contents are derived from a 64-bit
// id, so that any misplaced byte (a wrong wrap for sizes that do not divide the page size)
// changes the value. N = 3, 24, 4096, 5000 exercise odd element sizes.
template <std::size_t N>
struct Blob {
  std::array<unsigned char, N> bytes;
  friend bool operator==(const Blob&, const Blob&) = default;
};
static_assert(sizeof(Blob<3>) == 3 && sizeof(Blob<5000>) == 5000);

template <class T>
struct Make;

template <>
struct Make<std::uint8_t> {
  static std::uint8_t from(std::uint64_t id) { return static_cast<std::uint8_t>(id * 131u + 7u); }
};
template <>
struct Make<std::uint64_t> {
  static std::uint64_t from(std::uint64_t id) { return id * 0x9E3779B97F4A7C15ull; }
};
template <std::size_t N>
struct Make<Blob<N>> {
  // Every byte depends on the id and on its position, cheaply (one multiply per byte).
  static Blob<N> from(std::uint64_t id) {
    Blob<N> b;
    const std::uint64_t seed = id * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (std::size_t i = 0; i < N; ++i) b.bytes[i] = static_cast<unsigned char>((seed + i * 0x2545F491ull) >> 29);
    return b;
  }
};
template <>
struct Make<std::string> {
  // Alternates short strings (kept inside the object by the small-string optimisation, i.e.
  // pointing into themselves) and long heap strings.
  static std::string from(std::uint64_t id) {
    std::string s = std::to_string(id);
    if (id % 3 == 0) s.append(40, static_cast<char>('a' + id % 26));
    return s;
  }
};

// Counts constructions and destructions, detects destruction of a dead or never-constructed
// object, and can be told to throw from its copy constructor.
class Tracked {
 public:
  // Atomic: the queue tests construct and destroy elements on two threads.
  static inline std::atomic<long> live{0};
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static inline std::atomic<long> bad_destroys{0};
  static inline std::atomic<long> copies_until_throw{-1};  // < 0: never throw
  static void reset_counters() {
    live = constructed = destroyed = bad_destroys = 0;
    copies_until_throw = -1;
  }

  explicit Tracked(std::uint64_t v = 0) : value_(v) { born(); }
  Tracked(const Tracked& o) : value_(o.value_) {
    if (copies_until_throw == 0) throw std::runtime_error("Tracked: copy failed on purpose");
    if (copies_until_throw > 0) --copies_until_throw;
    born();
  }
  Tracked(Tracked&& o) noexcept : value_(o.value_) { born(); }
  Tracked& operator=(const Tracked& o) {
    value_ = o.value_;
    return *this;
  }
  Tracked& operator=(Tracked&& o) noexcept {
    value_ = o.value_;
    return *this;
  }
  ~Tracked() {
    if (canary_ != kAlive) ++bad_destroys;
    // Volatile: a plain store to an object whose lifetime ends is dead, and optimised builds
    // drop it, so a second destruction would find the canary alive.
    *static_cast<volatile std::uint64_t*>(&canary_) = kDead;
    --live;
    ++destroyed;
  }
  std::uint64_t value() const { return value_; }
  friend bool operator==(const Tracked& a, const Tracked& b) { return a.value_ == b.value_; }

 private:
  static constexpr std::uint64_t kAlive = 0xA11CE5A11CE5ull;
  static constexpr std::uint64_t kDead = 0xDEADDEADDEADull;
  void born() {
    canary_ = kAlive;
    ++live;
    ++constructed;
  }
  std::uint64_t value_;
  std::uint64_t canary_ = 0;
};

// The fixture of every test whose elements may be Tracked (T = Tracked, or the typed suites'
// element types): the counters start at zero, and afterwards every Tracked made was destroyed
// once and only once.
template <class T = Tracked>
class LifetimeChecked : public ::testing::Test {
 protected:
  void SetUp() override { Tracked::reset_counters(); }
  void TearDown() override {
    if constexpr (std::is_same_v<T, Tracked>) {
      EXPECT_EQ(Tracked::live.load(), 0) << "every element must be destroyed with its container";
      EXPECT_EQ(Tracked::bad_destroys.load(), 0) << "no element may be destroyed twice";
      EXPECT_EQ(Tracked::constructed.load(), Tracked::destroyed.load());
    }
  }
};

template <>
struct Make<Tracked> {
  static Tracked from(std::uint64_t id) { return Tracked(id); }
};

// The element of type T for a given id (Make<T> above decides its contents).
template <class T>
T make(std::uint64_t id) {
  return Make<T>::from(id);
}

// Every call on an empty (moved-from) consumer of int, SPSC or MPSC (they share
// detail::QueueConsumer): nothing readable, nothing visited, waits report closed.
template <class Consumer>
void expect_empty_consumer(Consumer& c) {
  EXPECT_FALSE(static_cast<bool>(c));
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.try_pop().has_value());
  int buf[4] = {};
  EXPECT_EQ(c.pop_slice(buf), 0u);
  EXPECT_TRUE(c.peek().empty());
  EXPECT_NO_THROW(c.release(0));
  EXPECT_THROW(c.release(1), std::out_of_range);
  EXPECT_EQ(c.drain([](int&) { ADD_FAILURE() << "an empty handle has nothing to visit"; }), 0u);
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, std::chrono::milliseconds(1)), picoring::QueueStatus::closed);
}

// A queue's shared state whose counters start at `start` rather than 0 (the start_at hook of
// detail::SpscState and detail::MpscState), so that a test crosses their wrap-around within a
// few thousand elements. Make the handles from it with picoring::detail::QueueAccess::handles.
template <class State, class Position>
State* state_starting_at(std::size_t min_capacity, Position start) {
  picoring::Error err;
  auto* s = picoring::detail::new_queue_state<State>(min_capacity, {}, err);
  if (s == nullptr) throw std::system_error(err.code, err.step);
  s->start_at(start);
  return s;
}

#if defined(__linux__)
// Open descriptors of this process.
inline std::size_t count_open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}
// Mappings of /proc/self/maps that a ring could leave behind: views of its memory object (found
// by name) and PROT_NONE anonymous reservations. The rest is the runtime's and changes as a test
// runs, independently of us: in a forked child the kernel may refuse to merge a grown heap with
// the inherited [heap] and show a second line, and malloc falls back to anonymous maps. Sanitizer
// runtimes also reserve PROT_NONE memory of their own as the test runs, so sanitized builds count
// the named views only.
inline std::size_t count_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) {
    const bool view = line.find("memfd:picoring") != std::string::npos ||
                      line.find("/dev/shm/pr.") != std::string::npos || line.find("picoring-") != std::string::npos;
    // "start-end perms offset dev inode [path]": a reservation is "---p", inode 0, no path.
    char perms[5] = {};
    unsigned long long inode = 1;
    int path_at = 0;
    const bool parsed = std::sscanf(line.c_str(), "%*x-%*x %4s %*x %*x:%*x %llu %n", perms, &inode, &path_at) >= 2;
    const bool reservation = !kSanitized && parsed && std::string(perms) == "---p" && inode == 0 &&
                             static_cast<std::size_t>(path_at) >= line.size();
    if (view || reservation) ++n;
  }
  return n;
}

// "VmLck:  1234 kB" of /proc/self/status, in bytes.
inline std::size_t locked_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmLck:", 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024;
  }
  return 0;
}

// Drops CAP_IPC_LOCK from this process (call it in a child): the RLIMIT_MEMLOCK limit then
// applies even to root.
inline bool drop_ipc_lock_capability() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs `body` in a forked child and returns its exit status (body returns the exit code), or
// 128 + the signal that killed it, so that resource limits, seccomp filters and crashes of a
// test stay out of the test process.
template <class F>
int in_child(F body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Installs a seccomp filter on the calling process (use it in a child: it cannot be removed)
// under which system call `nr` fails with `error` and every other call runs. False when the
// kernel refuses filters.
inline bool deny_syscall(long nr, int error) {
  sock_filter program[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),  // seccomp_data.nr
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog fprog{static_cast<unsigned short>(sizeof program / sizeof program[0]), program};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) == 0;
}
inline bool deny_membarrier() {
#if defined(SYS_membarrier)
  return deny_syscall(SYS_membarrier, EPERM);
#else
  return false;
#endif
}
#endif

#if defined(_WIN32)
// Open handles of this process. wine answers GetProcessHandleCount with 0, so there the
// handle table is probed instead (handle values are multiples of 4, reused lowest first, so
// a leak shows up within the first few thousand).
inline std::size_t count_handles() {
  DWORD n = 0;
  if (::GetProcessHandleCount(::GetCurrentProcess(), &n) && n != 0) return n;
  std::size_t probed = 0;
  for (std::uintptr_t h = 4; h < std::uintptr_t{4} * 16384; h += 4) {
    DWORD flags = 0;
    // A handle value is an integer the system gives out as a pointer type.
    if (::GetHandleInformation(reinterpret_cast<HANDLE>(h), &flags)) ++probed;  // NOLINT(performance-no-int-to-ptr)
  }
  return probed;
}
#endif

}  // namespace picoring_test
