// The baseline every table compares against: a well-written "classic" byte ring on a plain
// std::vector. Same capacity as the picoring ring it races, no modulo (compare and subtract),
// a write that crosses the end is two memcpy, and a read window is used in place unless it
// wraps, in which case it is reassembled into a caller-owned buffer that is reused (no
// allocation in any timed loop).
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <vector>

namespace picoring_bench {

class ClassicRing {
 public:
  explicit ClassicRing(std::size_t capacity) : buf_(capacity) {}

  std::size_t capacity() const { return buf_.size(); }
  std::size_t size() const { return len_; }
  std::size_t free_space() const { return buf_.size() - len_; }

  void clear() {
    head_ = 0;
    len_ = 0;
  }
  // Publishes n bytes written in place, checked like picoring's commit (the
  // benchmarks use clear + commit + release on both sides to place windows across the end).
  void commit(std::size_t n) {
    if (n > free_space()) throw std::out_of_range("classic: commit past free space");
    len_ += n;
  }

  // All or nothing, like PicoRing::push_slice.
  bool write(std::span<const std::byte> in) {
    const std::size_t n = in.size();
    if (n > free_space()) return false;
    std::size_t tail = head_ + len_;
    if (tail >= buf_.size()) tail -= buf_.size();
    const std::size_t first = n < buf_.size() - tail ? n : buf_.size() - tail;
    std::memcpy(buf_.data() + tail, in.data(), first);
    std::memcpy(buf_.data(), in.data() + first, n - first);
    len_ += n;
    return true;
  }

  // Moves up to out.size() bytes out of the ring (two memcpy when wrapped).
  std::size_t read(std::span<std::byte> out) {
    const std::size_t n = out.size() < len_ ? out.size() : len_;
    const std::size_t first = n < buf_.size() - head_ ? n : buf_.size() - head_;
    std::memcpy(out.data(), buf_.data() + head_, first);
    std::memcpy(out.data() + first, buf_.data(), n - first);
    release(n);
    return n;
  }

  // The readable bytes as one contiguous span: in place when they do not wrap, else copied
  // into `scratch` (which must hold size() bytes).
  std::span<const std::byte> window(std::span<std::byte> scratch) const {
    const std::size_t to_end = buf_.size() - head_;
    if (len_ <= to_end) return {buf_.data() + head_, len_};
    std::memcpy(scratch.data(), buf_.data() + head_, to_end);
    std::memcpy(scratch.data() + to_end, buf_.data(), len_ - to_end);
    return {scratch.data(), len_};
  }

  void release(std::size_t n) {
    if (n > len_) throw std::out_of_range("classic: release past size");
    head_ += n;
    if (head_ >= buf_.size()) head_ -= buf_.size();
    len_ -= n;
  }

  std::byte* raw() { return buf_.data(); }

 private:
  std::vector<std::byte> buf_;
  std::size_t head_ = 0;
  std::size_t len_ = 0;
};

}  // namespace picoring_bench
