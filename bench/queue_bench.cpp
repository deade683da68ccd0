// Queue benchmark. SPSC: picoring against boost::lockfree::spsc_queue, moodycamel's
// ReaderWriterQueue and atomic_queue, on two pinned threads. MPSC: picoring against
// moodycamel::ConcurrentQueue and atomic_queue (MPMC mode) with 1, 2, 4 and 8 producers. Each
// peer is built in when its header is installed; all run in the same process, interleaved;
// figures are medians of several runs.
//
//   picoring_queue_bench [--items N] [--runs R] [--only single|path|drain|roundtrip|batched|windows|mpsc]
//                        [--cpus P,C]   (the SPSC tables' producer and consumer CPUs; default 0,1)
//                        [--work W]     (multiply-adds per item in the single-item consumer; default 0)
//                        [--batching M,NS] (the set_batching rows: min_batch M, max_wait NS ns;
//                                         default 256,1000)
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "picoring/fanin.hpp"
#include "picoring/mpsc.hpp"
#include "picoring/spsc.hpp"

#if PICORING_HAVE_BOOST
#include <boost/lockfree/spsc_queue.hpp>
#endif
#if PICORING_HAVE_RWQ
#include <readerwriterqueue/readerwriterqueue.h>
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
#include <atomic_queue/atomic_queue.h>
#endif
#if PICORING_HAVE_CONCURRENTQUEUE
#include <concurrentqueue/concurrentqueue.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kCapacity = 65536;
// The consumer adds every item into a checksum that lives in the caller's frame, next to what
// the producer reads (the queue pointer, the item count). Keeping the checksum on cache lines of
// its own stops the harness itself from making the two threads share a line.
constexpr std::size_t kNoSharing = 128;
// What the command line chose; set once in main, then passed (read-only) to every measurement.
struct Settings {
  // The SPSC tables' two CPUs (--cpus): on a many-core machine CPU 0 also takes interrupts, and
  // which pair shares a cache or a core complex changes the figures.
  int producer_cpu = 0;
  int consumer_cpu = 1;
  // Dependent multiply-adds the single-item consumer does per item (--work): a consumer that does
  // something with each item runs a different race with its producer than one that only pops.
  int consumer_work = 0;
  // What the "batching" rows pass to set_batching on both ends (--batching).
  std::size_t batch_min = 256;
  long long batch_wait_ns = 1000;
  picoring::Batching batching() const { return {batch_min, std::chrono::nanoseconds(batch_wait_ns)}; }
};

// What the single-item consumer computes from the items 1..n, replayed on one thread.
std::uint64_t fold(std::uint64_t acc, std::uint64_t v, int work) {
  acc += v;
  for (int w = 0; w < work; ++w) {
    acc = acc * 0x9E3779B97F4A7C15ULL + v;
    asm volatile("" : "+r"(acc));  // one multiply-add per step: the compiler may not fold them
  }
  return acc;
}
std::uint64_t expected_fold(std::uint64_t items, int work) {
  std::uint64_t acc = 0;
  for (std::uint64_t i = 1; i <= items; ++i) acc = fold(acc, i, work);
  return acc;
}

void pin(int cpu) { picoring_bench::pin_this_thread(cpu); }

// --- adapters: the same two calls for every queue -------------------------------------------------

struct Pico {
  explicit Pico(const Settings& /*unused*/) {}
  std::pair<picoring::SpscProducer<std::uint64_t>, picoring::SpscConsumer<std::uint64_t>> q =
      picoring::make_spsc<std::uint64_t>(kCapacity);
  bool push(std::uint64_t v) { return q.first.try_push(v); }
  bool pop(std::uint64_t& v) { return q.second.try_pop(v); }
  // Everything readable, visited in place, then released with one publication.
  template <class F>
  std::size_t drain(F&& f) {
    return q.second.drain(f);
  }
};
// The same queue with batching on both ends (see picoring::Batching).
struct PicoBatching : Pico {
  explicit PicoBatching(const Settings& cfg) : Pico(cfg) {
    q.first.set_batching(cfg.batching());
    q.second.set_batching(cfg.batching());
  }
};
std::string batching_row(const Settings& cfg, const char* what) {
  return std::string(what) + ", batching " + std::to_string(cfg.batch_min) + " / " + std::to_string(cfg.batch_wait_ns) +
         " ns";
}
#if PICORING_HAVE_BOOST
struct Boost {
  explicit Boost(const Settings& /*unused*/) {}
  boost::lockfree::spsc_queue<std::uint64_t, boost::lockfree::capacity<kCapacity>> q;
  bool push(std::uint64_t v) { return q.push(v); }
  bool pop(std::uint64_t& v) { return q.pop(v); }
  template <class F>
  std::size_t drain(F&& f) {
    return q.consume_all(f);
  }
};
#endif
#if PICORING_HAVE_RWQ
struct Moody {
  explicit Moody(const Settings& /*unused*/) {}
  moodycamel::ReaderWriterQueue<std::uint64_t> q{kCapacity};
  bool push(std::uint64_t v) { return q.try_enqueue(v); }
  bool pop(std::uint64_t& v) { return q.try_dequeue(v); }
};
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
struct AtomicQ {
  explicit AtomicQ(const Settings& /*unused*/) {}
  atomic_queue::AtomicQueueB2<std::uint64_t, std::allocator<std::uint64_t>, true, false, true> q{kCapacity};
  bool push(std::uint64_t v) { return q.try_push(v); }
  bool pop(std::uint64_t& v) { return q.try_pop(v); }
};
#endif

// Runs producer and consumer on their CPUs (--cpus) from a common start; returns seconds.
double run_pair(const Settings& cfg, const std::function<void()>& produce, const std::function<void()>& consume) {
  std::atomic<int> ready{0};
  Clock::time_point t0;
  std::thread p([&] {
    pin(cfg.producer_cpu);
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    produce();
  });
  pin(cfg.consumer_cpu);
  ready.fetch_add(1);
  while (ready.load() < 2) {
  }
  t0 = Clock::now();
  consume();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  p.join();
  return s;
}

// One thread pushes 32 elements and pops them, over and over: ns per element (a push and a pop).
// No cache line moves between cores, so this is each queue's instruction path alone, the same in
// every regime: what a side pays per element when it never waits for the other, which is what
// sets the pace when transfers are fast.
template <class Q>
double path_ns(const Settings& cfg, std::uint64_t items) {
  auto q = std::make_unique<Q>(cfg);
  pin(cfg.producer_cpu);
  Q* const qq = q.get();
  const std::uint64_t n = items < 32 ? 32 : items - items % 32;
  std::uint64_t sum = 0;
  std::uint64_t v = 0;
  const auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; i += 32) {
    for (std::uint64_t j = 0; j < 32; ++j) {
      if (!qq->push(i + j)) std::abort();  // 32 always fit
    }
    for (std::uint64_t j = 0; j < 32; ++j) {
      if (!qq->pop(v)) std::abort();
      sum += v;
    }
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(n);
  if (sum != n * (n - 1) / 2) {
    std::fprintf(stderr, "path: checksum mismatch\n");
    std::exit(1);
  }
  return ns;
}

// How often each side found the queue full (producer) or empty (consumer), per item: which of
// the two regimes a run was in (see the README's SPSC benchmark).
struct Misses {
  std::vector<double> full;
  std::vector<double> empty;
};

template <class Q>
double throughput(const Settings& cfg, std::uint64_t items, Misses* misses = nullptr) {
  auto q = std::make_unique<Q>(cfg);
  alignas(kNoSharing) std::uint64_t sum = 0;
  alignas(kNoSharing) std::uint64_t full = 0;
  alignas(kNoSharing) std::uint64_t empty = 0;
  // Each loop works on locals (the queue pointer, the count, the running sum, the miss count)
  // that the compiler keeps in registers: nothing in the caller's stack frame is read or
  // written per item.
  const double s = run_pair(
      cfg,
      [queue = q.get(), items, &full] {
        Q* const qq = queue;
        const std::uint64_t n = items;
        std::uint64_t missed = 0;
        for (std::uint64_t i = 1; i <= n; ++i) {
          while (!qq->push(i)) ++missed;
        }
        full = missed;
      },
      [queue = q.get(), items, &sum, &empty, consumer_work = cfg.consumer_work] {
        Q* const qq = queue;
        const std::uint64_t n = items;
        std::uint64_t local = 0;
        std::uint64_t missed = 0;
        std::uint64_t v = 0;
        const int work = consumer_work;
        for (std::uint64_t i = 0; i < n; ++i) {
          while (!qq->pop(v)) ++missed;
          local = fold(local, v, work);
        }
        sum = local;
        empty = missed;
      });
  if (sum != expected_fold(items, cfg.consumer_work)) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  if (misses != nullptr) {
    misses->full.push_back(static_cast<double>(full) / static_cast<double>(items));
    misses->empty.push_back(static_cast<double>(empty) / static_cast<double>(items));
  }
  return static_cast<double>(items) / s;
}

// The producer pushes item by item; the consumer takes everything readable per call (the loop
// most consumers run: wake up, drain, process). Only queues with such a call take part.
template <class Q>
double drain_throughput(const Settings& cfg, std::uint64_t items) {
  auto q = std::make_unique<Q>(cfg);
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double s = run_pair(
      cfg,
      [queue = q.get(), items] {
        Q* const qq = queue;
        const std::uint64_t n = items;
        for (std::uint64_t i = 1; i <= n; ++i) {
          while (!qq->push(i)) {
          }
        }
      },
      [queue = q.get(), items, &sum] {
        Q* const qq = queue;
        std::uint64_t left = items;
        std::uint64_t local = 0;
        while (left != 0) left -= qq->drain([&local](std::uint64_t v) { local += v; });
        sum = local;
      });
  if (sum != items * (items + 1) / 2) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  return static_cast<double>(items) / s;
}

// Ping-pong over two queues; returns ns per round trip.
template <class Q>
double round_trip(const Settings& cfg, std::uint64_t trips) {
  auto there = std::make_unique<Q>(cfg);
  auto back = std::make_unique<Q>(cfg);
  const double s = run_pair(
      cfg,
      [&] {
        std::uint64_t v = 0;
        for (std::uint64_t i = 0; i < trips; ++i) {
          while (!there->pop(v)) {
          }
          while (!back->push(v)) {
          }
        }
      },
      [&] {
        std::uint64_t v = 0;
        for (std::uint64_t i = 0; i < trips; ++i) {
          while (!there->push(i)) {
          }
          while (!back->pop(v)) {
          }
        }
      });
  return s * 1e9 / static_cast<double>(trips);
}

// Batches of 64: copying (push_slice / pop_slice) and zero-copy (reserve+commit / peek+release).
double pico_batched(const Settings& cfg, std::uint64_t items, bool zero_copy) {
  auto [producer, consumer] = picoring::make_spsc<std::uint64_t>(kCapacity);
  constexpr std::size_t kBatch = 64;
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double s = run_pair(
      cfg,
      [&, &producer = producer] {
        std::uint64_t next = 1;
        std::uint64_t buf[kBatch];
        while (next <= items) {
          const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, items - next + 1));
          if (zero_copy) {
            auto slots = producer.reserve(n);
            if (slots.empty()) continue;
            for (std::size_t i = 0; i < n; ++i) slots[i] = next + i;
            producer.commit(n);
          } else {
            for (std::size_t i = 0; i < n; ++i) buf[i] = next + i;
            if (!producer.push_slice(std::span(buf, n))) continue;
          }
          next += n;
        }
      },
      [&, &consumer = consumer] {
        std::uint64_t got = 0;
        std::uint64_t buf[kBatch];
        while (got < items) {
          if (zero_copy) {
            auto window = consumer.peek();
            for (std::uint64_t v : window) sum += v;
            consumer.release(window.size());
            got += window.size();
          } else {
            const std::size_t n = consumer.pop_slice(buf);
            for (std::size_t i = 0; i < n; ++i) sum += buf[i];
            got += n;
          }
        }
      });
  if (sum != items * (items + 1) / 2) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  return static_cast<double>(items) / s;
}

#if PICORING_HAVE_BOOST
double boost_batched(const Settings& cfg, std::uint64_t items) {
  auto q = std::make_unique<boost::lockfree::spsc_queue<std::uint64_t, boost::lockfree::capacity<kCapacity>>>();
  constexpr std::size_t kBatch = 64;
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double s = run_pair(
      cfg,
      [&] {
        std::uint64_t next = 1;
        std::uint64_t buf[kBatch];
        while (next <= items) {
          const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, items - next + 1));
          for (std::size_t i = 0; i < n; ++i) buf[i] = next + i;
          next += q->push(buf, n);  // a partial push advances by what was taken
        }
      },
      [&] {
        std::uint64_t got = 0;
        std::uint64_t buf[kBatch];
        while (got < items) {
          const std::size_t n = q->pop(buf, kBatch);
          for (std::size_t i = 0; i < n; ++i) sum += buf[i];
          got += n;
        }
      });
  if (sum != items * (items + 1) / 2) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  return static_cast<double>(items) / s;
}
#endif

// Byte windows of W bytes: the producer fills W bytes, the consumer checksums W contiguous
// bytes. picoring: reserve/commit + peek/release in place. boost: push(bytes) + pop into a
// buffer (its only way to get a contiguous window).

double pico_windows(const Settings& cfg, std::size_t window, std::uint64_t bytes) {
  auto [producer, consumer] = picoring::make_spsc<std::byte>(std::size_t{4} << 20);
  std::vector<std::byte> src(window, std::byte{1});
  alignas(kNoSharing) std::uint64_t sum = 0;
  const std::uint64_t count = bytes / window;
  const double s = run_pair(
      cfg,
      [&, &producer = producer] {
        for (std::uint64_t i = 0; i < count;) {
          auto slots = producer.reserve(window);
          if (slots.empty()) continue;
          std::memcpy(slots.data(), src.data(), window);
          producer.commit(window);
          ++i;
        }
      },
      [&, &consumer = consumer] {
        for (std::uint64_t i = 0; i < count;) {
          auto w = consumer.peek();
          if (w.size() < window) continue;
          sum += picoring_bench::checksum(w.first(window));
          consumer.release(window);
          ++i;
        }
      });
  if (sum != count * (window / 8) * 0x0101010101010101ull) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  return static_cast<double>(count * window) / s;
}

#if PICORING_HAVE_BOOST
double boost_windows(const Settings& cfg, std::size_t window, std::uint64_t bytes) {
  auto q = std::make_unique<boost::lockfree::spsc_queue<std::byte, boost::lockfree::capacity<(4u << 20)>>>();
  std::vector<std::byte> src(window, std::byte{1});
  std::vector<std::byte> dst(window);
  alignas(kNoSharing) std::uint64_t sum = 0;
  const std::uint64_t count = bytes / window;
  const double s = run_pair(
      cfg,
      [&] {
        for (std::uint64_t i = 0; i < count;) {
          if (q->write_available() < window) continue;
          q->push(src.data(), window);
          ++i;
        }
      },
      [&] {
        for (std::uint64_t i = 0; i < count;) {
          if (q->read_available() < window) continue;
          q->pop(dst.data(), window);
          sum += picoring_bench::checksum(std::span<const std::byte>(dst.data(), window));
          ++i;
        }
      });
  if (sum != count * (window / 8) * 0x0101010101010101ull) std::fprintf(stderr, "checksum mismatch\n"), std::exit(1);
  return static_cast<double>(count * window) / s;
}
#endif

// --- MPSC: P producers (CPUs 1..P), one consumer (CPU 0) -------------------------------------
// A producer that finds the queue full yields, and so does the consumer when it finds the queue
// empty (on every queue alike): with more threads than cores, spinning would starve the very
// producer whose unpublished run holds the consumer up, or whose items it waits for.

// Runs `producers` threads calling produce(id, count) and the consumer on this thread; returns
// items per second measured by the consumer from the common start to the last item.
double run_mpsc(int producers, std::uint64_t per_producer, const std::function<void(int, std::uint64_t)>& produce,
                const std::function<void(std::uint64_t)>& consume) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(producers));
  for (int id = 0; id < producers; ++id) {
    threads.emplace_back([&, id] {
      pin(1 + id);
      ready.fetch_add(1);
      while (ready.load() <= producers) {
      }
      produce(id, per_producer);
    });
  }
  pin(0);
  while (ready.load() < producers) {
  }
  ready.fetch_add(1);
  const auto t0 = Clock::now();
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(producers);
  consume(total);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& t : threads) t.join();
  return static_cast<double>(total) / s;
}

void expect_sum(std::uint64_t sum, int producers, std::uint64_t per_producer) {
  if (sum != static_cast<std::uint64_t>(producers) * (per_producer * (per_producer + 1) / 2)) {
    std::fprintf(stderr, "MPSC checksum mismatch\n");
    std::exit(1);
  }
}

// Both many-producer queues, made by make(): make_mpsc (one order, shared claim counter) and
// make_fanin (one lane per producer copy, per-producer order: the guarantee moodycamel's
// token queues give).
template <class Make>
double pico_mpsc(int producers, std::uint64_t per_producer, bool batched, Make make) {
  auto [producer, consumer] = make();
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double rate = run_mpsc(
      producers, per_producer,
      [&, &producer = producer](int, std::uint64_t n) {
        auto mine = producer;  // a producer copy per thread (for make_fanin, its lane)
        if (!batched) {
          for (std::uint64_t i = 1; i <= n; ++i) {
            while (!mine.try_push(i)) std::this_thread::yield();
          }
          return;
        }
        std::uint64_t buf[64];
        for (std::uint64_t i = 1; i <= n;) {
          const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(64, n - i + 1));
          for (std::size_t j = 0; j < k; ++j) buf[j] = i + j;
          if (mine.push_slice(std::span(buf, k))) {
            i += k;
          } else {
            std::this_thread::yield();
          }
        }
      },
      // Locals only in the loop (see kNoSharing): the sum is stored once at the end.
      [&sum, c = &consumer, batched](std::uint64_t total) {
        std::uint64_t got = 0;
        std::uint64_t v = 0;
        std::uint64_t local = 0;
        while (got < total) {
          if (batched) {
            auto window = c->peek();
            for (std::uint64_t x : window) local += x;
            c->release(window.size());
            got += window.size();
            if (window.empty()) std::this_thread::yield();
          } else if (c->try_pop(v)) {
            local += v;
            ++got;
          } else {
            std::this_thread::yield();
          }
        }
        sum = local;
      });
  expect_sum(sum, producers, per_producer);
  return rate;
}

#if PICORING_HAVE_CONCURRENTQUEUE
double moody_mpsc(int producers, std::uint64_t per_producer, bool batched) {
  moodycamel::ConcurrentQueue<std::uint64_t> q(kCapacity * 2);
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double rate = run_mpsc(
      producers, per_producer,
      [&](int, std::uint64_t n) {
        moodycamel::ProducerToken token(q);
        if (!batched) {
          // enqueue, not try_enqueue: the latter fails for good once an explicit producer's block
          // index would need to grow. So this peer is unbounded (it allocates blocks as needed).
          for (std::uint64_t i = 1; i <= n; ++i) q.enqueue(token, i);
          return;
        }
        std::uint64_t buf[64];
        for (std::uint64_t i = 1; i <= n;) {
          const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(64, n - i + 1));
          for (std::size_t j = 0; j < k; ++j) buf[j] = i + j;
          q.enqueue_bulk(token, buf, k);
          i += k;
        }
      },
      [&sum, queue = &q, batched](std::uint64_t total) {
        std::uint64_t got = 0;
        std::uint64_t v = 0;
        std::uint64_t local = 0;
        std::uint64_t buf[256];
        while (got < total) {
          if (batched) {
            const std::size_t n = queue->try_dequeue_bulk(buf, 256);
            for (std::size_t i = 0; i < n; ++i) local += buf[i];
            got += n;
            if (n == 0) std::this_thread::yield();
          } else if (queue->try_dequeue(v)) {
            local += v;
            ++got;
          } else {
            std::this_thread::yield();
          }
        }
        sum = local;
      });
  expect_sum(sum, producers, per_producer);
  return rate;
}
#endif

#if PICORING_HAVE_ATOMIC_QUEUE
double atomic_mpsc(int producers, std::uint64_t per_producer) {
  auto q = std::make_unique<atomic_queue::AtomicQueueB2<std::uint64_t>>(static_cast<unsigned>(kCapacity));
  alignas(kNoSharing) std::uint64_t sum = 0;
  const double rate = run_mpsc(
      producers, per_producer,
      [&](int, std::uint64_t n) {
        for (std::uint64_t i = 1; i <= n; ++i) {
          while (!q->try_push(i)) std::this_thread::yield();
        }
      },
      [&sum, queue = q.get()](std::uint64_t total) {
        std::uint64_t v = 0;
        std::uint64_t local = 0;
        for (std::uint64_t got = 0; got < total;) {
          if (queue->try_pop(v)) {
            local += v;
            ++got;
          } else {
            std::this_thread::yield();
          }
        }
        sum = local;
      });
  expect_sum(sum, producers, per_producer);
  return rate;
}
#endif

using picoring_bench::median;

struct Row {
  std::string name;
  std::function<double()> run;
  std::vector<double> samples;
};

enum class Better { higher, lower };

// The regime probe: the round trip of one cache line between the SPSC tables' two CPUs (two
// threads ping-ponging a counter), measured before every run of a table. On a shared VM it
// moves between periods of fast and of slow transfers, and every queue's figure moves with it;
// classifying runs by it compares the queues within each period (docs/benchmarks.md).
double line_round_trip_ns(const Settings& cfg) {
  constexpr std::uint64_t kTrips = 20000;
  struct alignas(kNoSharing) Line {
    std::atomic<std::uint64_t> v{0};
  };
  auto line = std::make_unique<Line>();
  const double s = run_pair(
      cfg,
      [l = line.get()] {
        for (std::uint64_t i = 1; i <= kTrips; ++i) {
          while (l->v.load(std::memory_order_acquire) != 2 * i - 1) {
          }
          l->v.store(2 * i, std::memory_order_release);
        }
      },
      [l = line.get()] {
        for (std::uint64_t i = 1; i <= kTrips; ++i) {
          l->v.store(2 * i - 1, std::memory_order_release);
          while (l->v.load(std::memory_order_acquire) != 2 * i) {
          }
        }
      });
  return s * 1e9 / static_cast<double>(kTrips);
}

// Labels each run 0 (fast transfers: the lower probe values) or 1 (slow), by the split of the
// sorted log(probe) values that leaves the least spread within the two groups. The split counts
// only when each group has at least two runs and their medians differ by at least 1.5x: else
// every run is labelled 0 (one regime).
std::vector<int> classify_regimes(const std::vector<double>& probe) {
  std::vector<int> label(probe.size(), 0);
  std::vector<double> logs(probe.size());
  std::transform(probe.begin(), probe.end(), logs.begin(), [](double v) { return std::log(v); });
  std::vector<double> sorted = logs;
  std::sort(sorted.begin(), sorted.end());
  const auto spread = [](auto first, auto last) {
    const double n = static_cast<double>(last - first);
    double mean = 0;
    for (auto it = first; it != last; ++it) mean += *it / n;
    double ss = 0;
    for (auto it = first; it != last; ++it) ss += (*it - mean) * (*it - mean);
    return ss;
  };
  double best = -1;
  std::size_t cut = 0;  // runs [0, cut) of the sorted order are the fast ones
  for (std::size_t k = 2; k + 2 <= sorted.size(); ++k) {
    const double ss = spread(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k)) +
                      spread(sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
    if (best < 0 || ss < best) {
      best = ss;
      cut = k;
    }
  }
  if (cut == 0) return label;
  const std::vector<double> fast(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cut));
  const std::vector<double> slow(sorted.begin() + static_cast<std::ptrdiff_t>(cut), sorted.end());
  if (std::exp(median(slow) - median(fast)) < 1.5) return label;
  const double threshold = sorted[cut];
  for (std::size_t r = 0; r < logs.size(); ++r) label[r] = logs[r] >= threshold ? 1 : 0;
  return label;
}

bool is_ours(const std::vector<Row>::value_type& row) { return row.name.rfind("picoring", 0) == 0; }

// The table again, one column per regime (see classify_regimes; one column when the probe saw
// one), then each picoring row against each peer: the median over that regime's runs of the
// ratio within a run. Against each peer separately, not the best of them per run: the maximum
// of several noisy figures is biased upwards, and the targets name peers.
void print_regimes(const std::vector<Row>& rows, const std::vector<double>& probe, Better better) {
  const std::vector<int> label = classify_regimes(probe);
  const int regimes = *std::max_element(label.begin(), label.end()) + 1;
  const char* names[] = {"fast transfers", "slow transfers"};
  const auto runs_of = [&](int g) {
    std::vector<std::size_t> r;
    for (std::size_t i = 0; i < label.size(); ++i)
      if (label[i] == g) r.push_back(i);
    return r;
  };
  std::printf(
      "\nBy regime: runs grouped by a cache-line round trip between the two CPUs measured before each\n"
      "run (%.0f-%.0f ns in this table); medians within each group.\n\n| queue |",
      *std::min_element(probe.begin(), probe.end()), *std::max_element(probe.begin(), probe.end()));
  for (int g = 0; g < regimes; ++g) {
    std::vector<double> p;
    for (std::size_t r : runs_of(g)) p.push_back(probe[r]);
    std::printf(" %s: %zu runs, line %.0f ns |", regimes == 1 ? "one regime" : names[g], p.size(), median(p));
  }
  std::printf("\n|---|%s\n", regimes == 2 ? "---:|---:|" : "---:|");
  const auto cell = [&](int g, const char* format, const auto& value_of_run) {
    std::vector<double> v;
    for (std::size_t r : runs_of(g)) v.push_back(value_of_run(r));
    std::printf(format, median(v));
  };
  for (const auto& row : rows) {
    std::printf("| %s |", row.name.c_str());
    for (int g = 0; g < regimes; ++g) cell(g, " %.1f |", [&](std::size_t r) { return row.samples[r]; });
    std::printf("\n");
  }
  for (const auto& ours : rows) {
    if (!is_ours(ours)) continue;
    for (const auto& peer : rows) {
      if (is_ours(peer)) continue;
      std::printf("| %s / %s (%s is better) |", ours.name.c_str(), peer.name.c_str(),
                  better == Better::higher ? "higher" : "lower");
      for (int g = 0; g < regimes; ++g)
        cell(g, " %.2fx |", [&](std::size_t r) { return ours.samples[r] / peer.samples[r]; });
      std::printf("\n");
    }
  }
}

// Prints the table; when there are peers, also, for each picoring row, the ratio
// picoring / best peer taken within each run (the rows of one run are measured back to back,
// so a change of regime on a shared machine moves them together) and its median over runs.
// With a probe (the SPSC tables), each run starts with it and the table is printed again by
// regime.
void table(const char* title, const char* unit, std::vector<Row> rows, int runs, double scale,
           Better better = Better::higher, const std::function<double()>& probe = {}) {
  std::vector<double> probes;
  // Run r starts with row r (rotated order): no row always runs first, or right after the same
  // neighbour, and every run holds one sample of each row taken back to back.
  for (int r = 0; r < runs; ++r) {
    if (probe) probes.push_back(probe());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      auto& row = rows[(static_cast<std::size_t>(r) + i) % rows.size()];
      row.samples.push_back(row.run() * scale);
    }
  }
  std::printf("\n### %s\n\n| queue | %s (median of %d) | min | max |\n|---|---:|---:|---:|\n", title, unit, runs);
  for (auto& row : rows) {
    std::printf("| %s | %.1f | %.1f | %.1f |\n", row.name.c_str(), median(row.samples),
                *std::min_element(row.samples.begin(), row.samples.end()),
                *std::max_element(row.samples.begin(), row.samples.end()));
  }
  // The best peer of each run, found once for all picoring rows.
  std::vector<double> best;
  if (!std::all_of(rows.begin(), rows.end(), is_ours)) {
    best.resize(static_cast<std::size_t>(runs));
    for (std::size_t r = 0; r < best.size(); ++r) {
      bool first = true;
      for (const auto& row : rows) {
        if (is_ours(row)) continue;
        const double v = row.samples[r];
        if (first || (better == Better::higher ? v > best[r] : v < best[r])) best[r] = v;
        first = false;
      }
    }
    std::printf("\n");
    for (const auto& ours : rows) {
      if (!is_ours(ours)) continue;
      std::vector<double> ratios;
      for (std::size_t r = 0; r < best.size(); ++r) ratios.push_back(ours.samples[r] / best[r]);
      std::printf("%s / best peer, per run (%s is better): median %.2fx, min %.2fx, max %.2fx\n", ours.name.c_str(),
                  better == Better::higher ? "higher" : "lower", median(ratios),
                  *std::min_element(ratios.begin(), ratios.end()), *std::max_element(ratios.begin(), ratios.end()));
    }
  }
  if (probe) print_regimes(rows, probes, better);
}

// A whole decimal number in [lo, hi]; false for anything else ("12x", "", out of range).
bool parse_count(const char* text, long long lo, long long hi, long long& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  out = v;
  return true;
}
// "A,B": two whole numbers in [lo, hi].
bool parse_pair(const char* text, long long lo, long long hi, long long& a, long long& b) {
  const char* comma = std::strchr(text, ',');
  if (comma == nullptr) return false;
  const std::string first(text, comma);
  return parse_count(first.c_str(), lo, hi, a) && parse_count(comma + 1, lo, hi, b);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t items = 10'000'000;
  int runs = 11;
  std::string only;  // empty: every table
  Settings cfg;
  const auto usage = [] {
    std::fprintf(stderr,
                 "usage: picoring_queue_bench [--items N] [--runs R] "
                 "[--only single|path|drain|roundtrip|batched|windows|mpsc] [--cpus P,C] [--work W] "
                 "[--batching M,NS]\n");
    return 2;
  };
  if (argc % 2 == 0) return usage();  // every option takes one value
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    long long n = 0;
    long long m = 0;
    if (flag == "--items" && parse_count(value, 100, 1LL << 40, n)) {
      items = static_cast<std::uint64_t>(n);
    } else if (flag == "--runs" && parse_count(value, 1, 1000, n)) {
      runs = static_cast<int>(n);
    } else if (flag == "--work" && parse_count(value, 0, 10000, n)) {
      cfg.consumer_work = static_cast<int>(n);
    } else if (flag == "--only") {
      only = value;
    } else if (flag == "--cpus" && parse_pair(value, 0, 4095, n, m)) {
      cfg.producer_cpu = static_cast<int>(n);
      cfg.consumer_cpu = static_cast<int>(m);
    } else if (flag == "--batching" && parse_pair(value, 1, 1LL << 30, n, m)) {
      cfg.batch_min = static_cast<std::size_t>(n);
      cfg.batch_wait_ns = m;
    } else {
      std::fprintf(stderr, "%s %s: not a valid option and value\n", flag.c_str(), value);
      return usage();
    }
  }
  const std::vector<std::string> tables{"single", "path", "drain", "roundtrip", "batched", "windows", "mpsc"};
  if (!only.empty() && std::find(tables.begin(), tables.end(), only) == tables.end()) {
    std::fprintf(stderr, "--only: unknown table '%s' (single, path, drain, roundtrip, batched, windows or mpsc)\n",
                 only.c_str());
    return 2;
  }
  const auto want = [&](const char* name) { return only.empty() || only == name; };
  // The blocking handshake costs the hot path nothing with membarrier and a full fence per
  // push and pop without it (see park.hpp): say which one this machine gives.
  { const auto probe = picoring::make_spsc<std::uint64_t>(1); }
  std::printf(
      "## SPSC queues: %u logical CPUs, producer on CPU %d, consumer on CPU %d, capacity %zu, %llu items per run\n"
      "## blocking handshake: %s\n",
      std::thread::hardware_concurrency(), cfg.producer_cpu, cfg.consumer_cpu, kCapacity,
      static_cast<unsigned long long>(items),
      picoring::fences_use_membarrier() ? "membarrier (no fence on the hot path)"
                                        : "no membarrier here: a full fence on every push and pop");
  const std::function<double()> probe = [&cfg] { return line_round_trip_ns(cfg); };
  if (want("single")) {
    struct Queue {
      const char* name;
      double (*run)(const Settings&, std::uint64_t, Misses*);
    };
    const std::string batching = batching_row(cfg, "picoring SpscQueue");
    std::vector<Queue> queues{{"picoring SpscQueue", &throughput<Pico>}, {batching.c_str(), &throughput<PicoBatching>}};
#if PICORING_HAVE_BOOST
    queues.push_back({"boost::lockfree::spsc_queue", &throughput<Boost>});
#endif
#if PICORING_HAVE_RWQ
    queues.push_back({"moodycamel::ReaderWriterQueue", &throughput<Moody>});
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
    queues.push_back({"atomic_queue::AtomicQueueB2 (SPSC)", &throughput<AtomicQ>});
#endif
    std::vector<Misses> misses(queues.size());
    std::vector<Row> tp;
    for (std::size_t i = 0; i < queues.size(); ++i) {
      tp.push_back({queues[i].name, [&, i] { return queues[i].run(cfg, items, &misses[i]); }, {}});
    }
    const std::string title = cfg.consumer_work == 0
                                  ? std::string("Single-item throughput (uint64_t)")
                                  : "Single-item throughput (uint64_t), consumer does " +
                                        std::to_string(cfg.consumer_work) + " multiply-adds per item";
    table(title.c_str(), "M items/s", tp, runs, 1e-6, Better::higher, probe);
    // A consumer that keeps finding the queue empty trails the producer item by item (every item
    // moves cache lines between the cores); one that never does reads lines written long before.
    std::printf(
        "\nFailed calls per item (medians): which regime each queue ran in.\n\n"
        "| queue | try_pop found it empty | try_push found it full |\n|---|---:|---:|\n");
    for (std::size_t i = 0; i < queues.size(); ++i) {
      std::printf("| %s | %.2f | %.2f |\n", queues[i].name, median(misses[i].empty), median(misses[i].full));
    }
  }

  if (want("path")) {
    std::vector<Row> pr{{"picoring SpscQueue", [&] { return path_ns<Pico>(cfg, items); }, {}}};
#if PICORING_HAVE_BOOST
    pr.push_back({"boost::lockfree::spsc_queue", [&] { return path_ns<Boost>(cfg, items); }, {}});
#endif
#if PICORING_HAVE_RWQ
    pr.push_back({"moodycamel::ReaderWriterQueue", [&] { return path_ns<Moody>(cfg, items); }, {}});
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
    pr.push_back({"atomic_queue::AtomicQueueB2 (SPSC)", [&] { return path_ns<AtomicQ>(cfg, items); }, {}});
#endif
    table("Path cost: one thread pushes 32 and pops them (uint64_t)", "ns per element", pr, runs, 1.0, Better::lower);
  }

  if (want("drain")) {
    std::vector<Row> dr{
        {"picoring try_push / consume (drains in place)", [&] { return drain_throughput<Pico>(cfg, items); }, {}},
        {batching_row(cfg, "picoring try_push / consume"),
         [&] { return drain_throughput<PicoBatching>(cfg, items); },
         {}}};
#if PICORING_HAVE_BOOST
    dr.push_back(
        {"boost::lockfree::spsc_queue push / consume_all", [&] { return drain_throughput<Boost>(cfg, items); }, {}});
#endif
    table("Single-item producer, draining consumer (uint64_t)", "M items/s", dr, runs, 1e-6, Better::higher, probe);
  }

  if (want("roundtrip")) {
    const std::uint64_t trips = items / 20;
    std::vector<Row> rt{
        {"picoring SpscQueue", [&] { return round_trip<Pico>(cfg, trips); }, {}},
        {batching_row(cfg, "picoring SpscQueue"), [&] { return round_trip<PicoBatching>(cfg, trips); }, {}}};
#if PICORING_HAVE_BOOST
    rt.push_back({"boost::lockfree::spsc_queue", [&] { return round_trip<Boost>(cfg, trips); }, {}});
#endif
#if PICORING_HAVE_RWQ
    rt.push_back({"moodycamel::ReaderWriterQueue", [&] { return round_trip<Moody>(cfg, trips); }, {}});
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
    rt.push_back({"atomic_queue::AtomicQueueB2 (SPSC)", [&] { return round_trip<AtomicQ>(cfg, trips); }, {}});
#endif
    table("Round trip (ping-pong over two queues)", "ns per round trip", rt, runs, 1.0, Better::lower, probe);
  }

  if (want("batched")) {
    std::vector<Row> bt{
        {"picoring push_slice/pop_slice, 64 per batch", [&] { return pico_batched(cfg, items * 4, false); }, {}},
        {"picoring reserve+commit / peek+release (zero copy)", [&] { return pico_batched(cfg, items * 4, true); }, {}}};
#if PICORING_HAVE_BOOST
    bt.push_back({"boost::lockfree::spsc_queue push(ptr, n)/pop(ptr, n), 64 per batch",
                  [&] { return boost_batched(cfg, items * 4); },
                  {}});
#endif
    table("Batched throughput (uint64_t)", "M items/s", bt, runs, 1e-6);
  }

  if (want("windows")) {
    for (std::size_t w : {std::size_t{1024}, std::size_t{16384}, std::size_t{65536}}) {
      const std::uint64_t bytes = items * 200;  // 2 GB per run at the default item count
      std::vector<Row> wr{
          {"picoring reserve/commit + peek/release (in place)", [&] { return pico_windows(cfg, w, bytes); }, {}}};
#if PICORING_HAVE_BOOST
      wr.push_back({"boost::lockfree::spsc_queue<std::byte> push/pop into a buffer",
                    [&] { return boost_windows(cfg, w, bytes); },
                    {}});
#endif
      const std::string title = "Byte windows of " + std::to_string(w / 1024) + " KiB, consumer checksums each window";
      table(title.c_str(), "GB/s", wr, runs, 1e-9);
    }
  }

  if (want("mpsc")) {
    for (int producers : {1, 2, 4, 8}) {
      const std::uint64_t per = items / static_cast<std::uint64_t>(producers);
      // Element by element and in runs of 64 are two tables, so that each ratio line compares
      // like with like.
      const auto mpsc = [] { return picoring::make_mpsc<std::uint64_t>(kCapacity); };
      // kCapacity per lane: each producer gets what the shared queue has in all.
      const auto fanin = [] { return picoring::make_fanin<std::uint64_t>(kCapacity); };
      std::vector<Row> single{
          {"picoring MPSC try_push / try_pop", [&] { return pico_mpsc(producers, per, false, mpsc); }, {}},
          {"picoring fan-in (lane per producer) try_push / try_pop",
           [&] { return pico_mpsc(producers, per, false, fanin); },
           {}}};
      std::vector<Row> bulk{
          {"picoring MPSC push_slice(64) / peek+release", [&] { return pico_mpsc(producers, per, true, mpsc); }, {}},
          {"picoring fan-in push_slice(64) / peek+release",
           [&] { return pico_mpsc(producers, per, true, fanin); },
           {}}};
#if PICORING_HAVE_CONCURRENTQUEUE
      single.push_back({"moodycamel::ConcurrentQueue (token, unbounded) enqueue / try_dequeue",
                        [&] { return moody_mpsc(producers, per, false); },
                        {}});
      bulk.push_back({"moodycamel::ConcurrentQueue (unbounded) enqueue_bulk(64) / try_dequeue_bulk",
                      [&] { return moody_mpsc(producers, per, true); },
                      {}});
#endif
#if PICORING_HAVE_ATOMIC_QUEUE
      single.push_back(
          {"atomic_queue::AtomicQueueB2 (MPMC) try_push / try_pop", [&] { return atomic_mpsc(producers, per); }, {}});
#endif
      const std::string title = "MPSC, " + std::to_string(producers) + " producer(s), uint64_t";
      table((title + ", element by element").c_str(), "M items/s", single, runs, 1e-6);
      table((title + ", runs of 64").c_str(), "M items/s", bulk, runs, 1e-6);
    }
  }
  return 0;
}
