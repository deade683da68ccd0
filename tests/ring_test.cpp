// PicoRing and PicoQueue: specific behaviours the model test does not pin down by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "picoring/ring.hpp"
#include "test_support.hpp"

namespace {

using picoring::PicoQueue;
using picoring::PicoRing;
using picoring_test::Blob;
using picoring_test::Tracked;

// --- compile-time rules ----------------------------------------------------------------------

template <class R>
concept HasWindows = requires(R& r) {
  r.readable_slice();
  r.writable_slice();
  r.commit(1);
  r.view(0, 1);
  r.data();
};
template <class Q>
concept HasReservation = requires(Q& q) {
  q.reserve(1);
  q.commit(1);
  q.peek();
};
static_assert(HasWindows<PicoRing<int>> && HasWindows<PicoRing<Blob<3>>>);
static_assert(!HasWindows<PicoRing<std::string>>, "std::string must not be exposed through the mirror");
static_assert(!HasWindows<PicoRing<Tracked>>, "no uninitialized memory for non-trivial types");
static_assert(HasReservation<PicoQueue<double>> && !HasReservation<PicoQueue<std::string>>);
static_assert(std::is_same_v<PicoRing<int>::iterator, int*>);
static_assert(std::contiguous_iterator<PicoRing<Blob<24>>::iterator>);
static_assert(std::random_access_iterator<PicoRing<std::string>::iterator>);
static_assert(std::random_access_iterator<PicoRing<std::string>::const_iterator>);
static_assert(std::ranges::random_access_range<PicoRing<std::string>>);
static_assert(!std::is_copy_constructible_v<PicoRing<int>> && std::is_nothrow_move_constructible_v<PicoRing<int>>);

// --- capacity --------------------------------------------------------------------------------

TEST(PicoRing, CapacityIsRoundedToWholePagesAndWholeElements) {
  const std::size_t g = picoring::allocation_granularity();
  EXPECT_EQ(PicoRing<std::uint8_t>(1).capacity(), g);
  EXPECT_EQ(PicoRing<Blob<3>>(1).capacity(), g);  // 3 pages hold exactly g elements
  EXPECT_EQ(PicoRing<Blob<24>>(1).capacity(), std::lcm(g, std::size_t{24}) / 24);
  EXPECT_EQ(PicoRing<Blob<4096>>(3).capacity() * 4096 % g, 0u);
  EXPECT_EQ(PicoRing<Blob<5000>>(1).capacity(), std::lcm(g, std::size_t{5000}) / 5000);
  PicoRing<int> ring(1000);
  EXPECT_GE(ring.capacity(), 1000u);
}

TEST(PicoRing, TheWholeCapacityIsUsable) {
  PicoRing<std::uint32_t> ring(10);
  for (std::uint32_t i = 0; i < ring.capacity(); ++i) ASSERT_TRUE(ring.push(i));
  EXPECT_TRUE(ring.full());
  EXPECT_TRUE(ring.is_full());
  EXPECT_EQ(ring.len(), ring.capacity());
  EXPECT_EQ(ring.available_space(), 0u);
  EXPECT_FALSE(ring.push(0));
  EXPECT_EQ(ring.emplace(0u), nullptr);
  EXPECT_EQ(ring.writable_slice().size(), 0u);
}

// --- the contiguous window across the wrap ---------------------------------------------------

TEST(PicoRing, ReadableSliceIsContiguousAcrossTheWrap) {
  PicoRing<std::uint64_t> ring(100);
  const std::size_t cap = ring.capacity();
  ring.commit(cap - 5);
  ring.release(cap - 5);
  std::vector<std::uint64_t> items(20);
  std::iota(items.begin(), items.end(), 100);
  ASSERT_TRUE(ring.push_slice(items));
  const auto r = ring.readable_slice();
  ASSERT_EQ(r.size(), 20u);
  // The window starts 5 elements before the end of view 1 and runs on into view 2.
  const auto* base = reinterpret_cast<const std::uint64_t*>(ring.memory().data());
  EXPECT_EQ(r.data(), base + cap - 5);
  EXPECT_TRUE(std::equal(r.begin(), r.end(), items.begin()));
  EXPECT_EQ(base[0], 105u);  // element 5 of the window is the first physical slot
  EXPECT_EQ(ring[5], 105u);
  const auto v = ring.view(3, 4);
  EXPECT_EQ(v.data(), base + cap - 2);
  EXPECT_EQ(std::vector<std::uint64_t>(v.begin(), v.end()), (std::vector<std::uint64_t>{103, 104, 105, 106}));
}

TEST(PicoRing, WritableSliceWrapsAndAdvanceTailPublishesIt) {
  PicoRing<char> ring(1);
  const std::size_t cap = ring.capacity();
  ring.commit(cap - 2);
  ring.release(cap - 2);
  auto w = ring.writable_slice();
  ASSERT_EQ(w.size(), cap);
  const std::string text = "wraps here";
  std::copy(text.begin(), text.end(), w.begin());
  ring.commit(text.size());
  EXPECT_EQ(std::string(ring.readable_slice().data(), ring.size()), text);
  EXPECT_EQ(ring[2], 'a');
  EXPECT_EQ(ring.memory().data()[0], std::byte{'a'});
}

// --- rejected calls change nothing -------------------------------------------------------------

TEST(PicoRing, OverAdvancingIsRejectedAndChangesNothing) {
  PicoRing<int> ring(16);
  for (int i = 0; i < 5; ++i) ring.push(i);
  try {
    ring.release(6);
    FAIL() << "release past size() must throw";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "picoring: release(n): n > size()");
  }
  try {
    ring.commit(ring.available_space() + 1);
    FAIL() << "commit past available_space() must throw";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "picoring: commit(n): n > available_space()");
  }
  EXPECT_THROW(ring.release(SIZE_MAX), std::out_of_range);
  EXPECT_THROW(ring.commit(SIZE_MAX), std::out_of_range);
  EXPECT_THROW((void)ring.view(5, 1), std::out_of_range);
  EXPECT_THROW((void)ring.view(SIZE_MAX, 2), std::out_of_range);
  EXPECT_THROW((void)ring.at(5), std::out_of_range);
  ASSERT_EQ(ring.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ring[static_cast<std::size_t>(i)], i);
}

TEST(PicoRing, PushSliceIsAllOrNothing) {
  PicoRing<int> ring(1);
  const std::size_t cap = ring.capacity();
  std::vector<int> big(cap + 1, 7);
  EXPECT_FALSE(ring.push_slice(big));
  EXPECT_TRUE(ring.empty());
  big.pop_back();
  EXPECT_TRUE(ring.push_slice(big));
  EXPECT_TRUE(ring.full());
  EXPECT_FALSE(ring.push_slice(std::vector<int>{1}));
  EXPECT_TRUE(ring.push_slice(std::span<const int>{}));
}

TEST(PicoQueue, ReserveGivesExactlyNOrNothingAndCommitIsChecked) {
  PicoQueue<std::uint16_t> q(1);
  const std::size_t cap = q.capacity();
  EXPECT_TRUE(q.reserve(cap + 1).empty());
  auto span = q.reserve(cap);
  ASSERT_EQ(span.size(), cap);
  EXPECT_THROW(q.commit(cap + 1), std::out_of_range);
  EXPECT_TRUE(q.empty());
  span[0] = 1;
  span[1] = 2;
  q.commit(2);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.peek()[1], 2);
  EXPECT_THROW(q.release(3), std::out_of_range);
  EXPECT_EQ(q.size(), 2u);
  q.release(2);
  EXPECT_TRUE(q.empty());
}

// --- overwrite --------------------------------------------------------------------------------

TEST(PicoRing, PushOverwriteKeepsTheNewestCapacityElements) {
  PicoRing<std::uint32_t> ring(1);
  const std::size_t cap = ring.capacity();
  std::size_t dropped = 0;
  for (std::uint32_t i = 0; i < 3 * cap + 17; ++i) dropped += ring.push_overwrite(i) ? 1u : 0u;
  EXPECT_EQ(dropped, 2 * cap + 17);
  ASSERT_EQ(ring.size(), cap);
  const auto r = ring.readable_slice();
  for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(r[i], 2 * cap + 17 + i);
}

// --- element lifetimes --------------------------------------------------------------------------

using Lifetimes = picoring_test::LifetimeChecked<>;

TEST_F(Lifetimes, EveryElementLeftInARingIsDestroyedWithIt) {
  {
    PicoRing<Tracked> ring(100);
    for (std::uint64_t i = 0; i < ring.capacity() + 50; ++i) ring.push_overwrite(Tracked(i));
    ring.emplace(1u);  // full: constructs nothing
    ring.release(10);
    EXPECT_EQ(Tracked::live.load(), static_cast<long>(ring.size()));
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST_F(Lifetimes, MoveAssignmentDestroysTheOldElements) {
  PicoRing<Tracked> a(10);
  PicoRing<Tracked> b(10);
  a.emplace(1u);
  b.emplace(2u);
  b.emplace(3u);
  a = std::move(b);
  EXPECT_EQ(Tracked::live.load(), 2);
  EXPECT_EQ(a.front().value(), 2u);
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): moved-from rings are empty
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_FALSE(b.push(Tracked(9)));
  EXPECT_FALSE(b.push_overwrite(Tracked(9)));
  EXPECT_FALSE(b.pop().has_value());
  a.clear();
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST_F(Lifetimes, AThrowingCopyInPushSliceLeavesTheRingUnchanged) {
  PicoRing<Tracked> ring(10);
  ring.emplace(100u);
  std::vector<Tracked> items;
  for (std::uint64_t i = 0; i < 5; ++i) items.emplace_back(i);
  const long live_before = Tracked::live.load();
  Tracked::copies_until_throw = 3;
  EXPECT_THROW(ring.push_slice(items), std::runtime_error);
  Tracked::copies_until_throw = -1;
  EXPECT_EQ(Tracked::live.load(), live_before);
  ASSERT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.front().value(), 100u);
  EXPECT_TRUE(ring.push_slice(items));
  EXPECT_EQ(ring.size(), 6u);
}

TEST_F(Lifetimes, AThrowingCopyInPushLeavesTheRingUnchanged) {
  PicoRing<Tracked> ring(10);
  const Tracked t(5);
  Tracked::copies_until_throw = 0;
  EXPECT_THROW(ring.push(t), std::runtime_error);
  Tracked::copies_until_throw = -1;
  EXPECT_TRUE(ring.empty());
}

// Cannot be assigned (a const member), so push_overwrite replaces the oldest element: destroys
// it, then moves the new one in. That move can be told to throw.
struct Unassignable {
  static inline int moves_until_throw = -1;  // < 0: never throw
  const Tracked t;
  explicit Unassignable(std::uint64_t v) : t(v) {}
  Unassignable(const Unassignable& o) = default;
  // NOLINTNEXTLINE(performance-noexcept-move-constructor,bugprone-exception-escape): throws on purpose
  Unassignable(Unassignable&& o) : t(o.t) {
    if (moves_until_throw == 0) throw std::runtime_error("Unassignable: move failed on purpose");
    if (moves_until_throw > 0) --moves_until_throw;
  }
  Unassignable& operator=(const Unassignable&) = delete;
  Unassignable& operator=(Unassignable&&) = delete;
  ~Unassignable() = default;
};

TEST_F(Lifetimes, AThrowingReplacementInPushOverwriteDropsOnlyTheOldest) {
  PicoRing<Unassignable> ring(1);
  const std::size_t cap = ring.capacity();
  for (std::uint64_t i = 0; i < cap; ++i) ASSERT_NE(ring.emplace(i), nullptr);
  Unassignable::moves_until_throw = 1;  // the copy into a temporary succeeds, the move into the slot throws
  EXPECT_THROW(ring.push_overwrite(Unassignable(cap)), std::runtime_error);
  Unassignable::moves_until_throw = -1;
  ASSERT_EQ(ring.size(), cap - 1);
  EXPECT_EQ(ring.front().t.value(), 1u);
  EXPECT_EQ(ring.back().t.value(), cap - 1);
  EXPECT_EQ(Tracked::live.load(), static_cast<long>(cap - 1));
  EXPECT_FALSE(ring.push_overwrite(Unassignable(cap)));  // there is room again
  EXPECT_TRUE(ring.push_overwrite(Unassignable(cap + 1)));
  EXPECT_EQ(ring.front().t.value(), 2u);
}

TEST(PicoRing, StringsSurviveTheWrapAndAreNeverSeenThroughTheMirror) {
  // Short std::strings point into themselves. Touching one through its mirror address would
  // make its destructor free the inline buffer; under ASan that is an immediate report.
  PicoRing<std::string> ring(1);
  const std::size_t cap = ring.capacity();
  for (std::size_t lap = 0; lap < 3; ++lap) {
    for (std::size_t i = 0; i < cap; ++i) ring.push_overwrite(std::to_string(lap * 1000 + i));
    ring.release(cap / 3);
  }
  // Grow a short string into a long one in place, at a position past the physical end.
  for (auto& s : ring) s += std::string(50, 'x');
  std::size_t k = 0;
  for (auto it = ring.begin(); it != ring.end(); ++it, ++k) ASSERT_EQ(*it, ring[k]);
  EXPECT_EQ(k, ring.size());
  std::string rvalue = "not moved when full";
  while (ring.push(std::string("fill"))) {
  }
  EXPECT_FALSE(ring.push(std::move(rvalue)));
  EXPECT_EQ(rvalue, "not moved when full");  // NOLINT(bugprone-use-after-move): a failed push leaves it
}

TEST(PicoRing, NonThrowingCreationReportsErrors) {
  picoring::Error err;
  PicoRing<int> zero(0, err);
  EXPECT_EQ(err.code, picoring::errc::zero_size);
  EXPECT_EQ(zero.capacity(), 0u);
  EXPECT_EQ(err.message(), "picoring: size computation failed: size or capacity of zero");
  PicoRing<int> ok(10, err);
  EXPECT_FALSE(err);
  EXPECT_GE(ok.capacity(), 10u);
}

}  // namespace

namespace {

// --- hardening: pop keeps the element when copying it out throws; the seed's names ----------

// A C++03-style element: a user-declared copy constructor and no move constructor, so every
// "move" copies, and the copy can throw.
struct OldStyle {
  static inline int copies_until_throw = -1;  // < 0: never
  int value;
  explicit OldStyle(int v) : value(v) {}
  OldStyle(const OldStyle& o) : value(o.value) {
    if (copies_until_throw == 0) throw std::runtime_error("copy failed on purpose");
    if (copies_until_throw > 0) --copies_until_throw;
  }
  OldStyle& operator=(const OldStyle& o) = default;
  ~OldStyle() = default;
};

// Whichever copy made on the way out throws, the element stays the oldest; when none throws,
// it is returned and removed. `pop` is the container's optional-returning pop.
template <class Ring, class Pop>
void expect_strong_pop(Pop pop) {
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE(k);
    Ring ring(16);
    for (int i = 0; i < 3; ++i) ASSERT_NE(ring.try_emplace_or_push(i), false);
    OldStyle::copies_until_throw = k;
    bool threw = false;
    try {
      const std::optional<OldStyle> got = pop(ring);
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->value, 0);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    OldStyle::copies_until_throw = -1;
    EXPECT_EQ(ring.size(), threw ? 3u : 2u);
    EXPECT_EQ(ring[0].value, threw ? 0 : 1);
  }
}

struct RingOfOld : PicoRing<OldStyle> {
  using PicoRing<OldStyle>::PicoRing;
  bool try_emplace_or_push(int v) { return emplace(v) != nullptr; }
};
struct QueueOfOld : PicoQueue<OldStyle> {
  using PicoQueue<OldStyle>::PicoQueue;
  bool try_emplace_or_push(int v) { return try_emplace(v) != nullptr; }
};

TEST(PicoRing, PopIsStrongWhenTheElementsCopyThrows) {
  expect_strong_pop<RingOfOld>([](RingOfOld& r) { return r.pop(); });
  expect_strong_pop<QueueOfOld>([](QueueOfOld& q) { return q.try_pop(); });
}

// The seed crate (picoring 0.1.1, src/ring.rs) names the positions after the ring's head
// (where the producer writes) and tail (where the consumer reads): advance_head(n) publishes
// what was written into writable_slice(), advance_tail(n) drops what was read. Ported verbatim:
// write into writable_slice(), advance_head; read readable_slice(), advance_tail.
TEST(PicoRing, TheSeedsAdvanceHeadPublishesAndAdvanceTailConsumes) {
  PicoRing<std::uint8_t> ring(1024);
  for (int round = 0; round < 3; ++round) {
    auto w = ring.writable_slice();
    const std::uint8_t data[] = {10, 20, 30, 40};
    std::copy(std::begin(data), std::end(data), w.begin());
    ring.advance_head(4);  // seed: "the producer moves the head"
    ASSERT_EQ(ring.size(), 4u);
    const auto r = ring.readable_slice();
    EXPECT_EQ(std::vector<std::uint8_t>(r.begin(), r.end()), std::vector<std::uint8_t>({10, 20, 30, 40}));
    ring.advance_tail(3);  // seed: "the consumer moves the tail"
    ASSERT_EQ(ring.size(), 1u);
    EXPECT_EQ(ring.front(), 40);
    ring.advance_tail(1);
  }
  // With elements already queued, advance_head(n) must add, never drop (the old meaning did).
  ring.push(1);
  ring.push(2);
  ring.writable_slice()[0] = 3;
  ring.advance_head(1);
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.back(), 3);
  EXPECT_THROW(ring.advance_tail(4), std::out_of_range);
  EXPECT_THROW(ring.advance_head(ring.available_space() + 1), std::out_of_range);
  EXPECT_EQ(ring.size(), 3u);
  // The primary names are the same operations.
  ring.writable_slice()[0] = 4;
  ring.commit(1);
  ring.release(2);
  EXPECT_EQ(std::vector<std::uint8_t>(ring.begin(), ring.end()), std::vector<std::uint8_t>({3, 4}));
}

}  // namespace
