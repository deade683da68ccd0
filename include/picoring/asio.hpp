// picoring: a PicoByteStream as an Asio DynamicBuffer (v2), for async_read_until, async_read,
// async_write and every other operation that takes a dynamic buffer.
//
//   picoring::PicoByteStream in(64 * 1024);
//   asio::async_read_until(socket, picoring::dynamic_buffer(in), "\r\n", handler);
//   // in handler: in.readable_view().substr(0, n) is the line, one contiguous string_view
//   // even where it wraps; in.release(n) drops it.
//
// What makes it different: data(pos, n) is always ONE buffer (asio::const_buffer or
// mutable_buffer), never a sequence of two at the wrap as a circular buffer's is, so a parser
// sees every message contiguous and scatter/gather never splits a read.
//
// Header-only, and only this header needs Asio: standalone Asio (<asio.hpp>, Debian
// libasio-dev) when it is found, else Boost.Asio; define PICORING_ASIO_USE_BOOST to choose
// Boost.Asio when both are installed.
//
// The adapter is a reference to the stream, cheap to copy (Asio copies dynamic buffers into its
// operations); the stream must outlive every operation using it, and only one operation may use
// it at a time (as for any dynamic buffer). Its members map onto the stream:
//   size() = available_to_read(), max_size() = capacity() = the stream's capacity,
//   grow(n) = commit(n) of unspecified bytes (std::length_error when size() + n > max_size()),
//   shrink(n) = uncommit(min(n, size())), consume(n) = release(min(n, size())).
#pragma once

#include <cstddef>

#include "picoring/byte_stream.hpp"

#if !defined(PICORING_ASIO_USE_BOOST) && __has_include(<asio/buffer.hpp>)
#include <asio/buffer.hpp>
namespace picoring::detail {
namespace net = ::asio;
}  // namespace picoring::detail
#else
#include <boost/asio/buffer.hpp>
namespace picoring::detail {
namespace net = ::boost::asio;
}  // namespace picoring::detail
#endif

namespace picoring {

class ByteStreamDynamicBuffer {
 public:
  using const_buffers_type = detail::net::const_buffer;
  using mutable_buffers_type = detail::net::mutable_buffer;

  explicit ByteStreamDynamicBuffer(PicoByteStream& stream) noexcept : stream_(&stream) {}

  std::size_t size() const noexcept { return stream_->available_to_read(); }
  std::size_t max_size() const noexcept { return stream_->capacity(); }
  std::size_t capacity() const noexcept { return stream_->capacity(); }

  // Bytes [pos, pos + n) of the readable data, clipped to size(): one contiguous buffer.
  const_buffers_type data(std::size_t pos, std::size_t n) const noexcept {
    const auto r = stream_->readable();
    const std::size_t at = pos < r.size() ? pos : r.size();
    const std::size_t len = n < r.size() - at ? n : r.size() - at;
    return {r.data() + at, len};
  }
  mutable_buffers_type data(std::size_t pos, std::size_t n) noexcept {
    const auto r = stream_->readable_bytes();
    const std::size_t at = pos < r.size() ? pos : r.size();
    const std::size_t len = n < r.size() - at ? n : r.size() - at;
    return {r.data() + at, len};
  }

  // Appends n bytes of unspecified content to the readable data (an operation then reads into
  // data(size() - n, n)). Throws std::length_error, changing nothing, when they do not fit.
  void grow(std::size_t n) {
    if (n > stream_->available_to_write())
      detail::throw_length_error("picoring: dynamic buffer grow(n): n > free space");
    stream_->commit(n);
  }
  // Removes n bytes from the end of the readable data (all of it when n > size()).
  void shrink(std::size_t n) { stream_->uncommit(n < size() ? n : size()); }
  // Removes n bytes from the start of the readable data (all of it when n > size()).
  void consume(std::size_t n) { stream_->release(n < size() ? n : size()); }

 private:
  PicoByteStream* stream_;
};

// The dynamic buffer over `stream`, as asio::dynamic_buffer(std::string&) makes one over a string.
inline ByteStreamDynamicBuffer dynamic_buffer(PicoByteStream& stream) noexcept {
  return ByteStreamDynamicBuffer(stream);
}

}  // namespace picoring
