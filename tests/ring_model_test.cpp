// Randomized model tests: PicoRing and PicoQueue against std::deque, over element types of
// odd sizes (1, 3, 8, 24, 4096, 5000 bytes), std::string (self-pointing small strings) and a
// type that counts its constructions and destructions. Every API of the two containers is
// drawn at random, including calls that must be rejected, and the ring wraps thousands of
// times in total.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "picoring/ring.hpp"
#include "test_support.hpp"

namespace {

using picoring::mirror_safe;
using picoring::PicoQueue;
using picoring::PicoRing;
using picoring_test::Blob;
using picoring_test::make;
using picoring_test::Tracked;

// Same sequence of elements in the container (through operator[], iterators and, where the
// type allows, the contiguous window) as in the model.
template <class Ring, class T>
void expect_same(const Ring& ring, const std::deque<T>& model) {
  ASSERT_EQ(ring.size(), model.size());
  ASSERT_EQ(ring.empty(), model.empty());
  ASSERT_EQ(ring.available_space(), ring.capacity() - model.size());
  ASSERT_EQ(static_cast<std::size_t>(std::distance(ring.begin(), ring.end())), model.size());
  ASSERT_TRUE(std::equal(ring.begin(), ring.end(), model.begin(), model.end()));
  for (std::size_t i = 0; i < model.size(); ++i) ASSERT_TRUE(ring[i] == model[i]) << "index " << i;
}

template <class T>
std::size_t min_capacity_for_test() {
  // Small rings, so the wrap comes often; rounding makes them a whole number of pages.
  return sizeof(T) >= 4096 ? 5 : 100;
}

template <class T>
struct Budget {
  std::size_t ops;
  std::size_t bytes;
};
// Enough operations and bytes for the required number of laps even where the rounding makes
// the ring large (5000-byte elements on 64 KiB pages: lcm = 40 MiB per ring).
template <class T>
Budget<T> budget(std::size_t capacity) {
  const std::size_t lap_bytes = 3 * picoring_test::scaled(50) * capacity * sizeof(T);
  return {picoring_test::scaled(300'000), std::max(picoring_test::scaled(std::size_t{256} << 20), lap_bytes)};
}

template <class T>
class RingModelTest : public picoring_test::LifetimeChecked<T> {};

using ElementTypes =
    ::testing::Types<std::uint8_t, Blob<3>, std::uint64_t, Blob<24>, Blob<4096>, Blob<5000>, std::string, Tracked>;
TYPED_TEST_SUITE(RingModelTest, ElementTypes);

TYPED_TEST(RingModelTest, PicoRingMatchesDeque) {
  using T = TypeParam;
  std::mt19937_64 rng(0x5EED0000u + sizeof(T));
  PicoRing<T> ring(min_capacity_for_test<T>());
  std::deque<T> model;
  const std::size_t cap = ring.capacity();
  ASSERT_GE(cap, min_capacity_for_test<T>());
  ASSERT_EQ(cap * sizeof(T) % picoring::allocation_granularity(), 0u);
  std::uint64_t next_id = 0;
  std::size_t popped = 0;
  std::size_t pushed_bytes = 0;
  const auto limits = budget<T>(cap);
  // Bulk operations move up to a whole ring at a time, bounded for very large elements.
  const std::size_t max_bulk = std::min<std::size_t>(cap + 2, std::max<std::size_t>(4, (1u << 20) / sizeof(T)));
  auto bulk = [&] { return std::uniform_int_distribution<std::size_t>(0, max_bulk)(rng); };
  auto fill = [&](std::size_t n) {
    std::vector<T> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) v.push_back(make<T>(next_id++));
    return v;
  };

  std::size_t op = 0;
  for (; op < limits.ops && pushed_bytes < limits.bytes; ++op) {
    const int choice = std::uniform_int_distribution<int>(0, 13)(rng);
    switch (choice) {
      case 0: {  // push (copy)
        const T v = make<T>(next_id++);
        const bool ok = ring.push(v);
        ASSERT_EQ(ok, model.size() < cap);
        if (ok) model.push_back(v);
        break;
      }
      case 1: {  // emplace / push (move)
        T v = make<T>(next_id++);
        const T copy = v;
        T* slot = ring.emplace(std::move(v));
        ASSERT_EQ(slot != nullptr, model.size() < cap);
        if (slot != nullptr) {
          ASSERT_TRUE(*slot == copy);
          model.push_back(copy);
        }
        break;
      }
      case 2: {  // pop -> optional
        auto v = ring.pop();
        ASSERT_EQ(v.has_value(), !model.empty());
        if (v) {
          ASSERT_TRUE(*v == model.front());
          model.pop_front();
          ++popped;
        }
        break;
      }
      case 3: {  // pop into an existing object
        T out = make<T>(~std::uint64_t{0});
        const bool ok = ring.pop(out);
        ASSERT_EQ(ok, !model.empty());
        if (ok) {
          ASSERT_TRUE(out == model.front());
          model.pop_front();
          ++popped;
        }
        break;
      }
      case 4:
      case 5: {  // push_slice: all or nothing
        const auto items = fill(bulk());
        const bool ok = ring.push_slice(items);
        ASSERT_EQ(ok, items.size() <= cap - model.size());
        if (ok) model.insert(model.end(), items.begin(), items.end());
        pushed_bytes += items.size() * sizeof(T);
        break;
      }
      case 6: {  // push_overwrite
        const T v = make<T>(next_id++);
        const bool dropped = ring.push_overwrite(v);
        ASSERT_EQ(dropped, model.size() == cap);
        if (dropped) {
          model.pop_front();
          ++popped;
        }
        model.push_back(v);
        break;
      }
      case 7:
      case 8: {  // advance_head, sometimes past the end (rejected, nothing changes)
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, model.size() + 2)(rng);
        if (n > model.size()) {
          ASSERT_THROW(ring.release(n), std::out_of_range);
        } else {
          ring.release(n);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
          popped += n;
        }
        break;
      }
      case 9: {  // writable_slice + advance_tail (mirror_safe only)
        if constexpr (mirror_safe<T>) {
          auto w = ring.writable_slice();
          ASSERT_EQ(w.size(), cap - model.size());
          const std::size_t n = std::min(w.size(), bulk());
          for (std::size_t i = 0; i < n; ++i) {
            w[i] = make<T>(next_id);
            model.push_back(make<T>(next_id++));
          }
          pushed_bytes += n * sizeof(T);
          ring.commit(n);
          ASSERT_THROW(ring.commit(ring.available_space() + 1), std::out_of_range);
        }
        break;
      }
      case 10: {  // readable_slice / data / view (mirror_safe only), at() bounds
        if constexpr (mirror_safe<T>) {
          const auto r = ring.readable_slice();
          ASSERT_EQ(r.size(), model.size());
          ASSERT_EQ(r.data(), ring.data());
          if (!model.empty()) {
            ASSERT_TRUE(r.front() == model.front());
            ASSERT_TRUE(r.back() == model.back());
            const std::size_t off = std::uniform_int_distribution<std::size_t>(0, model.size())(rng);
            const std::size_t len = std::uniform_int_distribution<std::size_t>(0, model.size() - off)(rng);
            const auto v = ring.view(off, len);
            ASSERT_TRUE(std::equal(v.begin(), v.end(), model.begin() + static_cast<std::ptrdiff_t>(off)));
          }
          ASSERT_THROW((void)ring.view(model.size(), 1), std::out_of_range);
        }
        ASSERT_THROW((void)ring.at(model.size()), std::out_of_range);
        if (!model.empty()) {
          ASSERT_TRUE(ring.at(model.size() - 1) == model.back());
          ASSERT_TRUE(ring.front() == model.front());
          ASSERT_TRUE(ring.back() == model.back());
        }
        break;
      }
      case 11: {  // pop_slice (mirror_safe only)
        if constexpr (mirror_safe<T>) {
          std::vector<T> out(bulk());
          const std::size_t n = ring.pop_slice(out);
          ASSERT_EQ(n, std::min(out.size(), model.size()));
          for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(out[i] == model[i]);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
          popped += n;
        }
        break;
      }
      case 12: {  // rarely: clear
        if (std::uniform_int_distribution<int>(0, 200)(rng) == 0) {
          popped += model.size();
          ring.clear();
          model.clear();
        }
        break;
      }
      case 13: {  // mutation through operator[] and iterators lands on the right element
        if (!model.empty()) {
          const std::size_t i = std::uniform_int_distribution<std::size_t>(0, model.size() - 1)(rng);
          const T v = make<T>(next_id++);
          ring[i] = v;
          model[i] = v;
          *(ring.begin() + static_cast<std::ptrdiff_t>(model.size() - 1)) = v;
          model.back() = v;
        }
        break;
      }
    }
    ASSERT_EQ(ring.size(), model.size()) << "op " << op << " choice " << choice;
    if (!model.empty()) {
      ASSERT_TRUE(ring.front() == model.front());
    }
    if (op % 256 == 0) expect_same(ring, model);
  }
  expect_same(ring, model);
  // The wrap was crossed many times (each `cap` elements popped is one full lap).
  const std::size_t laps = popped / cap;
  this->RecordProperty("laps", static_cast<int>(laps));
  EXPECT_GE(laps, picoring_test::scaled(50)) << "ops " << op << " capacity " << cap;
}

TYPED_TEST(RingModelTest, PicoQueueMatchesDeque) {
  using T = TypeParam;
  std::mt19937_64 rng(0xC0FFEEu + sizeof(T));
  PicoQueue<T> queue(min_capacity_for_test<T>());
  std::deque<T> model;
  const std::size_t cap = queue.capacity();
  std::uint64_t next_id = 0;
  std::size_t popped = 0;
  std::size_t pushed_bytes = 0;
  const auto limits = budget<T>(cap);
  const std::size_t max_bulk = std::min<std::size_t>(cap + 2, std::max<std::size_t>(4, (1u << 20) / sizeof(T)));
  auto bulk = [&] { return std::uniform_int_distribution<std::size_t>(0, max_bulk)(rng); };

  std::size_t op = 0;
  for (; op < limits.ops && pushed_bytes < limits.bytes; ++op) {
    const int choice = std::uniform_int_distribution<int>(0, 5)(rng);
    switch (choice) {
      case 0: {  // try_push / try_emplace
        const T v = make<T>(next_id++);
        const bool ok = (op & 1) != 0 ? queue.try_push(v) : queue.try_emplace(v) != nullptr;
        ASSERT_EQ(ok, model.size() < cap);
        if (ok) model.push_back(v);
        pushed_bytes += sizeof(T);
        break;
      }
      case 1: {  // try_pop, both forms
        if ((op & 1) != 0) {
          auto v = queue.try_pop();
          ASSERT_EQ(v.has_value(), !model.empty());
          if (v) {
            ASSERT_TRUE(*v == model.front());
          }
        } else {
          T out = make<T>(~std::uint64_t{0});
          ASSERT_EQ(queue.try_pop(out), !model.empty());
          if (!model.empty()) {
            ASSERT_TRUE(out == model.front());
          }
        }
        if (!model.empty()) {
          model.pop_front();
          ++popped;
        }
        break;
      }
      case 2:
      case 3: {  // reserve exactly n or nothing, then commit (a prefix, sometimes too much)
        if constexpr (mirror_safe<T>) {
          const std::size_t n = bulk();
          auto span = queue.reserve(n);
          if (n > cap - model.size()) {
            ASSERT_TRUE(span.empty());
            ASSERT_THROW(queue.commit(cap - model.size() + 1), std::out_of_range);
            break;
          }
          ASSERT_EQ(span.size(), n);
          for (std::size_t i = 0; i < n; ++i) span[i] = make<T>(next_id + i);
          const std::size_t k = std::uniform_int_distribution<std::size_t>(0, n)(rng);
          queue.commit(k);
          for (std::size_t i = 0; i < k; ++i) model.push_back(make<T>(next_id + i));
          next_id += n;
          pushed_bytes += k * sizeof(T);
        }
        break;
      }
      case 4: {  // peek everything, then release some (sometimes too many: rejected)
        if constexpr (mirror_safe<T>) {
          const auto p = queue.peek();
          ASSERT_EQ(p.size(), model.size());
          ASSERT_TRUE(std::equal(p.begin(), p.end(), model.begin(), model.end()));
        }
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, model.size() + 1)(rng);
        if (n > model.size()) {
          ASSERT_THROW(queue.release(n), std::out_of_range);
        } else {
          queue.release(n);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
          popped += n;
        }
        break;
      }
      case 5: {  // element-wise pushes for non-window types, so they fill and wrap too
        for (std::size_t i = 0, n = bulk() / 2; i < n && model.size() < cap; ++i) {
          const T v = make<T>(next_id++);
          ASSERT_TRUE(queue.try_push(v));
          model.push_back(v);
          pushed_bytes += sizeof(T);
        }
        break;
      }
    }
    ASSERT_EQ(queue.size(), model.size()) << "op " << op;
    if (op % 256 == 0) expect_same(queue, model);
  }
  expect_same(queue, model);
  EXPECT_GE(popped / cap, picoring_test::scaled(50)) << "ops " << op << " capacity " << cap;
}

}  // namespace
