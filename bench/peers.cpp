// Google Benchmark suite: picoring against the classic ring, memcpy and real peers
// (boost::circular_buffer, JACK's jack_ringbuffer), each built only when present. Every
// read/write window crosses the end of its ring; every buffer is touched before timing.
//
//   build/release/bench/picoring_gbench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "bench_util.hpp"
#include "classic_ring.hpp"
#include "picoring/picoring.hpp"

#if PICORING_HAVE_BOOST
#include <boost/circular_buffer.hpp>
#endif
#if PICORING_HAVE_JACK
#include <jack/ringbuffer.h>
#endif

namespace {

using picoring_bench::checksum;
using picoring_bench::ClassicRing;

std::vector<std::byte> make_source(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i * 131 + 7);
  return v;
}

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {8, 64, 4096, 65536, 1 << 20, 10 << 20}) b->Arg(s);
}

std::size_t size_of(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }
void set_bytes(benchmark::State& state, std::size_t per_iteration) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}

// --- picoring ---------------------------------------------------------------------------------

struct Pico {
  picoring::PicoRing<std::byte> ring;
  std::size_t start;
  explicit Pico(std::size_t size) : ring(2 * size), start(ring.capacity() - (size + 1) / 2) {
    std::memset(ring.writable_slice().data(), 1, ring.capacity());
  }
  void place() {
    ring.clear();
    ring.commit(start);
    ring.release(start);
  }
};

void BM_Write_Picoring(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Pico p(src.size());
  for (auto _ : state) {
    p.place();
    p.ring.push_slice(src);
    benchmark::ClobberMemory();
  }
  set_bytes(state, src.size());
}

void BM_ReadWrapped_Picoring(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Pico p(src.size());
  p.place();
  p.ring.push_slice(src);
  for (auto _ : state) benchmark::DoNotOptimize(checksum(p.ring.readable_slice()));
  set_bytes(state, src.size());
}

void BM_Cycle_Picoring(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Pico p(src.size());
  for (auto _ : state) {
    p.place();
    p.ring.push_slice(src);
    benchmark::DoNotOptimize(checksum(p.ring.readable_slice()));
    p.ring.release(src.size());
  }
  set_bytes(state, src.size());
}

// --- classic ring ----------------------------------------------------------------------------

struct Classic {
  ClassicRing ring;
  std::vector<std::byte> scratch;
  std::size_t start;
  explicit Classic(std::size_t size)
      : ring(picoring::PicoRing<std::byte>(2 * size).capacity()),  // same capacity as picoring
        scratch(size, std::byte{1}),
        start(ring.capacity() - (size + 1) / 2) {
    std::memset(ring.raw(), 1, ring.capacity());
  }
  void place() {
    ring.clear();
    ring.commit(start);
    ring.release(start);
  }
};

void BM_Write_Classic(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Classic c(src.size());
  for (auto _ : state) {
    c.place();
    c.ring.write(src);
    benchmark::ClobberMemory();
  }
  set_bytes(state, src.size());
}

void BM_ReadWrapped_Classic(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Classic c(src.size());
  c.place();
  c.ring.write(src);
  for (auto _ : state) benchmark::DoNotOptimize(checksum(c.ring.window(c.scratch)));
  set_bytes(state, src.size());
}

void BM_Cycle_Classic(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Classic c(src.size());
  for (auto _ : state) {
    c.place();
    c.ring.write(src);
    benchmark::DoNotOptimize(checksum(c.ring.window(c.scratch)));
    c.ring.release(src.size());
  }
  set_bytes(state, src.size());
}

// --- memcpy: the floor -------------------------------------------------------------------------

void BM_Write_Memcpy(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  std::vector<std::byte> dst(src.size(), std::byte{1});
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  set_bytes(state, src.size());
}

void BM_ReadWrapped_Contiguous(benchmark::State& state) {
  // Checksumming the same bytes in plain memory: what reading any window costs at best.
  const auto src = make_source(size_of(state));
  for (auto _ : state) benchmark::DoNotOptimize(checksum(src));
  set_bytes(state, src.size());
}

#if PICORING_HAVE_BOOST
// boost::circular_buffer: array_one()/array_two() give the two parts; a consumer that needs
// one contiguous window copies them into a reused buffer (linearize() would rotate the whole
// buffer in place, which is slower still and changes it).
struct Boost {
  boost::circular_buffer<std::byte> cb;
  std::vector<std::byte> scratch;
  std::size_t start;
  explicit Boost(std::size_t size)
      : cb(picoring::PicoRing<std::byte>(2 * size).capacity()),
        scratch(size, std::byte{1}),
        start(cb.capacity() - (size + 1) / 2) {}
  void place() {
    cb.clear();
    // Moves the internal start to `start` (clear() keeps it where it was).
    for (std::size_t i = 0; i < start; ++i) cb.push_back(std::byte{0});
    cb.erase_begin(start);
  }
};

// boost has no cheap way to put its start at a chosen place, so this one writes and consumes
// like a stream: its positions walk through the ring and not every write crosses the end.
void BM_WriteConsume_Boost(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Boost b(src.size());
  b.place();
  for (auto _ : state) {
    b.cb.insert(b.cb.end(), src.begin(), src.end());
    benchmark::ClobberMemory();
    b.cb.erase_begin(src.size());
  }
  set_bytes(state, src.size());
}

void BM_ReadWrapped_Boost(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Boost b(src.size());
  b.place();
  b.cb.insert(b.cb.end(), src.begin(), src.end());
  for (auto _ : state) {
    const auto one = b.cb.array_one();
    const auto two = b.cb.array_two();
    std::memcpy(b.scratch.data(), one.first, one.second);
    std::memcpy(b.scratch.data() + one.second, two.first, two.second);
    benchmark::DoNotOptimize(checksum(std::span(b.scratch.data(), one.second + two.second)));
  }
  set_bytes(state, src.size());
}
BENCHMARK(BM_WriteConsume_Boost)->Apply(sizes);
BENCHMARK(BM_ReadWrapped_Boost)->Apply(sizes);
#endif

#if PICORING_HAVE_JACK
// JACK's ring (the standard audio ring): power-of-two size (so its capacity differs from the
// others at small sizes), one byte kept free, read and write vectors for in-place access; a
// contiguous wrapped window needs a copy. Its indices are atomics shared by two threads.
struct Jack {
  jack_ringbuffer_t* rb;
  std::vector<std::byte> scratch;
  std::size_t start;
  explicit Jack(std::size_t size) : rb(jack_ringbuffer_create(2 * size + 1)), scratch(size, std::byte{1}) {
    std::memset(rb->buf, 1, rb->size);
    start = rb->size - (size + 1) / 2;
  }
  ~Jack() { jack_ringbuffer_free(rb); }
  Jack(const Jack&) = delete;
  Jack& operator=(const Jack&) = delete;
  void place() {
    jack_ringbuffer_reset(rb);
    jack_ringbuffer_write_advance(rb, start);
    jack_ringbuffer_read_advance(rb, start);
  }
};

void BM_Write_Jack(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Jack j(src.size());
  for (auto _ : state) {
    j.place();
    jack_ringbuffer_write(j.rb, reinterpret_cast<const char*>(src.data()), src.size());
    benchmark::ClobberMemory();
  }
  set_bytes(state, src.size());
}

void BM_ReadWrapped_Jack(benchmark::State& state) {
  const auto src = make_source(size_of(state));
  Jack j(src.size());
  j.place();
  jack_ringbuffer_write(j.rb, reinterpret_cast<const char*>(src.data()), src.size());
  for (auto _ : state) {
    jack_ringbuffer_data_t vec[2];
    jack_ringbuffer_get_read_vector(j.rb, vec);
    std::memcpy(j.scratch.data(), vec[0].buf, vec[0].len);
    std::memcpy(j.scratch.data() + vec[0].len, vec[1].buf, vec[1].len);
    benchmark::DoNotOptimize(checksum(std::span(j.scratch.data(), vec[0].len + vec[1].len)));
  }
  set_bytes(state, src.size());
}
BENCHMARK(BM_Write_Jack)->Apply(sizes);
BENCHMARK(BM_ReadWrapped_Jack)->Apply(sizes);
#endif

// --- creation and first touch -------------------------------------------------------------------

void create_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {64 << 10, 1 << 20, 64 << 20}) b->Arg(s);
}

void BM_Create_Mirrored(benchmark::State& state) {
  for (auto _ : state) {
    picoring::MirrorBuffer m(size_of(state));
    benchmark::DoNotOptimize(m.data());
  }
}
void BM_Create_Plain(benchmark::State& state) {
  // Uninitialised, like the mirror: no page is touched.
  for (auto _ : state) {
    auto p = std::make_unique_for_overwrite<std::byte[]>(size_of(state));
    benchmark::DoNotOptimize(p.get());
  }
}
void BM_CreateAndTouch_Mirrored(benchmark::State& state) {
  for (auto _ : state) {
    picoring::MirrorBuffer m(size_of(state));
    std::memset(m.data(), 1, m.size());
    benchmark::ClobberMemory();
  }
  set_bytes(state, size_of(state));
}
void BM_CreateAndTouch_Plain(benchmark::State& state) {
  for (auto _ : state) {
    auto p = std::make_unique_for_overwrite<std::byte[]>(size_of(state));
    std::memset(p.get(), 1, size_of(state));
    benchmark::ClobberMemory();
  }
  set_bytes(state, size_of(state));
}

// The same, with the ring made resident at creation (arg 1: 0 populate, 1 lock_if_allowed,
// 2 explicit 2 MiB pages + populate, falling back to base pages when none are reserved; the
// label says what was used).
void BM_CreateAndTouch_Resident(benchmark::State& state) {
  picoring::MirrorOptions o;
  o.residency = state.range(1) == 1 ? picoring::Residency::lock_if_allowed : picoring::Residency::populate;
  if (state.range(1) == 2) {
    o.huge_pages = picoring::HugePages::explicit_2mb;
    o.huge_pages_fallback = true;
  }
  std::size_t page = 0;
  bool locked = false;
  for (auto _ : state) {
    picoring::MirrorBuffer m(size_of(state), o);
    std::memset(m.data(), 1, m.size());
    benchmark::ClobberMemory();
    page = m.page_size();
    locked = m.locked();
  }
  state.SetLabel(std::string(locked ? "locked, " : "") + std::to_string(page >> 10) + " KiB pages");
  set_bytes(state, size_of(state));
}
void resident_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t s : {std::int64_t{1} << 20, std::int64_t{64} << 20})
    for (std::int64_t how : {0, 1, 2}) b->Args({s, how});
}

// What a server pays per connection for its ring: a new byte stream, or one taken from a
// RingPool and given back (a clear()); both write and read 64 bytes so the ring is used.
template <bool Pooled>
void BM_ConnectionRing(benchmark::State& state) {
  picoring::RingPool<picoring::PicoByteStream> pool(size_of(state), {}, 1);
  if (Pooled) pool.prefill(1);
  std::array<std::byte, 64> msg{};
  for (auto _ : state) {
    auto ring = Pooled ? pool.take() : picoring::PicoByteStream(size_of(state));
    benchmark::DoNotOptimize(ring.write(msg));
    benchmark::DoNotOptimize(ring.read(msg));
    if (Pooled) pool.give(std::move(ring));
  }
  state.SetLabel(pool.created() <= 1 ? "" : "pool made rings in the loop");
}

BENCHMARK(BM_Write_Picoring)->Apply(sizes);
BENCHMARK(BM_Write_Classic)->Apply(sizes);
BENCHMARK(BM_Write_Memcpy)->Apply(sizes);
BENCHMARK(BM_ReadWrapped_Picoring)->Apply(sizes);
BENCHMARK(BM_ReadWrapped_Classic)->Apply(sizes);
BENCHMARK(BM_ReadWrapped_Contiguous)->Apply(sizes);
BENCHMARK(BM_Cycle_Picoring)->Apply(sizes);
BENCHMARK(BM_Cycle_Classic)->Apply(sizes);
BENCHMARK(BM_Create_Mirrored)->Apply(create_sizes);
BENCHMARK(BM_Create_Plain)->Apply(create_sizes);
BENCHMARK(BM_CreateAndTouch_Mirrored)->Apply(create_sizes);
BENCHMARK(BM_CreateAndTouch_Plain)->Apply(create_sizes);
BENCHMARK(BM_CreateAndTouch_Resident)->Apply(resident_args);
BENCHMARK(BM_ConnectionRing<false>)->Name("BM_ConnectionRing_New")->Apply(create_sizes);
BENCHMARK(BM_ConnectionRing<true>)->Name("BM_ConnectionRing_Pooled")->Apply(create_sizes);

}  // namespace

BENCHMARK_MAIN();
