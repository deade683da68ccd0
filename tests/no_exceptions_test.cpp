// Built with -fno-exceptions: the containers' headers compile, and the non-throwing creation
// path reports errors through picoring::Error instead of throwing.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "picoring/picoring.hpp"

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

int main() {
  picoring::Error err;
  picoring::PicoRing<int> ring(1000, err);
  CHECK(!err);
  CHECK(ring.capacity() >= 1000);
  CHECK(ring.push(7) && ring.pop().value_or(0) == 7);

  picoring::PicoRing<int> zero(0, err);
  CHECK(err && err.code == picoring::errc::zero_size);
  CHECK(zero.capacity() == 0 && !zero.push(1));

  picoring::PicoByteStream huge(static_cast<std::size_t>(-1), err);
  CHECK(err && err.code == picoring::errc::size_overflow);
  CHECK(huge.capacity() == 0);

  picoring::PicoByteStream stream(4096, err);
  CHECK(!err);
  CHECK(stream.try_write_all(std::as_bytes(std::span(std::string_view("hello")))));
  CHECK(stream.readable_view() == "hello");
  std::puts("no-exceptions build: ok");
  return 0;
}
