// Asio dynamic buffers on the loop every async_read_until reader runs, without the socket (whose
// system calls would drown what the buffers cost): take a read of 16 KiB into the buffer, then
// find each complete "\r\n"-terminated message in the readable data, sum its bytes (the parse)
// and consume it; a message left incomplete waits for the next read. The search resumes where the
// previous one stopped, as read_until does.
//
// Contenders, each through the same generic code (a one-buffer sequence takes the contiguous
// path, several buffers the buffers_iterator path, as a real parser must):
//   picoring     picoring::dynamic_buffer(PicoByteStream) (v2: grow / data(pos, n) / consume)
//   string       asio::dynamic_buffer(std::string) (v2): consume erases the front of the string
//   flat_buffer  beast::flat_buffer (v1: prepare / commit / data / consume): compacts on prepare
//   multi_buffer beast::multi_buffer (v1): a list of blocks, data() is a sequence of them
// Reported: messages per second (median of interleaved, rotated rounds), the speed-up (the
// contender's time / picoring's, taken within each round), and the share of data() calls that
// returned the data in more than one buffer.
//
//   picoring_asio_bench [--runs R] [--mib N] [--quick]
#define PICORING_ASIO_USE_BOOST 1

#include <boost/asio/buffer.hpp>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/multi_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "picoring/asio.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

constexpr std::size_t kReadSize = std::size_t{16} * 1024;

// Every buffer gets the same limit, what a reader sizes it to (its memory touched before timing): room for the largest
// message and a read, twice (32 KiB for messages up to 16 KiB, 128 KiB for 64 KiB ones). A ring walks through all of
// its capacity, so a larger one than needed only spreads the data over more cache.
std::size_t buffer_bytes(std::size_t message) { return 2 * std::max(message, kReadSize); }

// Bytes summed one by one (vectorised by the compiler): the same total whatever the split, so
// the contenders' results can be compared for equality.
std::uint64_t byte_sum(const unsigned char* p, std::size_t n) {
  std::uint64_t a = 0;
  for (std::size_t i = 0; i < n; ++i) a += p[i];
  return a;
}

struct Outcome {
  double seconds = 0;  // the reader loop only: creating the buffer is not timed
  std::uint64_t messages = 0;
  std::uint64_t sum = 0;
  std::uint64_t data_calls = 0;
  std::uint64_t split_calls = 0;  // data() returned more than one buffer
};

// The reader loop over any buffer, given how to take a read in, what the readable data is, and
// how to consume.
template <class Receive, class Data, class Consume>
Outcome read_messages(const std::string& wire, Receive receive, Data data, Consume consume) {
  Outcome out;
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t scanned = 0;  // bytes of the readable data known to hold no "\r\n" start
  for (std::size_t off = 0; off < wire.size();) {
    const std::size_t n = std::min(kReadSize, wire.size() - off);
    receive(wire.data() + off, n);
    off += n;
    for (;;) {
      const auto seq = data();
      const auto first = net::buffer_sequence_begin(seq);
      const auto last = net::buffer_sequence_end(seq);
      ++out.data_calls;
      if (std::distance(first, last) > 1) ++out.split_calls;
      std::size_t end = std::string_view::npos;  // one past the message's "\r\n"
      if (std::next(first) == last || first == last) {
        const net::const_buffer b = first == last ? net::const_buffer() : net::const_buffer(*first);
        const std::string_view text(static_cast<const char*>(b.data()), b.size());
        const std::size_t at = text.find("\r\n", scanned);
        if (at != std::string_view::npos) {
          end = at + 2;
          out.sum += byte_sum(static_cast<const unsigned char*>(b.data()), end);
        } else {
          scanned = text.size() == 0 ? 0 : text.size() - 1;
        }
      } else {
        const auto begin = net::buffers_begin(seq);
        const auto stop = net::buffers_end(seq);
        static constexpr char kDelim[] = {'\r', '\n'};
        const auto it = std::search(begin + static_cast<std::ptrdiff_t>(scanned), stop, kDelim, kDelim + 2);
        if (it != stop) {
          end = static_cast<std::size_t>(it - begin) + 2;
          std::size_t left = end;
          for (auto b = first; b != last && left != 0; ++b) {
            const net::const_buffer piece(*b);
            const std::size_t take = std::min(left, piece.size());
            out.sum += byte_sum(static_cast<const unsigned char*>(piece.data()), take);
            left -= take;
          }
        } else {
          const auto total = static_cast<std::size_t>(stop - begin);
          scanned = total == 0 ? 0 : total - 1;
        }
      }
      if (end == std::string_view::npos) break;
      consume(end);
      scanned = 0;
      ++out.messages;
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// v2 dynamic buffers: grow, then write into data(size - n, n).
template <class Dyn>
Outcome run_v2(const std::string& wire, Dyn buf) {
  return read_messages(
      wire,
      [&](const char* src, std::size_t n) {
        buf.grow(n);
        net::buffer_copy(buf.data(buf.size() - n, n), net::buffer(src, n));
      },
      [&] { return std::as_const(buf).data(0, buf.size()); }, [&](std::size_t n) { buf.consume(n); });
}

// v1 dynamic buffers (Beast): prepare, copy, commit.
template <class Buf>
Outcome run_v1(const std::string& wire, Buf& buf) {
  return read_messages(
      wire,
      [&](const char* src, std::size_t n) {
        net::buffer_copy(buf.prepare(n), net::buffer(src, n));
        buf.commit(n);
      },
      [&] { return buf.cdata(); }, [&](std::size_t n) { buf.consume(n); });
}

// A stream of messages of `size` bytes each, the last two "\r\n", the rest printable letters.
std::string make_wire(std::size_t size, std::size_t total) {
  std::mt19937 rng(42);
  std::string wire;
  wire.reserve(total + size);
  while (wire.size() < total) {
    for (std::size_t i = 0; i + 2 < size; ++i) wire.push_back(static_cast<char>('a' + rng() % 26));
    wire += "\r\n";
  }
  return wire;
}

struct Contender {
  const char* name;
  std::function<Outcome(const std::string&, std::size_t limit)> run;
};

// The buffers that keep their memory are touched before the timed loop (the ring's by
// Residency::populate, the string's and flat_buffer's by writing their whole limit once), so none
// of them pays first-touch page faults in it. multi_buffer allocates and frees blocks as data
// comes and goes, so warming one block up would change what it is: it runs as created.
template <class V1>
void prefault_v1(V1& b, std::size_t limit) {
  const auto seq = b.prepare(limit);
  for (auto it = net::buffer_sequence_begin(seq); it != net::buffer_sequence_end(seq); ++it) {
    const net::mutable_buffer piece(*it);
    std::memset(piece.data(), 0, piece.size());
  }
  b.commit(0);
}

std::vector<Contender> contenders() {
  return {
      {"picoring",
       [](const std::string& w, std::size_t limit) {
         picoring::PicoByteStream s(limit, picoring::MirrorOptions{.residency = picoring::Residency::populate});
         return run_v2(w, picoring::dynamic_buffer(s));
       }},
      {"string",
       [](const std::string& w, std::size_t limit) {
         std::string s(limit, '\0');
         s.clear();  // the capacity stays, touched
         return run_v2(w, net::dynamic_buffer(s, limit));
       }},
      {"flat_buffer",
       [](const std::string& w, std::size_t limit) {
         beast::flat_buffer b(limit);
         prefault_v1(b, limit);
         return run_v1(w, b);
       }},
      {"multi_buffer",
       [](const std::string& w, std::size_t limit) {
         beast::multi_buffer b(limit);  // allocates and frees blocks as it goes: not warmed
         return run_v1(w, b);
       }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  picoring_bench::RunOptions options{7, 32};
  if (!picoring_bench::parse_run_options(argc, argv, "--mib", 4096, {1, 1}, options)) return 2;
  const auto runs = static_cast<int>(options.runs);
  const auto mib = static_cast<std::size_t>(options.amount);
  picoring_bench::pin_this_thread(0);
  const auto cs = contenders();
  std::printf(
      "\n### Asio dynamic buffers: read %zu KiB, find \"\\r\\n\", sum the message, consume (%zu MiB per run, "
      "median of %d)\n\n",
      kReadSize >> 10, mib, runs);
  std::printf("| message | picoring M msg/s | GB/s |");
  for (std::size_t k = 1; k < cs.size(); ++k) std::printf(" speed-up vs %s |", cs[k].name);
  std::printf(" data() calls split in several buffers (");
  for (std::size_t k = 0; k < cs.size(); ++k) std::printf("%s%s", k == 0 ? "" : ", ", cs[k].name);
  std::printf(") |\n|---|---:|---:|");
  for (std::size_t k = 1; k < cs.size(); ++k) std::printf("---:|");
  std::printf("---|\n");
  int failures = 0;
  for (const std::size_t size : {std::size_t{64}, std::size_t{1024}, std::size_t{16384}, std::size_t{65536}}) {
    const std::string wire = make_wire(size, mib << 20);
    std::vector<Outcome> seen(cs.size());
    const auto rounds = picoring_bench::rotated_rounds(runs, cs.size(), [&](std::size_t k) {
      seen[k] = cs[k].run(wire, buffer_bytes(size));
      return seen[k].seconds;
    });
    const auto& secs = rounds.seconds;
    const auto& ratio = rounds.ratio_to_first;
    for (std::size_t k = 1; k < cs.size(); ++k) {
      if (seen[k].messages != seen[0].messages || seen[k].sum != seen[0].sum) {
        std::fprintf(stderr, "%s and picoring disagree at %zu B messages\n", cs[k].name, size);
        ++failures;
      }
    }
    const double t0 = picoring_bench::median(secs[0]);
    std::printf("| %zu B | %.2f | %.2f |", size, static_cast<double>(seen[0].messages) / t0 / 1e6,
                static_cast<double>(wire.size()) / t0 / 1e9);
    for (std::size_t k = 1; k < cs.size(); ++k) std::printf(" %.2fx |", picoring_bench::median(ratio[k]));
    std::printf(" ");
    for (std::size_t k = 0; k < cs.size(); ++k) {
      std::printf("%s%.1f%%", k == 0 ? "" : " / ",
                  100.0 * static_cast<double>(seen[k].split_calls) / static_cast<double>(seen[k].data_calls));
    }
    std::printf(" |\n");
  }
  std::printf("\nSpeed-up: the contender's time / picoring's, within each round (above 1: picoring is faster).\n");
  return failures == 0 ? 0 : 1;
}
