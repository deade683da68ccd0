// A log shipper in two processes: this one reads a log file line by line and ships each line as
// one record through a shared record queue, a list of lines at a time (push_some); a second
// process (this program again, started with fork + exec) receives the queue's memfd over a Unix
// socket, attaches as the reader and analyses the lines (status classes of Apache/nginx
// access-log lines), each one contiguous in the ring whatever the wrap. At the end the analyser
// sends back its count and checksum of what it read, and the shipper compares them with what it
// sent.
//
//   log_shipper FILE [--ring BYTES]    exit 0: every line arrived intact, 1: a mismatch or an
//                                      error, 2: a usage error
//
// A line longer than the largest record (the ring's capacity less 8 bytes) is not shipped: it is
// counted and reported. The analyser stops when the shipper closes the queue, or after 10 s
// without a record or a close.
#include <fcntl.h>
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
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

struct Totals {
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;  // an order-sensitive hash of every line's bytes
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

int analyse(int socket) {
  using namespace std::chrono_literals;
  auto reader = picoring::SharedRecordReader::attach(picoring::receive_fd(socket));
  Totals t;
  std::array<std::uint64_t, 6> classes{};
  for (;;) {
    const picoring::QueueStatus st = reader.wait(10s);
    if (st == picoring::QueueStatus::closed) break;
    if (st == picoring::QueueStatus::timed_out) {
      std::fprintf(stderr, "analyser: no record for 10 s, giving up\n");
      return 1;
    }
    reader.drain([&](std::span<const std::byte> rec) {
      const std::string_view line(reinterpret_cast<const char*>(rec.data()), rec.size());
      add(t, line);
      ++classes[static_cast<std::size_t>(status_class(line))];
    });
  }
  std::printf("analyser: %" PRIu64 " lines, %" PRIu64 " bytes; 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64
              ", 5xx %" PRIu64 ", other %" PRIu64 "\n",
              t.lines, t.bytes, classes[2], classes[3], classes[4], classes[5], classes[0]);
  std::fflush(stdout);
  const bool sent = ::write(socket, &t, sizeof t) == static_cast<ssize_t>(sizeof t);
  return sent ? 0 : 1;
}

int ship(const char* self, const char* path, std::size_t ring_bytes) {
  using namespace std::chrono_literals;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "log_shipper: cannot open %s: %s\n", path,
                 std::error_code(errno, std::generic_category()).message().c_str());
    return 1;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    std::perror("log_shipper: socketpair");
    return 1;
  }
  auto writer = picoring::SharedRecordWriter::create(ring_bytes);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("log_shipper: fork");
    return 1;
  }
  if (pid == 0) {
    // The analyser's end of the socket becomes descriptor 3 (dup2 clears close-on-exec).
    if (::dup2(sv[1], 3) < 0) ::_exit(127);
    ::execl(self, self, "--analyse", "3", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(sv[1]);
  picoring::send_fd(sv[0], writer.fd());
  writer.close_fd();  // the analyser has its own now

  // Lines go out in lists of up to kList, each list with as few publications as the room allows
  // (push_some: one store of the queue's counter for all the lines that fit).
  constexpr std::size_t kList = 64;
  std::vector<std::string> lines;
  std::vector<std::span<const std::byte>> list;
  Totals sent;
  std::uint64_t too_long = 0;
  std::string line;
  int status = 0;
  bool more = true;
  while (more && status == 0) {
    lines.clear();
    while (lines.size() < kList && (more = static_cast<bool>(std::getline(in, line)))) {
      if (line.empty()) continue;  // records are never empty
      if (line.size() > writer.max_record_size()) {
        ++too_long;
        continue;
      }
      lines.push_back(line);
    }
    list.assign(lines.size(), {});
    for (std::size_t i = 0; i < lines.size(); ++i) list[i] = std::as_bytes(std::span(lines[i]));
    for (std::size_t done = 0; done < list.size();) {
      const std::size_t n = writer.push_some(std::span(list).subspan(done));
      for (std::size_t i = done; i < done + n; ++i) add(sent, lines[i]);
      done += n;
      if (n != 0) continue;
      const auto st = writer.wait_for_space(list[done].size(), 10s);  // full: wait for room for the next line
      if (st != picoring::QueueStatus::ok) {
        std::fprintf(stderr, "log_shipper: the analyser %s\n",
                     st == picoring::QueueStatus::closed ? "went away" : "stopped reading for 10 s");
        status = 1;
        break;
      }
    }
  }
  writer.close();
  Totals got;
  const bool reply = ::read(sv[0], &got, sizeof got) == static_cast<ssize_t>(sizeof got);
  ::close(sv[0]);
  int child = 0;
  ::waitpid(pid, &child, 0);
  std::printf("shipper: %" PRIu64 " lines, %" PRIu64 " bytes shipped through a %zu-byte ring; %" PRIu64
              " lines too long to ship\n",
              sent.lines, sent.bytes, writer.capacity(), too_long);
  if (!reply || !WIFEXITED(child) || WEXITSTATUS(child) != 0) {
    std::fprintf(stderr, "log_shipper: the analyser failed\n");
    return 1;
  }
  if (got.lines != sent.lines || got.bytes != sent.bytes || got.checksum != sent.checksum) {
    std::fprintf(stderr, "log_shipper: MISMATCH between what was shipped and what arrived\n");
    return 1;
  }
  std::printf("shipper: the analyser received every line intact (checksum %016" PRIx64 ")\n", sent.checksum);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string_view(argv[1]) == "--analyse") return analyse(std::atoi(argv[2]));
    std::size_t ring = std::size_t{64} * 1024;
    if (argc == 4 && std::string_view(argv[2]) == "--ring") {
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(argv[3], &end, 10);
      if (errno != 0 || end == argv[3] || *end != '\0' || v == 0 || v > (1ULL << 30)) {
        std::fprintf(stderr, "log_shipper: --ring wants a byte count from 1 to 2^30\n");
        return 2;
      }
      ring = static_cast<std::size_t>(v);
    } else if (argc != 2) {
      std::fprintf(stderr, "usage: %s FILE [--ring BYTES]\n", argv[0]);
      return 2;
    }
    return ship("/proc/self/exe", argv[1], ring);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "log_shipper: %s\n", e.what());
    return 1;
  }
}
