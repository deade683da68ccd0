// Network stream: an HTTP/1.1 server on 127.0.0.1 that recv()s straight into each connection's
// mirrored ring and parses requests in place. A request that straddles the end of the ring is
// still one contiguous string_view (headers, body and all), so the parser has no reassembly
// buffer and no "partial token" state: it waits until the whole request is readable, then
// parses it as one range (http_parse.hpp, strict about framing: see there). Chunked request
// bodies are decoded from that same range. Responses are built in a second ring and send()
// goes straight from its readable window. Keep-alive and pipelining are supported.
//
// Routes:  GET|HEAD /hello/<x>  -> 200 "hello /hello/<x>\n" (HEAD: the head only)
//          POST /echo           -> 200 with the request body as the response body
//          anything else        -> 404
//
//   http_server [--port N] [--port-file F] [--ring BYTES] [--idle-timeout S] [--request-timeout S]
//               [--max-connections N]                       serve until SIGTERM / SIGINT
//   http_server --client PORT --requests N --split bytes|random [--seed S]
//
// What a server facing real clients needs, and this one does:
// - Timeouts: a connection idle (no request in progress, nothing to send) for --idle-timeout
//   seconds is closed; a request not complete within --request-timeout seconds of its first
//   byte gets 408 and the connection is closed; a client that reads nothing for --idle-timeout
//   while responses wait is dropped. Slow clients cannot hold the server's connections.
// - Out of descriptors (accept4 EMFILE/ENFILE, or no descriptor for a new ring): a spare
//   descriptor is released to accept the connection and answer 503, so the client hears why and
//   the listening socket does not spin; the server keeps serving the others.
// - Errors (400, 408, 413, 431, 501, 505) are answered, then the connection is closed gracefully:
//   shutdown(SHUT_WR), then what the client still sends is read and dropped for up to 2 s, so the
//   kernel does not answer unread bytes with a RST that destroys the response in flight.
// - A client that half-closes (shutdown(SHUT_WR)) after its request gets its response, then the
//   connection is closed. Expect: 100-continue is answered at once.
// - Rings are reused: closed connections return theirs to picoring::RingPool, so a new connection costs no
//   memfd_create/mmap (the expensive part of a short connection).
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

#include <fcntl.h>

#include <picoring/byte_stream.hpp>
#include <picoring/pool.hpp>

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

#include "http_parse.hpp"

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Counters {
  std::uint64_t requests = 0;
  std::uint64_t connections = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bad_requests = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t refused = 0;  // 503: out of descriptors or over --max-connections
  std::uint64_t laps = 0;
};

struct Limits {
  std::size_t ring_bytes = 4096;
  std::chrono::milliseconds idle_timeout{15000};
  std::chrono::milliseconds request_timeout{10000};
  std::size_t max_connections = 10000;
};

// A connection's two rings come from pools and go back when it closes: making a ring costs a
// memfd_create, three mmap and an munmap; reusing one costs a clear(). At most 256 of each wait.
struct RingPools {
  explicit RingPools(std::size_t ring_bytes) : in(ring_bytes, {}, 256), out(2 * ring_bytes, {}, 256) {}
  picoring::RingPool<picoring::PicoByteStream> in;
  picoring::RingPool<picoring::PicoByteStream> out;
};

std::string_view reason(http::Verdict v) {
  switch (v) {
    case http::Verdict::not_implemented:
      return "501 Not Implemented";
    case http::Verdict::bad_version:
      return "505 HTTP Version Not Supported";
    case http::Verdict::too_large:
      return "413 Content Too Large";
    default:
      return "400 Bad Request";
  }
}

class Connection {
 public:
  Connection(int fd, picoring::PicoByteStream in, picoring::PicoByteStream out, Clock::time_point now)
      : fd_(fd), in_(std::move(in)), out_(std::move(out)), last_activity_(now) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  void give_back_rings(RingPools& pools) {
    pools.in.give(std::move(in_));
    pools.out.give(std::move(out_));
  }

  int fd() const { return fd_; }
  bool wants_read() const { return !peer_closed_ && (lingering_ || (!closing_ && in_.available_to_write() > 0)); }
  bool wants_write() const { return out_.available_to_read() > 0; }
  bool done() const { return done_; }

  // recv() into the free part of the ring: one call, one contiguous range, even at the wrap.
  bool on_readable(Counters& c, Clock::time_point now) {
    if (lingering_) return discard_input();
    auto space = in_.writable();
    const ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) {
      // The client half-closed: answer what is complete, then close (nothing more can come).
      peer_closed_ = true;
      parse(c, now);
      closing_ = true;
      settle();
      return true;
    }
    if (in_.available_to_read() == 0) request_start_ = now;
    in_.commit(static_cast<std::size_t>(n));
    c.bytes_in += static_cast<std::uint64_t>(n);
    last_activity_ = now;
    parse(c, now);
    return true;
  }

  bool on_writable(Counters& c, Clock::time_point now) {
    const auto pending = out_.readable();
    const ssize_t n = ::send(fd_, pending.data(), pending.size(), MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    out_.release(static_cast<std::size_t>(n));
    last_activity_ = now;
    parse(c, now);  // requests held back for lack of response room
    settle();
    return true;
  }

  // Timeouts, checked about every 250 ms.
  void on_tick(Counters& c, Clock::time_point now, const Limits& limits) {
    if (lingering_) {
      if (now >= linger_until_) done_ = true;
      return;
    }
    if (closing_) {
      if (now - last_activity_ > limits.idle_timeout) done_ = true;  // the client stopped reading
      return;
    }
    if (in_.available_to_read() > 0) {
      if (now - request_start_ > limits.request_timeout) {
        ++c.timeouts;
        reject("408 Request Timeout");
      }
    } else if (now - last_activity_ > limits.idle_timeout) {
      if (out_.available_to_read() == 0) done_ = true;  // idle keep-alive connection: close quietly
    }
  }

  // Parses every complete request now readable. Stops early when the response ring has no
  // room for the next response (the client reads slower than it writes): the request stays in
  // the input ring, and parsing resumes once responses have been sent.
  void parse(Counters& c, Clock::time_point now) {
    while (!closing_) {
      std::string_view data = in_.readable_view();  // contiguous across the wrap
      // Empty lines before a request are ignored (RFC 9112 section 2.2).
      std::size_t blank = 0;
      while (data.substr(blank, 2) == "\r\n") blank += 2;
      if (blank != 0) {
        add_consumed(blank, c);
        continue;
      }
      if (data.empty()) return;
      std::size_t head_size = 0;
      const http::Verdict found = http::find_head(data, head_size);
      if (found == http::Verdict::incomplete) {
        if (in_.available_to_write() == 0) reject(c, "431 Request Header Fields Too Large");
        return;
      }
      http::Request req;
      const http::Verdict v = found == http::Verdict::ok ? http::parse_head(data.substr(0, head_size), req) : found;
      if (v != http::Verdict::ok) {
        reject(c, reason(v));
        return;
      }
      std::string_view body;
      std::size_t total = 0;
      const std::size_t room = in_.capacity() - head_size;
      if (req.chunked) {
        const http::Verdict b = http::decode_chunked(data.substr(head_size), room, chunked_body_, total);
        if (b == http::Verdict::incomplete) {
          if (in_.available_to_write() == 0) {
            reject(c, "413 Content Too Large");
          } else {
            maybe_continue(req);
          }
          return;
        }
        if (b != http::Verdict::ok) {
          reject(c, reason(b));
          return;
        }
        body = chunked_body_;
        total += head_size;
      } else {
        if (req.content_length > room) {
          reject(c, "413 Content Too Large");
          return;
        }
        total = head_size + req.content_length;
        if (data.size() < total) {  // the body is still arriving
          maybe_continue(req);
          return;
        }
        body = data.substr(head_size, req.content_length);
      }
      if (!respond(req, body)) return;  // no room for the response yet
      add_consumed(total, c);
      continue_sent_ = false;
      request_start_ = now;
      ++c.requests;
    }
  }

  void reject(Counters& c, std::string_view status) {
    ++c.bad_requests;
    reject(status);
  }

 private:
  void reject(std::string_view status) {
    std::string msg = "HTTP/1.1 ";
    msg.append(status).append("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    (void)out_.try_write_all(std::as_bytes(std::span(msg.data(), msg.size())));  // unless responses fill it
    closing_ = true;
    rejected_ = true;
    settle();
  }

  void maybe_continue(const http::Request& req) {
    if (!req.expect_continue || continue_sent_ || req.version != "HTTP/1.1") return;
    out_.write(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
    continue_sent_ = true;
  }

  // Writes the whole response into the output ring, or nothing if it does not fit yet.
  bool respond(const http::Request& req, std::string_view body_in) {
    std::string_view status = "200 OK";
    std::string body;
    const bool head_only = req.method == "HEAD";
    if ((req.method == "GET" || head_only) && req.target.starts_with("/hello/")) {
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
    const std::size_t body_len = head_only ? 0 : body.size();  // HEAD: the same head, no body
    if (out_.available_to_write() < head_len + body_len) {
      if (out_.available_to_read() == 0) closing_ = true;  // can never fit: give up on this client
      return false;
    }
    out_.write(std::string_view(head, head_len));
    if (!head_only) out_.write(body);
    if (!req.keep_alive) {
      closing_ = true;
    } else if (!nodelay_) {
      // Only a connection that stays open sends small writes behind unacknowledged ones, where
      // Nagle's algorithm would hold them back: one setsockopt less per short connection.
      const int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      nodelay_ = true;
    }
    return true;
  }

  // Once everything is sent on a closing connection: close at once if the client has closed
  // its side, or if it ended its last request cleanly and sent nothing after it (as nginx
  // decides); else half-close ours and read until the client closes (or 2 s pass): closing a
  // socket with unread bytes makes the kernel send a RST, which can destroy the response
  // before the client reads it. Rejected requests always take the second way: their client
  // may still be sending the body we refused.
  void settle() {
    if (!closing_ || lingering_ || done_ || out_.available_to_read() != 0) return;
    if (peer_closed_ || (!rejected_ && in_.available_to_read() == 0)) {
      done_ = true;
      return;
    }
    ::shutdown(fd_, SHUT_WR);
    lingering_ = true;
    linger_until_ = Clock::now() + std::chrono::seconds(2);
  }

  bool discard_input() {
    char scratch[16384];
    const ssize_t n = ::recv(fd_, scratch, sizeof scratch, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) done_ = true;
    return true;
  }

  void add_consumed(std::size_t n, Counters& c) {
    in_.release(n);
    consumed_since_lap_ += n;
    while (consumed_since_lap_ >= in_.capacity()) {
      consumed_since_lap_ -= in_.capacity();
      ++c.laps;
    }
  }

  int fd_;
  picoring::PicoByteStream in_;
  picoring::PicoByteStream out_;
  std::string chunked_body_;  // a chunked request's decoded body (the ring holds it with chunk headers)
  std::size_t consumed_since_lap_ = 0;
  Clock::time_point last_activity_;
  Clock::time_point request_start_;
  Clock::time_point linger_until_;
  bool closing_ = false;      // no more requests are read; close once the output is sent
  bool lingering_ = false;    // our side is shut down; reading until the client closes
  bool peer_closed_ = false;  // the client shut its side
  bool continue_sent_ = false;
  bool nodelay_ = false;
  bool rejected_ = false;
  bool done_ = false;
};

int listen_on(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
  // SOMAXCONN: the kernel caps it at net.core.somaxconn (4096 on current kernels). A backlog of
  // 128 turned a burst of 3000 connects into minutes of SYN retransmissions.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    std::perror("http_server: bind/listen");
    ::close(fd);
    return -1;
  }
  return fd;
}

// Answers 503 on a connection we cannot serve, and closes it. Best effort: the socket is new,
// so the few bytes fit its send buffer.
void refuse(int fd) {
  static constexpr std::string_view kMsg =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n";
  (void)!::send(fd, kMsg.data(), kMsg.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

int serve(int port, const char* port_file, const Limits& limits) {
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

  // The spare descriptor: closed to make room when the process is out of descriptors, so a
  // pending connection can be accepted and told 503 instead of waiting (and poll spinning).
  int spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  Counters c;
  RingPools pools(limits.ring_bytes);
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<pollfd> fds;
  const auto t0 = Clock::now();
  auto last_tick = t0;
  while (g_stop == 0) {
    fds.clear();
    fds.push_back({listener, POLLIN, 0});
    for (auto& conn : conns) {
      const short ev = static_cast<short>((conn->wants_read() ? POLLIN : 0) | (conn->wants_write() ? POLLOUT : 0));
      fds.push_back({conn->fd(), ev, 0});
    }
    if (::poll(fds.data(), fds.size(), 250) < 0) {
      if (errno == EINTR) continue;
      std::perror("http_server: poll");
      return 1;
    }
    const auto now = Clock::now();
    if ((fds[0].revents & POLLIN) != 0) {
      // Everything pending, not one per round: a burst of connects must not wait in the backlog.
      for (int accepted = 0; accepted < 256; ++accepted) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare >= 0) {
          ::close(spare);
          fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd >= 0) {
            refuse(fd);
            ++c.refused;
          }
          spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          continue;
        }
        if (fd < 0) break;  // EAGAIN: nothing more pending (or a transient error: next round)
        ++c.connections;
        if (conns.size() >= limits.max_connections) {
          refuse(fd);
          ++c.refused;
          continue;
        }
        picoring::Error err;
        auto in = pools.in.take(err);
        picoring::PicoByteStream out;
        if (!err) out = pools.out.take(err);
        if (err) {  // no descriptor or memory for the rings: say so, keep serving
          pools.in.give(std::move(in));
          refuse(fd);
          ++c.refused;
          continue;
        }
        auto conn = std::make_unique<Connection>(fd, std::move(in), std::move(out), now);
        // The request usually arrived with the connection: read it now rather than a poll later.
        if (conn->on_readable(c, now) && conn->wants_write()) conn->on_writable(c, now);
        if (conn->done()) {
          conn->give_back_rings(pools);
        } else {
          conns.push_back(std::move(conn));
        }
      }
    }
    // fds[i + 1] belongs to conns[i]; connections accepted above are polled from the next round.
    const bool tick = now - last_tick >= std::chrono::milliseconds(250);
    if (tick) last_tick = now;
    for (std::size_t i = 0; i + 1 < fds.size(); ++i) {
      Connection& conn = *conns[i];
      const short re = fds[i + 1].revents;
      bool alive = true;
      if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && conn.wants_read()) alive = conn.on_readable(c, now);
      if (alive && (re & POLLOUT) != 0) alive = conn.on_writable(c, now);
      if (alive && tick) conn.on_tick(c, now, limits);
      if (!alive || conn.done()) {
        conn.give_back_rings(pools);
        conns[i].reset();
      }
    }
    std::erase_if(conns, [](const auto& p) { return p == nullptr; });
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  picoring::Error err;
  const std::size_t ring_capacity = picoring::mirror_size_for(limits.ring_bytes, 1, err);  // each connection's
  std::printf(
      "network: %llu requests on %llu connections, %llu bytes received, request ring of %zu bytes wrapped %llu "
      "times, %llu rejected, %llu timed out, %llu refused (503), %.0f requests/s over %.1f s\n",
      static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.connections),
      static_cast<unsigned long long>(c.bytes_in), ring_capacity, static_cast<unsigned long long>(c.laps),
      static_cast<unsigned long long>(c.bad_requests), static_cast<unsigned long long>(c.timeouts),
      static_cast<unsigned long long>(c.refused), static_cast<double>(c.requests) / seconds, seconds);
  ::close(listener);
  if (spare >= 0) ::close(spare);
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

// A whole decimal argument within [min, max], or false (no atoi: "abc" is not 0).
template <class T>
bool parse_number(const char* text, T min, T max, T& out) {
  const std::string_view v(text);
  T n{};
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < min || n > max) return false;
  out = n;
  return true;
}

int usage(const char* why) {
  std::fprintf(
      stderr,
      "http_server: %s\n"
      "usage: http_server [--port 0-65535] [--port-file FILE] [--ring 4096-67108864]\n"
      "                   [--idle-timeout 1-3600 s] [--request-timeout 1-3600 s] [--max-connections 1-1000000]\n"
      "       http_server --client PORT [--requests 1-10000000] [--split bytes|random] [--seed N]\n",
      why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  const char* port_file = nullptr;
  Limits limits;
  int client_port = -1;
  int requests = 200;
  bool bytes = false;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage((std::string("missing value or unknown argument: ") + argv[i]).c_str());
    const char* v = argv[++i];
    long seconds = 0;
    bool ok = true;
    if (a == "--port") {
      ok = parse_number(v, 0, 65535, port);
    } else if (a == "--port-file") {
      port_file = v;
    } else if (a == "--ring") {
      // At least a page (a request must fit), at most 64 MiB per connection (two rings each).
      ok = parse_number(v, std::size_t{4096}, std::size_t{64} << 20, limits.ring_bytes);
    } else if (a == "--idle-timeout") {
      ok = parse_number(v, 1L, 3600L, seconds);
      limits.idle_timeout = std::chrono::seconds(seconds);
    } else if (a == "--request-timeout") {
      ok = parse_number(v, 1L, 3600L, seconds);
      limits.request_timeout = std::chrono::seconds(seconds);
    } else if (a == "--max-connections") {
      ok = parse_number(v, std::size_t{1}, std::size_t{1000000}, limits.max_connections);
    } else if (a == "--client") {
      ok = parse_number(v, 1, 65535, client_port);
    } else if (a == "--requests") {
      ok = parse_number(v, 1, 10000000, requests);
    } else if (a == "--split") {
      ok = std::string_view(v) == "bytes" || std::string_view(v) == "random";
      bytes = std::string_view(v) == "bytes";
    } else if (a == "--seed") {
      ok = parse_number(v, 0u, ~0u, seed);
    } else {
      return usage((std::string("unknown argument ") + argv[i - 1]).c_str());
    }
    if (!ok) return usage((std::string("bad value for ") + argv[i - 1] + ": " + v).c_str());
  }
  if (client_port >= 0) return run_client(client_port, requests, bytes, seed);
  return serve(port, port_file, limits);
}
