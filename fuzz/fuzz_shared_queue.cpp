// The shared record queue, byte stream, queues of fixed slots (typed and run-time sized) and the fan-in of record
// queues against a peer that lies (the first input byte picks which). A writer and a reader of one queue run in this
// process, checked against a std::deque<std::string> until the input starts playing the peer: it overwrites the
// counters in the header or any bytes of the data (record lengths) through a mapping of its own. From then on every
// call may fail with the documented errors (errc::corrupt_shared_state, or the argument errors), but every span either
// side hands out must lie within its own mapping of the ring, and every byte of it is read or written to prove it.
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fuzz_support.hpp"
#include "picoring/shared_queue.hpp"

namespace {

struct Bounds {
  const std::byte* base = nullptr;
  std::size_t size = 0;  // both views
  void check(std::span<const std::byte> s) const {
    if (s.empty()) return;
    FUZZ_CHECK(s.data() >= base && s.size() <= size && static_cast<std::size_t>(s.data() - base) <= size - s.size());
  }
};

unsigned touch(std::span<const std::byte> s) {
  unsigned sum = 0;
  for (const std::byte b : s) sum += static_cast<unsigned>(b);
  return sum;
}

// Runs f; an exception is acceptable only once the peer lied (corruption), or when it is one of
// the argument errors documented for the call.
template <class F>
void guarded(bool lied, F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    FUZZ_CHECK(lied && e.code() == picoring::errc::corrupt_shared_state);
  } catch (const std::invalid_argument&) {
  } catch (const std::length_error&) {
  } catch (const std::out_of_range&) {
    FUZZ_CHECK(lied);
  }
}

// The peer rewrites its counter, or the other side's, with any value. Returns true: it lied.
bool rewrite_a_counter(FuzzedDataProvider& in, picoring::detail::SharedHeader& header) {
  const auto value = in.ConsumeIntegral<std::uint64_t>();
  (in.ConsumeBool() ? header.tail : header.head).store(value);
  return true;
}

// Batching on both ends as the input says, waits of at most a microsecond: the second look at a
// lying peer's counter must be checked as the first is.
template <class W, class R>
void batch_both(FuzzedDataProvider& in, W& w, R& r) {
  const picoring::Batching b{in.ConsumeIntegralInRange<std::size_t>(0, 64),
                             std::chrono::nanoseconds(in.ConsumeIntegralInRange<int>(0, 1000))};
  w.set_batching(b);
  r.set_batching(b);
}

// The byte stream: a std::deque<char> model until the peer lies; writable() and readable() must
// stay inside the mappings whatever the counters say.
void fuzz_stream(FuzzedDataProvider& in) {
  auto w = picoring::SharedStreamWriter::create(in.ConsumeIntegralInRange<std::size_t>(1, 3 * 4096));
  auto r = picoring::SharedStreamReader::attach(w.fd());
  batch_both(in, w, r);
  const std::size_t cap = w.capacity();
  const std::size_t page = picoring::allocation_granularity();
  void* raw = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd(), 0);
  FUZZ_CHECK(raw != MAP_FAILED);
  auto* header = static_cast<picoring::detail::SharedHeader*>(raw);
  // Each side's mapping starts where its first window starts (both empty: offset 0).
  const Bounds wb{w.writable().data(), 2 * cap};
  const Bounds rb{wb.base == nullptr ? nullptr : r.readable().data(), 2 * cap};
  std::deque<char> model;
  bool lied = false;
  char next = 'a';
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
        guarded(lied, [&] {
          const auto out = w.writable();
          wb.check(out);
          if (!lied) FUZZ_CHECK(out.size() == cap - model.size());
          const auto k = in.ConsumeIntegralInRange<std::size_t>(0, out.size());
          for (std::size_t i = 0; i < k; ++i) {
            out[i] = static_cast<std::byte>(next);
            if (!lied) model.push_back(next);
            next = next == 'z' ? 'a' : static_cast<char>(next + 1);
          }
          w.commit(k);
        });
        break;
      case 1:
        guarded(lied, [&] {
          const auto in_view = r.readable();
          rb.check(in_view);
          static_cast<void>(touch(in_view));
          if (!lied) {
            FUZZ_CHECK(in_view.size() == model.size());
            FUZZ_CHECK(std::equal(model.begin(), model.end(), reinterpret_cast<const char*>(in_view.data())));
          }
          const auto k = in.ConsumeIntegralInRange<std::size_t>(0, in_view.size());
          r.release(k);
          if (!lied) model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
        });
        break;
      case 2:
        guarded(lied, [&] {
          std::string out(in.ConsumeIntegralInRange<std::size_t>(0, cap + 8), '\0');
          const std::size_t n = r.read(std::as_writable_bytes(std::span(out)));
          if (!lied) {
            FUZZ_CHECK(n == std::min(out.size(), model.size()));
            FUZZ_CHECK(std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), model.begin()));
            model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
          }
        });
        break;
      case 3:
        guarded(lied, [&] {
          const std::string text(in.ConsumeIntegralInRange<std::size_t>(0, cap + 8), next);
          const std::size_t n = w.write(std::as_bytes(std::span(text)));
          if (!lied) {
            FUZZ_CHECK(n == std::min(text.size(), cap - model.size()));
            model.insert(model.end(), text.begin(), text.begin() + static_cast<std::ptrdiff_t>(n));
          }
        });
        break;
      default:
        lied = rewrite_a_counter(in, *header);
        break;
    }
  }
  ::munmap(raw, page);
}

// The queue of 24-byte slots (a size that divides no page): a std::deque model until the peer
// lies; every window must stay inside the mapping and start on a slot's boundary.
struct Slot {
  std::uint64_t a, b, c;
};
void fuzz_slots(FuzzedDataProvider& in) {
  auto w = picoring::SharedQueueWriter<Slot>::create(in.ConsumeIntegralInRange<std::size_t>(1, 1000));
  auto r = picoring::SharedQueueReader<Slot>::attach(w.fd());
  batch_both(in, w, r);
  const std::size_t cap = w.capacity();
  FUZZ_CHECK(cap * sizeof(Slot) % picoring::allocation_granularity() == 0);
  const std::size_t page = picoring::allocation_granularity();
  void* raw = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd(), 0);
  FUZZ_CHECK(raw != MAP_FAILED);
  auto* header = static_cast<picoring::detail::SharedHeader*>(raw);
  const auto* wbase = reinterpret_cast<const std::byte*>(w.writable().data());
  const auto* rbase = reinterpret_cast<const std::byte*>(r.readable().data());
  const Bounds wb{wbase, 2 * cap * sizeof(Slot)};
  const Bounds rb{rbase, 2 * cap * sizeof(Slot)};
  const auto check = [](const Bounds& b, auto span) {
    const auto bytes = std::as_bytes(span);
    b.check(bytes);
    if (!bytes.empty()) FUZZ_CHECK(static_cast<std::size_t>(bytes.data() - b.base) % sizeof(Slot) == 0);
  };
  std::deque<std::uint64_t> model;
  bool lied = false;
  std::uint64_t next = 0;
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
        guarded(lied, [&] {
          const auto out = w.writable();
          check(wb, out);
          if (!lied) FUZZ_CHECK(out.size() == cap - model.size());
          const auto k = in.ConsumeIntegralInRange<std::size_t>(0, out.size() + 1);  // one too many at times
          if (k > out.size()) {
            bool refused = false;
            try {
              w.commit(k);
            } catch (const std::out_of_range&) {
              refused = true;
            }
            FUZZ_CHECK(refused || lied);
            return;
          }
          for (std::size_t i = 0; i < k; ++i) out[i] = {next + i, ~(next + i), 24};
          w.commit(k);
          for (std::size_t i = 0; i < k && !lied; ++i) model.push_back(next + i);
          next += k;
        });
        break;
      case 1: {
        std::vector<Slot> batch(in.ConsumeIntegralInRange<std::size_t>(0, cap + 2));
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = {next + i, ~(next + i), 24};
        guarded(lied, [&] {
          const std::size_t n = w.push_slice(batch);
          if (!lied) {
            FUZZ_CHECK(n == std::min(batch.size(), cap - model.size()));
            for (std::size_t i = 0; i < n; ++i) model.push_back(next + i);
          }
          next += n;
        });
        break;
      }
      case 2:
        guarded(lied, [&] {
          const auto view = r.readable();
          check(rb, view);
          static_cast<void>(touch(std::as_bytes(view)));
          if (!lied) {
            FUZZ_CHECK(view.size() == model.size());
            for (std::size_t i = 0; i < view.size(); ++i)
              FUZZ_CHECK(view[i].a == model[i] && view[i].b == ~model[i] && view[i].c == 24);
          }
          const auto k = in.ConsumeIntegralInRange<std::size_t>(0, view.size() + 1);
          if (k > view.size()) {
            bool refused = false;
            try {
              r.release(k);
            } catch (const std::out_of_range&) {
              refused = true;
            }
            FUZZ_CHECK(refused || lied);
            return;
          }
          r.release(k);
          if (!lied) model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
        });
        break;
      case 3:
        guarded(lied, [&] {
          Slot got{};
          const bool ok = r.try_pop(got);
          if (!lied) {
            FUZZ_CHECK(ok == !model.empty());
            if (ok) {
              FUZZ_CHECK(got.a == model.front() && got.b == ~model.front());
              model.pop_front();
            }
          }
        });
        break;
      default:
        lied = rewrite_a_counter(in, *header);
        break;
    }
  }
  ::munmap(raw, page);
}

// The same queue with a slot size the input picks at run time (1 to 40 bytes: most divide no
// page): SharedSlotWriter / SharedSlotReader, their spans of bytes whole slots on slot
// boundaries inside the mappings, a deque model until the peer lies; parts of slots refused.
void fuzz_run_time_slots(FuzzedDataProvider& in) {
  const std::size_t size = in.ConsumeIntegralInRange<std::size_t>(1, 40);
  auto w = picoring::SharedSlotWriter::create(in.ConsumeIntegralInRange<std::size_t>(1, 1000), size);
  auto r = picoring::SharedSlotReader::attach(w.fd(), size);
  const std::size_t cap = w.capacity();
  FUZZ_CHECK(cap * size % picoring::allocation_granularity() == 0);
  const std::size_t page = picoring::allocation_granularity();
  void* raw = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd(), 0);
  FUZZ_CHECK(raw != MAP_FAILED);
  auto* header = static_cast<picoring::detail::SharedHeader*>(raw);
  const Bounds wb{w.writable().data(), 2 * cap * size};
  const Bounds rb{r.readable().data(), 2 * cap * size};
  const auto check = [size](const Bounds& b, std::span<const std::byte> bytes) {
    b.check(bytes);
    FUZZ_CHECK(bytes.size() % size == 0);
    if (!bytes.empty()) FUZZ_CHECK(static_cast<std::size_t>(bytes.data() - b.base) % size == 0);
  };
  // Slot `seq`'s bytes.
  const auto fill = [size](std::span<std::byte> slot, std::uint64_t seq) {
    for (std::size_t i = 0; i < size; ++i) slot[i] = static_cast<std::byte>((seq + i) & 0xFF);
  };
  const auto is = [size](std::span<const std::byte> slot, std::uint64_t seq) {
    for (std::size_t i = 0; i < size; ++i) {
      if (slot[i] != static_cast<std::byte>((seq + i) & 0xFF)) return false;
    }
    return true;
  };
  std::deque<std::uint64_t> model;
  bool lied = false;
  std::uint64_t next = 0;
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
        guarded(lied, [&] {
          const auto out = w.writable();
          check(wb, out);
          if (!lied) FUZZ_CHECK(out.size() == (cap - model.size()) * size);
          const std::size_t k = std::min(in.ConsumeIntegralInRange<std::size_t>(0, 64), out.size() / size);
          for (std::size_t i = 0; i < k; ++i) fill(out.subspan(i * size, size), next + i);
          w.commit(k);
          for (std::size_t i = 0; i < k && !lied; ++i) model.push_back(next + i);
          next += k;
        });
        break;
      case 1: {
        // Whole slots, or (at times) one byte more: refused with nothing pushed.
        const std::size_t slots = in.ConsumeIntegralInRange<std::size_t>(0, 64);
        std::vector<std::byte> batch(slots * size + (size > 1 && in.ConsumeBool() ? 1 : 0));
        for (std::size_t i = 0; i < slots; ++i) fill(std::span(batch).subspan(i * size, size), next + i);
        guarded(lied, [&] {
          const std::size_t n = w.push_slice(batch);
          FUZZ_CHECK(batch.size() % size == 0);  // a part of a slot must have thrown
          if (!lied) {
            FUZZ_CHECK(n == std::min(slots, cap - model.size()));
            for (std::size_t i = 0; i < n; ++i) model.push_back(next + i);
          }
          next += n;
        });
        break;
      }
      case 2:
        guarded(lied, [&] {
          const auto view = r.readable();
          check(rb, view);
          static_cast<void>(touch(view));
          if (!lied) {
            FUZZ_CHECK(view.size() == model.size() * size);
            for (std::size_t i = 0; i < model.size(); ++i) FUZZ_CHECK(is(view.subspan(i * size, size), model[i]));
          }
          const std::size_t k = std::min(in.ConsumeIntegralInRange<std::size_t>(0, 64), view.size() / size);
          r.release(k);
          if (!lied) model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
        });
        break;
      case 3:
        guarded(lied, [&] {
          std::vector<std::byte> got(size);
          const bool ok = r.try_pop(got);
          if (!lied) {
            FUZZ_CHECK(ok == !model.empty());
            if (ok) {
              FUZZ_CHECK(is(got, model.front()));
              model.pop_front();
            }
          }
        });
        break;
      default:
        lied = rewrite_a_counter(in, *header);
        break;
    }
  }
  ::munmap(raw, page);
}

// The fan-in over three record lanes, each with its own lying peer: every span the fan-in hands
// out must lie inside one lane's mapping; a lane that never lied must give its records exactly
// and in order, whatever the others do; a corrupt lane may be dropped (the call throws
// errc::corrupt_shared_state), and nothing else may happen to it.
void fuzz_fanin(FuzzedDataProvider& in) {
  constexpr std::size_t kLanes = 3;
  struct Lane {
    std::optional<picoring::SharedRecordWriter> w;
    void* raw = nullptr;
    std::size_t mapped = 0;
    Bounds bounds;
    std::deque<std::string> model;
    bool lied = false;
    std::uint64_t id = 0;
  };
  const std::size_t page = picoring::allocation_granularity();
  picoring::SharedRecordFanIn fan;
  std::array<Lane, kLanes> lanes;
  for (Lane& lane : lanes) {
    lane.w.emplace(picoring::SharedRecordWriter::create(in.ConsumeIntegralInRange<std::size_t>(1, 2 * 4096)));
    auto r = picoring::SharedRecordReader::attach(lane.w->fd());
    const std::size_t cap = lane.w->capacity();
    lane.mapped = page + cap;
    lane.raw = ::mmap(nullptr, lane.mapped, PROT_READ | PROT_WRITE, MAP_SHARED, lane.w->fd(), 0);
    FUZZ_CHECK(lane.raw != MAP_FAILED);
    FUZZ_CHECK(lane.w->push(std::as_bytes(std::span("x", 1))));  // shows where the reader's mapping is
    lane.bounds = {r.front().data() - 8, 2 * cap};
    r.pop();
    lane.id = fan.add(std::move(r));
  }
  bool any_lied = false;
  std::uint64_t seq = 0;
  // The lane whose mapping holds `rec`: every span must be in one, and `id` must be its id.
  const auto take = [&](std::span<const std::byte> rec, std::uint64_t id) {
    Lane* owner = nullptr;
    for (Lane& lane : lanes) {
      if (!rec.empty() && rec.data() >= lane.bounds.base && rec.data() < lane.bounds.base + lane.bounds.size)
        owner = &lane;
    }
    FUZZ_CHECK(owner != nullptr && owner->id == id);
    owner->bounds.check(rec);
    static_cast<void>(touch(rec));
    if (owner->lied) return;
    FUZZ_CHECK(!owner->model.empty());
    FUZZ_CHECK(std::string(reinterpret_cast<const char*>(rec.data()), rec.size()) == owner->model.front());
    owner->model.pop_front();
  };
  const auto fan_guarded = [&](auto&& f) {
    const std::size_t before = fan.lanes();
    try {
      f();
    } catch (const std::system_error& e) {
      FUZZ_CHECK(any_lied && e.code() == picoring::errc::corrupt_shared_state);
      FUZZ_CHECK(fan.lanes() < before);  // that lane is dropped (and maybe an ended one on the way)
    }
  };
  while (in.remaining_bytes() > 0) {
    Lane& lane = lanes[in.ConsumeIntegralInRange<std::size_t>(0, kLanes - 1)];
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
      case 1: {
        if (!lane.w) break;
        const std::string rec(in.ConsumeIntegralInRange<std::size_t>(1, 200), static_cast<char>('a' + seq++ % 26));
        guarded(lane.lied, [&] {
          if (lane.w->push(std::as_bytes(std::span(rec))) && !lane.lied) lane.model.push_back(rec);
        });
        break;
      }
      case 2:
        fan_guarded([&] {
          const auto rec = fan.front();
          if (rec.empty()) {
            for (const Lane& l : lanes) FUZZ_CHECK(l.lied || l.model.empty());
            return;
          }
          take(rec, fan.front_lane());
          fan.pop();
        });
        break;
      case 3:
        fan_guarded([&] { fan.drain(take, in.ConsumeIntegralInRange<std::size_t>(0, 8)); });
        break;
      case 4:
        fan_guarded([&] {
          const auto st = fan.wait(std::chrono::nanoseconds(0));
          bool pending = false;
          for (const Lane& l : lanes) pending = pending || (!l.lied && !l.model.empty());
          if (pending) FUZZ_CHECK(st == picoring::QueueStatus::ok);
        });
        break;
      case 5:
        lane.w.reset();  // the writer goes: the lane ends, its records stay readable
        break;
      case 6:
        lane.lied = any_lied = rewrite_a_counter(in, *static_cast<picoring::detail::SharedHeader*>(lane.raw));
        break;
      default: {  // the peer rewrites bytes of the lane's data (a record's length, most often)
        const std::size_t cap = lane.mapped - page;
        const auto at = in.ConsumeIntegralInRange<std::size_t>(0, cap - 4);
        const auto value = in.ConsumeIntegral<std::uint32_t>();
        std::memcpy(static_cast<std::byte*>(lane.raw) + page + (at & ~std::size_t{7}), &value, sizeof value);
        lane.lied = any_lied = true;
        break;
      }
    }
  }
  for (Lane& lane : lanes) ::munmap(lane.raw, lane.mapped);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 1:
      fuzz_stream(in);
      return 0;
    case 2:
      fuzz_slots(in);
      return 0;
    case 3:
      fuzz_fanin(in);
      return 0;
    case 4:
      fuzz_run_time_slots(in);
      return 0;
    default:
      break;
  }
  auto w = picoring::SharedRecordWriter::create(in.ConsumeIntegralInRange<std::size_t>(1, 3 * 4096));
  auto r = picoring::SharedRecordReader::attach(w.fd());
  batch_both(in, w, r);
  const std::size_t cap = w.capacity();
  const std::size_t page = picoring::allocation_granularity();
  // The input's own mapping of the whole memfd: the header page, then the data (once).
  void* raw = ::mmap(nullptr, page + cap, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd(), 0);
  FUZZ_CHECK(raw != MAP_FAILED);
  auto* header = static_cast<picoring::detail::SharedHeader*>(raw);
  auto* peer_data = static_cast<std::byte*>(raw) + page;

  // Where each side's mapping is: a first record shows both.
  Bounds wb, rb;
  {
    auto out = w.reserve(1);
    wb = {out.data() - 8, 2 * cap};
    out[0] = std::byte{1};
    w.commit();
    const auto rec = r.front();
    rb = {rec.data() - 8, 2 * cap};
    r.pop();
  }

  std::deque<std::string> model;
  bool lied = false;
  std::uint64_t seq = 0;
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: {
        const auto len = in.ConsumeIntegralInRange<std::size_t>(0, cap + 16);
        std::string rec(len, static_cast<char>('a' + seq % 26));
        guarded(lied, [&] {
          const auto out = w.reserve(len);
          wb.check(out);
          if (out.empty()) return;
          std::memcpy(out.data(), rec.data(), len);
          w.commit();
          if (!lied) model.push_back(rec);
          ++seq;
        });
        break;
      }
      case 1: {  // push_some: up to three records, one publication; a bad one pushes none
        std::vector<std::string> recs(in.ConsumeIntegralInRange<std::size_t>(0, 3));
        std::vector<std::span<const std::byte>> spans;
        for (auto& rec : recs) {
          rec.assign(in.ConsumeIntegralInRange<std::size_t>(0, cap / 2 + 16), static_cast<char>('a' + seq++ % 26));
          spans.push_back(std::as_bytes(std::span(rec)));
        }
        guarded(lied, [&] {
          const std::size_t n = w.push_some(spans);
          FUZZ_CHECK(n <= recs.size());
          if (!lied) model.insert(model.end(), recs.begin(), recs.begin() + static_cast<std::ptrdiff_t>(n));
        });
        break;
      }
      case 2:
        guarded(lied, [&] {
          const auto rec = r.front();
          rb.check(rec);
          static_cast<void>(touch(rec));
          if (!lied) {
            FUZZ_CHECK(rec.empty() == model.empty());
            if (!rec.empty())
              FUZZ_CHECK(std::string(reinterpret_cast<const char*>(rec.data()), rec.size()) == model.front());
          }
          if (rec.empty()) return;
          r.pop();
          if (!lied) model.pop_front();
        });
        break;
      case 3:
        guarded(lied, [&] {
          r.drain(
              [&](std::span<const std::byte> rec) {
                rb.check(rec);
                static_cast<void>(touch(rec));
                if (!lied) {
                  FUZZ_CHECK(!model.empty() &&
                             std::string(reinterpret_cast<const char*>(rec.data()), rec.size()) == model.front());
                  model.pop_front();
                }
              },
              in.ConsumeIntegralInRange<std::size_t>(0, 8));
        });
        break;
      case 4:
        lied = rewrite_a_counter(in, *header);
        break;
      default: {  // the peer rewrites bytes of the data (a record's length, most often)
        const auto at = in.ConsumeIntegralInRange<std::size_t>(0, cap - 4);
        const auto value = in.ConsumeIntegral<std::uint32_t>();
        std::memcpy(peer_data + (at & ~std::size_t{7}), &value, sizeof value);
        lied = true;
        break;
      }
    }
  }
  ::munmap(raw, page + cap);
  return 0;
}
