// picoring for Python: mirrored rings whose windows are numpy arrays and memoryviews that share
// the ring's memory (no copy), with the export tracking Python users expect from bytearray: a
// call that would let the ring reuse memory a live window shows raises BufferError instead.
//
// Every container here is used under the GIL; only the queue's blocking calls release it (and
// wake up every 50 ms to look for KeyboardInterrupt). The element-typed C++ containers are
// templates, while a numpy dtype is chosen at run time, so the rings here keep their own
// positions over a MirrorBuffer sized by mirror_size_for(capacity, itemsize): the mirror then
// wraps exactly at an element boundary, and any window of whole elements is one array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "picoring/mirror_buffer.hpp"
#include "picoring/record_ring.hpp"
#include "picoring/shared_queue.hpp"
#include "picoring/spsc.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using Position = std::uint64_t;  // elements ever written or consumed: never wraps in practice

// The live windows of one container, as ranges of positions. A window covers the elements at
// [begin, end); the container refuses to consume them or to write over them while it lives.
class ExportTable {
 public:
  std::uint64_t add(Position begin, Position end) {
    live_.push_back({next_id_, begin, end});
    return next_id_++;
  }
  void remove(std::uint64_t id) noexcept {
    for (auto& e : live_) {
      if (e.id == id) {
        e = live_.back();
        live_.pop_back();
        return;
      }
    }
  }
  bool overlaps(Position begin, Position end) const noexcept {
    for (const auto& e : live_) {
      if (e.begin < end && begin < e.end) return true;
    }
    return false;
  }
  std::size_t size() const noexcept { return live_.size(); }

 private:
  struct Entry {
    std::uint64_t id;
    Position begin, end;
  };
  std::vector<Entry> live_;
  std::uint64_t next_id_ = 1;
};

// The object behind every window handed out: the base of the numpy array, or the exporter of a
// memoryview (whose buffer is the window's bytes). It keeps the container alive, so the memory
// stays mapped for as long as any array or memoryview derived from it exists, and it removes
// its range from the table when the last of them goes.
struct Window {
  py::object owner;
  ExportTable* table;
  std::uint64_t id;
  std::byte* data;
  py::ssize_t bytes;
  bool readonly;

  Window(py::object o, ExportTable* t, Position begin, Position end, std::byte* d, std::size_t n, bool ro)
      : owner(std::move(o)),
        table(t),
        id(t->add(begin, end)),
        data(d),
        bytes(static_cast<py::ssize_t>(n)),
        readonly(ro) {}
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;
  ~Window() { table->remove(id); }
};

std::string name_of(const py::dtype& dtype) { return py::str(py::handle(dtype.ptr())).cast<std::string>(); }

py::array new_array(const py::dtype& dtype, std::size_t n) {
  return py::array(dtype, std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
}

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

// Converts values to a C-contiguous array of exactly `dtype`. An ndarray of another dtype is a
// TypeError (no silent cast: a float64 block pushed into a float32 ring is a bug more often than
// not); other Python objects go through numpy.asarray(values, dtype). `ndim` is 0 for one
// element, 1 for a block.
py::array as_elements(const py::handle& values, const py::dtype& dtype, int ndim, const char* what) {
  // numpy's functions, looked up once (leaked on purpose: no destructor may run after the
  // interpreter is gone).
  static const auto* const asarray = new py::object(py::module_::import("numpy").attr("asarray"));
  static const auto* const contiguous = new py::object(py::module_::import("numpy").attr("ascontiguousarray"));
  py::array arr;
  if (py::isinstance<py::array>(values)) {
    arr = py::reinterpret_borrow<py::array>(values);
    if (!arr.dtype().equal(dtype)) {
      raise(PyExc_TypeError,
            std::string(what) + ": expected dtype " + name_of(dtype) + ", got " + name_of(arr.dtype()));
    }
  } else {
    arr = (*asarray)(values, "dtype"_a = dtype);
  }
  if (arr.ndim() != ndim) {
    raise(PyExc_ValueError,
          std::string(what) +
              (ndim == 0 ? ": expected one element (a 0-d value), got " : ": expected a 1-d array, got ") +
              std::to_string(arr.ndim()) + " dimensions");
  }
  if ((arr.flags() & py::array::c_style) != 0) return arr;
  return (*contiguous)(arr);
}

py::dtype checked_dtype(const py::object& spec) {
  py::dtype dt = py::dtype::from_args(spec);
  if (dt.attr("hasobject").cast<bool>()) raise(PyExc_TypeError, "picoring: object dtypes cannot live in ring memory");
  if (dt.itemsize() <= 0) raise(PyExc_ValueError, "picoring: the dtype has no size");
  return dt;
}

picoring::MirrorOptions options_from(const std::string& residency, const std::string& huge_pages) {
  picoring::MirrorOptions o;
  if (residency == "on_demand") {
    o.residency = picoring::Residency::on_demand;
  } else if (residency == "populate") {
    o.residency = picoring::Residency::populate;
  } else if (residency == "lock") {
    o.residency = picoring::Residency::lock;
  } else if (residency == "lock_if_allowed") {
    o.residency = picoring::Residency::lock_if_allowed;
  } else {
    raise(PyExc_ValueError,
          "picoring: residency must be 'on_demand', 'populate', 'lock' or 'lock_if_allowed', not '" + residency + "'");
  }
  if (huge_pages == "none") {
    o.huge_pages = picoring::HugePages::none;
  } else if (huge_pages == "transparent") {
    o.huge_pages = picoring::HugePages::transparent;
  } else if (huge_pages == "2mb") {
    o.huge_pages = picoring::HugePages::explicit_2mb;
  } else if (huge_pages == "1gb") {
    o.huge_pages = picoring::HugePages::explicit_1gb;
  } else {
    raise(PyExc_ValueError,
          "picoring: huge_pages must be 'none', 'transparent', '2mb' or '1gb', not '" + huge_pages + "'");
  }
  return o;
}

std::size_t checked_capacity(py::ssize_t capacity) {
  if (capacity <= 0) raise(PyExc_ValueError, "picoring: capacity must be positive");
  return static_cast<std::size_t>(capacity);
}

// A ring of fixed-size elements over one mirror: the state of Ring and ByteStream.
class ElementRing {
 public:
  ElementRing(py::ssize_t capacity, py::dtype dtype, const picoring::MirrorOptions& options)
      : dtype_(std::move(dtype)), itemsize_(static_cast<std::size_t>(dtype_.itemsize())) {
    mem_ = picoring::MirrorBuffer(checked_capacity(capacity), itemsize_, options);
    capacity_ = mem_.size() / itemsize_;
  }

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(written_ - read_); }
  std::size_t free() const noexcept { return capacity_ - size(); }
  std::size_t exports() const noexcept { return table_.size(); }
  std::size_t itemsize() const noexcept { return itemsize_; }
  const py::dtype& dtype() const noexcept { return dtype_; }
  bool closed() const noexcept { return mem_.empty(); }
  const picoring::MirrorBuffer& memory() const noexcept { return mem_; }

  // Copies n elements in at the back; false (nothing written) when fewer are free. With
  // `overwrite`, drops as many of the oldest as needed instead (n must fit the capacity).
  bool push(const void* src, std::size_t n, bool overwrite) {
    check_open();
    if (n > free()) {
      if (!overwrite) return false;
      if (n > capacity_) raise(PyExc_ValueError, "picoring: more elements than the ring's capacity");
      consume(n - free());
    }
    check_unexported(written_, written_ + n, "write over");
    std::memcpy(slot(written_), src, n * itemsize_);
    written_ += n;
    return true;
  }
  // Copies up to n of the oldest elements out and consumes them; returns how many.
  std::size_t pop(void* dst, std::size_t n) {
    check_open();
    n = n < size() ? n : size();
    check_unexported(read_, read_ + n, "consume");
    std::memcpy(dst, slot(read_), n * itemsize_);
    read_ += n;
    return n;
  }
  void consume(std::size_t n) {
    check_open();
    if (n > size()) raise(PyExc_ValueError, "picoring: consume(n): n is more than is readable");
    check_unexported(read_, read_ + n, "consume");
    read_ += n;
  }
  void commit(std::size_t n) {
    check_open();
    if (n > free()) raise(PyExc_ValueError, "picoring: commit(n): n is more than is free");
    written_ += n;
  }
  void clear() { consume(size()); }
  void close() {
    if (table_.size() != 0) raise(PyExc_BufferError, "picoring: close() while windows of the ring are alive");
    mem_.reset();
  }

  // A window of count readable elements from offset, or of every free element (writable).
  std::unique_ptr<Window> readable_window(py::object self, std::size_t offset, std::size_t count) {
    check_open();
    if (offset > size() || count > size() - offset) {
      raise(PyExc_IndexError, "picoring: the window reaches past the readable elements");
    }
    const Position begin = read_ + offset;
    return std::make_unique<Window>(std::move(self), &table_, begin, begin + count, slot(begin), count * itemsize_,
                                    false);
  }
  std::unique_ptr<Window> writable_window(py::object self) {
    check_open();
    return std::make_unique<Window>(std::move(self), &table_, written_, written_ + free(), slot(written_),
                                    free() * itemsize_, false);
  }

 private:
  std::byte* slot(Position p) const noexcept { return mem_.data() + (p % capacity_) * itemsize_; }
  void check_open() const {
    if (mem_.empty()) raise(PyExc_ValueError, "picoring: operation on a closed ring");
  }
  void check_unexported(Position begin, Position end, const char* verb) const {
    if (table_.overlaps(begin, end)) {
      raise(PyExc_BufferError, std::string("picoring: cannot ") + verb +
                                   " elements that a live window (numpy array or memoryview) still shows; delete it "
                                   "(or call memoryview.release()) first");
    }
  }

  py::dtype dtype_;
  std::size_t itemsize_;
  picoring::MirrorBuffer mem_;
  std::size_t capacity_ = 0;
  Position read_ = 0;
  Position written_ = 0;
  ExportTable table_;
};

py::array window_array(std::unique_ptr<Window> w, const py::dtype& dtype) {
  auto* data = w->data;
  const auto count = w->bytes / dtype.itemsize();
  const bool readonly = w->readonly;
  py::object base = py::cast(std::move(w));
  py::array arr(dtype, {count}, {dtype.itemsize()}, data, base);
  if (readonly) arr.attr("setflags")("write"_a = false);
  return arr;
}

py::memoryview window_bytes(std::unique_ptr<Window> w) { return py::memoryview(py::cast(std::move(w))); }

// A contiguous buffer of any Python bytes-like object, held for the duration of one call.
class BytesArg {
 public:
  BytesArg(const py::handle& obj, bool writable) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) != 0) {
      throw py::error_already_set();
    }
  }
  BytesArg(const BytesArg&) = delete;
  BytesArg& operator=(const BytesArg&) = delete;
  ~BytesArg() { PyBuffer_Release(&view_); }
  void* data() const noexcept { return view_.buf; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// The ByteStream's own C++ type (pybind11 registers each type once): a ring of uint8.
class ByteRing : public ElementRing {
 public:
  ByteRing(py::ssize_t capacity, const picoring::MirrorOptions& options)
      : ElementRing(capacity, py::dtype("uint8"), options) {}
};

// ---- the SPSC queue over bytes, carrying whole elements of one dtype ----------------------------

using ByteProducer = picoring::SpscProducer<std::byte>;
using ByteConsumer = picoring::SpscConsumer<std::byte>;

struct ClosedError : std::exception {
  const char* what() const noexcept override { return "picoring: the queue is closed"; }
};

// Runs `wait(slice)` with the GIL released, in slices of at most 50 ms so that Ctrl-C (or any
// signal handler that raises) is seen; returns the QueueStatus. timeout < 0: forever.
template <class Wait>
picoring::QueueStatus wait_released(double timeout, bool& busy, Wait wait) {
  using Clock = std::chrono::steady_clock;
  if (busy) raise(PyExc_RuntimeError, "picoring: a queue end may be used by one thread at a time");
  const bool forever = timeout < 0;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(forever ? 0.0 : timeout));
  busy = true;
  struct Unbusy {
    bool& b;
    ~Unbusy() { b = false; }
  } unbusy{busy};
  for (;;) {
    auto slice = std::chrono::milliseconds(50);
    if (!forever) {
      const auto left = deadline - Clock::now();
      if (left < slice) slice = std::chrono::duration_cast<std::chrono::milliseconds>(left);
      if (slice.count() < 0) slice = std::chrono::milliseconds(0);
    }
    picoring::QueueStatus st;
    {
      py::gil_scoped_release nogil;
      st = wait(slice);
    }
    if (st != picoring::QueueStatus::timed_out) return st;
    if (!forever && Clock::now() >= deadline) return st;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

double timeout_seconds(const py::object& timeout) {
  if (timeout.is_none()) return -1.0;
  const double t = timeout.cast<double>();
  if (!(t >= 0.0)) raise(PyExc_ValueError, "picoring: timeout must be None or >= 0 seconds");
  return t;
}

py::bytes bytes_of(std::span<const std::byte> rec) {
  return {reinterpret_cast<const char*>(rec.data()), static_cast<py::ssize_t>(rec.size())};
}

// A count argument that may be None (no limit: SIZE_MAX) and must otherwise be positive.
std::size_t max_count(const py::object& max, const char* name) {
  if (max.is_none()) return static_cast<std::size_t>(-1);
  const auto m = max.cast<py::ssize_t>();
  if (m <= 0) raise(PyExc_ValueError, std::string("picoring: ") + name + " must be positive");
  return static_cast<std::size_t>(m);
}

class Producer {
 public:
  Producer(ByteProducer p, py::dtype dtype) : p_(std::move(p)), dtype_(std::move(dtype)) {}
  std::size_t itemsize() const { return static_cast<std::size_t>(dtype_.itemsize()); }
  std::size_t capacity() const { return p_.capacity() / itemsize(); }
  std::size_t free() { return p_.free_space() / itemsize(); }
  const py::dtype& dtype() const { return dtype_; }
  bool closed() const { return p_.closed(); }
  void close() { p_.close(); }

  // Appends every element of values, waiting for room up to timeout (None: forever; 0: not at all).
  void push(const py::handle& values, const py::object& timeout, int ndim) {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a queue end may be used by one thread at a time");
    const py::array arr = as_elements(values, dtype_, ndim, "push");
    const auto n = static_cast<std::size_t>(arr.size()) * itemsize();
    if (n > p_.capacity()) raise(PyExc_ValueError, "picoring: push: more elements than the queue's capacity");
    const double seconds = timeout_seconds(timeout);
    if (p_.closed()) throw ClosedError();
    const std::span<const std::byte> bytes{static_cast<const std::byte*>(arr.data()), n};
    if (p_.push_slice(bytes)) return;  // room now: no GIL release, no clock
    const auto st = wait_released(seconds, busy_, [&](auto slice) { return p_.wait_for_space(n, slice); });
    if (st == picoring::QueueStatus::closed) throw ClosedError();
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: push timed out (nothing pushed)");
    if (!p_.push_slice(bytes)) throw ClosedError();  // room was there: only a close can refuse it
  }

 private:
  ByteProducer p_;
  py::dtype dtype_;
  bool busy_ = false;
};

class Consumer {
 public:
  Consumer(ByteConsumer c, py::dtype dtype) : c_(std::move(c)), dtype_(std::move(dtype)) {}
  std::size_t itemsize() const { return static_cast<std::size_t>(dtype_.itemsize()); }
  std::size_t capacity() const { return c_.capacity() / itemsize(); }
  std::size_t size() { return c_.size() / itemsize(); }
  const py::dtype& dtype() const { return dtype_; }
  bool closed() const { return c_.closed(); }
  void close() { c_.close(); }
  std::size_t exports() const { return table_.size(); }

  // Waits until min_items elements are readable; raises TimeoutError, or Closed once the queue is
  // closed with fewer left (a smaller rest is still readable with min_items=1).
  void wait(std::size_t min_items, const py::object& timeout) {
    if (min_items > capacity()) raise(PyExc_ValueError, "picoring: min_items is more than the queue's capacity");
    const std::size_t n = min_items * itemsize();
    const double seconds = timeout_seconds(timeout);
    if (c_.size() >= n) return;  // already readable: no GIL release, no clock
    const auto st = wait_released(seconds, busy_, [&](auto slice) { return c_.wait(n, slice); });
    if (st == picoring::QueueStatus::closed) throw ClosedError();
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: timed out waiting for elements");
  }
  py::array pop(const py::object& max_items, const py::object& timeout) {
    check_idle();
    const std::size_t max = max_count(max_items, "max_items");
    wait(1, timeout);
    const std::size_t n = std::min(size(), max);
    check_unexported(n);
    py::array out = new_array(dtype_, n);
    std::memcpy(out.mutable_data(), c_.peek().data(), n * itemsize());
    release(n);
    return out;
  }
  std::unique_ptr<Window> readable(py::object self, std::size_t min_items, const py::object& timeout) {
    check_idle();
    wait(min_items == 0 ? 1 : min_items, timeout);
    const auto bytes = c_.peek();
    const std::size_t n = bytes.size() / itemsize();
    return std::make_unique<Window>(std::move(self), &table_, consumed_, consumed_ + n, bytes.data(), n * itemsize(),
                                    false);
  }
  void consume(std::size_t n) {
    check_idle();
    if (n > size()) raise(PyExc_ValueError, "picoring: consume(n): n is more than is readable");
    check_unexported(n);
    release(n);
  }

 private:
  void check_idle() const {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a queue end may be used by one thread at a time");
  }
  void check_unexported(std::size_t n) const {
    if (table_.overlaps(consumed_, consumed_ + n)) {
      raise(PyExc_BufferError,
            "picoring: cannot consume elements that a live window still shows; delete it (or call release()) first");
    }
  }
  void release(std::size_t n) {
    c_.release(n * itemsize());
    consumed_ += n;
  }

  ByteConsumer c_;
  py::dtype dtype_;
  ExportTable table_;
  Position consumed_ = 0;
  bool busy_ = false;
};

// Waits until `reader` (a record consumer, shared reader or fan-in) has a record: at once when
// it has one (no GIL release, no clock), else in wait_released. TimeoutError; Closed.
template <class Reader>
void wait_for_record(Reader& reader, const py::object& timeout, bool& busy) {
  const double seconds = timeout_seconds(timeout);
  if (!reader.front().empty()) return;
  const auto st = wait_released(seconds, busy, [&](auto slice) { return reader.wait(slice); });
  if (st == picoring::QueueStatus::closed) throw ClosedError();
  if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: timed out waiting for a record");
}

// ---- record queues: variable-size messages between two threads (RecordProducer/Consumer) or two
// processes (SharedRecordWriter/Reader); the two C++ pairs share these members' names ----------

template <class P>
class RecordWriterOf {
 public:
  explicit RecordWriterOf(P p) : p_(std::move(p)) {}
  std::size_t capacity() const { return p_.capacity(); }
  std::size_t max_record_size() const { return p_.max_record_size(); }
  // Closed, or (MPSC) this handle dropped by release().
  bool closed() const {
    if constexpr (std::is_constructible_v<bool, const P&>) return !static_cast<bool>(p_) || p_.closed();
    return p_.closed();
  }
  void close() { p_.close(); }
  P& end() { return p_; }
  const P& end() const { return p_; }

  // One record, waiting for room up to timeout (None: forever; 0: not at all).
  void push(const py::handle& record, const py::object& timeout) {
    check_idle();
    if (closed()) throw ClosedError();  // first: a dropped MPSC handle has no max_record_size
    const BytesArg bytes(record, false);
    const std::span<const std::byte> rec = checked(bytes, "push");
    const double seconds = timeout_seconds(timeout);
    if (p_.push(rec)) return;  // room now: no GIL release, no clock
    finish(wait_released(seconds, busy_, [&](auto slice) { return p_.push_wait(rec, slice); }));
  }
  // Waits for room for the first record, then pushes the longest prefix of records that fits now
  // (one publication); returns how many. Every record is checked before any is pushed.
  std::size_t push_many(const py::iterable& records, const py::object& timeout) {
    check_idle();
    if (closed()) throw ClosedError();
    std::deque<BytesArg> held;  // the buffers stay exported (and unresizable) during the call
    std::vector<std::span<const std::byte>> list;
    for (const py::handle r : records) {
      held.emplace_back(r, false);
      list.push_back(checked(held.back(), "push_many"));
    }
    const double seconds = timeout_seconds(timeout);
    if (list.empty()) return 0;
    std::size_t n = p_.push_some(list);
    if (n != 0) return n;
    finish(wait_released(seconds, busy_, [&](auto slice) { return p_.push_wait(list[0], slice); }));
    return 1 + p_.push_some(std::span<const std::span<const std::byte>>(list).subspan(1));
  }
  // Many producers (P copyable): another handle on the same queue, for another thread.
  RecordWriterOf copy() const {
    check_idle();
    return RecordWriterOf(P(p_));
  }
  // Many producers: drops this handle (its later calls raise Closed); the queue closes once every
  // handle is dropped, so `with` blocks in several threads end it together.
  void release() {
    check_idle();
    p_ = P();
  }

 private:
  void check_idle() const {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a queue end may be used by one thread at a time");
  }
  std::span<const std::byte> checked(const BytesArg& b, const char* what) const {
    if (b.size() == 0) raise(PyExc_ValueError, std::string("picoring: ") + what + ": an empty record cannot be stored");
    if (b.size() > p_.max_record_size()) {
      raise(PyExc_ValueError, std::string("picoring: ") + what + ": a record of " + std::to_string(b.size()) +
                                  " bytes is longer than max_record_size (" + std::to_string(p_.max_record_size()) +
                                  ")");
    }
    return {static_cast<const std::byte*>(b.data()), b.size()};
  }
  static void finish(picoring::QueueStatus st) {
    if (st == picoring::QueueStatus::closed) throw ClosedError();
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: push timed out (nothing pushed)");
  }

  P p_;
  bool busy_ = false;
};

template <class C>
class RecordReaderOf {
 public:
  explicit RecordReaderOf(C c) : c_(std::move(c)) {}
  std::size_t capacity() const { return c_.capacity(); }
  bool closed() const { return c_.closed(); }
  void close() { c_.close(); }
  std::size_t exports() const { return table_.size(); }
  C& end() { return c_; }
  const C& end() const { return c_; }

  // Waits for a record (GIL released): TimeoutError, or Closed once closed and drained.
  void wait(const py::object& timeout) { wait_for_record(c_, timeout, busy_); }
  py::bytes pop(const py::object& timeout) {
    check_idle();
    wait(timeout);
    check_unexported();
    py::bytes out = bytes_of(c_.front());
    c_.pop();
    return out;
  }
  py::list pop_many(const py::object& max_records, const py::object& timeout) {
    check_idle();
    const std::size_t max = max_count(max_records, "max_records");
    wait(timeout);
    check_unexported();
    py::list out;
    // A record whose copy fails (MemoryError) stays in the queue; those before it are taken.
    c_.drain([&](std::span<const std::byte> rec) { out.append(bytes_of(rec)); }, max);
    return out;
  }
  // The oldest record as a read-only memoryview of the queue's memory; consume() removes it.
  // Every live window shows the oldest record (none can be removed while one lives), so each
  // covers the same position, 0.
  py::memoryview front(py::object self, const py::object& timeout) {
    check_idle();
    wait(timeout);
    const auto rec = c_.front();
    // Read-only: the const_cast only fits Window's one pointer type.
    auto* data = const_cast<std::byte*>(rec.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    return window_bytes(std::make_unique<Window>(std::move(self), &table_, 0, 1, data, rec.size(), true));
  }
  void consume() {
    check_idle();
    if (c_.front().empty()) raise(PyExc_ValueError, "picoring: consume(): no record is readable");
    check_unexported();
    c_.pop();
  }

 private:
  void check_idle() const {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a queue end may be used by one thread at a time");
  }
  void check_unexported() const {
    if (table_.size() != 0) {
      raise(PyExc_BufferError,
            "picoring: cannot remove a record that a live memoryview still shows; delete it (or call release()) "
            "first");
    }
  }

  C c_;
  ExportTable table_;
  bool busy_ = false;
};

using RecordWriter = RecordWriterOf<picoring::RecordProducer>;
using RecordReader = RecordReaderOf<picoring::RecordConsumer>;
using MpscWriter = RecordWriterOf<picoring::RecordMpscProducer>;
using MpscReader = RecordReaderOf<picoring::RecordMpscConsumer>;
using SharedWriter = RecordWriterOf<picoring::SharedRecordWriter>;
using SharedReader = RecordReaderOf<picoring::SharedRecordReader>;

picoring::Residency residency_from(const std::string& residency) { return options_from(residency, "none").residency; }

// Many writer processes into one reader: picoring::SharedRecordFanIn, records given with the id
// of their lane. No views: a record's memory goes back to its writer at the next turn.
class FanIn {
 public:
  std::uint64_t add(int fd, const std::string& residency) {
    check_idle();
    return in_.add(fd, residency_from(residency));
  }
  std::size_t lanes() const { return in_.lanes(); }
  bool closed() const { return in_.closed(); }
  void close() { in_.close(); }

  // Waits for a record in any lane (GIL released): TimeoutError, or Closed once no lane is left.
  void wait(const py::object& timeout) { wait_for_record(in_, timeout, busy_); }
  py::tuple pop(const py::object& timeout) {
    check_idle();
    for (;;) {
      wait(timeout);
      // wait() saw a record; front() finds none only if its lane ended and was dropped since
      // (a corrupt lane throws instead): wait again.
      const auto rec = in_.front();
      if (rec.empty()) continue;
      py::tuple out = py::make_tuple(in_.front_lane(), bytes_of(rec));
      in_.pop();
      return out;
    }
  }
  py::list pop_many(const py::object& max_records, const py::object& timeout) {
    check_idle();
    const std::size_t max = max_count(max_records, "max_records");
    wait(timeout);
    py::list out;
    in_.drain(
        [&](std::span<const std::byte> rec, std::uint64_t lane) { out.append(py::make_tuple(lane, bytes_of(rec))); },
        max);
    return out;
  }

 private:
  void check_idle() const {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a fan-in may be used by one thread at a time");
  }

  picoring::SharedRecordFanIn in_;
  bool busy_ = false;
};

// ---- the byte stream between two processes (SharedStreamWriter/Reader): bytes in order, no
// record boundaries; positions below count bytes this handle wrote or consumed ------------------

[[noreturn]] void raise_partial_timeout(std::size_t written, std::size_t total) {
  // As BlockingIOError's characters_written: the caller learns how much went out before the wait ended.
  const std::string message =
      "picoring: write_all timed out after " + std::to_string(written) + " of " + std::to_string(total) + " bytes";
  py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(PyExc_TimeoutError, "s", message.c_str()));
  if (!exc) throw py::error_already_set();
  exc.attr("written") = written;
  PyErr_SetObject(PyExc_TimeoutError, exc.ptr());
  throw py::error_already_set();
}

// What the wrappers of the shared stream and array ends keep: the C++ end, the live views of its
// memory (as ranges of the positions each wrapper counts), and whether a call is waiting in
// another thread.
template <class E>
class SharedEndOf {
 public:
  explicit SharedEndOf(E e) : e_(std::move(e)) {}
  std::size_t capacity() const { return e_.capacity(); }
  bool closed() const { return e_.closed(); }
  void close() { e_.close(); }
  std::size_t exports() const { return table_.size(); }
  E& end() { return e_; }
  const E& end() const { return e_; }

 protected:
  void check_idle() const {
    if (busy_) raise(PyExc_RuntimeError, "picoring: a queue or stream end may be used by one thread at a time");
  }
  // BufferError when a live view shows any of the positions [begin, end): `what` says what the
  // call would do to them.
  void check_unexported(Position begin, Position end, const char* what) const {
    if (table_.overlaps(begin, end)) {
      raise(PyExc_BufferError, std::string("picoring: cannot ") + what +
                                   " what a live view (array or memoryview) still shows; delete it (or call "
                                   "release()) first");
    }
  }

  E e_;
  ExportTable table_;
  bool busy_ = false;
};

class StreamWriter : public SharedEndOf<picoring::SharedStreamWriter> {
 public:
  using SharedEndOf::SharedEndOf;

  // Copies in as much of data as fits now and publishes it; returns how many bytes.
  std::size_t write(const py::handle& data) {
    check_idle();
    const BytesArg bytes(data, false);
    if (e_.closed()) throw ClosedError();
    return copy_in(bytes, 0);
  }
  // Copies in all of data, waiting for room as the reader frees it (timeout over the whole call).
  void write_all(const py::handle& data, const py::object& timeout) {
    check_idle();
    const BytesArg bytes(data, false);
    const double seconds = timeout_seconds(timeout);
    if (e_.closed()) throw ClosedError();
    std::size_t done = copy_in(bytes, 0);
    if (done == bytes.size()) return;  // room now: no GIL release, no clock
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    while (done < bytes.size()) {
      const double left =
          seconds < 0 ? -1.0 : std::max(0.0, seconds - std::chrono::duration<double>(Clock::now() - start).count());
      // Any free byte will do: waiting for more could wait forever on a reader that waits for
      // more data before it frees anything.
      const auto st = wait_released(left, busy_, [&](auto slice) { return e_.wait_for_space(1, slice); });
      if (st == picoring::QueueStatus::closed) throw ClosedError();
      if (st == picoring::QueueStatus::timed_out) raise_partial_timeout(done, bytes.size());
      done += copy_in(bytes, done);
    }
  }
  // Waits until n bytes are free (GIL released).
  void wait_for_space(std::size_t n, const py::object& timeout) {
    check_idle();
    if (n > e_.capacity()) raise(PyExc_ValueError, "picoring: wait_for_space(n): n is more than the capacity");
    const double seconds = timeout_seconds(timeout);
    const auto st = wait_released(seconds, busy_, [&](auto slice) { return e_.wait_for_space(n, slice); });
    if (st == picoring::QueueStatus::closed) throw ClosedError();
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: timed out waiting for space");
  }
  // Every free byte as one writable memoryview (empty when none is free); commit(n) publishes
  // its first n bytes.
  std::unique_ptr<Window> writable(py::object self) {
    check_idle();
    if (e_.closed()) throw ClosedError();
    const auto free = e_.writable();
    return std::make_unique<Window>(std::move(self), &table_, written_, written_ + free.size(), free.data(),
                                    free.size(), false);
  }
  void commit(std::size_t n) {
    check_idle();
    if (e_.closed()) throw ClosedError();
    if (n > e_.writable().size()) raise(PyExc_ValueError, "picoring: commit(n): n is more than is free");
    e_.commit(n);
    written_ += n;
  }

 private:
  // Copies bytes[from, ...) in, as much as fits; returns how many. A writable view that shows
  // the bytes it would fill must be gone first (writing through it later would change
  // published bytes).
  std::size_t copy_in(const BytesArg& bytes, std::size_t from) {
    const std::span<const std::byte> rest{static_cast<const std::byte*>(bytes.data()) + from, bytes.size() - from};
    check_unexported(written_, written_ + rest.size(), "write over");
    const std::size_t n = e_.write(rest);
    written_ += n;
    return n;
  }

  Position written_ = 0;
};

class StreamReader : public SharedEndOf<picoring::SharedStreamReader> {
 public:
  using SharedEndOf::SharedEndOf;

  // Up to max_bytes, once at least one byte is readable; b"" at the end of the stream (closed,
  // or its writer's process gone, and everything read).
  py::bytes read(const py::object& max_bytes, const py::object& timeout) {
    check_idle();
    const std::size_t max = max_count(max_bytes, "max_bytes");
    if (!wait(1, timeout)) return {};
    const auto in = e_.readable();
    const std::size_t n = std::min(in.size(), max);
    py::bytes out = bytes_of(in.first(n));
    release(n);
    return out;
  }
  // Fills buffer with what is readable, once at least one byte is; returns how many, 0 at the
  // end of the stream.
  std::size_t readinto(const py::handle& buffer, const py::object& timeout) {
    check_idle();
    const BytesArg out(buffer, true);
    if (out.size() == 0 || !wait(1, timeout)) return 0;
    const auto in = e_.readable();
    const std::size_t n = std::min(in.size(), out.size());
    check_unexported(read_, read_ + n, "consume");  // before the copy: a refused call leaves buffer alone
    std::memcpy(out.data(), in.data(), n);
    release(n);
    return n;
  }
  // Every readable byte as one read-only memoryview, once at least min_bytes are; Closed when
  // the stream ended with fewer.
  std::unique_ptr<Window> readable(py::object self, std::size_t min_bytes, const py::object& timeout) {
    check_idle();
    if (!wait(std::max<std::size_t>(min_bytes, 1), timeout)) throw ClosedError();
    const auto in = e_.readable();
    // Read-only: the const_cast only fits Window's one pointer type.
    auto* data = const_cast<std::byte*>(in.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    return std::make_unique<Window>(std::move(self), &table_, read_, read_ + in.size(), data, in.size(), true);
  }
  void consume(std::size_t n) {
    check_idle();
    if (n > e_.readable().size()) raise(PyExc_ValueError, "picoring: consume(n): n is more than is readable");
    release(n);
  }

 private:
  // Waits (GIL released) until n bytes are readable: true; false when the stream ended with
  // fewer; TimeoutError.
  bool wait(std::size_t n, const py::object& timeout) {
    if (n > e_.capacity()) raise(PyExc_ValueError, "picoring: min_bytes is more than the capacity");
    const double seconds = timeout_seconds(timeout);
    if (e_.readable().size() >= n) return true;  // no GIL release, no clock
    const auto st = wait_released(seconds, busy_, [&](auto slice) { return e_.wait(n, slice); });
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: timed out waiting for bytes");
    return st == picoring::QueueStatus::ok;
  }
  void release(std::size_t n) {
    check_unexported(read_, read_ + n, "consume");
    e_.release(n);
    read_ += n;
  }

  Position read_ = 0;
};

// ---- the queue of one dtype between two processes (SharedSlotWriter/Reader, slots of the
// dtype's itemsize); positions below count elements this handle wrote or consumed -------------

class ArrayWriter : public SharedEndOf<picoring::SharedSlotWriter> {
 public:
  ArrayWriter(picoring::SharedSlotWriter w, py::dtype dtype) : SharedEndOf(std::move(w)), dtype_(std::move(dtype)) {}
  const py::dtype& dtype() const { return dtype_; }

  // Appends every element of values at once, waiting for room for all of them (None: forever).
  void push(const py::handle& values, const py::object& timeout, int ndim) {
    check_idle();
    const py::array arr = as_elements(values, dtype_, ndim, ndim == 0 ? "push" : "extend");
    const auto n = static_cast<std::size_t>(arr.size());
    if (n > e_.capacity()) raise(PyExc_ValueError, "picoring: extend: more elements than the queue's capacity");
    const double seconds = timeout_seconds(timeout);
    if (e_.closed()) throw ClosedError();
    check_unexported(written_, written_ + n, "write over");
    const std::span<const std::byte> bytes{static_cast<const std::byte*>(arr.data()), n * itemsize()};
    if (e_.writable().size() < bytes.size()) {  // no room now: wait for all of it (GIL released)
      const auto st = wait_released(seconds, busy_, [&](auto slice) { return e_.wait_for_space(n, slice); });
      if (st == picoring::QueueStatus::closed) throw ClosedError();
      if (st == picoring::QueueStatus::timed_out)
        raise(PyExc_TimeoutError, "picoring: push timed out (nothing pushed)");
    }
    if (e_.push_slice(bytes) != n) throw ClosedError();  // room was there: only a close can refuse it
    written_ += n;
  }
  // Every free slot as one array over the queue's memory; commit(n) publishes the first n.
  std::unique_ptr<Window> writable(py::object self) {
    check_idle();
    if (e_.closed()) throw ClosedError();
    const auto free = e_.writable();
    const std::size_t n = free.size() / itemsize();
    return std::make_unique<Window>(std::move(self), &table_, written_, written_ + n, free.data(), free.size(), false);
  }
  void commit(std::size_t n) {
    check_idle();
    if (e_.closed()) throw ClosedError();
    if (n > e_.writable().size() / itemsize()) raise(PyExc_ValueError, "picoring: commit(n): n is more than is free");
    e_.commit(n);
    written_ += n;
  }

 private:
  std::size_t itemsize() const { return static_cast<std::size_t>(dtype_.itemsize()); }

  py::dtype dtype_;
  Position written_ = 0;
};

class ArrayReader : public SharedEndOf<picoring::SharedSlotReader> {
 public:
  ArrayReader(picoring::SharedSlotReader r, py::dtype dtype) : SharedEndOf(std::move(r)), dtype_(std::move(dtype)) {}
  const py::dtype& dtype() const { return dtype_; }
  std::size_t size() { return e_.readable().size() / itemsize(); }

  py::array pop(const py::object& max_items, const py::object& timeout) {
    check_idle();
    const std::size_t max = max_count(max_items, "max_items");
    wait(1, timeout);
    const auto in = e_.readable();
    const std::size_t n = std::min(in.size() / itemsize(), max);
    py::array out = new_array(dtype_, n);
    std::memcpy(out.mutable_data(), in.data(), n * itemsize());
    release(n);
    return out;
  }
  // Waits for min_items, then every readable element as one read-only array over the queue's
  // memory (the writer's process can still write it).
  std::unique_ptr<Window> readable(py::object self, std::size_t min_items, const py::object& timeout) {
    check_idle();
    wait(min_items == 0 ? 1 : min_items, timeout);
    const auto in = e_.readable();
    // Read-only: the const_cast only fits Window's one pointer type.
    auto* data = const_cast<std::byte*>(in.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    const std::size_t n = in.size() / itemsize();
    return std::make_unique<Window>(std::move(self), &table_, consumed_, consumed_ + n, data, in.size(), true);
  }
  void consume(std::size_t n) {
    check_idle();
    if (n > size()) raise(PyExc_ValueError, "picoring: consume(n): n is more than is readable");
    release(n);
  }

 private:
  std::size_t itemsize() const { return static_cast<std::size_t>(dtype_.itemsize()); }
  // Waits until min_items are readable: TimeoutError, or Closed once closed (or the writer's
  // process gone) with fewer left.
  void wait(std::size_t min_items, const py::object& timeout) {
    if (min_items > e_.capacity()) raise(PyExc_ValueError, "picoring: min_items is more than the queue's capacity");
    const double seconds = timeout_seconds(timeout);
    if (size() >= min_items) return;  // no GIL release, no clock
    const auto st = wait_released(seconds, busy_, [&](auto slice) { return e_.wait(min_items, slice); });
    if (st == picoring::QueueStatus::closed) throw ClosedError();
    if (st == picoring::QueueStatus::timed_out) raise(PyExc_TimeoutError, "picoring: timed out waiting for elements");
  }
  void release(std::size_t n) {
    check_unexported(consumed_, consumed_ + n, "consume");
    e_.release(n);
    consumed_ += n;
  }

  py::dtype dtype_;
  Position consumed_ = 0;
};

// create / attach for the queue of one dtype: the slots are the dtype's itemsize.
template <class E, class Handle>
void shared_array_members(py::class_<E>& cls) {
  shared_fd_members(cls);
  cls.def_static(
         "create",
         [](py::ssize_t capacity, const py::object& dtype_spec, const std::string& residency) {
           const py::dtype dtype = checked_dtype(dtype_spec);
           return E(Handle::create(checked_capacity(capacity), static_cast<std::size_t>(dtype.itemsize()),
                                   residency_from(residency)),
                    dtype);
         },
         "capacity"_a, "dtype"_a = py::dtype("float64"), py::kw_only(), "residency"_a = "on_demand",
         "A new queue of at least capacity elements of dtype in a sealed memfd (Linux; elsewhere OSError), this "
         "end claimed; pass `fd` to the other process.")
      .def_static(
          "attach",
          [](int fd, const py::object& dtype_spec, const std::string& residency) {
            const py::dtype dtype = checked_dtype(dtype_spec);
            return E(Handle::attach(fd, static_cast<std::size_t>(dtype.itemsize()), residency_from(residency)), dtype);
          },
          "fd"_a, "dtype"_a = py::dtype("float64"), py::kw_only(), "residency"_a = "on_demand",
          "This end of the queue behind fd. The queue records its element size, not its dtype: an itemsize that "
          "does not match is an OSError; one dtype for another of the same size is yours to avoid. A C++ "
          "SharedQueueWriter<T> / SharedQueueReader<T> of sizeof(T) == itemsize is the same queue.")
      .def_property_readonly("capacity", &E::capacity, "Elements.")
      .def_property_readonly("dtype", &E::dtype)
      .def_property_readonly("closed", &E::closed)
      .def_property_readonly("exports", &E::exports)
      .def("close", &E::close)
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](E& e, const py::args&) { e.close(); });
}

// The members every record writer has (W: RecordWriter, MpscWriter or SharedWriter), registered
// under `name`; the `with` block's exit is added by the caller (close, or MPSC's release).
template <class W>
py::class_<W> record_writer_class(py::module_& m, const char* name, const char* doc) {
  return py::class_<W>(m, name, doc)
      .def_property_readonly("capacity", &W::capacity, "Bytes, headers (8 per record) and padding included.")
      .def_property_readonly("max_record_size", &W::max_record_size)
      .def_property_readonly("closed", &W::closed)
      .def("push", &W::push, "record"_a, "timeout"_a = py::none(),
           "Copies one bytes-like object in as one record, waiting for room (GIL released). ValueError when it is "
           "empty or longer than max_record_size; TimeoutError (nothing pushed); Closed.")
      .def("push_many", &W::push_many, "records"_a, "timeout"_a = py::none(),
           "Waits for room for the first record, then copies in the longest prefix that fits now, published at "
           "once; returns how many (0 for an empty list). Every record is checked first: one bad record raises "
           "ValueError and pushes none.")
      .def("close", &W::close, "Closes the queue for both ends (the reader still gets what was pushed).")
      .def("__enter__", [](const py::object& self) { return self; });
}

template <class W>
py::class_<W> closing_record_writer_class(py::module_& m, const char* name, const char* doc) {
  return record_writer_class<W>(m, name, doc).def("__exit__", [](W& w, const py::args&) { w.close(); });
}

template <class R>
py::class_<R> record_reader_class(py::module_& m, const char* name, const char* doc) {
  return py::class_<R>(m, name, doc)
      .def_property_readonly("capacity", &R::capacity)
      .def_property_readonly("closed", &R::closed)
      .def_property_readonly("exports", &R::exports)
      .def("pop", &R::pop, "timeout"_a = py::none(),
           "Waits for a record (GIL released), removes it and returns it as bytes. TimeoutError; Closed once "
           "closed and drained.")
      .def("pop_many", &R::pop_many, "max_records"_a = py::none(), "timeout"_a = py::none(),
           "Waits for a record, then removes up to max_records (default: every one published) and returns them as "
           "a list of bytes.")
      .def(
          "front",
          [](const py::object& self, const py::object& timeout) { return self.cast<R&>().front(self, timeout); },
          "timeout"_a = py::none(),
          "Waits for a record and returns it as a read-only memoryview of the queue's memory (no copy, however "
          "it wraps); consume() removes it once the view is gone.")
      .def("consume", &R::consume, "Removes the oldest record (ValueError when there is none).")
      .def("close", &R::close)
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](R& r, const py::args&) { r.close(); });
}

// What every shared end has: the memfd and this process's residency.
template <class E>
void shared_fd_members(py::class_<E>& cls) {
  cls.def_property_readonly(
         "fd", [](const E& e) { return e.end().fd(); }, "The memfd to pass on; -1 after close_fd().")
      .def(
          "close_fd", [](E& e) { e.end().close_fd(); }, "Closes this process's copy of the memfd (the queue stays).")
      .def_property_readonly(
          "locked", [](const E& e) { return e.end().locked(); }, "Whether this process's mapping is mlock()ed.");
}

// The shared ends' own members: create / attach, the memfd, residency.
template <class E, class Handle>
void shared_end_members(py::class_<E>& cls) {
  shared_fd_members(cls);
  cls.def_static(
         "create",
         [](py::ssize_t capacity, const std::string& residency) {
           return E(Handle::create(checked_capacity(capacity), residency_from(residency)));
         },
         "capacity"_a, py::kw_only(), "residency"_a = "on_demand",
         "A new queue (or stream) of at least capacity bytes in a sealed memfd (Linux; on other systems OSError), this "
         "end "
         "claimed; pass `fd` to the other process (subprocess pass_fds, socket.send_fds, or fork).")
      .def_static(
          "attach",
          [](int fd, const std::string& residency) { return E(Handle::attach(fd, residency_from(residency))); }, "fd"_a,
          py::kw_only(), "residency"_a = "on_demand",
          "This end of the queue (or stream) behind fd (which stays open: close it when you like). OSError naming the "
          "check that failed (not a picoring queue, another kind, a size that does not match; EBUSY when a live "
          "process holds this end).");
}

}  // namespace

PYBIND11_MODULE(_picoring, m) {
  m.doc() = "Mirrored ring buffers: every window of the ring, wrapped or not, is one numpy array or memoryview.";

  // pybind11 takes translators as void(*)(std::exception_ptr): the by-value parameter is its signature.
  py::register_exception_translator([](std::exception_ptr p) {  // NOLINT(performance-unnecessary-value-param)
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::system_error& e) {
      // The step that failed is in the message; the OS error (or a std::errc the library chose,
      // EBUSY for a role already held) becomes errno of an OSError.
      const auto& category = e.code().category();
      const bool is_errno = category == std::system_category() || category == std::generic_category();
      const int code = is_errno ? e.code().value() : 0;
      PyErr_SetObject(PyExc_OSError, py::make_tuple(code, e.what()).ptr());
    }
  });
  auto closed_exc = py::register_exception<ClosedError>(m, "Closed");
  closed_exc.doc() = "Raised by a queue end once the queue is closed (and, for the consumer, drained).";

  py::class_<Window>(m, "Window", py::buffer_protocol(),
                     "The object behind a window of ring memory (the base of its numpy array, or the exporter of "
                     "its memoryview). Keeps the ring alive; while it lives the ring will not reuse that memory.")
      .def_buffer([](Window& w) {
        return py::buffer_info(w.data, 1, py::format_descriptor<std::uint8_t>::format(), 1, {w.bytes}, {1}, w.readonly);
      })
      .def_property_readonly("nbytes", [](const Window& w) { return w.bytes; });

  py::class_<ElementRing>(m, "Ring", R"doc(
Ring(capacity, dtype=numpy.float64, *, residency="on_demand", huge_pages="none")

A FIFO ring of elements of one fixed numpy dtype (float32, int16, complex64, structured ...).
The capacity is rounded up so that the ring is a whole number of pages and of elements.
readable() and peek() return numpy arrays that share the ring's memory, one contiguous array
even when the data wraps past the end of the ring. While such an array (or any view of it) is
alive, consume(), pop() and clear() raise BufferError rather than free the elements it shows.
)doc")
      .def(py::init([](py::ssize_t capacity, const py::object& dtype, const std::string& residency,
                       const std::string& huge_pages) {
             return std::make_unique<ElementRing>(capacity, checked_dtype(dtype), options_from(residency, huge_pages));
           }),
           "capacity"_a, "dtype"_a = py::dtype("float64"), py::kw_only(), "residency"_a = "on_demand",
           "huge_pages"_a = "none")
      .def_property_readonly("capacity", &ElementRing::capacity, "Elements the ring holds (after rounding).")
      .def_property_readonly("dtype", &ElementRing::dtype)
      .def_property_readonly("free", &ElementRing::free, "Elements that can be pushed now.")
      .def_property_readonly("exports", &ElementRing::exports, "Live windows (arrays) of this ring.")
      .def_property_readonly("closed", &ElementRing::closed)
      .def_property_readonly("page_size", [](const ElementRing& r) { return r.memory().page_size(); })
      .def_property_readonly("locked", [](const ElementRing& r) { return r.memory().locked(); })
      .def("__len__", &ElementRing::size)
      .def(
          "push",
          [](ElementRing& r, const py::handle& value, bool overwrite) {
            const py::array a = as_elements(value, r.dtype(), 0, "push");
            return r.push(a.data(), 1, overwrite);
          },
          "value"_a, py::kw_only(), "overwrite"_a = false,
          "Appends one element. False when full (nothing written), unless overwrite drops the oldest.")
      .def(
          "extend",
          [](ElementRing& r, const py::handle& values, bool overwrite) {
            const py::array a = as_elements(values, r.dtype(), 1, "extend");
            return r.push(a.data(), static_cast<std::size_t>(a.size()), overwrite);
          },
          "values"_a, py::kw_only(), "overwrite"_a = false,
          "Appends every element of a 1-d array of the ring's dtype, or none (False) when they do not fit; "
          "overwrite drops the oldest to make room instead.")
      .def(
          "readable",
          [](const py::object& self) {
            auto& r = self.cast<ElementRing&>();
            return window_array(r.readable_window(self, 0, r.size()), r.dtype());
          },
          "Every readable element, oldest first, as one array sharing the ring's memory.")
      .def(
          "peek",
          [](const py::object& self, std::size_t offset, const py::object& count) {
            auto& r = self.cast<ElementRing&>();
            const std::size_t n =
                count.is_none() ? (offset <= r.size() ? r.size() - offset : 0) : count.cast<std::size_t>();
            return window_array(r.readable_window(self, offset, n), r.dtype());
          },
          "offset"_a = 0, "count"_a = py::none(),
          "count readable elements from offset (default: the rest) as one array sharing the ring's memory; "
          "IndexError past the end.")
      .def(
          "writable",
          [](const py::object& self) {
            auto& r = self.cast<ElementRing&>();
            return window_array(r.writable_window(self), r.dtype());
          },
          "Every free slot as one array to fill in place; commit(n) then makes the first n readable.")
      .def("commit", &ElementRing::commit, "n"_a)
      .def("consume", &ElementRing::consume, "n"_a,
           "Drops the n oldest elements. ValueError if fewer are readable; BufferError if a live window shows them.")
      .def(
          "pop",
          [](ElementRing& r, const py::object& n) {
            const std::size_t want = n.is_none() ? r.size() : n.cast<std::size_t>();
            py::array out = new_array(r.dtype(), want < r.size() ? want : r.size());
            r.pop(out.mutable_data(), static_cast<std::size_t>(out.size()));
            return out;
          },
          "n"_a = py::none(), "Removes up to n oldest elements (default: all) and returns them as a new array.")
      .def("clear", &ElementRing::clear)
      .def("close", &ElementRing::close, "Unmaps the ring now (BufferError while windows are alive).")
      .def("__repr__", [](const ElementRing& r) {
        return "picoring.Ring(len=" + std::to_string(r.size()) + ", capacity=" + std::to_string(r.capacity()) +
               ", dtype=" + name_of(r.dtype()) + ")";
      });

  py::class_<ByteRing>(m, "ByteStream", R"doc(
ByteStream(capacity, *, residency="on_demand", huge_pages="none")

A FIFO of bytes, usable as a file-like object (write, read, readinto) and zero-copy through
memoryview windows: readable_view() shows every readable byte as one memoryview, wrapped or
not; writable_view() the free space, to fill in place and commit(n). An empty stream reads as
end of file (b"" / 0), as io.BytesIO does. While a view is alive, calls that would free or
overwrite the bytes it shows raise BufferError.
)doc")
      .def(py::init([](py::ssize_t capacity, const std::string& residency, const std::string& huge_pages) {
             return std::make_unique<ByteRing>(capacity, options_from(residency, huge_pages));
           }),
           "capacity"_a, py::kw_only(), "residency"_a = "on_demand", "huge_pages"_a = "none")
      .def_property_readonly("capacity", [](ByteRing& r) { return r.capacity(); })
      .def_property_readonly("free", [](ByteRing& r) { return r.free(); })
      .def_property_readonly("exports", [](ByteRing& r) { return r.exports(); })
      .def_property_readonly("closed", [](ByteRing& r) { return r.closed(); })
      .def("__len__", [](ByteRing& r) { return r.size(); })
      .def(
          "write",
          [](ByteRing& r, const py::handle& b) {
            const BytesArg in(b, false);
            const std::size_t n = in.size() < r.free() ? in.size() : r.free();
            r.push(in.data(), n, false);
            return n;
          },
          "data"_a, "Copies in as many bytes as fit; returns how many.")
      .def(
          "readinto",
          [](ByteRing& r, const py::handle& b) {
            const BytesArg out(b, true);
            return r.pop(out.data(), out.size());
          },
          "buffer"_a, "Moves up to len(buffer) bytes out; returns how many (0 when empty).")
      .def(
          "read",
          [](ByteRing& r, py::ssize_t n) {
            const std::size_t want = n < 0 ? r.size() : static_cast<std::size_t>(n);
            std::string out(want < r.size() ? want : r.size(), '\0');
            r.pop(out.data(), out.size());
            return py::bytes(out);
          },
          "size"_a = -1, "Removes and returns up to size bytes (all when size < 0).")
      .def(
          "readable_view",
          [](const py::object& self) {
            auto& r = self.cast<ByteRing&>();
            return window_bytes(r.readable_window(self, 0, r.size()));
          },
          "Every readable byte as one memoryview of the ring's memory.")
      .def(
          "writable_view",
          [](const py::object& self) { return window_bytes(self.cast<ByteRing&>().writable_window(self)); },
          "The free space as one writable memoryview; commit(n) publishes its first n bytes.")
      .def(
          "commit", [](ByteRing& r, std::size_t n) { r.commit(n); }, "n"_a)
      .def(
          "consume", [](ByteRing& r, std::size_t n) { r.consume(n); }, "n"_a)
      .def("clear", [](ByteRing& r) { return r.clear(); })
      .def("close", [](ByteRing& r) { return r.close(); })
      .def("flush", [](const ByteRing&) {})
      .def("readable", [](const ByteRing& r) { return !r.closed(); })
      .def("writable", [](const ByteRing& r) { return !r.closed(); })
      .def("seekable", [](const ByteRing&) { return false; })
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](ByteRing& r, const py::args&) { r.close(); });

  py::class_<Producer>(m, "Producer", "The producing end of a queue made by spsc(); one thread at a time.")
      .def_property_readonly("capacity", &Producer::capacity)
      .def_property_readonly("dtype", &Producer::dtype)
      .def_property_readonly("free", &Producer::free)
      .def_property_readonly("closed", &Producer::closed)
      .def(
          "push", [](Producer& p, const py::handle& v, const py::object& t) { p.push(v, t, 0); }, "value"_a,
          "timeout"_a = py::none(), "Appends one element, waiting for room (GIL released). TimeoutError, Closed.")
      .def(
          "extend", [](Producer& p, const py::handle& v, const py::object& t) { p.push(v, t, 1); }, "values"_a,
          "timeout"_a = py::none(),
          "Appends every element of a 1-d array at once, waiting for room for all of them (GIL released); "
          "nothing is pushed on TimeoutError or Closed. ValueError if they could never fit.")
      .def("close", &Producer::close)
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](Producer& p, const py::args&) { p.close(); });

  py::class_<Consumer>(m, "Consumer", "The consuming end of a queue made by spsc(); one thread at a time.")
      .def_property_readonly("capacity", &Consumer::capacity)
      .def_property_readonly("dtype", &Consumer::dtype)
      .def_property_readonly("closed", &Consumer::closed)
      .def_property_readonly("exports", &Consumer::exports)
      .def("__len__", &Consumer::size)
      .def("pop", &Consumer::pop, "max_items"_a = py::none(), "timeout"_a = py::none(),
           "Waits for at least one element (GIL released), then removes up to max_items (default: all readable) "
           "and returns them as a new array. TimeoutError; Closed once closed and drained.")
      .def(
          "readable",
          [](const py::object& self, std::size_t min_items, const py::object& timeout) {
            auto& c = self.cast<Consumer&>();
            return window_array(c.readable(self, min_items, timeout), c.dtype());
          },
          "min_items"_a = 1, "timeout"_a = py::none(),
          "Waits for min_items, then returns every readable element as one array sharing the queue's memory; "
          "consume(n) frees them.")
      .def("consume", &Consumer::consume, "n"_a)
      .def("close", &Consumer::close)
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](Consumer& c, const py::args&) { c.close(); });

  m.def(
      "spsc",
      [](py::ssize_t capacity, const py::object& dtype_spec) {
        const py::dtype dtype = checked_dtype(dtype_spec);
        const auto itemsize = static_cast<std::size_t>(dtype.itemsize());
        picoring::Error err;
        // A byte queue whose size is a whole number of elements: elements never straddle the end.
        const std::size_t bytes = picoring::mirror_size_for(checked_capacity(capacity), itemsize, err);
        if (err) picoring::throw_error(err);
        auto [p, c] = picoring::make_spsc<std::byte>(bytes);
        return py::make_tuple(Producer(std::move(p), dtype), Consumer(std::move(c), dtype));
      },
      "capacity"_a, "dtype"_a = py::dtype("float64"),
      "A single-producer single-consumer queue of elements of one dtype between two threads: returns "
      "(Producer, Consumer). Blocking calls release the GIL.");
  closing_record_writer_class<RecordWriter>(
      m, "RecordWriter", "The writing end of a record queue made by records(); one thread at a time.")
      .def_property_readonly(
          "free", [](RecordWriter& w) { return w.end().bytes_free(); }, "Free bytes as this end knows them now.");
  record_reader_class<RecordReader>(m, "RecordReader",
                                    "The reading end of a record queue made by records(); one thread at a time.");
  record_writer_class<MpscWriter>(
      m, "MpscRecordWriter",
      "A writing end of a record queue made by records_mpsc(): one handle per thread (copy() makes another). "
      "Records from one handle arrive in the order pushed; those of different handles interleave.")
      .def("copy", &MpscWriter::copy, "Another writing end on the same queue, for another thread.")
      .def("__copy__", &MpscWriter::copy)
      .def("release", &MpscWriter::release,
           "Drops this handle (its later calls raise Closed). The queue closes when every handle is dropped (or "
           "garbage-collected), and the reader then gets Closed once drained; a `with` block ends with release().")
      .def("__exit__", [](MpscWriter& w, const py::args&) { w.release(); });
  record_reader_class<MpscReader>(m, "MpscRecordReader",
                                  "The reading end of a record queue made by records_mpsc(); one thread at a time.");
  auto shared_writer = closing_record_writer_class<SharedWriter>(
      m, "SharedRecordWriter",
      "The writing end of a record queue between two processes: SharedRecordWriter.create(capacity) or "
      "attach(fd). The reader's process is untrusted: a counter that cannot be right raises OSError and closes "
      "the queue; its death ends the waits (Closed). One thread at a time.");
  shared_end_members<SharedWriter, picoring::SharedRecordWriter>(shared_writer);
  auto shared_reader = record_reader_class<SharedReader>(
      m, "SharedRecordReader",
      "The reading end of a record queue between two processes: SharedRecordReader.attach(fd) or "
      "create(capacity). Every length and counter the writer's process publishes is checked (OSError, the queue "
      "closed, when one cannot be right); its death ends the waits once its records are read (Closed). front()'s "
      "memoryview shows memory that process can still write: where it is not trusted, copy the record (pop, or "
      "bytes(view)) before validating it.");
  shared_end_members<SharedReader, picoring::SharedRecordReader>(shared_reader);
  py::class_<FanIn>(m, "SharedRecordFanIn",
                    "One reader for the record queues of many writer processes (at most 128 at once): add(fd) each "
                    "queue, then pop() or pop_many() give (lane id, record) pairs, taking lanes in turns. Order is "
                    "kept per writer, not across writers. A lane ends when its writer closes it or its process "
                    "dies, and is dropped once drained; one whose writer publishes something that cannot be right "
                    "is dropped at once (OSError from the call that found it; the other lanes go on). One thread "
                    "at a time.")
      .def(py::init<>())
      .def("add", &FanIn::add, "fd"_a, py::kw_only(), "residency"_a = "on_demand",
           "Attaches as the reader of the record queue behind fd (which stays yours: close it when you like) and "
           "returns the lane's id (1, 2, 3 ..., never reused). OSError as SharedRecordReader.attach; ValueError "
           "when 128 lanes are open; RuntimeError after close().")
      .def_property_readonly("lanes", &FanIn::lanes, "Lanes not yet dropped.")
      .def_property_readonly("closed", &FanIn::closed)
      .def("pop", &FanIn::pop, "timeout"_a = py::none(),
           "Waits for a record in any lane (GIL released) and returns (lane id, bytes). TimeoutError; Closed once "
           "no lane is left.")
      .def("pop_many", &FanIn::pop_many, "max_records"_a = py::none(), "timeout"_a = py::none(),
           "Waits for a record, then returns up to max_records (lane id, bytes) pairs, lane by lane in turns.")
      .def("close", &FanIn::close, "Closes every lane (their writers' pushes fail from now on) and refuses new ones.")
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](FanIn& f, const py::args&) { f.close(); });

  py::class_<StreamWriter> stream_writer(
      m, "SharedStreamWriter",
      "The writing end of a byte stream between two processes: SharedStreamWriter.create(capacity) or attach(fd). "
      "Bytes arrive in order, with no record boundaries (a pipe's semantics, through shared memory). The reader's "
      "process is untrusted: a counter that cannot be right raises OSError and closes the stream; its death ends "
      "the waits (Closed). One thread at a time.");
  stream_writer.def_property_readonly("capacity", &StreamWriter::capacity, "Bytes.")
      .def_property_readonly("closed", &StreamWriter::closed)
      .def_property_readonly("exports", &StreamWriter::exports)
      .def("write", &StreamWriter::write, "data"_a,
           "Copies in as much of a bytes-like object as fits now (no wait) and publishes it; returns how many "
           "bytes. Closed.")
      .def("write_all", &StreamWriter::write_all, "data"_a, "timeout"_a = py::none(),
           "Copies in all of data, waiting for room (GIL released) as the reader frees it; the timeout covers the "
           "whole call. TimeoutError (its `written` attribute says how many bytes went out); Closed.")
      .def("wait_for_space", &StreamWriter::wait_for_space, "n"_a, "timeout"_a = py::none(),
           "Waits until n bytes are free (GIL released). ValueError when n is more than the capacity; TimeoutError; "
           "Closed.")
      .def(
          "writable_view",
          [](const py::object& self) { return window_bytes(self.cast<StreamWriter&>().writable(self)); },
          "Every free byte as one writable memoryview of the stream's memory (empty when full), however it wraps: "
          "fill its start (socket.recv_into, file.readinto), then commit(n). While it lives, write() raises "
          "BufferError.")
      .def("commit", &StreamWriter::commit, "n"_a,
           "Publishes the first n free bytes (written through writable_view()). ValueError when n is more than is "
           "free.")
      .def("close", &StreamWriter::close, "Closes the stream for both ends (the reader still gets what was written).")
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](StreamWriter& w, const py::args&) { w.close(); });
  shared_end_members<StreamWriter, picoring::SharedStreamWriter>(stream_writer);
  py::class_<StreamReader> stream_reader(
      m, "SharedStreamReader",
      "The reading end of a byte stream between two processes: SharedStreamReader.attach(fd) or create(capacity). "
      "Every counter the writer's process publishes is checked (OSError, the stream closed, when one cannot be "
      "right); the stream ends (read() gives b'') once it is closed or that process has died and every byte is "
      "read. readable_view()'s memoryview shows memory that process can still write: where it is not trusted, "
      "copy before validating. One thread at a time.");
  stream_reader.def_property_readonly("capacity", &StreamReader::capacity, "Bytes.")
      .def_property_readonly("closed", &StreamReader::closed)
      .def_property_readonly("exports", &StreamReader::exports)
      .def("read", &StreamReader::read, "max_bytes"_a = py::none(), "timeout"_a = py::none(),
           "Waits for at least one byte (GIL released), then removes and returns up to max_bytes (default: every "
           "readable byte). b'' at the end of the stream; TimeoutError.")
      .def("readinto", &StreamReader::readinto, "buffer"_a, "timeout"_a = py::none(),
           "As read(), into a writable bytes-like object; returns how many bytes, 0 at the end of the stream.")
      .def(
          "readable_view",
          [](const py::object& self, std::size_t min_bytes, const py::object& timeout) {
            return window_bytes(self.cast<StreamReader&>().readable(self, min_bytes, timeout));
          },
          "min_bytes"_a = 1, "timeout"_a = py::none(),
          "Waits until min_bytes are readable, then returns every readable byte as one read-only memoryview of the "
          "stream's memory (no copy, however it wraps); consume(n) frees a prefix once no view shows it. "
          "TimeoutError; Closed when the stream ended with fewer.")
      .def("consume", &StreamReader::consume, "n"_a, "Frees the n oldest bytes (ValueError when fewer are readable).")
      .def("close", &StreamReader::close)
      .def("__enter__", [](const py::object& self) { return self; })
      .def("__exit__", [](StreamReader& r, const py::args&) { r.close(); });
  shared_end_members<StreamReader, picoring::SharedStreamReader>(stream_reader);

  py::class_<ArrayWriter> array_writer(
      m, "SharedQueueWriter",
      "The writing end of a queue of one numpy dtype between two processes: SharedQueueWriter.create(capacity, "
      "dtype) or attach(fd, dtype). The reader's process is untrusted (a counter that cannot be right raises "
      "OSError and closes the queue); its death ends the waits (Closed). One thread at a time.");
  shared_array_members<ArrayWriter, picoring::SharedSlotWriter>(array_writer);
  array_writer
      .def(
          "push", [](ArrayWriter& w, const py::handle& v, const py::object& t) { w.push(v, t, 0); }, "value"_a,
          "timeout"_a = py::none(), "Appends one element, waiting for room (GIL released). TimeoutError, Closed.")
      .def(
          "extend", [](ArrayWriter& w, const py::handle& v, const py::object& t) { w.push(v, t, 1); }, "values"_a,
          "timeout"_a = py::none(),
          "Appends every element of a 1-d array at once, waiting for room for all of them (GIL released); nothing "
          "is pushed on TimeoutError or Closed. ValueError if they could never fit.")
      .def(
          "writable",
          [](const py::object& self) {
            auto& w = self.cast<ArrayWriter&>();
            return window_array(w.writable(self), w.dtype());
          },
          "Every free slot as one array over the queue's memory (however it wraps): fill its start in place "
          "(numpy's out=), then commit(n). While it lives, push and extend raise BufferError.")
      .def("commit", &ArrayWriter::commit, "n"_a, "Publishes the first n free slots (ValueError when fewer are free).");
  py::class_<ArrayReader> array_reader(
      m, "SharedQueueReader",
      "The reading end of a queue of one numpy dtype between two processes: SharedQueueReader.attach(fd, dtype) "
      "or create(capacity, dtype). Every counter the writer's process publishes is checked (OSError, the queue "
      "closed, when one cannot be right); its death ends the waits once its elements are read (Closed). "
      "readable()'s array shows memory that process can still write: copy before validating. One thread at a "
      "time.");
  shared_array_members<ArrayReader, picoring::SharedSlotReader>(array_reader);
  array_reader.def("__len__", &ArrayReader::size, "Elements readable now.")
      .def("pop", &ArrayReader::pop, "max_items"_a = py::none(), "timeout"_a = py::none(),
           "Waits for at least one element (GIL released), then removes up to max_items (default: all readable) "
           "and returns them as a new array. TimeoutError; Closed once closed and drained.")
      .def(
          "readable",
          [](const py::object& self, std::size_t min_items, const py::object& timeout) {
            auto& r = self.cast<ArrayReader&>();
            return window_array(r.readable(self, min_items, timeout), r.dtype());
          },
          "min_items"_a = 1, "timeout"_a = py::none(),
          "Waits for min_items, then returns every readable element as one read-only array over the queue's memory "
          "(no copy, however it wraps); consume(n) frees them once no array shows them.")
      .def("consume", &ArrayReader::consume, "n"_a,
           "Frees the n oldest elements (ValueError when fewer are readable).");

  m.def(
      "records",
      [](py::ssize_t capacity, const std::string& residency, const std::string& huge_pages) {
        auto [w, r] = picoring::make_record_spsc(checked_capacity(capacity), options_from(residency, huge_pages));
        return py::make_tuple(RecordWriter(std::move(w)), RecordReader(std::move(r)));
      },
      "capacity"_a, py::kw_only(), "residency"_a = "on_demand", "huge_pages"_a = "none",
      "A queue of variable-size records (bytes) between two threads, of at least capacity bytes (a record of n "
      "bytes takes an 8-byte header plus n rounded up to 8), each record one contiguous span: returns "
      "(RecordWriter, RecordReader). Blocking calls release the GIL.");
  m.def(
      "records_mpsc",
      [](py::ssize_t capacity, const std::string& residency, const std::string& huge_pages) {
        auto [w, r] = picoring::make_record_mpsc(checked_capacity(capacity), options_from(residency, huge_pages));
        return py::make_tuple(MpscWriter(std::move(w)), MpscReader(std::move(r)));
      },
      "capacity"_a, py::kw_only(), "residency"_a = "on_demand", "huge_pages"_a = "none",
      "A queue of variable-size records from many threads to one, of at least capacity bytes (rounded up to a "
      "power of two; a record takes an 8-byte header plus its size rounded up to 8), each record one contiguous "
      "span: returns (MpscRecordWriter, MpscRecordReader); writer.copy() gives each further thread its own "
      "writer. Blocking calls release the GIL.");
  m.def("allocation_granularity", &picoring::allocation_granularity);
}
