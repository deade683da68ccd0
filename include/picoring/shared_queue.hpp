// picoring: a record queue, a byte stream and a queue of fixed-size elements between two
// processes, in mirrored shared memory. SharedRecordWriter / SharedRecordReader carry records
// (each one span); SharedStreamWriter / SharedStreamReader carry bytes (every readable byte one
// span, like PicoByteStream); SharedQueueWriter<T> / SharedQueueReader<T> carry trivially
// copyable elements (every readable element in one span, like SpscConsumer::peek).
//
//   // process A (creates the queue, writes)
//   auto w = picoring::SharedRecordWriter::create(1 << 20);
//   picoring::send_fd(unix_socket, w.fd());        // or let a child inherit it
//   w.push(std::as_bytes(std::span(line)));
//
//   // process B (attaches, reads)
//   auto r = picoring::SharedRecordReader::attach(picoring::receive_fd(unix_socket));
//   while (r.wait(std::chrono::seconds(1)) == picoring::QueueStatus::ok) {
//     auto rec = r.front();                          // one contiguous span, wrapped or not
//     parse(rec);
//     r.pop();
//   }
//
// The memory is one memfd: a header page (layout, counters, wake-up words, the two processes'
// ids) then the data, which each process maps twice back to back, so every record is one span
// (the framing is RecordRing's: an 8-byte header, the bytes, padding to 8). The memfd is sealed
// against shrinking and growing before its descriptor leaves the creator, so a peer cannot
// truncate it under us (no SIGBUS), and it has no name: nothing is left in /dev/shm, and the
// memory goes when the last process unmaps it.
//
// The peer is not trusted. attach() checks the seals, the size and the header's layout; every
// counter and record length read from shared memory is checked before it is used, so a corrupt or
// malicious peer can make this side fail (std::system_error with errc::corrupt_shared_state,
// the queue then closed) but never read or write outside the ring. The peer's process id comes
// from the header: a lying peer can only make the waits report `closed` early or late.
//
// Roles: one writer and one reader at a time, each claimed in the header by its process id (a
// second writer or reader fails with std::system_error, EBUSY). A role whose process has died
// without giving it up can be claimed again: a restarted reader continues with the records the
// dead one had not released (delivery is at least once across a reader's crash). Each handle is used by one thread at a
// time. Destroying or closing either handle closes the queue (the reader still drains what was
// written); when the peer process dies without closing, the waits notice within 20 ms and
// return QueueStatus::closed.
//
// Blocking: spin briefly, then sleep on a shared futex (not FUTEX_PRIVATE: the two processes
// share the word's physical page). The hot path has no fence when both processes could register
// for membarrier(GLOBAL_EXPEDITED) (the sleeper pays a system call instead), else a full
// barrier per publication on both sides.
//
// Linux (memfd seals, futexes) and Windows: there the memory is a pagefile-backed section whose
// handle stands for the memfd (fd() returns its value; pass it with duplicate_for_process or
// inheritance; its size can never change, so no seal is needed), the waits sleep on two named
// events (Local\picoring-queue-<id>-data and -space, gone with the last handle) and a
// process handle tells when the peer has exited; every publication pays a full fence (no
// membarrier across processes). Elsewhere create() and attach() throw std::system_error
// (not supported). Every kind shares the header and the rules above; the header records the
// kind (and the element size), and an end of one kind refuses to attach to another.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "picoring/mirror_buffer.hpp"
#include "picoring/queue_status.hpp"
#include "picoring/record_ring.hpp"

namespace picoring {

namespace detail {

// The header page, the same in every process that maps the queue (fixed-width fields only, so a
// 32-bit and a 64-bit process can share a queue).
struct SharedHeader {
  static constexpr std::uint64_t kMagic = 0x31474e4952434950;  // "PICRING1", little endian
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::uint32_t kRecordQueue = 1;  // the layout kinds: records (RecordRing framing)
  static constexpr std::uint32_t kByteStream = 2;   // or plain bytes
  static constexpr std::uint32_t kFixedSlots = 3;   // or elements of element_size bytes each

  // Written once by the creator before the descriptor is shared; checked by attach().
  std::uint64_t magic = 0;
  std::uint32_t version = 0;
  std::uint32_t kind = 0;
  std::uint64_t header_bytes = 0;  // offset of the data in the memfd: the creator's page size
  std::uint64_t data_bytes = 0;    // the ring's capacity
  std::uint32_t element_size = 0;  // 1 for records and bytes; a slot's size for kFixedSlots
  std::uint32_t unused = 0;
  // Windows: names the queue's two wake-up events (see src/shared_queue.cpp); 0 elsewhere.
  std::uint64_t wake_id = 0;

  alignas(64) std::atomic<std::uint64_t> tail;  // bytes ever published, written by the writer
  alignas(64) std::atomic<std::uint64_t> head;  // bytes ever released, written by the reader
  // Read on every call, written once (closed, fences) or at attach (the ids): shared in both
  // caches. Apart from what a parking side writes, so that parking costs the other side nothing.
  alignas(64) std::atomic<std::uint32_t> closed;
  // 0 while both processes are registered for membarrier(GLOBAL_EXPEDITED): a side that
  // publishes then needs no fence (a sleeper's membarrier stands in for it); 1 once either is
  // not, for good: a full fence on both sides (see shared_publish).
  std::atomic<std::uint32_t> fences;
  std::atomic<std::int32_t> writer_pid;  // 0: no writer
  std::atomic<std::int32_t> reader_pid;  // 0: no reader
  // Written when a side parks or wakes the other.
  alignas(64) std::atomic<std::uint32_t> reader_sleeping;
  std::atomic<std::uint32_t> writer_sleeping;
  std::atomic<std::uint32_t> data_word;   // futex: bumped when records were published
  std::atomic<std::uint32_t> space_word;  // futex: bumped when space was freed
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "shared counters must be lock-free: a lock would live in one process only");

enum class SharedRole { writer, reader };

template <class Self, class Stream, SharedRole kRole, class Size>
class SharedSlotsEnd;
template <class Self, class Size>
class SharedSlotsWriter;
template <class Self, class Size>
class SharedSlotsReader;

// What a queue's memory holds: the kind, and the size of its units (1: bytes). An end attaches
// only to the layout it was made for.
struct SharedLayout {
  std::uint32_t kind;
  std::uint32_t element_size;
};

// One process's mapping of a shared queue: the header, the mirrored data, the memfd (kept open
// until close_fd(), so that it can still be passed on). Out of line in src/shared_queue.cpp.
class SharedRegion {
 public:
  SharedRegion() noexcept = default;
  // A new queue of at least min_capacity units of layout.element_size bytes (rounded up to whole
  // pages of whole units), with `role` claimed, this process's mapping made resident as
  // `residency` asks.
  static SharedRegion create(std::size_t min_capacity, SharedLayout layout, SharedRole role, Residency residency,
                             Error& err) noexcept;
  // The queue behind fd (duplicated: the caller's descriptor stays the caller's), validated
  // against `layout`, with `role` claimed and this process's mapping made resident as
  // `residency` asks.
  static SharedRegion attach(int fd, SharedLayout layout, SharedRole role, Residency residency, Error& err) noexcept;
  SharedRegion(SharedRegion&& o) noexcept { swap(o); }
  SharedRegion& operator=(SharedRegion&& o) noexcept {
    SharedRegion(std::move(o)).swap(*this);
    return *this;
  }
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();  // closes the queue, gives the role up, unmaps, closes the descriptor

  SharedHeader* header() const noexcept { return header_; }
  std::byte* data() const noexcept { return data_; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  bool locked() const noexcept { return locked_; }
  int fd() const noexcept { return fd_; }
  void close_fd() noexcept;
  void close() noexcept;  // marks the queue closed and wakes the peer
  // False once the peer's process has exited (or never was): the waits' way out.
  bool peer_alive() noexcept;
  // Sleeps on `word` while it holds `seen`, at most until deadline and at most 20 ms (the peer
  // check's period).
  void park(std::atomic<std::uint32_t>& word, std::uint32_t seen,
            std::chrono::steady_clock::time_point deadline) noexcept;
  void wake(std::atomic<std::uint32_t>& word) noexcept;
  // Windows: the handle value of the event that stands for data_word's futex (-1 elsewhere).
  int data_event() const noexcept { return data_event_; }
  // The sleeper's half of the handshake, after announcing itself: membarrier(GLOBAL_EXPEDITED)
  // while the queue is in asymmetric mode, else (or if that call fails: then for good) a fence.
  void heavy_fence() noexcept;

 private:
  static bool make_resident(SharedRegion& r, Residency residency, Error& err) noexcept;
  void swap(SharedRegion& o) noexcept {
    std::swap(header_, o.header_);
    std::swap(data_, o.data_);
    std::swap(capacity_, o.capacity_);
    std::swap(header_bytes_, o.header_bytes_);
    std::swap(fd_, o.fd_);
    std::swap(role_, o.role_);
    std::swap(peer_pid_, o.peer_pid_);
    std::swap(peer_fd_, o.peer_fd_);
    std::swap(owner_, o.owner_);
    std::swap(data_event_, o.data_event_);
    std::swap(space_event_, o.space_event_);
    std::swap(has_role_, o.has_role_);
    std::swap(locked_, o.locked_);
  }
  SharedHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::size_t header_bytes_ = 0;
  int fd_ = -1;
  SharedRole role_ = SharedRole::writer;
  std::int32_t peer_pid_ = 0;  // the peer last looked at, and a pidfd on it (-1: none)
  int peer_fd_ = -1;
  std::int32_t owner_ = 0;  // the process that mapped it (a fork child's copy releases nothing)
  int data_event_ = -1;     // Windows: the events that stand for the futexes (handle values)
  int space_event_ = -1;
  bool has_role_ = false;  // a complete region, its role claimed: leaving closes the queue
  bool locked_ = false;    // header and both data views mlock()ed in this process
};

[[noreturn]] void throw_corrupt(const char* what);

// Spins, then parks until ready(), the deadline, a close, or the peer's death.
template <class Ready>
QueueStatus shared_wait(SharedRegion& r, Ready ready, std::atomic<std::uint32_t>& sleeping,
                        std::atomic<std::uint32_t>& word, std::chrono::steady_clock::time_point deadline) {
  SharedHeader& h = *r.header();
  for (int i = 0; i < kSpinsBeforeParking; ++i) {
    if (ready()) return QueueStatus::ok;
    if (h.closed.load(std::memory_order_acquire) != 0) return ready() ? QueueStatus::ok : QueueStatus::closed;
    cpu_relax();
  }
  for (;;) {
    const std::uint32_t seen = word.load(std::memory_order_acquire);
    sleeping.fetch_add(1, std::memory_order_seq_cst);
    r.heavy_fence();  // pairs with shared_publish
    QueueStatus outcome = QueueStatus::ok;
    bool done = true;
    if (ready()) {
      outcome = QueueStatus::ok;
    } else if (h.closed.load(std::memory_order_acquire) != 0 || !r.peer_alive()) {
      outcome = ready() ? QueueStatus::ok : QueueStatus::closed;
    } else if (std::chrono::steady_clock::now() >= deadline) {
      outcome = QueueStatus::timed_out;
    } else {
      r.park(word, seen, deadline);
      done = false;
    }
    sleeping.fetch_sub(1, std::memory_order_relaxed);
    if (done) return outcome;
  }
}

// Publishes a counter and wakes the other side if it sleeps. The Dekker pair of shared_wait: the
// sleeper announces itself, runs heavy_fence(), then looks at the counter; this side stores the
// counter, then looks at the announcement; one of the two must see the other. In asymmetric mode
// the sleeper's membarrier(GLOBAL_EXPEDITED) runs a full barrier on this process's running
// threads, so this side needs only a compiler barrier (a fence here would stall every
// publication until the store reached the other core). Otherwise a sequentially consistent
// exchange (one full barrier) orders the store before the load. A switch to fences while a
// publication is in flight can lose one wake-up: the sleeper looks again within 20 ms.
inline void shared_publish(SharedRegion& r, std::atomic<std::uint64_t>& counter, std::uint64_t value,
                           std::atomic<std::uint32_t>& sleeping, std::atomic<std::uint32_t>& word) noexcept {
  if (r.header()->fences.load(std::memory_order_relaxed) == 0) {
    counter.store(value, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    counter.exchange(value, std::memory_order_seq_cst);
  }
  if (sleeping.load(std::memory_order_seq_cst) != 0) {
    word.fetch_add(1, std::memory_order_release);
    r.wake(word);
  }
}

// What both ends of a shared queue have: the mapping, how it is made, and what it tells.
template <class End, SharedRole kRole>
class SharedEnd {
 public:
  // A new queue of at least min_capacity bytes (rounded up to whole pages), this end's role
  // claimed. Throws as MirrorBuffer's constructor (the step names the failed call:
  // memfd_create, ftruncate, fcntl(F_ADD_SEALS), mmap ...).
  //
  // `residency` is MirrorBuffer's (Residency in mirror_buffer.hpp) for this process's mapping:
  // the header page and both data views. populate faults them in now (MADV_POPULATE_WRITE,
  // which writes nothing, so the peer's data is safe; a reading touch loop before Linux 5.14);
  // lock also mlock()s them until this end goes (RLIMIT_MEMLOCK counts both views and the
  // header page; refused: std::system_error naming "mlock"); lock_if_allowed falls back to
  // populate, and locked() says which. Each process chooses for its own mapping.
  static End create(std::size_t min_capacity, Residency residency = Residency::on_demand) {
    Error err;
    End end(SharedRegion::create(min_capacity, End::kLayout, kRole, residency, err));
    if (err) throw_error(err);
    return end;
  }
  // This end of the queue behind fd (not consumed: close your copy when you like). Throws
  // std::system_error naming the check that failed (not a sealed picoring memfd, wrong layout,
  // kind (records or bytes) or version, a size that does not match; EBUSY when a live process
  // holds this role), or, with `residency`, as create().
  static End attach(int fd, Residency residency = Residency::on_demand) {
    Error err;
    End end(SharedRegion::attach(fd, End::kLayout, kRole, residency, err));
    if (err) throw_error(err);
    return end;
  }

  // The memfd, to pass to the other process (send_fd, or inherited by a child: it is
  // close-on-exec, so clear that or dup2 it for exec); on Windows the section handle's value
  // (duplicate_for_process, or inherited: it is not inheritable until made so). -1 after
  // close_fd().
  int fd() const noexcept { return r_.fd(); }
  void close_fd() noexcept { r_.close_fd(); }
  std::size_t capacity() const noexcept { return static_cast<std::size_t>(r_.capacity()); }
  // True when this process's mapping is mlock()ed (Residency::lock, or lock_if_allowed allowed).
  bool locked() const noexcept { return r_.locked(); }
  bool closed() const noexcept {
    return r_.header() == nullptr || r_.header()->closed.load(std::memory_order_acquire) != 0;
  }
  // Closes the queue for both ends (the reader still drains what was published) and wakes the other.
  void close() noexcept { r_.close(); }

  // Batching as the in-process queues' (Batching in queue_status.hpp), min_batch in bytes: when
  // a look at the other process's counter finds fewer than min_batch bytes (free for the
  // writer, published for the reader) while this end is streaming, the call waits max_wait,
  // touching no shared line, and looks once more. Which calls may wait: the writer's
  // reserve/push (records) or writable/write (stream), the reader's front/pop/drain (records)
  // or readable/read (stream); commit, release and the waits never do. Off by default; per
  // end, this thread only. Throws std::invalid_argument, changing nothing, if max_wait < 0.
  void set_batching(Batching b) { pacer_.set(b); }
  Batching batching() const noexcept { return pacer_.get(); }

 protected:
  SharedEnd() noexcept = default;
  explicit SharedEnd(SharedRegion r) noexcept : r_(std::move(r)) {}

  SharedRegion r_;
  Pacer pacer_;
};

}  // namespace detail

// The writing end. Move-only; one thread at a time. Errors and reservation rules as RecordRing's,
// plus: a counter from the reader that cannot be right throws std::system_error
// (errc::corrupt_shared_state) and closes the queue.
class SharedRecordWriter : public detail::SharedEnd<SharedRecordWriter, detail::SharedRole::writer> {
  using Base = detail::SharedEnd<SharedRecordWriter, detail::SharedRole::writer>;
  using Framing = detail::RecordFraming;
  friend Base;

 public:
  static constexpr detail::SharedLayout kLayout{detail::SharedHeader::kRecordQueue, 1};
  SharedRecordWriter() noexcept = default;
  std::size_t max_record_size() const noexcept { return Framing::max_length(capacity()); }
  // Also, from SharedEnd: create(min_capacity, residency), attach(fd, residency), fd(),
  // close_fd(), capacity(), locked(), closed(), close().

  // Exactly len contiguous writable bytes for one record, or an empty span when there is no
  // room now or the queue is closed. commit() publishes it; discard() abandons it.
  std::span<std::byte> reserve(std::size_t len) {
    Framing::check_none_open(reserved_, "picoring: reserve(): a reservation is already open");
    Framing::check_length(len, capacity());
    if (closed() || free_bytes(record_footprint(len), true) < record_footprint(len)) return {};
    reserved_ = len;
    return {r_.data() + index() + Framing::kHeader, len};
  }
  void commit() { publish(Framing::check_open(reserved_, Framing::kNoReservationToCommit)); }
  void commit(std::size_t len) {
    Framing::check_commit_length(len, Framing::check_open(reserved_, Framing::kNoReservationToCommit));
    publish(len);
  }
  void discard() {
    Framing::check_open(reserved_, "picoring: discard(): no reservation is open");
    reserved_ = 0;
  }
  // Copies one record in; false when there is no room now or the queue is closed.
  bool push(std::span<const std::byte> bytes) {
    auto out = reserve(bytes.size());
    if (out.empty()) return false;
    std::memcpy(out.data(), bytes.data(), bytes.size());
    commit();
    return true;
  }
  // Copies the longest prefix of `records` that fits now, each as one record, and publishes them
  // with one store of the counter (one wake-up check); returns how many, 0 when the first does
  // not fit or the queue is closed. Throws, pushing none, for an empty or over-long record
  // anywhere in the list or an open reservation (as RecordRing::push_some), and as push does for
  // a reader's counter that cannot be right. O(records + bytes copied).
  std::size_t push_some(std::span<const std::span<const std::byte>> records) {
    Framing::check_none_open(reserved_, Framing::kPushSomeWithReservation);
    const std::size_t total = Framing::check_records(records, capacity());
    if (records.empty() || closed()) return 0;
    const Framing::Prefix fit = Framing::fitting(records, free_bytes(total, true));
    if (fit.count == 0) return 0;
    Framing::write_records_at(r_.data(), capacity(), index(), records.first(fit.count));
    publish_bytes(fit.bytes);
    return fit.count;
  }
  // Blocks until a record of len bytes fits (ok), the timeout passes (timed_out), or the queue
  // is closed or the reader's process has died (closed).
  template <class Rep, class Period>
  QueueStatus wait_for_space(std::size_t len, std::chrono::duration<Rep, Period> timeout) {
    Framing::check_length(len, capacity());
    if (closed()) return QueueStatus::closed;
    const std::size_t need = record_footprint(len);
    if (free_bytes(need, false) >= need) return QueueStatus::ok;  // the usual case: no clock, no wait
    auto& h = *r_.header();
    const QueueStatus st = detail::shared_wait(
        r_, [&] { return free_bytes(need, false) >= need; }, h.writer_sleeping, h.space_word,
        detail::deadline_after(timeout));
    return st == QueueStatus::ok && closed() ? QueueStatus::closed : st;
  }
  // push, waiting for room as wait_for_space does.
  template <class Rep, class Period>
  QueueStatus push_wait(std::span<const std::byte> bytes, std::chrono::duration<Rep, Period> timeout) {
    const QueueStatus st = wait_for_space(bytes.size(), timeout);
    if (st != QueueStatus::ok) return st;
    return push(bytes) ? QueueStatus::ok : QueueStatus::closed;
  }

 private:
  explicit SharedRecordWriter(detail::SharedRegion r) noexcept : Base(std::move(r)) {
    if (r_.header() != nullptr) tail_ = head_cache_ = r_.header()->tail.load(std::memory_order_relaxed);
  }
  std::size_t index() const noexcept { return static_cast<std::size_t>(tail_ % r_.capacity()); }
  // Free bytes, reloading the reader's counter only when the cached one shows fewer than want
  // (then batching may wait, if may_wait).
  std::size_t free_bytes(std::size_t want, bool may_wait) {
    const std::uint64_t cap = r_.capacity();
    if (cap - (tail_ - head_cache_) >= want) return static_cast<std::size_t>(cap - (tail_ - head_cache_));
    return pacer_.refresh_with(may_wait, [&] {
      const std::uint64_t head = r_.header()->head.load(std::memory_order_acquire);
      // The reader cannot have released what was never written, nor anything but whole records.
      if (head - head_cache_ > tail_ - head_cache_ || head % 8 != 0) {
        r_.close();
        detail::throw_corrupt("picoring: shared queue: the reader's counter is out of range");
      }
      head_cache_ = head;
      return static_cast<std::size_t>(cap - (tail_ - head));
    });
  }
  void publish(std::size_t len) {
    Framing::write_header_at(r_.data() + index(), len);
    reserved_ = 0;
    publish_bytes(record_footprint(len));
  }
  // Publishes the next `bytes` (whole records, headers written) with one store of the counter.
  void publish_bytes(std::size_t bytes) {
    tail_ += bytes;
    auto& h = *r_.header();
    detail::shared_publish(r_, h.tail, tail_, h.reader_sleeping, h.data_word);
  }

  std::uint64_t tail_ = 0;
  std::uint64_t head_cache_ = 0;
  std::size_t reserved_ = 0;
};

// The reading end. Move-only; one thread at a time. front() checks what the writer published
// (the counter and the record's length) and throws std::system_error
// (errc::corrupt_shared_state), closing the queue, when it cannot be right.
class SharedRecordReader : public detail::SharedEnd<SharedRecordReader, detail::SharedRole::reader> {
  using Base = detail::SharedEnd<SharedRecordReader, detail::SharedRole::reader>;
  using Framing = detail::RecordFraming;
  friend Base;

 public:
  static constexpr detail::SharedLayout kLayout{detail::SharedHeader::kRecordQueue, 1};
  SharedRecordReader() noexcept = default;
  std::size_t max_record_size() const noexcept { return Framing::max_length(capacity()); }
  // Also, from SharedEnd: create(min_capacity, residency), attach(fd, residency), fd(),
  // close_fd(), capacity(), locked(), closed(), close().

  // The oldest record as one contiguous span, or an empty span when none is published. Valid
  // until pop().
  std::span<const std::byte> front() {
    if (r_.header() == nullptr || readable(true) == 0) return {};
    const std::size_t at = static_cast<std::size_t>(head_ % r_.capacity());
    const std::size_t len = Framing::read_length_at(r_.data() + at);
    if (len == 0 || record_footprint(len) > readable(false)) {
      r_.close();
      detail::throw_corrupt("picoring: shared queue: a record's length is out of range");
    }
    return {r_.data() + at + Framing::kHeader, len};
  }
  // Drops the oldest record. Throws std::out_of_range if there is none.
  void pop() {
    const auto rec = front();
    if (rec.empty()) detail::throw_out_of_range("picoring: pop(): no record");
    head_ += record_footprint(rec.size());
    auto& h = *r_.header();
    detail::shared_publish(r_, h.head, head_, h.writer_sleeping, h.space_word);
  }
  // Calls f(span) on up to max records, oldest first, then frees them with one publication.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    std::size_t unlimited = static_cast<std::size_t>(-1);
    return drain_within(f, max, unlimited);
  }
  // Blocks until a record is readable (ok), the timeout passes (timed_out), or the queue is
  // closed and drained, or the writer's process has died and every record it published is read
  // (closed).
  template <class Rep, class Period>
  QueueStatus wait(std::chrono::duration<Rep, Period> timeout) {
    if (r_.header() == nullptr) return QueueStatus::closed;
    if (readable(false) != 0) return QueueStatus::ok;  // the usual case: no clock, no wait
    auto& h = *r_.header();
    return detail::shared_wait(
        r_, [&] { return readable(false) != 0; }, h.reader_sleeping, h.data_word, detail::deadline_after(timeout));
  }

 private:
  explicit SharedRecordReader(detail::SharedRegion r) noexcept : Base(std::move(r)) {
    if (r_.header() != nullptr) head_ = tail_cache_ = r_.header()->head.load(std::memory_order_relaxed);
  }
  // Published bytes not yet released, reloading the writer's counter when none are known (then
  // batching may wait, if may_wait).
  std::size_t readable(bool may_wait) {
    if (tail_cache_ != head_) return static_cast<std::size_t>(tail_cache_ - head_);
    return pacer_.refresh_with(may_wait, [&] {
      const std::uint64_t tail = r_.header()->tail.load(std::memory_order_acquire);
      if (tail - head_ > r_.capacity() || tail % 8 != 0) {
        r_.close();
        detail::throw_corrupt("picoring: shared queue: the writer's counter is out of range");
      }
      tail_cache_ = tail;
      return static_cast<std::size_t>(tail - head_);
    });
  }

  // drain(), also stopping before a record whose footprint exceeds `bytes`, which it lowers by
  // what it frees (the fan-in's turns).
  template <class F>
  std::size_t drain_within(F& f, std::size_t max, std::size_t& bytes) {
    std::size_t n = 0;
    const std::uint64_t start = head_;
    for (; n < max; ++n) {
      const auto rec = front();
      if (rec.empty() || record_footprint(rec.size()) > bytes) break;
      f(rec);
      head_ += record_footprint(rec.size());
      bytes -= record_footprint(rec.size());
    }
    if (head_ != start) {
      auto& h = *r_.header();
      detail::shared_publish(r_, h.head, head_, h.writer_sleeping, h.space_word);
    }
    return n;
  }
  friend class SharedRecordFanIn;

  std::uint64_t head_ = 0;
  std::uint64_t tail_cache_ = 0;
};

// Records from many processes into one reader: each producer process has its own
// SharedRecordWriter (a lane), and the reading process adds each lane's queue here. The reader
// takes lanes in turns: a turn gives at most the bytes its lane held when the turn began, so a
// busy producer cannot starve the others. Order is kept per producer, not across producers (the
// in-process fan-in's rule, FanInConsumer). One wait covers every lane (futex_waitv, Linux 5.16;
// on older kernels the wait looks at every lane at least once a millisecond; on Windows the
// lanes' events, 64 at a time).
//
//   picoring::SharedRecordFanIn in;
//   const int fd = picoring::receive_fd(producer_socket);  // once per producer process
//   const std::uint64_t id = in.add(fd);                  // attaches (its own descriptor)
//   ::close(fd);
//   while (in.wait(std::chrono::seconds(1)) != picoring::QueueStatus::closed)
//     in.drain([](std::span<const std::byte> rec, std::uint64_t lane) { parse(lane, rec); });
//
// A lane ends when its queue is closed (the writer closed it or was destroyed, or this side
// closed it) or its writer's process has died, and then once it is drained it is dropped: its
// mapping goes, and nothing is left. A lane whose writer publishes something that cannot be
// right is dropped at once and the call that found it throws std::system_error
// (errc::corrupt_shared_state): the other lanes go on. Move-only; one thread at a time.
class SharedRecordFanIn {
 public:
  // At most this many lanes at once: futex_waitv's limit, so that one wait covers them all.
  static constexpr std::size_t kMaxLanes = 128;

  SharedRecordFanIn() = default;

  // Attaches as the reader of the record queue behind fd (which stays the caller's) and adds it
  // as the last lane. Returns the lane's id: 1 for the first lane added, then 2, 3 ... (never
  // reused), which front_lane() and drain() report with its records. Throws as
  // SharedRecordReader::attach, std::length_error when kMaxLanes lanes are open,
  // std::logic_error after close(); the lanes are unchanged when it throws.
  std::uint64_t add(int fd, Residency residency = Residency::on_demand) {
    check_room();
    return add(SharedRecordReader::attach(fd, residency));
  }
  // Adds an attached reader as the last lane (its batching is turned off: turns decide when a
  // lane is read). Throws std::invalid_argument for an empty reader, or as above.
  std::uint64_t add(SharedRecordReader lane) {
    check_room();
    if (lane.r_.header() == nullptr) throw std::invalid_argument("picoring: SharedRecordFanIn::add(): an empty reader");
    lanes_.reserve(lanes_.size() + 1);  // both may throw here, before anything changes
    ids_.reserve(ids_.size() + 1);
    lane.set_batching({});
    lanes_.push_back(std::move(lane));
    ids_.push_back(next_id_);
    return next_id_++;
  }
  // Lanes not yet dropped (an ended lane still counts until it is drained).
  std::size_t lanes() const noexcept { return lanes_.size(); }
  // The id (from add()) of the lane of the record the last front() returned; 0 when it found
  // none, and after pop() or drain().
  std::uint64_t front_lane() const noexcept { return front_lane_; }

  // The next record in turn, as one contiguous span, or an empty span when no lane has one now.
  // Valid until pop() or drain(). Drops lanes found ended and drained.
  std::span<const std::byte> front() {
    // Each pass ends a turn or returns: one more than the lanes visits every lane, the one in
    // turn last (a dropped lane takes its pass too).
    for (std::size_t passes = lanes_.size() + 1; passes != 0 && !lanes_.empty(); --passes) {
      if (left_in_turn_ != 0) {
        const auto rec = guarded([&] { return lanes_[turn_].front(); });
        if (!rec.empty()) {
          front_lane_ = ids_[turn_];
          return rec;
        }
      }
      next_turn();
    }
    front_lane_ = 0;
    return {};
  }
  // Drops the record front() returns. Throws std::out_of_range if there is none.
  void pop() {
    const auto rec = front();
    if (rec.empty()) detail::throw_out_of_range("picoring: SharedRecordFanIn::pop(): no record");
    guarded([&] { lanes_[turn_].pop(); });
    left_in_turn_ -= std::min(left_in_turn_, record_footprint(rec.size()));
    front_lane_ = 0;
  }
  // Calls f(span), or f(span, lane id) when f takes both, on up to max records, turn by turn,
  // freeing each lane's records with one publication per turn. Returns how many.
  template <class F>
  std::size_t drain(F&& f, std::size_t max = static_cast<std::size_t>(-1)) {
    std::size_t n = 0;
    while (n < max && !front().empty()) {
      const std::size_t got = guarded([&] {
        if constexpr (std::is_invocable_v<F&, std::span<const std::byte>, std::uint64_t>) {
          auto with_lane = [&f, id = ids_[turn_]](std::span<const std::byte> rec) { f(rec, id); };
          return lanes_[turn_].drain_within(with_lane, max - n, left_in_turn_);
        } else {
          return lanes_[turn_].drain_within(f, max - n, left_in_turn_);
        }
      });
      if (got == 0) left_in_turn_ = 0;  // cannot happen (front() found a record within the turn): never spin
      n += got;
    }
    front_lane_ = 0;
    return n;
  }
  // Blocks until a lane has a record (ok), the timeout passes (timed_out), or no lane is left:
  // all ended and drained, or none added (closed). Ended lanes are found here too: a writer's
  // process that died without closing is noticed within 40 ms.
  template <class Rep, class Period>
  QueueStatus wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }
  // wait() with a deadline (out of line: src/shared_queue.cpp).
  QueueStatus wait_until(std::chrono::steady_clock::time_point deadline);

  // Closes every lane (their writers' pushes fail from now on; what they published can still be
  // read) and refuses new ones.
  void close() noexcept {
    closed_ = true;
    for (auto& lane : lanes_) lane.close();
  }
  bool closed() const noexcept { return closed_; }

 private:
  void check_room() const {
    if (closed_) throw std::logic_error("picoring: SharedRecordFanIn::add(): the fan-in is closed");
    if (lanes_.size() >= kMaxLanes) throw std::length_error("picoring: SharedRecordFanIn::add(): kMaxLanes lanes open");
  }
  // Runs a call on the lane in turn; if it finds the lane corrupt (it closed it and threw), drops
  // the lane before the exception leaves.
  template <class Call>
  auto guarded(Call call) -> decltype(call()) {
    try {
      return call();
    } catch (const std::system_error& e) {
      if (e.code() == errc::corrupt_shared_state) drop(turn_);
      throw;
    }
  }
  // Drops lane i (its reader unmaps it) and ends the turn; the next turn goes to the lane that
  // followed the one in turn.
  void drop(std::size_t i) {
    lanes_.erase(lanes_.begin() + static_cast<std::ptrdiff_t>(i));
    ids_.erase(ids_.begin() + static_cast<std::ptrdiff_t>(i));
    left_in_turn_ = 0;
    const std::size_t n = lanes_.size();
    if (n == 0) {
      turn_ = 0;
    } else if (turn_ > i) {
      --turn_;
    } else if (turn_ == i) {
      turn_ = (i + n - 1) % n;
    }
  }
  // Ends the turn: drops the lane if it ended and is drained, moves to the next lane, and gives
  // it what it holds now.
  void next_turn() {
    left_in_turn_ = 0;
    SharedRecordReader& lane = lanes_[turn_];
    if (lane.closed() && guarded([&] { return lane.readable(false); }) == 0) {
      drop(turn_);
      if (lanes_.empty()) return;
    }
    turn_ = (turn_ + 1) % lanes_.size();
    left_in_turn_ = guarded([&] { return lanes_[turn_].readable(false); });
  }
  // True when lane i has a record; drops it if it is corrupt (and throws).
  bool has_record(std::size_t i) {
    try {
      return lanes_[i].readable(false) != 0;
    } catch (const std::system_error& e) {
      if (e.code() == errc::corrupt_shared_state) drop(i);
      throw;
    }
  }
  bool any_readable() {
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      if (has_record(i)) return true;
    }
    return false;
  }

  std::vector<SharedRecordReader> lanes_;
  std::vector<std::uint64_t> ids_;  // each lane's id, by index
  std::uint64_t next_id_ = 1;
  std::uint64_t front_lane_ = 0;
  std::size_t turn_ = 0;          // the lane whose turn it is
  std::size_t left_in_turn_ = 0;  // bytes it may still give in this turn
  bool closed_ = false;
  // When wait() last looked at the writers' processes (kPeerCheckPeriod apart at most while it waits).
  static constexpr std::chrono::milliseconds kPeerCheckPeriod{20};
  std::chrono::steady_clock::time_point peers_checked_{};
};

// A byte stream between two processes: PicoByteStream's windows over shared memory. The writer
// fills writable() (recv() into it, or write()) and publishes with commit(n); the reader sees
// every published byte as one span, readable(), and frees a prefix with release(n). Creation,
// attach, roles, residency, closing and a dying peer as for the record queue; a stream end
// refuses to attach to a record queue and the other way round. Move-only; one thread per end.
class SharedStreamWriter : public detail::SharedEnd<SharedStreamWriter, detail::SharedRole::writer> {
  using Base = detail::SharedEnd<SharedStreamWriter, detail::SharedRole::writer>;
  friend Base;

 public:
  static constexpr detail::SharedLayout kLayout{detail::SharedHeader::kByteStream, 1};
  SharedStreamWriter() noexcept = default;
  // Also, from SharedEnd: create(min_capacity, residency), attach(fd, residency), fd(),
  // close_fd(), capacity(), locked(), closed(), close().

  // Every free byte as one contiguous span (empty when full or closed). Valid until commit().
  // A reader's counter that cannot be right throws std::system_error (corrupt_shared_state)
  // and closes the stream.
  std::span<std::byte> writable() {
    if (closed()) return {};
    const std::size_t n = free_bytes(static_cast<std::size_t>(r_.capacity()), true);
    return {r_.data() + index(), n};
  }
  // Publishes the first n bytes of the free space. Throws std::out_of_range, publishing
  // nothing, if n is more than is free.
  void commit(std::size_t n) {
    if (n > free_bytes(n, false)) detail::throw_out_of_range("picoring: commit(n): n > free bytes");
    if (n == 0) return;
    tail_ += n;
    auto& h = *r_.header();
    detail::shared_publish(r_, h.tail, tail_, h.reader_sleeping, h.data_word);
  }
  // Copies in as much of bytes as fits now and publishes it; returns how many (0 when full or
  // closed).
  std::size_t write(std::span<const std::byte> bytes) {
    if (bytes.empty() || closed()) return 0;
    // Asks only for what it needs: the reader's counter is reloaded when the cached free space
    // is short, not on every write (writable() must look, since it promises all free bytes).
    const std::size_t free = free_bytes(bytes.size(), true);
    const std::size_t n = bytes.size() < free ? bytes.size() : free;
    if (n == 0) return 0;
    std::memcpy(r_.data() + index(), bytes.data(), n);
    commit(n);
    return n;
  }
  // Blocks until n bytes are free (ok), the timeout passes (timed_out), or the stream is
  // closed or the reader's process has died (closed). n > capacity() throws std::length_error.
  template <class Rep, class Period>
  QueueStatus wait_for_space(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (n > capacity()) detail::throw_length_error("picoring: wait_for_space(n): n > capacity()");
    if (closed()) return QueueStatus::closed;
    if (free_bytes(n, false) >= n) return QueueStatus::ok;
    auto& h = *r_.header();
    const QueueStatus st = detail::shared_wait(
        r_, [&] { return free_bytes(n, false) >= n; }, h.writer_sleeping, h.space_word,
        detail::deadline_after(timeout));
    return st == QueueStatus::ok && closed() ? QueueStatus::closed : st;
  }
  // Writes all of bytes, waiting for room as it goes: ok when all were published, else the
  // status that stopped it (what was written before stays written; `written` says how much).
  template <class Rep, class Period>
  QueueStatus write_all(std::span<const std::byte> bytes, std::chrono::duration<Rep, Period> timeout,
                        std::size_t* written = nullptr) {
    const auto deadline = detail::deadline_after(timeout);
    std::size_t done = 0;
    QueueStatus st = QueueStatus::ok;
    while (done < bytes.size()) {
      done += write(bytes.subspan(done));
      if (done == bytes.size()) break;
      st = closed() ? QueueStatus::closed : wait_for_space(1, deadline - std::chrono::steady_clock::now());
      if (st != QueueStatus::ok) break;
    }
    if (written != nullptr) *written = done;
    return st;
  }

 private:
  template <class, class>
  friend class detail::SharedSlotsWriter;
  template <class, class, detail::SharedRole, class>
  friend class detail::SharedSlotsEnd;
  explicit SharedStreamWriter(detail::SharedRegion r) noexcept : Base(std::move(r)) {
    if (r_.header() != nullptr) tail_ = head_cache_ = r_.header()->tail.load(std::memory_order_relaxed);
  }
  std::size_t index() const noexcept { return static_cast<std::size_t>(tail_ % r_.capacity()); }
  // Free bytes, reloading the reader's counter only when the cached one shows fewer than want
  // (then batching may wait, if may_wait).
  std::size_t free_bytes(std::size_t want, bool may_wait) {
    const std::uint64_t cap = r_.capacity();
    if (r_.header() == nullptr) return 0;
    if (cap - (tail_ - head_cache_) >= want) return static_cast<std::size_t>(cap - (tail_ - head_cache_));
    return pacer_.refresh_with(may_wait, [&] {
      const std::uint64_t head = r_.header()->head.load(std::memory_order_acquire);
      // The reader cannot have released what was never written.
      if (head - head_cache_ > tail_ - head_cache_) {
        r_.close();
        detail::throw_corrupt("picoring: shared stream: the reader's counter is out of range");
      }
      head_cache_ = head;
      return static_cast<std::size_t>(cap - (tail_ - head));
    });
  }

  std::uint64_t tail_ = 0;
  std::uint64_t head_cache_ = 0;
};

// The reading end of a shared byte stream (see SharedStreamWriter).
class SharedStreamReader : public detail::SharedEnd<SharedStreamReader, detail::SharedRole::reader> {
  using Base = detail::SharedEnd<SharedStreamReader, detail::SharedRole::reader>;
  friend Base;

 public:
  static constexpr detail::SharedLayout kLayout{detail::SharedHeader::kByteStream, 1};
  SharedStreamReader() noexcept = default;

  // Every published byte not yet released, as one contiguous span (wrapped or not); empty when
  // none. Valid until release(). A writer's counter that cannot be right throws
  // std::system_error (corrupt_shared_state) and closes the stream.
  std::span<const std::byte> readable() {
    const std::size_t n = available(static_cast<std::size_t>(r_.capacity()), true);
    return {r_.data() + (n == 0 ? 0 : static_cast<std::size_t>(head_ % r_.capacity())), n};
  }
  // Frees the n oldest bytes for the writer. Throws std::out_of_range, freeing nothing, if n is
  // more than is readable.
  void release(std::size_t n) {
    if (n > available(n, false)) detail::throw_out_of_range("picoring: release(n): n > readable");
    if (n == 0) return;
    head_ += n;
    auto& h = *r_.header();
    detail::shared_publish(r_, h.head, head_, h.writer_sleeping, h.space_word);
  }
  // Copies up to out.size() bytes out and releases them; returns how many.
  std::size_t read(std::span<std::byte> out) {
    const auto in = readable();
    const std::size_t n = out.size() < in.size() ? out.size() : in.size();
    if (n == 0) return 0;
    std::memcpy(out.data(), in.data(), n);
    release(n);
    return n;
  }
  // Blocks until at least n bytes are readable (ok), the timeout passes (timed_out), or the
  // stream is closed, or the writer's process has died, with fewer left (closed). n >
  // capacity() throws std::length_error.
  template <class Rep, class Period>
  QueueStatus wait(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (n > capacity()) detail::throw_length_error("picoring: wait(n): n > capacity()");
    if (r_.header() == nullptr) return QueueStatus::closed;
    if (available(n, false) >= n) return QueueStatus::ok;
    auto& h = *r_.header();
    return detail::shared_wait(
        r_, [&] { return available(n, false) >= n; }, h.reader_sleeping, h.data_word, detail::deadline_after(timeout));
  }

 private:
  template <class, class>
  friend class detail::SharedSlotsReader;
  template <class, class, detail::SharedRole, class>
  friend class detail::SharedSlotsEnd;
  explicit SharedStreamReader(detail::SharedRegion r) noexcept : Base(std::move(r)) {
    if (r_.header() != nullptr) head_ = tail_cache_ = r_.header()->head.load(std::memory_order_relaxed);
  }
  // Published bytes not yet released, reloading the writer's counter when fewer than want are
  // known.
  std::size_t available(std::size_t want, bool may_wait) {
    if (r_.header() == nullptr) return 0;
    if (tail_cache_ - head_ >= want) return static_cast<std::size_t>(tail_cache_ - head_);
    return pacer_.refresh_with(may_wait, [&] {
      const std::uint64_t tail = r_.header()->tail.load(std::memory_order_acquire);
      if (tail - head_ > r_.capacity() || tail - tail_cache_ > tail - head_) {
        r_.close();
        detail::throw_corrupt("picoring: shared stream: the writer's counter is out of range");
      }
      tail_cache_ = tail;
      return static_cast<std::size_t>(tail - head_);
    });
  }

  std::uint64_t head_ = 0;
  std::uint64_t tail_cache_ = 0;
};

namespace detail {

// The slot size of a shared queue of slots: fixed at compile time (SharedQueueWriter<T>:
// sizeof(T), so that one element's copy stays a constant-size move) or chosen at run time
// (SharedSlotWriter: a frame of as many channels as the device has, a dtype from Python).
template <std::size_t N>
struct FixedSlotSize {
  static constexpr std::size_t get() noexcept { return N; }
};
struct RunTimeSlotSize {
  std::size_t bytes = 1;  // an empty handle's: its capacity, 0 bytes, is then 0 slots
  std::size_t get() const noexcept { return bytes; }
};
// The slot size of SharedQueueWriter<T> / SharedQueueReader<T>, and what T must be.
template <class T>
struct TypedSlots {
  static_assert(std::is_trivially_copyable_v<T>,
                "elements cross a process boundary as bytes: T must be trivially copyable");
  static_assert(sizeof(T) <= std::numeric_limits<std::uint32_t>::max(),
                "the header records the element size in 32 bits");
  static_assert(alignof(T) <= 4096,
                "slots are aligned within the page-aligned ring: alignof(T) must be at most a page");
  using Size = FixedSlotSize<sizeof(T)>;
};

// What both ends of a shared queue of slots have: creation and attach with the slots' layout,
// the accessors, in slots. Stream is the byte stream end doing the work.
template <class Self, class Stream, SharedRole kRole, class Size>
class SharedSlotsEnd {
 public:
  int fd() const noexcept { return s_.fd(); }
  void close_fd() noexcept { s_.close_fd(); }
  // Capacity in slots.
  std::size_t capacity() const noexcept { return s_.capacity() / slot(); }
  // Bytes per slot (what the queue's header records; an end of another size refuses to attach).
  std::size_t slot_size() const noexcept { return slot(); }
  bool locked() const noexcept { return s_.locked(); }
  bool closed() const noexcept { return s_.closed(); }
  void close() noexcept { s_.close(); }
  // The byte stream's batching (SharedEnd::set_batching), min_batch in slots: the writer's
  // writable, try_push and push_slice, the reader's readable and try_pop may wait.
  void set_batching(Batching b) {
    b.min_batch = std::min(b.min_batch, std::numeric_limits<std::size_t>::max() / slot());
    s_.set_batching({b.min_batch * slot(), b.max_wait});
  }
  Batching batching() const noexcept {
    const Batching b = s_.batching();
    return {b.min_batch / slot(), b.max_wait};
  }

 protected:
  SharedSlotsEnd() noexcept = default;
  SharedSlotsEnd(SharedRegion r, Size size) noexcept : s_(std::move(r)), size_(size) {}
  std::size_t slot() const noexcept { return size_.get(); }

  // A new queue of at least min_capacity slots, this end's role claimed; throws as
  // SharedStreamWriter::create.
  static Self make(std::size_t min_capacity, Size size, Residency residency) {
    Error err;
    Self end(SharedRegion::create(min_capacity, layout(size), kRole, residency, err), size);
    if (err) throw_error(err);
    return end;
  }
  // This end of the queue behind fd; throws as SharedStreamWriter::attach, and for a queue of
  // another slot size or kind, or (an end taking over from a dead one) a counter that is not
  // on a slot's boundary.
  static Self open(int fd, Size size, Residency residency) {
    Error err;
    Self end(SharedRegion::attach(fd, layout(size), kRole, residency, err), size);
    if (err) throw_error(err);
    end.check_position();
    return end;
  }

  Stream s_;
  [[no_unique_address]] Size size_{};

 private:
  static SharedLayout layout(Size size) noexcept {
    return {SharedHeader::kFixedSlots, static_cast<std::uint32_t>(size.get())};
  }
  // The stream's counter this end starts from must be on a slot boundary.
  void check_position() {
    std::uint64_t counter = 0;
    if constexpr (kRole == SharedRole::writer) {
      counter = s_.tail_;
    } else {
      counter = s_.head_;
    }
    if (counter % slot() != 0) {
      s_.close();
      throw_corrupt(kRole == SharedRole::writer
                        ? "picoring: shared queue: the writer's counter is not on an element boundary"
                        : "picoring: shared queue: the reader's counter is not on an element boundary");
    }
  }
};

// The writing end's work, in slots of bytes; SharedQueueWriter<T> and SharedSlotWriter give it
// their types.
template <class Self, class Size>
class SharedSlotsWriter : public SharedSlotsEnd<Self, SharedStreamWriter, SharedRole::writer, Size> {
 public:
  using End = SharedSlotsEnd<Self, SharedStreamWriter, SharedRole::writer, Size>;
  // Publishes the first n free slots. Throws std::out_of_range, publishing nothing, if n is
  // more than are free.
  void commit(std::size_t n) {
    if (n > this->capacity()) throw_out_of_range("picoring: commit(n): n > free slots");
    this->s_.commit(n * this->slot());
  }
  // Blocks until n slots are free (ok), the timeout passes (timed_out), or the queue is closed
  // or the reader's process has died (closed). n > capacity() throws std::length_error.
  template <class Rep, class Period>
  QueueStatus wait_for_space(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (n > this->capacity()) throw_length_error("picoring: wait_for_space(n): n > capacity()");
    return this->s_.wait_for_space(n * this->slot(), timeout);
  }

 protected:
  using End::End;
  // Every free slot, as one span of bytes (whole slots; empty when full or closed).
  std::span<std::byte> free_slots() {
    const auto bytes = this->s_.writable();
    return bytes.first(bytes.size() / this->slot() * this->slot());
  }
  // Copies as many of the n slots at src as there are free slots for and publishes them;
  // returns how many. n * slot_size() must not overflow (the caller's span holds them).
  std::size_t push_slots(const std::byte* src, std::size_t n) {
    if (n == 0 || this->closed()) return 0;
    const std::size_t size = this->slot();
    const std::size_t free = this->s_.free_bytes(n * size, true) / size;
    const std::size_t k = n < free ? n : free;
    if (k == 0) return 0;
    std::memcpy(this->s_.r_.data() + this->s_.index(), src, k * size);
    this->s_.commit(k * size);
    return k;
  }
};

// The reading end's work, in slots of bytes (see SharedSlotsWriter).
template <class Self, class Size>
class SharedSlotsReader : public SharedSlotsEnd<Self, SharedStreamReader, SharedRole::reader, Size> {
 public:
  using End = SharedSlotsEnd<Self, SharedStreamReader, SharedRole::reader, Size>;
  // Frees the n oldest slots. Throws std::out_of_range, freeing nothing, if n is more than are
  // readable.
  void release(std::size_t n) {
    // The stream checks n * slot_size() against what is readable; the bound first keeps the
    // product from wrapping.
    if (n > this->capacity()) throw_out_of_range("picoring: release(n): n > readable");
    this->s_.release(n * this->slot());
  }
  // Blocks until at least n slots are readable (ok), the timeout passes (timed_out), or the
  // queue is closed, or the writer's process has died, with fewer left (closed). n > capacity()
  // throws std::length_error.
  template <class Rep, class Period>
  QueueStatus wait(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    if (n > this->capacity()) throw_length_error("picoring: wait(n): n > capacity()");
    return this->s_.wait(n * this->slot(), timeout);
  }

 protected:
  using End::End;
  // Every published slot not yet released, as one span of bytes (whole slots, wrapped or not).
  std::span<const std::byte> published_slots() {
    const auto bytes = this->s_.readable();
    return bytes.first(bytes.size() / this->slot() * this->slot());
  }
  // Copies the oldest slot to out and releases it; false when there is none.
  bool pop_slot(std::byte* out) {
    const std::size_t size = this->slot();
    if (this->s_.available(size, true) < size) return false;
    std::memcpy(out, this->s_.readable().data(), size);
    this->s_.release(size);
    return true;
  }
};

}  // namespace detail

// A queue of fixed-size elements between two processes: SpscProducer / SpscConsumer's windows
// over shared memory, the byte stream's rules (creation, attach, roles, residency, closing, a
// dying peer) in whole elements. The capacity is whole pages of whole elements (a 24-byte T
// gets 12 KiB with 4 KiB pages: 512 slots), and the header records sizeof(T): an end of another
// element size, or of another kind, refuses to attach (a SharedSlotWriter / SharedSlotReader of
// sizeof(T)-byte slots is the same queue).
//
// T crosses a process boundary as bytes, so it must be trivially copyable; and the peer can
// write any bytes, so prefer types for which every bit pattern is a value (integers, floating
// point, arrays and structs of them) or check what you read (a bool or an enum read from a
// hostile peer's bytes is not checked here). Counters the peer publishes are checked as the
// stream's are; one that is not a whole number of elements counts down to the last whole one.
template <class T>
class SharedQueueWriter : public detail::SharedSlotsWriter<SharedQueueWriter<T>, typename detail::TypedSlots<T>::Size> {
  using Base = detail::SharedSlotsWriter<SharedQueueWriter<T>, typename detail::TypedSlots<T>::Size>;
  friend typename Base::End;

 public:
  SharedQueueWriter() noexcept = default;
  // A new queue of at least min_capacity elements, this end's role claimed; throws as
  // SharedStreamWriter::create.
  static SharedQueueWriter create(std::size_t min_capacity, Residency residency = Residency::on_demand) {
    return Base::make(min_capacity, {}, residency);
  }
  // This end of the queue behind fd; throws as SharedStreamWriter::attach, and for a queue of
  // another element size or kind, or (an end taking over from a dead one) a counter that is
  // not on an element boundary.
  static SharedQueueWriter attach(int fd, Residency residency = Residency::on_demand) {
    return Base::open(fd, {}, residency);
  }
  // Also, from the base: fd(), close_fd(), capacity() (elements), slot_size(), locked(),
  // closed(), close(), commit(n), wait_for_space(n, timeout), set_batching / batching.

  // Every free slot as one contiguous span (empty when full or closed). Valid until commit().
  std::span<T> writable() {
    const auto bytes = this->free_slots();
    return {reinterpret_cast<T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
  // Copies v into the next slot and publishes it; false when full or closed.
  bool try_push(const T& v) { return push_slice(std::span<const T>(&v, 1)) == 1; }
  // Copies as many of items as there are free slots for and publishes them; returns how many.
  std::size_t push_slice(std::span<const T> items) {
    return this->push_slots(reinterpret_cast<const std::byte*>(items.data()), items.size());
  }
  // Blocking push: waits for a free slot, then pushes.
  template <class Rep, class Period>
  QueueStatus push_wait(const T& v, std::chrono::duration<Rep, Period> timeout) {
    if (try_push(v)) return QueueStatus::ok;
    const QueueStatus st = this->wait_for_space(1, timeout);
    if (st != QueueStatus::ok) return st;
    return try_push(v) ? QueueStatus::ok : QueueStatus::closed;
  }

 private:
  SharedQueueWriter(detail::SharedRegion r, typename detail::TypedSlots<T>::Size size) noexcept
      : Base(std::move(r), size) {}
};

// The reading end of a shared queue of elements (see SharedQueueWriter).
template <class T>
class SharedQueueReader : public detail::SharedSlotsReader<SharedQueueReader<T>, typename detail::TypedSlots<T>::Size> {
  using Base = detail::SharedSlotsReader<SharedQueueReader<T>, typename detail::TypedSlots<T>::Size>;
  friend typename Base::End;

 public:
  SharedQueueReader() noexcept = default;
  // As SharedQueueWriter's.
  static SharedQueueReader create(std::size_t min_capacity, Residency residency = Residency::on_demand) {
    return Base::make(min_capacity, {}, residency);
  }
  static SharedQueueReader attach(int fd, Residency residency = Residency::on_demand) {
    return Base::open(fd, {}, residency);
  }
  // Also, from the base: fd(), close_fd(), capacity() (elements), slot_size(), locked(),
  // closed(), close(), release(n), wait(n, timeout), set_batching / batching.

  // Every published element not yet released, as one contiguous span (wrapped or not); empty
  // when none. Valid until release().
  std::span<const T> readable() {
    const auto bytes = this->published_slots();
    return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
  // Copies the oldest element out and releases it; false when there is none.
  bool try_pop(T& out) { return this->pop_slot(reinterpret_cast<std::byte*>(&out)); }
  // Blocking pop: wait(1, timeout), then try_pop.
  template <class Rep, class Period>
  QueueStatus pop_wait(T& out, std::chrono::duration<Rep, Period> timeout) {
    const QueueStatus st = this->wait(1, timeout);
    if (st == QueueStatus::ok) try_pop(out);
    return st;
  }

 private:
  SharedQueueReader(detail::SharedRegion r, typename detail::TypedSlots<T>::Size size) noexcept
      : Base(std::move(r), size) {}
};

// The same queue with a slot size chosen at run time: slot_size bytes per slot (a frame of as
// many channels as the device has; a numpy dtype in the Python module). Its ends and
// SharedQueueWriter<T> / SharedQueueReader<T> ends with sizeof(T) == slot_size attach to each
// other. Spans are of bytes, whole slots; slots are not aligned beyond slot_size's own
// alignment within the page-aligned ring (copy out, or read with memcpy, where T needs more).
class SharedSlotWriter : public detail::SharedSlotsWriter<SharedSlotWriter, detail::RunTimeSlotSize> {
  using Base = detail::SharedSlotsWriter<SharedSlotWriter, detail::RunTimeSlotSize>;
  friend Base::End;

 public:
  SharedSlotWriter() noexcept = default;
  // A new queue of at least min_slots slots of slot_size bytes; throws std::invalid_argument
  // when slot_size is 0 or more than 2^32 - 1, else as SharedQueueWriter<T>::create.
  static SharedSlotWriter create(std::size_t min_slots, std::size_t slot_size,
                                 Residency residency = Residency::on_demand) {
    return Base::make(min_slots, checked_size(slot_size), residency);
  }
  // This end of the queue behind fd, whose slots must be slot_size bytes; throws as create()
  // for a bad slot_size, else as SharedQueueWriter<T>::attach.
  static SharedSlotWriter attach(int fd, std::size_t slot_size, Residency residency = Residency::on_demand) {
    return Base::open(fd, checked_size(slot_size), residency);
  }
  // Also, from the base: fd(), close_fd(), capacity() (slots), slot_size(), locked(), closed(),
  // close(), commit(n), wait_for_space(n, timeout), set_batching / batching.

  // Every free slot as one contiguous span of bytes, whole slots (empty when full or closed).
  // Valid until commit().
  std::span<std::byte> writable() { return free_slots(); }
  // Copies in as many whole slots of `slots` as there are free slots for and publishes them;
  // returns how many slots. Throws std::invalid_argument, pushing nothing, when slots.size() is
  // not a multiple of slot_size().
  std::size_t push_slice(std::span<const std::byte> slots) {
    if (slots.size() % slot() != 0) {
      detail::throw_invalid_argument("picoring: push_slice(): not a whole number of slots");
    }
    return push_slots(slots.data(), slots.size() / slot());
  }

 private:
  SharedSlotWriter(detail::SharedRegion r, detail::RunTimeSlotSize size) noexcept : Base(std::move(r), size) {}
  static detail::RunTimeSlotSize checked_size(std::size_t slot_size) {
    if (slot_size == 0 || slot_size > std::numeric_limits<std::uint32_t>::max()) {
      detail::throw_invalid_argument("picoring: shared slots: slot_size must be 1 to 2^32 - 1 bytes");
    }
    return {slot_size};
  }
  friend class SharedSlotReader;  // checked_size
};

// The reading end of a shared queue of run-time-sized slots (see SharedSlotWriter).
class SharedSlotReader : public detail::SharedSlotsReader<SharedSlotReader, detail::RunTimeSlotSize> {
  using Base = detail::SharedSlotsReader<SharedSlotReader, detail::RunTimeSlotSize>;
  friend Base::End;

 public:
  SharedSlotReader() noexcept = default;
  // As SharedSlotWriter's.
  static SharedSlotReader create(std::size_t min_slots, std::size_t slot_size,
                                 Residency residency = Residency::on_demand) {
    return Base::make(min_slots, SharedSlotWriter::checked_size(slot_size), residency);
  }
  static SharedSlotReader attach(int fd, std::size_t slot_size, Residency residency = Residency::on_demand) {
    return Base::open(fd, SharedSlotWriter::checked_size(slot_size), residency);
  }
  // Also, from the base: fd(), close_fd(), capacity() (slots), slot_size(), locked(), closed(),
  // close(), release(n), wait(n, timeout), set_batching / batching.

  // Every published slot not yet released, as one contiguous span of bytes, whole slots
  // (wrapped or not); empty when none. Valid until release().
  std::span<const std::byte> readable() { return published_slots(); }
  // Copies the oldest slot into out and releases it; false when there is none. Throws
  // std::invalid_argument, taking nothing, when out.size() is not slot_size().
  bool try_pop(std::span<std::byte> out) {
    if (out.size() != slot()) detail::throw_invalid_argument("picoring: try_pop(): out is not one slot");
    return pop_slot(out.data());
  }

 private:
  SharedSlotReader(detail::SharedRegion r, detail::RunTimeSlotSize size) noexcept : Base(std::move(r), size) {}
};

// Passes a descriptor over a connected Unix socket (SCM_RIGHTS), with one byte of payload.
// Throws std::system_error naming the call (sendmsg).
void send_fd(int socket, int fd);
// Receives a descriptor sent by send_fd; the caller owns it (close-on-exec is set). Throws
// std::system_error (recvmsg; ECONNRESET when the peer closed first; EBADMSG when the message
// carried no descriptor).
int receive_fd(int socket);
// Windows: a copy of the queue's section handle (fd()) made for the process process_id, which
// receives the returned value by any means (a pipe, its command line) and passes it to attach();
// that process owns the copy. A child may instead inherit the handle (make it inheritable with
// SetHandleInformation, then CreateProcess with bInheritHandles). Throws std::system_error
// naming the call (OpenProcess, DuplicateHandle); elsewhere std::errc::not_supported.
int duplicate_for_process(int fd, std::uint32_t process_id);

}  // namespace picoring
