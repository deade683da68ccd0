// MirrorBuffer: sizing, every backend, errors, resource hygiene, fork policy, huge rings.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "picoring/picoring.hpp"
#include "test_support.hpp"

#if defined(__linux__)
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#elif defined(_WIN32)
#include <windows.h>
#endif

namespace {

using picoring::Backend;
using picoring::Error;
using picoring::MirrorBuffer;
using picoring::MirrorOptions;

// The backends this system offers, each of which a forced creation must be able to use.
// Windows' placeholder path is left out: wine (where CI runs the Windows build) refuses it,
// so it has a test of its own that accepts a clean refusal.
#if defined(__linux__)
constexpr std::array kPlatformBackends{Backend::memfd, Backend::posix_shm, Backend::tmpfile};
constexpr std::array kForeignBackends{Backend::windows_placeholder, Backend::windows_legacy};
#elif defined(_WIN32)
constexpr std::array kPlatformBackends{Backend::windows_legacy};
constexpr std::array kForeignBackends{Backend::memfd, Backend::posix_shm, Backend::tmpfile};
#else
constexpr std::array kPlatformBackends{Backend::posix_shm, Backend::tmpfile};
constexpr std::array kForeignBackends{Backend::memfd, Backend::windows_placeholder, Backend::windows_legacy};
#endif

// Writes through each view and reads through the other, over the whole buffer.
void expect_mirrored(const MirrorBuffer& m) {
  ASSERT_FALSE(m.empty());
  auto* b = m.data();
  const std::size_t n = m.size();
  for (std::size_t i = 0; i < n; i += 509) b[i] = static_cast<std::byte>(i * 7 + 1);
  for (std::size_t i = 0; i < n; i += 509) ASSERT_EQ(b[n + i], static_cast<std::byte>(i * 7 + 1)) << i;
  b[2 * n - 1] = std::byte{0x5A};
  ASSERT_EQ(b[n - 1], std::byte{0x5A});
}

TEST(Granularity, IsThePageSizeAndAPowerOfTwo) {
  const std::size_t g = picoring::allocation_granularity();
  ASSERT_GT(g, 0u);
  EXPECT_EQ(g & (g - 1), 0u);
#if defined(__linux__)
  EXPECT_EQ(g, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
#endif
}

// The cross-architecture test runs set the emulated page size (qemu-user -p / QEMU_PAGESIZE)
// and name it here, so a run that silently kept 4 KiB pages fails instead of passing.
TEST(Granularity, FollowsThePageSizeTheTestRunAskedFor) {
  const char* expected = std::getenv("PICORING_TEST_PAGE_SIZE");
  if (expected == nullptr) GTEST_SKIP() << "PICORING_TEST_PAGE_SIZE not set (only the emulated runs set it)";
  EXPECT_EQ(picoring::allocation_granularity(), std::stoull(expected));
  // A 24-byte element on 16 KiB pages needs 48 KiB units; on 64 KiB pages, 192 KiB.
  picoring::PicoRing<picoring_test::Blob<24>> ring(1);
  EXPECT_EQ(ring.capacity() * 24, std::lcm(picoring::allocation_granularity(), std::size_t{24}));
}

TEST(MirrorSize, IsAWholeNumberOfPagesAndOfElementsAndMinimal) {
  const std::size_t g = picoring::allocation_granularity();
  for (std::size_t elem : {1u, 2u, 3u, 8u, 12u, 24u, 100u, 4096u, 5000u, 65536u, 65537u}) {
    for (std::size_t count : {1u, 2u, 7u, 1000u, 4097u}) {
      Error err;
      const std::size_t bytes = picoring::mirror_size_for(count, elem, err);
      ASSERT_FALSE(err) << err.message();
      EXPECT_EQ(bytes % g, 0u) << elem << " x " << count;
      EXPECT_EQ(bytes % elem, 0u) << elem << " x " << count;
      EXPECT_GE(bytes, count * elem);
      const std::size_t unit = std::lcm(g, elem);
      EXPECT_LT(bytes - count * elem, unit) << "not the smallest such size";
    }
  }
}

TEST(MirrorSize, RejectsZeroAndOverflowWithTheRightCode) {
  Error err;
  EXPECT_EQ(picoring::mirror_size_for(0, 8, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::zero_size);
  EXPECT_EQ(picoring::mirror_size_for(8, 0, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::zero_size);
  EXPECT_EQ(picoring::mirror_size_for(SIZE_MAX, 1, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::size_overflow);
  EXPECT_EQ(picoring::mirror_size_for(SIZE_MAX / 2, 3, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::size_overflow);
  EXPECT_EQ(picoring::mirror_size_for(1, SIZE_MAX / 2 + 1, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::size_overflow);
  // Twice the size must fit in the address space as well as in size_t.
  EXPECT_EQ(picoring::mirror_size_for(SIZE_MAX / 4 + 1, 1, err), 0u);
  EXPECT_EQ(err.code, picoring::errc::size_overflow);
}

TEST(MirrorSize, ATwoGiBRingCannotFitA32BitAddressSpace) {
  if constexpr (sizeof(void*) >= 8) {
    GTEST_SKIP() << "32-bit only";
  } else {
    // Its two views would need 4 GiB: a clear error, not an overflow.
    EXPECT_THROW(MirrorBuffer(std::size_t{1} << 31), std::length_error);
    Error err;
    EXPECT_EQ(picoring::mirror_size_for(std::size_t{1} << 30, 1, err), 0u);
    EXPECT_EQ(err.code, picoring::errc::size_overflow);
    MirrorBuffer half(std::size_t{256} << 20);  // 512 MiB of address space does fit
    EXPECT_EQ(half.size(), std::size_t{256} << 20);
  }
}

TEST(MirrorBuffer, ThrowsTheDocumentedExceptions) {
  EXPECT_THROW(MirrorBuffer(0), std::invalid_argument);
  EXPECT_THROW(MirrorBuffer(SIZE_MAX), std::length_error);
  EXPECT_THROW(picoring::PicoRing<int>(0), std::invalid_argument);
  EXPECT_THROW(picoring::PicoRing<std::uint64_t>(SIZE_MAX / 8), std::length_error);
  try {
    MirrorBuffer m(SIZE_MAX);
    FAIL() << "no exception";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find("size computation"), std::string::npos) << e.what();
  }
}

class EveryBackend : public ::testing::TestWithParam<Backend> {};

TEST_P(EveryBackend, MapsTheSamePagesTwice) {
  for (std::size_t bytes : {std::size_t{1}, std::size_t{65536}, std::size_t{3} << 20}) {
    MirrorBuffer m(bytes, MirrorOptions{GetParam()});
    if (GetParam() != Backend::automatic) {
      EXPECT_EQ(m.backend(), GetParam());
    }
    EXPECT_GE(m.size(), bytes);
    EXPECT_EQ(m.size() % picoring::allocation_granularity(), 0u);
    expect_mirrored(m);
  }
}

TEST_P(EveryBackend, RingsWrapCorrectlyForOddElementSizes) {
  // A 3-byte element type on a forced backend: the mirror must wrap where the index wraps.
  picoring::PicoRing<picoring_test::Blob<3>> ring(100, MirrorOptions{GetParam()});
  std::uint64_t id = 0;
  for (int lap = 0; lap < 5; ++lap) {
    ring.release(ring.size());
    std::vector<picoring_test::Blob<3>> items;
    for (std::size_t i = 0; i < ring.capacity() * 2 / 3; ++i)
      items.push_back(picoring_test::Make<picoring_test::Blob<3>>::from(id++));
    ASSERT_TRUE(ring.push_slice(items));
    auto r = ring.readable_slice();
    ASSERT_TRUE(std::equal(r.begin(), r.end(), items.begin(), items.end()));
  }
}

std::vector<Backend> automatic_and_platform_backends() {
  std::vector<Backend> all{Backend::automatic};
  all.insert(all.end(), kPlatformBackends.begin(), kPlatformBackends.end());
  return all;
}
INSTANTIATE_TEST_SUITE_P(Platform, EveryBackend, ::testing::ValuesIn(automatic_and_platform_backends()),
                         [](const ::testing::TestParamInfo<Backend>& p) {
                           return std::string(picoring::to_string(p.param));
                         });

// Which path `automatic` takes is printed, and checked where the run says what to expect
// (the wine run sets PICORING_TEST_BACKEND=windows_legacy: wine refuses placeholders).
TEST(MirrorBuffer, AutomaticPicksThisSystemsPreferredBackend) {
  MirrorBuffer m(4096);
  std::printf("automatic backend: %s\n", picoring::to_string(m.backend()));
  RecordProperty("backend", picoring::to_string(m.backend()));
  if (const char* expected = std::getenv("PICORING_TEST_BACKEND")) {
    EXPECT_STREQ(picoring::to_string(m.backend()), expected);
  }
#if defined(__linux__)
  EXPECT_EQ(m.backend(), Backend::memfd);
#elif defined(_WIN32)
  EXPECT_TRUE(m.backend() == Backend::windows_placeholder || m.backend() == Backend::windows_legacy);
#else
  EXPECT_EQ(m.backend(), Backend::posix_shm);
#endif
}

TEST(MirrorBuffer, ForcingAnotherSystemsBackendFailsCleanly) {
  for (Backend backend : kForeignBackends) {
    Error err;
    MirrorBuffer m = MirrorBuffer::create(4096, 1, MirrorOptions{backend}, err);
    EXPECT_TRUE(m.empty()) << picoring::to_string(backend);
    ASSERT_TRUE(err) << picoring::to_string(backend);
    EXPECT_NE(err.message().find("not available"), std::string::npos) << err.message();
    EXPECT_THROW(MirrorBuffer(4096, MirrorOptions{backend}), std::system_error);
  }
}

// Windows 10 1803+ has placeholders; wine 8 and older Windows refuse them. Either way the
// forced path must map a correct mirror or fail with an error naming the refused call.
TEST(MirrorBuffer, WindowsPlaceholderPathWorksOrIsRefusedCleanly) {
#if defined(_WIN32)
  Error err;
  MirrorBuffer m = MirrorBuffer::create(1 << 20, 1, MirrorOptions{Backend::windows_placeholder}, err);
  if (m.empty()) {
    std::printf("placeholder path refused: %s\n", err.message().c_str());
    EXPECT_NE(err.message().find("VirtualAlloc2"), std::string::npos) << err.message();
    // A refusal leaves no handle or view behind, and automatic falls back.
    MirrorBuffer fallback(1 << 20);
    EXPECT_EQ(fallback.backend(), Backend::windows_legacy);
    expect_mirrored(fallback);
  } else {
    std::printf("placeholder path used\n");
    EXPECT_EQ(m.backend(), Backend::windows_placeholder);
    expect_mirrored(m);
  }
#else
  GTEST_SKIP() << "Windows only";
#endif
}

TEST(MirrorBuffer, MoveTransfersOwnershipAndResetReleases) {
  MirrorBuffer a(4096);
  std::byte* p = a.data();
  MirrorBuffer b(std::move(a));
  // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move): the moved-from state is specified
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.size(), 0u);
  // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_EQ(b.data(), p);
  MirrorBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  expect_mirrored(c);
  c.reset();
  EXPECT_TRUE(c.empty());
  EXPECT_FALSE(static_cast<bool>(c));
}

TEST(MirrorBuffer, ConcurrentCreationNeverSharesMemoryBetweenRings) {
  // The seed's shm names collided between threads; ours must not, on any backend.
  for (Backend backend : kPlatformBackends) {
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < static_cast<int>(picoring_test::scaled(300)); ++i) {
          MirrorBuffer m(4096, MirrorOptions{backend});
          const auto tag = static_cast<unsigned char>(t * 64 + i % 64);
          std::memset(m.data(), tag, m.size());
          std::this_thread::yield();
          for (std::size_t k = 0; k < 2 * m.size(); k += 1024) {
            if (static_cast<unsigned char>(m.data()[k]) != tag) ++failures;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0) << picoring::to_string(backend);
  }
}

#if defined(__linux__)

using picoring_test::count_mappings;
using picoring_test::count_open_fds;

// The names in /dev/shm that this process made: both backends put the pid in their names
// ("pr.<pid hex>.", "picoring-<pid>-"). Other test processes run at the same time and have
// names of their own there for a moment; those must not count.
std::set<std::string> shm_names() {
  char shm_prefix[32];
  std::snprintf(shm_prefix, sizeof shm_prefix, "pr.%x.", static_cast<unsigned>(::getpid()));
  const std::string file_prefix = "picoring-" + std::to_string(::getpid()) + "-";
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(shm_prefix, 0) == 0 || name.rfind(file_prefix, 0) == 0) names.insert(name);
  }
  return names;
}

TEST(Hygiene, HundredThousandCyclesLeaveNoDescriptorMappingOrName) {
  // Warm up whatever the runtime allocates once (locale, the gtest output) before counting.
  { MirrorBuffer warm(4096); }
  const std::size_t fds = count_open_fds();
  const std::size_t maps = count_mappings();
  const auto names = shm_names();
  const std::size_t cycles = picoring_test::scaled(100'000);
  for (std::size_t i = 0; i < cycles; ++i) {
    MirrorBuffer m(i % 2 == 0 ? 4096 : 1 << 20);
    m.data()[m.size()] = std::byte{1};  // touch the second view
  }
  for (Backend backend : {Backend::posix_shm, Backend::tmpfile}) {
    for (std::size_t i = 0; i < cycles / 20; ++i) MirrorBuffer m(4096, MirrorOptions{backend});
  }
  for (std::size_t i = 0; i < cycles / 10; ++i) picoring::PicoRing<std::string> ring(16);
  EXPECT_EQ(count_open_fds(), fds);
  EXPECT_EQ(count_mappings(), maps);
  EXPECT_EQ(shm_names(), names);
}

TEST(Hygiene, ALiveRingHoldsNoDescriptor) {
  const std::size_t fds = count_open_fds();
  std::vector<MirrorBuffer> rings;
  for (Backend backend : {Backend::memfd, Backend::posix_shm, Backend::tmpfile}) {
    rings.emplace_back(4096, MirrorOptions{backend});
  }
  EXPECT_EQ(count_open_fds(), fds);
}

using picoring_test::in_child;

TEST(Errors, OutOfAddressSpaceNamesTheStepAndLeavesNothing) {
  if (picoring_test::kSanitized)
    GTEST_SKIP() << "sanitizer runtimes reserve more address space than the limit set here";
  if (picoring_test::emulator() != nullptr)
    GTEST_SKIP() << picoring_test::emulator() << " manages the guest address space itself; RLIMIT_AS does not apply";
  const int rc = in_child([] {
    const std::size_t fds = count_open_fds();
    const std::size_t maps = count_mappings();
    rlimit lim{};
    ::getrlimit(RLIMIT_AS, &lim);
    // 4 GiB of address space (512 MiB on 32-bit), and a ring whose two views need 1.5 times that.
    const std::size_t limit = sizeof(void*) >= 8 ? std::size_t{1} << 31 << 1 : std::size_t{512} << 20;
    const std::size_t request = limit / 4 * 3;
    lim.rlim_cur = static_cast<rlim_t>(limit);
    ::setrlimit(RLIMIT_AS, &lim);
    Error err;
    MirrorBuffer m = MirrorBuffer::create(request, 1, {}, err);
    if (!m.empty() || !err) return 1;
    if (err.code != std::errc::not_enough_memory) return 2;
    if (std::string(err.step).find("reservation") == std::string::npos) return 3;
    try {
      MirrorBuffer again(request);
      return 4;
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::not_enough_memory) return 5;
      if (std::string(e.what()).find("mmap reservation") == std::string::npos) return 6;
    }
    if (count_open_fds() != fds || count_mappings() != maps) return 7;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(Errors, OutOfDescriptorsIsReportedNotFallenBackFrom) {
  if (picoring_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes need descriptors of their own (pipe checks)";
  // EMFILE is a real failure, not a refusal of memfd: automatic must report it, naming the step.
  const int rc = in_child([] {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return 10;
    while (::dup(0) >= 0) {
    }
    if (errno != EMFILE) return 11;
    Error err;
    MirrorBuffer m = MirrorBuffer::create(4096, 1, {}, err);
    if (!m.empty()) return 1;
    if (err.code != std::errc::too_many_files_open) return 2;
    if (std::string(err.step) != "memfd_create") return 3;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(ForkPolicy, ExcludedByDefaultTheChildHasNoMapping) {
  if (picoring_test::emulator() != nullptr)
    GTEST_SKIP() << picoring_test::emulator() << " does not apply MADV_DONTFORK to guest mappings";
  picoring::PicoRing<int> ring(1024);
  ASSERT_TRUE(ring.push(42));
  void* page = ring.memory().data();
  const int rc = in_child([page] {
    unsigned char vec = 0;
    // mincore fails with ENOMEM for addresses that are not mapped.
    const bool mapped = ::mincore(page, 4096, &vec) == 0;
    return mapped ? 1 : (errno == ENOMEM ? 0 : 2);
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(ring.pop().value_or(0), 42);  // the parent's ring is untouched
}

// A child that destroys rings and queues it inherited without their memory (the default
// policy) must touch nothing: not the address range, where the child may have mapped something
// else since (munmap would remove it), and not the elements, which live in memory it lacks.
TEST(ForkPolicy, AChildDestroyingAnExcludedRingLeavesItsOwnMappingsAlone) {
  if (picoring_test::emulator() != nullptr)
    GTEST_SKIP() << picoring_test::emulator() << " does not apply MADV_DONTFORK to guest mappings";
  auto ring = std::make_unique<picoring::PicoRing<std::string>>(1024);
  ASSERT_TRUE(ring->push(std::string(100, 'x')));
  auto queue = std::make_unique<
      std::pair<picoring::SpscProducer<picoring_test::Tracked>, picoring::SpscConsumer<picoring_test::Tracked>>>(
      picoring::make_spsc<picoring_test::Tracked>(64));
  ASSERT_TRUE(queue->first.try_emplace(1u));
  void* where = ring->memory().data();
  const std::size_t span = 2 * ring->memory().size();
  EXPECT_FALSE(ring->memory().inherited());
  const int rc = in_child([&] {
    if (!ring->memory().inherited()) return 1;
    // The range is free in the child: map something of its own exactly there.
    void* mine = ::mmap(where, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mine != where) return 2;
    static_cast<volatile char*>(mine)[span - 1] = 42;
    ring.reset();   // destroys the ring and its std::string
    queue.reset();  // destroys both handles, then the queue state and its Tracked element
    if (static_cast<volatile char*>(mine)[span - 1] != 42) return 3;  // SIGSEGV here if it was unmapped
    return 0;
  });
  EXPECT_EQ(rc, 0);
  ASSERT_EQ(ring->size(), 1u);  // the parent's ring is untouched
  EXPECT_EQ(ring->front(), std::string(100, 'x'));
  EXPECT_EQ(queue->second.try_pop().value().value(), 1u);
}

TEST(ForkPolicy, AnInvalidValueIsRejected) {
  MirrorOptions options;
  options.fork = static_cast<picoring::ForkPolicy>(7);
  Error err;
  MirrorBuffer m = MirrorBuffer::create(4096, 1, options, err);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(err.code, std::errc::invalid_argument);
  EXPECT_STREQ(err.step, "select fork policy");
  EXPECT_THROW(picoring::PicoRing<int>(16, options), std::system_error);
}

// Growing a file past RLIMIT_FSIZE sends SIGXFSZ, which kills the process; memfd objects count.
// Creation must check first and report EFBIG, naming the step, for every backend.
TEST(Errors, AFileSizeLimitIsReportedNotDiedOf) {
  const int rc = in_child([] {
    const std::size_t fds = count_open_fds();
    const std::size_t maps = count_mappings();
    rlimit lim{};
    ::getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = rlim_t{256} * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 10;
    int code = 1;
    for (Backend backend : {Backend::automatic, Backend::memfd, Backend::posix_shm, Backend::tmpfile}) {
      Error err;
      MirrorBuffer big = MirrorBuffer::create(std::size_t{1} << 20, 1, MirrorOptions{backend}, err);
      if (!big.empty() || err.code != std::errc::file_too_large) return code;
      if (std::string(err.step).find("RLIMIT_FSIZE") == std::string::npos) return code + 1;
      Error ok;
      MirrorBuffer small = MirrorBuffer::create(std::size_t{64} * 1024, 1, MirrorOptions{backend}, ok);
      if (small.empty()) return code + 2;  // under the limit it works
      code += 3;
    }
    // qemu-user keeps descriptors and mappings of its own, which change as the guest runs.
    if (picoring_test::emulator() == nullptr && (count_open_fds() != fds || count_mappings() != maps)) return 20;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "128 + 25 (SIGXFSZ) means the process was killed";
}

// Sandboxes (containers, browsers, systemd's SystemCallFilter) deny memfd_create with ENOSYS or
// EPERM. Automatic creation must move on to the next backend; asking for memfd alone must
// report the refusal, naming the step.
TEST(Errors, ADeniedMemfdFallsBackToTheNextBackend) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " has no seccomp filters";
  if (picoring_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes make system calls a filter would disturb";
  for (const int denial : {ENOSYS, EPERM}) {
    const int rc = in_child([denial] {
      if (!picoring_test::deny_syscall(SYS_memfd_create, denial)) return 78;
      const std::size_t fds = count_open_fds();
      Error err;
      MirrorBuffer only_memfd = MirrorBuffer::create(4096, 1, MirrorOptions{Backend::memfd}, err);
      if (!only_memfd.empty() || err.code.value() != denial || std::string(err.step) != "memfd_create") return 1;
      picoring::PicoRing<std::uint32_t> ring(3000);
      if (ring.memory().backend() != Backend::posix_shm) return 2;
      // A full lap and more across the seam, read back through the second view.
      for (std::uint32_t i = 0; i < 10000; ++i) {
        if (ring.full()) ring.pop();
        ring.push(i);
      }
      if (ring.front() != 10000 - ring.size() || ring.back() != 9999) return 3;
      if (count_open_fds() != fds || !shm_names().empty()) return 4;
      return 0;
    });
    if (rc == 78) GTEST_SKIP() << "seccomp filters cannot be installed here";
    EXPECT_EQ(rc, 0) << "memfd_create denied with " << (denial == ENOSYS ? "ENOSYS" : "EPERM");
  }
}

// With memfd denied, the other backends live in /dev/shm, a tmpfs with a size limit (64 MiB by
// default in Docker). A ring larger than the free space there must fail at creation with
// ENOSPC, naming the step, and leave no descriptor, mapping or name; not die of SIGBUS at the
// first write. The test mounts a 256 KiB tmpfs over /dev/shm in a private mount namespace.
TEST(Errors, AFullDevShmIsReportedAtCreation) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " has no seccomp filters";
  if (picoring_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes make system calls a filter would disturb";
  const int rc = in_child([] {
    // As root a mount namespace is enough; otherwise an unprivileged user namespace may allow it.
    if (::unshare(CLONE_NEWNS) != 0 && ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 77;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
    if (::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=256k") != 0) return 77;
    if (!picoring_test::deny_syscall(SYS_memfd_create, ENOSYS)) return 78;
    const std::size_t fds = count_open_fds();
    const std::size_t maps = count_mappings();
    Error small_err;
    MirrorBuffer small = MirrorBuffer::create(std::size_t{64} * 1024, 1, {}, small_err);
    if (small.empty() || small.backend() != Backend::posix_shm) return 1;  // fits: works
    for (Backend backend : {Backend::automatic, Backend::posix_shm, Backend::tmpfile}) {
      Error err;
      MirrorBuffer big = MirrorBuffer::create(std::size_t{1} << 20, 1, MirrorOptions{backend}, err);
      if (!big.empty() || err.code != std::errc::no_space_on_device) return 2;
      if (std::string(err.step) != "posix_fallocate") return 3;
    }
    small = MirrorBuffer();
    if (count_open_fds() != fds || count_mappings() != maps) return 4;
    std::error_code ec;
    if (!std::filesystem::is_empty("/dev/shm", ec) || ec) return 5;
    return 0;
  });
  if (rc == 77) GTEST_SKIP() << "cannot mount a private tmpfs over /dev/shm here (needs root or user namespaces)";
  if (rc == 78) GTEST_SKIP() << "seccomp filters cannot be installed here";
  EXPECT_EQ(rc, 0);
}

TEST(ForkPolicy, ShareLetsTheChildWriteTheParentsBytes) {
  MirrorBuffer m(4096, MirrorOptions{Backend::automatic, picoring::ForkPolicy::share});
  std::byte* base = m.data();
  const std::size_t n = m.size();
  const int rc = in_child([base, n] {
    base[n + 10] = std::byte{0x77};  // through the second view
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(base[10], std::byte{0x77});
}

#else

// Shown as skipped, with the reason, where the Linux-only tests above are compiled out.
TEST(LinuxOnly, DescriptorMappingAndNameHygiene) {
  GTEST_SKIP() << "Linux only: counts /proc/self/fd, /proc/self/maps and /dev/shm names (Windows has its own "
                  "handle and address-region tests below)";
}
TEST(LinuxOnly, ResourceLimitErrorsAndForkPolicy) {
  GTEST_SKIP() << "Linux only: needs RLIMIT_AS, RLIMIT_NOFILE and fork()";
}

#endif  // __linux__

#if defined(_WIN32)

// Regions of this process's address space that are not free: a leaked view or reservation
// shows up as one more.
std::size_t count_regions() {
  std::size_t n = 0;
  MEMORY_BASIC_INFORMATION info{};
  const char* p = nullptr;
  while (::VirtualQuery(p, &info, sizeof info) == sizeof info) {
    if (info.State != MEM_FREE) ++n;
    const char* next = static_cast<const char*>(info.BaseAddress) + info.RegionSize;
    if (next <= p) break;
    p = next;
  }
  return n;
}
using picoring_test::count_handles;

TEST(Hygiene, ThousandsOfCyclesLeaveNoHandleOrView) {
  { MirrorBuffer warm(4096); }
  const std::size_t handles = count_handles();
  const std::size_t regions = count_regions();
  const std::size_t cycles = picoring_test::scaled(20'000);
  for (std::size_t i = 0; i < cycles; ++i) {
    MirrorBuffer m(i % 2 == 0 ? 4096 : 1 << 20);
    m.data()[m.size()] = std::byte{1};  // touch the second view
  }
  for (std::size_t i = 0; i < cycles / 10; ++i) {
    Error err;  // refused under wine: the refusal must not leak either
    MirrorBuffer m = MirrorBuffer::create(4096, 1, MirrorOptions{Backend::windows_placeholder}, err);
  }
  for (std::size_t i = 0; i < cycles / 10; ++i) picoring::PicoRing<std::string> ring(16);
  EXPECT_EQ(count_handles(), handles);
  EXPECT_EQ(count_regions(), regions);
}

TEST(Hygiene, ALiveRingHoldsNoHandle) {
  const std::size_t handles = count_handles();
  std::vector<MirrorBuffer> rings;
  rings.reserve(8);
  for (int i = 0; i < 8; ++i) rings.emplace_back(4096);
  EXPECT_EQ(count_handles(), handles);
}

TEST(Errors, ARingLargerThanTheAddressSpaceNamesTheStep) {
  if constexpr (sizeof(void*) < 8) {
    GTEST_SKIP() << "64-bit only";
  } else {
    // 2^45 bytes: size_t has room for both views, the process's address space does not.
    Error err;
    MirrorBuffer m = MirrorBuffer::create(std::size_t{1} << 45, 1, {}, err);
    ASSERT_TRUE(m.empty());
    ASSERT_TRUE(err);
    std::printf("%s\n", err.message().c_str());
    EXPECT_TRUE(err.message().find("CreateFileMapping") != std::string::npos ||
                err.message().find("VirtualAlloc") != std::string::npos)
        << err.message();
  }
}

#endif  // _WIN32

TEST(HugeRing, FiveGiBWrapsWhereItShould) {
  if constexpr (sizeof(void*) < 8) {
    GTEST_SKIP() << "needs a 64-bit address space";
  } else {
    // Only the pages near the wrap are touched: the ring costs address space, not memory.
    picoring::PicoRing<std::uint64_t> ring((std::size_t{5} << 30) / sizeof(std::uint64_t));
    const std::size_t cap = ring.capacity();
    ASSERT_GE(cap * sizeof(std::uint64_t), std::size_t{5} << 30);
    ring.commit(cap - 3);
    ring.release(cap - 3);
    ASSERT_TRUE(ring.empty());
    std::vector<std::uint64_t> items(1000);
    std::iota(items.begin(), items.end(), 1);
    ASSERT_TRUE(ring.push_slice(items));
    const auto r = ring.readable_slice();
    ASSERT_EQ(r.size(), items.size());
    EXPECT_TRUE(std::equal(r.begin(), r.end(), items.begin()));
    EXPECT_EQ(ring[3], 4u);  // element index 0 of the physical ring
    EXPECT_EQ(reinterpret_cast<const std::uint64_t*>(ring.memory().data())[0], 4u);
  }
}

}  // namespace
