// Internal: what the SPSC and MPSC queues share: the state both ends point to (less its
// counters), the handle base (closing, last-handle cleanup), the consumer's whole API, and the
// one way handles are made from a state (QueueAccess, also the tests' door).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "picoring/detail/park.hpp"
#include "picoring/detail/slots.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/queue_status.hpp"

namespace picoring::detail {

// One handle's batching state (see Batching), and the refresh of the other side's counter that
// both ends share. Touches nothing shared but that counter.
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

  // The slow path of both ends: reloads `cache` from the other side's `counter` and returns
  // count(cache) (free slots for the producer, readable elements for the consumer). When the
  // caller `may_wait` and batching finds that thin, waits once and reloads again.
  template <class Count>
  std::size_t refresh(std::size_t& cache, const std::atomic<std::size_t>& counter, bool may_wait,
                      Count count) noexcept {
    return refresh_with(may_wait, [&]() noexcept {
      cache = counter.load(std::memory_order_acquire);
      return count(cache);
    });
  }
  // The same for any look at the other side: look() reads its counter (and, between processes,
  // checks it, which may throw) and returns what it allows.
  template <class Look>
  std::size_t refresh_with(bool may_wait, Look look) {
    std::size_t found = look();
    if (may_wait && thin(found)) {
      wait();
      found = look();
    }
    return found;
  }

 private:
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

  bool on_ = false;
  unsigned fruitless_ = kStreamingRefreshes;  // a new handle is idle
  std::size_t min_batch_ = 0;
  std::chrono::nanoseconds max_wait_{0};
};

// The shared state of a queue, less its counters: SpscState and MpscState derive from it and
// add theirs, each on a cache line of its own. Allocated once per queue, freed by the last
// handle.
template <class T>
struct QueueShared {
  QueueShared() noexcept = default;
  QueueShared(const QueueShared&) = delete;
  QueueShared& operator=(const QueueShared&) = delete;
  ~QueueShared() = default;

  void attach(MirrorBuffer m) noexcept {
    mem = std::move(m);
    slots = Slots<T>(mem);
  }
  // The last handle's cleanup: destroys the n elements nobody popped, from the consumer's own
  // slot index, as the handles find them (once the free-running counters have wrapped around,
  // 2^32 elements on 32-bit systems, `head % capacity` is another slot unless the capacity is a
  // power of two). In a fork child's copy the elements are the parent's: nothing to do.
  void destroy_remaining(std::size_t n) noexcept {
    if (!mem.inherited()) slots.destroy(consumer_index, n);
  }

  MirrorBuffer mem;
  Slots<T> slots;
  // The consumer's slot index, in [0, capacity): written by the consumer handle when it leaves
  // (it always leaves before the state goes), read by destroy_remaining.
  std::size_t consumer_index = 0;
  // Read on every push and pop, written only on close and when a side parks: stays shared in
  // both caches. The sleeping flags must not sit next to the counters: a side that loads a flag
  // right after storing its counter would find that line taken by the other side (which just
  // read the counter) and stall on the load (docs/design.md, The SPSC queue).
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> closed{0};
  // Sleepers words (see kFastSideFences): their first use registers membarrier.
  std::atomic<std::uint32_t> consumer_sleeping{sleepers_start()};  // the consumer, while it parks
  std::atomic<std::uint32_t> producer_sleeping{sleepers_start()};  // producers parked (SPSC: 0 or 1)
  std::atomic<int> handles{2};
  // Futex words, bumped only to wake a sleeper.
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> data_word{0};
  std::atomic<std::uint32_t> space_word{0};
};

// Keeps a rarely taken slow path out of its caller's loop (and its registers).
#if defined(_MSC_VER) && !defined(__clang__)
#define PICORING_NOINLINE __declspec(noinline)
#else
#define PICORING_NOINLINE __attribute__((noinline))
#endif

// Makes a queue's two handles from its state. The handles' state constructors are private; this
// is their one friend, used by make_spsc / make_mpsc and by the tests (which start the counters
// near a wrap-around with the states' start_at before making the handles).
struct QueueAccess {
  template <class Producer, class Consumer, class State>
  static std::pair<Producer, Consumer> handles(State* s) noexcept {
    return {Producer(s), Consumer(s)};
  }
};

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

// The two forms of every make_* factory: throwing, and non-throwing (err set, both handles
// empty).
template <class Producer, class Consumer, class State>
std::pair<Producer, Consumer> make_queue(std::size_t min_capacity, MirrorOptions options) {
  Error err;
  auto* s = new_queue_state<State>(min_capacity, options, err);
  if (s == nullptr) throw_error(err);
  return QueueAccess::handles<Producer, Consumer>(s);
}
template <class Producer, class Consumer, class State>
std::pair<Producer, Consumer> make_queue(std::size_t min_capacity, Error& err, MirrorOptions options) noexcept {
  auto* s = new_queue_state<State>(min_capacity, options, err);
  if (s == nullptr) return {};
  return QueueAccess::handles<Producer, Consumer>(s);
}

// What both ends of a queue share: the state pointer, the slots, closing, and the last-handle
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
  std::size_t capacity() const noexcept { return slots_.capacity(); }
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
      : s_(s), slots_(s != nullptr ? s->slots : Slots<T>()), producer_(producer) {}
  QueueHandle(QueueHandle&& o) noexcept
      : s_(std::exchange(o.s_, nullptr)), slots_(std::exchange(o.slots_, {})), producer_(o.producer_) {}
  ~QueueHandle() { drop(); }
  void take(QueueHandle&& o) noexcept {
    drop();
    s_ = std::exchange(o.s_, nullptr);
    slots_ = std::exchange(o.slots_, {});
    producer_ = o.producer_;
  }

  State* s_ = nullptr;
  Slots<T> slots_;  // a copy of the state's: read on every call, kept on this handle's line
  bool producer_ = false;

 private:
  void drop() noexcept {
    if (s_ == nullptr) return;
    if (s_->closes_when_leaving(producer_)) close();
    if (s_->handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s_;
    s_ = nullptr;
  }
};

// The consuming end, shared by the SPSC and MPSC queues. Derived supplies
// readable(want, may_wait): how many elements from the consumer's position are readable
// (published and contiguous), refreshing its view of the producers only when it shows fewer
// than want; `may_wait` says the caller is about to take elements, so SPSC batching may wait.
// Every member is O(1) except the bulk ones (O(n)).
template <class T, class State, class Derived>
class QueueConsumer : public QueueHandle<T, State> {
  using Base = QueueHandle<T, State>;

 public:
  // Readable elements as this side knows them after a fresh look (the producer may add more).
  std::size_t size() noexcept { return readable_now(this->capacity() + 1); }
  QueueConsumer(const QueueConsumer&) = delete;
  QueueConsumer& operator=(const QueueConsumer&) = delete;

  // Removes the oldest element; nullopt / false when empty. Strong guarantee: if constructing
  // the result (or assigning out) throws, the element stays the oldest in the queue.
  std::optional<T> try_pop() {
    if (readable_to_take(1) < 1) return std::nullopt;
    T* slot = this->slots_.base() + index();
    const OnSuccess done([this, slot]() noexcept {
      std::destroy_at(slot);
      release_slots(1);
    });
    return std::optional<T>(std::move(*slot));
  }
  bool try_pop(T& out) {
    T* slot = run_.next;
    if (slot == run_.stop) {
      slot = open_run();
      if (slot == nullptr) return false;
    }
    // Every member read before the store through `out`, which may alias them.
    const auto head = head_ + 1;
    State* const s = this->s_;
    out = std::move(*slot);
    std::destroy_at(slot);
    run_.next = slot + 1;
    head_ = head;
    s->head.store(head, std::memory_order_release);
    wake(s->producer_sleeping, s->space_word);
    return true;
  }

  // Moves up to out.size() oldest elements into out; returns how many. If assigning an element
  // into out throws, the elements moved before it are popped (they are in out), that element
  // and the ones after it stay in the queue, and the exception propagates.
  std::size_t pop_slice(std::span<T> out) {
    const std::size_t have = readable_to_take(out.size());
    const std::size_t n = out.size() < have ? out.size() : have;
    if (n == 0) return 0;
    std::size_t done = 0;
    PICORING_TRY { this->slots_.move_out(index(), out.first(n), done); }
    PICORING_CATCH_ALL {
      // The slots already emptied must not stay readable (they would be destroyed again).
      if (done != 0) release_slots(done);
      PICORING_RETHROW;
    }
    release_slots(n);
    return n;
  }

  // Every readable element, oldest first, as one contiguous span (wrapped data included). The
  // span stays valid until release() frees its elements: the producer never touches them.
  std::span<T> peek() noexcept requires mirror_safe<T> {
    return {this->slots_.base() + index(), readable_to_take(this->capacity() + 1)};
  }
  // Frees the n oldest elements for the producer. Throws std::out_of_range, freeing nothing,
  // if n is more than is readable.
  void release(std::size_t n) {
    if (n > readable_now(n)) throw_out_of_range("picoring: release(n): n > readable");
    this->slots_.destroy(index(), n);
    if (n != 0) release_slots(n);
  }

  // Calls f(T&) on up to max readable elements in place, oldest first, then destroys them and
  // frees their slots with one publication. Returns how many were visited. If f throws, the
  // elements visited before are released and the exception propagates.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    const std::size_t have = readable_to_take(max);
    const std::size_t n = max < have ? max : have;
    T* const s = this->slots_.base();
    const std::size_t first = index();
    std::size_t done = 0;
    PICORING_TRY {
      for (; done < n; ++done) f(s[this->slots_.wrap(first + done)]);
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
    return wait(1, timeout);
  }
  // Blocks until at least n elements are readable (ok), the timeout passes (timed_out), or the
  // queue is closed with fewer than n left (closed; size() tells how many remain). n == 0 is
  // ok at once. Throws std::invalid_argument if n > capacity() (it could never be satisfied).
  template <class Rep, class Period>
  QueueStatus wait(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (n > this->capacity()) throw_invalid_argument("picoring: wait(n, timeout): n > capacity()");
    if (readable_now(n) >= n) return QueueStatus::ok;
    auto& s = *this->s_;
    return wait_until([this, n] { return readable_now(n) >= n; }, s.closed, s.consumer_sleeping, s.data_word,
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
        run_(SlotRun<T>::at(s != nullptr ? s->slots.base() + s->consumer_index : nullptr)),
        head_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0) {}
  // A moved-from handle keeps no counters: Derived::readable relies on an empty handle having
  // them all at 0.
  QueueConsumer(QueueConsumer&& o) noexcept
      : Base(std::move(o)), run_(std::exchange(o.run_, {})), head_(std::exchange(o.head_, 0)) {}
  void take(QueueConsumer&& o) noexcept {
    leave();
    run_ = std::exchange(o.run_, {});
    head_ = std::exchange(o.head_, 0);
    Base::take(std::move(o));
  }
  ~QueueConsumer() { leave(); }

  // Derived::readable must return 0 for an empty handle (all counters 0, no state).
  std::size_t readable_now(std::size_t want) noexcept { return static_cast<Derived*>(this)->readable(want, false); }
  std::size_t readable_to_take(std::size_t want) noexcept { return static_cast<Derived*>(this)->readable(want, true); }

  // What releasing n elements leaves, read before an element is moved out (see SpscProducer).
  struct Next {
    typename State::Position head;
    std::size_t index;
  };
  Next after(std::size_t n) const noexcept { return {head_ + n, this->slots_.wrap(index() + n)}; }
  // Releasing outside the one-element fast path: the run closes (see SlotRun).
  void release_slots(Next next) noexcept {
    head_ = next.head;
    run_.close_at(this->slots_, next.index);
    this->s_->head.store(next.head, std::memory_order_release);
    wake(this->s_->producer_sleeping, this->s_->space_word);
  }
  void release_slots(std::size_t n) noexcept { release_slots(after(n)); }

  // The slot of the oldest element, in [0, capacity).
  std::size_t index() const noexcept { return run_.index(this->slots_); }
  // try_pop's slow half, out of line: the next run of readable elements, or null when none is.
  PICORING_NOINLINE T* open_run() noexcept {
    return run_.open(this->slots_, [this]() noexcept { return readable_to_take(1); });
  }

  SlotRun<T> run_;
  typename State::Position head_ = 0;  // elements released (mirror of s_->head, owned here)

 private:
  // Tells the state where the remaining elements start, for the last handle's cleanup.
  void leave() noexcept {
    if (this->s_ != nullptr) this->s_->consumer_index = index();
  }
};

}  // namespace picoring::detail
