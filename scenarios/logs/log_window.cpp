// Log analysis: per-minute request and 5xx counts, and the error rate over a sliding window of
// the last N minutes, over an Apache "combined" access log read in chunks through a mirrored
// byte stream. read() fills the stream's writable window directly; lines are parsed, and a
// substring is searched (Boyer-Moore-Horspool over many lines at once), directly in the
// readable window, which stays one contiguous range where a line straddles the end of the ring.
//
//   log_window --generate LINES FILE [--seed S]      write a deterministic test log
//   log_window FILE [--window MINUTES] [--late MINUTES] [--pattern TEXT] [--minutes OUT.txt]
//              [--ring BYTES]
//
// OUT.txt gets one line per minute, in time order:
//   <dd/Mon/yyyy:hh:mm> <requests> <5xx> <requests in window> <5xx in window>
// Lines may arrive up to --late minutes out of order (Apache logs in completion order); older
// ones are counted as too late. A malformed line, or one longer than the ring, is skipped and
// counted, never the end of the analysis. Prints one summary line (with MB/s and those counts).
// Exits 2 on a usage error, 1 on an I/O error or when no line at all is in combined format.
#include <fcntl.h>
#include <unistd.h>

#include <picoring/byte_stream.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

namespace {

constexpr std::uint64_t kMaxMinutes = 366ULL * 24 * 60;  // a year of minutes
constexpr std::uint64_t kMaxRing = 1ULL << 30;

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

// Parses "[dd/Mon/yyyy:hh:mm:ss" at the start of `t` into minutes since the epoch; -1 if malformed.
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
  if (month == 0 || d < 1 || d > 31 || y < 0 || h < 0 || h > 23 || mi < 0 || mi > 59) return -1;
  return days_from_civil(y, month, static_cast<unsigned>(d)) * 1440 + h * 60 + mi;
}

struct Request {
  std::int64_t minute;
  std::string_view label;  // dd/Mon/yyyy:hh:mm
  bool server_error;       // a 5xx status
};

// One line of Apache's combined format:
//   host ident user [dd/Mon/yyyy:hh:mm:ss zone] "request line" status bytes "referer" "agent"
// Apache escapes '"' and '\' inside the quoted fields as \" and \\ (and control bytes as \xhh),
// so the request line ends at the first quote that is not escaped.
std::optional<Request> parse_combined(std::string_view l) {
  const std::size_t lb = l.find('[');
  if (lb == std::string_view::npos) return std::nullopt;
  const std::int64_t minute = minute_of(l.substr(lb));
  const std::size_t rb = l.find(']', lb);
  if (minute < 0 || rb == std::string_view::npos || l.substr(rb, 3) != "] \"") return std::nullopt;
  std::size_t q2 = rb + 3;
  while (q2 < l.size() && l[q2] != '"') q2 += l[q2] == '\\' ? 2u : 1u;
  // After the request line: a space, three digits, then a space or the end of the line.
  if (q2 + 5 > l.size() || l[q2 + 1] != ' ') return std::nullopt;
  for (std::size_t i = q2 + 2; i < q2 + 5; ++i)
    if (l[i] < '0' || l[i] > '9') return std::nullopt;
  if (l[q2 + 2] < '1' || l[q2 + 2] > '5' || (q2 + 5 < l.size() && l[q2 + 5] != ' ')) return std::nullopt;
  return Request{minute, l.substr(lb + 1, 17), l[q2 + 2] == '5'};
}

// Per-minute counts and the sliding window over them. Apache writes a line when the request
// completes but stamps it with the time it arrived, so a slow request's line comes after lines
// stamped later. A minute therefore stays open until a line `late` minutes newer arrives;
// lines for a minute already closed are counted as too late and left out of the figures.
class Analyzer {
 public:
  Analyzer(std::size_t window_minutes, std::size_t late_minutes, FILE* out)
      : window_(static_cast<std::int64_t>(window_minutes)), late_(static_cast<std::int64_t>(late_minutes)), out_(out) {}

  void add(const Request& r) {
    if (r.minute <= closed_) {
      ++too_late_;
      return;
    }
    if (r.minute < newest_) ++out_of_order_;
    Minute& m = open_[r.minute];
    if (m.requests == 0) {
      m.index = r.minute;
      m.label = std::string(r.label);
    }
    ++m.requests;
    if (r.server_error) ++m.errors;
    if (r.minute > newest_) {
      newest_ = r.minute;
      while (!open_.empty() && open_.begin()->first < newest_ - late_) close_oldest();
    }
  }

  void finish() {
    while (!open_.empty()) close_oldest();
  }
  std::uint64_t minutes() const { return minutes_; }
  std::uint64_t out_of_order() const { return out_of_order_; }
  std::uint64_t too_late() const { return too_late_; }
  double worst_rate() const { return worst_rate_; }
  const std::string& worst_label() const { return worst_label_; }

 private:
  // Closes the oldest open minute: slides the window (minutes older than N are dropped by
  // time, so a gap in the log empties the window as it should) and writes the minute's line.
  void close_oldest() {
    const Minute m = std::move(open_.begin()->second);
    open_.erase(open_.begin());
    closed_ = m.index;
    history_.push_back(m);
    win_requests_ += m.requests;
    win_errors_ += m.errors;
    // The minute just closed is never dropped (window_ >= 1), so history_ is never empty here.
    while (history_.front().index <= m.index - window_) {
      win_requests_ -= history_.front().requests;
      win_errors_ -= history_.front().errors;
      history_.pop_front();
    }
    const double rate = static_cast<double>(win_errors_) / static_cast<double>(win_requests_);
    if (rate > worst_rate_) {
      worst_rate_ = rate;
      worst_label_ = m.label;
    }
    if (out_ != nullptr)
      std::fprintf(out_, "%s %llu %llu %llu %llu\n", m.label.c_str(), static_cast<unsigned long long>(m.requests),
                   static_cast<unsigned long long>(m.errors), static_cast<unsigned long long>(win_requests_),
                   static_cast<unsigned long long>(win_errors_));
    ++minutes_;
  }

  std::int64_t window_, late_;
  FILE* out_;
  std::map<std::int64_t, Minute> open_;
  std::int64_t closed_ = std::numeric_limits<std::int64_t>::min();  // the last minute written
  std::int64_t newest_ = std::numeric_limits<std::int64_t>::min();
  std::deque<Minute> history_;
  std::uint64_t win_requests_ = 0, win_errors_ = 0, minutes_ = 0, out_of_order_ = 0, too_late_ = 0;
  double worst_rate_ = 0;
  std::string worst_label_;
};

// A whole decimal number in [lo, hi], nothing else (no sign, no suffix, no overflow).
bool parse_count(const char* text, std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) {
  std::uint64_t v = 0;
  if (*text == '\0') return false;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    const auto digit = static_cast<std::uint64_t>(*p - '0');
    if (v > (hi - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (v < lo) return false;
  out = v;
  return true;
}

int usage() {
  std::fprintf(stderr,
               "usage: log_window FILE [--window MINUTES] [--late MINUTES] [--pattern TEXT] [--minutes OUT]\n"
               "                       [--ring BYTES]\n"
               "       log_window --generate LINES FILE [--seed S]\n"
               "  --window  1..%llu (default 5)   --late  0..%llu (default 2)   --ring  1..%llu (default 65536)\n",
               static_cast<unsigned long long>(kMaxMinutes), static_cast<unsigned long long>(kMaxMinutes),
               static_cast<unsigned long long>(kMaxRing));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "--generate") {
    std::uint64_t lines = 0, seed = 1;
    const bool seeded = argc == 6 && std::string_view(argv[4]) == "--seed" &&
                        parse_count(argv[5], 0, std::numeric_limits<unsigned>::max(), seed);
    if ((argc != 4 && !seeded) || !parse_count(argv[2], 0, std::numeric_limits<std::uint64_t>::max(), lines))
      return usage();
    return generate(lines, argv[3], static_cast<unsigned>(seed));
  }
  if (argc < 2 || argv[1][0] == '-') return usage();
  std::uint64_t window = 5, late = 2, ring_bytes = std::uint64_t{64} * 1024;
  std::string pattern = "POST /api/";
  const char* minutes_path = nullptr;
  for (int i = 2; i < argc; i += 2) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "log_window: %s needs a value\n", argv[i]);
      return usage();
    }
    const char* v = argv[i + 1];
    bool ok = true;
    if (a == "--window") {
      ok = parse_count(v, 1, kMaxMinutes, window);
    } else if (a == "--late") {
      ok = parse_count(v, 0, kMaxMinutes, late);
    } else if (a == "--pattern") {
      pattern = v;
      ok = !pattern.empty();
    } else if (a == "--minutes") {
      minutes_path = v;
    } else if (a == "--ring") {
      ok = parse_count(v, 1, kMaxRing, ring_bytes);
    } else {
      std::fprintf(stderr, "log_window: unknown argument %s\n", argv[i]);
      return usage();
    }
    if (!ok) {
      std::fprintf(stderr, "log_window: bad value for %s: '%s'\n", argv[i], v);
      return usage();
    }
  }

  picoring::Error err;
  picoring::PicoByteStream stream(ring_bytes, err);
  if (err) {
    std::fprintf(stderr, "log_window: cannot create a %llu-byte ring: %s\n",
                 static_cast<unsigned long long>(ring_bytes), err.message().c_str());
    return 1;
  }
  const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "log_window: open %s: %s\n", argv[1], std::system_category().message(errno).c_str());
    return 1;
  }
  FILE* out = minutes_path != nullptr ? std::fopen(minutes_path, "w") : nullptr;
  if (minutes_path != nullptr && out == nullptr) {
    std::fprintf(stderr, "log_window: --minutes %s: %s\n", minutes_path, std::system_category().message(errno).c_str());
    return 1;
  }

  Analyzer analyzer(window, late, out);
  const std::boyer_moore_horspool_searcher search(pattern.begin(), pattern.end());
  std::uint64_t bytes = 0, lines = 0, matching_lines = 0, skipped = 0;
  auto skip = [&](const char* why) {
    if (++skipped <= 5)
      std::fprintf(stderr, "log_window: line %llu skipped: %s\n", static_cast<unsigned long long>(lines), why);
  };
  bool in_long_line = false;  // dropping the rest of a line longer than the ring
  std::mt19937 rng(3);
  const auto t0 = std::chrono::steady_clock::now();
  for (bool eof = false; !eof;) {
    // Chunks of varying size, read straight into the ring.
    auto space = stream.writable();
    const std::size_t want = std::min<std::size_t>(space.size(), 1 + rng() % stream.capacity());
    const ssize_t n = ::read(fd, space.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "log_window: read %s: %s\n", argv[1], std::system_category().message(errno).c_str());
      return 1;
    }
    eof = n == 0;
    stream.commit(static_cast<std::size_t>(n));
    bytes += static_cast<std::uint64_t>(n);

    // Every complete line now readable, as one range.
    const std::string_view data = stream.readable_view();
    std::size_t start = 0;
    if (in_long_line) {
      const std::size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        stream.release(data.size());
        continue;
      }
      start = nl + 1;
      in_long_line = false;
    }
    const std::size_t end = eof ? data.size() : data.rfind('\n') + 1;  // rfind npos + 1 == 0
    if (end <= start && stream.available_to_write() == 0) {
      // A line longer than the ring: skip it, not the analysis.
      ++lines;
      skip("longer than the ring (--ring)");
      in_long_line = true;
      stream.release(data.size());
      continue;
    }
    const std::string_view complete = data.substr(start, end > start ? end - start : 0);
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
      ++lines;
      if (const auto r = parse_combined(complete.substr(pos, eol - pos))) {
        analyzer.add(*r);
      } else {
        skip("not in combined format");
      }
      pos = eol + 1;
    }
    stream.release(std::max(end, start));
  }
  analyzer.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  if (out != nullptr && std::fclose(out) != 0) {
    std::fprintf(stderr, "log_window: --minutes %s: %s\n", minutes_path, std::system_category().message(errno).c_str());
    return 1;
  }
  std::string worst = "no 5xx responses";
  if (analyzer.worst_rate() > 0) {
    char text[128];
    std::snprintf(text, sizeof text, "worst %llu-minute 5xx rate %.1f%% (window ending %s)",
                  static_cast<unsigned long long>(window), 100 * analyzer.worst_rate(), analyzer.worst_label().c_str());
    worst = text;
  }
  std::printf(
      "logs: %llu lines, %.1f MB in %.3f s = %.0f MB/s; %llu minutes, %s; %llu lines contain \"%s\"; ring of %zu "
      "bytes wrapped %llu times; %llu lines out of order (counted), %llu too late (over --late %llu), %llu malformed\n",
      static_cast<unsigned long long>(lines), static_cast<double>(bytes) / 1e6, seconds,
      static_cast<double>(bytes) / 1e6 / seconds, static_cast<unsigned long long>(analyzer.minutes()), worst.c_str(),
      static_cast<unsigned long long>(matching_lines), pattern.c_str(), stream.capacity(),
      static_cast<unsigned long long>(bytes / stream.capacity()),
      static_cast<unsigned long long>(analyzer.out_of_order()), static_cast<unsigned long long>(analyzer.too_late()),
      static_cast<unsigned long long>(late), static_cast<unsigned long long>(skipped));
  // Every line unusable: this is not an access log in the combined format.
  if (lines > 0 && skipped == lines) {
    std::fprintf(stderr, "log_window: no line of %s is in combined format\n", argv[1]);
    return 1;
  }
  return 0;
}
