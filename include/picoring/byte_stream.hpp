// picoring: a mirrored byte stream, and a std::streambuf over it.
//
// PicoByteStream is a FIFO of bytes whose readable and writable windows are always one
// contiguous range: a parser, memchr, regex or recv()/send() works on them directly, even
// when the data wraps past the end of the ring. Same thread rules as PicoRing (one thread
// at a time); every member is O(1) except the copying ones (write, read: O(n)).
#pragma once

#include <cstddef>
#include <span>
#include <streambuf>
#include <string_view>
#include <utility>

#include "picoring/ring.hpp"

namespace picoring {

class PicoByteStream : private detail::RingCore<std::byte> {
  using Core = detail::RingCore<std::byte>;

 public:
  using size_type = std::size_t;

  PicoByteStream() noexcept = default;
  // At least min_capacity bytes, rounded up to the allocation granularity. Errors as
  // PicoRing's constructors.
  explicit PicoByteStream(size_type min_capacity, MirrorOptions options = {}) : Core(min_capacity, options) {}
  PicoByteStream(size_type min_capacity, Error& err, MirrorOptions options = {}) noexcept
      : Core(min_capacity, err, options) {}
  // Core's moves take only the base part, so o.behind_ is still o's own afterwards.
  // NOLINTNEXTLINE(bugprone-use-after-move)
  PicoByteStream(PicoByteStream&& o) noexcept : Core(std::move(o)), behind_(std::exchange(o.behind_, 0)) {}
  PicoByteStream& operator=(PicoByteStream&& o) noexcept {
    behind_ = std::exchange(o.behind_, 0);
    Core::operator=(std::move(o));
    return *this;
  }
  ~PicoByteStream() = default;

  using Core::capacity;
  using Core::memory;
  size_type available_to_read() const noexcept { return this->size(); }
  size_type available_to_write() const noexcept { return this->available_space(); }

  // Copies as many bytes of `bytes` as fit; returns how many (0 when full).
  size_type write(std::span<const std::byte> bytes) noexcept {
    const size_type n = bytes.size() < available_to_write() ? bytes.size() : available_to_write();
    this->append(bytes.first(n));
    after_write();
    return n;
  }
  size_type write(std::string_view text) noexcept { return write(std::as_bytes(std::span(text))); }

  // Copies all of `bytes`, or nothing and throws std::length_error when fewer bytes are free.
  void write_all(std::span<const std::byte> bytes) {
    if (!try_write_all(bytes)) detail::throw_length_error("picoring: write_all(): not enough free space");
  }
  void write_all(std::string_view text) { write_all(std::as_bytes(std::span(text))); }
  // The same without exceptions: false, and nothing written, when fewer bytes are free.
  bool try_write_all(std::span<const std::byte> bytes) noexcept {
    if (!this->append(bytes)) return false;
    after_write();
    return true;
  }

  // Moves up to out.size() bytes from the front of the stream into out; returns how many.
  size_type read(std::span<std::byte> out) noexcept {
    const size_type n = this->copy_out(out);
    after_release(n);
    return n;
  }
  size_type read(std::span<char> out) noexcept { return read(std::as_writable_bytes(out)); }

  // Every readable byte, oldest first, as one contiguous range (wrapped data included).
  std::span<const std::byte> readable() const noexcept { return this->readable_window(); }
  std::string_view readable_view() const noexcept {
    const auto w = readable();
    return {reinterpret_cast<const char*>(w.data()), w.size()};
  }
  // Every free byte as one contiguous range: fill a prefix (recv, a decoder...), then commit().
  // The caller may write anywhere in it, so the released bytes it covers can no longer be
  // taken back: releasable_back() becomes 0.
  std::span<std::byte> writable() noexcept {
    behind_ = 0;
    return this->writable_window();
  }

  // Drops the n oldest readable bytes. Throws std::out_of_range, changing nothing, if
  // n > available_to_read().
  void release(size_type n) {
    this->discard_front(n, "picoring: release(n): n > available_to_read()");
    after_release(n);
  }
  // Publishes the first n bytes of writable(). Throws std::out_of_range, changing nothing,
  // if n > available_to_write().
  void commit(size_type n) {
    this->publish(n, "picoring: commit(n): n > available_to_write()");
    after_write();
  }
  // Takes back the n newest readable bytes: they become the start of writable() again, their
  // contents unchanged (a read that filled less than it reserved, an adapter's shrink). Throws
  // std::out_of_range, changing nothing, if n > available_to_read().
  void uncommit(size_type n) { this->unpublish(n, "picoring: uncommit(n): n > available_to_read()"); }
  // The readable bytes, writable in place (a parser that decodes in place, a buffer adapter).
  std::span<std::byte> readable_bytes() noexcept { return this->readable_window(); }

  [[deprecated("renamed release(n): one vocabulary in every container")]] void consume(size_type n) { release(n); }
  [[deprecated("renamed commit(n): one vocabulary in every container")]] void produce(size_type n) { commit(n); }

  // How many of the bytes released last are still intact in memory (not yet overwritten by a
  // write, nor handed out by writable()): at most available_to_write(). unrelease(n) makes the n most recently released
  // of them readable again, at the front; it throws std::out_of_range, changing nothing, if n > releasable_back(). This
  // is what ByteStreamBuf's putback/unget use. O(1).
  size_type releasable_back() const noexcept { return behind_; }
  void unrelease(size_type n) {
    if (n > behind_) detail::throw_out_of_range("picoring: unrelease(n): n > releasable_back()");
    Core::unrelease(n);
    behind_ -= n;
  }
  void clear() noexcept {
    Core::clear();
    behind_ = 0;
  }

 private:
  friend class ByteStreamBuf;
  std::span<std::byte> readable_mut() noexcept { return this->readable_window(); }
  std::span<std::byte> free_window() noexcept { return this->writable_window(); }
  // Released bytes stay in memory until a write reaches them.
  void after_release(size_type n) noexcept { behind_ = behind_ + n < capacity() ? behind_ + n : capacity(); }
  // Writes fill the free space from its start; the released bytes sit at its end, so a write
  // overwrites the oldest of them first and leaves at most the rest of the free space intact.
  void after_write() noexcept {
    if (behind_ > available_to_write()) behind_ = available_to_write();
  }

  size_type behind_ = 0;  // released bytes still intact just before the front, see unrelease()
};

// A std::streambuf whose get area *is* the stream's readable window and whose put area *is*
// its writable window, so std::istream / std::ostream (std::getline, operator>>, <<) work
// on the ring in place, across the wrap, without a side buffer.
//
// Bytes the istream has read are released from the PicoByteStream, and bytes the ostream has
// written are committed into it, lazily: at every underflow/overflow, at pubsync() (which
// std::flush and std::istream::sync call) and on destruction. While a ByteStreamBuf is
// attached, call pubsync() before using the PicoByteStream directly, and do not release
// from or clear the stream behind its back. Writes to a full stream fail (the ostream sets
// badbit); reads from an empty stream report end of file, and can continue after more bytes
// are committed once the istream's state is cleared. unget()/putback() work as on a
// std::stringstream while the bytes are intact (see pbackfail).
class ByteStreamBuf : public std::streambuf {
 public:
  explicit ByteStreamBuf(PicoByteStream& stream) noexcept : stream_(&stream) {}
  ByteStreamBuf(const ByteStreamBuf&) = delete;
  ByteStreamBuf& operator=(const ByteStreamBuf&) = delete;
  ~ByteStreamBuf() override { settle(); }

 protected:
  int_type underflow() override {
    settle();
    const auto window = stream_->readable_mut();
    if (window.empty()) return traits_type::eof();
    char* first = reinterpret_cast<char*>(window.data());
    setg(first, first, first + window.size());
    return traits_type::to_int_type(*first);
  }

  int_type overflow(int_type ch) override {
    settle();
    // The put area is written only up to pptr(), and exactly that is committed: the released
    // bytes beyond it stay intact (PicoByteStream::writable() would assume otherwise).
    const auto window = stream_->free_window();
    if (window.empty()) return traits_type::eof();
    char* first = reinterpret_cast<char*>(window.data());
    setp(first, first + window.size());
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *first = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  int sync() override {
    settle();
    return 0;
  }

  // unget()/putback() when the get area has no byte before gptr() (it restarts at every refill,
  // write or sync), or when ch differs from that byte. The byte before the front is taken back
  // from the stream while it is still intact (PicoByteStream::unrelease): the bytes read since
  // the last write, at least, so the std::stringstream idioms (read a char, unget; read, peek,
  // unget) work. A different ch overwrites that byte, as a std::stringstream open for writing
  // does. Fails (eof, and the istream sets badbit) only when the byte has been overwritten.
  int_type pbackfail(int_type ch) override {
    if (gptr() == eback()) {
      settle();
      if (stream_->releasable_back() == 0) return traits_type::eof();
      stream_->unrelease(1);
      const auto window = stream_->readable_mut();
      char* first = reinterpret_cast<char*>(window.data());
      setg(first, first, first + window.size());
    } else {
      gbump(-1);
    }
    if (!traits_type::eq_int_type(ch, traits_type::eof())) *gptr() = traits_type::to_char_type(ch);
    return traits_type::not_eof(ch);
  }

  std::streamsize showmanyc() override {
    const auto pending = static_cast<std::streamsize>(pptr() - pbase());
    const auto unread = static_cast<std::streamsize>(stream_->available_to_read()) - (gptr() - eback());
    return pending + unread;  // 0: unknown, more may be produced later
  }

 private:
  // Hands what the get and put areas did back to the stream and detaches both areas.
  void settle() noexcept {
    if (gptr() != eback()) stream_->release(static_cast<std::size_t>(gptr() - eback()));
    if (pptr() != pbase()) stream_->commit(static_cast<std::size_t>(pptr() - pbase()));
    setg(nullptr, nullptr, nullptr);
    setp(nullptr, nullptr);
  }

  PicoByteStream* stream_;
};

}  // namespace picoring
