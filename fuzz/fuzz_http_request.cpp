// Fuzzes the HTTP scenario's request parser (scenarios/network/http_parse.hpp) with arbitrary
// bytes: no out-of-range access (ASan), and the framing it reports is consistent: a head ends
// in CRLF CRLF and holds no bare CR or LF, every view points into the input, a chunked body
// decodes to no more than the limit and re-encodes to the same body.
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "http_parse.hpp"

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t head_size = 0;
  const http::Verdict found = http::find_head(in, head_size);
  if (found == http::Verdict::ok) {
    FUZZ_CHECK(head_size >= 4 && head_size <= in.size());
    const std::string_view head = in.substr(0, head_size);
    FUZZ_CHECK(head.ends_with("\r\n\r\n"));
    for (std::size_t i = 0; i < head.size(); ++i) {
      if (head[i] == '\n') FUZZ_CHECK(i > 0 && head[i - 1] == '\r');
      if (head[i] == '\r') FUZZ_CHECK(i + 1 < head.size() && head[i + 1] == '\n');
    }
    http::Request req;
    if (http::parse_head(head, req) == http::Verdict::ok) {
      FUZZ_CHECK(inside(req.method, head) && inside(req.target, head) && inside(req.version, head));
      FUZZ_CHECK(req.version == "HTTP/1.1" || req.version == "HTTP/1.0");
      FUZZ_CHECK(!(req.chunked && req.content_length != 0));
      if (req.chunked) {
        const std::size_t limit = 1000;
        std::string body;
        std::size_t consumed = 0;
        if (http::decode_chunked(in.substr(head_size), limit, body, consumed) == http::Verdict::ok) {
          FUZZ_CHECK(consumed <= in.size() - head_size && body.size() <= limit);
          // The same body sent as one chunk decodes to itself.
          char hex[32];
          const int n = std::snprintf(hex, sizeof hex, "%zx\r\n", body.size());
          const std::string again = body.empty()
                                        ? std::string("0\r\n\r\n")
                                        : std::string(hex, static_cast<std::size_t>(n)) + body + "\r\n0\r\n\r\n";
          std::string body2;
          std::size_t consumed2 = 0;
          FUZZ_CHECK(http::decode_chunked(again, limit, body2, consumed2) == http::Verdict::ok);
          FUZZ_CHECK(body2 == body && consumed2 == again.size());
        }
      }
    }
  } else if (found == http::Verdict::incomplete) {
    // No bare LF, no NUL so far: the input is a prefix that more bytes could complete.
    FUZZ_CHECK(in.find('\0') == std::string_view::npos);
  }
  return 0;
}
