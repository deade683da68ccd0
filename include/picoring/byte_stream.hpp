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
  PicoByteStream(PicoByteStream&&) noexcept = default;
  PicoByteStream& operator=(PicoByteStream&&) noexcept = default;
  ~PicoByteStream() = default;

  using Core::capacity;
  using Core::clear;
  using Core::memory;
  size_type available_to_read() const noexcept { return this->size(); }
  size_type available_to_write() const noexcept { return this->available_space(); }

  // Copies as many bytes of `bytes` as fit; returns how many (0 when full).
  size_type write(std::span<const std::byte> bytes) noexcept {
    const size_type n = bytes.size() < available_to_write() ? bytes.size() : available_to_write();
    this->append(bytes.first(n));
    return n;
  }
  size_type write(std::string_view text) noexcept { return write(std::as_bytes(std::span(text))); }

  // Copies all of `bytes`, or nothing and throws std::length_error when fewer bytes are free.
  void write_all(std::span<const std::byte> bytes) {
    if (!this->append(bytes)) detail::throw_length_error("picoring: write_all(): not enough free space");
  }
  void write_all(std::string_view text) { write_all(std::as_bytes(std::span(text))); }
  // The same without exceptions: false, and nothing written, when fewer bytes are free.
  bool try_write_all(std::span<const std::byte> bytes) noexcept { return this->append(bytes); }

  // Moves up to out.size() bytes from the front of the stream into out; returns how many.
  size_type read(std::span<std::byte> out) noexcept { return this->copy_out(out); }
  size_type read(std::span<char> out) noexcept { return read(std::as_writable_bytes(out)); }

  // Every readable byte, oldest first, as one contiguous range (wrapped data included).
  std::span<const std::byte> readable() const noexcept { return this->readable_window(); }
  std::string_view readable_view() const noexcept {
    const auto w = readable();
    return {reinterpret_cast<const char*>(w.data()), w.size()};
  }
  // Every free byte as one contiguous range: fill a prefix (recv, a decoder...), then produce().
  std::span<std::byte> writable() noexcept { return this->writable_window(); }

  // Drops the n oldest readable bytes. Throws std::out_of_range, changing nothing, if
  // n > available_to_read().
  void consume(size_type n) { this->discard_front(n, "picoring: consume(n): n > available_to_read()"); }
  // Publishes the first n bytes of writable(). Throws std::out_of_range, changing nothing,
  // if n > available_to_write().
  void produce(size_type n) { this->publish(n, "picoring: produce(n): n > available_to_write()"); }

 private:
  friend class ByteStreamBuf;
  std::span<std::byte> readable_mut() noexcept { return this->readable_window(); }
};

// A std::streambuf whose get area *is* the stream's readable window and whose put area *is*
// its writable window, so std::istream / std::ostream (std::getline, operator>>, <<) work
// on the ring in place, across the wrap, without a side buffer.
//
// Bytes the istream has read are consumed from the PicoByteStream, and bytes the ostream has
// written are produced into it, lazily: at every underflow/overflow, at pubsync() (which
// std::flush and std::istream::sync call) and on destruction. While a ByteStreamBuf is
// attached, call pubsync() before using the PicoByteStream directly, and do not consume
// from or clear the stream behind its back. Writes to a full stream fail (the ostream sets
// badbit); reads from an empty stream report end of file, and can continue after more bytes
// are produced once the istream's state is cleared.
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
    const auto window = stream_->writable();
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

  std::streamsize showmanyc() override {
    const auto pending = static_cast<std::streamsize>(pptr() - pbase());
    const auto unread = static_cast<std::streamsize>(stream_->available_to_read()) - (gptr() - eback());
    return pending + unread;  // 0: unknown, more may be produced later
  }

 private:
  // Hands what the get and put areas did back to the stream and detaches both areas.
  void settle() noexcept {
    if (gptr() != eback()) stream_->consume(static_cast<std::size_t>(gptr() - eback()));
    if (pptr() != pbase()) stream_->produce(static_cast<std::size_t>(pptr() - pbase()));
    setg(nullptr, nullptr, nullptr);
    setp(nullptr, nullptr);
  }

  PicoByteStream* stream_;
};

}  // namespace picoring
