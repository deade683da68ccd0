// A log collector: one shipper process per log file, one collector reading them all. Each
// shipper (this program again, started with fork + exec) creates its own shared record queue,
// sends the queue's memfd to the collector over a Unix socket, and ships its file line by line;
// the collector adds each queue to a SharedRecordFanIn and analyses every line as one contiguous
// span (status classes of Apache/nginx access-log lines), taking the shippers in turns and
// knowing each line's file by its lane's id. At the end each shipper reports what it sent, and
// the collector compares that with what it read from that shipper's lane, in order.
//
//   log_collector FILE... [--ring BYTES]   exit 0: every line of every file arrived intact,
//                                          1: a mismatch or an error, 2: a usage error
//
// At most SharedRecordFanIn::kMaxLanes (128) files. A line longer than the largest record (the
// ring's capacity less 8 bytes) is not shipped: it is counted and reported. The collector gives
// up after 10 s without a record from any shipper; a shipper after 10 s of a full ring.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <picoring/shared_queue.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;

// What a shipper sent, or what the collector read from its lane.
struct Totals {
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;  // an order-sensitive hash of every line's bytes
  std::uint64_t too_long = 0;
};

void add(Totals& t, std::string_view line) {
  ++t.lines;
  t.bytes += line.size();
  for (const char c : line) t.checksum = (t.checksum ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  t.checksum = (t.checksum ^ 0xff) * 0x100000001b3ULL;  // the line's end
}

// The status class (2..5) of an access-log line: the three digits after the request's closing
// quote ("GET / HTTP/1.1" 200 ...); 0 when the line has no such field.
int status_class(std::string_view line) {
  const std::size_t q = line.find("\" ");
  if (q == std::string_view::npos || q + 5 > line.size()) return 0;
  const std::string_view code = line.substr(q + 2, 3);
  for (const char c : code) {
    if (c < '0' || c > '9') return 0;
  }
  return code[0] >= '2' && code[0] <= '5' ? code[0] - '0' : 0;
}

// A shipper: its queue goes to the collector first, then the lines, then its totals.
int ship(const char* path, int socket, std::size_t ring_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "shipper: cannot open %s: %s\n", path,
                 std::error_code(errno, std::generic_category()).message().c_str());
    return 1;  // the collector sees the socket close without a queue
  }
  auto writer = picoring::SharedRecordWriter::create(ring_bytes);
  picoring::send_fd(socket, writer.fd());
  writer.close_fd();  // the collector has its own now
  Totals sent;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;  // records are never empty
    if (line.size() > writer.max_record_size()) {
      ++sent.too_long;
      continue;
    }
    const auto st = writer.push_wait(std::as_bytes(std::span(line)), 10s);
    if (st != picoring::QueueStatus::ok) {
      std::fprintf(stderr, "shipper %s: the collector %s\n", path,
                   st == picoring::QueueStatus::closed ? "went away" : "stopped reading for 10 s");
      return 1;
    }
    add(sent, line);
  }
  writer.close();  // the collector drains this lane, then drops it
  return ::write(socket, &sent, sizeof sent) == static_cast<ssize_t>(sizeof sent) ? 0 : 1;
}

struct Shipper {
  const char* path;
  pid_t pid = -1;
  int socket = -1;         // the collector's end
  std::uint64_t lane = 0;  // its lane's id in the fan-in (0: none)
  Totals got;              // what the collector read from that lane
};

int collect(const std::vector<const char*>& paths, std::size_t ring_bytes) {
  std::vector<Shipper> shippers;
  const std::string ring = std::to_string(ring_bytes);
  for (const char* path : paths) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      std::perror("log_collector: socketpair");
      return 1;
    }
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("log_collector: fork");
      return 1;
    }
    if (pid == 0) {
      // The shipper's end of the socket becomes descriptor 3 (dup2 clears close-on-exec).
      if (::dup2(sv[1], 3) < 0) ::_exit(127);
      ::execl("/proc/self/exe", "log_collector", "--ship", path, "3", ring.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(sv[1]);
    shippers.push_back({path, pid, sv[0], 0, {}});
  }

  picoring::SharedRecordFanIn in;
  int status = 0;
  for (Shipper& s : shippers) {
    try {
      const int fd = picoring::receive_fd(s.socket);
      s.lane = in.add(fd);
      ::close(fd);
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "log_collector: no queue from the shipper of %s (%s)\n", s.path, e.what());
      status = 1;
    }
  }
  Totals got;  // all lanes
  std::array<std::uint64_t, 6> classes{};
  for (;;) {
    const picoring::QueueStatus st = in.wait(10s);
    if (st == picoring::QueueStatus::closed) break;  // every lane ended and drained
    if (st == picoring::QueueStatus::timed_out) {
      std::fprintf(stderr, "log_collector: no record for 10 s, giving up\n");
      in.close();
      status = 1;
      break;
    }
    in.drain([&](std::span<const std::byte> rec, std::uint64_t lane) {
      const std::string_view line(reinterpret_cast<const char*>(rec.data()), rec.size());
      add(got, line);
      ++classes[static_cast<std::size_t>(status_class(line))];
      for (Shipper& s : shippers) {
        if (s.lane == lane) add(s.got, line);  // lanes are few: a search is fine here
      }
    });
  }

  for (const Shipper& s : shippers) {
    Totals t;
    const bool reply = ::read(s.socket, &t, sizeof t) == static_cast<ssize_t>(sizeof t);
    ::close(s.socket);
    int child = 0;
    ::waitpid(s.pid, &child, 0);
    if (!reply || !WIFEXITED(child) || WEXITSTATUS(child) != 0) {
      std::fprintf(stderr, "log_collector: the shipper of %s failed\n", s.path);
      status = 1;
      continue;
    }
    std::printf("shipper %s: %" PRIu64 " lines, %" PRIu64 " bytes; %" PRIu64 " lines too long to ship\n", s.path,
                t.lines, t.bytes, t.too_long);
    if (s.got.lines != t.lines || s.got.bytes != t.bytes || s.got.checksum != t.checksum) {
      std::fprintf(stderr, "log_collector: MISMATCH between what %s's shipper sent and what arrived\n", s.path);
      status = 1;
    }
  }
  std::printf("collector: %" PRIu64 " lines, %" PRIu64 " bytes from %zu shippers through %zu-byte rings; 2xx %" PRIu64
              ", 3xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 ", other %" PRIu64 "\n",
              got.lines, got.bytes, shippers.size(), ring_bytes, classes[2], classes[3], classes[4], classes[5],
              classes[0]);
  if (status != 0) return status;
  std::printf("collector: received every line of every file intact and in order\n");
  return 0;
}

bool parse_bytes(const char* text, std::size_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || v > (1ULL << 30)) return false;
  out = static_cast<std::size_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 5 && std::string_view(argv[1]) == "--ship") {
      std::size_t ring = 0;
      if (!parse_bytes(argv[4], ring)) return 2;
      return ship(argv[2], std::atoi(argv[3]), ring);
    }
    std::size_t ring = std::size_t{64} * 1024;
    std::vector<const char*> paths;
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--ring") {
        if (i + 1 == argc || !parse_bytes(argv[i + 1], ring)) {
          std::fprintf(stderr, "log_collector: --ring wants a byte count from 1 to 2^30\n");
          return 2;
        }
        ++i;
      } else {
        paths.push_back(argv[i]);
      }
    }
    if (paths.empty() || paths.size() > picoring::SharedRecordFanIn::kMaxLanes) {
      std::fprintf(stderr, "usage: %s FILE... [--ring BYTES]   (1 to %zu files)\n", argv[0],
                   picoring::SharedRecordFanIn::kMaxLanes);
      return 2;
    }
    return collect(paths, ring);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "log_collector: %s\n", e.what());
    return 1;
  }
}
