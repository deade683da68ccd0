// Message passing: a producer thread generates telemetry records straight into the queue's
// memory (reserve/commit, no staging copy); a consumer thread processes them in contiguous
// batches (peek/release) - one span per batch even when it wraps the end of the ring - and
// checks every record. Prints throughput; exits non-zero on any mismatch.
//
//   message_passing [RECORDS]   (exit 2 on a usage error)
#include <picoring/spsc.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

struct Record {
  std::uint64_t seq;
  std::uint32_t sensor;
  float value;
};
static_assert(picoring::mirror_safe<Record>);

constexpr std::uint32_t kSensors = 8;

float value_of(std::uint64_t seq) { return static_cast<float>(seq % 1000) * 0.5f; }

// Digits only, 1 to 10^12: "abc", "-5", "12x" or "" are usage errors, not 0 records.
bool parse_count(const char* text, std::uint64_t& out) {
  constexpr std::uint64_t kMax = 1'000'000'000'000;
  std::uint64_t v = 0;
  if (*text == '\0') return false;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9' || v > kMax / 10) return false;
    v = v * 10 + static_cast<std::uint64_t>(*p - '0');
  }
  if (v == 0 || v > kMax) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t total = 20'000'000;
  if (argc > 2 || (argc == 2 && !parse_count(argv[1], total))) {
    std::fprintf(stderr, "usage: message_passing [RECORDS]   (a whole number, 1 to 10^12; default 20000000)\n");
    return 2;
  }
  auto [producer, consumer] = picoring::make_spsc<Record>(16384);
  const auto t0 = std::chrono::steady_clock::now();

  std::thread writer([&producer = producer, total] {
    std::uint64_t seq = 0;
    while (seq < total) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(256, total - seq));
      auto slots = producer.reserve(want);
      if (slots.empty()) {
        // Full: block until the consumer frees a slot (push_wait parks instead of spinning).
        if (producer.push_wait(Record{seq, static_cast<std::uint32_t>(seq % kSensors), value_of(seq)},
                               std::chrono::seconds(10)) != picoring::QueueStatus::ok) {
          // Stop here; closing tells the consumer, which then reports the shortfall.
          std::fprintf(stderr, "producer: queue closed or stuck\n");
          producer.close();
          return;
        }
        ++seq;
        continue;
      }
      for (auto& r : slots) {
        r = Record{seq, static_cast<std::uint32_t>(seq % kSensors), value_of(seq)};
        ++seq;
      }
      producer.commit(slots.size());
    }
    producer.close();
  });

  std::array<double, kSensors> sums{};
  std::uint64_t expected = 0;
  std::uint64_t batches = 0;
  bool ok = true;
  while (consumer.wait(std::chrono::seconds(10)) == picoring::QueueStatus::ok) {
    const auto batch = consumer.peek();  // contiguous, wrapped or not
    for (const Record& r : batch) {
      if (r.seq != expected || r.sensor != expected % kSensors || r.value != value_of(expected)) ok = false;
      sums[r.sensor] += static_cast<double>(r.value);
      ++expected;
    }
    consumer.release(batch.size());
    ++batches;
  }
  writer.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Independent check: the same sums computed directly.
  std::array<double, kSensors> direct{};
  for (std::uint64_t s = 0; s < total; ++s) direct[s % kSensors] += static_cast<double>(value_of(s));
  if (expected != total || sums != direct) ok = false;

  std::printf("message_passing: %llu records in %llu batches, %.1f M records/s (%.0f MB/s), %s\n",
              static_cast<unsigned long long>(expected), static_cast<unsigned long long>(batches),
              static_cast<double>(expected) / seconds / 1e6,
              static_cast<double>(expected * sizeof(Record)) / seconds / 1e6, ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
