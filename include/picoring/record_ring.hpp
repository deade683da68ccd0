// picoring: rings of variable-size records, each one contiguous span whatever the wrap.
//
//   picoring::RecordRing ring(1 << 20);                 // single-threaded
//   auto out = ring.reserve(line.size());               // exactly line.size() contiguous bytes
//   std::memcpy(out.data(), line.data(), line.size());
//   ring.commit();
//   for (auto rec = ring.front(); !rec.empty(); rec = ring.front()) { parse(rec); ring.pop(); }
//
//   auto [producer, consumer] = picoring::make_record_spsc(1 << 20);   // two threads
//   auto [first, reader] = picoring::make_record_mpsc(1 << 20);         // many producers:
//   auto second = first;                                                 // one copy per thread
//
// Layout. A record is an 8-byte header (its length and flags, little or big endian as the
// machine is) followed by its bytes, padded to a multiple of 8 so that every header is 8-byte
// aligned. A record that runs past the end of the ring continues in the mirror, so it is never
// split and no padding record is ever written at the end (classic designs, such as the Linux BPF
// ring buffer, must either do one or the other). A record of n bytes takes
// record_footprint(n) = 8 + n rounded up to 8 bytes of the capacity.
//
// Rules shared by every member below:
// - capacity() is in bytes: at least the requested minimum, rounded up to whole pages.
// - A record's length is 1 .. max_record_size() = capacity() - 8 (and at most 2^32 - 1).
//   A zero-length record cannot be reserved: an empty span means "no record" everywhere.
// - Spans handed out (reserve, front) stay valid until the call that ends them (commit or
//   discard for a reservation, pop for a record) or the ring's destruction.
// - Bad input throws and changes nothing: len 0 (std::invalid_argument), len above
//   max_record_size() (std::length_error), commit/discard without a reservation, a second
//   reserve while one is open, commit(n) with n = 0 or above the reserved length
//   (std::logic_error), pop on an empty ring (std::out_of_range). Without exceptions these
//   terminate.
// - Not enough free space now is not an error: reserve returns an empty span, push false.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
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

// Bytes of the ring a record of `length` bytes takes: its header and its bytes rounded up to 8.
constexpr std::size_t record_footprint(std::size_t length) noexcept { return 8 + ((length + 7) & ~std::size_t{7}); }

namespace detail {

// The framing shared by every record container: where a header is, what it holds, how far the
// next one is. Headers sit at 8-byte aligned slot indices below the capacity (a multiple of 8),
// so a header never crosses the physical end; a record's bytes may, and continue in the mirror.
struct RecordFraming {
  static constexpr std::size_t kHeader = 8;
  static constexpr std::size_t kMaxLength = std::numeric_limits<std::uint32_t>::max();
  static constexpr const char* kNoReservationToCommit = "picoring: commit(): no reservation is open";

  static std::size_t max_length(std::size_t capacity) noexcept {
    const std::size_t room = capacity < kHeader ? 0 : capacity - kHeader;
    return room < kMaxLength ? room : kMaxLength;
  }
  // The checks of reserve(), shared by every form: throw for input that can never be valid.
  static void check_length(std::size_t length, std::size_t capacity) {
    if (length == 0) throw_invalid_argument("picoring: reserve(len): len == 0 (an empty record cannot be stored)");
    if (length > max_length(capacity)) throw_length_error("picoring: reserve(len): len > max_record_size()");
  }
  // The reservation rules, shared by every form. `open` is the open reservation's length (0:
  // none). A reservation or push needs none open; commit and discard need one.
  static void check_none_open(std::size_t open, const char* what) {
    if (open != 0) throw_logic_error(what);
  }
  static std::size_t check_open(std::size_t open, const char* what) {
    if (open == 0) throw_logic_error(what);
    return open;
  }
  // push's fast path: one test for every input that is not plainly fine (a reservation open,
  // an empty handle, whose max is 0, length 0, which wraps around, or too long); the exact
  // checks run behind it.
  static bool needs_checks(std::size_t open, std::size_t length, std::size_t max) noexcept {
    return open != 0 || length - 1 >= max;
  }
  // Those exact checks, in order: throws for a reservation open, then false for an empty handle,
  // then throws for a bad length; true when push may go on.
  static bool check_push(std::size_t open, bool has_state, std::size_t length, std::size_t capacity) {
    check_none_open(open, "picoring: push(): a reservation is open");
    if (!has_state) return false;
    check_length(length, capacity);
    return true;
  }
  // push_some's length checks, before anything is written: throws as reserve() for any empty
  // or over-long record. Returns the footprint of them all, or capacity + 1 if that is more (all
  // a caller asks of it is whether they all fit; saturating keeps any span of spans from
  // overflowing it).
  static std::size_t check_records(std::span<const std::span<const std::byte>> records, std::size_t capacity) {
    const std::size_t max = max_length(capacity);
    std::size_t total = 0;
    for (const auto& r : records) {
      if (r.size() - 1 >= max) check_length(r.size(), capacity);           // throws: 0 or too long
      total = std::min(total + record_footprint(r.size()), capacity + 1);  // each footprint <= capacity
    }
    return total;
  }
  static constexpr const char* kPushSomeWithReservation = "picoring: push_some(): a reservation is open";
  // The longest prefix of `records` whose footprints fit in `room` bytes.
  struct Prefix {
    std::size_t count = 0;
    std::size_t bytes = 0;
  };
  static Prefix fitting(std::span<const std::span<const std::byte>> records, std::size_t room) noexcept {
    Prefix p;
    for (const auto& r : records) {
      const std::size_t footprint = record_footprint(r.size());
      if (footprint > room - p.bytes) break;
      p.bytes += footprint;
      ++p.count;
    }
    return p;
  }
  // Copies records in one after another from the header at `index`, each as write_record does.
  static void write_records(const Slots<std::byte>& slots, std::size_t index,
                            std::span<const std::span<const std::byte>> records) noexcept {
    write_records_at(slots.base(), slots.capacity(), index, records);
  }
  // The same in the mirror of `capacity` bytes at `base` (the shared queue's memory is not a Slots).
  static void write_records_at(std::byte* base, std::size_t capacity, std::size_t index,
                               std::span<const std::span<const std::byte>> records) noexcept {
    for (const auto& r : records) {
      write_record_at(base + index, r);
      index += record_footprint(r.size());
      if (index >= capacity) index -= capacity;
    }
  }
  // push_some's one pass for the forms that own the space after `index` (not MPSC, which must
  // claim before it writes): checks each record's length, copies it in while it fits in `room`,
  // asking more_room(bytes needed) once when it does not; then checks the lengths of the rest.
  // Whatever it wrote is unpublished until the caller publishes, so a throw changes nothing.
  template <class MoreRoom>
  static Prefix write_fitting(const Slots<std::byte>& slots, std::size_t index,
                              std::span<const std::span<const std::byte>> records, std::size_t room,
                              MoreRoom&& more_room) {
    // Few values live across each memcpy call (the rest would be spilled and reloaded for every
    // record): the limit is computed once, what is left of the room is one number, and the list
    // is walked by pointer (a span iterator measured one instruction more per record). 18
    // instructions fewer per 16-byte record than a loop that checked each length in full.
    const std::size_t max = max_length(slots.capacity());
    const std::span<const std::byte>* it = records.data();
    const std::span<const std::byte>* const end = it + records.size();
    std::size_t left = room;
    bool asked = false;
    for (; it != end; ++it) {
      const std::size_t length = it->size();
      if (length - 1 >= max) check_length(length, slots.capacity());  // throws: 0 or too long
      const std::size_t footprint = record_footprint(length);
      if (footprint > left) {
        if (asked) break;
        asked = true;
        const std::size_t written = room - left;
        room = more_room(written + footprint);
        left = room - written;  // room >= written: the consumer frees, never takes back
        if (footprint > left) break;
      }
      write_record(slots, index, *it);
      index = slots.wrap(index + footprint);
      left -= footprint;
    }
    const auto count = static_cast<std::size_t>(it - records.data());
    check_records(records.subspan(count), slots.capacity());
    return {count, room - left};
  }
  static void check_commit_length(std::size_t length, std::size_t open) {
    if (length == 0 || length > open) throw_logic_error("picoring: commit(len): len is 0 or more than reserved");
  }
  // The header's second word, the flags: bit 0 marks a discarded reservation (MPSC only: a
  // claimed place must be published, so a discard is published as a record nobody reads), the
  // bits above it count the 8-byte units that follow the record's own footprint (MPSC only:
  // commit(n) below the reserved length leaves the claimed place as it was).
  static constexpr std::uint32_t kDiscarded = 1;
  static std::uint32_t padding_flags(std::size_t reserved, std::size_t length) noexcept {
    return static_cast<std::uint32_t>((record_footprint(reserved) - record_footprint(length)) / 8 * 2);
  }
  struct Header {
    std::uint32_t length;
    std::uint32_t flags;
    bool discarded() const noexcept { return (flags & kDiscarded) != 0; }
    // Bytes to the next header.
    std::size_t advance() const noexcept { return record_footprint(length) + std::size_t{flags >> 1} * 8; }
  };
  static void write_header(const Slots<std::byte>& slots, std::size_t at, std::size_t length,
                           std::uint32_t flags = 0) noexcept {
    write_header_at(slots.base() + at, length, flags);
  }
  static std::size_t read_length(const Slots<std::byte>& slots, std::size_t at) noexcept {
    return read_length_at(slots.base() + at);
  }
  static Header read_header(const Slots<std::byte>& slots, std::size_t at) noexcept {
    Header h{};
    std::memcpy(&h, slots.base() + at, kHeader);
    return h;
  }
  // Copies a record's bytes in behind the header at `index` with one memcpy, through the mirror
  // when the record crosses the physical end, then writes the header. A record crosses the end
  // once per lap at most: the store that straddles the seam then costs less than testing every
  // record for it (9 instructions fewer per 16-byte record; docs/benchmarks.md, "One copy per
  // record"). The header's address is taken before the copy: std::byte stores may alias the
  // caller's members, which the compiler would otherwise read again. (Header first measured
  // 15% slower at 1 KiB between two threads.)
  static void write_record(const Slots<std::byte>& slots, std::size_t index,
                           std::span<const std::byte> record) noexcept {
    write_record_at(slots.base() + index, record);
  }
  // The same at a header's address (the shared queue's memory is not a Slots).
  static void write_record_at(std::byte* header, std::span<const std::byte> record) noexcept {
    const std::size_t length = record.size();
    std::memcpy(header + kHeader, record.data(), length);
    write_header_at(header, length);
  }
  // A header at its address (write_header's form for the shared queue).
  static void write_header_at(std::byte* header, std::size_t length, std::uint32_t flags = 0) noexcept {
    const std::uint32_t words[2] = {static_cast<std::uint32_t>(length), flags};
    std::memcpy(header, words, kHeader);
  }
  static std::size_t read_length_at(const std::byte* header) noexcept {
    std::uint32_t length = 0;
    std::memcpy(&length, header, sizeof length);
    return length;
  }
};

}  // namespace detail

// A single-threaded ring of variable-size records. Thread safety like std::vector: one thread
// at a time may call non-const members. For two threads, use make_record_spsc. Every member is
// O(1) except push and push_some (O(n) copies; clear is O(1) too: records have no destructors).
class RecordRing {
  using Framing = detail::RecordFraming;

 public:
  // An empty ring of capacity 0 (every reserve fails). Use it as a placeholder to move into.
  RecordRing() noexcept = default;
  // A ring of at least min_capacity bytes. Throws std::invalid_argument for 0,
  // std::length_error when the size does not fit the address space, std::system_error (naming
  // the failed step, with the OS error code) when the system refuses.
  explicit RecordRing(std::size_t min_capacity, MirrorOptions options = {})
      : mem_(min_capacity, 1, options), slots_(mem_), max_length_(Framing::max_length(capacity())) {}
  // Non-throwing creation: on failure `err` is set and the ring has capacity 0.
  RecordRing(std::size_t min_capacity, Error& err, MirrorOptions options = {}) noexcept
      : mem_(MirrorBuffer::create(min_capacity, 1, options, err)),
        slots_(mem_),
        max_length_(Framing::max_length(capacity())) {}
  RecordRing(RecordRing&& o) noexcept
      : mem_(std::move(o.mem_)),
        slots_(std::exchange(o.slots_, {})),
        head_(std::exchange(o.head_, 0)),
        used_(std::exchange(o.used_, 0)),
        count_(std::exchange(o.count_, 0)),
        reserved_(std::exchange(o.reserved_, 0)),
        max_length_(std::exchange(o.max_length_, 0)) {}
  RecordRing& operator=(RecordRing&& o) noexcept {
    if (this != &o) {
      mem_ = std::move(o.mem_);
      slots_ = std::exchange(o.slots_, {});
      head_ = std::exchange(o.head_, 0);
      used_ = std::exchange(o.used_, 0);
      count_ = std::exchange(o.count_, 0);
      reserved_ = std::exchange(o.reserved_, 0);
      max_length_ = std::exchange(o.max_length_, 0);
    }
    return *this;
  }
  RecordRing(const RecordRing&) = delete;
  RecordRing& operator=(const RecordRing&) = delete;
  ~RecordRing() = default;

  // Capacity in bytes, headers and padding included.
  std::size_t capacity() const noexcept { return slots_.capacity(); }
  // The longest record reserve() accepts: capacity() - 8, at most 2^32 - 1.
  std::size_t max_record_size() const noexcept { return max_length_; }
  // Records committed and not popped.
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // Bytes those records take (record_footprint of each), and the bytes left for new ones (an
  // open reservation's footprint is counted as taken).
  std::size_t bytes_used() const noexcept { return used_; }
  std::size_t bytes_free() const noexcept { return capacity() - used_ - reserved_footprint(); }
  // True between a successful reserve() and its commit() or discard().
  bool reserved() const noexcept { return reserved_ != 0; }
  // The mapping behind the ring (size, backend used).
  const MirrorBuffer& memory() const noexcept { return mem_; }

  // --- writing ------------------------------------------------------------------------------

  // Exactly len writable contiguous bytes for the next record (wrapping included), or an empty
  // span when bytes_free() < record_footprint(len). The record exists only after commit().
  // Throws (changing nothing) for len 0, len > max_record_size(), or a reservation already open.
  std::span<std::byte> reserve(std::size_t len) {
    Framing::check_none_open(reserved_, "picoring: reserve(): a reservation is already open");
    Framing::check_length(len, capacity());
    if (record_footprint(len) > capacity() - used_) return {};
    reserved_ = len;
    return {slots_.base() + slots_.wrap(tail() + Framing::kHeader), len};
  }
  // Publishes the whole reservation as the newest record. Throws std::logic_error, changing
  // nothing, without an open reservation (after a commit or discard, or none made).
  void commit() { commit(Framing::check_open(reserved_, Framing::kNoReservationToCommit)); }
  // Publishes the first len bytes of the reservation (a record reserved at its largest size and
  // filled with fewer). Throws std::logic_error, changing nothing, without an open reservation or
  // when len is 0 or more than was reserved.
  void commit(std::size_t len) {
    Framing::check_commit_length(len, Framing::check_open(reserved_, Framing::kNoReservationToCommit));
    Framing::write_header(slots_, tail(), len);
    used_ += record_footprint(len);
    ++count_;
    reserved_ = 0;
  }
  // Abandons the open reservation: nothing is published. Throws std::logic_error without one.
  void discard() {
    Framing::check_open(reserved_, "picoring: discard(): no reservation is open");
    reserved_ = 0;
  }
  // Copies `record` in as the newest record: false (nothing changes) when there is not room
  // for it now. Throws as reserve() for an empty or over-long record or an open reservation.
  bool push(std::span<const std::byte> record) {
    const std::size_t len = record.size();
    // The queues' fast-path test; here (a ring always has its memory) every input it flags throws.
    if (Framing::needs_checks(reserved_, len, max_length_)) {
      Framing::check_push(reserved_, true, len, capacity());
    }
    const std::size_t need = record_footprint(len);
    if (need > capacity() - used_) return false;
    Framing::write_record(slots_, tail(), record);
    used_ += need;
    ++count_;
    return true;
  }

  // Copies the longest prefix of `records` that fits now, in order, each as one record; returns
  // how many (0 when the first does not fit). Throws, changing nothing, when any record is empty
  // or longer than max_record_size(), or a reservation is open. O(records + bytes copied).
  std::size_t push_some(std::span<const std::span<const std::byte>> records) {
    Framing::check_none_open(reserved_, Framing::kPushSomeWithReservation);
    const std::size_t room = capacity() - used_;
    const Framing::Prefix fit =
        Framing::write_fitting(slots_, tail(), records, room, [room](std::size_t) { return room; });
    used_ += fit.bytes;
    count_ += fit.count;
    return fit.count;
  }

  // --- reading ------------------------------------------------------------------------------

  // The oldest record as one contiguous span (wrapped or not); an empty span when there is none.
  std::span<std::byte> front() noexcept {
    if (count_ == 0) return {};
    return {slots_.base() + head_ + Framing::kHeader, Framing::read_length(slots_, head_)};
  }
  std::span<const std::byte> front() const noexcept { return const_cast<RecordRing*>(this)->front(); }
  // Removes the oldest record. Throws std::out_of_range, changing nothing, when empty.
  void pop() {
    if (count_ == 0) detail::throw_out_of_range("picoring: pop(): no record");
    const std::size_t footprint = record_footprint(Framing::read_length(slots_, head_));
    head_ = slots_.wrap(head_ + footprint);
    used_ -= footprint;
    --count_;
  }
  // Calls f(std::span<std::byte>) on up to max records, oldest first, removing each after f
  // returns. Returns how many were visited. If f throws, the record it was given stays.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    std::size_t n = 0;
    for (; n < max && count_ != 0; ++n) {
      f(front());
      pop();
    }
    return n;
  }
  // Removes every record. An open reservation stays open where it is.
  void clear() noexcept {
    head_ = tail();
    used_ = 0;
    count_ = 0;
  }

 private:
  std::size_t tail() const noexcept { return slots_.wrap(head_ + used_); }
  std::size_t reserved_footprint() const noexcept { return reserved_ == 0 ? 0 : record_footprint(reserved_); }

  MirrorBuffer mem_;
  detail::Slots<std::byte> slots_;
  std::size_t head_ = 0;      // slot index of the oldest record's header, a multiple of 8
  std::size_t used_ = 0;      // bytes of committed records, headers and padding included
  std::size_t count_ = 0;     // committed records
  std::size_t reserved_ = 0;  // length of the open reservation, 0 when none
  // max_record_size(), kept: push tests every length against it (0 for capacity 0).
  std::size_t max_length_ = 0;
};

// --- the SPSC form --------------------------------------------------------------------------

namespace detail {

struct RecordSpscState : QueueShared<std::byte> {
  RecordSpscState(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept {
    attach(MirrorBuffer::create(min_capacity, 1, options, err));
  }
  // Sets both counters to `start`, a multiple of 8 (0 at creation; tests start near the
  // wrap-around). Only before the handles exist.
  void start_at(std::size_t start) noexcept {
    tail.store(start, std::memory_order_relaxed);
    head.store(start, std::memory_order_relaxed);
    const std::size_t cap = slots.capacity();
    consumer_index = cap == 0 ? 0 : start % cap;  // test set-up, not a hot path
  }
  using Position = std::size_t;
  static constexpr bool kBatching = true;  // the consumer may batch (set_batching)
  // Bytes ever published (headers and padding included), written by the producer.
  alignas(kFalseSharingRange) std::atomic<std::size_t> tail{0};
  // Bytes ever released, written by the consumer.
  alignas(kFalseSharingRange) std::atomic<std::size_t> head{0};
  bool closes_when_leaving(bool /*producer*/) noexcept { return true; }
  // The consumer's look at what is published: the producer's counter.
  Position published_end(Position /*known*/, Position /*head*/, std::size_t /*want*/) const noexcept {
    return tail.load(std::memory_order_acquire);
  }
};

}  // namespace detail

// The writing end of an SPSC record queue. Thread rules as SpscProducer's: move-only, one
// thread at a time; it runs concurrently with the consumer. Members wait-free except push_wait.
// Errors and the reservation rules as RecordRing's.
class RecordProducer : public detail::QueueHandle<std::byte, detail::RecordSpscState> {
  using Base = detail::QueueHandle<std::byte, detail::RecordSpscState>;
  using Framing = detail::RecordFraming;

 public:
  RecordProducer() noexcept = default;
  RecordProducer(RecordProducer&& o) noexcept
      : Base(std::move(o)),
        tail_(std::exchange(o.tail_, 0)),
        index_(std::exchange(o.index_, 0)),
        head_cache_(std::exchange(o.head_cache_, 0)),
        reserved_(std::exchange(o.reserved_, 0)),
        max_length_(std::exchange(o.max_length_, 0)),
        pacer_(std::exchange(o.pacer_, {})) {}
  RecordProducer& operator=(RecordProducer&& o) noexcept {
    if (this != &o) {
      tail_ = std::exchange(o.tail_, 0);
      index_ = std::exchange(o.index_, 0);
      head_cache_ = std::exchange(o.head_cache_, 0);
      reserved_ = std::exchange(o.reserved_, 0);
      max_length_ = std::exchange(o.max_length_, 0);
      pacer_ = std::exchange(o.pacer_, {});
      this->take(std::move(o));
    }
    return *this;
  }
  ~RecordProducer() = default;  // closes the queue

  std::size_t max_record_size() const noexcept { return max_length_; }
  // Free bytes as this side knows them after a fresh look (the consumer may free more).
  std::size_t bytes_free() noexcept { return free_bytes(capacity() + 1, false); }
  bool reserved() const noexcept { return reserved_ != 0; }

  // Batching as SpscProducer's (see Batching in spsc.hpp), min_batch in bytes: when reserve or
  // push finds fewer than min_batch bytes free at a look at the consumer's counter while this
  // end is streaming, it waits max_wait, touching no shared line, and looks once more. commit,
  // bytes_free and push_wait's own wait never wait so. Off by default; this thread only.
  // Throws std::invalid_argument, changing nothing, if max_wait < 0.
  void set_batching(Batching b) { pacer_.set(b); }
  Batching batching() const noexcept { return pacer_.get(); }

  // Exactly len contiguous writable bytes for the next record, or an empty span when there is
  // not room now or the queue is closed. Nothing is visible to the consumer before commit().
  std::span<std::byte> reserve(std::size_t len) {
    Framing::check_none_open(reserved_, "picoring: reserve(): a reservation is already open");
    if (s_ == nullptr) return {};
    Framing::check_length(len, capacity());
    if (record_footprint(len) > free_bytes(record_footprint(len), true) || is_closed()) return {};
    reserved_ = len;
    return {slots_.base() + slots_.wrap(index_ + Framing::kHeader), len};
  }
  // Publishes the reservation (all of it, or its first len bytes) as one record.
  void commit() { commit(Framing::check_open(reserved_, Framing::kNoReservationToCommit)); }
  void commit(std::size_t len) {
    Framing::check_commit_length(len, Framing::check_open(reserved_, Framing::kNoReservationToCommit));
    reserved_ = 0;
    const Next next = after(record_footprint(len));
    Framing::write_header(slots_, index_, len);
    publish(next);
  }
  void discard() {
    Framing::check_open(reserved_, "picoring: discard(): no reservation is open");
    reserved_ = 0;
  }
  // Copies record in as one record; false when there is not room now or the queue is closed.
  bool push(std::span<const std::byte> record) {
    const std::size_t len = record.size();
    if (Framing::needs_checks(reserved_, len, max_length_) &&
        !Framing::check_push(reserved_, s_ != nullptr, len, capacity())) {
      return false;
    }
    const std::size_t need = record_footprint(len);
    if (need > free_bytes(need, true) || is_closed()) return false;
    // What the publication needs, computed before the copy: std::byte stores may alias this
    // handle, and the compiler would read every member again after them (as SpscProducer's
    // after(), docs/benchmarks.md, Path cost).
    const Next next = after(need);
    Framing::write_record(slots_, index_, record);
    publish(next);
    return true;
  }
  // Copies the longest prefix of `records` that fits now, each as one record, and publishes them
  // together (one store of the counter, one wake-up check: a producer that has several records
  // at hand pays for one publication). Returns how many; 0 when the first does not fit, the
  // queue is closed, or the handle is empty. Throws, pushing none, as RecordRing::push_some.
  std::size_t push_some(std::span<const std::span<const std::byte>> records) {
    Framing::check_none_open(reserved_, Framing::kPushSomeWithReservation);
    if (s_ == nullptr) return 0;
    if (is_closed()) {
      Framing::check_records(records, capacity());  // bad input throws, closed or not
      return 0;
    }
    // One pass: the room this end knows of, a fresh look (batching may wait) only when a record
    // does not fit in it.
    const Framing::Prefix fit = Framing::write_fitting(slots_, index_, records, capacity() - (tail_ - head_cache_),
                                                       [this](std::size_t want) { return free_bytes(want, true); });
    if (fit.count != 0) publish(after(fit.bytes));
    return fit.count;
  }
  // Blocking push: waits (spinning briefly, then parked) until there is room, the timeout
  // passes, or the queue is closed.
  template <class Rep, class Period>
  QueueStatus push_wait(std::span<const std::byte> record, std::chrono::duration<Rep, Period> timeout) {
    Framing::check_none_open(reserved_, "picoring: push_wait(): a reservation is open");
    if (s_ == nullptr) return QueueStatus::closed;
    Framing::check_length(record.size(), capacity());
    if (is_closed()) return QueueStatus::closed;
    const std::size_t need = record_footprint(record.size());
    if (free_bytes(need, true) < need) {
      auto& s = *s_;
      const QueueStatus st = detail::wait_until([this, need] { return free_bytes(need, false) >= need; }, s.closed,
                                                s.producer_sleeping, s.space_word, detail::deadline_after(timeout));
      if (st != QueueStatus::ok) return st;
    }
    return push(record) ? QueueStatus::ok : QueueStatus::closed;
  }

 private:
  friend struct detail::QueueAccess;
  explicit RecordProducer(detail::RecordSpscState* s) noexcept
      : Base(s, true),
        tail_(s != nullptr ? s->tail.load(std::memory_order_relaxed) : 0),
        index_(s != nullptr ? s->consumer_index : 0),
        head_cache_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0),
        max_length_(Framing::max_length(capacity())) {}

  bool is_closed() const noexcept { return s_->closed.load(std::memory_order_relaxed) != 0; }
  // Free bytes, reloading the consumer's counter only if the cached one shows fewer than want;
  // `may_wait`: the caller is about to write a record, so batching may wait.
  std::size_t free_bytes(std::size_t want, bool may_wait) noexcept {
    const std::size_t cap = capacity();
    const std::size_t free = cap - (tail_ - head_cache_);
    if (free >= want) return free;
    if (s_ == nullptr) return 0;  // an empty handle: capacity and counters 0
    return pacer_.refresh(head_cache_, s_->head, may_wait, [&](std::size_t head) { return cap - (tail_ - head); });
  }
  // The counters after publishing `footprint` more bytes, and the state to publish them in.
  struct Next {
    std::size_t tail, index;
    detail::RecordSpscState* s;
  };
  Next after(std::size_t footprint) const noexcept { return {tail_ + footprint, slots_.wrap(index_ + footprint), s_}; }
  // After the record's bytes and its header: the counter (release), so the consumer sees whole
  // records only.
  void publish(const Next& next) noexcept {
    tail_ = next.tail;
    index_ = next.index;
    next.s->tail.store(next.tail, std::memory_order_release);
    detail::wake(next.s->consumer_sleeping, next.s->data_word);
  }

  std::size_t tail_ = 0;        // bytes published (mirror of s_->tail, owned here)
  std::size_t index_ = 0;       // slot index of the next header, a multiple of 8
  std::size_t head_cache_ = 0;  // last value read of s_->head
  std::size_t reserved_ = 0;    // length of the open reservation, 0 when none
  std::size_t max_length_ = 0;  // max_record_size(): 0 for an empty handle
  detail::Pacer pacer_;
};

// The reading end of a record queue, SPSC (RecordConsumer) or MPSC (RecordMpscConsumer).
// Thread rules as SpscConsumer's: move-only, one thread at a time, concurrently with the
// producers. Every member is wait-free except wait(); O(1) except drain (O(records)).
template <class State>
class BasicRecordConsumer : public detail::QueueHandle<std::byte, State> {
  using Base = detail::QueueHandle<std::byte, State>;
  using Framing = detail::RecordFraming;
  using Position = typename State::Position;

 public:
  BasicRecordConsumer() noexcept = default;
  BasicRecordConsumer(BasicRecordConsumer&& o) noexcept
      : Base(std::move(o)),
        head_(std::exchange(o.head_, 0)),
        index_(std::exchange(o.index_, 0)),
        tail_cache_(std::exchange(o.tail_cache_, 0)),
        pacer_(std::exchange(o.pacer_, {})) {}
  BasicRecordConsumer& operator=(BasicRecordConsumer&& o) noexcept {
    if (this != &o) {
      head_ = std::exchange(o.head_, 0);
      index_ = std::exchange(o.index_, 0);
      tail_cache_ = std::exchange(o.tail_cache_, 0);
      pacer_ = std::exchange(o.pacer_, {});
      this->take(std::move(o));
    }
    return *this;
  }
  ~BasicRecordConsumer() = default;  // closes the queue

  // The oldest record as one contiguous span; empty when none is published. The span stays
  // valid until pop(): no producer writes over it. (MPSC: a record published after one still
  // reserved waits for it; discarded reservations are skipped here.)
  std::span<std::byte> front() noexcept { return oldest(true); }
  // Removes the oldest record. Throws std::out_of_range, changing nothing, when there is none.
  void pop() {
    if (oldest(false).empty()) detail::throw_out_of_range("picoring: pop(): no record");
    release(Framing::read_header(this->slots_, index_).advance());
  }
  // Calls f(std::span<std::byte>) on up to max published records, oldest first, then frees them
  // all with one publication. Returns how many were visited. If f throws, the records visited
  // before are freed and the one it was given stays.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    const std::size_t have = readable(this->capacity() + 1, true);  // a fresh look: everything published now
    std::size_t n = 0;
    std::size_t bytes = 0;
    PICORING_TRY {
      while (n < max && bytes < have) {
        const std::size_t at = this->slots_.wrap(index_ + bytes);
        const Framing::Header h = Framing::read_header(this->slots_, at);
        if (!h.discarded()) {
          f(std::span<std::byte>(this->slots_.base() + at + Framing::kHeader, h.length));
          ++n;
        }
        bytes += h.advance();
      }
    }
    PICORING_CATCH_ALL {
      if (bytes != 0) release(bytes);
      PICORING_RETHROW;
    }
    if (bytes != 0) release(bytes);
    return n;
  }
  // Blocks until a record is published (ok), the timeout passes (timed_out), or the queue is
  // closed and empty (closed).
  template <class Rep, class Period>
  QueueStatus wait(std::chrono::duration<Rep, Period> timeout) {
    if (this->s_ == nullptr) return QueueStatus::closed;
    if (!oldest(false).empty()) return QueueStatus::ok;
    auto& s = *this->s_;
    return detail::wait_until([this] { return !oldest(false).empty(); }, s.closed, s.consumer_sleeping, s.data_word,
                              detail::deadline_after(timeout));
  }

  // SPSC only. Batching as SpscConsumer's (see Batching in spsc.hpp), min_batch in bytes: when
  // front or drain finds fewer than min_batch bytes published at a look at the producer's
  // counter while this end is streaming, it waits max_wait, touching no shared line, and looks
  // once more. pop (which takes what front found) and wait never wait so. Off by default; this
  // thread only. Throws std::invalid_argument, changing nothing, if max_wait < 0.
  void set_batching(Batching b) requires State::kBatching { pacer_.set(b); }
  Batching batching() const noexcept requires State::kBatching { return pacer_.get(); }

 private:
  friend struct detail::QueueAccess;
  explicit BasicRecordConsumer(State* s) noexcept
      : Base(s, false),
        head_(s != nullptr ? s->head.load(std::memory_order_relaxed) : 0),
        index_(s != nullptr ? s->consumer_index : 0),
        tail_cache_(head_) {}

  // The oldest record, skipping discarded places (MPSC); `may_wait` as readable's.
  std::span<std::byte> oldest(bool may_wait) noexcept {
    for (;;) {
      if (readable(1, may_wait) == 0) return {};
      const Framing::Header h = Framing::read_header(this->slots_, index_);
      if (!h.discarded()) return {this->slots_.base() + index_ + Framing::kHeader, h.length};
      release(h.advance());
    }
  }
  // Published bytes not yet released, looking at what the producers published only if the
  // cached end shows fewer than want; `may_wait`: the caller is about to read, so batching
  // (SPSC) may wait.
  std::size_t readable(std::size_t want, bool may_wait) noexcept {
    const auto have = static_cast<std::size_t>(tail_cache_ - head_);
    if (have >= want) return have;
    if (this->s_ == nullptr) return 0;  // an empty handle: counters 0
    const auto look = [&]() noexcept {
      tail_cache_ = this->s_->published_end(tail_cache_, head_, want);
      return static_cast<std::size_t>(tail_cache_ - head_);
    };
    if constexpr (State::kBatching) {
      return pacer_.refresh_with(may_wait, look);
    } else {
      return look();
    }
  }
  void release(std::size_t bytes) noexcept {
    head_ += bytes;
    index_ = this->slots_.wrap(index_ + bytes);
    this->s_->head.store(head_, std::memory_order_release);
    detail::wake(this->s_->producer_sleeping, this->s_->space_word);
  }

  Position head_ = 0;        // bytes released (mirror of s_->head, owned here)
  std::size_t index_ = 0;    // slot index of the oldest record's header
  Position tail_cache_ = 0;  // end of what is known to be published
  detail::Pacer pacer_;      // SPSC only (unused by MPSC, which does not batch)
};

using RecordConsumer = BasicRecordConsumer<detail::RecordSpscState>;

// Creates an SPSC record queue of at least min_capacity bytes and returns its two ends. Errors
// as RecordRing's constructors.
inline std::pair<RecordProducer, RecordConsumer> make_record_spsc(std::size_t min_capacity,
                                                                  MirrorOptions options = {}) {
  return detail::make_queue<RecordProducer, RecordConsumer, detail::RecordSpscState>(min_capacity, options);
}
// Non-throwing creation: on failure `err` is set and both handles are empty.
inline std::pair<RecordProducer, RecordConsumer> make_record_spsc(std::size_t min_capacity, Error& err,
                                                                  MirrorOptions options = {}) noexcept {
  return detail::make_queue<RecordProducer, RecordConsumer, detail::RecordSpscState>(min_capacity, err, options);
}

// --- the MPSC form --------------------------------------------------------------------------
//
// Producers claim a record's place with a compare-and-swap on a shared byte counter, write the
// record, then publish it by storing its end position into a side array, ends[], at the entry
// of its start position (release), as the MPSC queue of fixed slots does with its runs. The
// consumer walks from its position from one published record to the next, so records become
// readable in claim order however their commits are ordered (a record committed before an
// older one still reserved waits for it, as in the BPF ring buffer), and no producer waits for
// another. Publication is out of band on purpose: the ring's bytes are the records' own data,
// which may come from anyone, so a header in the ring could be forged by a record written a lap
// earlier; ends[] is written by producers only, with positions.
//
// ends[] has one entry per 16 bytes: record starts are at least 16 apart (the smallest
// footprint), so no two records of one lap share an entry. An entry holds the end of the record
// that starts in its 16 bytes: for the consumer's position p, an end in (p, p + capacity] is
// that record's; an older record's entry ends at most at p (records tile the positions, and p is
// a boundary) and a newer lap's record cannot be claimed before p is released.

namespace detail {

struct RecordMpscState : QueueShared<std::byte> {
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
                "positions are 64-bit everywhere (see MpscState); a lock would void the progress guarantee");
  using Position = std::uint64_t;
  static constexpr bool kBatching = false;        // as the element MPSC queue: no batching
  static constexpr std::size_t kEntryBytes = 16;  // the smallest record footprint

  RecordMpscState(std::size_t min_capacity, MirrorOptions options, Error& err) noexcept {
    // A power of two, so that a position maps to a byte and an entry with a mask; the
    // allocation granularity is one too, so the rounding keeps it one.
    if (min_capacity > (std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 2))) {
      err = {make_error_code(errc::size_overflow), "size computation"};
      return;
    }
    MirrorBuffer m = MirrorBuffer::create(min_capacity == 0 ? 0 : std::bit_ceil(min_capacity), 1, options, err);
    if (err) return;
    ends.reset(new (std::nothrow) std::atomic<Position>[m.size() / kEntryBytes]);
    if (!ends) {
      err = {std::make_error_code(std::errc::not_enough_memory), "allocate publication array"};
      return;
    }
    attach(std::move(m));
    mask = slots.capacity() - 1;
    entry_mask = slots.capacity() / kEntryBytes - 1;
    start_at(0);
  }
  // Sets every position to `start`, a multiple of 8 (0 at creation; tests start near the
  // wrap-around). Only before the handles exist. start - 1 reads "not published" everywhere.
  void start_at(Position start) noexcept {
    claimed.store(start, std::memory_order_relaxed);
    head.store(start, std::memory_order_relaxed);
    consumer_index = static_cast<std::size_t>(start & mask);
    for (std::size_t i = 0; i <= entry_mask; ++i) ends[i].store(start - 1, std::memory_order_relaxed);
  }
  std::atomic<Position>& entry(Position at) const noexcept {
    return ends[static_cast<std::size_t>(at / kEntryBytes) & entry_mask];
  }
  // The consumer's look: from `known` (a record boundary), follow published records until
  // at least want bytes past head are known or the next record is not published yet.
  Position published_end(Position known, Position head_now, std::size_t want) const noexcept {
    const std::size_t cap = slots.capacity();
    while (known - head_now < want && known - head_now < cap) {
      const Position end = entry(known).load(std::memory_order_acquire);
      if (end - known - 1 >= cap) break;  // by difference: exact across the 64-bit wrap-around
      known = end;
    }
    return known;
  }
  // The last producer copy going away closes the queue, as does the consumer.
  bool closes_when_leaving(bool producer) noexcept {
    return !producer || producers.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }

  std::size_t mask = 0;
  std::size_t entry_mask = 0;
  std::unique_ptr<std::atomic<Position>[]> ends;
  // Producers' line: claimed by CAS.
  alignas(kFalseSharingRange) std::atomic<Position> claimed{0};
  // Consumer's line.
  alignas(kFalseSharingRange) std::atomic<Position> head{0};
  std::atomic<int> producers{1};  // producer copies alive
};

}  // namespace detail

// A writing end of an MPSC record queue. Copy it to get another producer (one per thread);
// each copy has its own reservation. Every member is lock-free except push_wait; O(1) except
// push and push_some (O(n) copies). Errors and the reservation rules as RecordRing's, and:
// - A reservation holds its place in the queue: records claimed after it are read after it,
//   so a producer that keeps a reservation open holds the consumer back (not the producers).
// - commit(n) below the reserved length keeps the whole reserved place (the consumer skips the
//   rest); discard() publishes the place as skipped. Destroying or assigning over a handle with
//   an open reservation discards it.
class RecordMpscProducer : public detail::QueueHandle<std::byte, detail::RecordMpscState> {
  using Base = detail::QueueHandle<std::byte, detail::RecordMpscState>;
  using Framing = detail::RecordFraming;
  using Position = detail::RecordMpscState::Position;

 public:
  RecordMpscProducer() noexcept = default;
  // The copy starts with no reservation and reads the consumer's position afresh.
  RecordMpscProducer(const RecordMpscProducer& o) noexcept
      : Base(join(o.s_), true), head_cache_(consumer_position(o.s_)), max_length_(o.max_length_) {}
  RecordMpscProducer& operator=(const RecordMpscProducer& o) noexcept {
    if (this != &o) *this = RecordMpscProducer(o);
    return *this;
  }
  RecordMpscProducer(RecordMpscProducer&& o) noexcept
      : Base(std::move(o)),
        head_cache_(std::exchange(o.head_cache_, 0)),
        at_(std::exchange(o.at_, 0)),
        reserved_(std::exchange(o.reserved_, 0)),
        max_length_(std::exchange(o.max_length_, 0)) {}
  RecordMpscProducer& operator=(RecordMpscProducer&& o) noexcept {
    if (this != &o) {
      abandon();
      head_cache_ = std::exchange(o.head_cache_, 0);
      at_ = std::exchange(o.at_, 0);
      reserved_ = std::exchange(o.reserved_, 0);
      max_length_ = std::exchange(o.max_length_, 0);
      this->take(std::move(o));
    }
    return *this;
  }
  ~RecordMpscProducer() { abandon(); }  // then the last copy closes the queue

  std::size_t max_record_size() const noexcept { return max_length_; }
  bool reserved() const noexcept { return reserved_ != 0; }

  // Exactly len contiguous writable bytes for a new record, or an empty span when there is not
  // room now or the queue is closed. Nothing is visible to the consumer before commit().
  std::span<std::byte> reserve(std::size_t len) {
    Framing::check_none_open(reserved_, "picoring: reserve(): a reservation is already open");
    if (s_ == nullptr) return {};
    Framing::check_length(len, capacity());
    if (!claim(record_footprint(len), at_)) return {};
    reserved_ = len;
    return {slots_.base() + slots_.wrap(static_cast<std::size_t>(at_ & s_->mask) + Framing::kHeader), len};
  }
  // Publishes the reservation (all of it, or its first len bytes) as one record.
  void commit() { commit(Framing::check_open(reserved_, Framing::kNoReservationToCommit)); }
  void commit(std::size_t len) {
    const std::size_t open = Framing::check_open(reserved_, Framing::kNoReservationToCommit);
    Framing::check_commit_length(len, open);
    reserved_ = 0;
    publish(at_, open, len, Framing::padding_flags(open, len));
  }
  void discard() {
    Framing::check_open(reserved_, "picoring: discard(): no reservation is open");
    abandon();
  }
  // Copies record in as one record; false when there is not room now or the queue is closed.
  bool push(std::span<const std::byte> record) {
    const std::size_t len = record.size();
    if (Framing::needs_checks(reserved_, len, max_length_) &&
        !Framing::check_push(reserved_, s_ != nullptr, len, capacity())) {
      return false;
    }
    const std::size_t footprint = record_footprint(len);
    Position at = 0;
    if (!claim(footprint, at)) return false;
    auto* const s = s_;  // before the copy, as RecordProducer::push does
    Framing::write_record(slots_, static_cast<std::size_t>(at & s->mask), record);
    publish_entry(s, at, at + footprint);
    return true;
  }
  // Copies the longest prefix of `records` that fits now as consecutive records (the consumer
  // reads them one after another, nothing from other producers between them) with one claim
  // and one publication. Returns how many; 0 when the first does not fit, the queue is closed,
  // or the handle is empty. Throws, pushing none, as RecordRing::push_some.
  std::size_t push_some(std::span<const std::span<const std::byte>> records) {
    Framing::check_none_open(reserved_, Framing::kPushSomeWithReservation);
    if (s_ == nullptr) return 0;
    const std::size_t total = Framing::check_records(records, capacity());
    if (records.empty()) return 0;
    Position at = 0;
    const Framing::Prefix fit = claim_some(records, total, at);
    if (fit.count == 0) return 0;
    auto* const s = s_;  // before the copies, as in push
    Framing::write_records(slots_, static_cast<std::size_t>(at & s->mask), records.first(fit.count));
    publish_entry(s, at, at + fit.bytes);
    return fit.count;
  }
  // Blocking push: waits (spinning briefly, then parked) until there is room, the timeout
  // passes, or the queue is closed.
  template <class Rep, class Period>
  QueueStatus push_wait(std::span<const std::byte> record, std::chrono::duration<Rep, Period> timeout) {
    Framing::check_none_open(reserved_, "picoring: push_wait(): a reservation is open");
    if (s_ == nullptr) return QueueStatus::closed;
    Framing::check_length(record.size(), capacity());
    const std::size_t need = record_footprint(record.size());
    const auto deadline = detail::deadline_after(timeout);
    auto& s = *s_;
    for (;;) {
      if (s.closed.load(std::memory_order_acquire) != 0) return QueueStatus::closed;
      if (push(record)) return QueueStatus::ok;
      const QueueStatus st = detail::wait_until([this, need] { return has_room(need); }, s.closed, s.producer_sleeping,
                                                s.space_word, deadline);
      if (st != QueueStatus::ok) return st;  // else another producer may take the room first: try again
    }
  }

 private:
  friend struct detail::QueueAccess;
  explicit RecordMpscProducer(detail::RecordMpscState* s) noexcept
      : Base(s, true), head_cache_(consumer_position(s)), max_length_(Framing::max_length(capacity())) {}

  static Position consumer_position(const detail::RecordMpscState* s) noexcept {
    return s != nullptr ? s->head.load(std::memory_order_acquire) : 0;
  }
  static detail::RecordMpscState* join(detail::RecordMpscState* s) noexcept {
    if (s != nullptr) {
      s->handles.fetch_add(1, std::memory_order_relaxed);
      s->producers.fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }
  bool has_room(std::size_t need) noexcept {
    head_cache_ = s_->head.load(std::memory_order_acquire);
    return s_->claimed.load(std::memory_order_relaxed) - head_cache_ + need <= capacity();
  }
  // Claims need bytes; false when fewer are free or the queue is closed. head_cache_ is a value
  // once read from head, so claimed - head_cache_ never understates what is taken.
  bool claim(std::size_t need, Position& at) noexcept {
    auto* s = s_;
    const std::size_t cap = capacity();
    if (s->closed.load(std::memory_order_relaxed) != 0) return false;
    Position t = s->claimed.load(std::memory_order_relaxed);
    for (;;) {
      if (t - head_cache_ + need > cap) {
        head_cache_ = s->head.load(std::memory_order_acquire);
        t = s->claimed.load(std::memory_order_relaxed);
        if (t - head_cache_ + need > cap) return false;
      }
      // Relaxed: the bytes' previous readers released them through head (acquire above); the
      // record reaches the consumer through its ends[] entry (release).
      if (s->claimed.compare_exchange_weak(t, t + need, std::memory_order_relaxed)) break;
    }
    at = t;
    return true;
  }
  // As claim(), for the longest prefix of records that fits (`total`: all their footprints);
  // an empty prefix when not even the first fits or the queue is closed. Each retry measures
  // the prefix again against what other producers left.
  Framing::Prefix claim_some(std::span<const std::span<const std::byte>> records, std::size_t total, Position& at) {
    auto* s = s_;
    const std::size_t cap = capacity();
    if (s->closed.load(std::memory_order_relaxed) != 0) return {};
    Position t = s->claimed.load(std::memory_order_relaxed);
    for (;;) {
      if (t - head_cache_ + total > cap) {  // stale or short: look at the consumer once
        head_cache_ = s->head.load(std::memory_order_acquire);
        t = s->claimed.load(std::memory_order_relaxed);
      }
      const std::size_t taken = static_cast<std::size_t>(t - head_cache_);
      const Framing::Prefix fit = Framing::fitting(records, taken < cap ? cap - taken : 0);
      if (fit.count == 0) return {};
      if (s->claimed.compare_exchange_weak(t, t + fit.bytes, std::memory_order_relaxed)) {
        at = t;
        return fit;
      }
    }
  }
  // Header, then the entry (release): the consumer sees whole records only.
  void publish(Position at, std::size_t reserved, std::size_t length, std::uint32_t flags) noexcept {
    Framing::write_header(slots_, static_cast<std::size_t>(at & s_->mask), length, flags);
    publish_entry(s_, at, at + record_footprint(reserved));
  }
  static void publish_entry(detail::RecordMpscState* s, Position at, Position end) noexcept {
    s->entry(at).store(end, std::memory_order_release);
    detail::wake(s->consumer_sleeping, s->data_word);
  }
  // Publishes an open reservation as skipped. A claimed place must be published, or the
  // consumer would wait for it forever.
  void abandon() noexcept {
    if (reserved_ == 0) return;
    const std::size_t open = std::exchange(reserved_, 0);
    publish(at_, open, open, Framing::kDiscarded);
  }

  Position head_cache_ = 0;     // a value once read from s_->head
  Position at_ = 0;             // position of the open reservation's header
  std::size_t reserved_ = 0;    // length of the open reservation, 0 when none
  std::size_t max_length_ = 0;  // max_record_size(): 0 for an empty handle
};

using RecordMpscConsumer = BasicRecordConsumer<detail::RecordMpscState>;

// Creates an MPSC record queue of at least min_capacity bytes (rounded up to a power of two and
// to whole pages) and returns a producer (copy it for more) and the consumer. Errors as
// RecordRing's constructors.
inline std::pair<RecordMpscProducer, RecordMpscConsumer> make_record_mpsc(std::size_t min_capacity,
                                                                          MirrorOptions options = {}) {
  return detail::make_queue<RecordMpscProducer, RecordMpscConsumer, detail::RecordMpscState>(min_capacity, options);
}
// Non-throwing creation: on failure `err` is set and both handles are empty.
inline std::pair<RecordMpscProducer, RecordMpscConsumer> make_record_mpsc(std::size_t min_capacity, Error& err,
                                                                          MirrorOptions options = {}) noexcept {
  return detail::make_queue<RecordMpscProducer, RecordMpscConsumer, detail::RecordMpscState>(min_capacity, err,
                                                                                             options);
}

}  // namespace picoring
