// Messages between two processes: the shared record queue (picoring/shared_queue.hpp) against
// the shared byte stream, the shared queue of fixed slots (one message per slot), a pipe, a Unix stream socket and a
// Unix datagram socket, in the same run, on the same messages; and the shared queue with
// batching on both ends.
//
// Throughput: a child process sends N messages of S bytes; the parent receives and checks them
// (each message carries its sequence number). The stream transports need the messages framed:
// the sender writes one message per call (as a program that sends each event as it happens),
// or, in the "batched" rows, 64 KiB at a time (as one that buffers); the receiver reads 64 KiB
// at a time. The datagram socket sends and receives one message per call (its boundaries are
// kept). The shared queue: push_wait per message, drain on the reader side.
// Round trip: 64-byte ping-pong, one queue each way against one socketpair.
// Many producers: 1, 2, 4 and 8 producer processes, each its own shared record queue read through
// SharedRecordFanIn, against all of them sending on one datagram socket or writing to one pipe.
// Reported: millions of messages per second and ratios (median of rotated rounds).
//
//   picoring_ipc_bench [--runs R] [--messages N] [--quick]
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <picoring/shared_queue.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kChunk = std::size_t{64} * 1024;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n != 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0) die("write");
    b += w;
    n -= static_cast<std::size_t>(w);
  }
}
void read_all(int fd, void* p, std::size_t n) {
  auto* b = static_cast<char*>(p);
  while (n != 0) {
    const ssize_t r = ::read(fd, b, n);
    if (r <= 0) die("read");
    b += r;
    n -= static_cast<std::size_t>(r);
  }
}

// Runs `child` in a forked process started by a byte on a pipe, so the parent's clock starts
// just before the child begins; returns the parent's seconds for `parent`. The parent runs on
// CPU 0 and the child on CPU 1: left to the scheduler, the two sometimes share one CPU, which
// turns every round trip into a context switch and every batch into cache hits (runs of the
// same code differed 3x-6x that way).
template <class Child, class Parent>
double two_processes(Child child, Parent parent) {
  int go[2];
  if (::pipe(go) != 0) die("pipe");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    picoring_bench::pin_this_thread(1);
    ::close(go[1]);
    char c = 0;
    read_all(go[0], &c, 1);
    child();
    ::_exit(0);
  }
  ::close(go[0]);
  picoring_bench::pin_this_thread(0);
  const auto t0 = Clock::now();
  write_all(go[1], "g", 1);
  parent();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(go[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "ipc_bench: the child failed\n");
    std::exit(1);
  }
  return s;
}

void fill(std::vector<char>& msg, std::uint64_t seq) { std::memcpy(msg.data(), &seq, sizeof seq); }
void check(const char* p, std::uint64_t seq) {
  std::uint64_t got = 0;
  std::memcpy(&got, p, sizeof got);
  if (got != seq) {
    std::fprintf(stderr, "ipc_bench: message %llu arrived as %llu\n", static_cast<unsigned long long>(seq),
                 static_cast<unsigned long long>(got));
    std::exit(1);
  }
}

// `batching` on both ends (the "batched" row: 16 KiB, 1 us; see SharedEnd::set_batching).
double shared_queue(std::size_t size, std::uint64_t n, picoring::Batching batching = {}) {
  auto reader = picoring::SharedRecordReader::create(1 << 20);
  reader.set_batching(batching);
  const int fd = reader.fd();
  return two_processes(
      [&] {
        auto w = picoring::SharedRecordWriter::attach(fd);
        w.set_batching(batching);
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          if (w.push_wait(std::as_bytes(std::span(msg)), 60s) != picoring::QueueStatus::ok) ::_exit(1);
        }
      },
      [&] {
        std::uint64_t seq = 0;
        while (seq < n) {
          if (reader.wait(60s) != picoring::QueueStatus::ok) die("shared queue wait");
          reader.drain([&](std::span<const std::byte> rec) {
            if (rec.size() != size) die("shared queue: size");
            check(reinterpret_cast<const char*>(rec.data()), seq++);
          });
        }
      });
}

// The shared byte stream with the messages framed as on a pipe: one write_all per message; the
// reader checks whole messages in place in readable() (no copy out, no memmove of a partial
// message: the mirror keeps one that wraps contiguous) and releases them.
double shared_stream(std::size_t size, std::uint64_t n) {
  auto reader = picoring::SharedStreamReader::create(1 << 20);
  const int fd = reader.fd();
  return two_processes(
      [&] {
        auto w = picoring::SharedStreamWriter::attach(fd);
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          if (w.write_all(std::as_bytes(std::span(msg)), 60s) != picoring::QueueStatus::ok) ::_exit(1);
        }
      },
      [&] {
        std::uint64_t seq = 0;
        while (seq < n) {
          if (reader.wait(size, 60s) != picoring::QueueStatus::ok) die("shared stream wait");
          const auto in = reader.readable();
          std::size_t at = 0;
          for (; in.size() - at >= size; at += size) check(reinterpret_cast<const char*>(in.data()) + at, seq++);
          reader.release(at);
        }
      });
}

// The shared queue of fixed slots, one message per slot, written in place (writable + commit,
// waiting when full) one message at a time; the reader
// checks every readable message in place and releases them together.
template <std::size_t kSize>
double shared_slots_of(std::uint64_t n) {
  using Msg = std::array<char, kSize>;
  auto reader = picoring::SharedQueueReader<Msg>::create((std::size_t{1} << 20) / kSize);
  const int fd = reader.fd();
  return two_processes(
      [&] {
        auto w = picoring::SharedQueueWriter<Msg>::attach(fd);
        std::vector<char> msg(kSize, 'm');
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          auto out = w.writable();
          while (out.empty()) {
            if (w.wait_for_space(1, 60s) != picoring::QueueStatus::ok) ::_exit(1);
            out = w.writable();
          }
          std::memcpy(out[0].data(), msg.data(), kSize);  // written in its slot: one copy, as push does
          w.commit(1);
        }
      },
      [&] {
        std::uint64_t seq = 0;
        while (seq < n) {
          if (reader.wait(1, 60s) != picoring::QueueStatus::ok) die("shared slots wait");
          const auto in = reader.readable();
          for (const Msg& m : in) check(m.data(), seq++);
          reader.release(in.size());
        }
      });
}
double shared_slots(std::size_t size, std::uint64_t n) {
  if (size == 64) return shared_slots_of<64>(n);
  if (size == 4096) return shared_slots_of<4096>(n);
  die("shared slots: a message size the benchmark was not built for");
}

// A stream transport (pipe or stream socket): `batched` writes 64 KiB at a time.
double stream(bool socket, bool batched, std::size_t size, std::uint64_t n) {
  int fds[2];
  if (socket ? ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0 : ::pipe(fds) != 0) die("pipe/socketpair");
  const int rd = fds[0];
  const int wr = fds[1];
  const double s = two_processes(
      [&] {
        ::close(rd);
        std::vector<char> msg(size, 'm');
        std::vector<char> buf;
        buf.reserve(kChunk + size);
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          if (!batched) {
            write_all(wr, msg.data(), size);
            continue;
          }
          buf.insert(buf.end(), msg.begin(), msg.end());
          if (buf.size() >= kChunk) {
            write_all(wr, buf.data(), buf.size());
            buf.clear();
          }
        }
        if (!buf.empty()) write_all(wr, buf.data(), buf.size());
      },
      [&] {
        std::vector<char> in(kChunk + size);
        std::size_t have = 0;
        std::uint64_t seq = 0;
        while (seq < n) {
          const ssize_t r = ::read(rd, in.data() + have, kChunk);
          if (r <= 0) die("stream read");
          have += static_cast<std::size_t>(r);
          std::size_t at = 0;
          for (; have - at >= size; at += size) check(in.data() + at, seq++);
          std::memmove(in.data(), in.data() + at, have - at);
          have -= at;
        }
      });
  ::close(rd);
  ::close(wr);
  return s;
}

double datagram(std::size_t size, std::uint64_t n) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0) die("socketpair(SOCK_DGRAM)");
  const double s = two_processes(
      [&] {
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          if (::send(fds[1], msg.data(), size, 0) != static_cast<ssize_t>(size)) die("send");
        }
      },
      [&] {
        std::vector<char> in(size);
        for (std::uint64_t seq = 0; seq < n; ++seq) {
          if (::recv(fds[0], in.data(), size, 0) != static_cast<ssize_t>(size)) die("recv");
          check(in.data(), seq);
        }
      });
  ::close(fds[0]);
  ::close(fds[1]);
  return s;
}

// Round trips of 64 bytes: mean seconds per round trip.
double rtt_shared(std::uint64_t n) {
  auto there = picoring::SharedRecordWriter::create(1 << 16);
  auto back = picoring::SharedRecordReader::create(1 << 16);
  const int there_fd = there.fd();
  const int back_fd = back.fd();
  const double s = two_processes(
      [&] {
        auto in = picoring::SharedRecordReader::attach(there_fd);
        auto out = picoring::SharedRecordWriter::attach(back_fd);
        for (std::uint64_t i = 0; i < n; ++i) {
          if (in.wait(60s) != picoring::QueueStatus::ok) ::_exit(1);
          const auto rec = in.front();
          if (!out.push(rec)) ::_exit(1);
          in.pop();
        }
      },
      [&] {
        std::vector<char> msg(64, 'p');
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          if (there.push_wait(std::as_bytes(std::span(msg)), 60s) != picoring::QueueStatus::ok) die("push");
          if (back.wait(60s) != picoring::QueueStatus::ok) die("wait");
          check(reinterpret_cast<const char*>(back.front().data()), i);
          back.pop();
        }
      });
  return s / static_cast<double>(n);
}

double rtt_socket(std::uint64_t n) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) die("socketpair");
  const double s = two_processes(
      [&] {
        char buf[64];
        for (std::uint64_t i = 0; i < n; ++i) {
          read_all(fds[1], buf, sizeof buf);
          write_all(fds[1], buf, sizeof buf);
        }
      },
      [&] {
        std::vector<char> msg(64, 'p');
        char buf[64];
        for (std::uint64_t i = 0; i < n; ++i) {
          fill(msg, i);
          write_all(fds[0], msg.data(), msg.size());
          read_all(fds[0], buf, sizeof buf);
          check(buf, i);
        }
      });
  ::close(fds[0]);
  ::close(fds[1]);
  return s / static_cast<double>(n);
}

// Many producer processes, one reader: `producers` children, each sending n / producers messages
// that carry its number and its own sequence number. Returns the parent's seconds. The parent
// runs on CPU 0 and the producers share the other CPUs (on 2 CPUs: all on CPU 1). Left as
// two_processes leaves the parent (pinned to CPU 0), children would inherit that and every
// transport would run on one CPU: 1.1 M messages/s for the fan-in and the pipe alike.
template <class Child, class Parent>
double many_processes(std::size_t producers, Child child, Parent parent) {
  int go[2];
  if (::pipe(go) != 0) die("pipe");
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (std::size_t p = 0; p < producers; ++p) {
    const pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      const unsigned cpus = std::max(std::thread::hardware_concurrency(), 2u);
      picoring_bench::pin_this_thread(static_cast<int>(1 + p % (cpus - 1)));
      ::close(go[1]);
      char c = 0;
      read_all(go[0], &c, 1);
      child(p);
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  ::close(go[0]);
  picoring_bench::pin_this_thread(0);
  const auto t0 = Clock::now();
  for (std::size_t p = 0; p < producers; ++p) write_all(go[1], "g", 1);
  parent();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(go[1]);
  for (const pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "ipc_bench: a producer failed\n");
      std::exit(1);
    }
  }
  return s;
}

// A fan-in message: [producer (8 bytes)][its sequence number (8 bytes)][filler]. The reader
// checks that each producer's numbers arrive in order.
void fill_from(std::vector<char>& msg, std::uint64_t producer, std::uint64_t seq) {
  std::memcpy(msg.data(), &producer, sizeof producer);
  std::memcpy(msg.data() + 8, &seq, sizeof seq);
}
struct PerProducerOrder {
  explicit PerProducerOrder(std::size_t producers) : next(producers, 0) {}
  void check(const char* p) {
    std::uint64_t producer = 0;
    std::uint64_t seq = 0;
    std::memcpy(&producer, p, sizeof producer);
    std::memcpy(&seq, p + 8, sizeof seq);
    if (producer >= next.size() || seq != next[static_cast<std::size_t>(producer)]++) {
      std::fprintf(stderr, "ipc_bench: producer %llu's message %llu out of order\n",
                   static_cast<unsigned long long>(producer), static_cast<unsigned long long>(seq));
      std::exit(1);
    }
  }
  std::vector<std::uint64_t> next;
};

// SharedRecordFanIn: one shared record queue (1 MiB) per producer process, push_wait per
// message; the reader waits on all lanes at once and drains them in turns.
double fanin_queue(std::size_t producers, std::size_t size, std::uint64_t n) {
  picoring::SharedRecordFanIn in;
  std::vector<int> fds;
  for (std::size_t p = 0; p < producers; ++p) {
    auto lane = picoring::SharedRecordReader::create(1 << 20);
    fds.push_back(::dup(lane.fd()));
    lane.close_fd();
    in.add(std::move(lane));
  }
  const std::uint64_t each = n / std::max<std::size_t>(producers, 1);
  const double s = many_processes(
      producers,
      [&](std::size_t p) {
        auto w = picoring::SharedRecordWriter::attach(fds[p]);
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < each; ++i) {
          fill_from(msg, p, i);
          if (w.push_wait(std::as_bytes(std::span(msg)), 60s) != picoring::QueueStatus::ok) ::_exit(1);
        }
      },
      [&] {
        PerProducerOrder order(producers);
        std::uint64_t got = 0;
        while (got < each * producers) {
          if (in.wait(60s) != picoring::QueueStatus::ok) die("fan-in wait");
          got += in.drain([&](std::span<const std::byte> rec) {
            if (rec.size() != size) die("fan-in: size");
            order.check(reinterpret_cast<const char*>(rec.data()));
          });
        }
      });
  for (const int fd : fds) ::close(fd);
  return s;
}

// One Unix datagram socket that every producer sends on (each message one send; the kernel
// keeps them whole), the reader receiving one per call.
double fanin_datagram(std::size_t producers, std::size_t size, std::uint64_t n) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0) die("socketpair(SOCK_DGRAM)");
  const std::uint64_t each = n / std::max<std::size_t>(producers, 1);
  const double s = many_processes(
      producers,
      [&](std::size_t p) {
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < each; ++i) {
          fill_from(msg, p, i);
          if (::send(fds[1], msg.data(), size, 0) != static_cast<ssize_t>(size)) die("send");
        }
      },
      [&] {
        PerProducerOrder order(producers);
        std::vector<char> in(size);
        for (std::uint64_t got = 0; got < each * producers; ++got) {
          if (::recv(fds[0], in.data(), size, 0) != static_cast<ssize_t>(size)) die("recv");
          order.check(in.data());
        }
      });
  ::close(fds[0]);
  ::close(fds[1]);
  return s;
}

// One pipe that every producer writes to, one message per write: writes of at most PIPE_BUF
// bytes are atomic, so messages never interleave; the reader reads 64 KiB at a time.
double fanin_pipe(std::size_t producers, std::size_t size, std::uint64_t n) {
  int fds[2];
  if (::pipe(fds) != 0) die("pipe");
  const std::uint64_t each = n / std::max<std::size_t>(producers, 1);
  const double s = many_processes(
      producers,
      [&](std::size_t p) {
        ::close(fds[0]);
        std::vector<char> msg(size, 'm');
        for (std::uint64_t i = 0; i < each; ++i) {
          fill_from(msg, p, i);
          write_all(fds[1], msg.data(), size);
        }
      },
      [&] {
        PerProducerOrder order(producers);
        std::vector<char> buf(kChunk);
        std::size_t have = 0;
        for (std::uint64_t got = 0; got < each * producers;) {
          const ssize_t r = ::read(fds[0], buf.data() + have, buf.size() - have);
          if (r <= 0) die("read");
          have += static_cast<std::size_t>(r);
          std::size_t at = 0;
          for (; have - at >= size; at += size, ++got) order.check(buf.data() + at);
          std::memmove(buf.data(), buf.data() + at, have - at);
          have -= at;
        }
      });
  ::close(fds[0]);
  ::close(fds[1]);
  return s;
}

struct Contender {
  const char* name;
  std::function<double(std::size_t, std::uint64_t)> run;
};

}  // namespace

int main(int argc, char** argv) {
  picoring_bench::RunOptions options{5, 1000000};
  if (!picoring_bench::parse_run_options(argc, argv, "--messages", 1000000000, {1, 20000}, options)) return 2;
  const auto runs = static_cast<int>(options.runs);
  const auto messages = static_cast<std::uint64_t>(options.amount);
  const std::vector<Contender> cs = {
      {"shared queue", [](std::size_t s, std::uint64_t n) { return shared_queue(s, n); }},
      {"shared queue batched",
       [](std::size_t s, std::uint64_t n) {
         return shared_queue(s, n, {std::size_t{16} * 1024, 1us});
       }},
      {"shared stream", shared_stream},
      {"shared slots", shared_slots},
      {"pipe", [](std::size_t s, std::uint64_t n) { return stream(false, false, s, n); }},
      {"pipe batched", [](std::size_t s, std::uint64_t n) { return stream(false, true, s, n); }},
      {"stream socket", [](std::size_t s, std::uint64_t n) { return stream(true, false, s, n); }},
      {"stream socket batched", [](std::size_t s, std::uint64_t n) { return stream(true, true, s, n); }},
      {"datagram socket", datagram},
  };
  std::printf("\n### Between two processes: %llu messages per run, median of %d rotated rounds\n\n",
              static_cast<unsigned long long>(messages), runs);
  std::printf("| message | shared queue M msg/s |");
  for (std::size_t k = 1; k < cs.size(); ++k) std::printf(" vs %s |", cs[k].name);
  std::printf("\n|---|---:|");
  for (std::size_t k = 1; k < cs.size(); ++k) std::printf("---:|");
  std::printf("\n");
  for (const std::size_t size : {std::size_t{64}, std::size_t{4096}}) {
    const std::uint64_t n = size > 1024 ? std::max<std::uint64_t>(messages / 8, 1) : messages;
    const auto rounds =
        picoring_bench::rotated_rounds(runs, cs.size(), [&](std::size_t k) { return cs[k].run(size, n); });
    const auto& secs = rounds.seconds;
    const auto& ratio = rounds.ratio_to_first;
    std::printf("| %zu B | %.2f |", size, static_cast<double>(n) / picoring_bench::median(secs[0]) / 1e6);
    for (std::size_t k = 1; k < cs.size(); ++k) std::printf(" %.2fx |", picoring_bench::median(ratio[k]));
    std::printf("\n");
  }
  const std::uint64_t trips = std::max<std::uint64_t>(messages / 10, 1);
  std::vector<double> rq;
  std::vector<double> rs;
  for (int r = 0; r < runs; ++r) {
    if (r % 2 == 0) {
      rq.push_back(rtt_shared(trips));
      rs.push_back(rtt_socket(trips));
    } else {
      rs.push_back(rtt_socket(trips));
      rq.push_back(rtt_shared(trips));
    }
  }
  const double q = picoring_bench::median(rq);
  const double s = picoring_bench::median(rs);
  std::printf(
      "\n### Many producer processes, one reader: %llu messages of 64 B per run, median of %d rotated rounds\n\n",
      static_cast<unsigned long long>(messages), runs);
  std::printf("| producers | fan-in M msg/s | vs one datagram socket | vs one pipe |\n|---|---:|---:|---:|\n");
  for (const std::size_t producers : {std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8}}) {
    const std::array<double (*)(std::size_t, std::size_t, std::uint64_t), 3> fan = {fanin_queue, fanin_datagram,
                                                                                    fanin_pipe};
    const auto rounds = picoring_bench::rotated_rounds(runs, fan.size(),
                                                       [&](std::size_t k) { return fan[k](producers, 64, messages); });
    const std::uint64_t sent = messages / producers * producers;
    std::printf("| %zu | %.2f | %.2fx | %.2fx |\n", producers,
                static_cast<double>(sent) / picoring_bench::median(rounds.seconds[0]) / 1e6,
                picoring_bench::median(rounds.ratio_to_first[1]), picoring_bench::median(rounds.ratio_to_first[2]));
  }
  std::printf("\nRound trip of 64 B (%llu trips): shared queues %.2f us, stream socket %.2f us (%.2fx the socket's)\n",
              static_cast<unsigned long long>(trips), q * 1e6, s * 1e6, q / s);
  std::printf("Ratios: the other transport's time / the shared queue's (above 1: the queue is faster).\n");
  return 0;
}
