// picoring: a thread-safe multi-producer single-consumer mirrored queue.
//
//   auto [producer, consumer] = picoring::make_mpsc<Event>(1 << 16);
//   auto another = producer;                 // producers are copyable: one copy per thread
//   another.try_push(e);                     // any number of producer threads
//   auto batch = consumer.peek();            // the consumer still gets one contiguous span
//   consumer.release(batch.size());
//
// How it works. Producers claim runs of slots with a compare-and-swap on a shared `claimed`
// counter (a bulk claim of n costs one CAS), write their elements, then publish the run by
// storing its end position into `ends[start]` (release). The consumer walks from its position
// from one published run to the next: `ends[p]` in (p, p + capacity] means the run starting at
// p is complete; anything else is left from an earlier lap (or from creation) and means "not yet".
// What is readable is therefore always a contiguous prefix, and the mirror makes it one span.
// Positions are 64-bit on every platform: an entry left from k laps earlier would read as
// published once k * capacity reached the counter's wrap-around, which a 32-bit counter does
// after 2^32 elements (a minute at full speed) and a 64-bit one never does in practice.
//
// Progress guarantee. Claiming is lock-free: a producer retries its CAS only because another
// producer's claim succeeded. No producer ever waits for another producer: a producer that is
// preempted between its claim and its publication delays only the *consumer*, and only for the
// elements queued after its run; the other producers keep claiming and publishing into the free
// space. They stall (try_push fails, push_wait blocks) only once the ring is full, i.e. after
// `capacity` further elements. Order: elements of one producer are consumed in the order that
// producer pushed them; runs of different producers interleave in claim order.
//
// Capacity is a power of two (so a position maps to a slot with a mask), rounded as for every
// ring to whole pages and whole elements. The consumer API is SpscConsumer's (peek, release,
// try_pop, pop_slice, drain, wait, pop_wait); thread rules: each handle used by one thread at
// a time, copies of the producer on as many threads as wanted. The queue closes when the
// consumer goes or the last producer copy goes (or on close()); a closed queue drains.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <utility>

#include "picoring/detail/queue.hpp"
#include "picoring/detail/slots.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/queue_status.hpp"

namespace picoring {

namespace detail {

template <class T>
struct MpscState : QueueShared<T> {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "a producer fills its claimed slot after claiming it, so that step must not throw");
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                "positions are 64-bit everywhere (see above); a lock would void the progress guarantee");
  MpscState(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept {
    // The smallest power of two >= the request that is also a whole number of pages of
    // elements: the page unit (granularity / gcd) is itself a power of two, so this exists.
    const std::size_t unit = mirror_size_for(1, sizeof(T), err) / sizeof(T);
    if (err) return;
    std::size_t want = min_capacity > unit ? min_capacity : unit;
    if (min_capacity == 0) want = 0;
    if (want > (std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 2))) {
      err = {make_error_code(errc::size_overflow), "size computation"};
      return;
    }
    const std::size_t capacity = want == 0 ? 0 : std::bit_ceil(want);
    MirrorBuffer m = MirrorBuffer::create(capacity, sizeof(T), options, err);
    if (err) return;
    ends.reset(new (std::nothrow) std::atomic<std::uint64_t>[m.size() / sizeof(T)]);
    if (!ends) {
      err = {std::make_error_code(std::errc::not_enough_memory), "allocate publication array"};
      return;
    }
    this->attach(std::move(m));
    mask = this->slots.capacity() - 1;
    start_at(0);
  }
  using Position = std::uint64_t;  // see "Positions" above

  // Sets every position to `start` (0 at creation; tests start near a wrap-around). Only before
  // the handles exist. start - 1 is outside (p, p + capacity] for every p the consumer will
  // meet before the counter wraps, so every entry reads "not yet published".
  void start_at(std::uint64_t start) noexcept {
    claimed.store(start, std::memory_order_relaxed);
    head.store(start, std::memory_order_relaxed);
    this->consumer_index = static_cast<std::size_t>(start & mask);
    for (std::size_t i = 0; i < this->slots.capacity(); ++i) ends[i].store(start - 1, std::memory_order_relaxed);
  }
  // Every producer is gone: everything claimed is published. At most the capacity remains.
  ~MpscState() {
    this->destroy_remaining(
        static_cast<std::size_t>(claimed.load(std::memory_order_acquire) - head.load(std::memory_order_acquire)));
  }

  // The last producer copy going away closes the queue, as does the consumer.
  bool closes_when_leaving(bool producer) noexcept {
    return !producer || producers.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }

  std::size_t mask = 0;
  std::unique_ptr<std::atomic<std::uint64_t>[]> ends;  // ends[p & mask]: end of the run starting at p
  // Producers' line: claimed by CAS.
  alignas(kFalseSharingRange) std::atomic<std::uint64_t> claimed{0};
  // Consumer's line.
  alignas(kFalseSharingRange) std::atomic<std::uint64_t> head{0};
  std::atomic<int> producers{1};  // producer copies alive (changes only when one is made or goes)
};

}  // namespace detail

template <class T>
class MpscConsumer;

// A producing end. Copy it to get another producer (one per thread). Every member is
// lock-free; O(1) except the bulk ones (O(n) copies).
template <class T>
class MpscProducer : public detail::QueueHandle<T, detail::MpscState<T>> {
  using Base = detail::QueueHandle<T, detail::MpscState<T>>;

 public:
  MpscProducer() noexcept = default;
  // The copy reads the consumer's position from the shared state, never the source's counters.
  MpscProducer(const MpscProducer& o) noexcept : Base(join(o.s_), true), head_cache_(consumer_position(o.s_)) {}
  MpscProducer& operator=(const MpscProducer& o) noexcept {
    if (this != &o) *this = MpscProducer(o);
    return *this;
  }
  MpscProducer(MpscProducer&& o) noexcept : Base(std::move(o)), head_cache_(std::exchange(o.head_cache_, 0)) {}
  MpscProducer& operator=(MpscProducer&& o) noexcept {
    if (this != &o) {
      head_cache_ = std::exchange(o.head_cache_, 0);
      this->take(std::move(o));
    }
    return *this;
  }
  ~MpscProducer() = default;  // the last copy closes the queue

  // Appends one element; false when full or closed. The element is constructed before a slot
  // is claimed (a claimed slot must be filled, so nothing that can throw happens after the
  // claim): if it fails, args may have been consumed.
  template <class... Args>
  bool try_emplace(Args&&... args) {
    T value(std::forward<Args>(args)...);
    return try_push(std::move(value));
  }
  bool try_push(const T& value) {
    if constexpr (std::is_nothrow_copy_constructible_v<T>) {
      return push_one(value);
    } else {
      T copy(value);  // may throw: before the claim
      return push_one(std::move(copy));
    }
  }
  // Moves from value only when it returns true.
  bool try_push(T&& value) { return push_one(std::move(value)); }

  // Appends every element of items as one run (consecutive for the consumer), or none (false)
  // when fewer slots are free or the queue is closed. One CAS whatever the count. For types
  // that are not mirror_safe it needs a non-throwing copy (a claimed run must be filled).
  bool push_slice(std::span<const T> items) requires(mirror_safe<T> || std::is_nothrow_copy_constructible_v<T>) {
    if (items.empty()) return true;
    std::uint64_t at = 0;
    if (!claim(items.size(), at)) return false;
    // Cannot throw (the requires clause), so the claimed run is always filled.
    this->slots_.construct_copies(static_cast<std::size_t>(at & this->s_->mask), items);
    publish(at, items.size());
    return true;
  }

  // Blocking push: waits until a slot is free, the timeout passes, or the queue is closed.
  template <class U, class Rep, class Period>
  QueueStatus push_wait(U&& value, std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (try_push(std::forward<U>(value))) return QueueStatus::ok;
    auto& s = *this->s_;
    const auto deadline = detail::deadline_after(timeout);
    for (;;) {
      if (s.closed.load(std::memory_order_acquire) != 0) return QueueStatus::closed;
      const QueueStatus st =
          detail::wait_until([this] { return has_room(1); }, s.closed, s.producer_sleeping, s.space_word, deadline);
      if (st != QueueStatus::ok) return st;
      // Another producer may take the room first; then wait again.
      if (try_push(std::forward<U>(value))) return QueueStatus::ok;
    }
  }

 private:
  friend struct detail::QueueAccess;
  explicit MpscProducer(detail::MpscState<T>* s) noexcept : Base(s, true), head_cache_(consumer_position(s)) {}

  // A fresh look at the consumer's position, to start a producer's cache: claim() relies on the
  // cache being a value once read from `head` (a lower bound of it), which 0 is not once the
  // positions have wrapped around or a test started them elsewhere.
  static std::uint64_t consumer_position(const detail::MpscState<T>* s) noexcept {
    return s != nullptr ? s->head.load(std::memory_order_acquire) : 0;
  }

  static detail::MpscState<T>* join(detail::MpscState<T>* s) noexcept {
    if (s != nullptr) {
      s->handles.fetch_add(1, std::memory_order_relaxed);
      s->producers.fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }

  bool has_room(std::size_t n) noexcept {
    head_cache_ = this->s_->head.load(std::memory_order_acquire);
    return used(this->s_->claimed.load(std::memory_order_relaxed)) + n <= this->capacity();
  }

  // Positions claimed and not yet released, as this producer knows it (never fewer than the
  // truth): head_cache_ <= head <= claimed at any moment, and t is read after head_cache_. The
  // 64-bit difference is exact; it exceeds the capacity only when the cache is stale, and then
  // claim() reloads it.
  std::uint64_t used(std::uint64_t t) const noexcept { return t - head_cache_; }

  // Claims n consecutive positions; false when fewer are free or the queue is closed.
  bool claim(std::size_t n, std::uint64_t& at) noexcept {
    auto* s = this->s_;
    const std::size_t cap = this->capacity();
    if (s == nullptr || n > cap || s->closed.load(std::memory_order_relaxed) != 0) return false;
    std::uint64_t t = s->claimed.load(std::memory_order_relaxed);
    for (;;) {
      if (used(t) + n > cap) {
        head_cache_ = s->head.load(std::memory_order_acquire);
        t = s->claimed.load(std::memory_order_relaxed);
        if (used(t) + n > cap) return false;
      }
      // Relaxed is enough: the slots' previous contents were released to us through `head`
      // (acquire above), and our elements reach the consumer through ends[] (release).
      if (s->claimed.compare_exchange_weak(t, t + n, std::memory_order_relaxed)) break;
    }
    at = t;
    return true;
  }

  template <class U>
  bool push_one(U&& value) noexcept {
    std::uint64_t at = 0;
    if (!claim(1, at)) return false;
    std::construct_at(this->slots_.base() + static_cast<std::size_t>(at & this->s_->mask), std::forward<U>(value));
    publish(at, 1);
    return true;
  }

  void publish(std::uint64_t at, std::size_t n) noexcept {
    this->s_->ends[static_cast<std::size_t>(at & this->s_->mask)].store(at + n, std::memory_order_release);
    detail::wake(this->s_->consumer_sleeping, this->s_->data_word);
  }

  std::uint64_t head_cache_ = 0;  // a value once read from s_->head
};

// The consuming end: the members of detail::QueueConsumer (detail/queue.hpp): peek, release,
// try_pop, pop_slice, drain, wait, pop_wait, size, close.
template <class T>
class MpscConsumer : public detail::QueueConsumer<T, detail::MpscState<T>, MpscConsumer<T>> {
  using Base = detail::QueueConsumer<T, detail::MpscState<T>, MpscConsumer<T>>;
  friend Base;

 public:
  MpscConsumer() noexcept = default;
  MpscConsumer(MpscConsumer&& o) noexcept : Base(std::move(o)), ready_(std::exchange(o.ready_, 0)) {}
  MpscConsumer& operator=(MpscConsumer&& o) noexcept {
    if (this != &o) {
      ready_ = std::exchange(o.ready_, 0);
      this->take(std::move(o));
    }
    return *this;
  }
  ~MpscConsumer() = default;

 private:
  friend struct detail::QueueAccess;
  // Starts where the state's counters are: 0, unless a test moved them (start_at).
  explicit MpscConsumer(detail::MpscState<T>* s) noexcept
      : Base(s), ready_(s != nullptr ? s->claimed.load(std::memory_order_relaxed) : 0) {}

  // Walks published runs from the end of what is known to be readable. An empty handle
  // (capacity and counters 0) never enters the loop, so it returns 0 without touching state.
  // `may_wait` is unused: MPSC has no batching.
  std::size_t readable(std::size_t want, bool /*may_wait*/) noexcept {
    const std::size_t cap = this->capacity();
    while (known() < want && known() < cap) {
      const auto& s = *this->s_;
      const std::uint64_t end = s.ends[static_cast<std::size_t>(ready_ & s.mask)].load(std::memory_order_acquire);
      // A published run ends in (ready_, ready_ + cap]; an entry left from an earlier lap, or
      // from creation, does not. Compared by difference: exact across the 64-bit wrap-around.
      if (end - ready_ - 1 >= cap) break;
      ready_ = end;
    }
    return known();
  }
  // Published and not yet released: at most the capacity.
  std::size_t known() const noexcept { return static_cast<std::size_t>(ready_ - this->head_); }

  std::uint64_t ready_ = 0;  // end of the published prefix known so far (a run boundary)
};

// Creates a queue of at least min_capacity elements (a power of two) and returns a producer
// (copy it for more producers) and the consumer. Errors as PicoRing's constructors.
template <class T>
std::pair<MpscProducer<T>, MpscConsumer<T>> make_mpsc(std::size_t min_capacity, MirrorOptions options = {}) {
  return detail::make_queue<MpscProducer<T>, MpscConsumer<T>, detail::MpscState<T>>(min_capacity, options);
}

// Non-throwing creation: on failure `err` is set and both handles are empty.
template <class T>
std::pair<MpscProducer<T>, MpscConsumer<T>> make_mpsc(std::size_t min_capacity, Error& err,
                                                      MirrorOptions options = {}) noexcept {
  return detail::make_queue<MpscProducer<T>, MpscConsumer<T>, detail::MpscState<T>>(min_capacity, err, options);
}

}  // namespace picoring
