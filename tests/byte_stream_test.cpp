// PicoByteStream and ByteStreamBuf.
#include <gtest/gtest.h>

#include <istream>
#include <ostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "picoring/byte_stream.hpp"
#include "test_support.hpp"

namespace {

using picoring::ByteStreamBuf;
using picoring::PicoByteStream;

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s)); }

// Moves the stream's empty window so that it starts `before_end` bytes before the physical end.
void park_near_end(PicoByteStream& s, std::size_t before_end) {
  s.clear();
  s.commit(s.capacity() - before_end);
  s.release(s.capacity() - before_end);
}

TEST(PicoByteStream, WriteIsPartialWriteAllIsAllOrError) {
  PicoByteStream s(1);
  const std::size_t cap = s.capacity();
  const std::string big(cap + 10, 'z');
  EXPECT_EQ(s.write(big), cap);
  EXPECT_EQ(s.available_to_read(), cap);
  EXPECT_EQ(s.write("x"), 0u);
  s.release(5);
  try {
    s.write_all("123456");
    FAIL() << "write_all beyond free space must throw";
  } catch (const std::length_error& e) {
    EXPECT_STREQ(e.what(), "picoring: write_all(): not enough free space");
  }
  EXPECT_EQ(s.available_to_write(), 5u);  // unchanged
  EXPECT_FALSE(s.try_write_all(bytes_of("123456")));
  s.write_all("12345");
  EXPECT_EQ(s.available_to_write(), 0u);
  EXPECT_EQ(s.readable_view().substr(cap - 5), "12345");
}

TEST(PicoByteStream, WindowsAreContiguousAcrossTheWrap) {
  PicoByteStream s(1);
  park_near_end(s, 4);
  s.write_all("hello, mirrored world");
  EXPECT_EQ(s.readable_view(), "hello, mirrored world");
  EXPECT_EQ(s.readable().size(), 21u);
  EXPECT_EQ(static_cast<char>(s.memory().data()[0]), 'o');  // byte 4 of the text is physical byte 0
  char out[8];
  EXPECT_EQ(s.read(std::span<char>(out)), 8u);
  EXPECT_EQ(std::string_view(out, 8), "hello, m");
  EXPECT_EQ(s.readable_view(), "irrored world");
  auto w = s.writable();
  EXPECT_EQ(w.size(), s.capacity() - 13);
  w[0] = std::byte{'!'};
  s.commit(1);
  EXPECT_EQ(s.readable_view(), "irrored world!");
}

TEST(PicoByteStream, ReleaseAndCommitAreChecked) {
  PicoByteStream s(1);
  s.write_all("abc");
  EXPECT_THROW(s.release(4), std::out_of_range);
  EXPECT_THROW(s.commit(s.capacity() - 2), std::out_of_range);
  EXPECT_EQ(s.readable_view(), "abc");
  try {
    s.release(4);
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "picoring: release(n): n > available_to_read()");
  }
}

TEST(PicoByteStream, RandomSplitsMatchAStringModel) {
  std::mt19937 rng(7);
  PicoByteStream s(1);
  std::string model;
  std::string produced;
  std::size_t next = 0;
  for (std::size_t op = 0; op < picoring_test::scaled(200'000); ++op) {
    if (rng() % 2 == 0) {
      std::string chunk(rng() % 700, '\0');
      for (char& c : chunk) c = static_cast<char>('a' + (next++ % 26));
      const std::size_t n = s.write(chunk);
      ASSERT_EQ(n, std::min(chunk.size(), s.capacity() - model.size()));
      model += chunk.substr(0, n);
    } else {
      std::string out(rng() % 700, '\0');
      const std::size_t n = s.read(std::span<char>(out));
      ASSERT_EQ(n, std::min(out.size(), model.size()));
      ASSERT_EQ(out.substr(0, n), model.substr(0, n));
      model.erase(0, n);
    }
    ASSERT_EQ(s.readable_view(), model);
  }
}

TEST(ByteStreamBuf, GetlineReadsLinesThatWrapTheEnd) {
  PicoByteStream s(1);
  for (std::size_t offset = 1; offset < 40; offset += 3) {
    park_near_end(s, offset);
    s.write_all("first line crosses the seam\nsecond 12345 -7.5\nthird");
    ByteStreamBuf buf(s);
    std::istream in(&buf);
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_EQ(line, "first line crosses the seam");
    std::string word;
    int n = 0;
    double x = 0;
    ASSERT_TRUE(in >> word >> n >> x);
    EXPECT_EQ(word, "second");
    EXPECT_EQ(n, 12345);
    EXPECT_EQ(x, -7.5);
    in.ignore(1);
    ASSERT_TRUE(std::getline(in, line));  // last line has no newline: getline stops at eof
    EXPECT_EQ(line, "third");
    EXPECT_TRUE(in.eof());
    buf.pubsync();
    EXPECT_EQ(s.available_to_read(), 0u) << "everything read must be consumed";
  }
}

TEST(ByteStreamBuf, TheGetAreaIsTheRingItself) {
  PicoByteStream s(1);
  park_near_end(s, 3);
  s.write_all("abcdef\n");
  ByteStreamBuf buf(s);
  std::istream in(&buf);
  EXPECT_EQ(in.peek(), 'a');
  // After the first underflow the istream reads straight from the mirrored window.
  EXPECT_EQ(in.rdbuf()->in_avail(), 7);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "abcdef");
}

TEST(ByteStreamBuf, OstreamWritesIntoTheRingAndStopsWhenFull) {
  PicoByteStream s(1);
  park_near_end(s, 2);
  {
    ByteStreamBuf buf(s);
    std::ostream out(&buf);
    out << "value=" << 42 << ' ' << 3.5 << '\n';
    EXPECT_TRUE(out.good());
    out.flush();
    EXPECT_EQ(s.readable_view(), "value=42 3.5\n");
    const std::string fill(s.available_to_write(), '#');
    out << fill;
    EXPECT_TRUE(out.good());
    out << 'X';  // one byte more than the ring holds
    EXPECT_TRUE(out.bad());
  }
  EXPECT_EQ(s.available_to_write(), 0u);
  EXPECT_EQ(s.readable_view().substr(0, 13), "value=42 3.5\n");
}

TEST(ByteStreamBuf, AnIostreamReadsWhatItWrote) {
  PicoByteStream s(1);
  park_near_end(s, 5);
  ByteStreamBuf buf(s);
  std::iostream io(&buf);
  io << "ping 1\npong 2\n";
  std::string a;
  std::string b;
  ASSERT_TRUE(std::getline(io, a));
  ASSERT_TRUE(std::getline(io, b));
  EXPECT_EQ(a, "ping 1");
  EXPECT_EQ(b, "pong 2");
  EXPECT_FALSE(std::getline(io, a));
  io.clear();
  io << "later\n";
  ASSERT_TRUE(std::getline(io, a));
  EXPECT_EQ(a, "later");
}

}  // namespace

namespace {

// --- unget()/putback() behave as on a std::stringstream ----------------------------------------

// Runs the same istream/ostream steps on a ByteStreamBuf and on a std::stringstream, comparing
// every character read and the stream state after each step.
struct SideBySide {
  PicoByteStream ring{1};
  ByteStreamBuf buf{ring};
  std::iostream pico{&buf};
  std::stringstream model;

  void write(std::string_view text) {
    pico << text << std::flush;
    model << text << std::flush;
  }
  void get() {
    EXPECT_EQ(pico.get(), model.get());
    expect_same_state();
  }
  void peek() {
    EXPECT_EQ(pico.peek(), model.peek());
    expect_same_state();
  }
  void unget() {
    pico.unget();
    model.unget();
    expect_same_state();
  }
  void putback(char c) {
    pico.putback(c);
    model.putback(c);
    expect_same_state();
  }
  void expect_same_state() {
    EXPECT_EQ(pico.good(), model.good());
    EXPECT_EQ(pico.bad(), model.bad());
    EXPECT_EQ(pico.eof(), model.eof());
  }
};

TEST(ByteStreamBuf, UngetAfterARefillAWriteOrAPeekWorksLikeAStringstream) {
  SideBySide s;
  s.write("ab");
  s.get();
  s.get();
  s.write("cd");  // a write, then a refill of the get area
  s.get();        // 'c' comes from a new get area
  s.unget();      // the byte before it was released at the refill
  s.get();
  s.get();   // 'd': the last byte
  s.peek();  // eof: read + peek releases everything read
  s.pico.clear();
  s.model.clear();
  s.unget();  // 'd' again
  s.get();
  s.unget();
  s.unget();  // 'c', then 'b', across two refills
  s.unget();
  s.get();
  s.get();
  s.putback('c');  // the same byte
  s.get();
  s.get();
}

TEST(ByteStreamBuf, PutbackOfAnotherCharacterOverwritesLikeAStringstream) {
  SideBySide s;
  s.write("xyz");
  s.get();
  s.get();
  s.get();
  s.peek();
  s.pico.clear();
  s.model.clear();
  s.putback('Z');
  s.putback('Y');
  s.get();
  s.get();
}

// The rule where the two differ: a released byte can be taken back only while no write has
// reached it. A full ring has no free space, hence no intact released byte.
TEST(ByteStreamBuf, PutbackFailsOnlyOnceWritesHaveReachedTheByte) {
  PicoByteStream ring(1);
  const std::size_t cap = ring.capacity();
  ByteStreamBuf buf(ring);
  std::iostream io(&buf);
  io << std::string(cap, 'a') << std::flush;
  EXPECT_EQ(io.get(), 'a');
  EXPECT_EQ(io.get(), 'a');
  io.sync();
  EXPECT_EQ(ring.releasable_back(), 2u);
  io << "bb" << std::flush;  // fills the two released bytes
  EXPECT_EQ(ring.releasable_back(), 0u);
  io.unget();
  EXPECT_TRUE(io.bad());
  EXPECT_EQ(ring.available_to_read(), cap);
}

TEST(PicoByteStream, UnreleaseTakesBackIntactBytesOnly) {
  PicoByteStream s(1);
  s.write_all("hello");
  char out[3];
  EXPECT_EQ(s.read(std::span<char>(out)), 3u);
  s.release(1);
  EXPECT_EQ(s.releasable_back(), 4u);
  EXPECT_THROW(s.unrelease(5), std::out_of_range);
  EXPECT_EQ(s.readable_view(), "o");
  s.unrelease(4);
  EXPECT_EQ(s.readable_view(), "hello");
  EXPECT_EQ(s.releasable_back(), 0u);
  // Across the physical start: release everything at the end of the ring, then take it back.
  s.clear();
  const std::size_t cap = s.capacity();
  s.commit(cap - 2);
  s.release(cap - 2);
  s.write_all("wrap!");
  s.release(5);
  s.unrelease(5);
  EXPECT_EQ(s.readable_view(), "wrap!");
  // writable() hands out the memory of the released bytes: none can be taken back after it.
  // Every free byte is now a released byte nobody wrote over: all of them can come back.
  s.release(5);
  EXPECT_EQ(s.releasable_back(), cap);
  (void)s.writable();
  EXPECT_EQ(s.releasable_back(), 0u);
  EXPECT_THROW(s.unrelease(1), std::out_of_range);
  s.clear();
  EXPECT_EQ(s.releasable_back(), 0u);
  PicoByteStream moved(std::move(s));
  // NOLINTNEXTLINE(bugprone-use-after-move,clang-analyzer-cplusplus.Move): a moved-from stream is empty
  EXPECT_EQ(s.releasable_back(), 0u);
}

}  // namespace

// uncommit(n) hands the newest bytes back to the free space: the next commit publishes them
// again unchanged; more than is readable is refused and changes nothing.
TEST(PicoByteStream, UncommitTakesBackTheNewestBytes) {
  picoring::PicoByteStream s(4096);
  s.write_all(std::string_view("hello, world"));
  const std::size_t free_before = s.available_to_write();
  s.uncommit(7);
  EXPECT_EQ(s.readable_view(), "hello");
  EXPECT_EQ(s.available_to_write(), free_before + 7);
  EXPECT_THROW(s.uncommit(6), std::out_of_range);
  EXPECT_EQ(s.readable_view(), "hello");
  s.commit(7);
  EXPECT_EQ(s.readable_view(), "hello, world");
  s.readable_bytes()[0] = std::byte{'j'};
  EXPECT_EQ(s.readable_view(), "jello, world");
}
