// Memory that stays put: MirrorOptions::residency (populate, lock) and huge_pages. Each check
// observes the kernel's own accounting: minor faults (getrusage), VmLck (/proc/self/status),
// KernelPageSize (/proc/self/smaps), HugePages_Free (/proc/meminfo).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "picoring/picoring.hpp"
#include "test_support.hpp"

#if defined(_WIN32)
#include <windows.h>
#endif
#if defined(__linux__)
#include <linux/mempolicy.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

using picoring::Error;
using picoring::HugePages;
using picoring::MirrorBuffer;
using picoring::MirrorOptions;
using picoring::Residency;

MirrorOptions with(Residency r, HugePages h = HugePages::none, bool fallback = false) {
  MirrorOptions o;
  o.residency = r;
  o.huge_pages = h;
  o.huge_pages_fallback = fallback;
  return o;
}

TEST(Residency, InvalidValuesAreRejected) {
  MirrorOptions bad_residency;
  bad_residency.residency = static_cast<Residency>(9);
  Error err;
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, bad_residency, err).empty());
  EXPECT_EQ(err.code, std::errc::invalid_argument);
  EXPECT_STREQ(err.step, "select residency");
  MirrorOptions bad_huge;
  bad_huge.huge_pages = static_cast<HugePages>(9);
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, bad_huge, err).empty());
  EXPECT_STREQ(err.step, "select huge pages");
}

TEST(Residency, EveryChoiceGivesAWorkingMirror) {
  for (Residency r : {Residency::on_demand, Residency::populate, Residency::lock_if_allowed}) {
    picoring::PicoRing<std::uint32_t> ring(10000, with(r));
    for (std::uint32_t i = 0; i < 25000; ++i) {
      if (ring.full()) ring.release(1);
      ring.push(i);
    }
    const auto window = ring.readable_slice();  // wraps: 25000 pushes into a ring of ~10240
    for (std::size_t k = 0; k < window.size(); ++k) ASSERT_EQ(window[k], 25000 - window.size() + k);
    EXPECT_EQ(ring.memory().page_size(), picoring::allocation_granularity());
  }
}

#if defined(__linux__)

using picoring_test::drop_ipc_lock_capability;
using picoring_test::locked_bytes;

long minor_faults() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

// Writes every page through the first view, then reads every page through the second: a full
// lap as a ring's producer and consumer would make it. Returns the minor faults it took.
long faults_of_a_lap(const MirrorBuffer& m) {
  const std::size_t page = picoring::allocation_granularity();
  const long before = minor_faults();
  for (std::size_t at = 0; at < m.size(); at += page) static_cast<volatile std::byte*>(m.data())[at] = std::byte{1};
  unsigned sum = 0;
  for (std::size_t at = 0; at < m.size(); at += page)
    sum += static_cast<unsigned>(static_cast<volatile std::byte*>(m.data() + m.size())[at]);
  const long after = minor_faults();
  EXPECT_EQ(sum, m.size() / page);  // the second view shows what the first wrote
  return after - before;
}

bool skip_fault_counts(std::string& why) {
  if (picoring_test::emulator() != nullptr) {
    why = std::string(picoring_test::emulator()) + " faults and populates on its own terms";
    return true;
  }
  if (picoring_test::kSanitized) {
    why = "sanitizer shadow memory takes faults of its own";
    return true;
  }
  return false;
}

TEST(Residency, APopulatedBufferTakesNoFaultOnItsFirstLap) {
  std::string why;
  if (skip_fault_counts(why)) GTEST_SKIP() << why;
  const std::size_t size = std::size_t{8} << 20;
  const std::size_t pages = size / picoring::allocation_granularity();
  // The control: on demand, each page faults once per view.
  MirrorBuffer lazy(size, with(Residency::on_demand));
  EXPECT_GE(faults_of_a_lap(lazy), static_cast<long>(pages)) << "the measurement sees faults at all";
  for (Residency r : {Residency::populate, Residency::lock_if_allowed}) {
    MirrorBuffer m(size, with(r));
    EXPECT_LE(faults_of_a_lap(m), 2) << "residency " << static_cast<int>(r);
  }
}

// The sanitizers' runtimes intercept mlock and make it succeed without locking anything
// (AddressSanitizer: "ignores mlock/mlockall/munlock/munlockall"), so lock tests skip there.
constexpr const char* kSanitizerMlock = "the sanitizer runtime turns mlock into a no-op";

TEST(Residency, ALockedBufferStaysLockedUntilDestroyed) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << "VmLck under an emulator is the emulator's";
  if (picoring_test::kSanitized) GTEST_SKIP() << kSanitizerMlock;
  const std::size_t before = locked_bytes();
  Error err;
  MirrorBuffer m = MirrorBuffer::create(std::size_t{1} << 20, 1, with(Residency::lock), err);
  if (m.empty()) {
    // Not root and RLIMIT_MEMLOCK below 2 MiB: the refusal must be the documented one.
    EXPECT_NE(std::string(err.step).find("mlock"), std::string::npos) << err.message();
    GTEST_SKIP() << "RLIMIT_MEMLOCK (ulimit -l) is below twice 1 MiB here: " << err.message();
  }
  EXPECT_TRUE(m.locked());
  // Both views are locked: the kernel counts each.
  EXPECT_GE(locked_bytes() - before, 2 * m.size());
  m.reset();
  EXPECT_EQ(locked_bytes(), before);
}

TEST(Residency, ARefusedLockIsAnErrorOrFallsBackWhenAllowed) {
  if (picoring_test::kSanitized) GTEST_SKIP() << kSanitizerMlock;
  const bool count_faults = picoring_test::emulator() == nullptr;
  const int rc = picoring_test::in_child([count_faults] {
    if (!drop_ipc_lock_capability()) return 77;
    rlimit lim{};
    ::getrlimit(RLIMIT_MEMLOCK, &lim);
    lim.rlim_cur = rlim_t{64} * 1024;
    if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 77;
    const std::size_t fds = picoring_test::count_open_fds();
    const std::size_t maps = picoring_test::count_mappings();
    Error err;
    MirrorBuffer refused = MirrorBuffer::create(std::size_t{1} << 20, 1, with(Residency::lock), err);
    if (!refused.empty()) return 1;
    if (err.code != std::errc::not_enough_memory && err.code != std::errc::operation_not_permitted) return 2;
    if (std::string(err.step).find("RLIMIT_MEMLOCK") == std::string::npos) return 3;
    // qemu-user keeps descriptors and mappings of its own, which change as the guest runs.
    const bool emulated = picoring_test::emulator() != nullptr;
    if (!emulated && (picoring_test::count_open_fds() != fds || picoring_test::count_mappings() != maps)) return 4;
    try {
      picoring::PicoRing<int> ring(std::size_t{1} << 18, with(Residency::lock));  // 1 MiB: over the limit
      return 5;
    } catch (const std::system_error& e) {
      if (std::string(e.what()).find("mlock") == std::string::npos) return 6;
    }
    MirrorBuffer fallback = MirrorBuffer::create(std::size_t{1} << 20, 1, with(Residency::lock_if_allowed), err);
    if (fallback.empty() || fallback.locked()) return 7;
    if (count_faults && faults_of_a_lap(fallback) > 2) return 8;  // populated all the same
    return 0;
  });
  if (rc == 77) GTEST_SKIP() << "cannot drop CAP_IPC_LOCK or set RLIMIT_MEMLOCK here";
  EXPECT_EQ(rc, 0);
}

// A value of /proc/meminfo ("HugePages_Free:  4"), or -1.
long meminfo(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  }
  return -1;
}

long read_long(const char* path) {
  std::ifstream in(path);
  long v = -1;
  in >> v;
  return in ? v : -1;
}

// "KernelPageSize: 2048 kB" of the smaps entry that contains `address`, in bytes; 0 if none.
std::size_t kernel_page_size_at(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &lo, &hi) == 2) {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("KernelPageSize:", 0) == 0) {
      return static_cast<std::size_t>(std::stoull(line.substr(15))) * 1024;
    }
  }
  return 0;
}

TEST(HugePages, WithoutFreeHugePagesExplicitFailsOrFallsBack) {
  if (picoring_test::emulator() != nullptr)
    GTEST_SKIP() << picoring_test::emulator() << " does not pass hugetlb through";
  if (meminfo("HugePages_Free") != 0 || read_long("/proc/sys/vm/nr_overcommit_hugepages") > 0)
    GTEST_SKIP() << "this machine has free (or overcommittable) huge pages; the refusal cannot be provoked";
  const std::size_t fds = picoring_test::count_open_fds();
  const std::size_t maps = picoring_test::count_mappings();
  Error err;
  MirrorBuffer none = MirrorBuffer::create(4096, 1, with(Residency::on_demand, HugePages::explicit_2mb), err);
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(err.code == std::errc::not_enough_memory || err.code == std::errc::not_supported) << err.message();
  EXPECT_NE(std::string(err.step).find("huge"), std::string::npos) << err.message();
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
  EXPECT_EQ(picoring_test::count_mappings(), maps);
  // With the fallback: base pages, and the buffer says so. The size keeps the huge rounding
  // when the system has that page size.
  MirrorBuffer base = MirrorBuffer::create(4096, 1, with(Residency::on_demand, HugePages::explicit_2mb, true), err);
  ASSERT_FALSE(base.empty()) << err.message();
  EXPECT_EQ(base.page_size(), picoring::allocation_granularity());
  if (picoring::huge_page_size(HugePages::explicit_2mb) != 0) {
    EXPECT_EQ(base.size(), std::size_t{2} << 20);
  }
  // A backend other than memfd cannot give hugetlb pages.
  MirrorOptions shm = with(Residency::on_demand, HugePages::explicit_2mb);
  shm.backend = picoring::Backend::posix_shm;
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, shm, err).empty());
}

// Reserves huge pages for the test (root only) and gives them back afterwards.
class ReservedHugePages {
 public:
  explicit ReservedHugePages(long extra) {
    before_ = read_long("/proc/sys/vm/nr_hugepages");
    if (before_ < 0 || !write(before_ + extra)) return;
    ok_ = meminfo("HugePages_Free") >= extra;
  }
  ~ReservedHugePages() {
    if (before_ >= 0) write(before_);
  }
  ReservedHugePages(const ReservedHugePages&) = delete;
  ReservedHugePages& operator=(const ReservedHugePages&) = delete;
  bool ok() const { return ok_; }

 private:
  static bool write(long n) {
    std::ofstream out("/proc/sys/vm/nr_hugepages");
    out << n << '\n';
    out.flush();
    return static_cast<bool>(out);
  }
  long before_ = -1;
  bool ok_ = false;
};

TEST(HugePages, ExplicitTwoMiBPagesBackTheRingWhenReserved) {
  if (picoring_test::emulator() != nullptr)
    GTEST_SKIP() << picoring_test::emulator() << " does not pass hugetlb through";
  if (picoring::huge_page_size(HugePages::explicit_2mb) == 0) GTEST_SKIP() << "no 2 MiB hugetlb pages here";
  ReservedHugePages reserved(2);
  if (!reserved.ok()) GTEST_SKIP() << "cannot reserve 2 huge pages (needs root and 4 MiB of unfragmented memory)";
  const long free_before = meminfo("HugePages_Free");
  {
    picoring::PicoRing<std::uint64_t> ring(1000, with(Residency::populate, HugePages::explicit_2mb));
    EXPECT_EQ(ring.memory().page_size(), std::size_t{2} << 20);
    EXPECT_EQ(ring.capacity() * sizeof(std::uint64_t), std::size_t{2} << 20);  // rounded to the huge page
    EXPECT_EQ(kernel_page_size_at(ring.memory().data()), std::size_t{2} << 20);
    EXPECT_EQ(kernel_page_size_at(ring.memory().data() + ring.memory().size()), std::size_t{2} << 20);
    EXPECT_EQ(meminfo("HugePages_Free"), free_before - 1);  // one physical page, seen twice
    // Wrap it: the seam between the two huge-page views is invisible.
    for (std::uint64_t i = 0; i < 3 * ring.capacity() / 2; ++i) {
      if (ring.full()) ring.release(1);
      ring.push(i);
    }
    const auto window = ring.readable_slice();
    for (std::size_t k = 0; k < window.size(); ++k) ASSERT_EQ(window[k], 3 * ring.capacity() / 2 - window.size() + k);
  }
  EXPECT_EQ(meminfo("HugePages_Free"), free_before);  // given back with the ring
}

TEST(HugePages, TransparentRoundsAndAlignsTheViews) {
  const std::size_t pmd = picoring::huge_page_size(HugePages::transparent);
  if (pmd == 0) GTEST_SKIP() << "this kernel has no transparent huge pages";
  MirrorBuffer m(std::size_t{100} * 1024, with(Residency::populate, HugePages::transparent));
  EXPECT_EQ(m.size() % pmd, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % pmd, 0u);
  EXPECT_EQ(m.page_size(), picoring::allocation_granularity());  // a hint, not a promise
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string modes((std::istreambuf_iterator<char>(mode)), std::istreambuf_iterator<char>());
  // Whether the kernel granted huge pages is its choice (shmem_enabled, memory); not asserted.
  std::printf("shmem_enabled: %s", modes.c_str());
}

// The policy the kernel holds for `address` (MPOL_F_ADDR) and the node of the page there
// (MPOL_F_NODE | MPOL_F_ADDR).
struct Policy {
  int mode = -1;
  unsigned long nodes = 0;  // nodes 0..63
  int page_node = -1;
};
Policy policy_at(const void* address) {
  Policy p;
  unsigned long mask[16] = {};
  if (::syscall(SYS_get_mempolicy, &p.mode, mask, 8 * sizeof mask, address, MPOL_F_ADDR) != 0) return {};
  p.nodes = mask[0];
  ::syscall(SYS_get_mempolicy, &p.page_node, nullptr, 0UL, address, MPOL_F_NODE | MPOL_F_ADDR);
  return p;
}

TEST(Numa, TheRingsPagesComeFromTheRequestedNode) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " does not pass mbind through";
  MirrorOptions on_node0;
  on_node0.numa_node = 0;  // every Linux machine has node 0
  on_node0.residency = Residency::populate;
  picoring::PicoRing<std::uint64_t> ring(100000, on_node0);
  for (const std::byte* at : {ring.memory().data(), ring.memory().data() + ring.memory().size()}) {
    const Policy p = policy_at(at);
    EXPECT_EQ(p.mode, MPOL_BIND);
    EXPECT_EQ(p.nodes, 1UL);
    EXPECT_EQ(p.page_node, 0);
  }
  // Without the option: the default policy.
  picoring::PicoRing<std::uint64_t> plain(1000);
  EXPECT_EQ(policy_at(plain.memory().data()).mode, MPOL_DEFAULT);
}

TEST(Numa, ANodeTheSystemLacksIsAnErrorAndLeavesNothing) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " does not pass mbind through";
  if (std::ifstream("/sys/devices/system/node/node1000").good()) GTEST_SKIP() << "this machine has node 1000";
  const std::size_t fds = picoring_test::count_open_fds();
  const std::size_t maps = picoring_test::count_mappings();
  MirrorOptions far;
  far.numa_node = 1000;
  Error err;
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, far, err).empty());
  EXPECT_EQ(err.code, std::errc::invalid_argument) << err.message();
  EXPECT_NE(std::string(err.step).find("mbind"), std::string::npos);
  far.numa_node = 5000;  // beyond any node mask
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, far, err).empty());
  far.numa_node = -2;
  EXPECT_TRUE(MirrorBuffer::create(4096, 1, far, err).empty());
  EXPECT_STREQ(err.step, "select NUMA node");
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
  EXPECT_EQ(picoring_test::count_mappings(), maps);
}

#endif  // __linux__

#if defined(_WIN32)
TEST(Residency, WindowsLocksBothViewsAndGivesTheWorkingSetBack) {
  HANDLE process = ::GetCurrentProcess();
  SIZE_T min_before = 0;
  SIZE_T max_before = 0;
  ASSERT_TRUE(::GetProcessWorkingSetSize(process, &min_before, &max_before));
  {
    MirrorBuffer locked(std::size_t{4} << 20, 1, with(Residency::lock));
    ASSERT_TRUE(locked.locked());
    SIZE_T min_locked = 0;
    SIZE_T max_locked = 0;
    ASSERT_TRUE(::GetProcessWorkingSetSize(process, &min_locked, &max_locked));
    // Wine accepts the call but may report fixed sizes; Windows grows both by the two views.
    if (min_locked != min_before) {
      EXPECT_EQ(min_locked, min_before + 2 * locked.size());
    }
    // Locked memory is still a mirror in both directions.
    locked.data()[5] = std::byte{7};
    EXPECT_EQ(locked.data()[locked.size() + 5], std::byte{7});
    Error err;
    MirrorBuffer maybe = MirrorBuffer::create(4096, 1, with(Residency::lock_if_allowed), err);
    ASSERT_FALSE(maybe.empty()) << err.message();
    EXPECT_TRUE(maybe.locked()) << "the working set is grown first, so a small lock is allowed";
  }
  SIZE_T min_after = 0;
  SIZE_T max_after = 0;
  ASSERT_TRUE(::GetProcessWorkingSetSize(process, &min_after, &max_after));
  EXPECT_EQ(min_after, min_before);
  EXPECT_EQ(max_after, max_before);
  Error err;
  MirrorBuffer huge = MirrorBuffer::create(4096, 1, with(Residency::on_demand, HugePages::explicit_2mb), err);
  EXPECT_TRUE(huge.empty());
  EXPECT_EQ(err.code, std::errc::not_supported);
}
#endif

}  // namespace
