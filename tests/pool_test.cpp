// RingPool: reuse (same memory, emptied, destructors run), the idle limit, rings it must not keep,
// failures that leave the pool as it was, concurrent take/give, and fork.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "picoring/picoring.hpp"
#include "test_support.hpp"

#if defined(__linux__)
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace {

using picoring::Error;
using picoring::MirrorOptions;
using picoring::PicoByteStream;
using picoring::PicoRing;
using picoring::RecordRing;
using picoring::RingPool;
using picoring_test::Tracked;

TEST(RingPool, ATakenRingIsGivenBackEmptyAndReusedWithoutANewMapping) {
  Tracked::reset_counters();
  {
    RingPool<PicoRing<Tracked>> pool(1000);
    auto ring = pool.take();
    ASSERT_GE(ring.capacity(), 1000u);
    EXPECT_TRUE(ring.empty());
    const std::byte* memory = ring.memory().data();
    for (std::uint64_t i = 0; i < 700; ++i) ring.push(Tracked(i));
    ring.release(300);  // the next lap wraps past the end
    for (std::uint64_t i = 0; i < 500; ++i) ring.push(Tracked(i));
    EXPECT_EQ(Tracked::live.load(), 900);
    pool.give(std::move(ring));
    EXPECT_EQ(Tracked::live.load(), 0) << "give() destroys the ring's elements";
    EXPECT_EQ(pool.idle(), 1u);

    auto again = pool.take();
    EXPECT_EQ(again.memory().data(), memory) << "the same mapping, not a new one";
    EXPECT_TRUE(again.empty());
    EXPECT_EQ(pool.idle(), 0u);
    EXPECT_EQ(pool.created(), 1u);
    // Reused state is a fresh ring's: a full lap and a wrapped window behave.
    for (std::uint64_t i = 0; i < again.capacity(); ++i) again.push(Tracked(i));
    EXPECT_TRUE(again.full());
    EXPECT_EQ(again.front().value(), 0u);
    EXPECT_EQ(again.back().value(), again.capacity() - 1);
  }
  EXPECT_EQ(Tracked::live.load(), 0);
  EXPECT_EQ(Tracked::bad_destroys.load(), 0);
}

TEST(RingPool, KeepsAtMostMaxIdleRings) {
  RingPool<PicoByteStream> pool(4096, {}, 2);
  std::vector<PicoByteStream> taken(4);
  for (auto& s : taken) s = pool.take();
  EXPECT_EQ(pool.created(), 4u);
  std::set<const std::byte*> distinct;
  for (const auto& s : taken) distinct.insert(s.memory().data());
  EXPECT_EQ(distinct.size(), 4u) << "rings handed out at once are distinct";
  for (auto& s : taken) pool.give(std::move(s));
  EXPECT_EQ(pool.idle(), 2u);
  pool.trim();
  EXPECT_EQ(pool.idle(), 0u);
  RingPool<PicoByteStream> keeps_none(4096, {}, 0);
  keeps_none.give(keeps_none.take());
  EXPECT_EQ(keeps_none.idle(), 0u);
}

TEST(RingPool, RingsItCannotHandOutAgainAreDestroyedNotKept) {
  RingPool<PicoRing<std::uint32_t>> pool(1000);
  pool.give(PicoRing<std::uint32_t>(1000));
  EXPECT_EQ(pool.idle(), 0u) << "before the pool made a ring it knows no capacity to match";
  pool.prefill(1);
  const std::size_t capacity = pool.take().capacity();  // taken and dropped: not given back
  pool.give(PicoRing<std::uint32_t>(1000));             // same capacity, made elsewhere: kept
  EXPECT_EQ(pool.idle(), 1u);
  pool.give(PicoRing<std::uint32_t>(capacity * 4));  // another capacity
  pool.give(PicoRing<std::uint32_t>());              // empty, as a moved-from ring is
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(pool.take().capacity(), capacity);
}

TEST(RingPool, PrefillMakesRingsAheadSoTakeMakesNone) {
  RingPool<RecordRing> pool(std::size_t{64} * 1024, {}, 8);
  pool.prefill(5);
  EXPECT_EQ(pool.idle(), 5u);
  EXPECT_EQ(pool.created(), 5u);
  std::vector<RecordRing> taken(5);
  for (auto& r : taken) r = pool.take();
  EXPECT_EQ(pool.created(), 5u);
  pool.prefill(100);  // at most max_idle
  EXPECT_EQ(pool.idle(), 8u);
  // A record ring given back with a record and a pending reservation comes back empty.
  auto r = std::move(taken.front());
  const char text[] = "kept until given back";
  ASSERT_TRUE(r.push(std::as_bytes(std::span(text))));
  ASSERT_FALSE(r.reserve(100).empty());
  pool.trim();
  pool.give(std::move(r));
  auto back = pool.take();
  EXPECT_TRUE(back.empty());
  EXPECT_FALSE(back.reserve(10).empty()) << "no reservation carried over";
}

TEST(RingPool, AFailedTakeReportsTheStepAndLeavesThePoolAsItWas) {
  MirrorOptions bad;
  bad.residency = static_cast<picoring::Residency>(9);
  RingPool<PicoByteStream> pool(4096, bad);
  Error err;
  PicoByteStream s = pool.take(err);
  EXPECT_TRUE(s.memory().empty());
  EXPECT_EQ(err.code, std::errc::invalid_argument);
  EXPECT_STREQ(err.step, "select residency");
  EXPECT_EQ(pool.created(), 0u);
  EXPECT_EQ(pool.idle(), 0u);
  EXPECT_THROW(static_cast<void>(pool.take()), std::system_error);
  EXPECT_THROW(pool.prefill(2), std::system_error);
  EXPECT_EQ(pool.idle(), 0u);
  RingPool<PicoByteStream> zero(0);
  EXPECT_THROW(static_cast<void>(zero.take()), std::invalid_argument);
}

TEST(RingPool, NothingLeaksAfterThePoolIsDestroyed) {
#if defined(__linux__)
  const std::size_t fds = picoring_test::count_open_fds();
  const std::size_t maps = picoring_test::count_mappings();
  {
    RingPool<PicoByteStream> pool(4096, {}, 4);
    pool.prefill(3);
    auto a = pool.take();
    auto b = pool.take();
    pool.give(std::move(a));
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
  EXPECT_EQ(picoring_test::count_mappings(), maps);
#else
  GTEST_SKIP() << "counts /proc/self/fd and /proc/self/maps";
#endif
}

// Threads take a ring, fill it with their own mark, check nobody else wrote into it while they
// held it, and give it back. Run under TSan in CI.
TEST(RingPool, ThreadsTakeAndGiveConcurrently) {
  constexpr std::uint32_t kThreads = 4;
  RingPool<PicoRing<std::uint32_t>> pool(1024, {}, kThreads);
  const std::size_t rounds = picoring_test::scaled(2000);
  std::atomic<long> failures{0};
  std::vector<std::thread> threads;
  for (std::uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t round = 0; round < rounds; ++round) {
        auto ring = pool.take();
        if (!ring.empty()) ++failures;
        const auto mark = static_cast<std::uint32_t>(std::size_t{t} * 1000003u + round);
        for (int i = 0; i < 64; ++i) ring.push(mark);
        std::this_thread::yield();
        for (const auto v : ring) {
          if (v != mark) ++failures;
        }
        pool.give(std::move(ring));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pool.idle(), pool.created()) << "every ring came back and was kept";
  EXPECT_LE(pool.created(), kThreads) << "never more rings than takers at once";
}

#if defined(__linux__)
TEST(RingPool, AChildOfForkNeverGetsTheParentsPooledRings) {
  RingPool<PicoByteStream> pool(4096, {}, 4);
  pool.prefill(2);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The pooled rings are not mapped here (ForkPolicy::exclude): take() must make a new one.
    int status = 0;
    auto s = pool.take();
    if (s.memory().inherited() || pool.created() != 3 || pool.idle() != 0) status = 1;
    const char text[] = "the child's own ring";
    if (status == 0 && s.write(std::as_bytes(std::span(text))) != sizeof text) status = 2;
    ::_exit(status);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(pool.idle(), 2u) << "the parent's pool is untouched";
}
#endif

}  // namespace
