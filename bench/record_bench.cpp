// Variable-size records between two pinned threads: picoring's SPSC record queue against three
// baselines written or chosen to be honest, in the same run, interleaved (A B C D A B C D ...),
// medians over the runs:
//   padding ring - the classic design (Agrona's ring buffers, BPF-style framing): the same
//                  8-byte headers and cached counters as picoring, one copy of the memory, and a
//                  padding record at the physical end whenever a record would not fit before it;
//   mutex deque  - std::mutex + std::deque<std::vector<std::byte>>, one allocation per record,
//                  the consumer swaps the whole deque out under the lock (its best use);
//   fixed slots  - picoring's SPSC queue of fixed slots as large as the largest record of the
//                  row, written in place (reserve/commit) and read in place (peek/release).
// and picoring's record queue once more with batching on both ends (4 KiB / 1 us): the option a
// user who streams records turns on; the baselines have no such option.
// Every contender holds the same bytes of records (the ring size; the slots' count is that
// divided by the slot size), the producer copies each record from the same source, and the
// consumer checksums each record with the same function; the sum is checked against one computed
// beforehand on one thread.
// Another table gives picoring and the padding ring the same lists of 32 records per call, each
// publishing once per list (picoring's push_some), beside picoring pushing one at a time.
// A second table has several producer threads: picoring's MPSC record queue against the BPF
// ring buffer's design (a spinlock around reservations, a busy bit per header, padding at the
// end) and the mutex deque, with 2 and 4 producers. A third runs the padding ring on private,
// shared and mirrored memory: a mirror needs shared pages, and on some machines they cost more.
//
//   picoring_record_bench [--runs R] [--mib N] [--quick]
#include <pthread.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "picoring/record_ring.hpp"
#include "picoring/spsc.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::span<const std::byte>;
constexpr std::size_t kRingBytes = std::size_t{1} << 20;

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// --- contenders ---------------------------------------------------------------------------------

struct PicoRecords {
  std::pair<picoring::RecordProducer, picoring::RecordConsumer> q;
  PicoRecords() : q(picoring::make_record_spsc(kRingBytes, resident())) {}
  static picoring::MirrorOptions resident() {
    picoring::MirrorOptions o;
    o.residency = picoring::Residency::lock_if_allowed;  // resident like the baselines, and kept so
    return o;
  }
  bool write(Bytes rec) { return q.first.push(rec); }
  std::size_t write_some(std::span<const Bytes> recs) { return q.first.push_some(recs); }
  template <class F>
  std::size_t read(F&& f) {
    return q.second.drain(f);
  }
};

// The same with batching on both ends: a look at the other side's counter that finds less than
// a page of records (consumer) or of room (producer) while streaming waits a microsecond once.
struct PicoRecordsBatching : PicoRecords {
  static constexpr picoring::Batching kBatching{4096, std::chrono::microseconds(1)};
  PicoRecordsBatching() {
    q.first.set_batching(kBatching);
    q.second.set_batching(kBatching);
  }
};

// A producer that hands its queue lists of records (a logger that formats a burst of lines, a
// shipper that splits a chunk it read): records wait in the producer's list until it holds
// kList, then go in with one call and one publication (`write_some`), the rest of the list
// kept for the next call. flush() pushes what waits at the end of a run.
template <class Q>
struct Lists : Q {
  static constexpr std::size_t kList = 32;
  Lists() = default;
  explicit Lists(Q inner) : Q(std::move(inner)) {}  // a many-producer table's writer
  bool write(Bytes rec) {
    if (count_ == kList && !flush()) return false;
    pending_[count_++] = rec;
    return true;
  }
  // True when nothing waits any more.
  bool flush() {
    done_ += this->write_some(std::span<const Bytes>(pending_).subspan(done_, count_ - done_));
    if (done_ < count_) return false;
    count_ = done_ = 0;
    return true;
  }

 private:
  alignas(128) std::array<Bytes, kList> pending_{};  // the producer's own lines
  std::size_t count_ = 0;
  std::size_t done_ = 0;
};

// 1 MiB of resident memory of one kind for the baselines: private anonymous (what new[] gives),
// shared anonymous (shmem, the kind of page a mirror must use: two views need shared pages), or
// the first view of a MirrorBuffer. Locked when allowed, as picoring's rings here are.
enum class MemoryKind { private_anon, shared_anon, mirror_view };
class RingMemory {
 public:
  explicit RingMemory(MemoryKind kind) {
    if (kind == MemoryKind::mirror_view) {
      mirror_ = picoring::MirrorBuffer(kRingBytes, PicoRecords::resident());
      base_ = mirror_.data();
      return;
    }
    const int sharing = kind == MemoryKind::shared_anon ? MAP_SHARED : MAP_PRIVATE;
    void* p = mmap(nullptr, kRingBytes, PROT_READ | PROT_WRITE, sharing | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    base_ = static_cast<std::byte*>(p);
    std::memset(base_, 0, kRingBytes);
    mapped_ = true;
    (void)mlock(base_, kRingBytes);  // refused without the privilege: then merely touched
  }
  RingMemory(const RingMemory&) = delete;
  RingMemory& operator=(const RingMemory&) = delete;
  ~RingMemory() {
    if (mapped_) munmap(base_, kRingBytes);
  }
  std::byte* data() const { return base_; }

 private:
  picoring::MirrorBuffer mirror_;
  std::byte* base_ = nullptr;
  bool mapped_ = false;
};

// The classic ring: one copy of the memory, records never split, a padding record at the end.
template <MemoryKind Kind = MemoryKind::private_anon>
class PaddingRing {
 public:
  bool write(Bytes rec) {
    if (!write_unpublished(rec)) return false;
    tail_.store(p_.tail, std::memory_order_release);
    return true;
  }
  // Several records with one publication, as picoring's push_some: the longest prefix that
  // fits, each written as write() writes it, then one store of the counter.
  std::size_t write_some(std::span<const Bytes> recs) {
    std::size_t n = 0;
    while (n < recs.size() && write_unpublished(recs[n])) ++n;
    if (n != 0) tail_.store(p_.tail, std::memory_order_release);
    return n;
  }
  template <class F>
  std::size_t read(F&& f) {
    const std::size_t have = tail_.load(std::memory_order_acquire) - c_.head;
    std::size_t bytes = 0;
    std::size_t n = 0;
    while (bytes < have) {
      std::uint32_t h[2];
      std::memcpy(h, mem_.data() + c_.index, 8);
      if (h[1] == kPad) {
        bytes += kRingBytes - c_.index;
        c_.index = 0;
        continue;
      }
      f(std::span<std::byte>(mem_.data() + c_.index + 8, h[0]));
      const std::size_t fp = picoring::record_footprint(h[0]);
      bytes += fp;
      c_.index += fp;
      if (c_.index == kRingBytes) c_.index = 0;
      ++n;
    }
    if (bytes != 0) {
      c_.head += bytes;
      head_.store(c_.head, std::memory_order_release);
    }
    return n;
  }

 private:
  static constexpr std::uint32_t kPad = 1;
  // A record behind a padding record when it would not fit before the end; false, writing
  // nothing, when there is no room. The caller publishes.
  bool write_unpublished(Bytes rec) {
    const std::size_t fp = picoring::record_footprint(rec.size());
    const std::size_t pad = p_.index + fp > kRingBytes ? kRingBytes - p_.index : 0;
    const std::size_t need = pad + fp;
    if (kRingBytes - (p_.tail - p_.head_cache) < need) {
      p_.head_cache = head_.load(std::memory_order_acquire);
      if (kRingBytes - (p_.tail - p_.head_cache) < need) return false;
    }
    if (pad != 0) {
      header(p_.index, 0, kPad);
      p_.index = 0;
    }
    std::memcpy(mem_.data() + p_.index + 8, rec.data(), rec.size());
    header(p_.index, static_cast<std::uint32_t>(rec.size()), 0);
    p_.index += fp;
    if (p_.index == kRingBytes) p_.index = 0;
    p_.tail += need;
    return true;
  }
  void header(std::size_t at, std::uint32_t len, std::uint32_t flags) {
    const std::uint32_t h[2] = {len, flags};
    std::memcpy(mem_.data() + at, h, 8);
  }
  RingMemory mem_{Kind};
  // Laid out as picoring's queue is: each shared counter on its own line, each side's private
  // copies on another.
  alignas(128) std::atomic<std::size_t> tail_{0};
  alignas(128) std::atomic<std::size_t> head_{0};
  struct alignas(128) {
    std::size_t tail = 0, index = 0, head_cache = 0;
  } p_;
  struct alignas(128) {
    std::size_t head = 0, index = 0;
  } c_;
};

class MutexDeque {
 public:
  bool write(Bytes rec) { return write(rec, pending_); }
  // The record is copied into `pending` once, outside the lock, and kept there while full.
  bool write(Bytes rec, std::vector<std::byte>& pending) {
    if (pending.empty()) pending.assign(rec.begin(), rec.end());
    const std::lock_guard<std::mutex> lock(m_);
    if (bytes_ + rec.size() > kRingBytes) return false;
    bytes_ += rec.size();
    q_.push_back(std::move(pending));
    pending = {};
    return true;
  }
  // Lists: each record copied into its own vector outside the lock (pending[i] is recs[i]'s,
  // kept while the queue is full), then the longest prefix that fits queued under one lock.
  std::size_t write_some(std::span<const Bytes> recs) { return write_some(recs, pending_list_); }
  std::size_t write_some(std::span<const Bytes> recs, std::deque<std::vector<std::byte>>& pending) {
    while (pending.size() < recs.size()) {
      const Bytes rec = recs[pending.size()];
      pending.emplace_back(rec.begin(), rec.end());
    }
    std::size_t n = 0;
    {
      const std::lock_guard<std::mutex> lock(m_);
      for (; n < recs.size() && bytes_ + recs[n].size() <= kRingBytes; ++n) {
        bytes_ += recs[n].size();
        q_.push_back(std::move(pending[n]));
      }
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  template <class F>
  std::size_t read(F&& f) {
    std::deque<std::vector<std::byte>> mine;
    {
      const std::lock_guard<std::mutex> lock(m_);
      mine.swap(q_);
      bytes_ = 0;
    }
    for (auto& v : mine) f(std::span<std::byte>(v));
    return mine.size();
  }

 private:
  std::mutex m_;
  std::deque<std::vector<std::byte>> q_;
  std::size_t bytes_ = 0;
  std::vector<std::byte> pending_;
  std::deque<std::vector<std::byte>> pending_list_;
};

template <std::size_t S>
struct Slot {
  std::uint32_t len;
  std::array<std::byte, S> data;
  // The slots' count rounds up to whole pages of slots: large slots hold more bytes in flight.
  static std::size_t capacity_bytes() {
    picoring::Error err;
    return picoring::mirror_size_for(kRingBytes / sizeof(Slot), sizeof(Slot), err);
  }
};
template <std::size_t S>
struct FixedSlots {
  std::pair<picoring::SpscProducer<Slot<S>>, picoring::SpscConsumer<Slot<S>>> q;
  FixedSlots() : q(picoring::make_spsc<Slot<S>>(kRingBytes / sizeof(Slot<S>), PicoRecords::resident())) {}
  bool write(Bytes rec) {
    auto s = q.first.reserve(1);
    if (s.empty()) return false;
    s[0].len = static_cast<std::uint32_t>(rec.size());
    std::memcpy(s[0].data.data(), rec.data(), rec.size());
    q.first.commit(1);
    return true;
  }
  template <class F>
  std::size_t read(F&& f) {
    auto w = q.second.peek();
    for (auto& s : w) f(std::span<std::byte>(s.data.data(), s.len));
    q.second.release(w.size());
    return w.size();
  }
};

// --- contenders with many producers --------------------------------------------------------------
// Each gives every producer thread a Writer of its own.

struct PicoRecordsMpsc {
  std::pair<picoring::RecordMpscProducer, picoring::RecordMpscConsumer> q;
  PicoRecordsMpsc() : q(picoring::make_record_mpsc(kRingBytes, PicoRecords::resident())) {}
  struct Writer {
    picoring::RecordMpscProducer p;
    bool write(Bytes rec) { return p.push(rec); }
    std::size_t write_some(std::span<const Bytes> recs) { return p.push_some(recs); }
  };
  Writer writer() { return {q.first}; }
  template <class F>
  std::size_t read(F&& f) {
    return q.second.drain(f);
  }
};

// The Linux BPF ring buffer's design (kernel/bpf/ringbuf.c, as its comments describe it) in
// user space: producers reserve under a spinlock, writing the header with a busy bit before
// publishing the producer position; they copy outside the lock and clear the bit (release); the
// consumer stops at the first busy header. One copy of the memory, so a record that would cross
// the end gets a padding record first. The spinlock yields after a while: user space has no
// preemption to disable, and a holder preempted on a busy 2-CPU machine would otherwise stall
// everyone for a scheduler tick.
class SpinlockPaddingRing {
 public:
  SpinlockPaddingRing() : buf_(new (std::align_val_t{4096}) std::byte[kRingBytes]) {
    std::memset(buf_.get(), 0, kRingBytes);
  }
  struct Writer {
    SpinlockPaddingRing* r;
    bool write(Bytes rec) { return r->write(rec); }
    std::size_t write_some(std::span<const Bytes> recs) { return r->write_some(recs); }
  };
  Writer writer() { return {this}; }
  bool write(Bytes rec) {
    lock();
    const std::size_t at = place(rec.size(), head_.load(std::memory_order_acquire));
    if (at == kNoRoom) {
      unlock();
      return false;
    }
    published_.store(prod_, std::memory_order_release);
    unlock();
    std::memcpy(buf_.get() + at + 8, rec.data(), rec.size());
    flags(at).store(0, std::memory_order_release);
    return true;
  }
  // Lists (up to kMaxList records): the places of the longest prefix that fits, reserved under
  // one acquisition of the lock and published with one store; each record then copied and its
  // busy bit cleared, as write() does.
  static constexpr std::size_t kMaxList = 32;
  std::size_t write_some(std::span<const Bytes> recs) {
    std::array<std::size_t, kMaxList> at{};
    std::size_t n = 0;
    lock();
    const std::size_t head = head_.load(std::memory_order_acquire);
    while (n < recs.size() && n < kMaxList && (at[n] = place(recs[n].size(), head)) != kNoRoom) ++n;
    if (n != 0) published_.store(prod_, std::memory_order_release);
    unlock();
    for (std::size_t i = 0; i < n; ++i) {
      std::memcpy(buf_.get() + at[i] + 8, recs[i].data(), recs[i].size());
      flags(at[i]).store(0, std::memory_order_release);
    }
    return n;
  }
  template <class F>
  std::size_t read(F&& f) {
    const std::size_t end = published_.load(std::memory_order_acquire);
    std::size_t n = 0;
    while (head_local_ < end) {
      const std::size_t at = head_local_ & (kRingBytes - 1);
      const std::uint32_t fl = flags(at).load(std::memory_order_acquire);
      if (fl == kBusy) break;
      if (fl == kPad) {
        head_local_ += kRingBytes - at;
        continue;
      }
      std::uint32_t len = 0;
      std::memcpy(&len, buf_.get() + at, 4);
      f(std::span<std::byte>(buf_.get() + at + 8, len));
      head_local_ += picoring::record_footprint(len);
      ++n;
    }
    head_.store(head_local_, std::memory_order_release);
    return n;
  }

 private:
  static constexpr std::uint32_t kBusy = 2, kPad = 1;
  static constexpr std::size_t kNoRoom = ~std::size_t{0};
  // Under the lock: the index of a record of len bytes (a padding record before it when it would
  // cross the end), its header written busy and prod_ advanced; kNoRoom when it does not fit
  // with the consumer at `head`.
  std::size_t place(std::size_t len, std::size_t head) {
    const std::size_t fp = picoring::record_footprint(len);
    const std::size_t index = prod_ & (kRingBytes - 1);
    const std::size_t pad = index + fp > kRingBytes ? kRingBytes - index : 0;
    if (kRingBytes - (prod_ - head) < pad + fp) return kNoRoom;
    if (pad != 0) header(index, 0, kPad);
    const std::size_t at = (prod_ + pad) & (kRingBytes - 1);
    header(at, static_cast<std::uint32_t>(len), kBusy);
    prod_ += pad + fp;
    return at;
  }
  struct Deleter {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{4096}); }
  };
  std::atomic_ref<std::uint32_t> flags(std::size_t at) {
    return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(buf_.get() + at + 4));
  }
  // Written under the lock, before the position that publishes it.
  void header(std::size_t at, std::uint32_t len, std::uint32_t fl) {
    std::memcpy(buf_.get() + at, &len, 4);
    flags(at).store(fl, std::memory_order_relaxed);
  }
  void lock() {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire);) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 128) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

  std::unique_ptr<std::byte[], Deleter> buf_;
  alignas(128) std::atomic<bool> locked_{false};
  std::size_t prod_ = 0;  // under the lock
  alignas(128) std::atomic<std::size_t> published_{0};
  alignas(128) std::atomic<std::size_t> head_{0};
  alignas(128) std::size_t head_local_ = 0;  // the consumer's
};

// The mutex deque with a pending record per producer.
class MutexDequeMpsc {
 public:
  struct Writer {
    MutexDeque* q;
    std::vector<std::byte> pending;
    std::deque<std::vector<std::byte>> pending_list;
    bool write(Bytes rec) { return q->write(rec, pending); }
    std::size_t write_some(std::span<const Bytes> recs) { return q->write_some(recs, pending_list); }
  };
  Writer writer() { return {&q_, {}, {}}; }
  template <class F>
  std::size_t read(F&& f) {
    return q_.read(f);
  }

 private:
  MutexDeque q_;
};

// A many-producer contender whose producers hand it lists (Lists above).
template <class Q>
struct ListsMany : Q {
  static_assert(Lists<typename Q::Writer>::kList <= SpinlockPaddingRing::kMaxList, "the spinlock ring takes lists");
  Lists<typename Q::Writer> writer() { return Lists<typename Q::Writer>(Q::writer()); }
};

// --- the run --------------------------------------------------------------------------------------

struct Workload {
  std::string name;
  std::vector<std::uint32_t> lengths;  // cycled
  std::size_t records = 0;
  std::uint64_t expected = 0;
  // Dependent multiply-adds per record before each write (producer) or after each read
  // (consumer): a side that formats or parses its records (the work table).
  int producer_work = 0;
  int consumer_work = 0;
};

// `work` dependent multiply-adds from `seed`; the empty asm keeps each one (and the result
// needs no use), so the checksums stay those of the records alone.
inline void burn(std::uint64_t seed, int work) {
  for (int w = 0; w < work; ++w) {
    seed = seed * 0x9E3779B97F4A7C15ULL + 1;
    asm volatile("" : "+r"(seed));
  }
}

// What every producer copies records from (made once, read-only afterwards).
const std::vector<std::byte>& source() {
  static const std::vector<std::byte> bytes = [] {
    std::vector<std::byte> v(65536 + 512);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::byte>(i * 131 + (i >> 8));
    return v;
  }();
  return bytes;
}

Bytes record_at(const Workload& w, std::size_t i) {
  return {source().data() + (i % 64) * 8, w.lengths[i % w.lengths.size()]};
}

// Reads that found nothing, per record, in the last run_one: how often the consumer caught up
// with the producer (see the regime table in main).
double last_empty_reads_per_record = 0;

template <class Q>
double run_one(const Workload& w) {
  auto q = std::make_unique<Q>();
  // The producer works from copies of what it needs (by value), and the consumer keeps its
  // checksum on a line of its own: otherwise the harness itself can make the two threads share
  // a stack line (the consumer's spilled sum next to the queue pointer the producer reloads),
  // which taxes whichever contender's code happens to spill.
  std::atomic<int> ready{0};
  std::thread producer([qp = q.get(), wp = &w, &ready] {
    picoring_bench::pin_this_thread(0);
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    const int work = wp->producer_work;
    for (std::size_t i = 0; i < wp->records; ++i) {
      const Bytes rec = record_at(*wp, i);
      burn(i, work);
      while (!qp->write(rec)) cpu_relax();
    }
    if constexpr (requires { qp->flush(); }) {
      while (!qp->flush()) cpu_relax();
    }
  });
  picoring_bench::pin_this_thread(1);
  ready.fetch_add(1);
  while (ready.load() < 2) {
  }
  const auto t0 = Clock::now();
  struct alignas(128) Sum {
    std::uint64_t v = 0;
  } sum;
  std::size_t got = 0;
  std::size_t empty = 0;
  const int work = w.consumer_work;
  while (got < w.records) {
    const std::size_t n = q->read([&sum, work](std::span<std::byte> r) {
      const std::uint64_t c = picoring_bench::checksum(r);
      sum.v += c;
      burn(c, work);
    });
    if (n == 0) {
      ++empty;
      cpu_relax();
    }
    got += n;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  producer.join();
  if (sum.v != w.expected) {
    std::fprintf(stderr, "%s: checksum mismatch\n", w.name.c_str());
    std::exit(1);
  }
  last_empty_reads_per_record = static_cast<double>(empty) / static_cast<double>(w.records);
  return s;
}

// Rotated rounds of run_one contenders (fns[k](w)), keeping as well the median of each
// contender's empty reads per record: which regime it ran in.
struct CountedRounds {
  picoring_bench::Rounds rounds;
  std::vector<double> empty_reads;
};
template <class Fns>
CountedRounds counted_rounds(int runs, const Fns& fns, const Workload& w) {
  std::vector<std::vector<double>> empty(std::size(fns));
  CountedRounds out{picoring_bench::rotated_rounds(runs, std::size(fns),
                                                   [&](std::size_t k) {
                                                     const double seconds = fns[k](w);
                                                     empty[k].push_back(last_empty_reads_per_record);
                                                     return seconds;
                                                   }),
                    {}};
  for (const auto& e : empty) out.empty_reads.push_back(picoring_bench::median(e));
  return out;
}
// The median over rounds of contender a's time over contender b's (both k > 0).
double median_time_ratio(const picoring_bench::Rounds& rounds, std::size_t a, std::size_t b) {
  std::vector<double> r;
  for (std::size_t i = 0; i < rounds.ratio_to_first[a].size(); ++i) {
    r.push_back(rounds.ratio_to_first[a][i] / rounds.ratio_to_first[b][i]);
  }
  return picoring_bench::median(r);
}

// Producers take every producers-th record (the same records in all, so the same checksum);
// nothing is pinned (there are more threads than CPUs here), and a side that finds nothing to
// do yields after a short spin, so that the scheduler can run the others. The calling thread
// unpins itself first: run_one pinned it, and the producers would inherit that one CPU.
void back_off(int spins) {
  if (spins < 64) {
    cpu_relax();
  } else {
    std::this_thread::yield();
  }
}

template <class Q>
double run_many(const Workload& w, int producers) {
  if (!picoring_bench::unpin_this_thread()) {
    std::fprintf(stderr, "run_many: cannot unpin the consumer thread\n");
    std::exit(1);
  }
  auto q = std::make_unique<Q>();
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(producers));
  for (int k = 0; k < producers; ++k) {
    threads.emplace_back([writer = q->writer(), wp = &w, k, producers, &ready]() mutable {
      ready.fetch_add(1);
      while (ready.load() <= producers) std::this_thread::yield();
      for (auto i = static_cast<std::size_t>(k); i < wp->records; i += static_cast<std::size_t>(producers)) {
        const Bytes rec = record_at(*wp, i);
        for (int spins = 0; !writer.write(rec); ++spins) back_off(spins);
      }
      if constexpr (requires { writer.flush(); }) {
        for (int spins = 0; !writer.flush(); ++spins) back_off(spins);
      }
    });
  }
  ready.fetch_add(1);
  while (ready.load() <= producers) std::this_thread::yield();
  const auto t0 = Clock::now();
  struct alignas(128) Sum {
    std::uint64_t v = 0;
  } sum;
  std::size_t got = 0;
  for (int idle = 0; got < w.records;) {
    const std::size_t n = q->read([&sum](std::span<std::byte> r) { sum.v += picoring_bench::checksum(r); });
    got += n;
    if (n != 0) {
      idle = 0;
    } else if (++idle < 64) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& t : threads) t.join();
  if (sum.v != w.expected) {
    std::fprintf(stderr, "%s, %d producers: checksum mismatch\n", w.name.c_str(), producers);
    std::exit(1);
  }
  return s;
}

struct Contenders {
  std::vector<double (*)(const Workload&)> runs;
  std::size_t fixed_slot_bytes;
};
template <std::size_t S>
Contenders contenders() {
  return {{&run_one<PicoRecords>, &run_one<PaddingRing<>>, &run_one<MutexDeque>, &run_one<FixedSlots<S>>,
           &run_one<PicoRecordsBatching>},
          Slot<S>::capacity_bytes()};
}

Workload make_workload(std::string name, std::vector<std::uint32_t> lengths, std::size_t payload_bytes) {
  Workload w{std::move(name), std::move(lengths), 0, 0};
  std::size_t total = 0;
  for (auto l : w.lengths) total += l;
  const double mean = static_cast<double>(total) / static_cast<double>(w.lengths.size());
  w.records = static_cast<std::size_t>(static_cast<double>(payload_bytes) / mean);
  if (w.records < 1000) w.records = 1000;
  if (w.records > 4'000'000) w.records = 4'000'000;
  for (std::size_t i = 0; i < w.records; ++i) w.expected += picoring_bench::checksum(record_at(w, i));
  return w;
}

// Log-like: most lines 40-300 bytes, some stack traces of 1-4 KiB.
std::vector<std::uint32_t> log_like_lengths() {
  std::mt19937 rng(42);
  std::vector<std::uint32_t> v(4096);
  for (auto& l : v) l = static_cast<std::uint32_t>(rng() % 100 < 95 ? 40 + rng() % 260 : 1024 + rng() % 3072);
  return v;
}

// The many-producer tables' rows, and their contenders rotated in rounds per row: each row
// printed by print(row, rounds, rate in M rec/s of contender k).
struct ManyRow {
  Workload w;
  int producers;
};
// Rotated rounds of n contenders on one workload (run(k) gives contender k's seconds), then
// print(rounds, rate), rate(k) being contender k's median rate in M rec/s.
template <class Run, class Print>
void rounds_row(int runs, std::size_t n, const Workload& w, Run run, Print print) {
  const auto rounds = picoring_bench::rotated_rounds(runs, n, run);
  print(rounds, [&](std::size_t k) {
    return static_cast<double>(w.records) / picoring_bench::median(rounds.seconds[k]) / 1e6;
  });
  std::fflush(stdout);
}
using ManyRun = double (*)(const Workload&, int);
template <std::size_t N, class Print>
void many_producer_rows(int runs, std::size_t payload, const ManyRun (&fns)[N], Print print) {
  const std::size_t each = payload / 2;  // shorter tables than the two-thread one
  std::vector<ManyRow> rows;
  rows.push_back({make_workload("64 B", {64}, each), 2});
  rows.push_back({make_workload("1 KiB", {1024}, each), 2});
  rows.push_back({make_workload("log-like 40 B-4 KiB", log_like_lengths(), each), 2});
  rows.push_back({make_workload("64 B", {64}, each), 4});
  for (const auto& row : rows) {
    rounds_row(
        runs, N, row.w, [&](std::size_t k) { return fns[k](row.w, row.producers); },
        [&](const picoring_bench::Rounds& rounds, auto rate) { print(row, rounds, rate); });
  }
}
// The two-thread tables' rows: fns rotated on each workload.
using TwoThreadRun = double (*)(const Workload&);
template <std::size_t N, class Print>
void two_thread_rows(int runs, const std::vector<Workload>& ws, const TwoThreadRun (&fns)[N], Print print) {
  for (const auto& w : ws) {
    rounds_row(
        runs, N, w, [&](std::size_t k) { return fns[k](w); },
        [&](const picoring_bench::Rounds& rounds, auto rate) { print(w, rounds, rate); });
  }
}

void many_producers_table(int runs, std::size_t payload) {
  std::printf(
      "\n### Variable-size records from several producer threads into one (%zu KiB in flight, median of %d)\n\n"
      "| records | producers | picoring M rec/s | spinlock padding ring (BPF design) | mutex deque | picoring / "
      "spinlock ring | picoring / mutex deque |\n|---|---:|---:|---:|---:|---:|---:|\n",
      kRingBytes >> 10, runs);
  const ManyRun fns[] = {&run_many<PicoRecordsMpsc>, &run_many<SpinlockPaddingRing>, &run_many<MutexDequeMpsc>};
  many_producer_rows(runs, payload, fns, [](const ManyRow& row, const picoring_bench::Rounds& rounds, auto rate) {
    std::printf("| %s | %d | %.2f | %.2f | %.2f | %.2fx | %.2fx |\n", row.w.name.c_str(), row.producers, rate(0),
                rate(1), rate(2), picoring_bench::median(rounds.ratio_to_first[1]),
                picoring_bench::median(rounds.ratio_to_first[2]));
  });
}

// The same producers handing over lists of 32 records: picoring's push_some (one claim and one
// publication per list), the spinlock ring reserving a list's places under one acquisition of
// its lock, the mutex deque queueing a list under one lock; picoring's push beside them.
void many_lists_table(int runs, std::size_t payload) {
  std::printf(
      "\n### Several producer threads, lists of %zu records per call (median of %d)\n\n"
      "| records | producers | picoring push_some M rec/s | spinlock padding ring, lists | mutex deque, lists | "
      "picoring push | picoring / spinlock ring | picoring / mutex deque | push_some / push |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
      Lists<PicoRecords>::kList, runs);
  const ManyRun fns[] = {&run_many<ListsMany<PicoRecordsMpsc>>, &run_many<ListsMany<SpinlockPaddingRing>>,
                         &run_many<ListsMany<MutexDequeMpsc>>, &run_many<PicoRecordsMpsc>};
  many_producer_rows(runs, payload, fns, [](const ManyRow& row, const picoring_bench::Rounds& rounds, auto rate) {
    std::printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx |\n", row.w.name.c_str(), row.producers,
                rate(0), rate(1), rate(2), rate(3), picoring_bench::median(rounds.ratio_to_first[1]),
                picoring_bench::median(rounds.ratio_to_first[2]), picoring_bench::median(rounds.ratio_to_first[3]));
  });
}

// Either side doing some work per record, as a logger formatting lines or a reader parsing them
// does. Without it both sides only copy, and which one is faster (so which one waits for the
// other, and how often the consumer reads lines the producer is still writing) changes from run
// to run; with work on one side the regime is fixed: that side sets the pace.
void work_table(int runs, std::size_t payload) {
  constexpr int kWork = 40;
  std::printf(
      "\n### With work on one side (%d dependent multiply-adds per record before each write, or after each "
      "read; median of %d)\n\n"
      "| records | working side | picoring M rec/s | padding ring | picoring / padding | picoring, batching | "
      "batching / padding | reads that found nothing per record: picoring, padding |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|\n",
      kWork, runs);
  const TwoThreadRun fns[] = {&run_one<PicoRecords>, &run_one<PaddingRing<>>, &run_one<PicoRecordsBatching>};
  for (const bool producer_works : {true, false}) {
    std::vector<Workload> ws;
    ws.push_back(make_workload("64 B", {64}, payload / 2));
    ws.push_back(make_workload("1024 B", {1024}, payload / 2));
    ws.push_back(make_workload("log-like 40 B-4 KiB", log_like_lengths(), payload / 2));
    for (auto& w : ws) {
      (producer_works ? w.producer_work : w.consumer_work) = kWork;
      const CountedRounds counted = counted_rounds(runs, fns, w);
      const auto rate = [&](std::size_t k) {
        return static_cast<double>(w.records) / picoring_bench::median(counted.rounds.seconds[k]) / 1e6;
      };
      std::printf("| %s | %s | %.2f | %.2f | %.2fx | %.2f | %.2fx | %.3f, %.3f |\n", w.name.c_str(),
                  producer_works ? "producer" : "consumer", rate(0), rate(1),
                  picoring_bench::median(counted.rounds.ratio_to_first[1]), rate(2),
                  median_time_ratio(counted.rounds, 1, 2), counted.empty_reads[0], counted.empty_reads[1]);
      std::fflush(stdout);
    }
  }
}

// Lists of records: both designs given the same list of 32 records per call and publishing
// once per list, beside picoring pushing one record at a time and the mutex deque queueing each
// list under one lock. What push_some buys, and how the designs compare when none publishes per
// record.
void lists_table(int runs, std::size_t payload) {
  std::printf(
      "\n### Lists of %zu records per call, one publication per list (two pinned threads, median of %d)\n\n"
      "| records | picoring push_some M rec/s | padding ring, lists | picoring push | mutex deque, lists | "
      "picoring lists / padding lists | push_some / push | picoring lists / mutex deque lists |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|\n",
      Lists<PicoRecords>::kList, runs);
  const TwoThreadRun fns[] = {&run_one<Lists<PicoRecords>>, &run_one<Lists<PaddingRing<>>>, &run_one<PicoRecords>,
                              &run_one<Lists<MutexDeque>>};
  std::vector<Workload> ws;
  for (const std::uint32_t size : {16U, 64U, 256U, 1024U}) {
    ws.push_back(make_workload(std::to_string(size) + " B", {size}, payload / 2));
  }
  ws.push_back(make_workload("log-like 40 B-4 KiB", log_like_lengths(), payload / 2));
  two_thread_rows(runs, ws, fns, [](const Workload& w, const picoring_bench::Rounds& rounds, auto rate) {
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx |\n", w.name.c_str(), rate(0), rate(1),
                rate(2), rate(3), picoring_bench::median(rounds.ratio_to_first[1]),
                picoring_bench::median(rounds.ratio_to_first[2]), picoring_bench::median(rounds.ratio_to_first[3]));
  });
}

// The padding ring's one code on three kinds of memory, and picoring beside them: how much of
// the difference between the two designs is the memory a mirror has to use.
void memory_table(int runs, std::size_t payload) {
  std::printf(
      "\n### The padding ring's code on other memory (two pinned threads, median of %d)\n\n"
      "| records | padding ring, private memory M rec/s | on shared memory | on a mirror's first view | picoring "
      "| shared / private | mirror view / private | picoring / private |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
      runs);
  const TwoThreadRun fns[] = {&run_one<PaddingRing<MemoryKind::private_anon>>,
                              &run_one<PaddingRing<MemoryKind::shared_anon>>,
                              &run_one<PaddingRing<MemoryKind::mirror_view>>, &run_one<PicoRecords>};
  std::vector<Workload> ws;
  for (const std::uint32_t size : {64U, 1024U, 16384U}) {
    ws.push_back(make_workload(std::to_string(size) + " B", {size}, payload / 2));
  }
  two_thread_rows(runs, ws, fns, [](const Workload& w, const picoring_bench::Rounds& rounds, auto rate) {
    // Speed relative to the first: the inverse of the median time ratio.
    const auto speed = [&](std::size_t k) { return 1.0 / picoring_bench::median(rounds.ratio_to_first[k]); };
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2fx | %.2fx | %.2fx |\n", w.name.c_str(), rate(0), rate(1),
                rate(2), rate(3), speed(1), speed(2), speed(3));
  });
}

}  // namespace

int main(int argc, char** argv) {
  picoring_bench::RunOptions options{9, 16};
  if (!picoring_bench::parse_run_options(argc, argv, "--mib", 4096, {1, 2}, options)) return 2;
  const auto runs = static_cast<int>(options.runs);
  const auto mib = static_cast<std::size_t>(options.amount);

  std::printf(
      "\n### Variable-size records between two threads (%zu KiB of records in flight, %zu MiB per run, median of "
      "%d)\n\n",
      kRingBytes >> 10, mib, runs);
  std::printf(
      "| records | picoring M rec/s | GB/s | padding ring | mutex deque | fixed slots (KiB held) | picoring / padding "
      "| picoring / mutex deque | picoring / fixed slots | picoring, batching | batching / padding |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  struct Row {
    Workload w;
    Contenders c;
  };
  std::vector<Row> rows;
  const std::size_t payload = mib << 20;
  const auto uniform = [&](std::uint32_t n) { return make_workload(std::to_string(n) + " B", {n}, payload); };
  rows.push_back({uniform(16), contenders<16>()});
  rows.push_back({uniform(64), contenders<64>()});
  rows.push_back({uniform(256), contenders<256>()});
  rows.push_back({uniform(1024), contenders<1024>()});
  rows.push_back({uniform(4096), contenders<4096>()});
  rows.push_back({uniform(16384), contenders<16384>()});
  rows.push_back({uniform(65536), contenders<65536>()});
  rows.push_back({make_workload("log-like 40 B-4 KiB", log_like_lengths(), payload), contenders<4096>()});
  // Per row: the median of the empty reads per record of picoring, the padding ring, batching.
  std::vector<std::array<double, 3>> regimes;
  for (auto& row : rows) {
    const CountedRounds counted = counted_rounds(runs, row.c.runs, row.w);
    regimes.push_back({counted.empty_reads[0], counted.empty_reads[1], counted.empty_reads[4]});
    const auto& secs = counted.rounds.seconds;
    const auto& ratio = counted.rounds.ratio_to_first;
    std::vector<double> rate;  // records per second, median
    rate.reserve(secs.size());
    for (auto& s : secs) rate.push_back(static_cast<double>(row.w.records) / picoring_bench::median(s));
    double total = 0;
    for (auto l : row.w.lengths) total += l;
    const double mean_len = total / static_cast<double>(row.w.lengths.size());
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f (%zu) | %.2fx | %.2fx | %.2fx | %.2f | %.2fx |\n",
                row.w.name.c_str(), rate[0] / 1e6, rate[0] * mean_len / 1e9, rate[1] / 1e6, rate[2] / 1e6,
                rate[3] / 1e6, row.c.fixed_slot_bytes >> 10, picoring_bench::median(ratio[1]),
                picoring_bench::median(ratio[2]), picoring_bench::median(ratio[3]), rate[4] / 1e6,
                median_time_ratio(counted.rounds, 1, 4));  // padding's time over batching's
    std::fflush(stdout);
  }
  // Why the ratio to the padding ring moves between runs: a consumer that keeps finding the queue
  // empty is at the producer's heels, reading the lines the producer is about to write, and
  // every record then costs line transfers both ways. Which design lands there depends on which
  // side is faster, not on the design (docs/benchmarks.md, Variable-size records).
  std::printf(
      "\nReads that found nothing, per record (median over runs): which regime each consumer ran in.\n\n"
      "| records | picoring | padding ring | picoring, batching |\n|---|---:|---:|---:|\n");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::printf("| %s | %.3f | %.3f | %.3f |\n", rows[i].w.name.c_str(), regimes[i][0], regimes[i][1], regimes[i][2]);
  }
  work_table(runs, payload);
  lists_table(runs, payload);
  many_producers_table(runs, payload);
  many_lists_table(runs, payload);
  memory_table(runs, payload);
  std::printf(
      "\nM rec/s: millions of records per second, median over runs; GB/s: picoring's payload bytes per second.\n"
      "Ratios: the other's time over picoring's in the same round, median over rounds; above 1, picoring is faster.\n"
      "picoring, batching: the same queue with set_batching({4096, 1us}) on both ends (M rec/s).\n"
      "Two-thread tables: threads pinned to CPUs 0 and 1. Several producers: no thread pinned, the\n"
      "consumer and the producers share every CPU the process may use. Every contender but the fixed slots\n"
      "holds %zu KiB of records; fixed slots hold what the column says (whole pages of slots).\n",
      kRingBytes >> 10);
  return 0;
}
