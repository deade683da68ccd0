// Internal: the slot storage every container is built on (PicoRing, PicoQueue, PicoByteStream,
// the SPSC and MPSC queues). It is the one place that touches ring memory, so that the rules
// below exist once: how an index wraps, how a copy is split at the physical end, how a
// construction of several elements is rolled back, how elements are destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <type_traits>

#include "picoring/mirror_buffer.hpp"

namespace picoring {

// Types whose objects may be seen through either view of the mirror and created by writing
// bytes into raw ring memory: the trivially copyable ones (implicit-lifetime, no identity).
template <class T>
inline constexpr bool mirror_safe = std::is_trivially_copyable_v<T>;

namespace detail {

// The mirror joins the end of the ring to its start in hardware, but the compiler does not
// know that two addresses a ring size apart are the same byte: from `p + i` and `p + i + cap`
// it could conclude that the two never alias and reorder a store through one with a load
// through the other. Every access to ring memory therefore starts from a base pointer passed
// through an empty volatile asm statement: the optimiser cannot relate two such pointers, so it
// must assume that any two accesses made through them may alias. This costs no instruction,
// unlike a compiler memory barrier, which would also force the indices out to memory.
template <class T>
inline T* launder_mirror(T* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  asm volatile("" : "+r"(p));
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
  return p;
}

// Runs a non-throwing action when the scope is left normally, not when an exception leaves it.
// The pops use it to destroy and release the slot *after* their return value was constructed
// from the element: if that construction throws, the element stays where it was (strong
// guarantee), and no named local has to be moved out afterwards (a move that could throw too).
template <class F>
class OnSuccess {
 public:
  explicit OnSuccess(F f) noexcept : f_(f) {}
  OnSuccess(const OnSuccess&) = delete;
  OnSuccess& operator=(const OnSuccess&) = delete;
  ~OnSuccess() {
    if (std::uncaught_exceptions() == entered_) f_();
  }

 private:
  F f_;
  int entered_ = std::uncaught_exceptions();
};

// A view of a mirror's memory as `capacity()` slots of T. It owns nothing (the MirrorBuffer
// does) and is copied into every handle that accesses the slots, so a hot path reads the base
// and the capacity from its own cache line. Slot indices are in [0, capacity()); a run of n
// slots starting at index i covers i, i + 1, ... wrapping to 0. Element lifetime is the
// caller's business: these functions construct, copy and destroy exactly what they are told.
template <class T>
class Slots {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "elements must be non-const, non-volatile object types");
  static_assert(std::is_nothrow_destructible_v<T>, "a throwing destructor cannot be run safely on pop or teardown");
  static_assert(alignof(T) <= 4096, "the mirror is page aligned; larger alignments are not supported");

 public:
  Slots() noexcept = default;
  explicit Slots(const MirrorBuffer& mem) noexcept
      : base_(reinterpret_cast<T*>(mem.data())), cap_(mem.size() / sizeof(T)) {}

  std::size_t capacity() const noexcept { return cap_; }
  // The base of ring memory, as every access must obtain it (see launder_mirror). Slot i is
  // base()[i], and for i < capacity() also base()[i + capacity()] (the mirror).
  T* base() const noexcept { return launder_mirror(base_); }
  // Folds a position p < 2 * capacity() to its slot index: a compare and a subtraction.
  std::size_t wrap(std::size_t p) const noexcept { return p >= cap_ ? p - cap_ : p; }

  // Copies n elements from src into the run starting at slot i, as bytes (mirror_safe T).
  // Split at the physical end instead of storing through the seam: a store that straddles a
  // page boundary costs several times an ordinary one on x86, and the split costs one compare
  // (docs/benchmarks.md, table 3). Readers still see one contiguous window.
  void copy_in(std::size_t i, const T* src, std::size_t n) const noexcept requires mirror_safe<T> {
    const std::size_t first = n < cap_ - i ? n : cap_ - i;
    T* const s = base();
    if (first != 0) std::memcpy(s + i, src, first * sizeof(T));
    if (first != n) std::memcpy(s, src + first, (n - first) * sizeof(T));
  }
  // Copies the run of n elements starting at slot i out to dst, split the same way.
  void copy_out(std::size_t i, T* dst, std::size_t n) const noexcept requires mirror_safe<T> {
    const std::size_t first = n < cap_ - i ? n : cap_ - i;
    const T* const s = base();
    if (first != 0) std::memcpy(dst, s + i, first * sizeof(T));
    if (first != n) std::memcpy(dst + first, s, (n - first) * sizeof(T));
  }

  // Constructs copies of items in the run starting at slot i (free slots). All or nothing: if
  // a copy throws, the copies made so far are destroyed and the exception propagates.
  void construct_copies(std::size_t i, std::span<const T> items) const {
    if constexpr (mirror_safe<T>) {
      copy_in(i, items.data(), items.size());
    } else {
      T* const s = base();
      std::size_t done = 0;
      PICORING_TRY {
        for (; done < items.size(); ++done) std::construct_at(s + wrap(i + done), items[done]);
      }
      PICORING_CATCH_ALL {
        destroy(i, done);
        PICORING_RETHROW;
      }
    }
  }

  // Moves the run of out.size() elements starting at slot i into out (assigning) and destroys
  // them. `done` counts the slots emptied so far; if an assignment throws, the slots before it
  // are empty (their elements are in out), the rest are intact, and the exception propagates.
  void move_out(std::size_t i, std::span<T> out, std::size_t& done) const {
    done = 0;
    if constexpr (mirror_safe<T>) {
      copy_out(i, out.data(), out.size());
      done = out.size();
    } else {
      T* const s = base();
      for (; done < out.size(); ++done) {
        T* slot = s + wrap(i + done);
        out[done] = std::move(*slot);
        std::destroy_at(slot);
      }
    }
  }

  // Destroys the n elements of the run starting at slot i. Nothing to do for trivially
  // destructible T.
  void destroy(std::size_t i, std::size_t n) const noexcept {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      T* const s = base();
      for (std::size_t k = 0; k < n; ++k) {
        std::destroy_at(s + i);
        if (++i == cap_) i = 0;
      }
    }
  }

 private:
  T* base_ = nullptr;
  std::size_t cap_ = 0;
};

// One end's next slot and the end of the run of slots it knows it may use one by one from there
// without wrapping (free slots for a producer, readable elements for a consumer, cut at the
// physical end): a one-element push or pop that finds next != stop needs neither the other
// side's counter nor the capacity (docs/benchmarks.md, "The wake check and the run"). `next`
// may stand at the physical end, which is slot 0. Any other way of moving the end closes the
// run (close_at), so the next one-element call opens a new one.
template <class T>
struct SlotRun {
  T* next = nullptr;
  T* stop = nullptr;

  // A closed run at `slot` (null for an empty handle).
  static SlotRun at(T* slot) noexcept { return {slot, slot}; }
  // The slot index of `next`, in [0, capacity).
  std::size_t index(const Slots<T>& slots) const noexcept {
    const auto i = static_cast<std::size_t>(next - slots.base());
    return i == slots.capacity() ? 0 : i;
  }
  void close_at(const Slots<T>& slots, std::size_t index) noexcept {
    next = slots.base() + index;
    stop = next;
  }
  // Wraps `next`, then opens a run of up to count() slots (what the end may use from there);
  // returns its first slot, or null when count() is 0 (the run stays closed).
  template <class Count>
  T* open(const Slots<T>& slots, Count count) {
    const std::size_t i = index(slots);
    close_at(slots, i);
    const std::size_t n = count();
    if (n == 0) return nullptr;
    const std::size_t to_end = slots.capacity() - i;
    stop = next + (n < to_end ? n : to_end);
    return next;
  }
};

}  // namespace detail
}  // namespace picoring
