// Network stream: an HTTP/1.1 server on 127.0.0.1 that recv()s straight into each connection's
// mirrored ring and parses requests in place. A request that straddles the end of the ring is
// still one contiguous string_view (headers, body and all), so the parser has no reassembly
// buffer and no "partial token" state: it waits until the whole request is readable, then
// parses it as one range. Responses are built in a second ring and send() goes straight from
// its readable window. Keep-alive and pipelining (many requests in one recv) are supported.
//
// Routes:  GET /hello/<x>    -> 200 "hello /hello/<x>\n"
//          POST /echo        -> 200 with the request body as the response body
//          anything else     -> 404
//
//   http_server [--port N] [--port-file F] [--ring BYTES]   serve until SIGTERM / SIGINT
//   http_server --client PORT --requests N --split bytes|random [--seed S]
//
// Server: prints one summary line at exit. Client (the test's independent checker): sends N
// pipelined requests (GETs and POSTs with random bodies) in one-byte or random-size pieces while
// reading, and checks every response against what it expects; exits 1 on any mismatch.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <picoring/byte_stream.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);  // ASCII letters only; header names are tokens
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Counters {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bad_requests = 0;
  std::uint64_t laps = 0;
};

class Connection {
 public:
  Connection(int fd, std::size_t ring_bytes) : fd_(fd), in_(ring_bytes), out_(2 * ring_bytes) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }
  bool wants_read() const { return !closing_ && in_.available_to_write() > 0; }
  bool wants_write() const { return out_.available_to_read() > 0; }
  bool done() const { return closing_ && out_.available_to_read() == 0; }

  // recv() into the free part of the ring: one call, one contiguous range, even at the wrap.
  bool on_readable(Counters& c) {
    auto space = in_.writable();
    const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (n > 0) {
      in_.produce(static_cast<std::size_t>(n));
      c.bytes_in += static_cast<std::uint64_t>(n);
      parse(c);
    }
    return true;
  }

  bool on_writable() {
    const auto pending = out_.readable();
    const ssize_t n = ::send(fd_, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    out_.consume(static_cast<std::size_t>(n));
    return true;
  }

  // Parses every complete request now readable. Stops early when the response ring has no
  // room for the next response (the client reads slower than it writes): the request stays in
  // the input ring, and parsing resumes once responses have been sent.
  void parse(Counters& c) {
    while (!closing_) {
      const std::string_view data = in_.readable_view();  // contiguous across the wrap
      const std::size_t header_end = data.find("\r\n\r\n");
      if (header_end == std::string_view::npos) {
        if (in_.available_to_write() == 0) reject(c, "431 Request Header Fields Too Large");
        return;
      }
      Request req;
      if (!parse_head(data.substr(0, header_end + 2), req)) {
        reject(c, "400 Bad Request");
        return;
      }
      const std::size_t total = header_end + 4 + req.content_length;
      if (total > in_.capacity()) {
        reject(c, "413 Content Too Large");
        return;
      }
      if (data.size() < total) return;  // the body is still arriving
      const std::string_view body = data.substr(header_end + 4, req.content_length);
      if (!respond(req, body)) return;  // no room for the response yet
      add_consumed(total, c);
      ++c.requests;
    }
  }

 private:
  struct Request {
    std::string_view method, target, version;
    std::size_t content_length = 0;
    bool keep_alive = true;
  };

  static bool parse_head(std::string_view head, Request& req) {
    const std::size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version = line.substr(sp2 + 1);
    if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") return false;
    req.keep_alive = req.version == "HTTP/1.1";
    std::string_view rest = head.substr(line_end + 2);
    while (!rest.empty()) {
      const std::size_t eol = rest.find("\r\n");
      const std::string_view h = rest.substr(0, eol);
      rest.remove_prefix(eol + 2);
      const std::size_t colon = h.find(':');
      if (colon == std::string_view::npos) return false;
      const std::string_view name = h.substr(0, colon);
      const std::string_view value = trim(h.substr(colon + 1));
      if (iequals(name, "content-length")) {
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), req.content_length);
        if (ec != std::errc() || p != value.data() + value.size()) return false;
      } else if (iequals(name, "connection")) {
        if (iequals(value, "close")) req.keep_alive = false;
        if (iequals(value, "keep-alive")) req.keep_alive = true;
      } else if (iequals(name, "transfer-encoding")) {
        return false;  // chunked bodies are not supported by this example
      }
    }
    return true;
  }

  // Writes the whole response into the output ring, or nothing if it does not fit yet.
  bool respond(const Request& req, std::string_view body_in) {
    std::string_view status = "200 OK";
    std::string body;
    if (req.method == "GET" && req.target.starts_with("/hello/")) {
      body.append("hello ").append(req.target).append("\n");
    } else if (req.method == "POST" && req.target == "/echo") {
      body.assign(body_in);
    } else {
      status = "404 Not Found";
      body = "not found\n";
    }
    char head[256];
    const int n = std::snprintf(
        head, sizeof head, "HTTP/1.1 %.*s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
        static_cast<int>(status.size()), status.data(), body.size(), req.keep_alive ? "keep-alive" : "close");
    const auto head_len = static_cast<std::size_t>(n);
    if (out_.available_to_write() < head_len + body.size()) {
      if (out_.available_to_read() == 0) closing_ = true;  // can never fit: give up on this client
      return false;
    }
    out_.write(std::string_view(head, head_len));
    out_.write(body);
    if (!req.keep_alive) closing_ = true;
    return true;
  }

  void reject(Counters& c, std::string_view status) {
    ++c.bad_requests;
    std::string msg = "HTTP/1.1 ";
    msg.append(status).append("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    out_.write(msg);
    closing_ = true;
  }

  void add_consumed(std::size_t n, Counters& c) {
    in_.consume(n);
    consumed_since_lap_ += n;
    while (consumed_since_lap_ >= in_.capacity()) {
      consumed_since_lap_ -= in_.capacity();
      ++c.laps;
    }
  }

  int fd_;
  picoring::PicoByteStream in_;
  picoring::PicoByteStream out_;
  std::size_t consumed_since_lap_ = 0;
  bool closing_ = false;
};

int listen_on(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("http_server: socket");
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    std::perror("http_server: bind/listen");
    ::close(fd);
    return -1;
  }
  return fd;
}

int serve(int port, const char* port_file, std::size_t ring_bytes) {
  const int listener = listen_on(port);
  if (listener < 0) return 1;
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len);
  const int actual_port = ntohs(bound.sin_port);
  if (port_file != nullptr) {
    const std::string tmp = std::string(port_file) + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      std::perror("http_server: port file");
      ::close(listener);
      return 1;
    }
    std::fprintf(f, "%d\n", actual_port);
    std::fclose(f);
    std::rename(tmp.c_str(), port_file);  // appears complete or not at all
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  Counters c;
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<pollfd> fds;
  const auto t0 = std::chrono::steady_clock::now();
  while (g_stop == 0) {
    fds.clear();
    fds.push_back({listener, POLLIN, 0});
    for (auto& conn : conns) {
      const short ev = static_cast<short>((conn->wants_read() ? POLLIN : 0) | (conn->wants_write() ? POLLOUT : 0));
      fds.push_back({conn->fd(), ev, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0) {
      if (errno == EINTR) continue;
      std::perror("http_server: poll");
      return 1;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns.push_back(std::make_unique<Connection>(fd, ring_bytes));
        ++c.connections;
      }
    }
    // fds[i + 1] belongs to conns[i]; connections accepted above are polled next round.
    for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
      Connection& conn = *conns[i];
      const short re = fds[i + 1].revents;
      bool alive = true;
      if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && conn.wants_read()) alive = conn.on_readable(c);
      if (alive && (re & POLLOUT) != 0) {
        alive = conn.on_writable();
        if (alive) conn.parse(c);  // requests held back for lack of response room
      }
      if (!alive || conn.done()) conns[i].reset();
    }
    std::erase_if(conns, [](const auto& p) { return p == nullptr; });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  picoring::Error err;
  const std::size_t ring_capacity = picoring::mirror_size_for(ring_bytes, 1, err);  // what each connection got
  std::printf(
      "network: %llu requests on %llu connections, %llu bytes received, request ring of %zu bytes wrapped %llu "
      "times, %llu rejected, %.0f requests/s over %.1f s\n",
      static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.connections),
      static_cast<unsigned long long>(c.bytes_in), ring_capacity, static_cast<unsigned long long>(c.laps),
      static_cast<unsigned long long>(c.bad_requests), static_cast<double>(c.requests) / seconds, seconds);
  ::close(listener);
  return 0;
}

// ---- client: the independent checker -------------------------------------------------------

struct Expected {
  std::string status_line;
  std::string body;
};

int run_client(int port, int requests, bool byte_at_a_time, unsigned seed) {
  std::mt19937 rng(seed);
  std::string wire;
  std::vector<Expected> expected;
  for (int i = 0; i < requests; ++i) {
    const bool last = i + 1 == requests;
    const std::string connection = last ? "Connection: close\r\n" : "";
    switch (rng() % 4) {
      case 0: {
        const std::string target = "/nowhere/" + std::to_string(i);
        wire.append("GET ").append(target).append(" HTTP/1.1\r\nHost: x\r\n").append(connection).append("\r\n");
        expected.push_back({"HTTP/1.1 404 Not Found", "not found\n"});
        break;
      }
      case 1: {
        // A body of 0 .. 3000 bytes (the server's ring is 4 KiB by default), any byte values.
        std::string body(rng() % 3001, '\0');
        for (char& ch : body) ch = static_cast<char>(rng());
        wire.append("POST /echo HTTP/1.1\r\nHost: x\r\ncontent-length: ")
            .append(std::to_string(body.size()))
            .append("\r\n")
            .append(connection)
            .append("\r\n")
            .append(body);
        expected.push_back({"HTTP/1.1 200 OK", body});
        break;
      }
      default: {
        const std::string target = "/hello/" + std::to_string(rng());
        wire.append("GET ").append(target).append(" HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        wire.append(rng() % 200, 'p').append("\r\n").append(connection).append("\r\n");
        expected.push_back({"HTTP/1.1 200 OK", "hello " + target + "\n"});
      }
    }
  }

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("client: connect");
    return 1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Send in pieces while reading whatever comes back, so neither side's buffers fill up.
  std::string received;
  std::size_t sent = 0;
  bool eof = false;
  while (!eof) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < wire.size() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 10000) <= 0) {
      std::fprintf(stderr, "client: no progress for 10 s (sent %zu of %zu)\n", sent, wire.size());
      return 1;
    }
    if ((p.revents & POLLOUT) != 0) {
      const std::size_t piece = byte_at_a_time ? 1 : 1 + rng() % 2000;
      const ssize_t n = ::send(fd, wire.data() + sent, std::min(piece, wire.size() - sent), MSG_NOSIGNAL);
      if (n < 0) {
        std::perror("client: send");
        return 1;
      }
      sent += static_cast<std::size_t>(n);
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) {
        std::perror("client: recv");
        return 1;
      }
      if (n == 0) eof = true;
      received.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);

  // Parse the responses with plain string operations (no ring) and compare.
  std::size_t pos = 0;
  int bad = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::size_t head_end = received.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) {
      std::fprintf(stderr, "client: response %zu missing\n", i);
      return 1;
    }
    const std::string head = received.substr(pos, head_end - pos);
    const std::string status = head.substr(0, head.find("\r\n"));
    const std::size_t cl = head.find("Content-Length: ");
    const std::size_t length = cl == std::string::npos ? 0 : std::strtoull(head.c_str() + cl + 16, nullptr, 10);
    const std::string body = received.substr(head_end + 4, length);
    if (status != expected[i].status_line || body != expected[i].body) {
      if (bad++ < 5)
        std::fprintf(stderr, "client: response %zu: got '%s' (%zu bytes), expected '%s' (%zu bytes)\n", i,
                     status.c_str(), body.size(), expected[i].status_line.c_str(), expected[i].body.size());
    }
    pos = head_end + 4 + length;
  }
  if (pos != received.size()) {
    std::fprintf(stderr, "client: %zu unexpected bytes after the last response\n", received.size() - pos);
    ++bad;
  }
  std::printf("client: %d pipelined requests sent %s, %zu bytes, %d bad responses\n", requests,
              byte_at_a_time ? "one byte at a time" : "in random pieces of 1-2000 bytes", wire.size(), bad);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  const char* port_file = nullptr;
  std::size_t ring_bytes = 4096;
  int client_port = -1;
  int requests = 200;
  bool bytes = false;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--port" && has_value) {
      port = std::atoi(argv[++i]);
    } else if (a == "--port-file" && has_value) {
      port_file = argv[++i];
    } else if (a == "--ring" && has_value) {
      ring_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--client" && has_value) {
      client_port = std::atoi(argv[++i]);
    } else if (a == "--requests" && has_value) {
      requests = std::atoi(argv[++i]);
    } else if (a == "--split" && has_value) {
      bytes = std::string_view(argv[++i]) == "bytes";
    } else if (a == "--seed" && has_value) {
      seed = static_cast<unsigned>(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "http_server: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (client_port >= 0) return run_client(client_port, requests, bytes, seed);
  return serve(port, port_file, ring_bytes);
}
