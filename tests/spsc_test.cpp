// SPSC queue: single-threaded API rules, then two-thread stress tests (checked sequence, every
// API drawn at random on both sides, odd element sizes, lifetime-counted elements), blocking,
// timeouts and close. The stress tests run under ThreadSanitizer in CI. TSan sees one virtual
// address per access, so the stress tests also use the element-wise and copying paths, whose
// accesses both threads make at the same (first-view) addresses.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <ratio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "picoring/spsc.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using picoring::make_spsc;
using picoring::mirror_safe;
using picoring::QueueStatus;
using picoring_test::Blob;
using picoring_test::make;
using picoring_test::Tracked;

static_assert(!std::is_copy_constructible_v<picoring::SpscProducer<int>>, "one producer: handles are not copyable");
static_assert(!std::is_copy_constructible_v<picoring::SpscConsumer<int>>, "one consumer: handles are not copyable");
static_assert(std::is_nothrow_move_constructible_v<picoring::SpscConsumer<int>>);

TEST(Spsc, SingleThreadedOrderCapacityAndWrap) {
  auto [p, c] = make_spsc<std::uint32_t>(100);
  const std::size_t cap = p.capacity();
  ASSERT_GE(cap, 100u);
  EXPECT_EQ(c.capacity(), cap);
  for (std::uint32_t lap = 0; lap < 5; ++lap) {
    for (std::uint32_t i = 0; i < cap; ++i) ASSERT_TRUE(p.try_push(lap * 100000 + i));
    EXPECT_FALSE(p.try_push(1u)) << "the whole capacity is usable, and no more";
    EXPECT_EQ(c.size(), cap);
    for (std::uint32_t i = 0; i < cap / 3; ++i) ASSERT_EQ(c.try_pop(), lap * 100000 + i);
    // Now the readable data wraps: peek must still be one span.
    for (std::uint32_t i = 0; i < cap / 3; ++i)
      ASSERT_TRUE(p.try_push(lap * 100000 + static_cast<std::uint32_t>(cap) + i));
    auto window = c.peek();
    ASSERT_EQ(window.size(), cap);
    for (std::uint32_t i = 0; i < cap; ++i) ASSERT_EQ(window[i], std::size_t{lap} * 100000 + cap / 3 + i);
    c.release(window.size());
    EXPECT_FALSE(c.try_pop().has_value());
  }
}

// A queue whose counters start at `start`: see picoring_test::state_starting_at.
template <class T>
std::pair<picoring::SpscProducer<T>, picoring::SpscConsumer<T>> make_spsc_at(std::size_t min_capacity,
                                                                             std::size_t start) {
  return picoring::detail::QueueAccess::handles<picoring::SpscProducer<T>, picoring::SpscConsumer<T>>(
      picoring_test::state_starting_at<picoring::detail::SpscState<T>>(min_capacity, start));
}

// Four laps of random pushes and pops across the counters' wrap-around, against a deque; then
// the queue is dropped half full, and every element left must be destroyed once.
template <class T>
void check_wrap_around(std::size_t start, picoring::Batching batching = {}) {
  SCOPED_TRACE(start);
  SCOPED_TRACE(batching.min_batch);
  Tracked::reset_counters();
  {
    auto [p, c] = make_spsc_at<T>(100, start);
    p.set_batching(batching);
    c.set_batching(batching);
    const std::size_t cap = p.capacity();
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(p.free_space(), cap);
    std::deque<std::uint64_t> model;
    std::mt19937 rng(static_cast<std::uint32_t>(start));
    std::uint64_t next = 0;
    while (next < 4 * cap) {
      const std::size_t n = 1 + rng() % (cap / 3);
      switch (rng() % 4) {
        case 0: {
          const bool ok = p.try_push(make<T>(next));
          ASSERT_EQ(ok, model.size() < cap);
          if (ok) model.push_back(next++);
          break;
        }
        case 1: {
          std::vector<T> batch;
          for (std::size_t i = 0; i < n; ++i) batch.push_back(make<T>(next + i));
          const std::size_t pushed = p.push_some(batch);
          ASSERT_EQ(pushed, std::min(n, cap - model.size()));
          for (std::size_t i = 0; i < pushed; ++i) model.push_back(next++);
          break;
        }
        case 2:
          if constexpr (mirror_safe<T>) {
            auto slots = p.reserve(n);
            ASSERT_EQ(slots.empty(), n > cap - model.size());
            if (!slots.empty()) {
              for (std::size_t i = 0; i < n; ++i) slots[i] = make<T>(next + i);
              p.commit(n);
              for (std::size_t i = 0; i < n; ++i) model.push_back(next++);
            }
            break;
          }
          [[fallthrough]];
        default: {
          // The consumer's ways of taking, mixed: try_pop(out) keeps a run of readable elements
          // across calls, and every other way must close it.
          const std::size_t take = rng() % (model.size() + 1);
          const auto how = rng() % 3;
          if (how == 0 && mirror_safe<T>) {
            if constexpr (mirror_safe<T>) {
              auto window = c.peek();
              ASSERT_EQ(window.size(), model.size());
              for (std::size_t i = 0; i < take; ++i) ASSERT_EQ(window[i], make<T>(model[i]));
              c.release(take);
              model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(take));
            }
          } else if (how == 1) {
            // Taking everything, it asks for one more, which must fail.
            const std::size_t asks = take == model.size() ? take + 1 : take;
            for (std::size_t i = 0; i < asks; ++i) {
              T out = make<T>(0);
              const bool got = c.try_pop(out);
              ASSERT_EQ(got, !model.empty());
              if (!got) break;
              ASSERT_EQ(out, make<T>(model.front()));
              model.pop_front();
            }
          } else {
            for (std::size_t i = 0; i < take; ++i) {
              auto v = c.try_pop();
              ASSERT_TRUE(v.has_value());
              ASSERT_EQ(*v, make<T>(model.front()));
              model.pop_front();
            }
          }
        }
      }
      ASSERT_EQ(c.size(), model.size());
      ASSERT_EQ(p.free_space(), cap - model.size());
    }
    while (model.size() < cap / 2) {
      ASSERT_TRUE(p.try_push(make<T>(next)));
      model.push_back(next++);
    }
  }
  EXPECT_EQ(Tracked::live.load(), 0);
  EXPECT_EQ(Tracked::bad_destroys.load(), 0);
}

TEST(Spsc, CountersWrapAround) {
  constexpr std::size_t kMax = ~std::size_t{0};
  for (const std::size_t start : {std::size_t{0}, kMax - 99, kMax}) {
    check_wrap_around<std::uint64_t>(start);
    check_wrap_around<Tracked>(start);
    // Batching only delays refreshes: every call must still return what the model says.
    check_wrap_around<std::uint64_t>(start, {64, 1us});
    check_wrap_around<Tracked>(start, {64, 1us});
  }
}

// How long f() took.
template <class F>
std::chrono::steady_clock::duration time_of(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::steady_clock::now() - t0;
}

TEST(SpscBatching, IsOffByDefaultAndRejectsANegativeWait) {
  auto [p, c] = make_spsc<int>(16);
  EXPECT_EQ(p.batching().min_batch, 0u);
  EXPECT_EQ(c.batching().max_wait, 0ns);
  c.set_batching({8, 5us});
  EXPECT_THROW(c.set_batching({8, -1ns}), std::invalid_argument);
  EXPECT_THROW(p.set_batching({8, -1ns}), std::invalid_argument);
  EXPECT_EQ(c.batching().min_batch, 8u) << "a rejected setting changes nothing";
  EXPECT_EQ(c.batching().max_wait, 5us);
  EXPECT_EQ(p.batching().min_batch, 0u);
  c.set_batching({8, 0ns});
  EXPECT_EQ(c.batching().min_batch, 0u) << "a zero member turns batching off";
  // Moving a handle moves its setting.
  p.set_batching({4, 1us});
  auto moved = std::move(p);
  EXPECT_EQ(moved.batching().min_batch, 4u);
}

// Single-threaded, so each refresh finds exactly what the test pushed. A wait must last at least
// kWait; a refresh that must not wait runs with batching set to a wait of kNever, so a wrong
// wait shows as a call slower than kNever / 2.
constexpr auto kWait = 20ms;
constexpr auto kNever = 20s;

TEST(SpscBatching, TheConsumerWaitsOnlyOnAThinRefreshWhileStreaming) {
  // Plain references, not a structured binding: clang 14's lambdas cannot capture those.
  auto queue = make_spsc<int>(256);
  auto& p = queue.first;
  auto& c = queue.second;
  c.set_batching({64, kNever});
  int v = 0;
  ASSERT_TRUE(p.try_push(1));
  ASSERT_TRUE(p.try_push(2));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.try_pop(), 1); }), kNever / 2) << "a new handle is idle: no wait";
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.try_pop(), 2); }), kNever / 2) << "served from the cache: no refresh";
  c.set_batching({64, kWait});
  ASSERT_TRUE(p.try_push(3));
  EXPECT_GE(time_of([&] { EXPECT_EQ(c.try_pop(), 3); }), kWait) << "streaming, 1 < 64 found: waits";
  ASSERT_TRUE(p.try_push(4));
  EXPECT_GE(time_of([&] { EXPECT_EQ(c.peek().size(), 1u); }), kWait) << "peek waits too";
  c.release(1);
  // Fewer than kStreamingRefreshes fruitless refreshes: still streaming.
  for (unsigned i = 0; i + 1 < picoring::detail::Pacer::kStreamingRefreshes; ++i) EXPECT_FALSE(c.try_pop(v));
  ASSERT_TRUE(p.try_push(5));
  EXPECT_GE(time_of([&] { EXPECT_EQ(c.try_pop(), 5); }), kWait);
  // kStreamingRefreshes fruitless ones: idle, so the next element is taken at once.
  for (unsigned i = 0; i < picoring::detail::Pacer::kStreamingRefreshes; ++i) EXPECT_FALSE(c.try_pop(v));
  c.set_batching({64, kNever});
  ASSERT_TRUE(p.try_push(6));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.try_pop(), 6); }), kNever / 2);
  // Streaming, but the refresh finds min_batch: no wait.
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(p.try_push(100 + i));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.pop_slice(std::span(&v, 1)), 1u); }), kNever / 2);
  EXPECT_EQ(v, 100);
  // Calls that take nothing never wait.
  while (c.try_pop(v)) {
  }
  ASSERT_TRUE(p.try_push(7));
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.size(), 1u); }), kNever / 2);
  EXPECT_LT(time_of([&] { EXPECT_EQ(c.wait(1s), QueueStatus::ok); }), kNever / 2);
  EXPECT_LT(time_of([&] { c.release(1); }), kNever / 2);
}

TEST(SpscBatching, TheProducerWaitsOnlyOnAThinRefreshWhileStreaming) {
  // Plain references, not a structured binding: clang 14's lambdas cannot capture those.
  auto queue = make_spsc<int>(256);
  auto& p = queue.first;
  auto& c = queue.second;
  const auto cap = static_cast<int>(p.capacity());
  p.set_batching({64, kNever});
  for (int i = 0; i < cap; ++i) ASSERT_TRUE(p.try_push(i));
  EXPECT_FALSE(p.try_push(-1));
  ASSERT_EQ(c.try_pop(), 0);
  EXPECT_LT(time_of([&] { EXPECT_TRUE(p.try_push(cap)); }), kNever / 2) << "idle until now: no wait";
  p.set_batching({64, kWait});
  ASSERT_EQ(c.try_pop(), 1);
  EXPECT_GE(time_of([&] { EXPECT_TRUE(p.try_push(cap + 1)); }), kWait) << "streaming, 1 free < 64: waits";
  ASSERT_EQ(c.try_pop(), 2);
  EXPECT_GE(time_of([&] { EXPECT_EQ(p.reserve(1).size(), 1u); }), kWait) << "reserve waits too";
  p.commit(1);
  // A refresh that finds min_batch free slots does not wait.
  p.set_batching({64, kNever});
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(c.try_pop().has_value());
  EXPECT_LT(time_of([&] { EXPECT_TRUE(p.try_push(0)); }), kNever / 2);
  EXPECT_LT(time_of([&] { EXPECT_EQ(p.free_space(), 63u); }), kNever / 2) << "free_space never waits";
}

// The refresh after the wait sees what the producer published during it.
TEST(SpscBatching, TheWaitLetsTheProducerGetAhead) {
  auto [p, c] = make_spsc<int>(256);
  c.set_batching({64, 1s});
  ASSERT_TRUE(p.try_push(0));
  ASSERT_EQ(c.try_pop(), 0);  // streaming from here
  ASSERT_TRUE(p.try_push(1));
  std::thread producer([&p = p] {
    std::this_thread::sleep_for(20ms);  // well inside the consumer's 1 s wait
    for (int i = 2; i < 100; ++i) ASSERT_TRUE(p.try_push(i));
  });
  const auto window = c.peek();  // finds 1 of 64, waits 1 s, refreshes
  producer.join();
  ASSERT_EQ(window.size(), 99u);
  for (int i = 0; i < 99; ++i) EXPECT_EQ(window[static_cast<std::size_t>(i)], i + 1);
}

TEST(Spsc, ReserveIsExactlyNAndCommitAndReleaseAreChecked) {
  auto [p, c] = make_spsc<std::uint16_t>(1);
  const std::size_t cap = p.capacity();
  EXPECT_TRUE(p.reserve(cap + 1).empty());
  auto slots = p.reserve(cap);
  ASSERT_EQ(slots.size(), cap);
  EXPECT_THROW(p.commit(cap + 1), std::out_of_range);
  EXPECT_EQ(c.size(), 0u);
  slots[0] = 7;
  slots[1] = 8;
  p.commit(2);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_THROW(c.release(3), std::out_of_range);
  EXPECT_EQ(c.peek()[1], 8);
  c.release(2);
  EXPECT_EQ(c.size(), 0u);
}

TEST(Spsc, ClosedQueueDrainsThenReportsClosed) {
  auto [p, c] = make_spsc<int>(16);
  ASSERT_TRUE(p.try_push(1));
  ASSERT_TRUE(p.try_push(2));
  p.close();
  EXPECT_TRUE(c.closed());
  EXPECT_FALSE(p.try_push(3)) << "pushes to a closed queue fail";
  EXPECT_EQ(p.push_wait(3, 1s), QueueStatus::closed);
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, 1s), QueueStatus::ok);
  EXPECT_EQ(out, 1);
  EXPECT_EQ(c.try_pop(), 2);
  EXPECT_EQ(c.pop_wait(out, 1s), QueueStatus::closed);
}

TEST(Spsc, DestroyingOneEndClosesTheQueue) {
  auto [p, c] = make_spsc<int>(16);
  ASSERT_TRUE(p.try_push(5));
  { auto gone = std::move(p); }
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.try_pop(), 5);
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, 10s), QueueStatus::closed);
}

TEST(Spsc, TimeoutsReturnTimedOutAfterTheTimeout) {
  auto [p, c] = make_spsc<int>(1);
  int out = 0;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.pop_wait(out, 20ms), QueueStatus::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  while (p.try_push(1)) {
  }
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(p.push_wait(2, 20ms), QueueStatus::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
}

TEST(Spsc, WaitsForCountsOfElementsAndOfFreeSlots) {
  auto [p, c] = make_spsc<int>(1);
  const std::size_t cap = p.capacity();
  EXPECT_THROW(static_cast<void>(c.wait(cap + 1, 0s)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(p.wait_for_space(cap + 1, 0s)), std::invalid_argument);
  EXPECT_EQ(c.wait(0, 0s), QueueStatus::ok);
  EXPECT_EQ(p.wait_for_space(cap, 0s), QueueStatus::ok);
  ASSERT_TRUE(p.try_push(1));
  EXPECT_EQ(c.wait(1, 0s), QueueStatus::ok);
  EXPECT_EQ(c.wait(2, 10ms), QueueStatus::timed_out);  // one is there, two are asked for
  EXPECT_EQ(p.wait_for_space(cap, 10ms), QueueStatus::timed_out);

  // The consumer asks for three: two pushes one after the other must not wake it for good.
  std::thread consumer([&c = c] { EXPECT_EQ(c.wait(3, 60s), QueueStatus::ok); });
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(p.try_push(2));
  std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(p.try_push(3));
  consumer.join();
  EXPECT_EQ(c.size(), 3u);

  // The producer asks for the whole ring; the consumer frees it in two steps.
  std::thread producer([&p = p, cap] { EXPECT_EQ(p.wait_for_space(cap, 60s), QueueStatus::ok); });
  std::this_thread::sleep_for(10ms);
  c.release(1);
  std::this_thread::sleep_for(10ms);
  c.release(2);
  producer.join();

  // Closed: the consumer still gets ok for what is there, closed for more; the producer closed.
  ASSERT_TRUE(p.try_push(4));
  p.close();
  EXPECT_EQ(c.wait(1, 60s), QueueStatus::ok);
  EXPECT_EQ(c.wait(2, 60s), QueueStatus::closed);
  EXPECT_EQ(p.wait_for_space(1, 60s), QueueStatus::closed);
}

TEST(Spsc, BlockedSidesAreWokenByTheOtherSide) {
  auto [p, c] = make_spsc<int>(1);
  const std::size_t cap = p.capacity();
  std::thread consumer([&c = c] {
    int out = 0;
    // Parks (nothing there yet), must be woken by the producer's pushes.
    for (int expected = 0; expected < 3; ++expected) {
      ASSERT_EQ(c.pop_wait(out, 60s), QueueStatus::ok);
      ASSERT_EQ(out, expected);
    }
    // Then waits for the close.
    EXPECT_EQ(c.pop_wait(out, 60s), QueueStatus::closed);
  });
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(p.try_push(i));
  }
  std::this_thread::sleep_for(20ms);
  p.close();
  consumer.join();

  auto [p2, c2] = make_spsc<int>(1);
  for (std::size_t i = 0; i < cap; ++i) ASSERT_TRUE(p2.try_push(static_cast<int>(i)));
  std::thread producer([&p2 = p2] { EXPECT_EQ(p2.push_wait(-1, 60s), QueueStatus::ok); });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(c2.try_pop(), 0);  // frees one slot: the producer must wake and fill it
  producer.join();
  EXPECT_EQ(c2.size(), cap);
}

TEST(Spsc, NoWakeupIsLostWhenBothSidesKeepParking) {
  // The producer pauses often, so the consumer parks before most items; a lost wakeup would
  // leave it asleep until its deadline. One second against pauses of at most 200 us.
  auto [p, c] = make_spsc<std::uint32_t>(1);
  const std::uint32_t total = static_cast<std::uint32_t>(picoring_test::scaled(5'000));
  std::thread producer([&p = p, total] {
    std::mt19937 rng(3);
    for (std::uint32_t i = 0; i < total; ++i) {
      if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      ASSERT_EQ(p.push_wait(i, 60s), QueueStatus::ok);
    }
  });
  int slow = 0;
  for (std::uint32_t i = 0; i < total; ++i) {
    std::uint32_t v = 0;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(c.pop_wait(v, 60s), QueueStatus::ok);
    if (std::chrono::steady_clock::now() - t0 >= 1s) ++slow;
    ASSERT_EQ(v, i);
  }
  producer.join();
  EXPECT_EQ(slow, 0) << "pops that slept a second or more: lost wakeups";
}

// --- two-thread stress ---------------------------------------------------------------------------

template <class T>
class SpscStress : public picoring_test::LifetimeChecked<T> {};

using StressTypes = ::testing::Types<std::uint8_t, Blob<3>, std::uint64_t, Blob<24>, Blob<72>, Tracked>;
TYPED_TEST_SUITE(SpscStress, StressTypes);

TYPED_TEST(SpscStress, EveryItemArrivesOnceInOrder) {
  using T = TypeParam;
  struct Setup {
    std::size_t min_capacity = 0;
    picoring::Batching batching;
  };
  for (const Setup setup : {Setup{1, {}}, Setup{3000, {}}, Setup{3000, {32, 2us}}}) {
    auto [producer, consumer] = make_spsc<T>(setup.min_capacity);
    producer.set_batching(setup.batching);
    consumer.set_batching(setup.batching);
    const std::size_t cap = producer.capacity();
    const std::uint64_t total = picoring_test::scaled(300'000);
    const std::size_t max_batch = std::min<std::size_t>(cap, 200);
    picoring_test::StartLine start(2);

    std::thread prod([&, &producer = producer] {
      std::mt19937 rng(1);
      std::uint64_t next = 0;
      std::vector<T> batch;
      start.arrive_and_wait();
      while (next < total) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(1 + rng() % max_batch, total - next));
        switch (rng() % 5) {
          case 0:
            if (producer.try_push(make<T>(next))) ++next;
            break;
          case 1: {
            batch.clear();
            for (std::size_t i = 0; i < want; ++i) batch.push_back(make<T>(next + i));
            if (producer.push_slice(batch)) next += want;
            break;
          }
          case 2: {
            batch.clear();
            for (std::size_t i = 0; i < want; ++i) batch.push_back(make<T>(next + i));
            next += producer.push_some(batch);
            break;
          }
          case 3:
            if constexpr (mirror_safe<T>) {
              auto slots = producer.reserve(want);
              if (!slots.empty()) {
                for (std::size_t i = 0; i < want; ++i) slots[i] = make<T>(next + i);
                producer.commit(want);
                next += want;
              }
            }
            break;
          default:
            ASSERT_EQ(producer.push_wait(make<T>(next), 60s), QueueStatus::ok);
            ++next;
        }
      }
      producer.close();
    });

    std::mt19937 rng(2);
    std::uint64_t expected = 0;
    std::vector<T> out(max_batch, make<T>(0));
    bool closed = false;
    start.arrive_and_wait();
    auto check = [&](const T& v) {
      if (!(v == make<T>(expected))) {
        ADD_FAILURE() << "item " << expected << " wrong";
        closed = true;
      }
      ++expected;
    };
    while (!closed) {
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
            const std::size_t n = window.empty() ? 0 : 1 + rng() % window.size();
            for (std::size_t i = 0; i < n; ++i) check(window[i]);
            consumer.release(n);
          }
          break;
        case 3:
          consumer.drain([&](T& v) { check(v); }, 1 + rng() % max_batch);
          break;
        default: {
          T v = make<T>(0);
          const QueueStatus st = consumer.pop_wait(v, 60s);
          if (st == QueueStatus::closed) {
            closed = true;
          } else {
            ASSERT_EQ(st, QueueStatus::ok);
            check(v);
          }
        }
      }
    }
    prod.join();
    EXPECT_EQ(expected, total) << "capacity " << cap << ", min_batch " << setup.batching.min_batch;
  }
}

// An element whose assignment can be told to throw (pop_slice assigns into the caller's span).
struct ThrowingAssign {
  static inline int assignments_until_throw = -1;  // < 0: never throw
  Tracked t;
  explicit ThrowingAssign(std::uint64_t v = 0) : t(v) {}
  ThrowingAssign(const ThrowingAssign&) = default;
  ThrowingAssign(ThrowingAssign&&) noexcept = default;
  ~ThrowingAssign() = default;
  ThrowingAssign& operator=(const ThrowingAssign& o) {
    count_down();
    t = o.t;
    return *this;
  }
  // NOLINTNEXTLINE(performance-noexcept-move-constructor,bugprone-exception-escape): throws on purpose
  ThrowingAssign& operator=(ThrowingAssign&& o) {
    count_down();
    t = std::move(o.t);
    return *this;
  }
  static void count_down() {
    if (assignments_until_throw == 0) throw std::runtime_error("ThrowingAssign: assignment failed on purpose");
    if (assignments_until_throw > 0) --assignments_until_throw;
  }
};

TEST(SpscLifetimes, APopSliceThatThrowsKeepsWhatItDidNotMove) {
  Tracked::reset_counters();
  {
    auto [p, c] = make_spsc<ThrowingAssign>(1);
    for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(p.try_emplace(i));
    std::vector<ThrowingAssign> out(5);
    ThrowingAssign::assignments_until_throw = 2;  // the third element's assignment throws
    EXPECT_THROW(c.pop_slice(out), std::runtime_error);
    ThrowingAssign::assignments_until_throw = -1;
    EXPECT_EQ(out[0].t.value(), 0u);
    EXPECT_EQ(out[1].t.value(), 1u);
    // The two moved out are popped; the one whose assignment threw and those after it remain.
    ASSERT_EQ(c.size(), 3u);
    for (std::uint64_t want = 2; want < 5; ++want) {
      auto v = c.try_pop();
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(v->t.value(), want);
    }
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(Tracked::bad_destroys.load(), 0);
  }
  EXPECT_EQ(Tracked::live.load(), 0);
  EXPECT_EQ(Tracked::bad_destroys.load(), 0);
}

TEST(SpscLifetimes, ElementsLeftInTheQueueAreDestroyedWithTheLastHandle) {
  Tracked::reset_counters();
  {
    auto [p, c] = make_spsc<Tracked>(100);
    for (std::uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(p.try_emplace(i));
    ASSERT_TRUE(c.try_pop().has_value());
    { auto gone = std::move(p); }
    EXPECT_EQ(Tracked::live.load(), 49) << "the consumer still holds the queue";
  }
  EXPECT_EQ(Tracked::live.load(), 0);
  EXPECT_EQ(Tracked::bad_destroys.load(), 0);
  Tracked::reset_counters();
  {
    auto [p, c] = make_spsc<std::string>(10);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(p.try_push(std::string(static_cast<std::size_t>(i) * 20, 'x')));
    { auto gone = std::move(c); }
    EXPECT_FALSE(p.try_push("closed"));
  }  // ASan reports any string not destroyed
}

// Handles keep private counters; a moved-from handle must not keep them, or its fast paths
// (which check for an empty handle only when the counters say they must look at the shared
// state) would reach into a queue it no longer owns.
TEST(Spsc, MovedFromHandlesAreEmptyWhateverTheirCountersWere) {
  auto [p, c] = make_spsc<int>(16);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.try_push(i));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.try_pop(), i);
  auto p2 = std::move(p);
  auto c2 = std::move(c);
  // NOLINTBEGIN(bugprone-use-after-move): the moved-from state is specified
  EXPECT_FALSE(static_cast<bool>(p));
  EXPECT_EQ(p.capacity(), 0u);
  EXPECT_EQ(p.free_space(), 0u);
  EXPECT_FALSE(p.try_push(1));
  const int items[] = {1, 2};
  EXPECT_FALSE(p.push_slice(items));
  EXPECT_EQ(p.push_some(items), 0u);
  EXPECT_TRUE(p.reserve(1).empty());
  EXPECT_NO_THROW(p.commit(0));
  EXPECT_THROW(p.commit(1), std::out_of_range);
  EXPECT_EQ(p.push_wait(1, 1ms), QueueStatus::closed);
  picoring_test::expect_empty_consumer(c);
  // NOLINTEND(bugprone-use-after-move)
  // The new owners carry on where the old ones stopped.
  EXPECT_EQ(c2.size(), 7u);
  EXPECT_EQ(c2.try_pop(), 3);
  ASSERT_TRUE(p2.try_push(10));
  // Move assignment over a live handle closes what it replaces and empties its source.
  auto [q, d] = make_spsc<int>(16);
  ASSERT_TRUE(q.try_push(100));
  d = std::move(c2);
  EXPECT_TRUE(q.closed()) << "the consumer that d replaced is gone";
  EXPECT_EQ(d.try_pop(), 4);
  EXPECT_FALSE(c2.try_pop().has_value());  // NOLINT(bugprone-use-after-move)
  q = std::move(p2);
  EXPECT_TRUE(q.try_push(11));
  EXPECT_FALSE(p2.try_push(12));  // NOLINT(bugprone-use-after-move)
}

TEST(Spsc, NonThrowingCreation) {
  picoring::Error err;
  auto [p, c] = make_spsc<int>(0, err);
  EXPECT_EQ(err.code, picoring::errc::zero_size);
  EXPECT_FALSE(static_cast<bool>(p));
  EXPECT_FALSE(p.try_push(1));
  EXPECT_FALSE(c.try_pop().has_value());
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, 1ms), QueueStatus::closed);
  EXPECT_THROW(make_spsc<int>(0), std::invalid_argument);
}

}  // namespace

// --- hardening: teardown after the counters wrap, "wait forever", strong pops, fences ---------

// Elements still queued when the last handle goes are found from the consumer's slot index. With
// a capacity that is not a power of two, `head % capacity` is another slot once the free-running
// counters have wrapped around: popped slots were destroyed twice and queued ones leaked.
TEST(SpscLifetimes, ElementsLeftAfterTheCountersWrapAreDestroyedOnceEach) {
  using State = picoring::detail::SpscState<Tracked>;
  // Capacities of 3 and 5 allocation units of elements: never a power of two, whatever the page
  // size (1536 and 2560 with 4 KiB pages; 64 KiB on Windows gives other numbers, still not powers).
  picoring::Error err;
  const std::size_t unit = picoring::mirror_size_for(1, sizeof(Tracked), err) / sizeof(Tracked);
  ASSERT_FALSE(err);
  for (const std::size_t requested : {3 * unit, 5 * unit}) {
    Tracked::reset_counters();
    {
      auto* s = picoring_test::state_starting_at<State>(requested, ~std::size_t{0} - 700);
      const std::size_t cap = s->slots.capacity();
      ASSERT_NE(cap & (cap - 1), 0u) << "the test needs a capacity that is not a power of two";
      auto [p, c] =
          picoring::detail::QueueAccess::handles<picoring::SpscProducer<Tracked>, picoring::SpscConsumer<Tracked>>(s);
      for (std::uint64_t i = 0; i < 2000; ++i) {  // across the wrap-around of the counters
        ASSERT_TRUE(p.try_emplace(i));
        ASSERT_EQ(c.try_pop().value().value(), i);
      }
      for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(p.try_emplace(i));
      ASSERT_EQ(Tracked::live.load(), 100);
    }
    EXPECT_EQ(Tracked::live.load(), 0) << "queued elements leaked";
    EXPECT_EQ(Tracked::bad_destroys.load(), 0) << "dead slots destroyed";
  }
}

// The same with the real counters: on a 32-bit system they wrap after 2^32 elements, which a
// test can push through (tens of seconds under qemu). 64-bit counters are covered by the test
// above, which starts them near the wrap-around.
struct Canary {
  static inline long live = 0;  // one thread only: plain counters keep the 2^32 loop fast
  static inline long bad_destroys = 0;
  static constexpr std::uint32_t kAlive = 0xA11CE5u;
  std::uint32_t state = kAlive;
  std::uint32_t pad = 0;  // 8 bytes: 1500 requested -> 1536 with 4 KiB pages, not a power of two
  Canary() noexcept { ++live; }
  Canary(const Canary&) noexcept { ++live; }
  Canary& operator=(const Canary&) noexcept = default;
  ~Canary() {
    if (state != kAlive) ++bad_destroys;
    // A volatile store: a plain one to an object whose lifetime ends is dead, and optimised
    // builds drop it, so a second destruction would find the canary alive.
    *static_cast<volatile std::uint32_t*>(&state) = 0;
    --live;
  }
};

TEST(SpscLifetimes, ARealRunAcrossTheCounterWrapAroundLeavesNothingBehind) {
  if constexpr (sizeof(std::size_t) > 4) {
    GTEST_SKIP() << "64-bit counters do not wrap in a test's lifetime (ElementsLeftAfterTheCountersWrap... starts "
                    "them near it); this runs in the i686 build";
  } else {
    Canary::live = Canary::bad_destroys = 0;
    {
      auto [p, c] = make_spsc<Canary>(1500);
      ASSERT_NE(p.capacity() & (p.capacity() - 1), 0u);
      const std::vector<Canary> batch(1024);
      const long base = Canary::live;
      std::uint64_t moved = 0;
      const std::uint64_t target = (std::uint64_t{1} << 32) + 5000;
      while (moved < target) {
        const std::size_t n = p.push_some(batch);
        ASSERT_EQ(n, batch.size());
        c.release(n);
        moved += n;
      }
      ASSERT_TRUE(p.push_slice(std::span<const Canary>(batch).first(700)));
      EXPECT_EQ(Canary::live - base, 700);
    }
    EXPECT_EQ(Canary::live, 0) << "queued elements leaked";
    EXPECT_EQ(Canary::bad_destroys, 0) << "dead slots destroyed";
  }
}

// A timeout of any duration type's max() means "no deadline": the wait must block until the
// element arrives, not overflow `now + timeout` into the past and return timed_out at once.
template <class Duration>
void expect_waits_for_a_late_push(Duration forever) {
  SCOPED_TRACE(typeid(Duration).name());
  auto queue = make_spsc<int>(1);  // not a structured binding: clang 14 cannot capture one
  auto& p = queue.first;
  auto& c = queue.second;
  std::thread late([&p] {
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(p.try_push(7));
  });
  const auto t0 = std::chrono::steady_clock::now();
  int out = 0;
  EXPECT_EQ(c.pop_wait(out, forever), QueueStatus::ok);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(out, 7);
  late.join();
  // And the producer's side: a full queue, a pop 300 ms later.
  while (p.try_push(1)) {
  }
  std::thread drain([&c] {
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(c.try_pop().has_value());
  });
  EXPECT_EQ(p.push_wait(9, forever), QueueStatus::ok);
  drain.join();
}

TEST(Spsc, TheLongestTimeoutOfEveryDurationTypeWaits) {
  expect_waits_for_a_late_push(std::chrono::nanoseconds::max());
  expect_waits_for_a_late_push(std::chrono::microseconds::max());
  expect_waits_for_a_late_push(std::chrono::milliseconds::max());
  expect_waits_for_a_late_push(std::chrono::seconds::max());
  expect_waits_for_a_late_push(std::chrono::minutes::max());
  expect_waits_for_a_late_push(std::chrono::hours::max());
  expect_waits_for_a_late_push(std::chrono::duration<double>::max());
  expect_waits_for_a_late_push(std::chrono::duration<std::int64_t, std::pico>::max());
  expect_waits_for_a_late_push(std::chrono::duration<std::uint32_t, std::ratio<86400>>::max());
}

TEST(Spsc, DeadlinesSaturateAndNeverLieInThePast) {
  using picoring::detail::deadline_after;
  using Clock = std::chrono::steady_clock;
  EXPECT_EQ(deadline_after(std::chrono::hours::max()), Clock::time_point::max());
  EXPECT_EQ(deadline_after(std::chrono::nanoseconds::max()), Clock::time_point::max());
  EXPECT_EQ(deadline_after(std::chrono::duration<double>(1e300)), Clock::time_point::max());
  EXPECT_EQ(deadline_after(std::chrono::duration<double>::max()), Clock::time_point::max());
  const auto before = Clock::now();
  const auto soon = deadline_after(5ms);
  const auto after = Clock::now();
  EXPECT_GE(soon, before + 5ms);
  EXPECT_LE(soon, after + 5ms);
  // Each deadline is computed before the now() it is compared with (macro arguments have no
  // evaluation order).
  const auto negative = deadline_after(-1s);
  EXPECT_LE(negative, Clock::now());
  const auto most_negative = deadline_after(std::chrono::hours::min());
  EXPECT_LE(most_negative, Clock::now());
  const auto nan = deadline_after(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_LE(nan, Clock::now());
  // A sub-tick timeout rounds up: the deadline is never earlier than asked.
  EXPECT_GT(deadline_after(std::chrono::duration<std::int64_t, std::pico>(1)), before);
}

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

// try_pop's strong guarantee: whichever copy made on the way out throws, the element stays
// the oldest in the queue; when nothing throws, it is returned and removed.
TEST(Spsc, TryPopIsStrongWhenTheElementsCopyThrows) {
  for (int k = 0; k < 4; ++k) {
    SCOPED_TRACE(k);
    auto [p, c] = make_spsc<OldStyle>(16);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.try_push(OldStyle(i)));
    OldStyle::copies_until_throw = k;
    bool threw = false;
    try {
      const std::optional<OldStyle> got = c.try_pop();
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->value, 0);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    OldStyle::copies_until_throw = -1;
    EXPECT_EQ(c.size(), threw ? 3u : 2u);
    EXPECT_EQ(c.try_pop().value().value, threw ? 0 : 1);
  }
}

// The publishing side's look at a sleepers word (detail::wake_sleepers): a sleeper counted in it
// is woken whether or not the word carries the fence bit, and the bit alone wakes nobody.
TEST(Spsc, TheFenceBitAloneWakesNobody) {
  using picoring::detail::kFastSideFences;
  struct Case {
    std::uint32_t sleepers;
    bool wakes;
  };
  for (const Case k :
       {Case{0, false}, Case{1, true}, Case{2, true}, Case{kFastSideFences, false}, Case{kFastSideFences | 1, true}}) {
    SCOPED_TRACE(k.sleepers);
    std::atomic<std::uint32_t> sleepers{k.sleepers};
    std::atomic<std::uint32_t> word{7};
    picoring::detail::wake_sleepers(sleepers, word);
    EXPECT_EQ(word.load(), k.wakes ? 8u : 7u);
    EXPECT_EQ(sleepers.load(), k.sleepers);  // the fast side never writes the word
  }
}

#if defined(__linux__)
// A membarrier call that fails after registration (a seccomp filter installed later) must
// switch both sides to ordinary fences for good; otherwise the publishing side keeps only a
// compiler barrier and a wakeup can be lost until the waiter's timeout.
TEST(Spsc, AFailedMembarrierFallsBackToFencesForGood) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " has no seccomp filters";
  if (picoring_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes make system calls a filter would disturb";
  const int rc = picoring_test::in_child([] {
    using picoring::detail::kFastSideFences;
    auto* state = picoring_test::state_starting_at<picoring::detail::SpscState<int>>(16, std::size_t{0});
    auto queue =
        picoring::detail::QueueAccess::handles<picoring::SpscProducer<int>, picoring::SpscConsumer<int>>(state);
    auto& p = queue.first;
    auto& c = queue.second;
    if (!picoring::fences_use_membarrier()) return 77;  // membarrier unavailable here
    // While membarrier works, the publishing side is told nothing: no fence on its path.
    if (state->consumer_sleeping.load() != 0 || state->producer_sleeping.load() != 0) return 4;
    if (!picoring_test::deny_membarrier()) return 78;
    std::thread late([&p] {
      std::this_thread::sleep_for(50ms);
      (void)p.try_push(1);
    });
    int out = 0;
    const QueueStatus st = c.pop_wait(out, 20s);
    late.join();
    if (st != QueueStatus::ok || out != 1) return 1;
    if (picoring::fences_use_membarrier()) return 2;  // still relying on membarrier
    // The waiter told the publishing side to fence (the word it reads after every push), and a
    // queue made from now on starts that way on both sides.
    if ((state->consumer_sleeping.load() & kFastSideFences) == 0) return 5;
    auto* later = picoring_test::state_starting_at<picoring::detail::SpscState<int>>(16, std::size_t{0});
    const bool later_fences =
        (later->consumer_sleeping.load() & later->producer_sleeping.load() & kFastSideFences) != 0;
    {
      [[maybe_unused]] auto dropped =
          picoring::detail::QueueAccess::handles<picoring::SpscProducer<int>, picoring::SpscConsumer<int>>(later);
    }
    if (!later_fences) return 6;
    // And it keeps working with ordinary fences.
    std::thread again([&p] {
      std::this_thread::sleep_for(50ms);
      (void)p.try_push(2);
    });
    const QueueStatus st2 = c.pop_wait(out, 20s);
    again.join();
    return st2 == QueueStatus::ok && out == 2 ? 0 : 3;
  });
  if (rc == 77) GTEST_SKIP() << "membarrier(PRIVATE_EXPEDITED) is not available on this kernel";
  if (rc == 78) GTEST_SKIP() << "seccomp filters cannot be installed here";
  EXPECT_EQ(rc, 0);
}
#endif
