// Audio processing: a WAV file streamed through a mirrored ring in blocks of varying size, with
// DSP that needs overlapping contiguous windows:
//   - framed RMS and peak (frame 1024 samples, hop 256: each sample is in four frames),
//   - a 63-tap low-pass FIR filter, whose every output reads the 62 samples before it.
// libsndfile reads straight into the ring's writable window, and every frame and every FIR
// input is a plain pointer range into the ring, also where it wraps the end: no reassembly
// copy, no index arithmetic modulo the capacity.
//
//   audio_frames IN.wav [--frames FRAMES.txt] [--filtered OUT.wav] [--stats] [--verify]
//
// --stats prints whole-file figures in the units of `sox IN.wav -n stats` (the test compares).
// --verify recomputes every frame and every filtered sample from the whole file loaded into a
// plain array (no ring) and exits 1 on any difference.
// Prints one summary line; exits 2 on a usage error, 1 on an I/O error or a mismatch. A file
// whose header promises more audio than it holds (a truncated recording) is analysed as far
// as it goes, with a warning, as sox does; a file without samples is reported as such.
#include <sndfile.h>
#include <picoring/ring.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t kFrame = 1024;
constexpr std::size_t kHop = 256;
constexpr std::size_t kTaps = 63;
constexpr std::size_t kHistory = kTaps - 1;
// Small on purpose: 4096 samples (16 KiB, four pages) so a few seconds of audio wrap it dozens
// of times. Blocks of up to kMaxBlock samples are read at a time.
constexpr std::size_t kRingSamples = 4096;
constexpr std::size_t kMaxBlock = 1500;

struct FrameResult {
  double rms;
  float peak;
};

// Windowed-sinc low-pass at a quarter of the sample rate (Hamming window), normalised to unit
// gain at DC.
std::vector<float> low_pass_taps() {
  std::vector<double> h(kTaps);
  const double cutoff = 0.25;  // of the sample rate
  const double mid = static_cast<double>(kTaps - 1) / 2;
  double sum = 0;
  for (std::size_t i = 0; i < kTaps; ++i) {
    const double x = static_cast<double>(i) - mid;
    const double sinc = x == 0 ? 2 * cutoff : std::sin(2 * std::numbers::pi * cutoff * x) / (std::numbers::pi * x);
    const double window = 0.54 - 0.46 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / (kTaps - 1));
    h[i] = sinc * window;
    sum += h[i];
  }
  std::vector<float> taps(kTaps);
  for (std::size_t i = 0; i < kTaps; ++i) taps[i] = static_cast<float>(h[i] / sum);
  return taps;
}

// Both the ring path and the reference use these two functions on a pointer range, so any
// difference comes from the data the ring handed over, not from arithmetic order.
FrameResult frame_of(const float* x) {
  double sq = 0;
  float peak = 0;
  for (std::size_t i = 0; i < kFrame; ++i) {
    sq += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    peak = std::max(peak, std::fabs(x[i]));
  }
  return {std::sqrt(sq / kFrame), peak};
}
// y[n] = sum_k h[k] x[n - k], with `x` pointing at x[n - (kTaps - 1)].
float fir_at(const float* x, const std::vector<float>& h) {
  double acc = 0;
  for (std::size_t k = 0; k < kTaps; ++k) acc += static_cast<double>(h[k]) * static_cast<double>(x[kHistory - k]);
  return static_cast<float>(acc);
}

struct Stats {
  std::size_t samples = 0;
  double sum = 0;
  double sum_sq = 0;
  float min = 0;
  float max = 0;
  void add(std::span<const float> block) {
    for (float v : block) {
      if (samples == 0 || v < min) min = v;
      if (samples == 0 || v > max) max = v;
      sum += static_cast<double>(v);
      sum_sq += static_cast<double>(v) * static_cast<double>(v);
      ++samples;
    }
  }
};

struct Output {
  std::vector<FrameResult> frames;
  std::vector<float> filtered;
  Stats stats;
  std::size_t laps = 0;
};

// Block sizes vary (1 .. kMaxBlock samples) so frames and reads never line up with the wrap.
struct BlockSizes {
  unsigned state = 12345;
  std::size_t next() {
    state = state * 1103515245u + 12345u;
    return 1 + (state >> 8) % kMaxBlock;
  }
};

Output process_through_ring(SNDFILE* file, const std::vector<float>& taps) {
  Output out;
  picoring::PicoRing<float> ring(kRingSamples);
  // The FIR's history before the first sample is silence (as for any causal filter).
  std::fill_n(ring.writable_slice().data(), kHistory, 0.0f);
  ring.commit(kHistory);
  std::size_t next_frame_start = 0;  // absolute sample index of the next frame
  std::size_t first_kept = 0;        // absolute index of the ring's oldest sample + kHistory
  BlockSizes sizes;
  bool eof = false;
  while (!eof) {
    // Read straight into the ring: the writable window is one span even when it wraps.
    const auto space = ring.writable_slice();
    const std::size_t want = std::min(space.size(), sizes.next());
    const auto got = static_cast<std::size_t>(sf_readf_float(file, space.data(), static_cast<sf_count_t>(want)));
    out.stats.add(space.first(got));
    ring.commit(got);
    eof = got == 0;
    // Every complete frame now in the ring, and the filtered output of its first hop.
    const std::size_t available_end = first_kept + ring.size() - kHistory;  // absolute end
    while (next_frame_start + kFrame <= available_end) {
      const float* window = ring.readable_slice().data() + kHistory + (next_frame_start - first_kept);
      out.frames.push_back(frame_of(window));
      next_frame_start += kHop;
    }
    // Filter every sample whose frame hop has passed (or all of them at the end), then drop
    // what no later frame or filter output needs.
    const std::size_t filter_end = eof ? available_end : std::min(available_end, next_frame_start);
    const float* base = ring.readable_slice().data();
    for (std::size_t n = out.filtered.size(); n < filter_end; ++n)
      out.filtered.push_back(fir_at(base + (n - first_kept), taps));
    const std::size_t drop = std::min(next_frame_start, filter_end) - first_kept;
    ring.release(drop);
    first_kept += drop;
  }
  out.laps = first_kept / ring.capacity();  // every sample dropped so far, the history included
  return out;
}

struct Reference {
  std::vector<FrameResult> frames;
  std::vector<float> filtered;
};

Reference process_whole_array(const std::vector<float>& samples, const std::vector<float>& taps) {
  Reference ref;
  for (std::size_t s = 0; s + kFrame <= samples.size(); s += kHop) ref.frames.push_back(frame_of(samples.data() + s));
  std::vector<float> padded(kHistory, 0.0f);
  padded.insert(padded.end(), samples.begin(), samples.end());
  for (std::size_t n = 0; n < samples.size(); ++n) ref.filtered.push_back(fir_at(padded.data() + n, taps));
  return ref;
}

double db(double v) { return 20 * std::log10(v); }

// libsndfile opens a truncated WAV without an error, but its parse log says so: the data
// chunk's line reads "data : <header's size> (should be <what the file holds>)".
bool truncated(SNDFILE* file) {
  std::string log(16384, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  const std::string_view text(log.c_str());
  const std::size_t data = text.find("\ndata : ");
  if (data == std::string_view::npos) return false;
  const std::size_t eol = text.find('\n', data + 1);
  return text.substr(data, eol - data).find("(should be") != std::string_view::npos;
}

bool write_frames(const std::string& path, const std::vector<FrameResult>& frames) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = true;
  for (std::size_t i = 0; i < frames.size() && ok; ++i)
    ok = std::fprintf(f, "%zu %.9f %.9f\n", i * kHop, frames[i].rms, static_cast<double>(frames[i].peak)) > 0;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr const char* kUsage =
      "usage: audio_frames IN.wav [--frames F.txt] [--filtered OUT.wav] [--stats] [--verify]\n";
  if (argc < 2 || argv[1][0] == '-') {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string in_path = argv[1];
  std::string frames_path, filtered_path;
  bool print_stats = false, verify = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--frames" || a == "--filtered") && (i + 1 >= argc || argv[i + 1][0] == '\0')) {
      std::fprintf(stderr, "audio_frames: %s needs a file name\n%s", a.c_str(), kUsage);
      return 2;
    }
    if (a == "--frames") {
      frames_path = argv[++i];
    } else if (a == "--filtered") {
      filtered_path = argv[++i];
    } else if (a == "--stats") {
      print_stats = true;
    } else if (a == "--verify") {
      verify = true;
    } else {
      std::fprintf(stderr, "audio_frames: unknown argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }

  SF_INFO info{};
  SNDFILE* file = sf_open(in_path.c_str(), SFM_READ, &info);
  if (file == nullptr) {
    std::fprintf(stderr, "audio_frames: cannot open %s: %s\n", in_path.c_str(), sf_strerror(nullptr));
    return 1;
  }
  if (info.channels != 1) {
    std::fprintf(stderr, "audio_frames: %s has %d channels; this example takes mono input\n", in_path.c_str(),
                 info.channels);
    sf_close(file);
    return 1;
  }
  const bool short_file = truncated(file);
  if (short_file)
    std::fprintf(stderr, "audio_frames: warning: %s is truncated (its header promises more audio than it holds)\n",
                 in_path.c_str());
  const auto taps = low_pass_taps();
  const auto t0 = std::chrono::steady_clock::now();
  const Output out = process_through_ring(file, taps);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sf_close(file);

  if (!frames_path.empty() && !write_frames(frames_path, out.frames)) {
    std::fprintf(stderr, "audio_frames: cannot write --frames %s: %s\n", frames_path.c_str(),
                 std::system_category().message(errno).c_str());
    return 1;
  }
  if (!filtered_path.empty()) {
    SF_INFO oi{};
    oi.samplerate = info.samplerate;
    oi.channels = 1;
    oi.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE* of = sf_open(filtered_path.c_str(), SFM_WRITE, &oi);
    if (of == nullptr) {
      std::fprintf(stderr, "audio_frames: cannot write --filtered %s: %s\n", filtered_path.c_str(),
                   sf_strerror(nullptr));
      return 1;
    }
    const auto written = sf_writef_float(of, out.filtered.data(), static_cast<sf_count_t>(out.filtered.size()));
    if (sf_close(of) != 0 || written != static_cast<sf_count_t>(out.filtered.size())) {
      std::fprintf(stderr, "audio_frames: writing --filtered %s failed\n", filtered_path.c_str());
      return 1;
    }
  }
  if (print_stats && out.stats.samples == 0) {
    std::printf("samples 0\n");  // no level or DC offset to speak of (sox prints none either)
  } else if (print_stats) {
    const double n = static_cast<double>(out.stats.samples);
    std::printf("samples %zu\ndc_offset %.6f\nmin_level %.6f\nmax_level %.6f\nrms_lev_db %.2f\n", out.stats.samples,
                out.stats.sum / n, static_cast<double>(out.stats.min), static_cast<double>(out.stats.max),
                db(std::sqrt(out.stats.sum_sq / n)));
  }

  int status = 0;
  // A truncated file's frame count is what the file holds, so this holds for it too.
  if (out.stats.samples != static_cast<std::size_t>(info.frames) || out.filtered.size() != out.stats.samples) {
    std::fprintf(stderr, "audio_frames: read %zu samples, filtered %zu, file has %lld\n", out.stats.samples,
                 out.filtered.size(), static_cast<long long>(info.frames));
    status = 1;
  }
  if (verify) {
    // The independent computation: the whole file in one array, frames and filter by index.
    SF_INFO vi{};
    SNDFILE* vf = sf_open(in_path.c_str(), SFM_READ, &vi);
    if (vf == nullptr) {
      std::fprintf(stderr, "audio_frames: cannot reopen %s: %s\n", in_path.c_str(), sf_strerror(nullptr));
      return 1;
    }
    std::vector<float> all(static_cast<std::size_t>(vi.frames));
    all.resize(static_cast<std::size_t>(sf_readf_float(vf, all.data(), vi.frames)));
    sf_close(vf);
    const Reference ref = process_whole_array(all, taps);
    std::size_t bad = 0;
    if (ref.frames.size() != out.frames.size()) ++bad;
    for (std::size_t i = 0; i < std::min(ref.frames.size(), out.frames.size()); ++i)
      if (ref.frames[i].rms != out.frames[i].rms || ref.frames[i].peak != out.frames[i].peak) ++bad;
    if (ref.filtered != out.filtered) ++bad;
    if (bad != 0) {
      std::fprintf(stderr, "audio_frames: %zu mismatches against the whole-array computation\n", bad);
      status = 1;
    }
  }
  const double audio_seconds = static_cast<double>(out.stats.samples) / info.samplerate;
  std::printf(
      "audio: %zu samples at %d Hz, %zu frames of %zu (hop %zu) + %zu-tap FIR, ring of %zu samples wrapped %zu "
      "times, %.0f frames/s, %.0fx realtime%s%s%s\n",
      out.stats.samples, info.samplerate, out.frames.size(), kFrame, kHop, kTaps, kRingSamples, out.laps,
      static_cast<double>(out.frames.size()) / seconds, audio_seconds / seconds,
      verify ? (status == 0 ? ", verified against the whole-array computation" : ", MISMATCH") : "",
      short_file ? " (truncated file)" : "", status == 0 ? "" : " (FAILED)");
  return status;
}
