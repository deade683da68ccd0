// Log analysis: per-minute request and 5xx counts, and the error rate over a sliding window of
// the last N minutes, over an Apache "combined" access log read in chunks through a mirrored
// byte stream. read() fills the stream's writable window directly; lines are parsed, and a
// substring is searched (Boyer-Moore-Horspool over many lines at once), directly in the
// readable window, which stays one contiguous range where a line straddles the end of the ring.
//
//   log_window --generate LINES FILE [--seed S]      write a deterministic test log
//   log_window FILE [--window MINUTES] [--pattern TEXT] [--minutes OUT.txt] [--ring BYTES]
//
// OUT.txt gets one line per minute, in log order:
//   <dd/Mon/yyyy:hh:mm> <requests> <5xx> <requests in window> <5xx in window>
// Prints one summary line (with MB/s); exits non-zero on a malformed line or an I/O error.
#include <fcntl.h>
#include <unistd.h>

#include <picoring/byte_stream.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <string_view>

namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3u : 9u)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

int generate(std::size_t lines, const char* path, unsigned seed) {
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) {
    std::perror("log_window: generate");
    return 1;
  }
  std::mt19937 rng(seed);
  auto roll_below = [&rng](unsigned n) { return static_cast<unsigned>(rng() % n); };
  const char* paths[] = {"/", "/index.html", "/api/orders", "/api/users/42", "/static/app.js", "/img/logo.png"};
  const char* agents[] = {"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0", "curl/7.88.1",
                          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15"};
  // 2026-11-26 00:00:00 UTC, advancing 0-399 ms per line: every minute has lines.
  std::int64_t ms = days_from_civil(2026, 11, 26) * 86400000;
  for (std::size_t i = 0; i < lines; ++i) {
    ms += roll_below(400);
    const std::int64_t secs = ms / 1000;
    const std::int64_t day = secs / 86400;
    // Back from days to a date: only November/December 2026 occur for sensible line counts.
    std::int64_t y = 2026;
    unsigned mo = 11, d = static_cast<unsigned>(day - days_from_civil(2026, 11, 1) + 1);
    if (d > 30) {
      mo = 12;
      d -= 30;
    }
    const auto hh = static_cast<int>(secs / 3600 % 24), mm = static_cast<int>(secs / 60 % 60),
               ss = static_cast<int>(secs % 60);
    // Errors come in bursts: some minutes are bad (a third of the requests fail), most are not.
    const bool bad_minute = (secs / 60) % 17 == 3 || (secs / 60) % 29 == 11;
    int status = 200;
    const unsigned roll = roll_below(1000);
    if (bad_minute ? roll < 330 : roll < 8) {
      status = 500 + static_cast<int>(roll_below(4));
    } else if (roll > 960) {
      status = 404;
    } else if (roll > 930) {
      status = 304;
    }
    const bool post = roll_below(10) == 0;
    std::fprintf(f, "10.%u.%u.%u - - [%02u/%s/%lld:%02d:%02d:%02d +0000] \"%s %s HTTP/1.1\" %d %u \"-\" \"%s\"\n",
                 roll_below(256), roll_below(256), roll_below(256), d, kMonths[mo - 1], static_cast<long long>(y), hh,
                 mm, ss, post ? "POST" : "GET", paths[roll_below(6)], status, roll_below(50000), agents[roll_below(3)]);
  }
  return std::fclose(f) == 0 ? 0 : 1;
}

struct Minute {
  std::int64_t index = -1;  // minutes since the epoch
  std::string label;        // dd/Mon/yyyy:hh:mm, as in the log
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
};

// Parses "[dd/Mon/yyyy:hh:mm:ss" at `p` into minutes since the epoch; -1 if malformed.
std::int64_t minute_of(std::string_view t) {
  if (t.size() < 18 || t[0] != '[' || t[3] != '/' || t[7] != '/' || t[12] != ':' || t[15] != ':') return -1;
  auto num = [&](std::size_t at, std::size_t n) {
    std::int64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (t[at + i] < '0' || t[at + i] > '9') return std::int64_t{-1};
      v = v * 10 + (t[at + i] - '0');
    }
    return v;
  };
  unsigned month = 0;
  for (unsigned m = 0; m < 12; ++m)
    if (t.substr(4, 3) == kMonths[m]) month = m + 1;
  const std::int64_t d = num(1, 2), y = num(8, 4), h = num(13, 2), mi = num(16, 2);
  if (month == 0 || d < 1 || y < 0 || h < 0 || mi < 0) return -1;
  return days_from_civil(y, month, static_cast<unsigned>(d)) * 1440 + h * 60 + mi;
}

class Analyzer {
 public:
  Analyzer(std::size_t window_minutes, FILE* out) : window_(window_minutes), out_(out) {}

  // One complete line, without its '\n'. Returns false if it is not a combined-format line.
  bool line(std::string_view l) {
    const std::size_t lb = l.find('[');
    const std::size_t q1 = l.find('"');
    if (lb == std::string_view::npos || q1 == std::string_view::npos) return false;
    const std::int64_t minute = minute_of(l.substr(lb));
    const std::size_t q2 = l.find('"', q1 + 1);  // end of the request line
    if (minute < 0 || q2 == std::string_view::npos || q2 + 5 > l.size()) return false;
    const char s = l[q2 + 2];  // the status code's first digit
    if (s < '1' || s > '5') return false;
    if (minute != current_.index) {
      if (current_.index >= 0 && minute < current_.index) return false;  // logs are in time order
      flush();
      current_ = {minute, std::string(l.substr(lb + 1, 17)), 0, 0};
    }
    ++current_.requests;
    if (s == '5') ++current_.errors;
    return true;
  }

  void finish() { flush(); }
  std::uint64_t minutes() const { return minutes_; }
  double worst_rate() const { return worst_rate_; }
  const std::string& worst_label() const { return worst_label_; }

 private:
  // Closes the current minute: slides the window (minutes older than N are dropped by time,
  // so a gap in the log empties the window as it should) and writes the minute's line.
  void flush() {
    if (current_.index < 0) return;
    history_.push_back(current_);
    win_requests_ += current_.requests;
    win_errors_ += current_.errors;
    while (history_.front().index <= current_.index - static_cast<std::int64_t>(window_)) {
      win_requests_ -= history_.front().requests;
      win_errors_ -= history_.front().errors;
      history_.pop_front();
    }
    const double rate = static_cast<double>(win_errors_) / static_cast<double>(win_requests_);
    if (rate > worst_rate_) {
      worst_rate_ = rate;
      worst_label_ = current_.label;
    }
    if (out_ != nullptr)
      std::fprintf(out_, "%s %llu %llu %llu %llu\n", current_.label.c_str(),
                   static_cast<unsigned long long>(current_.requests), static_cast<unsigned long long>(current_.errors),
                   static_cast<unsigned long long>(win_requests_), static_cast<unsigned long long>(win_errors_));
    ++minutes_;
  }

  std::size_t window_;
  FILE* out_;
  Minute current_;
  std::deque<Minute> history_;
  std::uint64_t win_requests_ = 0, win_errors_ = 0, minutes_ = 0;
  double worst_rate_ = 0;
  std::string worst_label_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string_view(argv[1]) == "--generate") {
    const unsigned seed =
        argc >= 6 && std::string_view(argv[4]) == "--seed" ? static_cast<unsigned>(std::atoi(argv[5])) : 1;
    return generate(std::strtoull(argv[2], nullptr, 10), argv[3], seed);
  }
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: log_window FILE [--window MIN] [--pattern TEXT] [--minutes OUT] [--ring BYTES]\n"
                 "       log_window --generate LINES FILE [--seed S]\n");
    return 2;
  }
  std::size_t window = 5;
  std::size_t ring_bytes = std::size_t{64} * 1024;
  std::string pattern = "POST /api/";
  const char* minutes_path = nullptr;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--window") {
      window = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (a == "--pattern") {
      pattern = argv[i + 1];
    } else if (a == "--minutes") {
      minutes_path = argv[i + 1];
    } else if (a == "--ring") {
      ring_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "log_window: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (window == 0 || pattern.empty()) {
    std::fprintf(stderr, "log_window: --window must be positive and --pattern non-empty\n");
    return 2;
  }
  const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror("log_window: open");
    return 1;
  }
  FILE* out = minutes_path != nullptr ? std::fopen(minutes_path, "w") : nullptr;
  if (minutes_path != nullptr && out == nullptr) {
    std::perror("log_window: --minutes");
    return 1;
  }

  picoring::PicoByteStream stream(ring_bytes);
  Analyzer analyzer(window, out);
  const std::boyer_moore_horspool_searcher search(pattern.begin(), pattern.end());
  std::uint64_t bytes = 0, lines = 0, matching_lines = 0;
  std::mt19937 rng(3);
  const auto t0 = std::chrono::steady_clock::now();
  for (bool eof = false; !eof;) {
    // Chunks of varying size, read straight into the ring.
    auto space = stream.writable();
    const std::size_t want = std::min<std::size_t>(space.size(), 1 + rng() % stream.capacity());
    const ssize_t n = ::read(fd, space.data(), want);
    if (n < 0) {
      std::perror("log_window: read");
      return 1;
    }
    eof = n == 0;
    stream.commit(static_cast<std::size_t>(n));
    bytes += static_cast<std::uint64_t>(n);

    // Every complete line now readable, as one range.
    const std::string_view data = stream.readable_view();
    const std::size_t end = eof ? data.size() : data.rfind('\n') + 1;  // rfind npos + 1 == 0
    if (end == 0 && stream.available_to_write() == 0) {
      std::fprintf(stderr, "log_window: a line is longer than the ring (%zu bytes)\n", stream.capacity());
      return 1;
    }
    const std::string_view complete = data.substr(0, end);
    // Pattern: one search over all these lines; each hit counts its line once.
    for (auto it = complete.begin();;) {
      it = std::search(it, complete.end(), search);
      if (it == complete.end()) break;
      ++matching_lines;
      const std::size_t at = static_cast<std::size_t>(it - complete.begin());
      const std::size_t eol = complete.find('\n', at);
      if (eol == std::string_view::npos) break;
      it = complete.begin() + static_cast<std::ptrdiff_t>(eol + 1);
    }
    for (std::size_t pos = 0; pos < complete.size();) {
      std::size_t eol = complete.find('\n', pos);
      if (eol == std::string_view::npos) eol = complete.size();
      if (eol > pos && !analyzer.line(complete.substr(pos, eol - pos))) {
        std::fprintf(stderr, "log_window: line %llu is not in combined format or out of order\n",
                     static_cast<unsigned long long>(lines) + 1);
        return 1;
      }
      if (eol > pos) ++lines;
      pos = eol + 1;
    }
    stream.release(end);
  }
  analyzer.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  if (out != nullptr) std::fclose(out);
  std::printf(
      "logs: %llu lines, %.1f MB in %.3f s = %.0f MB/s; %llu minutes, worst %zu-minute 5xx rate %.1f%% (window "
      "ending %s); %llu lines contain \"%s\"; ring of %zu bytes wrapped %llu times\n",
      static_cast<unsigned long long>(lines), static_cast<double>(bytes) / 1e6, seconds,
      static_cast<double>(bytes) / 1e6 / seconds, static_cast<unsigned long long>(analyzer.minutes()), window,
      100 * analyzer.worst_rate(), analyzer.worst_label().c_str(), static_cast<unsigned long long>(matching_lines),
      pattern.c_str(), stream.capacity(), static_cast<unsigned long long>(bytes / stream.capacity()));
  return 0;
}
