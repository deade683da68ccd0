// picoring: single-threaded mirrored rings of elements.
//
//   PicoRing<T>  - the ring: push/pop, contiguous readable and writable windows, overwrite.
//   PicoQueue<T> - the same ring behind a reservation API: reserve/commit, peek/release.
//
// Rules shared by every member below (stated once here, not repeated):
// - Thread safety: like std::vector. One thread at a time may call non-const members;
//   const members may run concurrently with each other. For two threads, use the SPSC queue.
// - Capacity: the whole capacity is usable (no slot is kept empty). capacity() is at least
//   the requested minimum, rounded up so that capacity() * sizeof(T) is a whole number of
//   pages (see mirror_size_for), so it can be much larger for large odd-sized T.
// - Indices wrap with a compare and a subtraction; no division or modulo on any operation.
// - Windows (spans) may extend into the second view of the mirror: that is the point. They
//   are invalidated by any call that changes the ring (push, pop, advance, commit, ...),
//   exactly like iterators into a std::vector after an insertion.
// - Element types: any object type with a non-throwing destructor. APIs that expose memory as
//   a contiguous array, including the mirrored part, or hand out uninitialized memory
//   (readable_slice, writable_slice, peek, reserve, view, data, pointer iterators) require
//   mirror_safe<T> (trivially copyable): an object of class type lives at exactly one address,
//   and types such as std::string keep pointers into themselves that would be wrong when the
//   object is seen through its mirror address. Other types are reached only at their one true
//   address (operator[], front, back, pop, and a wrapping random-access iterator).
// - Vocabulary, the same in every container of the library: commit(n) publishes the first n
//   slots of the writable window as the newest elements; release(n) drops the n oldest.
//   PicoRing also keeps the seed crate's names with the seed's meaning: advance_head(n) is
//   commit(n) (the write position moves), advance_tail(n) is release(n) (the read position).
// - Errors: a call that would release or commit more than exists (release, commit, their
//   aliases, view, at) throws std::out_of_range and changes nothing.
#pragma once

#include <atomic>
#include <cassert>
#include <compare>
#include <cstddef>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

#include "picoring/detail/slots.hpp"
#include "picoring/mirror_buffer.hpp"

namespace picoring {

namespace detail {

// Random-access iterator for element types that must be touched only at their own address:
// it keeps a logical position in [0, 2 * capacity) and folds it back on dereference.
template <class T>
class WrapIterator {
 public:
  using iterator_concept = std::random_access_iterator_tag;
  using iterator_category = std::random_access_iterator_tag;
  using value_type = std::remove_const_t<T>;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = T&;

  WrapIterator() noexcept = default;
  WrapIterator(T* base, std::size_t capacity, std::size_t pos) noexcept : base_(base), cap_(capacity), pos_(pos) {}
  operator WrapIterator<const T>() const noexcept { return {base_, cap_, pos_}; }  // NOLINT: like T* -> const T*

  reference operator*() const noexcept { return base_[pos_ >= cap_ ? pos_ - cap_ : pos_]; }
  pointer operator->() const noexcept { return &**this; }
  reference operator[](difference_type n) const noexcept { return *(*this + n); }

  WrapIterator& operator++() noexcept {
    ++pos_;
    return *this;
  }
  WrapIterator operator++(int) noexcept {
    auto t = *this;
    ++pos_;
    return t;
  }
  WrapIterator& operator--() noexcept {
    --pos_;
    return *this;
  }
  WrapIterator operator--(int) noexcept {
    auto t = *this;
    --pos_;
    return t;
  }
  WrapIterator& operator+=(difference_type n) noexcept {
    pos_ += static_cast<std::size_t>(n);
    return *this;
  }
  WrapIterator& operator-=(difference_type n) noexcept {
    pos_ -= static_cast<std::size_t>(n);
    return *this;
  }
  friend WrapIterator operator+(WrapIterator it, difference_type n) noexcept { return it += n; }
  friend WrapIterator operator+(difference_type n, WrapIterator it) noexcept { return it += n; }
  friend WrapIterator operator-(WrapIterator it, difference_type n) noexcept { return it -= n; }
  friend difference_type operator-(const WrapIterator& a, const WrapIterator& b) noexcept {
    return static_cast<difference_type>(a.pos_ - b.pos_);
  }
  friend bool operator==(const WrapIterator& a, const WrapIterator& b) noexcept { return a.pos_ == b.pos_; }
  friend auto operator<=>(const WrapIterator& a, const WrapIterator& b) noexcept { return a.pos_ <=> b.pos_; }

 private:
  template <class>
  friend class WrapIterator;
  T* base_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t pos_ = 0;
};

// Storage and index logic shared by PicoRing, PicoQueue and PicoByteStream. The ring is
// [head_, head_ + len_) in logical positions; a logical position p < 2 * capacity() is slot
// slots_.wrap(p), and with the mirror also the address slots_.base() + p directly.
template <class T>
class RingCore {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using const_reference = const T&;
  using pointer = T*;
  using const_pointer = const T*;
  // Plain pointers (contiguous) for mirror_safe types, a wrapping iterator for the rest.
  using iterator = std::conditional_t<mirror_safe<T>, T*, WrapIterator<T>>;
  using const_iterator = std::conditional_t<mirror_safe<T>, const T*, WrapIterator<const T>>;

  // O(1).
  size_type capacity() const noexcept { return slots_.capacity(); }
  size_type size() const noexcept { return len_; }
  size_type available_space() const noexcept { return capacity() - len_; }
  bool empty() const noexcept { return len_ == 0; }
  bool full() const noexcept { return len_ == capacity(); }
  // The mapping behind the ring (size, backend used).
  const MirrorBuffer& memory() const noexcept { return mem_; }

  // Element i from the oldest (0) to the newest (size() - 1). Precondition: i < size()
  // (checked by assert only); at() checks and throws std::out_of_range. O(1).
  reference operator[](size_type i) noexcept {
    assert(i < len_);
    return slots_.base()[slots_.wrap(head_ + i)];
  }
  const_reference operator[](size_type i) const noexcept {
    assert(i < len_);
    return slots_.base()[slots_.wrap(head_ + i)];
  }
  reference at(size_type i) {
    if (i >= len_) throw_out_of_range("picoring: at(): index >= size()");
    return (*this)[i];
  }
  const_reference at(size_type i) const {
    if (i >= len_) throw_out_of_range("picoring: at(): index >= size()");
    return (*this)[i];
  }
  // Oldest and newest element. Precondition: !empty(). O(1).
  reference front() noexcept { return (*this)[0]; }
  const_reference front() const noexcept { return (*this)[0]; }
  reference back() noexcept { return (*this)[len_ - 1]; }
  const_reference back() const noexcept { return (*this)[len_ - 1]; }

  // Iteration from oldest to newest. O(1) to obtain.
  iterator begin() noexcept { return make_iterator<iterator>(head_); }
  iterator end() noexcept { return make_iterator<iterator>(head_ + len_); }
  const_iterator begin() const noexcept { return make_iterator<const_iterator>(head_); }
  const_iterator end() const noexcept { return make_iterator<const_iterator>(head_ + len_); }
  const_iterator cbegin() const noexcept { return begin(); }
  const_iterator cend() const noexcept { return end(); }

  // Destroys every element; the ring becomes empty. O(size()) for non-trivial T, else O(1).
  void clear() noexcept {
    slots_.destroy(head_, len_);
    head_ = 0;
    len_ = 0;
  }

 protected:
  RingCore() noexcept = default;
  RingCore(size_type min_capacity, MirrorOptions options) : mem_(min_capacity, sizeof(T), options), slots_(mem_) {}
  RingCore(size_type min_capacity, Error& err, MirrorOptions options) noexcept
      : mem_(MirrorBuffer::create(min_capacity, sizeof(T), options, err)), slots_(mem_) {}
  RingCore(RingCore&& other) noexcept
      : mem_(std::move(other.mem_)),
        slots_(std::exchange(other.slots_, {})),
        head_(std::exchange(other.head_, 0)),
        len_(std::exchange(other.len_, 0)) {}
  RingCore& operator=(RingCore&& other) noexcept {
    if (this != &other) {
      clear();
      mem_ = std::move(other.mem_);
      slots_ = std::exchange(other.slots_, {});
      head_ = std::exchange(other.head_, 0);
      len_ = std::exchange(other.len_, 0);
    }
    return *this;
  }
  RingCore(const RingCore&) = delete;
  RingCore& operator=(const RingCore&) = delete;
  // In a child of fork() that did not inherit the memory (ForkPolicy::exclude) there are no
  // elements to destroy here: the memory is absent, and the parent still owns them.
  ~RingCore() {
    if (!mem_.inherited()) clear();
  }

  // --- element operations (any T) ---------------------------------------------------------

  // Constructs the newest element in place. Returns it, or nullptr (and constructs nothing)
  // when full. Strong guarantee: if the constructor throws, the ring is unchanged. O(1).
  template <class... Args>
  T* emplace_back(Args&&... args) {
    if (len_ == capacity()) return nullptr;
    T* slot = slots_.base() + slots_.wrap(head_ + len_);
    std::construct_at(slot, std::forward<Args>(args)...);
    ++len_;
    return slot;
  }

  // Removes the oldest element into `out` (move-assigned) or returns it. False / nullopt when
  // empty. Strong guarantee: if the assignment or construction throws, the ring is unchanged
  // (the element is still the oldest; a type whose move can throw may have been moved from
  // partially, as its own guarantee says). O(1).
  bool pop_into(T& out) {
    if (len_ == 0) return false;
    T* slot = slots_.base() + head_;
    out = std::move(*slot);
    drop_front_one(slot);
    return true;
  }
  std::optional<T> pop_front() {
    if (len_ == 0) return std::nullopt;
    T* slot = slots_.base() + head_;
    const OnSuccess drop([this, slot]() noexcept { drop_front_one(slot); });
    return std::optional<T>(std::move(*slot));
  }

  // Appends all of `items` or nothing: returns false (and changes nothing) when fewer than
  // items.size() slots are free. Copied as bytes for mirror_safe T, wrapped or not. Strong
  // guarantee: if copying an element throws, the copies made so far are destroyed. O(n).
  bool append(std::span<const T> items) {
    const size_type n = items.size();
    if (n > available_space()) return false;
    if (n == 0) return true;
    slots_.construct_copies(slots_.wrap(head_ + len_), items);
    len_ += n;
    return true;
  }

  // Appends `value`; when full, the oldest element is overwritten (assigned) instead and
  // becomes the newest. Returns true if an element was dropped. Guarantee: that of T's
  // constructor or assignment (strong for std::string). A T that cannot be assigned is
  // replaced instead (destroyed, then a new one moved in); if that move throws, the oldest
  // element is gone and the new one was not added. O(1).
  template <class U>
  bool append_overwrite(U&& value) {
    if (len_ < capacity()) {
      emplace_back(std::forward<U>(value));
      return false;
    }
    if (capacity() == 0) return false;  // an empty (moved-from) ring stores nothing
    // Full: the oldest slot is also the next free one.
    T* const slot = slots_.base() + head_;
    if constexpr (std::is_assignable_v<T&, U&&>) {
      *slot = std::forward<U>(value);
    } else {
      T fresh(std::forward<U>(value));
      std::destroy_at(slot);
      PICORING_TRY { std::construct_at(slot, std::move(fresh)); }
      PICORING_CATCH_ALL {
        // The oldest slot is empty now: it must stop counting as an element.
        head_ = slots_.wrap(head_ + 1);
        --len_;
        PICORING_RETHROW;
      }
    }
    head_ = slots_.wrap(head_ + 1);
    return true;
  }

  // Destroys the n oldest elements. Throws std::out_of_range (changing nothing) if n > size().
  void discard_front(size_type n, const char* what) {
    if (n > len_) throw_out_of_range(what);
    slots_.destroy(head_, n);
    head_ = slots_.wrap(head_ + n);
    len_ -= n;
  }

  // --- window operations (mirror_safe T) --------------------------------------------------

  // Every element, oldest first, as one contiguous span (wrapped data included). O(1).
  std::span<T> readable_window() noexcept requires mirror_safe<T> { return {slots_.base() + head_, len_}; }
  std::span<const T> readable_window() const noexcept requires mirror_safe<T> { return {slots_.base() + head_, len_}; }
  // Every free slot, in order, as one contiguous span. Its contents are unspecified. O(1).
  std::span<T> writable_window() noexcept requires mirror_safe<T> {
    return {slots_.base() + slots_.wrap(head_ + len_), available_space()};
  }
  // Publishes the first n elements of the writable window. Throws std::out_of_range
  // (changing nothing) if n > available_space(). O(1).
  void publish(size_type n, const char* what) requires mirror_safe<T> {
    if (n > available_space()) throw_out_of_range(what);
    len_ += n;
  }
  // Takes back the n newest elements: they become the first free slots again, contents
  // unchanged. Throws std::out_of_range (changing nothing) if n > size(). O(1).
  void unpublish(size_type n, const char* what) requires mirror_safe<T> && std::is_trivially_destructible_v<T> {
    if (n > len_) throw_out_of_range(what);
    len_ -= n;
  }
  // Takes back the n elements released last, which must still be intact: the caller tracks that
  // (only the byte stream does, for putback). Trivially destructible T only. O(1).
  void unrelease(size_type n) noexcept requires std::is_trivially_destructible_v<T> {
    head_ = head_ >= n ? head_ - n : head_ + capacity() - n;
    len_ += n;
  }

  // Elements [offset, offset + count) from the oldest, contiguous. Throws std::out_of_range
  // if that range is not within size(). O(1).
  std::span<T> window(size_type offset, size_type count) requires mirror_safe<T> {
    if (offset > len_ || count > len_ - offset) throw_out_of_range("picoring: view(): range beyond size()");
    return {slots_.base() + head_ + offset, count};
  }

  // Removes up to out.size() oldest elements into `out`; returns how many. O(n).
  size_type copy_out(std::span<T> out) noexcept requires mirror_safe<T> {
    const size_type n = out.size() < len_ ? out.size() : len_;
    slots_.copy_out(head_, out.data(), n);
    head_ = slots_.wrap(head_ + n);
    len_ -= n;
    return n;
  }

 private:
  static void throw_out_of_range(const char* what) { detail::throw_out_of_range(what); }

  template <class It>
  It make_iterator(size_type pos) const noexcept {
    if constexpr (std::is_pointer_v<It>) {
      return slots_.base() + pos;  // null + 0 only for an empty (moved-from) ring
    } else {
      return It(slots_.base(), capacity(), pos);
    }
  }

  void drop_front_one(T* slot) noexcept {
    std::destroy_at(slot);
    head_ = slots_.wrap(head_ + 1);
    --len_;
  }

  MirrorBuffer mem_;
  Slots<T> slots_;
  size_type head_ = 0;  // index of the oldest element, in [0, cap_)
  size_type len_ = 0;   // number of elements, in [0, cap_]
};

}  // namespace detail

// A single-threaded mirrored ring of T. See the rules at the top of this file.
template <class T>
class PicoRing : private detail::RingCore<T> {
  using Core = detail::RingCore<T>;

 public:
  using typename Core::const_iterator;
  using typename Core::const_pointer;
  using typename Core::const_reference;
  using typename Core::difference_type;
  using typename Core::iterator;
  using typename Core::pointer;
  using typename Core::reference;
  using typename Core::size_type;
  using typename Core::value_type;

  // An empty ring of capacity 0 (every push fails). Use it as a placeholder to move into.
  PicoRing() noexcept = default;
  // A ring of at least min_capacity elements. Throws std::invalid_argument for 0,
  // std::length_error when the size does not fit the address space, std::system_error
  // (naming the failed step, with the OS error code) when the system refuses.
  explicit PicoRing(size_type min_capacity, MirrorOptions options = {}) : Core(min_capacity, options) {}
  // Non-throwing creation: on failure `err` is set and the ring has capacity 0.
  PicoRing(size_type min_capacity, Error& err, MirrorOptions options = {}) noexcept
      : Core(min_capacity, err, options) {}
  PicoRing(PicoRing&&) noexcept = default;
  PicoRing& operator=(PicoRing&&) noexcept = default;  // destroys this ring's elements first
  ~PicoRing() = default;                               // destroys every remaining element

  using Core::available_space;
  using Core::capacity;
  using Core::empty;
  using Core::full;
  using Core::memory;
  using Core::size;
  size_type len() const noexcept { return this->size(); }
  bool is_empty() const noexcept { return this->empty(); }
  bool is_full() const noexcept { return this->full(); }

  using Core::at;
  using Core::back;
  using Core::begin;
  using Core::cbegin;
  using Core::cend;
  using Core::clear;
  using Core::end;
  using Core::front;
  using Core::operator[];

  // Appends a copy/move of value. Returns false when full (value is then left untouched).
  // Strong guarantee. O(1).
  bool push(const T& value) { return this->emplace_back(value) != nullptr; }
  bool push(T&& value) { return this->emplace_back(std::move(value)) != nullptr; }
  // Constructs the newest element from args; returns it, or nullptr when full. Strong. O(1).
  template <class... Args>
  T* emplace(Args&&... args) {
    return this->emplace_back(std::forward<Args>(args)...);
  }
  // Removes and returns the oldest element; std::nullopt when empty. Strong. O(1).
  std::optional<T> pop() { return this->pop_front(); }
  // Moves the oldest element into out; false when empty. Strong. O(1).
  bool pop(T& out) { return this->pop_into(out); }

  // Appends every element of items, or none when fewer slots are free (returns false). O(n).
  bool push_slice(std::span<const T> items) { return this->append(items); }
  // Appends value, overwriting the oldest element when full; returns true if one was dropped.
  bool push_overwrite(const T& value) { return this->append_overwrite(value); }
  bool push_overwrite(T&& value) { return this->append_overwrite(std::move(value)); }

  // Destroys the n oldest elements. Throws std::out_of_range, changing nothing, if n > size().
  // O(1) for trivially destructible T, else O(n).
  void release(size_type n) { this->discard_front(n, "picoring: release(n): n > size()"); }
  // The seed crate's name for release(n): the tail (read position) advances by n.
  void advance_tail(size_type n) { this->discard_front(n, "picoring: advance_tail(n): n > size()"); }

  // --- contiguous windows: mirror_safe<T> only --------------------------------------------

  // All elements, oldest first, as one contiguous span, wrapped data included. O(1).
  std::span<T> readable_slice() noexcept requires mirror_safe<T> { return this->readable_window(); }
  std::span<const T> readable_slice() const noexcept requires mirror_safe<T> { return this->readable_window(); }
  // All free slots as one contiguous span; write into it, then commit(). O(1).
  std::span<T> writable_slice() noexcept requires mirror_safe<T> { return this->writable_window(); }
  // Makes the first n slots of writable_slice() the newest elements. Throws
  // std::out_of_range, changing nothing, if n > available_space(). O(1).
  void commit(size_type n) requires mirror_safe<T> { this->publish(n, "picoring: commit(n): n > available_space()"); }
  // The seed crate's name for commit(n): the head (write position) advances by n.
  void advance_head(size_type n) requires mirror_safe<T> {
    this->publish(n, "picoring: advance_head(n): n > available_space()");
  }
  // Elements [offset, offset + count) counted from the oldest, contiguous. Throws
  // std::out_of_range if offset + count > size(). O(1).
  std::span<T> view(size_type offset, size_type count) requires mirror_safe<T> { return this->window(offset, count); }
  std::span<const T> view(size_type offset, size_type count) const requires mirror_safe<T> {
    return const_cast<PicoRing*>(this)->window(offset, count);
  }
  // Pointer to the oldest element; the next size() elements follow contiguously. O(1).
  T* data() noexcept requires mirror_safe<T> { return this->readable_window().data(); }
  const T* data() const noexcept requires mirror_safe<T> { return this->readable_window().data(); }
  // Removes up to out.size() oldest elements into out; returns how many. O(n).
  size_type pop_slice(std::span<T> out) noexcept requires mirror_safe<T> { return this->copy_out(out); }
};

// A single-threaded mirrored queue with a reservation API: reserve a contiguous run of
// slots, write it, commit it; peek at everything readable as one span, release it.
// See the rules at the top of this file.
template <class T>
class PicoQueue : private detail::RingCore<T> {
  using Core = detail::RingCore<T>;

 public:
  using typename Core::const_iterator;
  using typename Core::const_pointer;
  using typename Core::const_reference;
  using typename Core::difference_type;
  using typename Core::iterator;
  using typename Core::pointer;
  using typename Core::reference;
  using typename Core::size_type;
  using typename Core::value_type;

  PicoQueue() noexcept = default;
  // As PicoRing's constructors.
  explicit PicoQueue(size_type min_capacity, MirrorOptions options = {}) : Core(min_capacity, options) {}
  PicoQueue(size_type min_capacity, Error& err, MirrorOptions options = {}) noexcept
      : Core(min_capacity, err, options) {}
  PicoQueue(PicoQueue&&) noexcept = default;
  PicoQueue& operator=(PicoQueue&&) noexcept = default;
  ~PicoQueue() = default;

  using Core::at;
  using Core::available_space;
  using Core::begin;
  using Core::capacity;
  using Core::cbegin;
  using Core::cend;
  using Core::clear;
  using Core::empty;
  using Core::end;
  using Core::full;
  using Core::memory;
  using Core::size;
  using Core::operator[];

  // A contiguous span of exactly n free slots (wrapping included), or an empty span when
  // fewer than n are free. Nothing changes until commit(). O(1).
  std::span<T> reserve(size_type n) noexcept requires mirror_safe<T> {
    if (n > this->available_space()) return {};
    return this->writable_window().first(n);
  }
  // Publishes the first n reserved slots as the newest elements. Throws std::out_of_range,
  // changing nothing, if n > available_space(). O(1).
  void commit(size_type n) requires mirror_safe<T> { this->publish(n, "picoring: commit(n): n > available_space()"); }
  // Every readable element, oldest first, as one contiguous span. O(1).
  std::span<T> peek() noexcept requires mirror_safe<T> { return this->readable_window(); }
  std::span<const T> peek() const noexcept requires mirror_safe<T> { return this->readable_window(); }
  // Removes the n oldest elements. Throws std::out_of_range, changing nothing, if n > size().
  void release(size_type n) { this->discard_front(n, "picoring: release(n): n > size()"); }

  // Element-at-a-time forms (any T). try_push: false when full. try_pop: nullopt / false
  // when empty. Strong guarantee. O(1).
  bool try_push(const T& value) { return this->emplace_back(value) != nullptr; }
  bool try_push(T&& value) { return this->emplace_back(std::move(value)) != nullptr; }
  template <class... Args>
  T* try_emplace(Args&&... args) {
    return this->emplace_back(std::forward<Args>(args)...);
  }
  std::optional<T> try_pop() { return this->pop_front(); }
  bool try_pop(T& out) { return this->pop_into(out); }
  // Copies every element of items in, or none when fewer slots are free (returns false);
  // for data that already exists elsewhere (reserve() is for data produced in place). O(n).
  bool try_push_slice(std::span<const T> items) { return this->append(items); }
  // Removes up to out.size() oldest elements into out; returns how many. O(n).
  size_type try_pop_slice(std::span<T> out) noexcept requires mirror_safe<T> { return this->copy_out(out); }
};

}  // namespace picoring
