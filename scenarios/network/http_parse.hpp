// The HTTP/1.1 request parser of the network scenario, on its own so that a fuzzer can drive it
// (fuzz/fuzz_http_request.cpp). It reads requests in place: its input is the connection ring's
// readable window, one contiguous string_view even where the request wraps the ring.
//
// Strict where leniency lets two parsers disagree about where a request ends (request
// smuggling, RFC 9112 section 11.2): bare CR or LF, NUL and other control bytes, whitespace
// before the colon of a field, a malformed or overflowing Content-Length, two different
// Content-Length values, Content-Length together with Transfer-Encoding, a missing or repeated
// Host: all 400. A Transfer-Encoding other than "chunked" is 501 (RFC 9112 section 6.1).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace http {

enum class Verdict {
  ok,
  incomplete,       // more bytes are needed
  bad_request,      // 400
  not_implemented,  // 501: a transfer coding we do not decode
  bad_version,      // 505: a well-formed version other than HTTP/1.0 and HTTP/1.1
  too_large,        // 413: the body does not fit the limit
};

struct Request {
  std::string_view method, target, version;
  std::size_t head_size = 0;       // request line, fields and the empty line
  std::size_t content_length = 0;  // when !chunked
  bool chunked = false;
  bool keep_alive = true;
  bool expect_continue = false;
};

inline bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
inline bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }
// Field values: visible ASCII, obs-text (>= 0x80), space and tab; no other control byte.
inline bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7F);
}
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch; };
           return lower(x) == lower(y);
         });
}
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
// A comma-separated list contains `token` (case-insensitive), as in Connection: close.
inline bool list_has(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Where the head ends (after CRLF CRLF). Every line must end in CRLF: a bare LF or CR, or a NUL,
// is a bad request at once, rather than a request that never completes.
inline Verdict find_head(std::string_view data, std::size_t& head_size) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\0' || c == '\n') return Verdict::bad_request;  // every LF is taken with its CR below
    if (c != '\r') continue;
    if (i + 1 == data.size()) return Verdict::incomplete;
    if (data[i + 1] != '\n') return Verdict::bad_request;        // a bare CR
    if (i >= 2 && data[i - 2] == '\r' && data[i - 1] == '\n') {  // an empty line: the end
      head_size = i + 2;
      return Verdict::ok;
    }
    ++i;
  }
  return Verdict::incomplete;
}

// Parses a complete head (find_head's head_size bytes).
inline Verdict parse_head(std::string_view head, Request& req) {
  req = Request{};
  req.head_size = head.size();
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Verdict::bad_request;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return Verdict::bad_request;
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = line.substr(sp2 + 1);
  if (!is_token(req.method) || req.target.empty()) return Verdict::bad_request;
  if (!std::all_of(req.target.begin(), req.target.end(),
                   [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7F; })) {
    return Verdict::bad_request;
  }
  if (req.version.size() != 8 || !req.version.starts_with("HTTP/") || req.version[6] != '.' || req.version[5] < '0' ||
      req.version[5] > '9' || req.version[7] < '0' || req.version[7] > '9') {
    return Verdict::bad_request;
  }
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") return Verdict::bad_version;
  const bool http11 = req.version == "HTTP/1.1";
  req.keep_alive = http11;

  bool have_length = false;
  bool have_encoding = false;
  bool coding_known = true;
  int hosts = 0;
  std::string_view rest = head.substr(line_end + 2);
  while (rest.size() > 2) {  // the final CRLF ends the fields
    const std::size_t eol = rest.find("\r\n");
    const std::string_view field = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return Verdict::bad_request;  // also obs-fold lines
    const std::string_view name = field.substr(0, colon);
    if (!is_token(name)) return Verdict::bad_request;  // "Content-Length : 5" included
    const std::string_view raw = field.substr(colon + 1);
    if (!std::all_of(raw.begin(), raw.end(), is_field_value_char)) return Verdict::bad_request;
    const std::string_view value = trim_ows(raw);
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) return Verdict::bad_request;
      if (have_length && n != req.content_length) return Verdict::bad_request;
      have_length = true;
      req.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      if (have_encoding) coding_known = false;  // "chunked" twice, or a list across fields
      have_encoding = true;
      if (!iequals(value, "chunked")) coding_known = false;
    } else if (iequals(name, "host")) {
      ++hosts;
    } else if (iequals(name, "connection")) {
      if (list_has(value, "close"))
        req.keep_alive = false;
      else if (list_has(value, "keep-alive"))
        req.keep_alive = true;
    } else if (iequals(name, "expect")) {
      if (iequals(value, "100-continue")) req.expect_continue = true;
    }
  }
  if (http11 && hosts != 1) return Verdict::bad_request;
  if (hosts > 1) return Verdict::bad_request;
  if (have_encoding) {
    if (have_length) return Verdict::bad_request;  // which one frames the body is ambiguous
    if (!http11) return Verdict::bad_request;      // HTTP/1.0 has no transfer codings
    if (!coding_known) return Verdict::not_implemented;
    req.chunked = true;
  }
  return Verdict::ok;
}

// Decodes a chunked body that starts at data[0]: appends the chunk data to `body` and sets
// `consumed` to the bytes of wire it took (chunks, trailer fields and the final CRLF). Chunk
// extensions and trailer fields are checked for syntax and ignored. A body over `limit` bytes
// is too_large. On anything but ok, `body` may hold a partial decoding.
inline Verdict decode_chunked(std::string_view data, std::size_t limit, std::string& body, std::size_t& consumed) {
  body.clear();
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      // A chunk-size line can be long only through extensions; bound it.
      return data.size() - pos > 4096 ? Verdict::bad_request : Verdict::incomplete;
    }
    const std::string_view line = data.substr(pos, eol - pos);
    const std::size_t semi = line.find(';');
    const std::string_view hex = line.substr(0, semi);
    if (semi != std::string_view::npos &&
        !std::all_of(line.begin() + static_cast<std::ptrdiff_t>(semi), line.end(), is_field_value_char)) {
      return Verdict::bad_request;
    }
    std::uint64_t size = 0;
    const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
    if (hex.empty() || ec != std::errc() || end != hex.data() + hex.size()) return Verdict::bad_request;
    pos = eol + 2;
    if (size == 0) break;
    if (size > limit || body.size() > limit - size) return Verdict::too_large;
    if (data.size() - pos < size + 2) return Verdict::incomplete;
    body.append(data.substr(pos, static_cast<std::size_t>(size)));
    pos += static_cast<std::size_t>(size);
    if (data.substr(pos, 2) != "\r\n") return Verdict::bad_request;
    pos += 2;
  }
  // Trailer fields, then the empty line.
  for (;;) {
    const std::size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return data.size() - pos > 8192 ? Verdict::bad_request : Verdict::incomplete;
    const std::string_view field = data.substr(pos, eol - pos);
    pos = eol + 2;
    if (field.empty()) break;
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon)) ||
        !std::all_of(field.begin() + static_cast<std::ptrdiff_t>(colon) + 1, field.end(), is_field_value_char)) {
      return Verdict::bad_request;
    }
  }
  consumed = pos;
  return Verdict::ok;
}

}  // namespace http
