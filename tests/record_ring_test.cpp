// RecordRing and the SPSC record queue: against a std::deque<std::string> model with random
// operations across many laps, at the seam, at the limits, with bad input, and on two threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "picoring/record_ring.hpp"
#include "test_support.hpp"

namespace {

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
using RecordList = std::vector<std::span<const std::byte>>;
RecordList spans_of(const std::vector<std::string>& texts) {
  RecordList out;
  for (const auto& t : texts) out.push_back(bytes_of(t));
  return out;
}
// Every record of list with push_some, as often as it takes (a thread test's producer).
template <class Producer>
void push_all_of(Producer& p, const RecordList& list) {
  for (std::size_t done = 0; done < list.size();) {
    const std::size_t n = p.push_some(std::span(list).subspan(done));
    if (n == 0) std::this_thread::yield();
    done += n;
  }
}
// How many of `texts` push_some must take with `free` bytes free: the longest prefix that fits.
std::size_t prefix_that_fits(const std::vector<std::string>& texts, std::size_t free) {
  std::size_t n = 0;
  for (const auto& t : texts) {
    if (picoring::record_footprint(t.size()) > free) break;
    free -= picoring::record_footprint(t.size());
    ++n;
  }
  return n;
}

// A record's content made from its number, so that any byte out of place shows.
std::string record_text(std::uint64_t seq, std::size_t len) {
  std::string s(len, '\0');
  std::uint64_t x = seq * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

// Everything observable of a ring, to show that a rejected call changed nothing.
struct Snapshot {
  std::size_t size, used, free;
  bool reserved;
  std::string front;
  bool operator==(const Snapshot&) const = default;
};
Snapshot snap(const picoring::RecordRing& r) {
  return {r.size(), r.bytes_used(), r.bytes_free(), r.reserved(), string_of(r.front())};
}

// A number in [0, n): the engine's 64-bit result reduced, then narrowed (std::size_t is 32 bits on
// i686).
std::size_t below(std::mt19937_64& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }

// Record lengths as a log would make them: mostly short, sometimes long, now and then as long
// as the ring allows.
std::size_t random_length(std::mt19937_64& rng, std::size_t max) {
  const auto pick = rng() % 100;
  std::size_t len = 0;
  if (pick < 60) {
    len = 1 + below(rng, 200);
  } else if (pick < 95) {
    len = 1 + below(rng, max / 4 + 1);
  } else {
    len = max - below(rng, 16);
  }
  return std::clamp<std::size_t>(len, 1, max);
}

}  // namespace

TEST(RecordRing, FootprintIsTheHeaderAndTheBytesRoundedToEight) {
  EXPECT_EQ(picoring::record_footprint(1), 16u);
  EXPECT_EQ(picoring::record_footprint(8), 16u);
  EXPECT_EQ(picoring::record_footprint(9), 24u);
  EXPECT_EQ(picoring::record_footprint(100), 112u);
}

// Random pushes, reservations (committed whole, committed shorter, discarded), pops and drains,
// many laps of rings of one and several pages, against a deque of strings.
TEST(RecordRing, MatchesADequeModelOverManyLaps) {
  for (const std::size_t requested : {std::size_t{1}, std::size_t{3 * 4096 + 5}, std::size_t{65536}}) {
    picoring::RecordRing ring(requested);
    ASSERT_GE(ring.capacity(), requested);
    ASSERT_EQ(ring.capacity() % 8, 0u);
    ASSERT_EQ(ring.max_record_size(), ring.capacity() - 8);
    std::deque<std::string> model;
    std::size_t model_used = 0;
    std::mt19937_64 rng(requested);
    std::uint64_t seq = 0;
    std::size_t written = 0;
    std::size_t wrapped = 0;  // records whose bytes ran past the physical end
    const std::size_t target = picoring_test::scaled(40) * ring.capacity();
    while (written < target) {
      const auto op = rng() % 10;
      if (op < 2) {
        const std::string text = record_text(seq++, random_length(rng, ring.max_record_size()));
        const bool fits = picoring::record_footprint(text.size()) <= ring.bytes_free();
        ASSERT_EQ(ring.push(bytes_of(text)), fits);
        if (fits) {
          model.push_back(text);
          model_used += picoring::record_footprint(text.size());
          written += text.size();
        }
      } else if (op < 3) {  // several records at once: the longest prefix that fits goes in
        std::vector<std::string> texts(below(rng, 6));
        for (auto& t : texts) t = record_text(seq++, random_length(rng, ring.max_record_size() / 2));
        const std::size_t expected = prefix_that_fits(texts, ring.bytes_free());
        ASSERT_EQ(ring.push_some(spans_of(texts)), expected);
        for (std::size_t i = 0; i < expected; ++i) {
          model.push_back(texts[i]);
          model_used += picoring::record_footprint(texts[i].size());
          written += texts[i].size();
        }
      } else if (op < 6) {
        const std::size_t len = random_length(rng, ring.max_record_size());
        const bool fits = picoring::record_footprint(len) <= ring.bytes_free();
        auto out = ring.reserve(len);
        ASSERT_EQ(out.empty(), !fits);
        if (!fits) continue;
        ASSERT_EQ(out.size(), len);
        ASSERT_TRUE(ring.reserved());
        const auto* end = ring.memory().data() + ring.capacity();
        if (out.data() + out.size() > end) ++wrapped;
        const std::string text = record_text(seq++, len);
        std::memcpy(out.data(), text.data(), len);
        const auto how = rng() % 4;
        if (how == 0) {
          ring.discard();
        } else if (how == 1 && len > 1) {
          const std::size_t shorter = 1 + below(rng, len - 1);
          ring.commit(shorter);
          model.push_back(text.substr(0, shorter));
          model_used += picoring::record_footprint(shorter);
          written += shorter;
        } else {
          ring.commit();
          model.push_back(text);
          model_used += picoring::record_footprint(len);
          written += len;
        }
        ASSERT_FALSE(ring.reserved());
      } else if (op < 9) {
        if (model.empty()) {
          ASSERT_TRUE(ring.front().empty());
          continue;
        }
        ASSERT_EQ(string_of(ring.front()), model.front());
        model_used -= picoring::record_footprint(model.front().size());
        model.pop_front();
        ring.pop();
      } else {
        const std::size_t max = below(rng, 4);
        std::size_t k = 0;
        const std::size_t n = ring.drain(
            [&](std::span<std::byte> rec) {
              ASSERT_LT(k, model.size());
              EXPECT_EQ(string_of(rec), model[k]);
              ++k;
            },
            max);
        ASSERT_EQ(n, std::min(max, model.size()));
        for (std::size_t i = 0; i < n; ++i) {
          model_used -= picoring::record_footprint(model.front().size());
          model.pop_front();
        }
      }
      ASSERT_EQ(ring.size(), model.size());
      ASSERT_EQ(ring.bytes_used(), model_used);
      ASSERT_EQ(ring.bytes_free(), ring.capacity() - model_used);
    }
    EXPECT_GT(wrapped, 0u) << "no reservation ran past the physical end: the seam was not tested";
    ring.clear();
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.bytes_free(), ring.capacity());
  }
}

// A record that crosses the physical end is one span in the mirror: its bytes are read back
// whole, and its second part is physically at the start of the ring.
TEST(RecordRing, ARecordAcrossTheEndIsOneSpan) {
  picoring::RecordRing ring(4096);
  const std::size_t cap = ring.capacity();
  const std::string filler = record_text(1, cap - 8 - 64 - 8);  // leaves 64 bytes + a header at the end
  ASSERT_TRUE(ring.push(bytes_of(filler)));
  ring.pop();
  const std::string rec = record_text(2, 200);
  auto out = ring.reserve(rec.size());
  ASSERT_EQ(out.size(), rec.size());
  std::memcpy(out.data(), rec.data(), rec.size());
  ring.commit();
  const auto got = ring.front();
  const auto* base = ring.memory().data();
  ASSERT_LT(got.data(), base + cap);
  ASSERT_GT(got.data() + got.size(), base + cap) << "the record should cross the end";
  EXPECT_EQ(string_of(got), rec);
  const std::size_t before_end = static_cast<std::size_t>(base + cap - got.data());
  EXPECT_EQ(0, std::memcmp(base, rec.data() + before_end, rec.size() - before_end));
}

// push copies a record that crosses the physical end with one memcpy through the second view:
// its tail must land in the ring's first pages (what the next lap reads through the first
// view), for each form that pushes so. The ring's base is where the first record's header is.
template <class Producer, class Consumer>
void push_across_the_end_lands_at_the_start(Producer& p, Consumer& c) {
  const std::size_t cap = p.capacity();
  const std::string filler = record_text(1, cap - 8 - 64 - 8);  // ends 64 bytes + a header before the end
  ASSERT_TRUE(p.push(bytes_of(filler)));
  const std::byte* const base = c.front().data() - 8;
  c.pop();
  const std::string rec = record_text(2, 200);
  ASSERT_TRUE(p.push(bytes_of(rec)));
  const auto got = c.front();
  ASSERT_EQ(got.data(), base + cap - 64);
  EXPECT_EQ(string_of(got), rec);
  EXPECT_EQ(0, std::memcmp(base, rec.data() + 64, rec.size() - 64)) << "the tail is not in the first pages";
  c.pop();
}

TEST(RecordRing, APushAcrossTheEndLandsInTheFirstPages) {
  picoring::RecordRing ring(4096);
  push_across_the_end_lands_at_the_start(ring, ring);
}
TEST(RecordSpsc, APushAcrossTheEndLandsInTheFirstPages) {
  auto [p, c] = picoring::make_record_spsc(4096);
  push_across_the_end_lands_at_the_start(p, c);
}
TEST(RecordMpsc, APushAcrossTheEndLandsInTheFirstPages) {
  auto [p, c] = picoring::make_record_mpsc(4096);
  push_across_the_end_lands_at_the_start(p, c);
}

TEST(RecordRing, TheLargestRecordFillsTheRingExactly) {
  picoring::RecordRing ring(4096);
  const std::string big = record_text(3, ring.max_record_size());
  ASSERT_TRUE(ring.push(bytes_of(big)));
  EXPECT_EQ(ring.bytes_free(), 0u);
  const std::string one = "x";
  EXPECT_FALSE(ring.push(bytes_of(one)));
  EXPECT_TRUE(ring.reserve(1).empty());
  EXPECT_FALSE(ring.reserved()) << "an empty reservation opens nothing";
  EXPECT_EQ(string_of(ring.front()), big);
  ring.pop();
  EXPECT_TRUE(ring.empty());
  EXPECT_TRUE(ring.push(bytes_of(one)));
}

TEST(RecordRing, BadInputIsRejectedAndChangesNothing) {
  picoring::RecordRing ring(4096);
  const std::string a = "first record";
  ASSERT_TRUE(ring.push(bytes_of(a)));
  const Snapshot before = snap(ring);

  EXPECT_THROW(ring.reserve(0), std::invalid_argument);
  EXPECT_THROW(ring.reserve(ring.max_record_size() + 1), std::length_error);
  EXPECT_THROW(ring.commit(), std::logic_error);
  EXPECT_THROW(ring.commit(1), std::logic_error);
  EXPECT_THROW(ring.discard(), std::logic_error);
  EXPECT_THROW(ring.push({}), std::invalid_argument);
  const std::string huge(ring.max_record_size() + 1, 'h');
  EXPECT_THROW(ring.push(bytes_of(huge)), std::length_error);
  EXPECT_EQ(snap(ring), before);

  auto out = ring.reserve(10);
  ASSERT_EQ(out.size(), 10u);
  std::memset(out.data(), 'r', 10);
  const Snapshot open = snap(ring);
  EXPECT_THROW(ring.reserve(5), std::logic_error);
  EXPECT_THROW(ring.push(bytes_of(a)), std::logic_error);
  EXPECT_THROW(ring.commit(0), std::logic_error);
  EXPECT_THROW(ring.commit(11), std::logic_error);
  EXPECT_EQ(snap(ring), open);
  ring.commit();
  EXPECT_THROW(ring.commit(), std::logic_error) << "a double commit";
  EXPECT_EQ(ring.size(), 2u);

  ring.pop();
  ring.pop();
  EXPECT_THROW(ring.pop(), std::out_of_range);
  EXPECT_TRUE(ring.empty());
}

// An exception from the drain callback leaves the record it was given in the ring.
TEST(RecordRing, ADrainThatThrowsKeepsTheRecordItWasGiven) {
  picoring::RecordRing ring(4096);
  for (const char* s : {"one", "two", "three"}) ASSERT_TRUE(ring.push(bytes_of(s)));
  int calls = 0;
  EXPECT_THROW(ring.drain([&](std::span<std::byte>) {
    if (++calls == 2) throw std::runtime_error("stop");
  }),
               std::runtime_error);
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(string_of(ring.front()), "two");
}

TEST(RecordRing, ClearKeepsAnOpenReservationValid) {
  picoring::RecordRing ring(4096);
  ASSERT_TRUE(ring.push(bytes_of(std::string("old"))));
  auto out = ring.reserve(4);
  std::memcpy(out.data(), "new!", 4);
  ring.clear();
  EXPECT_TRUE(ring.reserved());
  ring.commit();
  EXPECT_EQ(string_of(ring.front()), "new!");
}

TEST(RecordRing, CreationErrorsAndMoves) {
  picoring::Error err;
  picoring::RecordRing bad(0, err);
  EXPECT_TRUE(err);
  EXPECT_EQ(bad.capacity(), 0u);
  EXPECT_THROW(picoring::RecordRing(0), std::invalid_argument);

  picoring::RecordRing a(4096);
  ASSERT_TRUE(a.push(bytes_of(std::string("moved"))));
  picoring::RecordRing b(std::move(a));
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): moved-from rings are empty
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_TRUE(a.front().empty());  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_EQ(string_of(b.front()), "moved");
  // The length limit moves with the memory: a moved-from ring refuses every record.
  EXPECT_EQ(a.max_record_size(), 0u);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_THROW(a.push(bytes_of(std::string("x"))), std::length_error);
  EXPECT_EQ(b.max_record_size(), b.capacity() - 8);
  picoring::RecordRing c;
  EXPECT_EQ(c.max_record_size(), 0u);
  c = std::move(b);
  EXPECT_EQ(string_of(c.front()), "moved");
  EXPECT_EQ(c.max_record_size(), c.capacity() - 8);
  EXPECT_EQ(b.max_record_size(), 0u);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
  EXPECT_THROW(c.push(bytes_of(std::string(c.max_record_size() + 1, 'x'))), std::length_error);
  EXPECT_TRUE(c.push(bytes_of(std::string(8, 'y'))));
  EXPECT_EQ(c.size(), 2u);
}

// --- SPSC ---------------------------------------------------------------------------------------

namespace {
// A queue whose byte counters start at `start` (a multiple of 8), to cross their wrap-around.
std::pair<picoring::RecordProducer, picoring::RecordConsumer> record_spsc_at(std::size_t capacity, std::size_t start) {
  auto* s = picoring_test::state_starting_at<picoring::detail::RecordSpscState>(capacity, start);
  return picoring::detail::QueueAccess::handles<picoring::RecordProducer, picoring::RecordConsumer>(s);
}
}  // namespace

namespace {
// One thread plays both ends against a deque; `batching` on both ends (a look that finds
// little while streaming waits, then looks again: what it finds must not change).
void check_against_the_model(picoring::Batching batching) {
  auto [p, c] = record_spsc_at(4096, std::size_t{0} - std::size_t{8000});
  p.set_batching(batching);
  c.set_batching(batching);
  std::deque<std::string> model;
  std::mt19937_64 rng(7);
  std::uint64_t seq = 0;
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 2 == 0) {
      const std::string text = record_text(seq++, random_length(rng, p.max_record_size()));
      const bool fits = picoring::record_footprint(text.size()) <= p.bytes_free();
      ASSERT_EQ(p.push(bytes_of(text)), fits);
      if (fits) model.push_back(text);
    } else if (rng() % 5 == 0) {  // several at once
      std::vector<std::string> texts(below(rng, 5));
      for (auto& t : texts) t = record_text(seq++, random_length(rng, p.max_record_size() / 3));
      const std::size_t expected = prefix_that_fits(texts, p.bytes_free());
      ASSERT_EQ(p.push_some(spans_of(texts)), expected);
      model.insert(model.end(), texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(expected));
    } else if (model.empty()) {
      ASSERT_TRUE(c.front().empty());
      EXPECT_THROW(c.pop(), std::out_of_range);
    } else if (rng() % 4 == 0) {
      std::size_t seen = 0;
      c.drain(
          [&](std::span<std::byte> rec) {
            ASSERT_EQ(string_of(rec), model.front());
            model.pop_front();
            ++seen;
          },
          static_cast<std::size_t>(1 + rng() % 3));
      ASSERT_NE(seen, 0u);
    } else {
      ASSERT_EQ(string_of(c.front()), model.front());
      c.pop();
      model.pop_front();
    }
  }
}
}  // namespace

TEST(RecordSpsc, SingleThreadedItMatchesTheModel) { check_against_the_model({}); }
TEST(RecordSpsc, SingleThreadedAndWithBatchingOnBothEnds) {
  check_against_the_model({2048, std::chrono::microseconds(1)});
}

TEST(RecordSpsc, BatchingIsSetPerEndAndANegativeWaitChangesNothing) {
  using namespace std::chrono_literals;
  auto [p, c] = picoring::make_record_spsc(4096);
  EXPECT_EQ(p.batching().min_batch, 0u) << "off by default";
  p.set_batching({512, 1us});
  EXPECT_EQ(p.batching().min_batch, 512u);
  EXPECT_EQ(p.batching().max_wait, 1us);
  EXPECT_THROW(p.set_batching({64, -1ns}), std::invalid_argument);
  EXPECT_EQ(p.batching().min_batch, 512u) << "a refused setting changes nothing";
  EXPECT_EQ(c.batching().min_batch, 0u) << "each end has its own";
  EXPECT_THROW(c.set_batching({64, -1ns}), std::invalid_argument);
  EXPECT_EQ(c.batching().max_wait, 0ns);
  auto moved = std::move(p);
  EXPECT_EQ(moved.batching().min_batch, 512u) << "the setting moves with the handle";
  moved.set_batching({});
  EXPECT_EQ(moved.batching().max_wait, 0ns);
}

// One thread, so each look finds exactly what the test wrote. A wait lasts at least kWait; a
// look that must not wait runs with a wait of kNever, so a wrong wait shows as a slow call.
TEST(RecordSpsc, BatchingWaitsOnlyWhenALookFindsLittleWhileStreaming) {
  using namespace std::chrono_literals;
  constexpr auto kWait = 20ms;
  constexpr auto kNever = 20s;
  const auto time_of = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::steady_clock::now() - t0;
  };
  auto queue = picoring::make_record_spsc(4096);  // no structured bindings: lambdas capture these
  auto& p = queue.first;
  auto& c = queue.second;
  c.set_batching({1024, kNever});
  ASSERT_TRUE(p.push(bytes_of(std::string("a"))));
  EXPECT_LT(time_of([&] { EXPECT_EQ(string_of(c.front()), "a"); }), kNever / 2) << "a new end is idle: no wait";
  EXPECT_LT(time_of([&] { c.pop(); }), kNever / 2) << "pop takes what front() found";
  c.set_batching({1024, kWait});
  ASSERT_TRUE(p.push(bytes_of(std::string("b"))));
  EXPECT_GE(time_of([&] { EXPECT_EQ(string_of(c.front()), "b"); }), kWait) << "streaming, 16 < 1024 bytes: waits";
  c.pop();
  ASSERT_TRUE(p.push(bytes_of(std::string("c"))));
  std::string got;
  EXPECT_GE(time_of([&] { c.drain([&](std::span<std::byte> r) { got = string_of(r); }); }), kWait) << "drain too";
  EXPECT_EQ(got, "c");
  c.set_batching({1024, kNever});
  ASSERT_TRUE(p.push(bytes_of(std::string("d"))));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.wait(0ns), picoring::QueueStatus::ok); }), kNever / 2) << "wait never batches";
  c.pop();
  const std::string line(1500, 'x');
  ASSERT_TRUE(p.push(bytes_of(line)));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.front().size(), line.size()); }), kNever / 2) << "min_batch found: no wait";
  c.pop();

  // The producer in free bytes: a look that finds less than min_batch free while streaming waits.
  // Each push of `big` finds the cache showing too little room, so it looks at the consumer's
  // counter; min_batch above the capacity makes every such look thin.
  auto other = picoring::make_record_spsc(4096);
  auto& w = other.first;
  auto& r = other.second;
  const std::string big(w.max_record_size() - 64, 'y');
  const std::size_t more_than_all = w.capacity() + 1;
  ASSERT_TRUE(w.push(bytes_of(big)));
  r.pop();
  w.set_batching({more_than_all, kNever});
  EXPECT_LT(time_of([&] { EXPECT_TRUE(w.push(bytes_of(big))); }), kNever / 2) << "a new end is idle: no wait";
  r.pop();
  w.set_batching({more_than_all, kWait});
  EXPECT_GE(time_of([&] { EXPECT_TRUE(w.push(bytes_of(big))); }), kWait) << "streaming, a thin look: waits";
  r.pop();
  w.set_batching({more_than_all, kNever});
  EXPECT_LT(time_of([&] { EXPECT_EQ(w.bytes_free(), w.capacity()); }), kNever / 2) << "bytes_free never waits";
}

TEST(RecordSpsc, BadInputIsRejectedAndEmptyHandlesFailCleanly) {
  auto [p, c] = picoring::make_record_spsc(4096);
  EXPECT_THROW(p.reserve(0), std::invalid_argument);
  EXPECT_THROW(p.reserve(p.max_record_size() + 1), std::length_error);
  EXPECT_THROW(p.commit(), std::logic_error);
  EXPECT_THROW(p.discard(), std::logic_error);
  auto out = p.reserve(3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THROW(p.reserve(3), std::logic_error);
  EXPECT_THROW(p.push(bytes_of(std::string("x"))), std::logic_error) << "push with a reservation open";
  EXPECT_THROW(p.commit(4), std::logic_error);
  EXPECT_TRUE(c.front().empty()) << "nothing is visible before commit";
  std::memcpy(out.data(), "abc", 3);
  p.commit(2);
  EXPECT_EQ(string_of(c.front()), "ab");
  c.pop();
  EXPECT_THROW(c.pop(), std::out_of_range);
  // push checks as reserve does; the longest record fills the ring exactly.
  EXPECT_THROW(p.push({}), std::invalid_argument);
  const std::string longest(p.max_record_size(), 'z');
  EXPECT_THROW(p.push(bytes_of(longest + "z")), std::length_error);
  EXPECT_EQ(p.bytes_free(), p.capacity()) << "a refused push changes nothing";
  ASSERT_TRUE(p.push(bytes_of(longest)));
  EXPECT_EQ(p.bytes_free(), 0u);
  EXPECT_FALSE(p.push(bytes_of(std::string("y")))) << "full";
  EXPECT_EQ(string_of(c.front()), longest);
  c.pop();

  picoring::RecordProducer ep;
  picoring::RecordConsumer ec;
  EXPECT_TRUE(ep.reserve(8).empty());
  EXPECT_FALSE(ep.push(bytes_of(std::string("x"))));
  EXPECT_FALSE(ep.push({})) << "an empty handle refuses before it checks the length";
  EXPECT_EQ(ep.bytes_free(), 0u);
  EXPECT_TRUE(ec.front().empty());
  EXPECT_EQ(ec.wait(std::chrono::milliseconds(1)), picoring::QueueStatus::closed);
  EXPECT_EQ(ep.push_wait(bytes_of(std::string("x")), std::chrono::milliseconds(1)), picoring::QueueStatus::closed);
}

TEST(RecordSpsc, ClosingDrainsThenReportsClosed) {
  auto [p, c] = picoring::make_record_spsc(4096);
  ASSERT_TRUE(p.push(bytes_of(std::string("last words"))));
  { auto gone = std::move(p); }
  EXPECT_EQ(c.wait(std::chrono::seconds(1)), picoring::QueueStatus::ok);
  EXPECT_EQ(string_of(c.front()), "last words");
  c.pop();
  EXPECT_EQ(c.wait(std::chrono::seconds(1)), picoring::QueueStatus::closed);
}

namespace {
// Two threads, blocking on both sides, a small ring crossed thousands of times and the byte
// counters' wrap-around: every record arrives once, in order, intact (numbered by the producer).
// `batching` on both ends.
void pass_records_between_threads(picoring::Batching batching) {
  auto [p, c] = record_spsc_at(4096, std::size_t{0} - std::size_t{40000});
  p.set_batching(batching);
  c.set_batching(batching);
  const std::uint64_t records = picoring_test::scaled(200000);
  std::thread producer([&p = p, records] {
    std::mt19937_64 rng(11);
    for (std::uint64_t seq = 0; seq < records; ++seq) {
      const std::size_t len = 8 + below(rng, 600);
      std::string text = record_text(seq, len);
      std::memcpy(text.data(), &seq, sizeof seq);
      if (seq % 3 == 0) {
        std::span<std::byte> out;
        while ((out = p.reserve(len + 5)).empty()) std::this_thread::yield();
        std::memcpy(out.data(), text.data(), len);
        p.commit(len);
      } else if (seq % 3 == 1 && seq + 1 < records) {  // this record and the next with push_some
        const std::uint64_t after = seq + 1;
        const std::size_t len2 = 8 + below(rng, 600);
        std::string text2 = record_text(after, len2);
        std::memcpy(text2.data(), &after, sizeof after);
        push_all_of(p, {bytes_of(text), bytes_of(text2)});
        seq = after;
      } else {
        ASSERT_EQ(p.push_wait(bytes_of(text), std::chrono::seconds(30)), picoring::QueueStatus::ok);
      }
    }
  });
  std::mt19937_64 rng(11);
  std::uint64_t next = 0;
  while (next < records) {
    ASSERT_EQ(c.wait(std::chrono::seconds(30)), picoring::QueueStatus::ok);
    c.drain([&](std::span<std::byte> rec) {
      const std::size_t len = 8 + below(rng, 600);
      std::uint64_t seq = 0;
      ASSERT_EQ(rec.size(), len);
      std::memcpy(&seq, rec.data(), sizeof seq);
      ASSERT_EQ(seq, next);
      std::string text = record_text(seq, len);
      std::memcpy(text.data(), &seq, sizeof seq);
      ASSERT_EQ(string_of(rec), text);
      ++next;
    });
  }
  producer.join();
  EXPECT_EQ(next, records);
}
}  // namespace

TEST(RecordSpsc, TwoThreadsPassEveryRecordInOrderAndIntact) { pass_records_between_threads({}); }
TEST(RecordSpsc, TwoThreadsAndWithBatchingOnBothEnds) {
  pass_records_between_threads({1024, std::chrono::microseconds(2)});
}

// --- MPSC ---------------------------------------------------------------------------------------

namespace {
// An MPSC record queue whose positions start at `start` (a multiple of 8).
std::pair<picoring::RecordMpscProducer, picoring::RecordMpscConsumer> record_mpsc_at(std::size_t capacity,
                                                                                     std::uint64_t start) {
  auto* s = picoring_test::state_starting_at<picoring::detail::RecordMpscState>(capacity, start);
  return picoring::detail::QueueAccess::handles<picoring::RecordMpscProducer, picoring::RecordMpscConsumer>(s);
}

// The model of an MPSC record queue: every claimed place in claim order, and what became of it.
struct PlaceModel {
  enum State { open, committed, discarded } state;
  std::size_t footprint;
  std::string text;
};
}  // namespace

// One thread plays three producers and the consumer: reservations overlap, commits come out of
// order, some are short, some are discarded, some handles go away holding one. What the
// consumer sees, and when each producer finds room, must match the model exactly, across the
// 64-bit positions' wrap-around.
TEST(RecordMpsc, InterleavedReservationsMatchTheModel) {
  auto [first, c] = record_mpsc_at(4096, std::uint64_t{0} - 20000);
  std::vector<picoring::RecordMpscProducer> producers;
  producers.push_back(std::move(first));
  producers.emplace_back(producers[0]);
  producers.emplace_back(producers[0]);
  std::vector<std::size_t> open_place(producers.size(), 0);  // index into places + 1, 0: none
  std::deque<PlaceModel> places;
  std::size_t dropped = 0;  // places popped from the model's front (to map open_place indices)
  std::mt19937_64 rng(23);
  std::uint64_t seq = 0;
  const std::size_t cap = c.capacity();
  ASSERT_EQ(cap & (cap - 1), 0u) << "a power of two";
  auto used = [&] {
    std::size_t u = 0;
    for (const auto& pl : places) u += pl.footprint;
    return u;
  };
  // The consumer's view: discarded places at the front are skipped (and freed) on any look.
  auto skip_discarded = [&] {
    while (!places.empty() && places.front().state == PlaceModel::discarded) {
      places.pop_front();
      ++dropped;
    }
  };
  for (int step = 0; step < 30000; ++step) {
    const std::size_t who = below(rng, producers.size());
    auto& p = producers[who];
    const auto op = rng() % 10;
    if (op < 3 && open_place[who] == 0) {  // reserve
      const std::size_t len = random_length(rng, p.max_record_size());
      const bool fits = picoring::record_footprint(len) <= cap - used();
      const auto out = p.reserve(len);
      ASSERT_EQ(!out.empty(), fits) << "step " << step;
      if (fits) {
        const std::string text = record_text(seq++, len);
        std::memcpy(out.data(), text.data(), len);
        places.push_back({PlaceModel::open, picoring::record_footprint(len), text});
        open_place[who] = dropped + places.size();
      }
    } else if (op < 5 && open_place[who] != 0) {  // commit, whole or short, or discard
      auto& pl = places[open_place[who] - 1 - dropped];
      const auto how = rng() % 3;
      if (how == 0) {
        p.discard();
        pl.state = PlaceModel::discarded;
      } else if (how == 1) {
        const std::size_t len = 1 + below(rng, pl.text.size());
        p.commit(len);
        pl.text.resize(len);
        pl.state = PlaceModel::committed;
      } else {
        p.commit();
        pl.state = PlaceModel::committed;
      }
      open_place[who] = 0;
    } else if (op < 6) {  // push
      if (open_place[who] != 0) {
        EXPECT_THROW(p.push(bytes_of(std::string("x"))), std::logic_error);
        continue;
      }
      const std::string text = record_text(seq++, random_length(rng, p.max_record_size()));
      const bool fits = picoring::record_footprint(text.size()) <= cap - used();
      ASSERT_EQ(p.push(bytes_of(text)), fits);
      if (fits) places.push_back({PlaceModel::committed, picoring::record_footprint(text.size()), text});
    } else if (op < 7 && rng() % 8 == 0) {  // a handle goes away (holding a reservation or not)
      if (open_place[who] != 0) places[open_place[who] - 1 - dropped].state = PlaceModel::discarded;
      open_place[who] = 0;
      p = picoring::RecordMpscProducer(producers[(who + 1) % producers.size()]);
      ASSERT_FALSE(p.reserved());
    } else if (op < 9) {  // front and pop
      skip_discarded();
      const auto rec = c.front();
      if (!places.empty() && places.front().state == PlaceModel::committed) {
        ASSERT_EQ(string_of(rec), places.front().text) << "step " << step;
        c.pop();
        places.pop_front();
        ++dropped;
      } else {
        ASSERT_TRUE(rec.empty()) << "step " << step;
        EXPECT_THROW(c.pop(), std::out_of_range);
      }
    } else {  // drain up to max
      const std::size_t max = 1 + below(rng, 4);
      std::vector<std::string> want;
      std::size_t visited = 0;
      while (!places.empty() && places.front().state != PlaceModel::open && visited < max) {
        if (places.front().state == PlaceModel::committed) {
          want.push_back(places.front().text);
          ++visited;
        }
        places.pop_front();
        ++dropped;
      }
      std::vector<std::string> got;
      ASSERT_EQ(c.drain([&](std::span<std::byte> rec) { got.push_back(string_of(rec)); }, max), want.size());
      ASSERT_EQ(got, want) << "step " << step;
    }
  }
  EXPECT_FALSE(c.closed());
}

TEST(RecordMpsc, ARecordCommittedBeforeAnOlderOneWaitsForIt) {
  auto [a, c] = picoring::make_record_mpsc(4096);
  auto b = a;
  auto older = a.reserve(5);
  ASSERT_EQ(older.size(), 5u);
  ASSERT_TRUE(b.push(bytes_of(std::string("newer"))));
  EXPECT_TRUE(c.front().empty()) << "the older reservation holds the consumer back";
  EXPECT_EQ(c.wait(std::chrono::milliseconds(5)), picoring::QueueStatus::timed_out);
  std::memcpy(older.data(), "older", 5);
  a.commit();
  std::vector<std::string> got;
  EXPECT_EQ(c.drain([&](std::span<std::byte> rec) { got.push_back(string_of(rec)); }), 2u);
  EXPECT_EQ(got, (std::vector<std::string>{"older", "newer"}));
}

TEST(RecordMpsc, BadInputIsRejectedAndEmptyHandlesFailCleanly) {
  auto [p, c] = picoring::make_record_mpsc(4096);
  EXPECT_EQ(p.max_record_size(), p.capacity() - 8);
  EXPECT_THROW(p.reserve(0), std::invalid_argument);
  EXPECT_THROW(p.reserve(p.max_record_size() + 1), std::length_error);
  EXPECT_THROW(p.commit(), std::logic_error);
  EXPECT_THROW(p.discard(), std::logic_error);
  auto out = p.reserve(3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_THROW(p.reserve(3), std::logic_error);
  EXPECT_THROW(p.commit(4), std::logic_error);
  EXPECT_THROW(p.commit(0), std::logic_error);
  EXPECT_THROW(p.push(bytes_of(std::string("x"))), std::logic_error);
  EXPECT_TRUE(p.reserved()) << "the rejected calls left the reservation open";
  std::memcpy(out.data(), "abc", 3);
  p.commit();
  EXPECT_THROW(p.commit(), std::logic_error) << "a second commit";
  EXPECT_EQ(string_of(c.front()), "abc");
  c.pop();
  EXPECT_THROW(c.pop(), std::out_of_range);
  EXPECT_THROW(p.push({}), std::invalid_argument);
  EXPECT_THROW(p.push(bytes_of(std::string(p.max_record_size() + 1, 'z'))), std::length_error);
  EXPECT_TRUE(c.front().empty()) << "refused pushes publish nothing";
  // The largest record fills the ring; nothing else fits until it is popped.
  auto big = p.reserve(p.max_record_size());
  ASSERT_EQ(big.size(), p.max_record_size());
  auto q = p;
  EXPECT_EQ(q.max_record_size(), p.max_record_size()) << "a copy has the same limit";
  EXPECT_TRUE(q.reserve(1).empty());
  EXPECT_FALSE(q.push(bytes_of(std::string("x"))));
  p.commit();
  EXPECT_EQ(c.front().size(), p.max_record_size());
  c.pop();
  EXPECT_TRUE(q.push(bytes_of(std::string("x"))));

  picoring::RecordMpscProducer ep;
  picoring::RecordMpscConsumer ec;
  EXPECT_TRUE(ep.reserve(8).empty());
  EXPECT_FALSE(ep.push(bytes_of(std::string("x"))));
  EXPECT_FALSE(ep.push({})) << "an empty handle refuses before it checks the length";
  EXPECT_TRUE(ec.front().empty());
  EXPECT_EQ(ec.wait(std::chrono::milliseconds(1)), picoring::QueueStatus::closed);
  EXPECT_EQ(ep.push_wait(bytes_of(std::string("x")), std::chrono::milliseconds(1)), picoring::QueueStatus::closed);
  picoring::Error err;
  auto [np, nc] = picoring::make_record_mpsc(0, err);
  EXPECT_TRUE(err);
  EXPECT_FALSE(np);
  EXPECT_FALSE(nc);
}

// The queue closes when the last producer copy goes; one that goes holding a reservation
// publishes it as skipped, so the consumer still reaches what was committed after it.
TEST(RecordMpsc, ProducersLeavingDoNotStrandTheConsumer) {
  auto [p, c] = picoring::make_record_mpsc(4096);
  auto q = p;
  ASSERT_FALSE(p.reserve(100).empty());
  ASSERT_TRUE(q.push(bytes_of(std::string("after"))));
  { auto gone = std::move(p); }
  EXPECT_FALSE(c.closed()) << "a copy is still alive";
  EXPECT_EQ(c.wait(std::chrono::seconds(1)), picoring::QueueStatus::ok);
  EXPECT_EQ(string_of(c.front()), "after");
  c.pop();
  { auto gone = std::move(q); }
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.wait(std::chrono::seconds(1)), picoring::QueueStatus::closed);
}

// Three producer threads and the consumer on a small ring, full most of the time, across the
// positions' wrap-around: every committed record arrives once, intact, each producer's in the
// order it made them; discarded and short reservations leave no trace.
TEST(RecordMpsc, ThreadsPassEveryRecordOnceInEachProducersOrder) {
  constexpr std::uint64_t kProducers = 3;
  auto [first, c] = record_mpsc_at(4096, std::uint64_t{0} - 50000);
  const std::uint64_t per_producer = picoring_test::scaled(40000);
  std::vector<std::thread> threads;
  for (std::uint64_t id = 0; id < kProducers; ++id) {
    threads.emplace_back([p = picoring::RecordMpscProducer(first), id, per_producer]() mutable {
      std::mt19937_64 rng(100 + id);
      for (std::uint64_t seq = 0; seq < per_producer; ++seq) {
        const std::size_t len = 16 + below(rng, 500);
        std::string text = record_text(seq * kProducers + id, len);
        const std::uint64_t tag[2] = {id, seq};
        std::memcpy(text.data(), tag, sizeof tag);
        const auto how = seq % 4;
        if (how == 0) {  // reserve more than needed, commit short; sometimes a discard first
          std::span<std::byte> out;
          while ((out = p.reserve(len + 9)).empty()) std::this_thread::yield();
          if (rng() % 5 == 0) {
            p.discard();
            while ((out = p.reserve(len + 9)).empty()) std::this_thread::yield();
          }
          std::memcpy(out.data(), text.data(), len);
          p.commit(len);
        } else if (how == 1 && seq + 1 < per_producer) {  // this record and the next with push_some
          const std::uint64_t after = seq + 1;
          const std::size_t len2 = 16 + below(rng, 500);
          std::string text2 = record_text(after * kProducers + id, len2);
          const std::uint64_t tag2[2] = {id, after};
          std::memcpy(text2.data(), tag2, sizeof tag2);
          push_all_of(p, {bytes_of(text), bytes_of(text2)});
          seq = after;
        } else {
          ASSERT_EQ(p.push_wait(bytes_of(text), std::chrono::seconds(30)), picoring::QueueStatus::ok);
        }
      }
    });
  }
  first = picoring::RecordMpscProducer();  // the threads' copies keep the queue open
  std::vector<std::uint64_t> next(kProducers, 0);
  std::uint64_t total = 0;
  for (;;) {
    const auto st = c.wait(std::chrono::seconds(30));
    if (st == picoring::QueueStatus::closed) break;
    ASSERT_EQ(st, picoring::QueueStatus::ok);
    c.drain([&](std::span<std::byte> rec) {
      std::uint64_t tag[2] = {};
      ASSERT_GE(rec.size(), sizeof tag);
      std::memcpy(tag, rec.data(), sizeof tag);
      ASSERT_LT(tag[0], kProducers);
      const auto who = static_cast<std::size_t>(tag[0]);
      ASSERT_EQ(tag[1], next[who]) << "producer " << who;
      std::string text = record_text(tag[1] * kProducers + tag[0], rec.size());
      std::memcpy(text.data(), tag, sizeof tag);
      ASSERT_EQ(string_of(rec), text);
      ++next[who];
      ++total;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total, per_producer * kProducers);
  for (const auto n : next) EXPECT_EQ(n, per_producer);
}

// --- push_some: several records, one publication -------------------------------------------

namespace {
// The same rules for every form: an empty list pushes nothing; a list that fits goes in whole,
// in order; one that does not goes in as its longest prefix; bad input throws and pushes none.
template <class Producer, class Consumer>
void push_some_rules(Producer& p, Consumer& c) {
  const std::vector<std::string> three = {"one", std::string(100, 't'), "three"};
  EXPECT_EQ(p.push_some({}), 0u);
  ASSERT_EQ(p.push_some(spans_of(three)), 3u);
  for (const auto& t : three) {
    ASSERT_EQ(string_of(c.front()), t);
    c.pop();
  }
  ASSERT_TRUE(c.front().empty());

  const std::string huge(p.max_record_size() + 1, 'h');
  EXPECT_THROW(p.push_some(RecordList{bytes_of(three[0]), {}, bytes_of(three[2])}), std::invalid_argument);
  EXPECT_THROW(p.push_some(RecordList{bytes_of(three[0]), bytes_of(huge)}), std::length_error);
  EXPECT_TRUE(c.front().empty()) << "a refused list publishes nothing, not even its valid first record";
  auto out = p.reserve(4);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_THROW(p.push_some(spans_of(three)), std::logic_error);
  EXPECT_TRUE(p.reserved()) << "the refused call left the reservation open";
  p.discard();

  // Records of 1000 bytes take 1008: as many as the capacity holds go in, the rest wait.
  const std::size_t fit = p.capacity() / 1008;
  std::vector<std::string> many;
  for (std::size_t i = 0; i < fit + 2; ++i) many.push_back(record_text(10 + i, 1000));
  ASSERT_EQ(p.push_some(spans_of(many)), fit);
  EXPECT_EQ(p.push_some(spans_of({many[fit]})), 0u) << "full";
  ASSERT_EQ(string_of(c.front()), many[0]);
  c.pop();
  ASSERT_EQ(p.push_some(spans_of({many[fit], many[fit + 1]})), 1u) << "room for one more";
  for (std::size_t i = 1; i <= fit; ++i) {
    ASSERT_EQ(string_of(c.front()), many[i]) << i;
    c.pop();
  }
  EXPECT_TRUE(c.front().empty());
}
}  // namespace

TEST(RecordRing, PushSomeTakesTheLongestPrefixThatFits) {
  picoring::RecordRing ring(4096);
  push_some_rules(ring, ring);
  const std::string text = "x";
  EXPECT_THROW(picoring::RecordRing().push_some(spans_of({text})), std::length_error) << "an empty ring";
}
namespace {
// The queues' rules, then theirs alone: an empty producer handle and a closed queue.
template <class Producer, class Consumer>
void push_some_on_a_queue(std::pair<Producer, Consumer> handles) {
  auto& [p, c] = handles;
  push_some_rules(p, c);
  Producer empty;
  EXPECT_EQ(empty.push_some(RecordList{{}}), 0u) << "an empty handle refuses before it checks the lengths";
  { auto gone = std::move(c); }
  EXPECT_EQ(p.push_some(spans_of({"after close"})), 0u);
}
}  // namespace

TEST(RecordSpsc, PushSomeTakesTheLongestPrefixThatFits) { push_some_on_a_queue(picoring::make_record_spsc(4096)); }
TEST(RecordMpsc, PushSomeTakesTheLongestPrefixThatFits) { push_some_on_a_queue(picoring::make_record_mpsc(4096)); }

// A list whose first record crosses the physical end: its tail lands in the first pages, and
// the next record starts after it there.
TEST(RecordSpsc, APushSomeAcrossTheEndLandsInTheFirstPages) {
  auto [p, c] = picoring::make_record_spsc(4096);
  const std::size_t cap = p.capacity();
  ASSERT_TRUE(p.push(bytes_of(record_text(1, cap - 8 - 64 - 8))));
  const std::byte* const base = c.front().data() - 8;
  c.pop();
  const std::vector<std::string> two = {record_text(2, 200), record_text(3, 50)};
  ASSERT_EQ(p.push_some(spans_of(two)), 2u);
  ASSERT_EQ(c.front().data(), base + cap - 64);
  EXPECT_EQ(string_of(c.front()), two[0]);
  EXPECT_EQ(0, std::memcmp(base, two[0].data() + 64, two[0].size() - 64)) << "the tail is not in the first pages";
  c.pop();
  // The first header was 64 + 8 bytes before the end; the second follows its footprint.
  ASSERT_EQ(c.front().data(), base + (picoring::record_footprint(200) - 64 - 8) + 8);
  EXPECT_EQ(string_of(c.front()), two[1]);
  c.pop();
}

// One thread plays three MPSC producers: a list claimed by one is read as a whole, with nothing
// of the other's between its records, whatever was claimed around it.
TEST(RecordMpsc, APushSomeListIsReadWithNothingBetweenItsRecords) {
  auto [p, c] = picoring::make_record_mpsc(4096);
  auto q = p;
  auto r = p;
  ASSERT_TRUE(p.push(bytes_of(std::string("p0"))));
  auto out = q.reserve(5);  // claimed before the list, committed after it
  ASSERT_EQ(out.size(), 5u);
  ASSERT_EQ(p.push_some(spans_of({"p1", "p2", "p3"})), 3u);
  ASSERT_TRUE(r.push(bytes_of(std::string("r1"))));
  EXPECT_EQ(string_of(c.front()), "p0");
  c.pop();
  EXPECT_TRUE(c.front().empty()) << "the open reservation holds the list back";
  std::memcpy(out.data(), "q0q0q", 5);
  q.commit(2);
  std::vector<std::string> seen;
  c.drain([&](std::span<std::byte> rec) { seen.push_back(string_of(rec)); });
  EXPECT_EQ(seen, (std::vector<std::string>{"q0", "p1", "p2", "p3", "r1"}));
}
