// picoring: a thread-safe many-producer single-consumer queue made of one mirrored SPSC lane per
// producer (a fan-in).
//
//   auto [producer, consumer] = picoring::make_fanin<Event>(4096);   // 4096 per lane
//   std::thread t([p = producer]() mutable { p.try_push(e); });       // a copy = a new lane
//   auto batch = consumer.peek();            // one lane's elements, one contiguous span
//   consumer.release(batch.size());          // ... and the turn passes to the next lane
//
// Why a second MPSC queue. make_mpsc (mpsc.hpp) keeps one order for all producers: every push
// claims its slot with a compare-and-swap on one shared counter, and a producer preempted
// between its claim and its publication holds the consumer up until it runs again. When the
// producers outnumber the cores that happens all the time, and element by element the shared
// counter's cache line moves on every push. Here every producer copy owns a lane, an SPSC queue
// (spsc.hpp) of its own: a push is the SPSC push (no read-modify-write, no shared line but its
// lane's), a preempted producer delays nobody, and the consumer takes each lane's elements as
// one contiguous span. The price: order is per producer only (each producer's elements come
// out in the order it pushed them; lanes are taken in turn, so elements of different producers
// interleave in batches), and memory is one mirrored lane per producer copy.
//
// Lanes. make_fanin creates the first lane; every copy of a producer creates another (a
// mirrored buffer: tens of microseconds, and the copy throws if it fails or if max_producers
// lanes are already in use). A producer that closes or goes away ends its lane: the consumer
// still takes what it holds, then frees it and its place, which a later copy may take (a place
// stays taken until the consumer has looked at the ended lane and found it empty).
//
// Turns. The consumer serves one lane at a time. When the turn reaches a lane, the consumer
// takes note of how many elements it holds and takes at most that many (try_pop, pop_slice,
// drain) or one peek() window (then release()) before the turn passes on, so a producer that
// keeps its lane full cannot starve the others.
//
// Closing. The queue is closed when the consumer closes or goes, or when every producer copy
// has closed or gone. Then pushes fail, and the consumer still takes everything that was
// pushed; its waits report closed once every lane is empty.
//
// Thread rules: each handle is used by one thread at a time; producer copies on as many threads
// as wanted (max_producers at once). Waking: a consumer parked in wait()/pop_wait() sleeps on
// one word for all lanes; a producer checks one read-mostly flag after each publication (the
// SPSC queue's protocol, spsc.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

#include "picoring/detail/park.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/queue_status.hpp"
#include "picoring/spsc.hpp"

namespace picoring {

template <class T>
class FanInProducer;
template <class T>
class FanInConsumer;

namespace detail {

template <class T>
struct FanInState {
  FanInState(std::size_t lane_min_capacity, std::size_t max_producers, MirrorOptions mirror_options,
             Error& err) noexcept
      : lane_request(lane_min_capacity), options(mirror_options), max_lanes(max_producers) {
    if (max_lanes == 0) {
      err = {make_error_code(errc::zero_size), "fan-in queue (max_producers is 0)"};
      return;
    }
    lanes.reset(new (std::nothrow) std::atomic<SpscConsumer<T>*>[max_lanes]);
    known.reset(new (std::nothrow) SpscConsumer<T>*[max_lanes]);
    order.reset(new (std::nothrow) std::size_t[max_lanes]);
    if (!lanes || !known || !order) {
      err = {std::make_error_code(std::errc::not_enough_memory), "allocate fan-in lane table"};
      return;
    }
    for (std::size_t i = 0; i < max_lanes; ++i) {
      lanes[i].store(nullptr, std::memory_order_relaxed);
      known[i] = nullptr;
    }
  }
  FanInState(const FanInState&) = delete;
  FanInState& operator=(const FanInState&) = delete;
  // The last handle: the lanes' consumer ends still here (the consumer went first, or never
  // saw them) go now, and each takes its lane's remaining elements with it.
  ~FanInState() {
    for (std::size_t i = 0; lanes && i < max_lanes; ++i) delete lanes[i].load(std::memory_order_acquire);
  }

  // Creates a lane and publishes its consumer end in a free place of `lanes`. On failure
  // `out` stays empty and err says why; nothing is left behind.
  void add_lane(SpscProducer<T>& out, Error& err) noexcept {
    auto* lane = new_queue_state<SpscState<T>>(lane_request, options, err);
    if (lane == nullptr) return;
    auto ends = QueueAccess::handles<SpscProducer<T>, SpscConsumer<T>>(lane);
    auto* end = new (std::nothrow) SpscConsumer<T>(std::move(ends.second));
    if (end == nullptr) {
      err = {std::make_error_code(std::errc::not_enough_memory), "allocate fan-in lane"};
      return;
    }
    for (std::size_t i = 0; i < max_lanes; ++i) {
      SpscConsumer<T>* expected = nullptr;
      // seq_cst, against the consumer's close(): it stores `closed`, then reads every place;
      // this stores a place, then reads `closed`. One of the two sees the other, so the lane
      // is closed either way.
      if (lanes[i].compare_exchange_strong(expected, end, std::memory_order_seq_cst)) {
        registrations.fetch_add(1, std::memory_order_release);
        if (closed.load(std::memory_order_seq_cst) != 0) ends.first.close();
        out = std::move(ends.first);
        return;
      }
    }
    delete end;  // with the producer end going too, this frees the lane
    err = {std::make_error_code(std::errc::resource_unavailable_try_again),
           "join fan-in queue (all max_producers lanes in use)"};
  }

  // Marks the queue closed and wakes the consumer.
  void close() noexcept {
    closed.store(1, std::memory_order_seq_cst);
    data_word.fetch_add(1, std::memory_order_release);
    unpark_all(data_word);
  }

  // A producer's lane ended (close() or its destructor); the last one closes the queue.
  void producer_left() noexcept {
    if (producers.fetch_sub(1, std::memory_order_acq_rel) == 1) close();
  }
  // A handle went; the last one frees the state.
  void release_handle() noexcept {
    if (handles.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const std::size_t lane_request;
  const MirrorOptions options;
  const std::size_t max_lanes;
  // A lane's consumer end, put in a free place by the producer that creates the lane (owned by
  // this table from then on), taken out and freed by the consumer once the lane has ended and
  // is empty.
  std::unique_ptr<std::atomic<SpscConsumer<T>*>[]> lanes;
  // The consumer's own view, touched by the consumer only: the ends it has found (by place),
  // and the places of the live lanes in the order of their turns.
  std::unique_ptr<SpscConsumer<T>*[]> known;
  std::unique_ptr<std::size_t[]> order;
  std::size_t live = 0;

  // Read-mostly: written when a lane is added, on close, and when the consumer parks.
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> closed{0};
  std::atomic<std::uint32_t> consumer_sleeping{detail::sleepers_start()};
  std::atomic<std::uint64_t> registrations{0};  // lanes ever added: the consumer rescans when it moves
  std::atomic<int> producers{0};                // live producer lanes
  std::atomic<int> handles{1};                  // producers with a state pointer, plus the consumer
  alignas(kFalseSharingRange) std::atomic<std::uint32_t> data_word{0};  // futex word, bumped to wake
};

}  // namespace detail

// A producing end: its own lane. Copy it to get another producer (one per thread). Members
// are those of SpscProducer on the lane, plus a check after each publication for a parked
// consumer; all wait-free except the *_wait forms.
template <class T>
class FanInProducer {
 public:
  FanInProducer() noexcept = default;
  // A new lane in the same queue. Throws std::system_error (the lane's mirror could not be
  // made, or every one of max_producers places is taken: resource_unavailable_try_again),
  // std::invalid_argument / std::length_error as make_spsc. A copy of an empty handle is empty.
  FanInProducer(const FanInProducer& o) : FanInProducer(o, throwing{}) {}
  FanInProducer& operator=(const FanInProducer& o) {
    if (this != &o) *this = FanInProducer(o);
    return *this;
  }
  // The non-throwing copy: on failure err is set and the result is empty.
  FanInProducer another(Error& err) const noexcept {
    FanInProducer p;
    if (f_ != nullptr) p.join(f_, err);
    return p;
  }
  FanInProducer(FanInProducer&& o) noexcept : f_(std::exchange(o.f_, nullptr)), lane_(std::move(o.lane_)) {}
  FanInProducer& operator=(FanInProducer&& o) noexcept {
    if (this != &o) {
      leave();
      f_ = std::exchange(o.f_, nullptr);
      lane_ = std::move(o.lane_);
    }
    return *this;
  }
  ~FanInProducer() { leave(); }

  // This lane's capacity in elements (rounded as for make_spsc); 0 for an empty handle.
  std::size_t capacity() const noexcept { return lane_.capacity(); }
  // True once this lane ended (close()) or the consumer closed the queue; also for an empty
  // handle. Other producers' lanes do not count.
  bool closed() const noexcept { return !lane_ || lane_.closed(); }
  // Ends this producer's lane: its pushes fail from now on; the consumer still takes what the
  // lane holds. The queue closes when every producer has. Idempotent.
  void close() noexcept {
    if (!lane_) return;
    lane_ = {};
    f_->producer_left();
  }
  explicit operator bool() const noexcept { return static_cast<bool>(lane_); }

  std::size_t free_space() noexcept { return lane_.free_space(); }
  void set_batching(Batching b) { lane_.set_batching(b); }
  Batching batching() const noexcept { return lane_.batching(); }

  // As SpscProducer's (spsc.hpp): false when this lane is full or closed.
  template <class... Args>
  bool try_emplace(Args&&... args) {
    return woke(lane_.try_emplace(std::forward<Args>(args)...));
  }
  bool try_push(const T& value) { return woke(lane_.try_push(value)); }
  bool try_push(T&& value) { return woke(lane_.try_push(std::move(value))); }
  bool push_slice(std::span<const T> items) {
    const bool ok = lane_.push_slice(items);
    woke(ok && !items.empty());
    return ok;
  }
  std::size_t push_some(std::span<const T> items) {
    const std::size_t n = lane_.push_some(items);
    woke(n != 0);
    return n;
  }
  std::span<T> reserve(std::size_t n) noexcept requires mirror_safe<T> { return lane_.reserve(n); }
  void commit(std::size_t n) requires mirror_safe<T> {
    lane_.commit(n);
    woke(n != 0);
  }
  template <class Rep, class Period>
  QueueStatus wait_for_space(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return lane_.wait_for_space(n, timeout);
  }
  template <class U, class Rep, class Period>
  QueueStatus push_wait(U&& value, std::chrono::duration<Rep, Period> timeout) {
    const QueueStatus st = lane_.push_wait(std::forward<U>(value), timeout);
    woke(st == QueueStatus::ok);
    return st;
  }

 private:
  friend class FanInConsumer<T>;
  template <class U>
  friend std::pair<FanInProducer<U>, FanInConsumer<U>> make_fanin(std::size_t, std::size_t, Error&,
                                                                  MirrorOptions) noexcept;
  struct throwing {};
  FanInProducer(const FanInProducer& o, throwing) {
    if (o.f_ == nullptr) return;
    Error err;
    join(o.f_, err);
    if (err) throw_error(err);
  }

  // Adds a lane to f's queue and becomes its producer; on failure stays empty.
  void join(detail::FanInState<T>* f, Error& err) noexcept {
    // Counted before the lane shows, so that the lane's end can never be the last producer
    // of a queue that still has one.
    f->producers.fetch_add(1, std::memory_order_relaxed);
    f->handles.fetch_add(1, std::memory_order_relaxed);
    f->add_lane(lane_, err);
    f_ = f;
    if (err) {
      f_ = nullptr;
      f->producer_left();
      f->release_handle();
    }
  }

  // After a publication: the lane's own wake check found no sleeper (the fan-in consumer
  // never parks on a lane), this one looks for the consumer parked on the whole queue. The
  // SPSC publication's barrier already orders this load after the counter's store.
  bool woke(bool published) noexcept {
    if (published) detail::wake_sleepers(f_->consumer_sleeping, f_->data_word);
    return published;
  }

  void leave() noexcept {
    if (f_ == nullptr) return;
    close();
    std::exchange(f_, nullptr)->release_handle();
  }

  detail::FanInState<T>* f_ = nullptr;
  SpscProducer<T> lane_;
};

// The consuming end. Takes from one lane at a time (see Turns above). Every member is O(1) in
// the elements taken plus O(lanes) when the current lane's turn ends; thread rules as above.
template <class T>
class FanInConsumer {
 public:
  FanInConsumer() noexcept = default;
  FanInConsumer(FanInConsumer&& o) noexcept
      : f_(std::exchange(o.f_, nullptr)),
        seen_(std::exchange(o.seen_, 0)),
        turn_(std::exchange(o.turn_, 0)),
        budget_(std::exchange(o.budget_, 0)),
        current_(std::exchange(o.current_, nullptr)) {}
  FanInConsumer& operator=(FanInConsumer&& o) noexcept {
    if (this != &o) {
      leave();
      f_ = std::exchange(o.f_, nullptr);
      seen_ = std::exchange(o.seen_, 0);
      turn_ = std::exchange(o.turn_, 0);
      budget_ = std::exchange(o.budget_, 0);
      current_ = std::exchange(o.current_, nullptr);
    }
    return *this;
  }
  FanInConsumer(const FanInConsumer&) = delete;
  FanInConsumer& operator=(const FanInConsumer&) = delete;
  ~FanInConsumer() { leave(); }

  explicit operator bool() const noexcept { return f_ != nullptr; }
  // True once the consumer closed or every producer has.
  bool closed() const noexcept { return f_ == nullptr || f_->closed.load(std::memory_order_acquire) != 0; }
  // Live lanes (producers, and ended lanes not yet emptied) as of the last look.
  std::size_t lanes() const noexcept { return f_ != nullptr ? f_->live : 0; }
  // Closes the queue: every lane's pushes fail from now on (parked producers wake), what the
  // lanes hold can still be taken. Idempotent.
  void close() noexcept {
    if (f_ == nullptr) return;
    f_->close();
    for (std::size_t i = 0; i < f_->max_lanes; ++i) {
      if (auto* end = f_->lanes[i].load(std::memory_order_seq_cst)) end->close();
    }
  }

  // Elements readable in every lane, after a fresh look at each.
  std::size_t size() noexcept {
    if (f_ == nullptr) return 0;
    rescan();
    std::size_t n = 0;
    for (std::size_t k = 0; k < f_->live; ++k) n += lane(k)->size();
    return n;
  }

  // The current lane's readable elements, as one contiguous span; empty when every lane is.
  // Valid until release().
  std::span<T> peek() noexcept requires mirror_safe<T> {
    for (auto* end = turn(); end != nullptr; end = turn()) {
      const std::span<T> window = end->peek();
      if (!window.empty()) return window;
      budget_ = 0;  // only if an exception left the count high: look again
    }
    return {};
  }
  // Frees the n oldest elements of the lane peek() showed, and passes the turn. Throws
  // std::out_of_range, freeing nothing, if n is more than that lane holds.
  void release(std::size_t n) {
    if (n == 0) return;
    if (current_ == nullptr) detail::throw_out_of_range("picoring: release(n): n > readable");
    current_->release(n);
    budget_ = 0;
  }

  // Removes one element from the current lane; false / nullopt when every lane is empty.
  // Strong guarantee as SpscConsumer's.
  bool try_pop(T& out) {
    for (auto* end = turn(); end != nullptr; end = turn()) {
      if (end->try_pop(out)) {
        --budget_;
        return true;
      }
      budget_ = 0;  // only if an exception left the count high: look again
    }
    return false;
  }
  std::optional<T> try_pop() {
    for (auto* end = turn(); end != nullptr; end = turn()) {
      if (auto v = end->try_pop()) {
        --budget_;
        return v;
      }
      budget_ = 0;
    }
    return std::nullopt;
  }
  // Moves up to out.size() elements into out, lane after lane; returns how many. Exceptions as
  // SpscConsumer::pop_slice (the elements moved before it are popped).
  std::size_t pop_slice(std::span<T> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      auto* end = turn();
      if (end == nullptr) break;
      const std::size_t want = out.size() - got < budget_ ? out.size() - got : budget_;
      const std::size_t n = end->pop_slice(out.subspan(got, want));
      got += n;
      budget_ = n == want ? budget_ - n : 0;
    }
    return got;
  }
  // Calls f(T&) on up to max elements in place, lane after lane, then destroys them. If f
  // throws, the elements visited before are released and the exception propagates.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    std::size_t done = 0;
    while (done < max) {
      auto* end = turn();
      if (end == nullptr) break;
      const std::size_t want = max - done < budget_ ? max - done : budget_;
      budget_ = 0;  // if f throws, the next call takes a fresh look
      const std::size_t n = end->drain(f, want);
      done += n;
    }
    return done;
  }

  // Blocks until an element is readable in some lane (ok), the timeout passes (timed_out), or
  // the queue is closed with every lane empty (closed).
  template <class Rep, class Period>
  QueueStatus wait(std::chrono::duration<Rep, Period> timeout) {
    if (f_ == nullptr) return QueueStatus::closed;
    if (turn() != nullptr) return QueueStatus::ok;
    return detail::wait_until([this] { return turn() != nullptr; }, f_->closed, f_->consumer_sleeping, f_->data_word,
                              detail::deadline_after(timeout));
  }
  // Blocking pop: wait(), then try_pop().
  template <class Rep, class Period>
  QueueStatus pop_wait(T& out, std::chrono::duration<Rep, Period> timeout) {
    const QueueStatus st = wait(timeout);
    if (st == QueueStatus::ok) try_pop(out);
    return st;
  }

 private:
  template <class U>
  friend std::pair<FanInProducer<U>, FanInConsumer<U>> make_fanin(std::size_t, std::size_t, Error&,
                                                                  MirrorOptions) noexcept;
  explicit FanInConsumer(detail::FanInState<T>* f) noexcept : f_(f) {}

  SpscConsumer<T>* lane(std::size_t k) const noexcept { return f_->known[f_->order[k]]; }

  // The lane whose turn it is, with budget_ > 0 elements to take; null when every lane is
  // empty. Moves the turn on when the current lane's budget is spent, frees ended lanes found
  // empty, and picks up lanes added since the last look.
  SpscConsumer<T>* turn() noexcept {
    if (budget_ != 0) return current_;
    current_ = nullptr;
    if (f_ == nullptr) return nullptr;
    rescan();
    // Each lane once: retiring one moves the rest down, so count lanes looked at, not turns.
    for (std::size_t looked = 0, lanes = f_->live; looked < lanes; ++looked) {
      if (turn_ >= f_->live) turn_ = 0;
      SpscConsumer<T>* end = lane(turn_);
      // Ended is read before the count: an ended lane found empty stays empty.
      const bool ended = end->closed();
      const std::size_t n = end->size();
      if (n != 0) {
        budget_ = n;
        current_ = end;
        ++turn_;  // the next turn goes to the next lane
        return end;
      }
      // Only while the queue is open: then an ended lane was ended by its producer, whose last
      // push is in. After the consumer's close() a producer may still be finishing a push that
      // began before it; such lanes stay (the state frees them) so that push is not lost.
      if (ended && f_->closed.load(std::memory_order_acquire) == 0) {
        retire(turn_);  // the next lane moved into this turn
      } else {
        ++turn_;
      }
    }
    return nullptr;
  }

  // Picks up the lanes added since the last look.
  void rescan() noexcept {
    const std::uint64_t now = f_->registrations.load(std::memory_order_acquire);
    if (now == seen_) return;
    seen_ = now;
    for (std::size_t i = 0; i < f_->max_lanes; ++i) {
      auto* end = f_->lanes[i].load(std::memory_order_acquire);
      if (end != nullptr && f_->known[i] != end) {
        f_->known[i] = end;
        f_->order[f_->live++] = i;
      }
    }
  }

  // Frees the ended, empty lane in turn k and its place (a later producer copy may take it).
  void retire(std::size_t k) noexcept {
    const std::size_t place = f_->order[k];
    for (std::size_t j = k + 1; j < f_->live; ++j) f_->order[j - 1] = f_->order[j];
    --f_->live;
    f_->known[place] = nullptr;
    delete f_->lanes[place].exchange(nullptr, std::memory_order_acq_rel);
  }

  void leave() noexcept {
    if (f_ == nullptr) return;
    close();
    current_ = nullptr;
    std::exchange(f_, nullptr)->release_handle();
  }

  detail::FanInState<T>* f_ = nullptr;
  std::uint64_t seen_ = 0;  // registrations when the lanes were last looked for
  std::size_t turn_ = 0;    // index into order of the next lane to serve
  std::size_t budget_ = 0;  // elements the current lane may still give this turn
  SpscConsumer<T>* current_ = nullptr;
};

// Creates a fan-in queue whose lanes hold at least lane_capacity elements each, with room for
// max_producers producer copies at once. Returns the first producer (copy it for more) and the
// consumer. On failure err is set and both handles are empty.
template <class T>
std::pair<FanInProducer<T>, FanInConsumer<T>> make_fanin(std::size_t lane_capacity, std::size_t max_producers,
                                                         Error& err, MirrorOptions options = {}) noexcept {
  auto* f = new (std::nothrow) detail::FanInState<T>(lane_capacity, max_producers, options, err);
  if (f == nullptr) {
    err = {std::make_error_code(std::errc::not_enough_memory), "allocate fan-in queue"};
    return {};
  }
  if (err) {
    delete f;
    return {};
  }
  FanInConsumer<T> consumer(f);  // holds the state's first handle
  FanInProducer<T> producer;
  producer.join(f, err);
  if (err) return {};  // the consumer frees the state
  return {std::move(producer), std::move(consumer)};
}
template <class T>
std::pair<FanInProducer<T>, FanInConsumer<T>> make_fanin(std::size_t lane_capacity, Error& err,
                                                         MirrorOptions options = {}) noexcept {
  return make_fanin<T>(lane_capacity, 64, err, options);
}

// Throwing creation: std::invalid_argument (a zero capacity or max_producers), std::length_error,
// std::system_error, as make_spsc.
template <class T>
std::pair<FanInProducer<T>, FanInConsumer<T>> make_fanin(std::size_t lane_capacity, std::size_t max_producers = 64,
                                                         MirrorOptions options = {}) {
  Error err;
  auto queue = make_fanin<T>(lane_capacity, max_producers, err, options);
  if (err) throw_error(err);
  return queue;
}

}  // namespace picoring
