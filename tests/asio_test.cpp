// The Asio dynamic buffer over PicoByteStream: the DynamicBuffer v2 requirements, one buffer
// where a circular buffer would hand out two, and a real line protocol over TCP on 127.0.0.1 with
// async_read_until across the wrap, compared byte for byte.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <cstddef>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "picoring/asio.hpp"

namespace net = boost::asio;
using tcp = net::ip::tcp;

static_assert(net::is_dynamic_buffer_v2<picoring::ByteStreamDynamicBuffer>::value,
              "the adapter must be usable wherever Asio takes a dynamic buffer");
static_assert(std::is_same_v<picoring::ByteStreamDynamicBuffer::const_buffers_type, net::const_buffer>,
              "one buffer, never a sequence");

namespace {
std::string as_string(net::const_buffer b) { return {static_cast<const char*>(b.data()), b.size()}; }
}  // namespace

TEST(AsioBuffer, DataIsOneBufferEvenWhereTheBytesWrap) {
  picoring::PicoByteStream s(4096);
  const std::size_t cap = s.capacity();
  s.write_all(std::string(cap - 100, 'a'));
  s.release(cap - 100);
  const std::string text = std::string(300, 'x') + "end";
  s.write_all(text);  // runs past the physical end
  auto buf = picoring::dynamic_buffer(s);
  const auto all = std::as_const(buf).data(0, buf.size());
  ASSERT_EQ(all.size(), text.size());
  EXPECT_GT(static_cast<const std::byte*>(all.data()) + all.size(), s.memory().data() + cap) << "the data should wrap";
  EXPECT_EQ(as_string(all), text);
  EXPECT_EQ(as_string(std::as_const(buf).data(298, 100)), "xxend");  // clipped to size()
  EXPECT_EQ(std::as_const(buf).data(1000, 5).size(), 0u);            // past the end: empty
}

TEST(AsioBuffer, GrowShrinkAndConsumeFollowTheRequirements) {
  picoring::PicoByteStream s(4096);
  auto buf = picoring::dynamic_buffer(s);
  EXPECT_EQ(buf.max_size(), s.capacity());
  buf.grow(10);
  EXPECT_EQ(buf.size(), 10u);
  net::buffer_copy(buf.data(0, 10), net::buffer(std::string("0123456789")));
  EXPECT_THROW(buf.grow(s.capacity()), std::length_error);
  EXPECT_EQ(buf.size(), 10u) << "a refused grow changes nothing";
  buf.shrink(4);
  EXPECT_EQ(s.readable_view(), "012345");
  buf.consume(2);
  EXPECT_EQ(s.readable_view(), "2345");
  buf.shrink(100);  // more than there is: all of it
  EXPECT_EQ(buf.size(), 0u);
  buf.grow(3);
  buf.consume(100);
  EXPECT_EQ(buf.size(), 0u);
}

// A server echoes lines read with async_read_until into a 4 KiB ring; a client on another
// thread sends lines of random lengths in chunks that cut them anywhere and reads the echo with
// the blocking read_until into a ring of its own. Lines wrap in both rings many times.
TEST(AsioBuffer, AnEchoedLineProtocolOverTcpArrivesIntact) {
  net::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();

  std::mt19937 rng(5);
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) {
    std::string line(1 + rng() % 1500, '\0');
    for (auto& c : line) c = static_cast<char>('a' + rng() % 26);
    lines.push_back(line + "\n");
  }

  picoring::PicoByteStream in(4096);
  tcp::socket peer(io);
  std::size_t served = 0;
  std::size_t wrapped = 0;
  std::string echo;  // the line being written back
  std::function<void()> serve_next = [&] {
    net::async_read_until(peer, picoring::dynamic_buffer(in), '\n', [&](boost::system::error_code ec, std::size_t n) {
      if (ec) return;  // the client closed
      const auto line = in.readable().first(n);
      if (line.data() + n > in.memory().data() + in.capacity()) ++wrapped;
      echo.assign(reinterpret_cast<const char*>(line.data()), n);
      in.release(n);
      net::async_write(peer, net::buffer(echo), [&](boost::system::error_code wec, std::size_t) {
        if (wec) return;
        ++served;
        serve_next();
      });
    });
  };
  acceptor.async_accept(peer, [&](boost::system::error_code ec) {
    ASSERT_FALSE(ec) << ec.message();
    peer.set_option(tcp::no_delay(true));  // one small write per line: no Nagle delay
    serve_next();
  });

  std::size_t received = 0;
  std::string mismatch;
  std::thread client([&] {
    net::io_context cio;
    tcp::socket sock(cio);
    sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    sock.set_option(tcp::no_delay(true));
    picoring::PicoByteStream back(4096);
    std::mt19937 cut(9);
    for (const auto& line : lines) {
      for (std::size_t at = 0; at < line.size();) {  // chunks that cut the line anywhere
        const std::size_t n = std::min<std::size_t>(line.size() - at, 1 + cut() % 700);
        net::write(sock, net::buffer(line.data() + at, n));
        at += n;
      }
      const std::size_t n = net::read_until(sock, picoring::dynamic_buffer(back), '\n');
      if (back.readable_view().substr(0, n) != line && mismatch.empty()) mismatch = line;
      back.release(n);
      ++received;
    }
    sock.shutdown(tcp::socket::shutdown_both);
  });
  io.run();
  client.join();
  EXPECT_EQ(mismatch, "");
  EXPECT_EQ(received, lines.size());
  EXPECT_EQ(served, lines.size());
  EXPECT_GT(wrapped, 10u) << "lines should have wrapped in the server's ring";
}
