// MPSC queue: API rules, the progress guarantee (a producer stopped between its claim and its
// publication), counter wrap-around, then stress tests with more producers than cores:
// per-producer sequence numbers (no item lost, duplicated or reordered within a producer), every
// API drawn at random on every thread, element sizes 1, 3, 8, 24 and 72 bytes and a
// lifetime-counted type. Run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <iterator>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "picoring/fanin.hpp"
#include "picoring/mpsc.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using picoring::make_fanin;
using picoring::make_mpsc;
using picoring::mirror_safe;
using picoring::QueueStatus;
using picoring_test::Tracked;

struct Msg1 {
  unsigned char byte;  // producer in the top 3 bits, the sequence number modulo 32 below
};
struct Msg3 {
  unsigned char bytes[3];  // producer, then the sequence number modulo 65536
};
struct Msg8 {
  std::uint32_t producer;
  std::uint32_t seq;
};
struct Msg24 {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint64_t payload[2];  // derived from (producer, seq) by PayloadCodec: a torn write shows
};
struct Msg72 {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint64_t payload[8];
};
static_assert(sizeof(Msg1) == 1 && sizeof(Msg3) == 3 && sizeof(Msg24) == 24 && sizeof(Msg72) == 72);

template <class T>
struct Codec;
template <>
struct Codec<Msg1> {
  static constexpr std::uint32_t kSeqMod = 32;  // a lost or repeated item still breaks the count
  static Msg1 make(std::uint32_t p, std::uint32_t s) { return Msg1{static_cast<unsigned char>((p << 5) | (s & 31))}; }
  static std::uint32_t producer(const Msg1& m) { return static_cast<std::uint32_t>(m.byte >> 5); }
  static std::uint32_t seq(const Msg1& m) { return static_cast<std::uint32_t>(m.byte & 31); }
  static bool intact(const Msg1&) { return true; }
};
template <>
struct Codec<Msg3> {
  static constexpr std::uint32_t kSeqMod = 65536;
  static Msg3 make(std::uint32_t p, std::uint32_t s) {
    return Msg3{{static_cast<unsigned char>(p), static_cast<unsigned char>(s), static_cast<unsigned char>(s >> 8)}};
  }
  static std::uint32_t producer(const Msg3& m) { return m.bytes[0]; }
  static std::uint32_t seq(const Msg3& m) { return static_cast<std::uint32_t>(m.bytes[1] | (m.bytes[2] << 8)); }
  static bool intact(const Msg3&) { return true; }
};
template <>
struct Codec<Msg8> {
  static constexpr std::uint32_t kSeqMod = 0;
  static Msg8 make(std::uint32_t p, std::uint32_t s) { return {p, s}; }
  static std::uint32_t producer(const Msg8& m) { return m.producer; }
  static std::uint32_t seq(const Msg8& m) { return m.seq; }
  static bool intact(const Msg8&) { return true; }
};
// Msg24 and Msg72: producer, sequence number and payload words derived from both.
template <class M>
struct PayloadCodec {
  static constexpr std::uint32_t kSeqMod = 0;
  static M make(std::uint32_t p, std::uint32_t s) {
    M m{p, s, {}};
    for (std::size_t i = 0; i < std::size(m.payload); ++i) {
      m.payload[i] = (std::uint64_t{p} << 40) ^ (std::uint64_t{s} << 8) ^ i;
    }
    return m;
  }
  static std::uint32_t producer(const M& m) { return m.producer; }
  static std::uint32_t seq(const M& m) { return m.seq; }
  static bool intact(const M& m) {
    const M want = make(m.producer, m.seq);
    return std::memcmp(&want, &m, sizeof m) == 0;
  }
};
template <>
struct Codec<Msg24> : PayloadCodec<Msg24> {};
template <>
struct Codec<Msg72> : PayloadCodec<Msg72> {};
template <>
struct Codec<Tracked> {
  static constexpr std::uint32_t kSeqMod = 0;
  static Tracked make(std::uint32_t p, std::uint32_t s) { return Tracked((std::uint64_t{p} << 32) | s); }
  static std::uint32_t producer(const Tracked& m) { return static_cast<std::uint32_t>(m.value() >> 32); }
  static std::uint32_t seq(const Tracked& m) { return static_cast<std::uint32_t>(m.value()); }
  static bool intact(const Tracked&) { return true; }
};

TEST(Mpsc, CapacityIsAPowerOfTwoOfWholePages) {
  auto [p, c] = make_mpsc<Msg72>(1000);
  const std::size_t cap = p.capacity();
  EXPECT_GE(cap, 1000u);
  EXPECT_EQ(cap & (cap - 1), 0u);
  EXPECT_EQ(cap * sizeof(Msg72) % picoring::allocation_granularity(), 0u);
  for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(p.try_push(Codec<Msg72>::make(0, static_cast<std::uint32_t>(i))));
  EXPECT_FALSE(p.try_push(Codec<Msg72>::make(0, 0)));
  EXPECT_EQ(c.size(), cap);
}

TEST(Mpsc, RunsStayTogetherAndTheWindowWraps) {
  auto [p, c] = make_mpsc<std::uint32_t>(1);
  const std::size_t cap = p.capacity();
  auto q = p;  // a second producer
  std::vector<std::uint32_t> run(cap / 2);
  for (std::uint32_t lap = 0; lap < 4; ++lap) {
    for (std::size_t i = 0; i < run.size(); ++i) run[i] = lap * 1000000 + static_cast<std::uint32_t>(i);
    ASSERT_TRUE(p.push_slice(run));
    ASSERT_TRUE(q.try_push(lap));
    EXPECT_FALSE(q.push_slice(run)) << "all or nothing";
    auto window = c.peek();
    ASSERT_EQ(window.size(), run.size() + 1);
    for (std::size_t i = 0; i < run.size(); ++i) ASSERT_EQ(window[i], run[i]);
    EXPECT_EQ(window.back(), lap);
    c.release(window.size() - 1);
    EXPECT_EQ(c.try_pop(), lap);
  }
}

// A queue whose positions start at `start`: see picoring_test::state_starting_at.
template <class T>
std::pair<picoring::MpscProducer<T>, picoring::MpscConsumer<T>> make_mpsc_at(std::size_t min_capacity,
                                                                             std::uint64_t start) {
  return picoring::detail::QueueAccess::handles<picoring::MpscProducer<T>, picoring::MpscConsumer<T>>(
      picoring_test::state_starting_at<picoring::detail::MpscState<T>>(min_capacity, start));
}

TEST(Mpsc, PositionsWrapAroundWithoutReadingUnpublishedSlots) {
  constexpr std::uint64_t kMax = ~std::uint64_t{0};
  for (const std::uint64_t start : {std::uint64_t{0}, (std::uint64_t{1} << 32) - 100, kMax - 99, kMax}) {
    SCOPED_TRACE(start);
    auto [producer, consumer] = make_mpsc_at<std::uint32_t>(1, start);
    const std::size_t cap = producer.capacity();
    // Nothing is readable before anything is pushed, wherever the positions start.
    EXPECT_EQ(consumer.size(), 0u);
    EXPECT_TRUE(consumer.peek().empty());

    // A copy taken now is stale once the others have filled the queue across the wrap: it must
    // still see the queue as full.
    auto spare = producer;
    std::uint32_t next = 0;
    std::uint32_t expected = 0;
    for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(producer.try_push(next++));
    EXPECT_FALSE(spare.try_push(next));
    EXPECT_FALSE(producer.try_push(next));
    ASSERT_EQ(consumer.size(), cap);
    auto window = consumer.peek();
    for (const std::uint32_t v : window) ASSERT_EQ(v, expected++);
    consumer.release(window.size());

    // Three more laps of runs of random length through either producer; after every step the
    // consumer sees exactly what was pushed, in order.
    std::mt19937 rng(static_cast<std::uint32_t>(start));
    std::vector<std::uint32_t> run;
    while (next < 4 * cap) {
      auto& q = rng() % 2 == 0 ? producer : spare;
      run.resize(1 + rng() % (cap / 3));
      for (auto& v : run) v = next++;
      if (!q.push_slice(run)) next -= static_cast<std::uint32_t>(run.size());
      ASSERT_EQ(consumer.size(), std::size_t{next - expected});
      const std::size_t take = rng() % (consumer.size() + 1);
      std::uint32_t v = 0;
      for (std::size_t i = 0; i < take; ++i) {
        ASSERT_TRUE(consumer.try_pop(v));
        ASSERT_EQ(v, expected++);
      }
    }
  }
}

TEST(Mpsc, MovedFromHandlesAreEmptyWhateverTheirCountersWere) {
  auto [p, c] = make_mpsc<int>(16);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.try_push(i));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.try_pop(), i);
  auto p2 = std::move(p);
  auto c2 = std::move(c);
  // NOLINTBEGIN(bugprone-use-after-move): the moved-from state is specified
  EXPECT_FALSE(static_cast<bool>(p));
  EXPECT_FALSE(p.try_push(1));
  const int items[] = {1, 2};
  EXPECT_FALSE(p.push_slice(items));
  EXPECT_EQ(p.push_wait(1, 1ms), QueueStatus::closed);
  picoring_test::expect_empty_consumer(c);
  // NOLINTEND(bugprone-use-after-move)
  EXPECT_EQ(c2.size(), 7u);
  EXPECT_EQ(c2.try_pop(), 3);
  ASSERT_TRUE(p2.try_push(10));
  auto [q, d] = make_mpsc<int>(16);
  d = std::move(c2);
  EXPECT_TRUE(q.closed()) << "the consumer that d replaced is gone";
  EXPECT_EQ(d.try_pop(), 4);
  EXPECT_FALSE(c2.try_pop().has_value());  // NOLINT(bugprone-use-after-move)
}

TEST(Mpsc, TheQueueClosesWhenTheLastProducerGoes) {
  auto [p, c] = make_mpsc<int>(16);
  {
    auto q = p;
    { auto gone = std::move(p); }
    EXPECT_FALSE(c.closed()) << "one producer copy is still alive";
    ASSERT_TRUE(q.try_push(9));
  }
  EXPECT_TRUE(c.closed());
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, 10s), QueueStatus::ok);
  EXPECT_EQ(out, 9);
  EXPECT_EQ(c.pop_wait(out, 10s), QueueStatus::closed);
}

// An element whose move constructor, once armed, stops until the gate opens. A producer moves
// its element into the slot it has claimed, so arming it stops that producer between its claim
// and its publication, as a preemption there would.
struct Gate {
  static inline std::atomic<bool> armed{false};
  static inline std::atomic<bool> stalled{false};
  static inline std::atomic<bool> open{false};
  std::uint64_t v;
  explicit Gate(std::uint64_t x = 0) noexcept : v(x) {}
  Gate(const Gate&) noexcept = default;
  Gate(Gate&& o) noexcept : v(o.v) {
    if (armed.exchange(false)) {
      stalled = true;
      // Polls rather than std::atomic::wait: with mingw's libstdc++ 12 (no futex) that wait
      // missed the notification and hung under wine in a CI run.
      while (!open.load()) std::this_thread::yield();
    }
  }
  Gate& operator=(const Gate&) noexcept = default;
  Gate& operator=(Gate&&) noexcept = default;
  ~Gate() = default;
};

TEST(Mpsc, AProducerStalledBetweenClaimAndPublicationHoldsUpOnlyTheConsumer) {
  auto [producer, consumer] = make_mpsc<Gate>(16);
  const std::size_t cap = producer.capacity();
  // The gate's flags are static: reset them so that the test also holds under --gtest_repeat.
  Gate::stalled = false;
  Gate::open = false;
  Gate::armed = true;
  std::thread stalled([q = producer]() mutable { EXPECT_TRUE(q.try_push(Gate(1000))); });
  while (!Gate::stalled.load()) std::this_thread::yield();

  // The other producers go on claiming and publishing until the ring is full...
  for (std::uint64_t i = 0; i + 1 < cap; ++i) ASSERT_TRUE(producer.try_push(Gate(i))) << i;
  EXPECT_FALSE(producer.try_push(Gate(cap)));
  // ...while the consumer, which takes elements in claim order, waits for the stalled run.
  EXPECT_EQ(consumer.size(), 0u);
  EXPECT_FALSE(consumer.try_pop().has_value());

  Gate::open = true;
  stalled.join();
  ASSERT_EQ(consumer.size(), cap);
  EXPECT_EQ(consumer.try_pop()->v, 1000u);
  for (std::uint64_t i = 0; i + 1 < cap; ++i) ASSERT_EQ(consumer.try_pop()->v, i);
}

TEST(Mpsc, AFullQueueBlocksProducersUntilTheConsumerFreesRoom) {
  auto [p, c] = make_mpsc<int>(1);
  const std::size_t cap = p.capacity();
  for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(p.try_push(static_cast<int>(i)));
  std::vector<std::thread> producers;
  producers.reserve(3);
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([q = p, t]() mutable { EXPECT_EQ(q.push_wait(-1 - t, 60s), QueueStatus::ok); });
  }
  std::this_thread::sleep_for(20ms);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.try_pop(), i);  // each pop lets one producer in
  for (auto& t : producers) t.join();
  EXPECT_EQ(c.size(), cap);
}

// --- The fan-in queue (fanin.hpp): one SPSC lane per producer copy -------------------------

TEST(FanIn, EachCopyIsALaneAndTheConsumerTakesThemInTurns) {
  auto [p, c] = make_fanin<std::uint32_t>(1);
  auto q = p;
  const std::size_t cap = p.capacity();
  ASSERT_EQ(q.capacity(), cap);
  EXPECT_EQ(cap * sizeof(std::uint32_t) % picoring::allocation_granularity(), 0u);
  // A full lane stops only its own producer.
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(p.try_push(i));
  EXPECT_FALSE(p.try_push(0u));
  ASSERT_TRUE(q.try_push(1'000'000u));
  EXPECT_EQ(c.size(), cap + 1);
  EXPECT_EQ(c.lanes(), 2u);

  // The first lane's turn: its elements as one window; releasing part of it passes the turn.
  auto window = c.peek();
  ASSERT_EQ(window.size(), cap);
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_EQ(window[i], i);
  c.release(cap / 2);
  EXPECT_EQ(c.try_pop(), 1'000'000u);
  // Back to the first lane, which now wraps: still one contiguous window.
  for (std::uint32_t i = 0; i < cap / 2; ++i) ASSERT_TRUE(p.try_push(static_cast<std::uint32_t>(cap) + i));
  window = c.peek();
  ASSERT_EQ(window.size(), cap);
  for (std::uint32_t i = 0; i < cap; ++i) ASSERT_EQ(window[i], cap / 2 + i);
  EXPECT_THROW(c.release(cap + 1), std::out_of_range);
  EXPECT_EQ(c.size(), cap) << "a refused release frees nothing";
  c.release(cap);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.try_pop().has_value());
}

TEST(FanIn, ABusyLaneCannotStarveTheOthers) {
  auto [p, c] = make_fanin<int>(1024);
  auto q = p;
  const std::size_t cap = p.capacity();  // whole pages of ints: 1024 to 16384 here
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.try_push(-1 - i));
  // p keeps its lane full; q's elements still come out, after at most one turn of p's: what p's
  // lane held when the turn came to it, at most its capacity.
  std::vector<int> seen;
  std::size_t before_q = 0;
  int next = 0;
  for (std::size_t pops = 0; seen.size() < 3 && pops < 4 * cap; ++pops) {
    while (p.try_push(next)) ++next;
    const auto v = c.try_pop();
    ASSERT_TRUE(v.has_value());
    if (*v < 0) {
      seen.push_back(*v);
    } else if (seen.empty()) {
      ++before_q;
    }
  }
  EXPECT_EQ(seen, (std::vector<int>{-1, -2, -3}));
  EXPECT_LE(before_q, cap);
}

TEST(FanIn, PlacesAreLimitedAndAnEndedLaneFreesItsPlaceOnceEmpty) {
  auto [p, c] = make_fanin<int>(16, 2);
  auto q = p;
  EXPECT_THROW({ auto r = p; }, std::system_error);
  picoring::Error err;
  auto r = p.another(err);
  EXPECT_EQ(err.code, std::errc::resource_unavailable_try_again) << err.message();
  EXPECT_FALSE(static_cast<bool>(r));
  ASSERT_TRUE(q.try_push(7));
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.try_push(8));
  EXPECT_FALSE(c.closed()) << "p still produces";
  c.size();  // a look at the lanes: q's still holds an element, so its place stays taken
  EXPECT_THROW({ auto s = p; }, std::system_error);
  EXPECT_EQ(c.try_pop(), 7);
  EXPECT_FALSE(c.try_pop().has_value());  // q's lane found ended and empty: freed
  EXPECT_EQ(c.lanes(), 1u);
  err = {};
  auto s = p.another(err);
  ASSERT_FALSE(err) << err.message();
  ASSERT_TRUE(s.try_push(9));
  EXPECT_EQ(c.try_pop(), 9);

  EXPECT_THROW(make_fanin<int>(16, 0), std::invalid_argument);
  EXPECT_THROW(make_fanin<int>(0), std::invalid_argument);
  err = {};
  auto [e, f] = make_fanin<int>(0, 4, err);
  EXPECT_TRUE(err);
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_FALSE(static_cast<bool>(f));
  EXPECT_FALSE(e.try_push(1));
  int out = 0;
  EXPECT_EQ(f.pop_wait(out, 1ms), QueueStatus::closed);
  EXPECT_FALSE(f.try_pop().has_value());
  EXPECT_TRUE(f.peek().empty());
  EXPECT_THROW(f.release(1), std::out_of_range);
}

TEST(FanIn, TheQueueClosesWhenEveryProducerHasAndDrainsFirst) {
  auto [p, c] = make_fanin<int>(16);
  {
    auto q = p;
    ASSERT_TRUE(p.try_push(1));
    p = {};
    EXPECT_FALSE(c.closed()) << "q is still open";
    ASSERT_TRUE(q.try_push(2));
  }
  EXPECT_TRUE(c.closed());
  int out = 0;
  std::vector<int> got;
  while (c.pop_wait(out, 10s) == QueueStatus::ok) got.push_back(out);
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.pop_wait(out, 10s), QueueStatus::closed);
}

TEST(FanIn, TheConsumerGoingWakesAndStopsEveryProducer) {
  auto [p, c] = make_fanin<int>(1);
  const std::size_t cap = p.capacity();
  std::vector<std::thread> producers;
  producers.reserve(3);
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([q = p, cap]() mutable {
      for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(q.try_push(1));
      EXPECT_EQ(q.push_wait(2, 60s), QueueStatus::closed) << "the lane is full, then the consumer goes";
      EXPECT_TRUE(q.closed());
      EXPECT_FALSE(q.try_push(3));
    });
  }
  while (c.size() < 3 * cap) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);  // let them park
  c = {};
  for (auto& t : producers) t.join();
  EXPECT_TRUE(p.closed());
  EXPECT_FALSE(p.try_push(4));
  auto late = p;  // a lane made after the consumer went is closed from the start
  EXPECT_TRUE(late.closed());
}

TEST(FanIn, AParkedConsumerWakesForALaneAddedWhileItSleeps) {
  auto [p, c] = make_fanin<int>(16);
  std::atomic<bool> parked{false};
  std::thread consumer([&c = c, &parked] {
    parked = true;
    int out = 0;
    EXPECT_EQ(c.pop_wait(out, 60s), QueueStatus::ok);
    EXPECT_EQ(out, 42);
  });
  while (!parked.load()) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);
  {
    auto q = p;
    ASSERT_TRUE(q.push_wait(42, 1s) == QueueStatus::ok);
  }
  consumer.join();
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, 1ms), QueueStatus::timed_out) << "p is still open";
}

// Random operations on several producer copies (made, closed and dropped at random) and the
// consumer, one thread, against a model: one deque of sequence numbers per lane. Each element
// taken must be the oldest of its lane; a window must be one lane's elements, all of them.
template <class T>
class FanInModel : public picoring_test::LifetimeChecked<T> {};
using FanInModelTypes = ::testing::Types<Msg3, Msg24, Msg72, Tracked>;
TYPED_TEST_SUITE(FanInModel, FanInModelTypes);

TYPED_TEST(FanInModel, EveryElementIsTheOldestOfItsLane) {
  using T = TypeParam;
  using C = Codec<T>;
  constexpr std::size_t kPlaces = 4;
  {
    auto [first, c] = make_fanin<T>(100, kPlaces);
    const std::size_t cap = first.capacity();
    struct Lane {
      std::uint32_t id = 0;
      picoring::FanInProducer<T> p;
      std::uint32_t next_seq = 0;
    };
    std::vector<Lane> handles;
    handles.push_back({0, std::move(first)});
    std::uint32_t next_id = 1;
    std::vector<std::deque<std::uint32_t>> model(1);
    std::size_t in_model = 0;
    std::mt19937 rng(11);
    auto take = [&](const T& v) {
      const std::uint32_t id = C::producer(v);
      ASSERT_LT(id, model.size());
      ASSERT_TRUE(C::intact(v));
      ASSERT_FALSE(model[id].empty()) << "lane " << id << " had nothing";
      const std::uint32_t want = C::kSeqMod != 0 ? model[id].front() % C::kSeqMod : model[id].front();
      ASSERT_EQ(C::seq(v), want) << "lane " << id;
      model[id].pop_front();
      --in_model;
    };
    std::vector<T> buf(64, C::make(0, 0));
    for (int step = 0; step < static_cast<int>(picoring_test::scaled(30'000)); ++step) {
      const auto op = rng() % 12;
      Lane* h = handles.empty() ? nullptr : &handles[rng() % handles.size()];
      if (op == 0 && h != nullptr && next_id < 250) {  // a copy: a new lane, or no free place
        picoring::Error err;
        auto p = h->p.another(err);
        if (err) {
          EXPECT_EQ(err.code, std::errc::resource_unavailable_try_again);
          c.size();  // looks at every lane: the count below is then every place taken
          EXPECT_EQ(c.lanes(), kPlaces);
        } else if (p) {
          handles.push_back({next_id++, std::move(p)});
          model.emplace_back();
        }
      } else if (op == 1 && h != nullptr && rng() % 4 == 0) {  // a producer ends or goes
        if (rng() % 2 == 0) {
          h->p.close();
        } else {
          handles.erase(handles.begin() + (h - handles.data()));
        }
      } else if (op <= 4 && h != nullptr) {  // one element
        const bool room = model[h->id].size() < cap && !h->p.closed();
        ASSERT_EQ(h->p.try_push(C::make(h->id, h->next_seq)), room);
        if (room) {
          model[h->id].push_back(h->next_seq++);
          ++in_model;
        }
      } else if (op <= 6 && h != nullptr) {  // a run
        std::vector<T> run;
        const std::uint32_t n = 1 + static_cast<std::uint32_t>(rng() % 40);
        for (std::uint32_t i = 0; i < n; ++i) run.push_back(C::make(h->id, h->next_seq + i));
        const bool room = model[h->id].size() + n <= cap && !h->p.closed();
        ASSERT_EQ(h->p.push_slice(run), room);
        for (std::uint32_t i = 0; room && i < n; ++i) model[h->id].push_back(h->next_seq++);
        if (room) in_model += n;
      } else if (op == 7) {
        auto v = c.try_pop();
        ASSERT_EQ(v.has_value(), in_model != 0);
        if (v) take(*v);
      } else if (op == 8) {
        const std::size_t want = 1 + rng() % buf.size();
        const std::size_t n = c.pop_slice(std::span(buf).first(want));
        ASSERT_EQ(n, std::min(want, in_model)) << "pop_slice goes on to the next lane";
        for (std::size_t i = 0; i < n; ++i) take(buf[i]);
      } else if (op == 9) {
        if constexpr (mirror_safe<T>) {
          auto window = c.peek();
          ASSERT_EQ(window.empty(), in_model == 0);
          if (!window.empty()) {
            const std::uint32_t id = C::producer(window[0]);
            ASSERT_LT(id, model.size());
            ASSERT_EQ(window.size(), model[id].size()) << "a window is its whole lane";
            const std::size_t n = rng() % (window.size() + 1);
            for (std::size_t i = 0; i < n; ++i) take(window[i]);
            c.release(n);
          }
        }
      } else if (op == 10) {
        const std::size_t max = rng() % 50;
        const std::size_t had = in_model;
        const std::size_t n = c.drain([&](T& v) { take(v); }, max);
        ASSERT_EQ(n, std::min(max, had));
      } else {
        ASSERT_EQ(c.size(), in_model);
      }
    }
    // Every producer goes: the queue closes, and everything still in it comes out.
    handles.clear();
    EXPECT_TRUE(c.closed());
    T v = C::make(0, 0);
    while (c.pop_wait(v, 10s) == QueueStatus::ok) take(v);
    EXPECT_EQ(in_model, 0u);
    // And a queue dropped full destroys what it holds (Tracked counts it in TearDown).
    auto [p2, c2] = make_fanin<T>(100);
    auto q2 = p2;
    for (std::uint32_t i = 0; i < 50; ++i) ASSERT_TRUE((i % 2 == 0 ? p2 : q2).try_push(C::make(0, i)));
  }
}

template <class T>
class MpscStress : public picoring_test::LifetimeChecked<T> {};
using MpscTypes = ::testing::Types<Msg1, Msg3, Msg8, Msg24, Msg72, Tracked>;
TYPED_TEST_SUITE(MpscStress, MpscTypes);

// The stress body both many-producer queues share: kProducers threads push per-producer sequence
// numbers with every push form drawn at random while this thread takes them with every pop
// form; each producer's elements must arrive complete, once and in order. make(min_capacity,
// first_position) makes the queue (the fan-in queue ignores the position).
template <class T, class Make>
void expect_per_producer_order(Make make) {
  using C = Codec<T>;
  // More producers than this machine has cores: some are preempted mid-push all the time.
  constexpr std::uint32_t kProducers = 8;
  const std::uint32_t per_producer = static_cast<std::uint32_t>(picoring_test::scaled(40'000));
  // The second MPSC queue's positions start just short of the 64-bit wrap-around, so the
  // threads cross it a few thousand elements in.
  const std::pair<std::size_t, std::uint64_t> queues[] = {{1, 0}, {5000, ~std::uint64_t{0} - 3000}};
  for (const auto& [min_capacity, first_position] : queues) {
    auto [producer, consumer] = make(min_capacity, first_position);
    const std::size_t max_batch = std::min<std::size_t>(producer.capacity() / 4, 64);
    picoring_test::StartLine start(kProducers + 1);
    std::vector<std::thread> threads;
    for (std::uint32_t id = 0; id < kProducers; ++id) {
      threads.emplace_back([&start, q = producer, id, per_producer, max_batch]() mutable {
        std::mt19937 rng(id + 100);
        std::vector<T> batch;
        std::uint32_t seq = 0;
        start.arrive_and_wait();
        while (seq < per_producer) {
          const std::uint32_t want =
              std::min<std::uint32_t>(1 + static_cast<std::uint32_t>(rng() % max_batch), per_producer - seq);
          switch (rng() % 4) {
            case 0:
              if (q.try_push(C::make(id, seq))) ++seq;
              break;
            case 1:
              if (q.try_emplace(C::make(id, seq))) ++seq;
              break;
            case 2:
              if constexpr (requires { q.push_slice(std::span<const T>()); }) {
                batch.clear();
                for (std::uint32_t i = 0; i < want; ++i) batch.push_back(C::make(id, seq + i));
                if (q.push_slice(batch)) seq += want;
              }
              break;
            default:
              ASSERT_EQ(q.push_wait(C::make(id, seq), 60s), QueueStatus::ok);
              ++seq;
          }
        }
      });
    }
    producer = {};  // the queue closes when the producers' copies are all gone

    std::vector<std::uint32_t> next(kProducers, 0);
    std::uint64_t received = 0;
    bool done = false;
    auto check = [&](const T& v) {
      const std::uint32_t id = C::producer(v);
      if (id >= kProducers || !C::intact(v)) {
        ADD_FAILURE() << "corrupt item";
        done = true;
        return;
      }
      const std::uint32_t want = C::kSeqMod != 0 ? next[id] % C::kSeqMod : next[id];
      if (C::seq(v) != want) {
        ADD_FAILURE() << "producer " << id << ": got seq " << C::seq(v) << ", expected " << want;
        done = true;
      }
      ++next[id];
      ++received;
    };
    std::mt19937 rng(7);
    std::vector<T> out(max_batch, C::make(0, 0));
    start.arrive_and_wait();
    while (!done) {
      switch (rng() % 5) {
        case 0:
          if (auto v = consumer.try_pop()) check(*v);
          break;
        case 1: {
          const std::size_t n = consumer.pop_slice(std::span(out).first(1 + rng() % max_batch));
          for (std::size_t i = 0; i < n; ++i) check(out[i]);
          break;
        }
        case 2:
          if constexpr (mirror_safe<T>) {
            auto window = consumer.peek();
            for (const T& v : window) check(v);
            consumer.release(window.size());
          }
          break;
        case 3:
          consumer.drain([&](T& v) { check(v); });
          break;
        default: {
          T v = C::make(0, 0);
          const QueueStatus st = consumer.pop_wait(v, 60s);
          if (st == QueueStatus::closed) {
            done = true;
          } else {
            ASSERT_EQ(st, QueueStatus::ok);
            check(v);
          }
        }
      }
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(received, std::uint64_t{kProducers} * per_producer);
    for (std::uint32_t id = 0; id < kProducers; ++id) EXPECT_EQ(next[id], per_producer) << "producer " << id;
  }
}

TYPED_TEST(MpscStress, NoItemLostDuplicatedOrReorderedWithinAProducer) {
  expect_per_producer_order<TypeParam>(
      [](std::size_t cap, std::uint64_t first) { return make_mpsc_at<TypeParam>(cap, first); });
}

template <class T>
class FanInStress : public MpscStress<T> {};
TYPED_TEST_SUITE(FanInStress, MpscTypes);

TYPED_TEST(FanInStress, NoItemLostDuplicatedOrReorderedWithinAProducer) {
  expect_per_producer_order<TypeParam>([](std::size_t cap, std::uint64_t) { return make_fanin<TypeParam>(cap); });
}

}  // namespace
