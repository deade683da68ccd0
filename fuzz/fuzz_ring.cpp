// Differential fuzzing of PicoRing and PicoQueue against std::deque, for elements of 1, 3 and 24
// bytes and a lifetime-counted type whose copies throw when the input says so. Every call the
// input picks must do what the model says, including rejecting bad counts without changing
// anything; at the end no counted element may be alive or destroyed twice.
#include <deque>
#include <optional>
#include <stdexcept>
#include <vector>

#include "fuzz_support.hpp"
#include "picoring/ring.hpp"

namespace {

using picoring::mirror_safe;
using picoring_fuzz::Blob;
using picoring_fuzz::Counted;
using picoring_fuzz::make;

using Model = std::deque<std::uint64_t>;

// Compares everything when the ring is small, the ends otherwise (the last check of each input
// compares everything).
template <class Ring>
void check_same(Ring& ring, const Model& model, bool full) {
  FUZZ_CHECK(ring.size() == model.size());
  FUZZ_CHECK(ring.available_space() == ring.capacity() - model.size());
  FUZZ_CHECK(ring.empty() == model.empty());
  const std::size_t n = model.size();
  const bool all = full || n <= 32;
  for (std::size_t i = 0; i < n; ++i) {
    if (!all && i == 8) i = n - 8;
    FUZZ_CHECK(ring[i].is(model[i]));
  }
  if (all) {
    std::size_t i = 0;
    for (const auto& v : ring) FUZZ_CHECK(v.is(model[i++]));
    FUZZ_CHECK(i == n);
  }
}

// Runs one call that may throw a Counted copy failure; returns false if it threw.
template <class F>
bool attempt(F&& f) {
  try {
    f();
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

template <class T>
void run_ring(FuzzedDataProvider& in) {
  picoring::PicoRing<T> ring(in.ConsumeIntegralInRange<std::size_t>(1, 700));
  Model model;
  std::uint64_t next = 0;
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 15);
    switch (op) {
      case 0: {  // push a copy
        const T v = make<T>(next);
        const bool room = model.size() < ring.capacity();
        bool pushed = false;
        if (attempt([&] { pushed = ring.push(v); })) {
          FUZZ_CHECK(pushed == room);
          if (pushed) model.push_back(next);
        }
        ++next;
        break;
      }
      case 1: {  // emplace (a move for Counted: never throws)
        T* got = ring.emplace(make<T>(next));
        FUZZ_CHECK((got != nullptr) == (model.size() < ring.capacity()));
        if (got != nullptr) model.push_back(next);
        ++next;
        break;
      }
      case 2: {
        std::optional<T> v = ring.pop();
        FUZZ_CHECK(v.has_value() == !model.empty());
        if (v) {
          FUZZ_CHECK(v->is(model.front()));
          model.pop_front();
        }
        break;
      }
      case 3: {  // pop into an element (an assignment, which may throw: then nothing changes)
        T out = make<T>(~std::uint64_t{0});
        bool popped = false;
        if (attempt([&] { popped = ring.pop(out); })) {
          FUZZ_CHECK(popped == !model.empty());
          if (popped) {
            FUZZ_CHECK(out.is(model.front()));
            model.pop_front();
          }
        }
        break;
      }
      case 4: {  // push_overwrite: when full the oldest goes
        const T v = make<T>(next);
        bool dropped = false;
        if (attempt([&] { dropped = ring.push_overwrite(v); })) {
          FUZZ_CHECK(dropped == (model.size() == ring.capacity()));
          if (dropped) model.pop_front();
          model.push_back(next);
        }
        ++next;
        break;
      }
      case 5: {  // release(n), sometimes past the end; the seed alias advance_tail is the same
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 2);
        const bool alias = in.ConsumeBool();
        try {
          alias ? ring.advance_tail(n) : ring.release(n);
          FUZZ_CHECK(n <= model.size());
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(n > model.size());
        }
        break;
      }
      case 6:
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          ring.clear();
          model.clear();
        }
        break;
      case 7: {  // at(i), sometimes out of range
        const std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
        try {
          FUZZ_CHECK(ring.at(i).is(model.at(i)));
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(i >= model.size());
        }
        break;
      }
      case 8:  // the next copies fail after k successes
        Counted::copies_until_throw = in.ConsumeIntegralInRange<long>(-1, 3);
        break;
      case 9: {  // move the ring away and back
        picoring::PicoRing<T> other(std::move(ring));
        FUZZ_CHECK(ring.size() == 0 && ring.capacity() == 0);  // NOLINT(bugprone-use-after-move)
        FUZZ_CHECK(!ring.push(make<T>(0)));
        ring = std::move(other);
        break;
      }
      case 10: {  // push_slice: all or nothing, also when a copy throws
        std::vector<T> items;
        const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 40);
        for (std::size_t i = 0; i < k; ++i) items.push_back(make<T>(next + i));
        bool pushed = false;
        if (attempt([&] { pushed = ring.push_slice(items); })) {
          FUZZ_CHECK(pushed == (k <= ring.capacity() - model.size()));
          if (pushed)
            for (std::size_t i = 0; i < k; ++i) model.push_back(next + i);
        }
        next += k;
        break;
      }
      case 11:
        if constexpr (mirror_safe<T>) {  // write into writable_slice, commit (or the alias)
          auto w = ring.writable_slice();
          FUZZ_CHECK(w.size() == ring.capacity() - model.size());
          const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, w.size() + 1);
          for (std::size_t i = 0; i < n && i < w.size(); ++i) w[i] = make<T>(next + i);
          const bool alias = in.ConsumeBool();
          try {
            alias ? ring.advance_head(n) : ring.commit(n);
            FUZZ_CHECK(n <= w.size());
            for (std::size_t i = 0; i < n; ++i) model.push_back(next + i);
          } catch (const std::out_of_range&) {
            FUZZ_CHECK(n > w.size());
          }
          next += n;
        }
        break;
      case 12:
        if constexpr (mirror_safe<T>) {  // view(offset, count): contiguous, checked
          const std::size_t off = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
          const std::size_t cnt = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
          try {
            const auto v = ring.view(off, cnt);
            FUZZ_CHECK(off + cnt <= model.size());
            for (std::size_t i = 0; i < cnt; ++i) FUZZ_CHECK(v[i].is(model[off + i]));
          } catch (const std::out_of_range&) {
            FUZZ_CHECK(off > model.size() || cnt > model.size() - off);
          }
          const auto r = ring.readable_slice();
          FUZZ_CHECK(r.size() == model.size() && r.data() == ring.data());
        }
        break;
      case 13:
        if constexpr (mirror_safe<T>) {  // pop_slice
          std::vector<T> out(in.ConsumeIntegralInRange<std::size_t>(0, 50));
          const std::size_t got = ring.pop_slice(out);
          FUZZ_CHECK(got == std::min(out.size(), model.size()));
          for (std::size_t i = 0; i < got; ++i) {
            FUZZ_CHECK(out[i].is(model.front()));
            model.pop_front();
          }
        }
        break;
      default:
        check_same(ring, model, false);
        break;
    }
    check_same(ring, model, false);
  }
  check_same(ring, model, true);
}

template <class T>
void run_queue(FuzzedDataProvider& in) {
  picoring::PicoQueue<T> q(in.ConsumeIntegralInRange<std::size_t>(1, 700));
  Model model;
  std::uint64_t next = 0;
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {
        const T v = make<T>(next);
        bool pushed = false;
        if (attempt([&] { pushed = q.try_push(v); })) {
          FUZZ_CHECK(pushed == (model.size() < q.capacity()));
          if (pushed) model.push_back(next);
        }
        ++next;
        break;
      }
      case 1: {
        std::optional<T> v = q.try_pop();
        FUZZ_CHECK(v.has_value() == !model.empty());
        if (v) {
          FUZZ_CHECK(v->is(model.front()));
          model.pop_front();
        }
        break;
      }
      case 2:
        if constexpr (mirror_safe<T>) {  // reserve exactly n or nothing, commit a prefix
          const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, q.capacity() + 1);
          auto slots = q.reserve(n);
          const bool fits = n <= q.capacity() - model.size();
          FUZZ_CHECK(slots.size() == (fits ? n : 0));
          for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = make<T>(next + i);
          const std::size_t c = in.ConsumeIntegralInRange<std::size_t>(0, slots.size());
          q.commit(c);
          for (std::size_t i = 0; i < c; ++i) model.push_back(next + i);
          next += slots.size();
        }
        break;
      case 3:
        if constexpr (mirror_safe<T>) {  // peek everything, release a part
          const auto p = q.peek();
          FUZZ_CHECK(p.size() == model.size());
          for (std::size_t i = 0; i < p.size(); ++i) FUZZ_CHECK(p[i].is(model[i]));
        }
        [[fallthrough]];
      case 4: {
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
        try {
          q.release(n);
          FUZZ_CHECK(n <= model.size());
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(n > model.size());
        }
        break;
      }
      case 5:
        if constexpr (mirror_safe<T>) {
          try {
            q.commit(q.available_space() + 1);
            FUZZ_CHECK(false);
          } catch (const std::out_of_range&) {
          }
        }
        break;
      case 6:
        Counted::copies_until_throw = in.ConsumeIntegralInRange<long>(-1, 3);
        break;
      default: {
        std::vector<T> items;
        const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 40);
        for (std::size_t i = 0; i < k; ++i) items.push_back(make<T>(next + i));
        bool pushed = false;
        if (attempt([&] { pushed = q.try_push_slice(items); })) {
          FUZZ_CHECK(pushed == (k <= q.capacity() - model.size()));
          if (pushed)
            for (std::size_t i = 0; i < k; ++i) model.push_back(next + i);
        }
        next += k;
        break;
      }
    }
    check_same(q, model, false);
  }
  check_same(q, model, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      run_ring<Blob<1>>(in);
      break;
    case 1:
      run_ring<Blob<3>>(in);
      break;
    case 2:
      run_ring<Blob<24>>(in);
      break;
    case 3:
      run_ring<Counted>(in);
      break;
    case 4:
      run_queue<Blob<1>>(in);
      break;
    case 5:
      run_queue<Blob<3>>(in);
      break;
    case 6:
      run_queue<Blob<24>>(in);
      break;
    default:
      run_queue<Counted>(in);
      break;
  }
  picoring_fuzz::check_lifetimes();
  return 0;
}
