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
//   and a subtraction: no division or modulo on any push or pop (only when a handle is made or
//   the queue is torn down).
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
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "picoring/detail/park.hpp"
#include "picoring/ring.hpp"

namespace picoring {

// Throughput mode for one end of an SPSC queue; off by default, set per handle with
// set_batching(). Why: a side that tails the other closely (a consumer that keeps finding one
// new element, a producer that keeps finding one free slot) reads the other side's counter for
// every element, so that counter's cache line, and the data line beside the reader, cross
// between the cores once per element and both threads run at the speed of those transfers.
// What it does: when a refresh of the other side's counter (a call that needs more than this
// side's cached copy shows) finds fewer than `min_batch` elements (consumer) or free slots
// (producer), and this side is streaming (its previous refresh found some, with fewer than
// kStreamingRefreshes fruitless ones since), the call waits `max_wait` spinning on the clock,
// touching no shared line, then refreshes once more and goes on with what is there. A side
// that was idle is never delayed: the first element after an empty spell is taken at once, so a
// request-reply round trip is unaffected. Cost: up to max_wait of added latency for elements
// that arrive in a stream. Which calls may wait: the producer's try_push, try_emplace,
// push_slice, push_some, reserve and push_wait; the consumer's try_pop, pop_slice, peek and
// drain. size(), free_space(), release(), commit() and wait() never do.
struct Batching {
  std::size_t min_batch = 0;             // elements or free slots; 0 turns batching off
  std::chrono::nanoseconds max_wait{0};  // the wait; 0 turns batching off
};

namespace detail {

// One handle's batching state (see Batching). Touches nothing shared.
class Pacer {
 public:
  // Fruitless refreshes after which a side counts as idle rather than streaming.
  static constexpr unsigned kStreamingRefreshes = 4;

  void set(Batching b) {
    if (b.max_wait.count() < 0) throw_invalid_argument("picoring: set_batching(): max_wait < 0");
    on_ = b.min_batch != 0 && b.max_wait.count() != 0;
    min_batch_ = on_ ? b.min_batch : 0;
    max_wait_ = on_ ? b.max_wait : std::chrono::nanoseconds(0);
  }
  Batching get() const noexcept { return {min_batch_, max_wait_}; }

  // Called after each refresh with what it found; true when the caller should wait() and
  // refresh again.
  bool thin(std::size_t found) noexcept {
    if (!on_) return false;
    if (found == 0) {
      if (fruitless_ < kStreamingRefreshes) ++fruitless_;
      return false;
    }
    const bool streaming = fruitless_ < kStreamingRefreshes;
    fruitless_ = 0;
    return streaming && found < min_batch_;
  }
  void wait() const noexcept {
    const auto end = deadline_after(max_wait_);
    do {
      for (int i = 0; i < 8; ++i) cpu_relax();
    } while (std::chrono::steady_clock::now() < end);
  }

 private:
  bool on_ = false;
  unsigned fruitless_ = kStreamingRefreshes;  // a new handle is idle
  std::size_t min_batch_ = 0;
  std::chrono::nanoseconds max_wait_{0};
};

template <class T>
struct SpscState {
  SpscState(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept
      : mem(MirrorBuffer::create(min_capacity, sizeof(T), options, err)),
        base(reinterpret_cast<T*>(mem.data())),
        cap(mem.size() / sizeof(T)) {
    init_fences();
  }
  SpscState(const SpscState&) = delete;
  SpscState& operator=(const SpscState&) = delete;
  // Sets both counters to `start` (0 at creation; tests start near the wrap-around). Only
  // before the handles exist.
  void start_at(std::size_t start) noexcept {
    tail.store(start, std::memory_order_relaxed);
    head.store(start, std::memory_order_relaxed);
    consumer_index = cap == 0 ? 0 : start % cap;  // not a hot path
  }
  ~SpscState() {
    // The slots are found from the consumer's own slot index, as the handles find them: once
    // the free-running counters have wrapped around (2^32 elements on 32-bit systems),
    // `head % cap` is another slot unless cap is a power of two.
    if constexpr (!std::is_trivially_destructible_v<T>) {
      if (mem.inherited()) return;  // a fork child's copy: the elements are the parent's
      const std::size_t n = tail.load(std::memory_order_acquire) - head.load(std::memory_order_acquire);
      std::size_t i = consumer_index;
      for (std::size_t k = 0; k < n; ++k) {
        std::destroy_at(base + i);
        if (++i == cap) i = 0;
      }
    }
  }

  // The counters' type. Only their differences are used, which are exact modulo its width.
  using Position = std::size_t;

  MirrorBuffer mem;
  T* base;
  std::size_t cap;
  // The consumer's slot index, in [0, cap): written by the consumer handle when it leaves (it
  // always leaves before the state goes), read by the destructor.
  std::size_t consumer_index = 0;
  // Producer's line: written by the producer, read by the consumer.
  alignas(kFalseSharingRange) std::atomic<std::size_t> tail{0};
  // Consumer's line.
  alignas(kFalseSharingRange) std::atomic<std::size_t> head{0};
  // Read on every push and pop, written only on close and when a side parks: stays shared in
  // both caches. The sleeping flags must not sit next to `tail` or `head`: a side that loads a
  // flag right after storing its counter would find that line taken by the other side (which
  // just read the counter) and stall on the load (docs/design.md, The SPSC queue).
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> closed{0};
  std::atomic<std::uint32_t> consumer_sleeping{0};  // written by the consumer only when it parks
  std::atomic<std::uint32_t> producer_sleeping{0};  // written by the producer only when it parks
  std::atomic<int> handles{2};
  // Futex words, bumped only to wake a sleeper.
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> data_word{0};
  std::atomic<std::uint32_t> space_word{0};

  // Either end going away closes the queue.
  bool closes_when_leaving(bool /*producer*/) noexcept { return true; }
};

// What both ends of a queue share: the state pointer, the mapping, closing, and the last-handle
// cleanup. State is SpscState<T> or MpscState<T>.
// Each handle sits on cache lines of its own: the producer's and the consumer's private
// counters change on every call, and handles usually live side by side (make_spsc returns a
// pair). Without the alignment the two threads would share a line through their handles.
template <class T, class State>
class alignas(kFalseSharingRange) QueueHandle {
 public:
  QueueHandle(const QueueHandle&) = delete;
  QueueHandle& operator=(const QueueHandle&) = delete;

  // Capacity in elements (the rounded size, see mirror_size_for). 0 for an empty handle.
  std::size_t capacity() const noexcept { return cap_; }
  // True once either side called close() or was destroyed.
  bool closed() const noexcept { return s_ != nullptr && s_->closed.load(std::memory_order_acquire) != 0; }
  // Marks the queue closed and wakes the other side. Idempotent.
  void close() noexcept {
    if (s_ == nullptr) return;
    s_->closed.store(1, std::memory_order_seq_cst);
    s_->data_word.fetch_add(1, std::memory_order_release);
    unpark_all(s_->data_word);
    s_->space_word.fetch_add(1, std::memory_order_release);
    unpark_all(s_->space_word);
  }
  explicit operator bool() const noexcept { return s_ != nullptr; }

 protected:
  QueueHandle() noexcept = default;
  QueueHandle(State* s, bool producer) noexcept
      : s_(s), base_(s != nullptr ? s->base : nullptr), cap_(s != nullptr ? s->cap : 0), producer_(producer) {}
  QueueHandle(QueueHandle&& o) noexcept
      : s_(std::exchange(o.s_, nullptr)),
        base_(std::exchange(o.base_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        producer_(o.producer_) {}
  ~QueueHandle() { drop(); }
  void take(QueueHandle&& o) noexcept {
    drop();
    s_ = std::exchange(o.s_, nullptr);
    base_ = std::exchange(o.base_, nullptr);
    cap_ = std::exchange(o.cap_, 0);
    producer_ = o.producer_;
  }
  T* slots() const noexcept { return launder_mirror(base_); }
  std::size_t wrap(std::size_t i) const noexcept { return i >= cap_ ? i - cap_ : i; }

  State* s_ = nullptr;
  T* base_ = nullptr;
  std::size_t cap_ = 0;
  bool producer_ = false;

 private:
  void drop() noexcept {
    if (s_ == nullptr) return;
    if (s_->closes_when_leaving(producer_)) close();
    if (s_->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
    s_ = nullptr;
  }
};

}  // namespace detail

template <class T>
class SpscConsumer;

// The producing end. Every member is O(1) except the bulk ones (O(n) copies).
template <class T>
class SpscProducer : public detail::QueueHandle<T, detail::SpscState<T>> {
  using Base = detail::QueueHandle<T, detail::SpscState<T>>;

 public:
  SpscProducer() noexcept = default;
  SpscProducer(SpscProducer&& o) noexcept
      : Base(std::move(o)),
        tail_(std::exchange(o.tail_, 0)),
        index_(std::exchange(o.index_, 0)),
        head_cache_(std::exchange(o.head_cache_, 0)),
        pacer_(std::exchange(o.pacer_, {})) {}
  SpscProducer& operator=(SpscProducer&& o) noexcept {
    if (this != &o) {
      // The counters first: take() moves only the base part, but reading `o` after it reads
      // as a use after move.
      tail_ = std::exchange(o.tail_, 0);
      index_ = std::exchange(o.index_, 0);
      head_cache_ = std::exchange(o.head_cache_, 0);
      pacer_ = std::exchange(o.pacer_, {});
      this->take(std::move(o));
    }
    return *this;
  }
  ~SpscProducer() = default;  // closes the queue

  // Free slots as this side knows them (may be fewer than the truth, never more).
  std::size_t free_space() noexcept { return free_for(this->cap_ + 1); }

  // Turns batching on (min_batch free slots, max_wait) or off ({} or a zero member): see
  // Batching. Only this handle's thread may call it. Throws std::invalid_argument, changing
  // nothing, if max_wait is negative.
  void set_batching(Batching b) { pacer_.set(b); }
  Batching batching() const noexcept { return pacer_.get(); }

  // Appends one element; false when full or closed (the value is then left untouched).
  // Strong guarantee if T's constructor throws.
  template <class... Args>
  bool try_emplace(Args&&... args) {
    if (free_to_fill(1) < 1 || is_closed()) return false;
    std::construct_at(this->slots() + index_, std::forward<Args>(args)...);
    publish(1);
    return true;
  }
  bool try_push(const T& value) { return try_emplace(value); }
  bool try_push(T&& value) { return try_emplace(std::move(value)); }

  // Appends every element of items, or none (false) when fewer slots are free or closed.
  bool push_slice(std::span<const T> items) {
    if (this->s_ == nullptr || items.size() > free_to_fill(items.size()) || is_closed()) return false;
    copy_in(items);
    return true;
  }
  // Appends as many elements of items as fit; returns how many (0 when full or closed).
  std::size_t push_some(std::span<const T> items) {
    if (this->s_ == nullptr || is_closed()) return 0;
    const std::size_t free = free_to_fill(items.size());
    const std::size_t n = items.size() < free ? items.size() : free;
    copy_in(items.first(n));
    return n;
  }

  // Exactly n contiguous free slots to fill in place (wrapping included), or an empty span
  // when fewer are free or the queue is closed. Nothing is visible to the consumer before
  // commit(). Zero copy.
  std::span<T> reserve(std::size_t n) noexcept requires mirror_safe<T> {
    if (this->s_ == nullptr || n > free_to_fill(n) || is_closed()) return {};
    return {this->slots() + index_, n};
  }
  // Publishes the first n reserved slots. Throws std::out_of_range, publishing nothing, if
  // n > free_space().
  void commit(std::size_t n) requires mirror_safe<T> {
    if (n > free_for(n)) detail::throw_out_of_range("picoring: commit(n): n > free_space()");
    if (n != 0) publish(n);
  }

  // Blocking push: waits (spinning briefly, then parked) until a slot is free, the timeout
  // passes, or the queue is closed. The value is moved from only when ok is returned.
  template <class U, class Rep, class Period>
  QueueStatus push_wait(U&& value, std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (is_closed()) return QueueStatus::closed;
    if (free_to_fill(1) < 1) {
      auto& s = *this->s_;
      const auto deadline = detail::deadline_after(timeout);
      const QueueStatus st = detail::wait_until([this] { return free_for(1) >= 1; }, s.closed, s.producer_sleeping,
                                                s.space_word, deadline);
      if (st != QueueStatus::ok) return st;
      if (is_closed()) return QueueStatus::closed;
    }
    std::construct_at(this->slots() + index_, std::forward<U>(value));
    publish(1);
    return QueueStatus::ok;
  }

 private:
  template <class U>
  friend std::pair<SpscProducer<U>, SpscConsumer<U>> make_spsc_pair(detail::SpscState<U>*);
  // Starts where the state's counters are: 0, unless a test moved them (start_at).
  explicit SpscProducer(detail::SpscState<T>* s) noexcept
      : Base(s, true),
        tail_(s != nullptr ? s->tail.load(std::memory_order_relaxed) : 0),
        index_(s != nullptr ? tail_ % s->cap : 0),  // not a hot path
        head_cache_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0) {}

  bool is_closed() const noexcept { return this->s_->closed.load(std::memory_order_relaxed) != 0; }

  // Free slots, reloading the consumer's counter only if the cached one shows fewer than want.
  // An empty handle has every counter and the capacity at 0, so it always lands in the reload
  // branch, where the null check costs the fast path nothing. `filling`: the caller is about to
  // fill slots, so batching may wait before a second reload (see Batching).
  std::size_t free_for(std::size_t want, bool filling = false) noexcept {
    std::size_t free = this->cap_ - (tail_ - head_cache_);
    if (free < want) {
      if (this->s_ == nullptr) return 0;
      head_cache_ = this->s_->head.load(std::memory_order_acquire);
      free = this->cap_ - (tail_ - head_cache_);
      if (filling && pacer_.thin(free)) {
        pacer_.wait();
        head_cache_ = this->s_->head.load(std::memory_order_acquire);
        free = this->cap_ - (tail_ - head_cache_);
      }
    }
    return free;
  }
  std::size_t free_to_fill(std::size_t want) noexcept { return free_for(want, true); }

  void copy_in(std::span<const T> items) {
    const std::size_t n = items.size();
    if (n == 0) return;
    T* const s = this->slots();
    const std::size_t first = n < this->cap_ - index_ ? n : this->cap_ - index_;
    if constexpr (mirror_safe<T>) {
      // Split at the physical end, as PicoRing does: no store straddles the seam.
      std::memcpy(s + index_, items.data(), first * sizeof(T));
      if (first != n) std::memcpy(s, items.data() + first, (n - first) * sizeof(T));
    } else {
      std::size_t done = 0;
      PICORING_TRY {
        for (; done < n; ++done) std::construct_at(s + this->wrap(index_ + done), items[done]);
      }
      PICORING_CATCH_ALL {
        for (std::size_t i = 0; i < done; ++i) std::destroy_at(s + this->wrap(index_ + i));
        PICORING_RETHROW;
      }
    }
    publish(n);
  }

  void publish(std::size_t n) noexcept {
    tail_ += n;
    index_ = this->wrap(index_ + n);
    this->s_->tail.store(tail_, std::memory_order_release);
    detail::wake(this->s_->consumer_sleeping, this->s_->data_word);
  }

  std::size_t tail_ = 0;        // items published (mirror of s_->tail, owned here)
  std::size_t index_ = 0;       // slot of the next element, in [0, capacity)
  std::size_t head_cache_ = 0;  // last value read of s_->head
  detail::Pacer pacer_;
};

namespace detail {

// The consuming end, shared by the SPSC and MPSC queues. Derived supplies
// readable(want, taking): how many elements from the consumer's position are readable
// (published and contiguous), refreshing its view of the producers only when it shows fewer
// than want; `taking` says the caller is about to take elements (SPSC batching applies).
// Every member is O(1) except the bulk ones (O(n)).
template <class T, class State, class Derived>
class QueueConsumer : public QueueHandle<T, State> {
  using Base = QueueHandle<T, State>;

 public:
  // Readable elements as this side knows them after a fresh look (the producer may add more).
  std::size_t size() noexcept { return available(this->cap_ + 1); }
  QueueConsumer(const QueueConsumer&) = delete;
  QueueConsumer& operator=(const QueueConsumer&) = delete;

  // Removes the oldest element; nullopt / false when empty. Strong guarantee: if constructing
  // the result (or assigning out) throws, the element stays the oldest in the queue.
  std::optional<T> try_pop() {
    if (available_to_take(1) < 1) return std::nullopt;
    T* slot = this->slots() + index_;
    const OnSuccess done([this, slot]() noexcept {
      std::destroy_at(slot);
      release_slots(1);
    });
    return std::optional<T>(std::move(*slot));
  }
  bool try_pop(T& out) {
    if (available_to_take(1) < 1) return false;
    T* slot = this->slots() + index_;
    out = std::move(*slot);
    std::destroy_at(slot);
    release_slots(1);
    return true;
  }

  // Moves up to out.size() oldest elements into out; returns how many. If assigning an element
  // into out throws, the elements moved before it are popped (they are in out), that element
  // and the ones after it stay in the queue, and the exception propagates.
  std::size_t pop_slice(std::span<T> out) {
    const std::size_t have = available_to_take(out.size());
    const std::size_t n = out.size() < have ? out.size() : have;
    if (n == 0) return 0;
    T* const s = this->slots();
    const std::size_t first = n < this->cap_ - index_ ? n : this->cap_ - index_;
    if constexpr (mirror_safe<T>) {
      std::memcpy(out.data(), s + index_, first * sizeof(T));
      if (first != n) std::memcpy(out.data() + first, s, (n - first) * sizeof(T));
    } else {
      std::size_t done = 0;
      PICORING_TRY {
        for (; done < n; ++done) {
          T* slot = s + this->wrap(index_ + done);
          out[done] = std::move(*slot);
          std::destroy_at(slot);
        }
      }
      PICORING_CATCH_ALL {
        // The slots already emptied must not stay readable (they would be destroyed again).
        if (done != 0) release_slots(done);
        PICORING_RETHROW;
      }
    }
    release_slots(n);
    return n;
  }

  // Every readable element, oldest first, as one contiguous span (wrapped data included). The
  // span stays valid until release() frees its elements: the producer never touches them.
  std::span<T> peek() noexcept requires mirror_safe<T> {
    return {this->slots() + index_, available_to_take(this->cap_ + 1)};
  }
  // Frees the n oldest elements for the producer. Throws std::out_of_range, freeing nothing,
  // if n is more than is readable.
  void release(std::size_t n) {
    if (n > available(n)) detail::throw_out_of_range("picoring: release(n): n > readable");
    if constexpr (!std::is_trivially_destructible_v<T>) {
      T* const s = this->slots();
      for (std::size_t i = 0; i < n; ++i) std::destroy_at(s + this->wrap(index_ + i));
    }
    if (n != 0) release_slots(n);
  }

  // Calls f(T&) on up to max readable elements in place, oldest first, then destroys them and
  // frees their slots with one publication. Returns how many were visited. If f throws, the
  // elements visited before are released and the exception propagates.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    const std::size_t have = available_to_take(max);
    const std::size_t n = max < have ? max : have;
    T* const s = this->slots();
    std::size_t done = 0;
    PICORING_TRY {
      for (; done < n; ++done) f(s[this->wrap(index_ + done)]);
    }
    PICORING_CATCH_ALL {
      release(done);
      PICORING_RETHROW;
    }
    release(done);
    return done;
  }
  template <class F>
  [[deprecated("renamed drain(f, max): release(n) is the one name for dropping elements")]] std::size_t consume(
      F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    return drain(std::forward<F>(f), max);
  }

  // Blocks until at least one element is readable (ok), the timeout passes (timed_out), or the
  // queue is closed and empty (closed).
  template <class Rep, class Period>
  QueueStatus wait(std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (available(1) >= 1) return QueueStatus::ok;
    auto& s = *this->s_;
    return wait_until([this] { return available(1) >= 1; }, s.closed, s.consumer_sleeping, s.data_word,
                      deadline_after(timeout));
  }
  // Blocking pop: wait(), then try_pop().
  template <class Rep, class Period>
  QueueStatus pop_wait(T& out, std::chrono::duration<Rep, Period> timeout) {
    const QueueStatus st = wait(timeout);
    if (st == QueueStatus::ok) try_pop(out);
    return st;
  }

 protected:
  QueueConsumer() noexcept = default;
  // Starts where the state's counters are: 0, unless a test moved them (start_at).
  explicit QueueConsumer(State* s) noexcept
      : Base(s, false),
        head_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0),
        index_(s != nullptr ? static_cast<std::size_t>(head_ % s->cap) : 0) {}  // not a hot path
  // A moved-from handle keeps no counters: Derived::readable relies on an empty handle having
  // them all at 0.
  QueueConsumer(QueueConsumer&& o) noexcept
      : Base(std::move(o)), head_(std::exchange(o.head_, 0)), index_(std::exchange(o.index_, 0)) {}
  void take(QueueConsumer&& o) noexcept {
    leave();
    head_ = std::exchange(o.head_, 0);
    index_ = std::exchange(o.index_, 0);
    Base::take(std::move(o));
  }
  ~QueueConsumer() { leave(); }

  // Derived::readable must return 0 for an empty handle (all counters 0, no state).
  std::size_t available(std::size_t want) noexcept { return static_cast<Derived*>(this)->readable(want, false); }
  // The same for the calls that take elements: SPSC batching may wait here (see Batching).
  std::size_t available_to_take(std::size_t want) noexcept { return static_cast<Derived*>(this)->readable(want, true); }

  void release_slots(std::size_t n) noexcept {
    head_ += n;
    index_ = this->wrap(index_ + n);
    this->s_->head.store(head_, std::memory_order_release);
    wake(this->s_->producer_sleeping, this->s_->space_word);
  }

  typename State::Position head_ = 0;  // elements released (mirror of s_->head, owned here)
  std::size_t index_ = 0;              // slot of the oldest element, in [0, capacity)

 private:
  // Tells the state where the remaining elements start, for the last handle's cleanup.
  void leave() noexcept {
    if (this->s_ != nullptr) this->s_->consumer_index = index_;
  }
};

}  // namespace detail

// The consuming end of an SPSC queue: see detail::QueueConsumer for its members.
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
  template <class U>
  friend std::pair<SpscProducer<U>, SpscConsumer<U>> make_spsc_pair(detail::SpscState<U>*);
  explicit SpscConsumer(detail::SpscState<T>* s) noexcept
      : Base(s), tail_cache_(s != nullptr ? s->tail.load(std::memory_order_relaxed) : 0) {}

  // Reloads the producer's counter only if the cached one shows fewer than want. An empty
  // handle (counters 0) always takes the reload branch, which checks for it.
  std::size_t readable(std::size_t want, bool taking) noexcept {
    std::size_t have = tail_cache_ - this->head_;
    if (have < want) {
      if (this->s_ == nullptr) return 0;
      tail_cache_ = this->s_->tail.load(std::memory_order_acquire);
      have = tail_cache_ - this->head_;
      if (taking && pacer_.thin(have)) {
        pacer_.wait();
        tail_cache_ = this->s_->tail.load(std::memory_order_acquire);
        have = tail_cache_ - this->head_;
      }
    }
    return have;
  }

  std::size_t tail_cache_ = 0;
  detail::Pacer pacer_;
};

template <class T>
std::pair<SpscProducer<T>, SpscConsumer<T>> make_spsc_pair(detail::SpscState<T>* s) {
  return {SpscProducer<T>(s), SpscConsumer<T>(s)};
}

namespace detail {
// Allocates a queue's shared state: null, with err set, on any failure, and nothing left behind.
template <class State>
State* new_queue_state(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept {
  auto* s = new (std::nothrow) State(min_capacity, options, err);
  if (s == nullptr) {
    err = {std::make_error_code(std::errc::not_enough_memory), "allocate queue state"};
  } else if (err) {
    delete s;
    s = nullptr;
  }
  return s;
}
}  // namespace detail

// Creates a queue of at least min_capacity elements and returns its two ends. Errors as
// PicoRing's constructors (std::invalid_argument, std::length_error, std::system_error).
template <class T>
std::pair<SpscProducer<T>, SpscConsumer<T>> make_spsc(std::size_t min_capacity, MirrorOptions options = {}) {
  Error err;
  auto* s = detail::new_queue_state<detail::SpscState<T>>(min_capacity, options, err);
  if (s == nullptr) throw_error(err);
  return make_spsc_pair<T>(s);
}

// Non-throwing creation: on failure `err` is set and both handles are empty (every call on
// them fails: pushes return false, pops find nothing, waits report closed).
template <class T>
std::pair<SpscProducer<T>, SpscConsumer<T>> make_spsc(std::size_t min_capacity, Error& err,
                                                      MirrorOptions options = {}) noexcept {
  auto* s = detail::new_queue_state<detail::SpscState<T>>(min_capacity, options, err);
  if (s == nullptr) return {};
  return make_spsc_pair<T>(s);
}

}  // namespace picoring
