// Differential fuzzing of PicoByteStream against std::string, and of std::iostream over a
// ByteStreamBuf against std::stringstream: every read, peek, unget, putback, getline and write
// must return the same bytes and leave the same stream state.
#include <istream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "picoring/byte_stream.hpp"

namespace {

using picoring::ByteStreamBuf;
using picoring::PicoByteStream;

void run_stream(FuzzedDataProvider& in) {
  PicoByteStream s(in.ConsumeIntegralInRange<std::size_t>(1, 20000));
  std::string model;       // readable bytes
  std::string gone;        // released bytes, most recent last
  std::size_t intact = 0;  // released bytes still in memory, as the rule says
  auto released = [&](std::size_t n) {
    gone.append(model, 0, n);
    model.erase(0, n);
    if (gone.size() > s.capacity()) gone.erase(0, gone.size() - s.capacity());
    intact = std::min(intact + n, s.capacity());
  };
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {  // write as much as fits: input bytes, or a run long enough to fill the ring
        const std::string text =
            in.ConsumeBool()
                ? in.ConsumeRandomLengthString(300)
                : std::string(in.ConsumeIntegralInRange<std::size_t>(0, 2 * s.capacity()), in.ConsumeIntegral<char>());
        const std::size_t n = s.write(text);
        FUZZ_CHECK(n == std::min(text.size(), s.capacity() - model.size()));
        model.append(text, 0, n);
        intact = std::min(intact, s.capacity() - model.size());
        break;
      }
      case 1: {  // all or nothing
        const std::string text = in.ConsumeRandomLengthString(300);
        const bool fits = text.size() <= s.capacity() - model.size();
        try {
          s.write_all(text);
          FUZZ_CHECK(fits);
          model += text;
          intact = std::min(intact, s.capacity() - model.size());
        } catch (const std::length_error&) {
          FUZZ_CHECK(!fits);
        }
        break;
      }
      case 2: {  // read
        std::vector<char> out(in.ConsumeIntegralInRange<std::size_t>(0, in.ConsumeBool() ? 400 : 2 * s.capacity()));
        const std::size_t n = s.read(std::span<char>(out));
        FUZZ_CHECK(n == std::min(out.size(), model.size()));
        FUZZ_CHECK(model.compare(0, n, out.data(), n) == 0);
        released(n);
        break;
      }
      case 3: {  // fill writable() in place, commit a prefix (sometimes too much)
        auto w = s.writable();
        FUZZ_CHECK(w.size() == s.capacity() - model.size());
        intact = 0;  // writable() hands out the released bytes' memory
        const std::string text = in.ConsumeRandomLengthString(300);
        const std::size_t n = std::min(text.size(), w.size());
        std::memcpy(w.data(), text.data(), n);
        const std::size_t c = in.ConsumeBool() ? n : w.size() + 1;
        try {
          s.commit(c);
          FUZZ_CHECK(c <= w.size());
          model.append(text, 0, n);
          intact = std::min(intact, s.capacity() - model.size());
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(c > w.size());
        }
        break;
      }
      case 4: {  // release, sometimes too much
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, model.size() + 1);
        try {
          s.release(n);
          FUZZ_CHECK(n <= model.size());
          released(n);
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(n > model.size());
        }
        break;
      }
      case 5: {  // take back released bytes, sometimes more than are intact
        FUZZ_CHECK(s.releasable_back() == intact);
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, intact + 1);
        try {
          s.unrelease(n);
          FUZZ_CHECK(n <= intact);
          // The bytes taken back are the ones released last, unchanged (checked below against
          // the readable window).
          model.insert(0, gone, gone.size() - n, n);
          gone.erase(gone.size() - n);
          intact -= n;
        } catch (const std::out_of_range&) {
          FUZZ_CHECK(n > intact);
        }
        break;
      }
      case 6:
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
          s.clear();
          model.clear();
          gone.clear();
          intact = 0;
        }
        break;
      default:
        break;
    }
    FUZZ_CHECK(s.readable_view() == model);
    FUZZ_CHECK(s.available_to_write() == s.capacity() - model.size());
    FUZZ_CHECK(s.releasable_back() == intact);
  }
}

// The bytes taken back by unrelease() must be the ones released: run_stream checks that against
// the released bytes it keeps. The iostream run below checks
// ByteStreamBuf against std::stringstream, which never loses a read byte; ours may lose one to
// a write (the documented rule), so unget is tried only where releasable_back() says it holds.
void run_iostream(FuzzedDataProvider& in) {
  PicoByteStream ring(in.ConsumeIntegralInRange<std::size_t>(1, 9000));
  ByteStreamBuf buf(ring);
  std::iostream pico(&buf);
  std::stringstream model;
  std::size_t taken = 0;  // bytes read (get, getline...) since the start, in both
  auto same_state = [&] {
    FUZZ_CHECK(pico.good() == model.good());
    FUZZ_CHECK(pico.eof() == model.eof());
    FUZZ_CHECK(pico.fail() == model.fail());
    FUZZ_CHECK(pico.bad() == model.bad());
    pico.clear();
    model.clear();
  };
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0: {  // write what fits (a std::stringstream grows; the ring does not)
        pico.flush();
        std::string text = in.ConsumeBool() ? in.ConsumeRandomLengthString(200)
                                            : std::string(in.ConsumeIntegralInRange<std::size_t>(0, ring.capacity()),
                                                          in.ConsumeBool() ? '\n' : in.ConsumeIntegral<char>());
        if (text.size() > ring.available_to_write()) text.resize(ring.available_to_write());
        pico << text << std::flush;
        model << text << std::flush;
        break;
      }
      case 1:
        FUZZ_CHECK(pico.get() == model.get());
        ++taken;
        break;
      case 2:
        FUZZ_CHECK(pico.peek() == model.peek());
        break;
      case 3: {       // unget / putback, where the bytes before the front are intact
        pico.sync();  // settles the get area: what was read is released now
        const bool can = ring.releasable_back() > 0 && taken > 0;
        if (!can) break;
        if (in.ConsumeBool()) {
          pico.unget();
          model.unget();
        } else {
          const char c = in.ConsumeIntegral<char>();
          pico.putback(c);
          model.putback(c);
        }
        --taken;
        break;
      }
      case 4: {
        std::string a;
        std::string b;
        const char delim = in.ConsumeBool() ? '\n' : in.ConsumeIntegral<char>();
        std::getline(pico, a, delim);
        std::getline(model, b, delim);
        FUZZ_CHECK(a == b);
        taken += a.size() + 1;
        break;
      }
      case 5: {
        std::vector<char> a(in.ConsumeIntegralInRange<std::size_t>(0, in.ConsumeBool() ? 300 : ring.capacity()));
        std::vector<char> b(a.size());
        pico.read(a.data(), static_cast<std::streamsize>(a.size()));
        model.read(b.data(), static_cast<std::streamsize>(b.size()));
        FUZZ_CHECK(pico.gcount() == model.gcount());
        FUZZ_CHECK(std::equal(a.begin(), a.begin() + pico.gcount(), b.begin()));
        taken += static_cast<std::size_t>(pico.gcount());
        break;
      }
      default: {
        int x = 0;
        int y = 0;
        pico >> x;
        model >> y;
        FUZZ_CHECK(x == y);
        break;
      }
    }
    same_state();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    run_stream(in);
  } else {
    run_iostream(in);
  }
  return 0;
}
