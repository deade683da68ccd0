// picoring: a thread-safe single-producer single-consumer mirrored queue.
//
//   auto [producer, consumer] = picoring::make_spsc<Message>(4096);
//   // thread A                         // thread B
//   producer.try_push(msg);              auto items = consumer.peek();   // one contiguous span,
//   auto slots = producer.reserve(64);   process(items);                 // wrapped data included
//   fill(slots); producer.commit(64);    consumer.release(items.size());
//
// Thread rules: each handle is move-only and used by one thread at a time; the producer and the
// consumer may run on different threads concurrently. There is exactly one of each, so two
// poppers (or two pushers) cannot share a queue without sharing a handle, which the type forbids
// to copy. Every member of a handle is wait-free except the *_wait forms, which block.
//
// Memory ordering (why each atomic is what it is):
// - `tail` (items ever published) is written only by the producer: a release store after the
//   elements are written, read by the consumer with acquire before it reads them.
// - `head` (items ever released) is written only by the consumer: a release store after the
//   elements are read or destroyed, read by the producer with acquire before it reuses the
//   slots. Each side keeps a cached copy of the other's counter and reloads it only when the
//   cache says the queue is full (producer) or empty (consumer), so the shared cache lines move
//   only when they must. Producer and consumer words sit on separate 128-byte lines (two 64-byte
//   lines, because adjacent-line prefetchers pull pairs).
// - Counters are free-running std::size_t; their difference is the size, exact under unsigned
//   wrap-around. Each side keeps its own slot index in [0, capacity) and wraps it with a compare
//   and a subtraction: no division or modulo on any push or pop.
// - Sleeping: a side that finds nothing to do spins briefly, then sets its `sleeping` flag,
//   executes a heavy fence, re-checks, and parks on a futex word. The other side, after each
//   publish, executes a light fence and reads that flag; only when it is set does it bump the
//   word and wake. With Linux membarrier the light fence is a compiler barrier (no instruction),
//   so the non-blocking fast path pays nothing when nobody sleeps; elsewhere it is a full fence.
//   The flags share a read-mostly line with `closed`, never the counters' lines: that read is
//   then an L1 hit, where next to a counter it would wait for the line the other side just took.
//
// - Batching (off by default, per handle: set_batching) only changes when a side re-reads the
//   other's counter: after a short, bounded wait that touches no shared line. See Batching.
//
// close() (from either handle, also called by each handle's destructor) wakes the other side.
// A closed queue still hands out what it holds: pops succeed until it is empty, then the *_wait
// forms report QueueStatus::closed. Pushes to a closed queue fail. The last handle to go
// destroys the elements still in the queue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "picoring/detail/queue.hpp"
#include "picoring/detail/slots.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/queue_status.hpp"

namespace picoring {

namespace detail {

template <class T>
struct SpscState : QueueShared<T> {
  SpscState(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept {
    this->attach(MirrorBuffer::create(min_capacity, sizeof(T), options, err));
  }
  // Sets both counters to `start` (0 at creation; tests start near the wrap-around). Only
  // before the handles exist.
  void start_at(std::size_t start) noexcept {
    tail.store(start, std::memory_order_relaxed);
    head.store(start, std::memory_order_relaxed);
    const std::size_t cap = this->slots.capacity();
    this->consumer_index = cap == 0 ? 0 : start % cap;  // test set-up, not a hot path
  }
  ~SpscState() { this->destroy_remaining(tail.load(std::memory_order_acquire) - head.load(std::memory_order_acquire)); }

  // The counters' type. Only their differences are used, which are exact modulo its width.
  using Position = std::size_t;

  // Producer's line: items ever published, written by the producer, read by the consumer.
  alignas(kFalseSharingRange) std::atomic<std::size_t> tail{0};
  // Consumer's line: items ever released.
  alignas(kFalseSharingRange) std::atomic<std::size_t> head{0};

  // Either end going away closes the queue.
  bool closes_when_leaving(bool /*producer*/) noexcept { return true; }
};

}  // namespace detail

// The producing end. Every member is O(1) except the bulk ones (O(n) copies).
template <class T>
class SpscProducer : public detail::QueueHandle<T, detail::SpscState<T>> {
  using Base = detail::QueueHandle<T, detail::SpscState<T>>;

 public:
  SpscProducer() noexcept = default;
  SpscProducer(SpscProducer&& o) noexcept
      : Base(std::move(o)),
        run_(std::exchange(o.run_, {})),
        tail_(std::exchange(o.tail_, 0)),
        head_cache_(std::exchange(o.head_cache_, 0)),
        pacer_(std::exchange(o.pacer_, {})) {}
  SpscProducer& operator=(SpscProducer&& o) noexcept {
    if (this != &o) {
      // The counters first: take() moves only the base part, but reading `o` after it reads
      // as a use after move.
      run_ = std::exchange(o.run_, {});
      tail_ = std::exchange(o.tail_, 0);
      head_cache_ = std::exchange(o.head_cache_, 0);
      pacer_ = std::exchange(o.pacer_, {});
      this->take(std::move(o));
    }
    return *this;
  }
  ~SpscProducer() = default;  // closes the queue

  // Free slots as this side knows them (may be fewer than the truth, never more).
  std::size_t free_space() noexcept { return writable(this->capacity() + 1, false); }

  // Turns batching on (min_batch free slots, max_wait) or off ({} or a zero member): see
  // Batching. Only this handle's thread may call it. Throws std::invalid_argument, changing
  // nothing, if max_wait is negative.
  void set_batching(Batching b) { pacer_.set(b); }
  Batching batching() const noexcept { return pacer_.get(); }

  // Appends one element; false when full or closed (the value is then left untouched).
  // Strong guarantee if T's constructor throws.
  template <class... Args>
  bool try_emplace(Args&&... args) {
    T* slot = run_.next;
    if (slot == run_.stop) {
      slot = open_run();
      if (slot == nullptr) return false;
    }
    // Every member read before the atomic load below: the compiler reads none of them again
    // after it (GCC treats an atomic access as a barrier to the handle's memory).
    const std::size_t tail = tail_ + 1;
    detail::SpscState<T>* const s = this->s_;
    if (s->closed.load(std::memory_order_relaxed) != 0) return false;
    std::construct_at(slot, std::forward<Args>(args)...);
    run_.next = slot + 1;
    tail_ = tail;
    s->tail.store(tail, std::memory_order_release);
    detail::wake(s->consumer_sleeping, s->data_word);
    return true;
  }
  bool try_push(const T& value) { return try_emplace(value); }
  bool try_push(T&& value) { return try_emplace(std::move(value)); }

  // Appends every element of items, or none (false) when fewer slots are free or closed.
  // Strong guarantee if copying an element throws.
  bool push_slice(std::span<const T> items) {
    if (this->s_ == nullptr || items.size() > writable(items.size(), true) || is_closed()) return false;
    copy_in(items);
    return true;
  }
  // Appends as many elements of items as fit; returns how many (0 when full or closed).
  std::size_t push_some(std::span<const T> items) {
    if (this->s_ == nullptr || is_closed()) return 0;
    const std::size_t free = writable(items.size(), true);
    const std::size_t n = items.size() < free ? items.size() : free;
    copy_in(items.first(n));
    return n;
  }

  // Exactly n contiguous free slots to fill in place (wrapping included), or an empty span
  // when fewer are free or the queue is closed. Nothing is visible to the consumer before
  // commit(). Zero copy.
  std::span<T> reserve(std::size_t n) noexcept requires mirror_safe<T> {
    if (this->s_ == nullptr || n > writable(n, true) || is_closed()) return {};
    return {this->slots_.base() + index(), n};
  }
  // Publishes the first n reserved slots. Throws std::out_of_range, publishing nothing, if
  // n > free_space().
  void commit(std::size_t n) requires mirror_safe<T> {
    if (n > writable(n, false)) detail::throw_out_of_range("picoring: commit(n): n > free_space()");
    if (n != 0) publish(n);
  }

  // Blocks until at least n slots are free (ok), the timeout passes (timed_out), or the queue
  // is closed (closed). n == 0 is ok at once unless closed. Throws std::invalid_argument if
  // n > capacity(). A producer that fills slots in place or in bulk waits with this, then
  // calls reserve(n) or push_slice, which then succeed.
  template <class Rep, class Period>
  QueueStatus wait_for_space(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr || is_closed()) return QueueStatus::closed;
    if (n > this->capacity()) detail::throw_invalid_argument("picoring: wait_for_space(n, timeout): n > capacity()");
    if (writable(n, false) >= n) return QueueStatus::ok;
    auto& s = *this->s_;
    const QueueStatus st = detail::wait_until([this, n] { return writable(n, false) >= n; }, s.closed,
                                              s.producer_sleeping, s.space_word, detail::deadline_after(timeout));
    return st == QueueStatus::ok && is_closed() ? QueueStatus::closed : st;
  }

  // Blocking push: waits (spinning briefly, then parked) until a slot is free, the timeout
  // passes, or the queue is closed. The value is moved from only when ok is returned.
  template <class U, class Rep, class Period>
  QueueStatus push_wait(U&& value, std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (is_closed()) return QueueStatus::closed;
    if (writable(1, true) < 1) {
      auto& s = *this->s_;
      const auto deadline = detail::deadline_after(timeout);
      const QueueStatus st = detail::wait_until([this] { return writable(1, false) >= 1; }, s.closed,
                                                s.producer_sleeping, s.space_word, deadline);
      if (st != QueueStatus::ok) return st;
      if (is_closed()) return QueueStatus::closed;
    }
    const Next next = after(1);
    std::construct_at(this->slots_.base() + index(), std::forward<U>(value));
    publish(next);
    return QueueStatus::ok;
  }

 private:
  friend struct detail::QueueAccess;
  // Starts where the state's counters are: 0, unless a test moved them (start_at). The queue is
  // empty then, so the next free slot is the consumer's.
  explicit SpscProducer(detail::SpscState<T>* s) noexcept
      : Base(s, true),
        run_(detail::SlotRun<T>::at(s != nullptr ? s->slots.base() + s->consumer_index : nullptr)),
        tail_(s != nullptr ? s->tail.load(std::memory_order_relaxed) : 0),
        head_cache_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0) {}

  bool is_closed() const noexcept { return this->s_->closed.load(std::memory_order_relaxed) != 0; }

  // Free slots, reloading the consumer's counter only if the cached one shows fewer than want
  // (the consumer's readable() is the mirror image). An empty handle has every counter and the
  // capacity at 0, so it always lands in the reload branch, where the null check costs the
  // fast path nothing. `may_wait`: the caller is about to fill slots, so batching may wait.
  std::size_t writable(std::size_t want, bool may_wait) noexcept {
    const std::size_t cap = this->capacity();
    const std::size_t free = cap - (tail_ - head_cache_);
    if (free >= want) return free;
    if (this->s_ == nullptr) return 0;
    return pacer_.refresh(head_cache_, this->s_->head, may_wait,
                          [&](std::size_t head) { return cap - (tail_ - head); });
  }

  void copy_in(std::span<const T> items) {
    if (items.empty()) return;
    this->slots_.construct_copies(index(), items);
    publish(items.size());
  }

  // What publishing n elements leaves: computed before the elements are written, because a
  // store through T* may alias this handle's members (for T = std::size_t it does), and the
  // compiler would then read the counters and the capacity again after each element
  // (docs/benchmarks.md, Path cost).
  struct Next {
    std::size_t tail;
    std::size_t index;
  };
  Next after(std::size_t n) const noexcept { return {tail_ + n, this->slots_.wrap(index() + n)}; }
  // Publishing outside the one-element fast path: the run closes (see SlotRun).
  void publish(Next next) noexcept {
    tail_ = next.tail;
    run_.close_at(this->slots_, next.index);
    this->s_->tail.store(next.tail, std::memory_order_release);
    detail::wake(this->s_->consumer_sleeping, this->s_->data_word);
  }
  void publish(std::size_t n) noexcept { publish(after(n)); }

  // The slot of the next element, in [0, capacity).
  std::size_t index() const noexcept { return run_.index(this->slots_); }
  // try_emplace's slow half, out of line so the loop around a push keeps its registers: the
  // next run of free slots, or null when none is free (or the handle is empty).
  PICORING_NOINLINE T* open_run() noexcept {
    return run_.open(this->slots_, [this]() noexcept { return writable(1, true); });
  }

  detail::SlotRun<T> run_;
  std::size_t tail_ = 0;        // items published (mirror of s_->tail, owned here)
  std::size_t head_cache_ = 0;  // last value read of s_->head
  detail::Pacer pacer_;
};

// The consuming end of an SPSC queue: see detail::QueueConsumer (detail/queue.hpp) for its
// members: try_pop, pop_slice, peek, release, drain, wait, pop_wait, size, close.
template <class T>
class SpscConsumer : public detail::QueueConsumer<T, detail::SpscState<T>, SpscConsumer<T>> {
  using Base = detail::QueueConsumer<T, detail::SpscState<T>, SpscConsumer<T>>;
  friend Base;

 public:
  SpscConsumer() noexcept = default;
  SpscConsumer(SpscConsumer&& o) noexcept
      : Base(std::move(o)), tail_cache_(std::exchange(o.tail_cache_, 0)), pacer_(std::exchange(o.pacer_, {})) {}
  SpscConsumer& operator=(SpscConsumer&& o) noexcept {
    if (this != &o) {
      tail_cache_ = std::exchange(o.tail_cache_, 0);
      pacer_ = std::exchange(o.pacer_, {});
      this->take(std::move(o));
    }
    return *this;
  }
  ~SpscConsumer() = default;  // closes the queue

  // Turns batching on (min_batch elements, max_wait) or off ({} or a zero member): see
  // Batching. Only this handle's thread may call it. Throws std::invalid_argument, changing
  // nothing, if max_wait is negative.
  void set_batching(Batching b) { pacer_.set(b); }
  Batching batching() const noexcept { return pacer_.get(); }

 private:
  friend struct detail::QueueAccess;
  explicit SpscConsumer(detail::SpscState<T>* s) noexcept
      : Base(s), tail_cache_(s != nullptr ? s->tail.load(std::memory_order_relaxed) : 0) {}

  // Readable elements, reloading the producer's counter only if the cached one shows fewer
  // than want: the mirror image of the producer's writable(). An empty handle (counters 0)
  // always takes the reload branch, which checks for it.
  std::size_t readable(std::size_t want, bool may_wait) noexcept {
    const std::size_t have = tail_cache_ - this->head_;
    if (have >= want) return have;
    if (this->s_ == nullptr) return 0;
    return pacer_.refresh(tail_cache_, this->s_->tail, may_wait,
                          [this](std::size_t tail) { return tail - this->head_; });
  }

  std::size_t tail_cache_ = 0;
  detail::Pacer pacer_;
};

// Creates a queue of at least min_capacity elements and returns its two ends. Errors as
// PicoRing's constructors (std::invalid_argument, std::length_error, std::system_error).
template <class T>
std::pair<SpscProducer<T>, SpscConsumer<T>> make_spsc(std::size_t min_capacity, MirrorOptions options = {}) {
  return detail::make_queue<SpscProducer<T>, SpscConsumer<T>, detail::SpscState<T>>(min_capacity, options);
}

// Non-throwing creation: on failure `err` is set and both handles are empty (every call on
// them fails: pushes return false, pops find nothing, waits report closed).
template <class T>
std::pair<SpscProducer<T>, SpscConsumer<T>> make_spsc(std::size_t min_capacity, Error& err,
                                                      MirrorOptions options = {}) noexcept {
  return detail::make_queue<SpscProducer<T>, SpscConsumer<T>, detail::SpscState<T>>(min_capacity, err, options);
}

}  // namespace picoring
