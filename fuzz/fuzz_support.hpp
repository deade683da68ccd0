// Shared by the libFuzzer harnesses: element types of odd sizes and one that counts its lives,
// and a check that aborts (libFuzzer reports it as a crash, with the input that caused it).
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

namespace picoring_fuzz {

// A trivially copyable element of exactly N bytes; every byte depends on the id and its
// position, so a misplaced byte (a wrong wrap for sizes that do not divide the page) shows.
// Byte i is byte i % 8 of id * an odd constant (a bijection of 64-bit ids), so with N >= 3 ids
// below 2^24 all differ: the fan-in harness tells lanes apart by their elements.
template <std::size_t N>
struct Blob {
  std::array<unsigned char, N> bytes;
  static Blob from(std::uint64_t id) {
    Blob b;
    const std::uint64_t h = id * 0x9E3779B97F4A7C15ull;
    for (std::size_t i = 0; i < N; ++i) b.bytes[i] = static_cast<unsigned char>((h >> (8 * (i % 8))) ^ (i / 8 * 131u));
    return b;
  }
  bool is(std::uint64_t id) const { return *this == from(id); }
  friend bool operator==(const Blob&, const Blob&) = default;
};

// Counts constructions and destructions, detects the destruction of a dead object, and throws
// from its copy constructor when the countdown armed by the harness reaches zero. Its move
// constructor never throws (the MPSC queue requires that).
class Counted {
 public:
  static inline long live = 0;
  static inline long bad = 0;
  static inline long copies_until_throw = -1;  // < 0: never

  static Counted from(std::uint64_t id) { return Counted(id); }
  explicit Counted(std::uint64_t id) : id_(id) { ++live; }
  Counted(const Counted& o) : id_(o.id_) {
    if (copies_until_throw == 0) throw std::runtime_error("copy failed on purpose");
    if (copies_until_throw > 0) --copies_until_throw;
    ++live;
  }
  Counted(Counted&& o) noexcept : id_(o.id_) { ++live; }
  Counted& operator=(const Counted& o) {
    if (copies_until_throw == 0) throw std::runtime_error("assignment failed on purpose");
    if (copies_until_throw > 0) --copies_until_throw;
    id_ = o.id_;
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    id_ = o.id_;
    return *this;
  }
  ~Counted() {
    if (canary_ != kAlive) ++bad;
    *static_cast<volatile std::uint64_t*>(&canary_) = 0;  // volatile: survives dead-store elimination
    --live;
  }
  bool is(std::uint64_t id) const { return canary_ == kAlive && id_ == id; }

 private:
  static constexpr std::uint64_t kAlive = 0xA11CE5A11CE5ull;
  std::uint64_t id_;
  std::uint64_t canary_ = kAlive;
};

// Every element type the container harnesses run: 1, 3 and 24 bytes (24 does not divide the
// page size, so the ring is a multiple of 3 pages) and the counted one.
template <class T>
T make(std::uint64_t id) {
  return T::from(id);
}

// After each input: no Counted alive, none destroyed twice.
inline void check_lifetimes() {
  FUZZ_CHECK(Counted::live == 0);
  FUZZ_CHECK(Counted::bad == 0);
  Counted::copies_until_throw = -1;
}

}  // namespace picoring_fuzz
