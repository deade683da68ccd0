// picoring: RingPool, rings kept for reuse.
//
// Making a ring costs system calls (memfd_create, ftruncate, three mmap, one munmap, and with
// Residency::populate or lock the faulting and locking of every page); reusing one costs a
// clear(). A server that gives each connection a ring, or a pipeline that makes a ring per job,
// takes rings from a pool and gives them back instead. Pooled rings keep their pages: locked
// rings stay locked, populated ones stay populated (as far as the kernel lets them).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "picoring/mirror_buffer.hpp"

namespace picoring {

// What RingPool needs of a ring: PicoRing<T>, PicoQueue<T>, PicoByteStream and RecordRing qualify.
template <class R>
concept PoolableRing = std::movable<R> && std::default_initializable<R> && std::is_nothrow_move_constructible_v<R> &&
    requires(R r, const R cr, std::size_t n, Error& err, MirrorOptions o) {
  R(n, err, o);
  { cr.capacity() } -> std::convertible_to<std::size_t>;
  { cr.memory() } -> std::same_as<const MirrorBuffer&>;
  r.clear();
};

// A cache of empty rings of one capacity and one set of MirrorOptions.
//
// Thread safety: every member may be called from any thread at once (one mutex, held only to
// move a ring in or out of the cache; rings are made outside it). A ring taken from the pool
// belongs to the caller alone until it is given back.
// Fork: a ring inherited by a child of fork() (ForkPolicy::exclude) is never handed out in the
// child: take() drops it and makes a new one.
template <PoolableRing R>
class RingPool {
 public:
  // Rings of at least min_capacity elements, made with `options`; at most max_idle kept while
  // unused (the rest of the given-back rings are destroyed). Nothing is made yet (see prefill).
  // Throws std::bad_alloc only (the cache's room for max_idle rings is allocated here, so that
  // give() never allocates).
  explicit RingPool(std::size_t min_capacity, MirrorOptions options = {}, std::size_t max_idle = 64)
      : min_capacity_(min_capacity), options_(options), max_idle_(max_idle) {
    idle_.reserve(max_idle);
  }
  RingPool(const RingPool&) = delete;
  RingPool& operator=(const RingPool&) = delete;

  // An empty ring: a cached one (O(1), no system call) or, when none is cached, a new one.
  // Throws what R's constructor throws (std::system_error naming the refused step...); the
  // pool is unchanged then.
  R take() {
    Error err;
    R r = take(err);
    if (err) throw_error(err);
    return r;
  }
  // Non-throwing form: on failure returns an empty (default-constructed) ring and sets err.
  R take(Error& err) noexcept {
    err = {};
    if (R cached; pop_idle(cached)) return cached;
    R made(min_capacity_, err, options_);
    if (err) return R();
    std::lock_guard lock(mutex_);
    ++created_;
    if (capacity_ == 0) capacity_ = made.capacity();
    return made;
  }

  // Clears the ring (its elements are destroyed, a record ring's open reservation discarded) and keeps it for the next
  // take(), unless max_idle rings are cached already. A ring the pool cannot hand out again is destroyed instead: an
  // empty (moved-from) ring, one of another capacity (one inherited through fork() is dropped by the take() that finds
  // it). Rings not taken from this pool are kept only when their capacity is the one the pool's own rings have (so none
  // before the pool has made one); their MirrorOptions are then whatever they were made with. Never throws; O(size())
  // for the clear, O(1) otherwise.
  void give(R&& ring) noexcept {
    R r = std::move(ring);
    // An inherited ring (fork) is not checked for here: take() drops it, and one getpid() per
    // reuse is a third of the cost of a take/give pair.
    if (r.memory().empty()) return;
    if constexpr (requires {
                    r.reserved();
                    r.discard();
                  }) {
      if (r.reserved()) r.discard();  // a record ring's open reservation: not carried to the next taker
    }
    r.clear();
    std::lock_guard lock(mutex_);
    if (r.capacity() != capacity_ || idle_.size() >= max_idle_) return;  // r is destroyed on return
    idle_.push_back(std::move(r));  // never reallocates: reserved in the constructor
  }

  // Makes rings now, until `count` (at most max_idle) are cached, so that later take() calls
  // pay no system call. Throws as take() does; the rings made before a failure are kept.
  void prefill(std::size_t count) {
    Error err;
    prefill(count, err);
    if (err) throw_error(err);
  }
  void prefill(std::size_t count, Error& err) noexcept {
    err = {};
    while (idle() < std::min(count, max_idle_)) {
      R made(min_capacity_, err, options_);
      if (err) return;
      {
        std::lock_guard lock(mutex_);
        ++created_;
        if (capacity_ == 0) capacity_ = made.capacity();
      }
      give(std::move(made));
    }
  }

  // Destroys every cached ring (their memory goes back to the system). The cache keeps its room
  // for max_idle rings, so give() stays allocation-free.
  void trim() noexcept {
    std::lock_guard lock(mutex_);
    idle_.clear();
  }

  // Rings cached now; rings this pool has made in all (so a caller sees how often it reused).
  std::size_t idle() const noexcept {
    std::lock_guard lock(mutex_);
    return idle_.size();
  }
  std::size_t created() const noexcept {
    std::lock_guard lock(mutex_);
    return created_;
  }
  std::size_t max_idle() const noexcept { return max_idle_; }
  const MirrorOptions& options() const noexcept { return options_; }

 private:
  bool pop_idle(R& out) noexcept {
    std::lock_guard lock(mutex_);
    while (!idle_.empty()) {
      R r = std::move(idle_.back());
      idle_.pop_back();
      if (!r.memory().inherited()) {
        out = std::move(r);
        return true;
      }
      // Inherited through fork(): destroying it releases nothing (the memory is not mapped in
      // this process) and costs no system call; drop it.
    }
    return false;
  }

  std::size_t min_capacity_;
  MirrorOptions options_;
  std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<R> idle_;
  std::size_t capacity_ = 0;  // the capacity rings of min_capacity_ get (known after the first)
  std::size_t created_ = 0;
};

}  // namespace picoring
