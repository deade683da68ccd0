// Differential fuzzing of the SPSC, MPSC and fan-in queues, driven from one thread: every interleaving
// of the two ends' calls the input picks (pushes, pops, reserve/commit, peek/release, drain,
// zero-timeout waits, close, moved and copied handles, batching) must match a std::deque, with
// the counters started near the wrap-around of 32 and 64 bits and odd capacities. At the end no
// counted element may be alive or destroyed twice.
#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "picoring/fanin.hpp"
#include "picoring/mpsc.hpp"
#include "picoring/spsc.hpp"

namespace {

using namespace std::chrono_literals;
using picoring::mirror_safe;
using picoring::QueueStatus;
using picoring_fuzz::Blob;
using picoring_fuzz::Counted;
using picoring_fuzz::make;

using Model = std::deque<std::uint64_t>;

template <class F>
bool attempt(F&& f) {
  try {
    f();
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

// Where the counters start: 0, or just before they wrap at 2^32 or 2^64.
std::uint64_t start_from(FuzzedDataProvider& in) {
  const std::uint64_t back = in.ConsumeIntegralInRange<std::uint64_t>(0, 3000);
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      return 0;
    case 1:
      return (std::uint64_t{1} << 32) - back;
    default:
      return std::uint64_t{0} - back;
  }
}

// The consumer's calls, shared by both queues (they share the consumer code). Returns false
// when the op was not a consumer op.
template <class T, class Consumer>
bool consumer_op(int op, FuzzedDataProvider& in, Consumer& c, Model& model) {
  switch (op) {
    case 0: {
      std::optional<T> v = c.try_pop();
      FUZZ_CHECK(v.has_value() == !model.empty());
      if (v) {
        FUZZ_CHECK(v->is(model.front()));
        model.pop_front();
      }
      return true;
    }
    case 1: {  // pop into an element: an assignment, which may throw (then nothing changes)
      T out = make<T>(~std::uint64_t{0});
      bool popped = false;
      if (attempt([&] { popped = c.try_pop(out); })) {
        FUZZ_CHECK(popped == !model.empty());
        if (popped) {
          FUZZ_CHECK(out.is(model.front()));
          model.pop_front();
        }
      }
      return true;
    }
    case 2: {  // pop_slice: a throwing assignment keeps what it did not move
      std::vector<T> out;
      const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 40);
      for (std::size_t i = 0; i < k; ++i) out.push_back(make<T>(~std::uint64_t{0}));
      std::size_t got = 0;
      if (attempt([&] { got = c.pop_slice(out); })) {
        FUZZ_CHECK(got == std::min(k, model.size()));
      } else {
        got = 0;
        while (got < k && got < model.size() && out[got].is(model[got])) ++got;
      }
      for (std::size_t i = 0; i < got; ++i) {
        FUZZ_CHECK(out[i].is(model.front()));
        model.pop_front();
      }
      return true;
    }
    case 3: {  // peek (mirror_safe) and release, sometimes too many
      if constexpr (mirror_safe<T>) {
        const auto p = c.peek();
        FUZZ_CHECK(p.size() == model.size());
        for (std::size_t i = 0; i < p.size(); ++i) FUZZ_CHECK(p[i].is(model[i]));
      }
      const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
      try {
        c.release(n);
        FUZZ_CHECK(n <= model.size());
        model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
      } catch (const std::out_of_range&) {
        FUZZ_CHECK(n > model.size());
      }
      return true;
    }
    case 4: {  // drain up to max, in order
      const std::size_t max = in.ConsumeIntegralInRange<std::size_t>(0, 60);
      std::size_t seen = 0;
      const std::size_t n = c.drain([&](T& v) { FUZZ_CHECK(v.is(model[seen++])); }, max);
      FUZZ_CHECK(n == std::min(max, model.size()) && n == seen);
      model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
      return true;
    }
    case 5: {  // a zero or negative timeout never blocks
      const QueueStatus st = c.wait(in.ConsumeBool() ? 0ns : -1s);
      FUZZ_CHECK(st == (model.empty() ? (c.closed() ? QueueStatus::closed : QueueStatus::timed_out) : QueueStatus::ok));
      FUZZ_CHECK(c.size() == model.size());
      return true;
    }
    default:
      return false;
  }
}

template <class T>
void run_spsc(FuzzedDataProvider& in) {
  using State = picoring::detail::SpscState<T>;
  picoring::Error err;
  const std::size_t requested = in.ConsumeIntegralInRange<std::size_t>(1, 3000);
  State* s = picoring::detail::new_queue_state<State>(requested, {}, err);
  FUZZ_CHECK(s != nullptr);
  s->start_at(static_cast<std::size_t>(start_from(in)));
  // Not a structured binding: clang 14 cannot capture one.
  auto handles = picoring::detail::QueueAccess::handles<picoring::SpscProducer<T>, picoring::SpscConsumer<T>>(s);
  auto& p = handles.first;
  auto& c = handles.second;
  Model model;
  std::uint64_t next = 0;
  bool closed = false;
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 15);
    if (consumer_op<T>(op, in, c, model)) {
      FUZZ_CHECK(c.size() == model.size());
      continue;
    }
    const std::size_t room = closed ? 0 : c.capacity() - model.size();
    switch (op) {
      case 6: {
        const T v = make<T>(next);
        bool pushed = false;
        if (attempt([&] { pushed = p.try_push(v); })) {
          FUZZ_CHECK(pushed == (room > 0));
          if (pushed) model.push_back(next);
        }
        ++next;
        break;
      }
      case 7: {  // push_slice all or nothing, push_some what fits
        std::vector<T> items;
        const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 60);
        for (std::size_t i = 0; i < k; ++i) items.push_back(make<T>(next + i));
        const bool some = in.ConsumeBool();
        std::size_t n = 0;
        if (attempt([&] { n = some ? p.push_some(items) : (p.push_slice(items) ? k : 0); })) {
          FUZZ_CHECK(n == (some ? std::min(k, room) : (k <= room ? k : 0)));
          for (std::size_t i = 0; i < n; ++i) model.push_back(next + i);
        }
        next += k;
        break;
      }
      case 8:
        if constexpr (mirror_safe<T>) {  // reserve exactly n, commit a prefix; commit too much
          const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, c.capacity() + 1);
          auto slots = p.reserve(n);
          FUZZ_CHECK(slots.size() == (n <= room ? n : 0));
          for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = make<T>(next + i);
          const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, slots.size());
          p.commit(k);
          for (std::size_t i = 0; i < k; ++i) model.push_back(next + i);
          next += slots.size();
          try {
            p.commit(c.capacity() - model.size() + 1);
            FUZZ_CHECK(false);
          } catch (const std::out_of_range&) {
          }
        }
        break;
      case 9: {
        const QueueStatus st = p.push_wait(make<T>(next), 0ns);
        FUZZ_CHECK(st == (closed ? QueueStatus::closed : room > 0 ? QueueStatus::ok : QueueStatus::timed_out));
        if (st == QueueStatus::ok) model.push_back(next);
        ++next;
        break;
      }
      case 10:
        Counted::copies_until_throw = in.ConsumeIntegralInRange<long>(-1, 3);
        break;
      case 11: {  // move both handles away and back
        picoring::SpscProducer<T> p2(std::move(p));
        picoring::SpscConsumer<T> c2(std::move(c));
        FUZZ_CHECK(!p && !c && !p.try_push(make<T>(0)) && !c.try_pop());  // NOLINT(bugprone-use-after-move)
        p = std::move(p2);
        c = std::move(c2);
        break;
      }
      case 12: {  // batching: tiny waits, never more than a microsecond
        const picoring::Batching b{in.ConsumeIntegralInRange<std::size_t>(0, 300),
                                   std::chrono::nanoseconds(in.ConsumeIntegralInRange<int>(0, 1000))};
        (in.ConsumeBool() ? static_cast<void>(p.set_batching(b)) : static_cast<void>(c.set_batching(b)));
        break;
      }
      case 13:
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          (in.ConsumeBool() ? p.close() : c.close());
          closed = true;
        }
        break;
      default:
        FUZZ_CHECK(p.free_space() <= c.capacity() - model.size());
        break;
    }
    FUZZ_CHECK(c.size() == model.size());
  }
}

template <class T>
void run_mpsc(FuzzedDataProvider& in) {
  using State = picoring::detail::MpscState<T>;
  picoring::Error err;
  State* s = picoring::detail::new_queue_state<State>(in.ConsumeIntegralInRange<std::size_t>(1, 3000), {}, err);
  FUZZ_CHECK(s != nullptr);
  s->start_at(start_from(in));
  auto handles = picoring::detail::QueueAccess::handles<picoring::MpscProducer<T>, picoring::MpscConsumer<T>>(s);
  auto& c = handles.second;
  std::vector<picoring::MpscProducer<T>> producers;
  producers.push_back(std::move(handles.first));
  Model model;
  std::uint64_t next = 0;
  bool closed = false;
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 12);
    if (consumer_op<T>(op, in, c, model)) {
      FUZZ_CHECK(c.size() == model.size());
      continue;
    }
    auto& p = producers[in.ConsumeIntegralInRange<std::size_t>(0, producers.size() - 1)];
    const std::size_t room = closed ? 0 : c.capacity() - model.size();
    switch (op) {
      case 6: {
        const T v = make<T>(next);
        bool pushed = false;
        if (attempt([&] { pushed = p.try_push(v); })) {
          FUZZ_CHECK(pushed == (room > 0));
          if (pushed) model.push_back(next);
        }
        ++next;
        break;
      }
      case 7:
        if constexpr (mirror_safe<T>) {  // one run, all or nothing
          std::vector<T> items;
          const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 60);
          for (std::size_t i = 0; i < k; ++i) items.push_back(make<T>(next + i));
          const bool pushed = p.push_slice(items);
          FUZZ_CHECK(pushed == (k == 0 || k <= room));
          if (pushed && k != 0)
            for (std::size_t i = 0; i < k; ++i) model.push_back(next + i);
          next += k;
        }
        break;
      case 8: {
        const QueueStatus st = p.push_wait(make<T>(next), 0ns);
        FUZZ_CHECK(st == (closed ? QueueStatus::closed : room > 0 ? QueueStatus::ok : QueueStatus::timed_out));
        if (st == QueueStatus::ok) model.push_back(next);
        ++next;
        break;
      }
      case 9:  // another producer (a copy), or one fewer; the last one going closes the queue
        if (producers.size() < 4 && in.ConsumeBool()) {
          producers.push_back(p);
        } else if (producers.size() > 1) {
          producers.pop_back();
        }
        break;
      case 10:
        Counted::copies_until_throw = in.ConsumeIntegralInRange<long>(-1, 3);
        break;
      case 11:
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          (in.ConsumeBool() ? p.close() : c.close());
          closed = true;
        }
        break;
      default: {
        picoring::MpscConsumer<T> moved(std::move(c));
        c = std::move(moved);
        break;
      }
    }
    FUZZ_CHECK(c.size() == model.size());
  }
}

// The fan-in queue: up to kPlaces producer copies made, closed and dropped at random, each
// with a lane modelled by its own deque. Whatever the consumer takes must be the oldest
// element of some lane; a window must be one lane's whole content; counts must add up.
template <class T>
void run_fanin(FuzzedDataProvider& in) {
  static_assert(sizeof(T) >= 3, "lanes are told apart by their elements' values (see Blob)");
  constexpr std::size_t kPlaces = 4;
  picoring::Error err;
  auto handles = picoring::make_fanin<T>(in.ConsumeIntegralInRange<std::size_t>(1, 3000), kPlaces, err);
  FUZZ_CHECK(!err);
  auto& c = handles.second;
  struct Producer {
    picoring::FanInProducer<T> p;
    std::size_t lane;
    bool open;
  };
  std::vector<Producer> producers;
  producers.push_back({std::move(handles.first), 0, true});
  std::vector<Model> lanes(1);
  const std::size_t cap = producers[0].p.capacity();
  std::uint64_t next = 0;
  bool consumer_closed = false;
  const auto total = [&] {
    std::size_t n = 0;
    for (const Model& m : lanes) n += m.size();
    return n;
  };
  const auto queue_closed = [&] {
    return consumer_closed ||
           std::none_of(producers.begin(), producers.end(), [](const Producer& p) { return p.open; });
  };
  // The lane whose oldest element v is, or lanes.size() when none.
  const auto lane_of = [&](const T& v) {
    for (std::size_t l = 0; l < lanes.size(); ++l)
      if (!lanes[l].empty() && v.is(lanes[l].front())) return l;
    return lanes.size();
  };
  const auto take = [&](const T& v) {
    const std::size_t l = lane_of(v);
    FUZZ_CHECK(l < lanes.size());
    lanes[l].pop_front();
  };
  while (in.remaining_bytes() > 0) {
    int op = in.ConsumeIntegralInRange<int>(0, 13);
    if (producers.empty() && op >= 5 && op <= 10) op = 0;  // every producer went: consumer ops only
    Producer none{{}, 0, false};
    Producer& p = producers.empty() ? none : producers[in.ConsumeIntegralInRange<std::size_t>(0, producers.size() - 1)];
    const std::size_t room = !p.open || consumer_closed ? 0 : cap - lanes[p.lane].size();
    switch (op) {
      case 0: {
        std::optional<T> v = c.try_pop();
        FUZZ_CHECK(v.has_value() == (total() != 0));
        if (v) take(*v);
        break;
      }
      case 1: {  // pop_slice goes from lane to lane until out is full or every lane is empty
        std::vector<T> out;
        const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 40);
        for (std::size_t i = 0; i < k; ++i) out.push_back(make<T>(~std::uint64_t{0}));
        const std::size_t had = total();
        const std::size_t got = c.pop_slice(out);
        FUZZ_CHECK(got == std::min(k, had));
        for (std::size_t i = 0; i < got; ++i) take(out[i]);
        break;
      }
      case 2: {  // peek: one lane, all of it; release up to one more than it showed
        std::size_t shown = 0;
        if constexpr (mirror_safe<T>) {
          const auto w = c.peek();
          FUZZ_CHECK(w.empty() == (total() == 0));
          if (!w.empty()) {
            const std::size_t l = lane_of(w[0]);
            FUZZ_CHECK(l < lanes.size() && w.size() == lanes[l].size());
            for (std::size_t i = 0; i < w.size(); ++i) FUZZ_CHECK(w[i].is(lanes[l][i]));
            shown = w.size();
          }
          const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, shown + 1);
          const std::vector<T> first(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(std::min(n, shown)));
          try {
            c.release(n);
            FUZZ_CHECK(n <= shown);
            for (const T& v : first) take(v);
          } catch (const std::out_of_range&) {
            FUZZ_CHECK(n > shown);
          }
        }
        break;
      }
      case 3: {  // drain up to max, each element the oldest of its lane when visited
        const std::size_t max = in.ConsumeIntegralInRange<std::size_t>(0, 60);
        const std::size_t had = total();
        std::size_t seen = 0;
        const std::size_t n = c.drain(
            [&](T& v) {
              take(v);
              ++seen;
            },
            max);
        FUZZ_CHECK(n == std::min(max, had) && n == seen);
        break;
      }
      case 4: {
        const QueueStatus st = c.wait(in.ConsumeBool() ? 0ns : -1s);
        FUZZ_CHECK(st == (total() != 0     ? QueueStatus::ok
                          : queue_closed() ? QueueStatus::closed
                                           : QueueStatus::timed_out));
        FUZZ_CHECK(c.closed() == queue_closed());
        break;
      }
      case 5: {
        const T v = make<T>(next);
        bool pushed = false;
        if (attempt([&] { pushed = p.p.try_push(v); })) {
          FUZZ_CHECK(pushed == (room > 0));
          if (pushed) lanes[p.lane].push_back(next);
        }
        ++next;
        break;
      }
      case 6: {  // push_slice all or nothing, push_some what fits
        std::vector<T> items;
        const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, 60);
        for (std::size_t i = 0; i < k; ++i) items.push_back(make<T>(next + i));
        const bool some = in.ConsumeBool();
        std::size_t n = 0;
        if (attempt([&] { n = some ? p.p.push_some(items) : (p.p.push_slice(items) ? k : 0); })) {
          FUZZ_CHECK(n == (some ? std::min(k, room) : (k <= room ? k : 0)));
          for (std::size_t i = 0; i < n; ++i) lanes[p.lane].push_back(next + i);
        }
        next += k;
        break;
      }
      case 7:
        if constexpr (mirror_safe<T>) {  // reserve exactly n, commit a prefix
          const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, cap + 1);
          auto slots = p.p.reserve(n);
          FUZZ_CHECK(slots.size() == (n <= room ? n : 0));
          for (std::size_t i = 0; i < slots.size(); ++i) slots[i] = make<T>(next + i);
          const std::size_t k = in.ConsumeIntegralInRange<std::size_t>(0, slots.size());
          p.p.commit(k);
          for (std::size_t i = 0; i < k; ++i) lanes[p.lane].push_back(next + i);
          next += slots.size();
        }
        break;
      case 8: {
        const QueueStatus st = p.p.push_wait(make<T>(next), 0ns);
        FUZZ_CHECK(st == (room > 0                     ? QueueStatus::ok
                          : !p.open || consumer_closed ? QueueStatus::closed
                                                       : QueueStatus::timed_out));
        if (st == QueueStatus::ok) lanes[p.lane].push_back(next);
        ++next;
        break;
      }
      case 9: {  // another producer: a new lane, or no free place (every place holds a lane)
        if (producers.size() >= 8 || !p.p) break;
        picoring::Error e;
        auto q = p.p.another(e);
        if (e) {
          FUZZ_CHECK(e.code == std::errc::resource_unavailable_try_again);
          c.size();  // a look at every lane, so that lanes() counts every place
          FUZZ_CHECK(c.lanes() == kPlaces);
        } else {
          producers.push_back({std::move(q), lanes.size(), !consumer_closed});
          lanes.emplace_back();
        }
        break;
      }
      case 10:  // a producer closes its lane, or goes
        if (in.ConsumeBool()) {
          p.p.close();
          p.open = false;
        } else {
          producers.erase(producers.begin() + (&p - producers.data()));
        }
        break;
      case 11:
        Counted::copies_until_throw = in.ConsumeIntegralInRange<long>(-1, 3);
        break;
      case 12:
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          c.close();
          consumer_closed = true;
        }
        break;
      default: {
        picoring::FanInConsumer<T> moved(std::move(c));
        c = std::move(moved);
        break;
      }
    }
    FUZZ_CHECK(c.size() == total());
    FUZZ_CHECK(c.lanes() <= kPlaces);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 10)) {
    case 0:
      run_spsc<Blob<1>>(in);
      break;
    case 1:
      run_spsc<Blob<3>>(in);
      break;
    case 2:
      run_spsc<Blob<24>>(in);
      break;
    case 3:
      run_spsc<Counted>(in);
      break;
    case 4:
      run_mpsc<Blob<8>>(in);
      break;
    case 5:
      run_mpsc<Blob<24>>(in);
      break;
    case 6:
      run_mpsc<Counted>(in);
      break;
    case 7:
      run_fanin<Blob<3>>(in);
      break;
    case 8:
      run_fanin<Blob<24>>(in);
      break;
    default:
      run_fanin<Counted>(in);
      break;
  }
  picoring_fuzz::check_lifetimes();
  return 0;
}
