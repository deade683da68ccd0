#include <picoring/picoring.hpp>

#include <cassert>
#include <cstdio>
#include <istream>
#include <string>

int main() {
  picoring::PicoByteStream stream(4096);
  stream.write_all("GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n");

  // Parse in place: the readable window is one string_view even when it wraps.
  std::string_view request = stream.readable_view();
  auto end = request.find("\r\n\r\n");
  assert(end != std::string_view::npos);
  std::printf("request line: %.*s\n", static_cast<int>(request.find("\r\n")), request.data());
  stream.release(end + 4);

  // Or read it through the standard library: the streambuf's get area is the ring itself.
  stream.write_all("42 lines\n");
  picoring::ByteStreamBuf buf(stream);
  std::istream in(&buf);
  int count = 0;
  std::string word;
  in >> count >> word;
  assert(count == 42 && word == "lines");
}
