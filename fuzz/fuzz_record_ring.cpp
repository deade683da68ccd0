// Differential fuzzing of RecordRing and the SPSC and MPSC record queues (driven from one
// thread, counters started anywhere) against a std::deque<std::string> (for MPSC, a deque of
// claimed places: open, committed or discarded). Lengths run past the limits on purpose:
// every rejected call must throw the documented error and change nothing; every record must
// come back whole, in order, whatever the wrap.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "picoring/record_ring.hpp"

namespace {

using Model = std::deque<std::string>;

std::string text_for(std::uint64_t seq, std::size_t len) {
  std::string s(len, '\0');
  for (std::size_t i = 0; i < len; ++i) s[i] = static_cast<char>((seq * 0x9E3779B97F4A7C15ull + i * 131u) >> 29);
  return s;
}
std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
bool same(std::span<const std::byte> b, const std::string& s) {
  return b.size() == s.size() && std::equal(b.begin(), b.end(), bytes_of(s).begin());
}

// Returns which exception f threw: 0 none, 1 invalid_argument, 2 length_error, 3 out_of_range,
// 4 another logic_error.
template <class F>
int thrown_by(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::invalid_argument&) {
    return 1;
  } catch (const std::length_error&) {
    return 2;
  } catch (const std::out_of_range&) {
    return 3;
  } catch (const std::logic_error&) {
    return 4;
  }
}

// The length of a record the input asks for: sometimes 0 or past the limit, to test rejection.
std::size_t pick_length(FuzzedDataProvider& in, std::size_t max) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
      return 0;
    case 1:
      return max + in.ConsumeIntegralInRange<std::size_t>(1, 16);
    case 2:
      return max - in.ConsumeIntegralInRange<std::size_t>(0, max > 16 ? 16 : max - 1);
    default:
      return in.ConsumeIntegralInRange<std::size_t>(1, max < 300 ? max : 300);
  }
}
int expected_error(std::size_t len, std::size_t max) { return len == 0 ? 1 : len > max ? 2 : 0; }

// A list for push_some: up to five records, their lengths as pick_length gives them (so some are
// bad: the first bad one decides the error, and nothing may be pushed).
std::vector<std::string> pick_list(FuzzedDataProvider& in, std::size_t max, std::uint64_t& seq) {
  std::vector<std::string> texts(in.ConsumeIntegralInRange<std::size_t>(0, 5));
  for (auto& t : texts) {
    const std::size_t len = pick_length(in, max);
    t = len != 0 && len <= max ? text_for(seq++, len) : std::string(len, 'x');
  }
  return texts;
}
int list_error(const std::vector<std::string>& texts, std::size_t max) {
  for (const auto& t : texts) {
    if (const int e = expected_error(t.size(), max); e != 0) return e;
  }
  return 0;
}
std::vector<std::span<const std::byte>> spans_of(const std::vector<std::string>& texts) {
  std::vector<std::span<const std::byte>> out;
  for (const auto& t : texts) out.push_back(bytes_of(t));
  return out;
}
// How many of texts fit in free bytes, from the first: what push_some must push.
std::size_t prefix_fitting(const std::vector<std::string>& texts, std::size_t free) {
  std::size_t n = 0;
  for (; n < texts.size() && picoring::record_footprint(texts[n].size()) <= free; ++n) {
    free -= picoring::record_footprint(texts[n].size());
  }
  return n;
}

void run_ring(FuzzedDataProvider& in) {
  picoring::RecordRing ring(in.ConsumeIntegralInRange<std::size_t>(1, 20000));
  const std::size_t max = ring.max_record_size();
  FUZZ_CHECK(max == ring.capacity() - 8);
  Model model;
  std::size_t used = 0;
  std::uint64_t seq = 0;
  std::size_t open = 0;   // length of the open reservation
  std::string open_text;  // what was written into it
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {  // push, or push_some
        if (in.ConsumeBool()) {
          const auto texts = pick_list(in, max, seq);
          std::size_t n = 0;
          const int err = thrown_by([&] { n = ring.push_some(spans_of(texts)); });
          FUZZ_CHECK(err == (open != 0 ? 4 : list_error(texts, max)));
          if (err != 0) break;
          FUZZ_CHECK(n == prefix_fitting(texts, ring.capacity() - used));  // no reservation is open here
          for (std::size_t i = 0; i < n; ++i) {
            model.push_back(texts[i]);
            used += picoring::record_footprint(texts[i].size());
          }
          break;
        }
        const std::size_t len = pick_length(in, max);
        const std::string text = len <= max ? text_for(seq++, len) : std::string(len, 'x');
        bool ok = false;
        const int err = thrown_by([&] { ok = ring.push(bytes_of(text)); });
        FUZZ_CHECK(err == (open != 0 ? 4 : expected_error(len, max)));
        if (err != 0) break;
        FUZZ_CHECK(ok == (picoring::record_footprint(len) <= ring.capacity() - used));
        if (ok) {
          model.push_back(text);
          used += picoring::record_footprint(len);
        }
        break;
      }
      case 1: {  // reserve
        const std::size_t len = pick_length(in, max);
        std::span<std::byte> out;
        const int err = thrown_by([&] { out = ring.reserve(len); });
        FUZZ_CHECK(err == (open != 0 ? 4 : expected_error(len, max)));
        if (err != 0) break;
        const bool fits = picoring::record_footprint(len) <= ring.capacity() - used;
        FUZZ_CHECK(out.size() == (fits ? len : 0));
        if (fits) {
          const std::string text = text_for(seq++, len);
          std::memcpy(out.data(), text.data(), len);
          open = len;
          open_text = text;
        }
        break;
      }
      case 2: {  // commit, whole or shorter, or with a bad length
        const std::size_t len = in.ConsumeIntegralInRange<std::size_t>(0, open + 2);
        const bool whole = in.ConsumeBool();
        const int err = thrown_by([&] { whole ? ring.commit() : ring.commit(len); });
        const bool valid = open != 0 && (whole || (len != 0 && len <= open));
        FUZZ_CHECK(err == (valid ? 0 : 4));
        if (!valid) break;
        const std::size_t n = whole ? open : len;
        model.push_back(open_text.substr(0, n));
        used += picoring::record_footprint(n);
        open = 0;
        break;
      }
      case 3: {  // discard
        const int err = thrown_by([&] { ring.discard(); });
        FUZZ_CHECK(err == (open != 0 ? 0 : 4));
        open = 0;
        break;
      }
      case 4:
      case 5: {  // front + pop
        if (model.empty()) {
          FUZZ_CHECK(ring.front().empty());
          FUZZ_CHECK(thrown_by([&] { ring.pop(); }) == 3);
          break;
        }
        FUZZ_CHECK(same(ring.front(), model.front()));
        ring.pop();
        used -= picoring::record_footprint(model.front().size());
        model.pop_front();
        break;
      }
      case 6: {  // drain
        const std::size_t limit = in.ConsumeIntegralInRange<std::size_t>(0, 8);
        std::size_t k = 0;
        const std::size_t n = ring.drain([&](std::span<std::byte> rec) { FUZZ_CHECK(same(rec, model[k++])); }, limit);
        FUZZ_CHECK(n == std::min(limit, model.size()));
        for (std::size_t i = 0; i < n; ++i) {
          used -= picoring::record_footprint(model.front().size());
          model.pop_front();
        }
        break;
      }
      default: {  // clear (an open reservation stays open)
        ring.clear();
        model.clear();
        used = 0;
        break;
      }
    }
    FUZZ_CHECK(ring.size() == model.size());
    FUZZ_CHECK(ring.bytes_used() == used);
    FUZZ_CHECK(ring.reserved() == (open != 0));
    FUZZ_CHECK(ring.bytes_free() == ring.capacity() - used - (open != 0 ? picoring::record_footprint(open) : 0));
  }
  for (const auto& s : model) {
    FUZZ_CHECK(same(ring.front(), s));
    ring.pop();
  }
  FUZZ_CHECK(ring.empty());
}

void run_spsc(FuzzedDataProvider& in) {
  picoring::Error err;
  using State = picoring::detail::RecordSpscState;
  State* s = picoring::detail::new_queue_state<State>(in.ConsumeIntegralInRange<std::size_t>(1, 20000), {}, err);
  FUZZ_CHECK(s != nullptr);
  s->start_at(in.ConsumeIntegral<std::size_t>() & ~std::size_t{7});
  auto handles = picoring::detail::QueueAccess::handles<picoring::RecordProducer, picoring::RecordConsumer>(s);
  auto& p = handles.first;
  auto& c = handles.second;
  const std::size_t max = p.max_record_size();
  Model model;
  std::size_t used = 0;
  std::uint64_t seq = 0;
  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 5);
    if (op == 4) {  // batching on either end: tiny waits, never more than a microsecond
      const picoring::Batching b{in.ConsumeIntegralInRange<std::size_t>(0, 4096),
                                 std::chrono::nanoseconds(in.ConsumeIntegralInRange<int>(0, 1000))};
      (in.ConsumeBool() ? p.set_batching(b) : c.set_batching(b));
    } else if (op == 5) {  // with a reservation open, push and reserve are refused and change nothing
      const std::size_t len = in.ConsumeIntegralInRange<std::size_t>(1, max < 300 ? max : 300);
      const auto out = p.reserve(len);
      FUZZ_CHECK(out.empty() == (picoring::record_footprint(len) > p.capacity() - used));
      if (!out.empty()) {
        const std::string text = text_for(seq, len);
        FUZZ_CHECK(thrown_by([&] { (void)p.push(bytes_of(text)); }) == 4);
        FUZZ_CHECK(thrown_by([&] { (void)p.reserve(len); }) == 4);
        FUZZ_CHECK(p.reserved());
        p.discard();
      }
      FUZZ_CHECK(!p.reserved());
    } else if (op == 0 && in.ConsumeBool()) {  // push_some
      const auto texts = pick_list(in, max, seq);
      std::size_t n = 0;
      const int e = thrown_by([&] { n = p.push_some(spans_of(texts)); });
      FUZZ_CHECK(e == list_error(texts, max));
      if (e != 0) continue;
      FUZZ_CHECK(n == prefix_fitting(texts, p.capacity() - used));
      for (std::size_t i = 0; i < n; ++i) {
        model.push_back(texts[i]);
        used += picoring::record_footprint(texts[i].size());
      }
    } else if (op == 0 || op == 1) {
      const std::size_t len = pick_length(in, max);
      const std::string text = len <= max ? text_for(seq++, len) : std::string(len, 'x');
      const bool fits = picoring::record_footprint(len) <= p.capacity() - used;
      bool ok = false;
      int e = 0;
      if (op == 0) {
        e = thrown_by([&] { ok = p.push(bytes_of(text)); });
      } else {
        std::span<std::byte> out;
        e = thrown_by([&] { out = p.reserve(len != 0 && len + 1 <= max ? len + 1 : len); });
        if (e == 0 && !out.empty()) {
          std::memcpy(out.data(), text.data(), len);
          p.commit(len);
          ok = true;
        }
      }
      FUZZ_CHECK(e == expected_error(len, max));
      if (e != 0) continue;
      if (op == 0) FUZZ_CHECK(ok == fits);
      if (ok) {
        model.push_back(text);
        used += picoring::record_footprint(len);
      }
    } else if (op == 2) {
      if (model.empty()) {
        FUZZ_CHECK(c.front().empty());
        FUZZ_CHECK(thrown_by([&] { c.pop(); }) == 3);
        continue;
      }
      FUZZ_CHECK(same(c.front(), model.front()));
      c.pop();
      used -= picoring::record_footprint(model.front().size());
      model.pop_front();
    } else {
      std::size_t k = 0;
      const std::size_t n = c.drain([&](std::span<std::byte> rec) { FUZZ_CHECK(same(rec, model[k++])); });
      FUZZ_CHECK(n == model.size());
      model.clear();
      used = 0;
    }
    FUZZ_CHECK(p.bytes_free() == p.capacity() - used);
  }
}

// Several producer handles with overlapping reservations, committed (whole or short), discarded
// or abandoned in any order: the consumer sees the committed records in claim order, skips the
// rest, and each producer finds room exactly when the claimed places leave it.
void run_mpsc(FuzzedDataProvider& in) {
  picoring::Error err;
  using State = picoring::detail::RecordMpscState;
  State* s = picoring::detail::new_queue_state<State>(in.ConsumeIntegralInRange<std::size_t>(1, 20000), {}, err);
  FUZZ_CHECK(s != nullptr);
  s->start_at(in.ConsumeIntegral<std::uint64_t>() & ~std::uint64_t{7});
  auto handles = picoring::detail::QueueAccess::handles<picoring::RecordMpscProducer, picoring::RecordMpscConsumer>(s);
  auto& c = handles.second;
  std::vector<picoring::RecordMpscProducer> producers(in.ConsumeIntegralInRange<std::size_t>(1, 4), handles.first);
  const std::size_t cap = c.capacity();
  const std::size_t max = producers[0].max_record_size();
  struct Place {
    int state;  // 0 open, 1 committed, 2 discarded
    std::size_t footprint;
    std::string text;
  };
  std::deque<Place> places;
  std::uint64_t dropped = 0;                             // places popped from the front so far
  std::vector<std::uint64_t> open(producers.size(), 0);  // the producer's open place + 1, 0: none
  std::uint64_t seq = 0;
  auto used = [&] {
    std::size_t u = 0;
    for (const auto& pl : places) u += pl.footprint;
    return u;
  };
  auto place_of = [&](std::size_t who) -> Place& { return places[static_cast<std::size_t>(open[who] - 1 - dropped)]; };
  auto pop_front = [&] {
    places.pop_front();
    ++dropped;
  };
  while (in.remaining_bytes() > 0) {
    const std::size_t who = in.ConsumeIntegralInRange<std::size_t>(0, producers.size() - 1);
    auto& p = producers[who];
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0:
      case 1: {  // reserve or push, or push_some
        if (in.ConsumeIntegralInRange<int>(0, 2) == 0) {
          const auto texts = pick_list(in, max, seq);
          std::size_t n = 0;
          const int e = thrown_by([&] { n = p.push_some(spans_of(texts)); });
          FUZZ_CHECK(e == (open[who] != 0 ? 4 : list_error(texts, max)));
          if (e != 0) break;
          FUZZ_CHECK(n == prefix_fitting(texts, cap - used()));
          for (std::size_t i = 0; i < n; ++i)
            places.push_back({1, picoring::record_footprint(texts[i].size()), texts[i]});
          break;
        }
        const bool push = in.ConsumeBool();
        const std::size_t len = pick_length(in, max);
        const std::string text = len <= max ? text_for(seq++, len) : std::string(len, 'x');
        const bool fits = picoring::record_footprint(len) <= cap - used();
        std::span<std::byte> out;
        bool ok = false;
        const int e = thrown_by([&] { push ? (ok = p.push(bytes_of(text))) : !(out = p.reserve(len)).empty(); });
        FUZZ_CHECK(e == (open[who] != 0 ? 4 : expected_error(len, max)));
        if (e != 0) break;
        FUZZ_CHECK((push ? ok : !out.empty()) == fits);
        if (!fits) break;
        if (!push) std::memcpy(out.data(), text.data(), len);
        places.push_back({push ? 1 : 0, picoring::record_footprint(len), text});
        if (!push) open[who] = dropped + places.size();
        break;
      }
      case 2: {  // commit, whole, shorter or with a bad length
        const std::size_t reserved = open[who] != 0 ? place_of(who).text.size() : 0;
        const std::size_t len = in.ConsumeIntegralInRange<std::size_t>(0, reserved + 2);
        const bool whole = in.ConsumeBool();
        const int e = thrown_by([&] { whole ? p.commit() : p.commit(len); });
        const bool valid = reserved != 0 && (whole || (len != 0 && len <= reserved));
        FUZZ_CHECK(e == (valid ? 0 : 4));
        if (!valid) break;
        place_of(who).state = 1;
        if (!whole) place_of(who).text.resize(len);
        open[who] = 0;
        break;
      }
      case 3: {  // discard, or the handle replaced (an open reservation is then discarded)
        const bool replace = in.ConsumeBool();
        const int e = thrown_by([&] { replace ? void(p = picoring::RecordMpscProducer(producers[0])) : p.discard(); });
        FUZZ_CHECK(e == (replace || open[who] != 0 ? 0 : 4));
        if (open[who] != 0) place_of(who).state = 2;
        open[who] = 0;
        break;
      }
      case 4:
      case 5: {  // front + pop
        while (!places.empty() && places.front().state == 2) pop_front();
        if (places.empty() || places.front().state == 0) {
          FUZZ_CHECK(c.front().empty());
          FUZZ_CHECK(thrown_by([&] { c.pop(); }) == 3);
          break;
        }
        FUZZ_CHECK(same(c.front(), places.front().text));
        c.pop();
        pop_front();
        break;
      }
      default: {  // drain up to a limit
        const std::size_t limit = in.ConsumeIntegralInRange<std::size_t>(0, 8);
        std::vector<std::string> want;
        while (!places.empty() && places.front().state != 0 && want.size() < limit) {
          if (places.front().state == 1) want.push_back(places.front().text);
          pop_front();
        }
        std::size_t k = 0;
        const std::size_t n = c.drain(
            [&](std::span<std::byte> rec) {
              FUZZ_CHECK(k < want.size() && same(rec, want[k]));
              ++k;
            },
            limit);
        FUZZ_CHECK(n == want.size() && k == n);
        break;
      }
    }
    for (std::size_t i = 0; i < producers.size(); ++i) FUZZ_CHECK(producers[i].reserved() == (open[i] != 0));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      run_ring(in);
      break;
    case 1:
      run_spsc(in);
      break;
    default:
      run_mpsc(in);
      break;
  }
  return 0;
}
