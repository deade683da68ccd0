// The record queue between processes (Linux): a deque model in one process, then real second
// processes (fork, descriptors inherited or passed over a Unix socket), peers that die without
// closing, descriptors that are not queues, and a peer that writes counters and lengths that
// cannot be right. Nothing may leak: descriptors and mappings are counted.
#include <gtest/gtest.h>

#if defined(__linux__)

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "picoring/shared_queue.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using picoring::QueueStatus;
using picoring::SharedRecordReader;
using picoring::SharedRecordWriter;
using picoring_test::in_child;

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }
std::string string_of(std::span<const std::byte> s) { return {reinterpret_cast<const char*>(s.data()), s.size()}; }

// A record that says which one it is: "<n>:" then filler up to `len` bytes.
std::string numbered(std::uint64_t n, std::size_t len) {
  std::string s = std::to_string(n) + ":";
  while (s.size() < len) s.push_back(static_cast<char>('a' + (n + s.size()) % 26));
  return s;
}

// The header page of a queue, mapped by the test itself to play a corrupt peer.
struct RawHeader {
  explicit RawHeader(int fd)
      : p(static_cast<picoring::detail::SharedHeader*>(
            ::mmap(nullptr, picoring::allocation_granularity(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))) {}
  RawHeader(const RawHeader&) = delete;
  RawHeader& operator=(const RawHeader&) = delete;
  ~RawHeader() { ::munmap(p, picoring::allocation_granularity()); }
  picoring::detail::SharedHeader* p;
};

TEST(SharedRecordQueue, MatchesADequeAcrossManyWraps) {
  auto w = SharedRecordWriter::create(1);  // one page
  auto r = SharedRecordReader::attach(w.fd());
  const std::size_t cap = w.capacity();
  ASSERT_EQ(cap % picoring::allocation_granularity(), 0u);
  ASSERT_EQ(r.capacity(), cap);
  std::deque<std::string> model;
  std::size_t used = 0;
  std::mt19937 rng(11);
  std::uint64_t next = 0;
  for (int step = 0; step < 50000; ++step) {
    const auto op = rng() % 6;
    if (op == 5) {  // several records with one publication: the longest prefix that fits
      std::vector<std::string> recs(rng() % 5);
      std::vector<std::span<const std::byte>> spans;
      for (auto& rec : recs) {
        rec = numbered(next + spans.size(), 1 + rng() % (cap / 4));
        spans.push_back(bytes_of(rec));
      }
      std::size_t fits = 0;
      for (std::size_t room = cap - used; fits < recs.size() && picoring::record_footprint(recs[fits].size()) <= room;
           ++fits) {
        room -= picoring::record_footprint(recs[fits].size());
      }
      ASSERT_EQ(w.push_some(spans), fits);
      for (std::size_t i = 0; i < fits; ++i) {
        model.push_back(recs[i]);
        used += picoring::record_footprint(recs[i].size());
      }
      next += fits;
    } else if (op < 2) {
      const std::string rec = numbered(next, 1 + rng() % (cap / 3));
      if (op == 0) {
        const bool fits = used + picoring::record_footprint(rec.size()) <= cap;
        ASSERT_EQ(w.push(bytes_of(rec)), fits);
        if (!fits) continue;
      } else {
        // Reserve more than needed, then commit the record's length (or abandon it).
        auto out = w.reserve(rec.size() + 5);
        ASSERT_EQ(!out.empty(), used + picoring::record_footprint(rec.size() + 5) <= cap);
        if (out.empty()) continue;
        ASSERT_EQ(out.size(), rec.size() + 5);
        if (rng() % 4 == 0) {
          w.discard();
          continue;
        }
        std::memcpy(out.data(), rec.data(), rec.size());
        w.commit(rec.size());
      }
      model.push_back(rec);
      used += picoring::record_footprint(rec.size());
      ++next;
    } else if (op < 4) {
      const auto rec = r.front();
      ASSERT_EQ(rec.empty(), model.empty());
      if (rec.empty()) continue;
      ASSERT_EQ(string_of(rec), model.front());
      r.pop();
      used -= picoring::record_footprint(model.front().size());
      model.pop_front();
    } else {
      const std::size_t max = rng() % 4;
      std::size_t seen = 0;
      const std::size_t n = r.drain(
          [&](std::span<const std::byte> rec) {
            EXPECT_EQ(string_of(rec), model[seen]);
            ++seen;
          },
          max);
      ASSERT_EQ(n, std::min(max, model.size()));
      for (std::size_t i = 0; i < n; ++i) {
        used -= picoring::record_footprint(model.front().size());
        model.pop_front();
      }
    }
  }
  EXPECT_GT(next, 1000u);
}

TEST(SharedRecordQueue, BadInputIsRejectedAndChangesNothing) {
  auto w = SharedRecordWriter::create(4096);
  auto r = SharedRecordReader::attach(w.fd());
  EXPECT_THROW(static_cast<void>(w.reserve(0)), std::invalid_argument);
  EXPECT_THROW(static_cast<void>(w.reserve(w.max_record_size() + 1)), std::length_error);
  EXPECT_THROW(w.commit(), std::logic_error);
  EXPECT_THROW(w.discard(), std::logic_error);
  auto out = w.reserve(10);
  ASSERT_EQ(out.size(), 10u);
  EXPECT_THROW(static_cast<void>(w.reserve(5)), std::logic_error);
  EXPECT_THROW(w.commit(11), std::logic_error);
  EXPECT_THROW(w.commit(0), std::logic_error);
  EXPECT_TRUE(r.front().empty()) << "nothing is visible before commit";
  const std::string ok = "fine";
  EXPECT_THROW(static_cast<void>(w.push_some(std::vector{bytes_of(ok)})), std::logic_error) << "a reservation is open";
  std::memcpy(out.data(), "0123456789", 10);
  w.commit();
  EXPECT_EQ(string_of(r.front()), "0123456789");
  r.pop();
  EXPECT_THROW(r.pop(), std::out_of_range);
  // A bad record anywhere in a push_some list: nothing is pushed, not even the good first one.
  const std::string huge(w.max_record_size() + 1, 'h');
  EXPECT_THROW(static_cast<void>(w.push_some(std::vector{bytes_of(ok), std::span<const std::byte>()})),
               std::invalid_argument);
  EXPECT_THROW(static_cast<void>(w.push_some(std::vector{bytes_of(ok), bytes_of(huge)})), std::length_error);
  EXPECT_TRUE(r.front().empty());
  EXPECT_EQ(w.push_some({}), 0u);
  ASSERT_EQ(w.push_some(std::vector{bytes_of(ok), bytes_of(ok)}), 2u);
  EXPECT_EQ(r.drain([&](std::span<const std::byte> rec) { EXPECT_EQ(string_of(rec), ok); }), 2u);
  r.close();
  EXPECT_EQ(w.push_some(std::vector{bytes_of(ok)}), 0u) << "closed";
}

TEST(SharedRecordQueue, ASecondWriterOrReaderIsRefused) {
  auto w = SharedRecordWriter::create(4096);
  auto r = SharedRecordReader::attach(w.fd());
  try {
    static_cast<void>(SharedRecordWriter::attach(w.fd()));
    ADD_FAILURE() << "a second writer attached";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::device_or_resource_busy) << e.what();
  }
  EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(w.fd())), std::system_error);
  EXPECT_FALSE(w.closed()) << "a refused attach must not close the queue";
  EXPECT_TRUE(w.push(bytes_of("still open")));
  EXPECT_EQ(string_of(r.front()), "still open");
}

// Ships `records` numbered records to a forked reader that checks each; returns its exit status.
// `batching` is set on both ends.
int ship_to_a_child(SharedRecordWriter& w, std::uint64_t records, picoring::Batching batching = {}) {
  w.set_batching(batching);
  const int fd = w.fd();
  // The child inherits the descriptor across fork and attaches to it as the reader.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int status = 0;
    try {
      auto r = SharedRecordReader::attach(fd);
      r.set_batching(batching);
      for (std::uint64_t i = 0; i < records && status == 0; ++i) {
        if (r.wait(30s) != QueueStatus::ok)
          status = 2;
        else if (string_of(r.front()) != numbered(i, 1 + static_cast<std::size_t>(i % 300)))
          status = 3;
        else
          r.pop();
      }
      if (status == 0 && r.wait(30s) != QueueStatus::closed) status = 4;
    } catch (...) {
      status = 5;
    }
    ::_exit(status);
  }
  if (pid < 0) return -1;
  for (std::uint64_t i = 0; i < records; ++i) {
    if (w.push_wait(bytes_of(numbered(i, 1 + static_cast<std::size_t>(i % 300))), 30s) != QueueStatus::ok) break;
  }
  w.close();
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(SharedRecordQueue, AChildProcessReadsWhatTheParentWrites) {
  auto w = SharedRecordWriter::create(std::size_t{64} * 1024);
  EXPECT_EQ(ship_to_a_child(w, 20000), 0);
}

TEST(SharedRecordQueue, AndWithBatchingOnBothEnds) {
  auto w = SharedRecordWriter::create(std::size_t{64} * 1024);
  EXPECT_EQ(ship_to_a_child(w, 20000, {4096, 2us}), 0);
}

// Where this kernel offers membarrier(GLOBAL_EXPEDITED) (asked here directly, with the ABI's
// command values), a new queue must be in the fence-free mode (the header's `fences` 0): the
// test above then runs that mode, and a build that cannot reach it (as one whose preprocessor
// test could never be true once could) fails here instead of silently fencing every message.
TEST(SharedRecordQueue, UsesTheFenceFreeModeWhereTheKernelOffersIt) {
  const long cmds = ::syscall(SYS_membarrier, 0 /* QUERY */, 0, 0);
  const bool offered = cmds > 0 && (cmds & (1 << 1) /* GLOBAL_EXPEDITED */) != 0;
  auto w = SharedRecordWriter::create(4096);
  RawHeader h(w.fd());
  if (!offered) {
    EXPECT_EQ(h.p->fences.load(), 1u);
    GTEST_SKIP() << "membarrier(GLOBAL_EXPEDITED) is not offered here (an emulator or an old kernel)";
  }
  EXPECT_EQ(h.p->fences.load(), 0u);
  // And a sleeper's heavy fence keeps it there: a wait that parks and is woken by a push.
  auto r = SharedRecordReader::attach(w.fd());
  std::thread pusher([&w] {
    std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(w.push(bytes_of("wake up")));
  });
  EXPECT_EQ(r.wait(10s), QueueStatus::ok);
  pusher.join();
  EXPECT_EQ(h.p->fences.load(), 0u) << "the membarrier call failed and the queue fell back to fences";
}

// Where membarrier(GLOBAL_EXPEDITED) is refused, both sides use full fences: the same run so.
TEST(SharedRecordQueue, WithFullFencesInsteadOfMembarrierToo) {
  auto w = SharedRecordWriter::create(std::size_t{64} * 1024);
  RawHeader h(w.fd());
  h.p->fences.store(1);
  EXPECT_EQ(ship_to_a_child(w, 20000), 0);
}

TEST(SharedRecordQueue, TheDescriptorTravelsOverAUnixSocket) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  constexpr int kRecords = 5000;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The child creates the queue and writes; the parent attaches by the descriptor it receives.
    ::close(sv[0]);
    int status = 0;
    try {
      auto w = SharedRecordWriter::create(4096);
      picoring::send_fd(sv[1], w.fd());
      w.close_fd();
      for (int i = 0; i < kRecords && status == 0; ++i) {
        if (w.push_wait(bytes_of(numbered(static_cast<std::uint64_t>(i), 40)), 30s) != QueueStatus::ok) status = 1;
      }
    } catch (...) {
      status = 2;
    }
    ::_exit(status);  // the writer's destructor ran: the queue is closed
  }
  ASSERT_GT(pid, 0);
  ::close(sv[1]);
  const std::size_t fds = picoring_test::count_open_fds();
  int got = 0;
  {
    const int fd = picoring::receive_fd(sv[0]);
    auto r = SharedRecordReader::attach(fd);
    ::close(fd);
    while (r.wait(30s) == QueueStatus::ok) {
      ASSERT_EQ(string_of(r.front()), numbered(static_cast<std::uint64_t>(got), 40));
      r.pop();
      ++got;
    }
  }
  EXPECT_EQ(got, kRecords);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(picoring_test::count_open_fds(), fds) << "receive_fd's descriptor, the dup and the pidfd are closed";
  // The child is gone: the socket is at end of file.
  try {
    static_cast<void>(picoring::receive_fd(sv[0]));
    ADD_FAILURE() << "receive_fd returned at end of file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_reset);
  }
  ::close(sv[0]);
}

TEST(SharedRecordQueue, AMessageWithoutADescriptorIsRefused) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(::write(sv[1], "x", 1), 1);
  try {
    static_cast<void>(picoring::receive_fd(sv[0]));
    ADD_FAILURE() << "no descriptor, no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::bad_message);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(SharedRecordQueue, AReaderNoticesTheWriterDiedWithoutClosing) {
  auto r = SharedRecordReader::create(4096);
  const int fd = r.fd();
  const int status = in_child([&] {
    auto w = SharedRecordWriter::attach(fd);
    for (int i = 0; i < 3; ++i) w.push(bytes_of(numbered(static_cast<std::uint64_t>(i), 10)));
    ::_exit(0);  // a crash: no destructor, nothing closed
    return 1;
  });
  ASSERT_EQ(status, 0);
  EXPECT_FALSE(r.closed());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(r.wait(30s), QueueStatus::ok);
    EXPECT_EQ(string_of(r.front()), numbered(static_cast<std::uint64_t>(i), 10));
    r.pop();
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(r.wait(30s), QueueStatus::closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the writer's death must end the wait, not the timeout";
}

TEST(SharedRecordQueue, ARestartedReaderTakesOverFromOneThatCrashed) {
  auto w = SharedRecordWriter::create(4096);
  const int fd = w.fd();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(w.push(bytes_of(numbered(static_cast<std::uint64_t>(i), 20))));
  // The first reader releases one record, looks at the second, and crashes.
  ASSERT_EQ(in_child([&] {
              auto r = SharedRecordReader::attach(fd);
              r.pop();
              static_cast<void>(r.front());
              ::_exit(0);
              return 1;
            }),
            0);
  // Its role is free again; the second reader starts at the first record not released.
  auto r = SharedRecordReader::attach(fd);
  EXPECT_EQ(string_of(r.front()), numbered(1, 20));
  EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(fd)), std::system_error) << "this reader is alive";
  EXPECT_TRUE(w.push(bytes_of("more")));
}

TEST(SharedRecordQueue, AWriterNoticesTheReaderDiedWithoutClosing) {
  auto w = SharedRecordWriter::create(4096);
  const int fd = w.fd();
  ASSERT_EQ(in_child([&] {
              auto r = SharedRecordReader::attach(fd);
              ::_exit(0);
              return 1;
            }),
            0);
  while (w.push(bytes_of(std::string(100, 'x')))) {
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(w.wait_for_space(100, 30s), QueueStatus::closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(SharedRecordQueue, AttachRefusesWhatIsNotAQueueAndLeaksNothing) {
  const std::size_t fds = picoring_test::count_open_fds();
  const std::size_t maps = picoring_test::count_mappings();
  const std::size_t page = picoring::allocation_granularity();
  const auto refused = [](int fd, const char* what) {
    try {
      static_cast<void>(SharedRecordReader::attach(fd));
      ADD_FAILURE() << what << ": attached";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
    }
  };
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  refused(p[0], "a pipe");
  ::close(p[0]);
  ::close(p[1]);
  refused(-1, "no descriptor");

  const auto memfd = [&](bool seal, std::size_t size) {
    const int fd = static_cast<int>(::syscall(SYS_memfd_create, "not-a-queue", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    if (seal) {
      EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    }
    return fd;
  };
  // A memfd that holds a real queue's header page (copied), its size and seals as given.
  const auto copy_of_queue = [&](std::size_t size, bool seal) {
    auto w = SharedRecordWriter::create(page);
    const int copy = memfd(false, size);
    std::vector<std::byte> head(page);
    EXPECT_EQ(::pread(w.fd(), head.data(), page, 0), static_cast<ssize_t>(page));
    EXPECT_EQ(::pwrite(copy, head.data(), page, 0), static_cast<ssize_t>(page));
    if (seal) {
      EXPECT_EQ(::fcntl(copy, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    }
    return copy;
  };
  int fd = copy_of_queue(2 * page, true);
  {
    auto r = SharedRecordReader::attach(fd);  // the control: a sealed copy is a queue
    EXPECT_EQ(r.capacity(), page);
  }
  ::close(fd);
  fd = copy_of_queue(2 * page, false);
  refused(fd, "an unsealed memfd");  // the peer could truncate it: SIGBUS
  ::close(fd);
  fd = copy_of_queue(3 * page, true);
  refused(fd, "a header whose capacity is not the memfd's");
  ::close(fd);
  fd = memfd(true, 2 * page);
  refused(fd, "a sealed memfd of zeros");  // no magic
  ::close(fd);
  fd = memfd(true, page);
  refused(fd, "a memfd of one page");
  ::close(fd);
  for (int i = 0; i < 50; ++i) {
    auto w = SharedRecordWriter::create(8192);
    auto r = SharedRecordReader::attach(w.fd());
    ASSERT_TRUE(w.push(bytes_of("x")));
    static_cast<void>(r.wait(0s));
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
  EXPECT_EQ(picoring_test::count_mappings(), maps);
}

TEST(SharedRecordQueue, CorruptCountersAndLengthsFailCleanly) {
  const auto fresh = [] {
    auto w = SharedRecordWriter::create(4096);
    auto r = SharedRecordReader::attach(w.fd());
    return std::pair(std::move(w), std::move(r));
  };
  {
    auto [w, r] = fresh();
    RawHeader h(w.fd());
    h.p->tail.store(w.capacity() + 8);  // more published than the ring holds
    EXPECT_THROW(static_cast<void>(r.front()), std::system_error);
    EXPECT_TRUE(r.closed());
  }
  {
    auto [w, r] = fresh();
    RawHeader h(w.fd());
    h.p->tail.store(12);  // not a whole record
    try {
      static_cast<void>(r.front());
      ADD_FAILURE() << "a misaligned counter was accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    }
  }
  {
    auto [w, r] = fresh();
    ASSERT_TRUE(w.push(bytes_of("hello")));
    // The record's length, rewritten by the "writer" after publication: far past the ring.
    const auto view = r.front();
    const std::uint32_t huge = 0xFFFFFFF0u;
    std::memcpy(const_cast<std::byte*>(view.data()) - 8, &huge, sizeof huge);
    EXPECT_THROW(static_cast<void>(r.front()), std::system_error);
  }
  {
    auto [w, r] = fresh();
    RawHeader h(w.fd());
    while (w.push(bytes_of(std::string(64, 'y')))) {
    }
    h.p->head.store(w.capacity() * 3);  // the reader "released" more than was written
    EXPECT_THROW(static_cast<void>(w.push(bytes_of(std::string(64, 'z')))), std::system_error);
    EXPECT_TRUE(w.closed());
  }
}

// The byte stream between processes: a deque<char> model across many wraps (both ends in this
// process, attached by descriptor), a forked reader, kind checks, lying counters.
TEST(SharedByteStream, MatchesADequeAcrossManyWraps) {
  const std::size_t fds = picoring_test::count_open_fds();
  {
    auto w = picoring::SharedStreamWriter::create(4096);
    auto r = picoring::SharedStreamReader::attach(w.fd());
    const std::size_t cap = w.capacity();
    std::deque<char> model;
    std::mt19937 rng(11);
    std::uint64_t next = 0;
    for (int step = 0; step < 20000; ++step) {
      switch (rng() % 4) {
        case 0: {  // write() of a random length: as much as fits
          std::string chunk(1 + rng() % (cap / 2), '\0');
          for (char& c : chunk) c = static_cast<char>('a' + next++ % 26);
          const std::size_t room = cap - model.size();
          const std::size_t n = w.write(bytes_of(chunk));
          ASSERT_EQ(n, std::min(room, chunk.size()));
          model.insert(model.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
          next -= chunk.size() - n;
          break;
        }
        case 1: {  // writable() + commit(k): filled in place, wrapped or not
          auto out = w.writable();
          ASSERT_EQ(out.size(), cap - model.size());
          const std::size_t k = out.empty() ? 0 : rng() % (out.size() + 1);
          for (std::size_t i = 0; i < k; ++i) {
            out[i] = static_cast<std::byte>('a' + next % 26);
            model.push_back(static_cast<char>('a' + next++ % 26));
          }
          w.commit(k);
          break;
        }
        case 2: {  // readable(): everything, one span; release a prefix
          auto in = r.readable();
          ASSERT_EQ(in.size(), model.size());
          ASSERT_TRUE(std::equal(model.begin(), model.end(), reinterpret_cast<const char*>(in.data())));
          const std::size_t k = in.empty() ? 0 : rng() % (in.size() + 1);
          r.release(k);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        default: {  // read() into a buffer
          std::string out(1 + rng() % cap, '\0');
          const std::size_t n = r.read(std::as_writable_bytes(std::span(out)));
          ASSERT_EQ(n, std::min(out.size(), model.size()));
          ASSERT_TRUE(std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), model.begin()));
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
        }
      }
    }
    // Bad input changes nothing.
    const std::size_t before = r.readable().size();
    EXPECT_THROW(w.commit(cap - before + 1), std::out_of_range);
    EXPECT_THROW(r.release(before + 1), std::out_of_range);
    EXPECT_EQ(r.readable().size(), before);
    EXPECT_THROW(static_cast<void>(r.wait(cap + 1, 0s)), std::length_error);
    EXPECT_THROW(static_cast<void>(w.wait_for_space(cap + 1, 0s)), std::length_error);
    EXPECT_EQ(r.wait(before + 1, 1ms), QueueStatus::timed_out);
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
}

TEST(SharedByteStream, RecordsAndBytesDoNotMix) {
  auto records = SharedRecordWriter::create(4096);
  auto bytes = picoring::SharedStreamWriter::create(4096);
  try {
    static_cast<void>(picoring::SharedStreamReader::attach(records.fd()));
    ADD_FAILURE() << "a stream reader attached to a record queue";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    EXPECT_NE(std::string(e.what()).find("kind"), std::string::npos) << e.what();
  }
  EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(bytes.fd())), std::system_error);
}

// Streams 16 MiB to a forked reader that checks every byte; `batching` on both ends.
void stream_to_a_child(picoring::Batching batching) {
  auto w = picoring::SharedStreamWriter::create(std::size_t{64} * 1024);
  w.set_batching(batching);
  const int fd = w.fd();
  constexpr std::uint64_t kBytes = std::uint64_t{16} << 20;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int status = 0;
    try {
      auto r = picoring::SharedStreamReader::attach(fd);
      r.set_batching(batching);
      std::uint64_t at = 0;
      while (status == 0 && r.wait(1, 30s) == QueueStatus::ok) {
        const auto in = r.readable();
        for (std::byte b : in) {
          if (b != static_cast<std::byte>(at * 7 + at / 4096)) status = 3;
          ++at;
        }
        r.release(in.size());
      }
      if (status == 0 && at != kBytes) status = 2;
    } catch (...) {
      status = 5;
    }
    ::_exit(status);
  }
  ASSERT_GT(pid, 0);
  std::vector<std::byte> chunk(3000);
  for (std::uint64_t at = 0; at < kBytes;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), kBytes - at));
    for (std::size_t i = 0; i < n; ++i) chunk[i] = static_cast<std::byte>((at + i) * 7 + (at + i) / 4096);
    std::size_t written = 0;
    ASSERT_EQ(w.write_all(std::span(chunk).first(n), 30s, &written), QueueStatus::ok);
    ASSERT_EQ(written, n);
    at += n;
  }
  w.close();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SharedByteStream, AChildProcessReadsEveryByteInOrder) { stream_to_a_child({}); }
TEST(SharedByteStream, AndWithBatchingOnBothEnds) { stream_to_a_child({16384, 2us}); }

TEST(SharedByteStream, LyingCountersFailCleanly) {
  {
    auto w = picoring::SharedStreamWriter::create(4096);
    auto r = picoring::SharedStreamReader::attach(w.fd());
    RawHeader h(w.fd());
    h.p->tail.store(w.capacity() + 1);  // more published than the ring holds
    try {
      static_cast<void>(r.readable());
      ADD_FAILURE() << "an out-of-range tail was accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    }
    EXPECT_TRUE(r.closed()) << "a corrupt peer closes the stream";
  }
  {
    auto w = picoring::SharedStreamWriter::create(4096);
    auto r = picoring::SharedStreamReader::attach(w.fd());
    const std::string text(w.capacity(), 'z');
    ASSERT_EQ(w.write(bytes_of(text)), w.capacity());
    RawHeader h(w.fd());
    h.p->head.store(w.capacity() + 8);  // released more than was written
    EXPECT_THROW(static_cast<void>(w.writable()), std::system_error);
    EXPECT_TRUE(w.closed());
  }
}

// Residency: each process's mapping (header page and both data views) is made resident as its
// end asks, without touching the records already there.
long thread_minor_faults() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return u.ru_minflt;
}

// Pushes records of 1000 bytes until `bytes` have gone through, popping as it goes (a full lap
// and more); returns the minor faults the writer and reader took.
long faults_over_a_lap(SharedRecordWriter& w, SharedRecordReader& r, std::size_t bytes) {
  const std::string rec(1000, 'x');
  const long before = thread_minor_faults();
  for (std::size_t done = 0; done < bytes; done += rec.size()) {
    if (!w.push(bytes_of(rec))) {
      r.pop();
      EXPECT_TRUE(w.push(bytes_of(rec)));
    }
  }
  return thread_minor_faults() - before;
}

TEST(SharedRecordQueue, EachEndPopulatesItsMappingAsAskedAndLeavesTheRecordsAlone) {
  if (picoring_test::kSanitized || picoring_test::emulator() != nullptr)
    GTEST_SKIP() << "sanitizers and emulators take page faults of their own";
  const std::size_t size = std::size_t{4} << 20;
  const auto pages = static_cast<long>(size / picoring::allocation_granularity());
  {
    auto w = SharedRecordWriter::create(size);
    auto r = SharedRecordReader::attach(w.fd());
    EXPECT_GE(faults_over_a_lap(w, r, 2 * size), pages) << "the control: on demand, a lap faults its pages";
  }
  for (auto residency : {picoring::Residency::populate, picoring::Residency::lock_if_allowed}) {
    auto w = SharedRecordWriter::create(size, residency);
    ASSERT_TRUE(w.push(bytes_of("written before the reader attached")));
    auto r = SharedRecordReader::attach(w.fd(), residency);
    EXPECT_EQ(string_of(r.front()), "written before the reader attached") << "populating wrote nothing";
    r.pop();
    EXPECT_LE(faults_over_a_lap(w, r, 2 * size), 4) << "residency " << static_cast<int>(residency);
  }
}

TEST(SharedRecordQueue, ALockedEndStaysLockedUntilItGoes) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << "VmLck under an emulator is the emulator's";
  if (picoring_test::kSanitized) GTEST_SKIP() << "the sanitizer runtime turns mlock into a no-op";
  const std::size_t before = picoring_test::locked_bytes();
  {
    std::optional<SharedRecordWriter> w;
    try {
      w.emplace(SharedRecordWriter::create(std::size_t{1} << 20, picoring::Residency::lock));
    } catch (const std::system_error& e) {
      ASSERT_NE(std::string(e.what()).find("mlock"), std::string::npos) << e.what();
      GTEST_SKIP() << "RLIMIT_MEMLOCK is too low here: " << e.what();
    }
    EXPECT_TRUE(w->locked());
    EXPECT_GE(picoring_test::locked_bytes() - before, 2 * w->capacity() + picoring::allocation_granularity());
  }
  EXPECT_EQ(picoring_test::locked_bytes(), before);
}

TEST(SharedRecordQueue, ARefusedLockIsAnErrorOrFallsBackAndLeaksNothing) {
  if (picoring_test::kSanitized) GTEST_SKIP() << "the sanitizer runtime turns mlock into a no-op";
  const int rc = in_child([] {
    if (!picoring_test::drop_ipc_lock_capability()) return 77;
    rlimit lim{};
    ::getrlimit(RLIMIT_MEMLOCK, &lim);
    lim.rlim_cur = rlim_t{64} * 1024;
    if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 77;
    const bool count = picoring_test::emulator() == nullptr;
    const std::size_t fds = picoring_test::count_open_fds();
    const std::size_t maps = picoring_test::count_mappings();
    try {
      static_cast<void>(SharedRecordWriter::create(std::size_t{1} << 20, picoring::Residency::lock));
      return 1;
    } catch (const std::system_error& e) {
      if (std::string(e.what()).find("RLIMIT_MEMLOCK") == std::string::npos) return 2;
    }
    if (count && (picoring_test::count_open_fds() != fds || picoring_test::count_mappings() != maps)) return 3;
    auto w = SharedRecordWriter::create(std::size_t{1} << 20, picoring::Residency::lock_if_allowed);
    if (w.locked()) return 4;
    if (!w.push(bytes_of("still works"))) return 5;
    try {
      static_cast<void>(SharedRecordReader::attach(w.fd(), static_cast<picoring::Residency>(9)));
      return 6;
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::invalid_argument) return 7;
    }
    return 0;
  });
  if (rc == 77) GTEST_SKIP() << "cannot drop CAP_IPC_LOCK or set RLIMIT_MEMLOCK here";
  EXPECT_EQ(rc, 0);
}

// --- fixed slots between processes --------------------------------------------------------------

// 24 bytes: not a divisor of any page size, so the slots' capacity is a multiple of both.
struct Tick {
  std::uint64_t seq;
  double price;
  std::uint32_t qty;
  char venue[4];
};
static_assert(sizeof(Tick) == 24);
Tick tick(std::uint64_t seq) {
  return {seq, static_cast<double>(seq) * 0.25, static_cast<std::uint32_t>(seq * 7), {'X', 'N', 'A', 'S'}};
}
bool is_tick(const Tick& t, std::uint64_t seq) {
  const Tick want = tick(seq);
  return t.seq == want.seq && t.price == want.price && t.qty == want.qty &&
         std::equal(std::begin(t.venue), std::end(t.venue), std::begin(want.venue));
}

TEST(SharedSlotQueue, MatchesADequeAcrossManyWraps) {
  const std::size_t fds = picoring_test::count_open_fds();
  {
    auto w = picoring::SharedQueueWriter<Tick>::create(100);
    auto r = picoring::SharedQueueReader<Tick>::attach(w.fd());
    const std::size_t cap = w.capacity();
    ASSERT_EQ(cap, r.capacity());
    ASSERT_GE(cap, 100u);
    EXPECT_EQ(cap * sizeof(Tick) % picoring::allocation_granularity(), 0u) << "whole pages of whole slots";
    std::deque<std::uint64_t> model;
    std::mt19937 rng(5);
    std::uint64_t next = 0;
    for (int step = 0; step < 20000; ++step) {
      switch (rng() % 5) {
        case 0: {  // try_push
          const bool room = model.size() < cap;
          ASSERT_EQ(w.try_push(tick(next)), room);
          if (room) model.push_back(next++);
          break;
        }
        case 1: {  // push_slice: as many as fit
          std::vector<Tick> batch(1 + rng() % (cap / 2));
          for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = tick(next + i);
          const std::size_t n = w.push_slice(batch);
          ASSERT_EQ(n, std::min(batch.size(), cap - model.size()));
          for (std::size_t i = 0; i < n; ++i) model.push_back(next++);
          break;
        }
        case 2: {  // writable() + commit(k), wrapped or not
          auto out = w.writable();
          ASSERT_EQ(out.size(), cap - model.size());
          const std::size_t k = out.empty() ? 0 : rng() % (out.size() + 1);
          for (std::size_t i = 0; i < k; ++i) {
            out[i] = tick(next);
            model.push_back(next++);
          }
          w.commit(k);
          break;
        }
        case 3: {  // readable(): everything as one span; release a prefix
          auto in = r.readable();
          ASSERT_EQ(in.size(), model.size());
          for (std::size_t i = 0; i < in.size(); ++i) ASSERT_TRUE(is_tick(in[i], model[i])) << "step " << step;
          const std::size_t k = in.empty() ? 0 : rng() % (in.size() + 1);
          r.release(k);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        default: {  // try_pop
          Tick t{};
          ASSERT_EQ(r.try_pop(t), !model.empty());
          if (!model.empty()) {
            ASSERT_TRUE(is_tick(t, model.front()));
            model.pop_front();
          }
          break;
        }
      }
    }
    EXPECT_GT(next, 20 * cap) << "the ring wrapped many times";
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
}

TEST(SharedSlotQueue, BadInputIsRejectedAndChangesNothing) {
  auto w = picoring::SharedQueueWriter<Tick>::create(100);
  auto r = picoring::SharedQueueReader<Tick>::attach(w.fd());
  ASSERT_TRUE(w.try_push(tick(1)));
  EXPECT_THROW(w.commit(w.capacity()), std::out_of_range) << "one slot is taken";
  EXPECT_THROW(w.commit(std::size_t{0} - 1), std::out_of_range);
  EXPECT_THROW(r.release(2), std::out_of_range);
  EXPECT_THROW(r.release(std::size_t{0} - 1), std::out_of_range);
  EXPECT_THROW(static_cast<void>(r.wait(r.capacity() + 1, 1ms)), std::length_error);
  EXPECT_THROW(static_cast<void>(w.wait_for_space(w.capacity() + 1, 1ms)), std::length_error);
  Tick t{};
  ASSERT_TRUE(r.try_pop(t)) << "the rejected calls changed nothing";
  EXPECT_TRUE(is_tick(t, 1));
  EXPECT_EQ(r.wait(1, 1ms), QueueStatus::timed_out);
  w.close();
  EXPECT_FALSE(w.try_push(tick(2)));
  EXPECT_EQ(r.pop_wait(t, 1s), QueueStatus::closed);
}

TEST(SharedSlotQueue, EndsOfAnotherElementSizeOrKindDoNotAttach) {
  auto slots = picoring::SharedQueueWriter<std::uint64_t>::create(1000);
  auto bytes = picoring::SharedStreamWriter::create(4096);
  try {
    static_cast<void>(picoring::SharedQueueReader<std::uint32_t>::attach(slots.fd()));
    ADD_FAILURE() << "a reader of 4-byte slots attached to a queue of 8-byte ones";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    EXPECT_NE(std::string(e.what()).find("element size"), std::string::npos) << e.what();
  }
  EXPECT_THROW(static_cast<void>(picoring::SharedStreamReader::attach(slots.fd())), std::system_error);
  EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(slots.fd())), std::system_error);
  EXPECT_THROW(static_cast<void>(picoring::SharedQueueReader<std::uint64_t>::attach(bytes.fd())), std::system_error);
  // A writer that takes over must find the counter on an element boundary.
  auto r = picoring::SharedQueueReader<std::uint64_t>::attach(slots.fd());
  RawHeader h(slots.fd());
  slots = {};  // the writer goes (giving its role up); a lying peer moves its counter
  h.p->tail.store(12);
  try {
    static_cast<void>(picoring::SharedQueueWriter<std::uint64_t>::attach(r.fd()));
    ADD_FAILURE() << "a writer took over at a counter inside an element";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    EXPECT_NE(std::string(e.what()).find("element boundary"), std::string::npos) << e.what();
  }
}

// Slots whose size is chosen at run time: slot `seq` of `size` bytes holds bytes derived from
// seq, so that a slot read whole names the one written.
void fill_slot(std::span<std::byte> slot, std::uint64_t seq) {
  for (std::size_t i = 0; i < slot.size(); ++i) slot[i] = static_cast<std::byte>((seq * 131 + i * 7 + 1) & 0xFF);
}
bool is_slot(std::span<const std::byte> slot, std::uint64_t seq) {
  for (std::size_t i = 0; i < slot.size(); ++i) {
    if (slot[i] != static_cast<std::byte>((seq * 131 + i * 7 + 1) & 0xFF)) return false;
  }
  return true;
}

class SharedRunTimeSlots : public ::testing::TestWithParam<std::size_t> {};

// 1 and 24 bytes divide a page, 3 and 1100 do not (the ring is then 1100 pages of 4 KiB, or as
// many of 16 or 64 KiB): every size must wrap on a slot boundary, and a slot across the end is
// one span all the same.
TEST_P(SharedRunTimeSlots, MatchADequeAcrossManyWraps) {
  const std::size_t size = GetParam();
  const std::size_t fds = picoring_test::count_open_fds();
  {
    auto w = picoring::SharedSlotWriter::create(50, size);
    auto r = picoring::SharedSlotReader::attach(w.fd(), size);
    const std::size_t cap = w.capacity();
    ASSERT_EQ(cap, r.capacity());
    ASSERT_GE(cap, 50u);
    ASSERT_EQ(w.slot_size(), size);
    ASSERT_EQ(r.slot_size(), size);
    EXPECT_EQ(cap * size % picoring::allocation_granularity(), 0u) << "whole pages of whole slots";
    std::deque<std::uint64_t> model;
    std::mt19937 rng(static_cast<unsigned>(size));
    std::uint64_t next = 0;
    std::vector<std::byte> one(size);
    // At least 6,000 calls, and until the ring has wrapped three times (with 64 KiB pages a
    // ring of 1-byte slots holds 65,536 of them).
    for (int step = 0; step < 6000 || next <= 3 * cap; ++step) {
      switch (rng() % 5) {
        case 0: {  // push_slice: as many whole slots as fit
          std::vector<std::byte> batch((1 + rng() % std::min<std::size_t>(cap / 2 + 1, 64)) * size);
          for (std::size_t i = 0; i < batch.size() / size; ++i) {
            fill_slot(std::span(batch).subspan(i * size, size), next + i);
          }
          const std::size_t n = w.push_slice(batch);
          ASSERT_EQ(n, std::min(batch.size() / size, cap - model.size()));
          for (std::size_t i = 0; i < n; ++i) model.push_back(next++);
          break;
        }
        case 1: {  // writable() + commit(k), wrapped or not
          auto out = w.writable();
          ASSERT_EQ(out.size(), (cap - model.size()) * size);
          const std::size_t free = out.size() / size;
          const std::size_t k = free == 0 ? 0 : rng() % (std::min<std::size_t>(free, 64) + 1);
          for (std::size_t i = 0; i < k; ++i) {
            fill_slot(out.subspan(i * size, size), next);
            model.push_back(next++);
          }
          w.commit(k);
          break;
        }
        case 2: {  // readable(): every slot as one span; release a prefix
          auto in = r.readable();
          ASSERT_EQ(in.size(), model.size() * size);
          for (std::size_t i = 0; i < model.size(); ++i) {
            // Every slot at the ends, a sixteenth of those between (big slots are slow to
            // compare in a Debug build under qemu).
            if (i >= 4 && i + 4 < model.size() && rng() % 16 != 0) continue;
            ASSERT_TRUE(is_slot(in.subspan(i * size, size), model[i])) << "step " << step << ", slot " << i;
          }
          const std::size_t k = model.empty() ? 0 : rng() % (model.size() + 1);
          r.release(k);
          model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        case 3: {  // try_pop
          ASSERT_EQ(r.try_pop(one), !model.empty());
          if (!model.empty()) {
            ASSERT_TRUE(is_slot(one, model.front()));
            model.pop_front();
          }
          break;
        }
        default: {         // bad input changes nothing
          if (size > 1) {  // a part of a slot (with 1-byte slots, every span is whole slots)
            std::vector<std::byte> partial(size + 1);
            EXPECT_THROW(static_cast<void>(w.push_slice(partial)), std::invalid_argument);
          }
          std::vector<std::byte> wrong(size + 1);
          EXPECT_THROW(static_cast<void>(r.try_pop(wrong)), std::invalid_argument);
          EXPECT_THROW(r.release(model.size() + 1), std::out_of_range);
          EXPECT_THROW(w.commit(cap - model.size() + 1), std::out_of_range);
          ASSERT_EQ(r.readable().size(), model.size() * size);
          break;
        }
      }
    }
    EXPECT_GT(next, 3 * cap) << "the ring wrapped several times";
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
}
INSTANTIATE_TEST_SUITE_P(SlotSizes, SharedRunTimeSlots, ::testing::Values(1, 3, 24, 1100),
                         [](const ::testing::TestParamInfo<std::size_t>& p) { return std::to_string(p.param) + "B"; });

TEST(SharedSlotQueue, RunTimeSlotsAttachToTypedEndsOfTheirSizeOnly) {
  // A typed writer, a run-time reader of sizeof(Tick) bytes: the same queue.
  auto w = picoring::SharedQueueWriter<Tick>::create(100);
  auto r = picoring::SharedSlotReader::attach(w.fd(), sizeof(Tick));
  ASSERT_EQ(w.push_slice(std::vector<Tick>{tick(1), tick(2)}), 2u);
  Tick t{};
  std::span<std::byte> out(reinterpret_cast<std::byte*>(&t), sizeof t);
  ASSERT_TRUE(r.try_pop(out));
  EXPECT_TRUE(is_tick(t, 1));
  const auto in = r.readable();
  ASSERT_EQ(in.size(), sizeof(Tick));
  std::memcpy(&t, in.data(), sizeof t);
  EXPECT_TRUE(is_tick(t, 2));
  // And the other way round.
  auto w2 = picoring::SharedSlotWriter::create(100, sizeof(Tick));
  auto r2 = picoring::SharedQueueReader<Tick>::attach(w2.fd());
  const Tick sent = tick(7);
  ASSERT_EQ(w2.push_slice(std::span(reinterpret_cast<const std::byte*>(&sent), sizeof sent)), 1u);
  ASSERT_TRUE(r2.try_pop(t));
  EXPECT_TRUE(is_tick(t, 7));
  // Another size, another kind, or a size that cannot be: refused, naming why.
  try {
    static_cast<void>(picoring::SharedSlotWriter::attach(r2.fd(), 16));
    ADD_FAILURE() << "a writer of 16-byte slots attached to a queue of 24-byte ones";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
    EXPECT_NE(std::string(e.what()).find("element size"), std::string::npos) << e.what();
  }
  auto bytes = picoring::SharedStreamWriter::create(4096);
  EXPECT_THROW(static_cast<void>(picoring::SharedSlotReader::attach(bytes.fd(), 1)), std::system_error);
  EXPECT_THROW(static_cast<void>(picoring::SharedSlotWriter::create(10, 0)), std::invalid_argument);
  if constexpr (sizeof(std::size_t) > 4) {
    const auto too_big = std::size_t{std::numeric_limits<std::uint32_t>::max()} + 1;
    EXPECT_THROW(static_cast<void>(picoring::SharedSlotReader::create(1, too_big)), std::invalid_argument);
  }
  EXPECT_THROW(static_cast<void>(picoring::SharedSlotReader::attach(bytes.fd(), 0)), std::invalid_argument);
}

// 300,000 ticks to a forked reader, every push and pop form on the way; `batching` on both ends.
void ticks_to_a_child(picoring::Batching batching) {
  auto w = picoring::SharedQueueWriter<Tick>::create(1000);
  w.set_batching(batching);
  const int fd = w.fd();
  constexpr std::uint64_t kTicks = 300000;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int status = 0;
    try {
      auto r = picoring::SharedQueueReader<Tick>::attach(fd);
      r.set_batching(batching);
      std::uint64_t at = 0;
      Tick t{};
      while (status == 0 && at < kTicks) {
        if (at % 2 == 0) {
          if (r.pop_wait(t, 30s) != QueueStatus::ok) status = 4;
          if (status == 0 && !is_tick(t, at++)) status = 3;
        } else {
          if (r.wait(1, 30s) != QueueStatus::ok) status = 4;
          const auto in = r.readable();
          for (std::size_t i = 0; status == 0 && i < in.size(); ++i) {
            if (!is_tick(in[i], at++)) status = 3;
          }
          r.release(in.size());
        }
      }
      if (status == 0 && r.wait(1, 30s) != QueueStatus::closed) status = 2;
    } catch (...) {
      status = 5;
    }
    ::_exit(status);
  }
  ASSERT_GT(pid, 0);
  std::vector<Tick> batch;
  for (std::uint64_t seq = 0; seq < kTicks;) {
    if (seq % 3 == 0) {
      ASSERT_EQ(w.push_wait(tick(seq), 30s), QueueStatus::ok);
      ++seq;
    } else {
      batch.clear();
      for (std::uint64_t i = seq; i < kTicks && batch.size() < 50; ++i) batch.push_back(tick(i));
      const std::size_t n = w.push_slice(batch);
      if (n == 0) {
        ASSERT_EQ(w.wait_for_space(1, 30s), QueueStatus::ok);
      }
      seq += n;
    }
  }
  w.close();
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SharedSlotQueue, AChildProcessGetsEveryElementInOrder) { ticks_to_a_child({}); }
TEST(SharedSlotQueue, AndWithBatchingOnBothEnds) { ticks_to_a_child({100, 2us}); }

TEST(SharedQueues, BatchingIsSetPerEndAndANegativeWaitChangesNothing) {
  auto w = SharedRecordWriter::create(4096);
  EXPECT_EQ(w.batching().min_batch, 0u) << "off by default";
  w.set_batching({512, 1us});
  EXPECT_EQ(w.batching().min_batch, 512u);
  EXPECT_EQ(w.batching().max_wait, 1us);
  EXPECT_THROW(w.set_batching({64, -1ns}), std::invalid_argument);
  EXPECT_EQ(w.batching().min_batch, 512u) << "a refused setting changes nothing";
  auto r = SharedRecordReader::attach(w.fd());
  EXPECT_EQ(r.batching().min_batch, 0u) << "each end has its own";
  w.set_batching({});
  EXPECT_EQ(w.batching().max_wait, 0ns);
  // The slot queue counts in elements (the stream under it in bytes).
  auto q = picoring::SharedQueueWriter<Tick>::create(1000);
  q.set_batching({10, 1us});
  EXPECT_EQ(q.batching().min_batch, 10u);
  q.set_batching({std::numeric_limits<std::size_t>::max(), 1us});
  EXPECT_EQ(q.batching().min_batch, std::numeric_limits<std::size_t>::max() / sizeof(Tick)) << "no overflow";
  // An idle end is never delayed, and what batching finds is still checked: a push and a pop
  // with batching on behave as without it.
  r.set_batching({4096, 1ms});
  EXPECT_TRUE(r.front().empty());
  ASSERT_TRUE(w.push(bytes_of("one")));
  EXPECT_EQ(string_of(r.front()), "one");
  r.pop();
}

// One process, so each look finds exactly what the test wrote. A wait lasts at least kWait; a
// look that must not wait runs with a wait of kNever, so a wrong wait shows as a slow call.
TEST(SharedQueues, BatchingWaitsOnlyWhenALookFindsLittleWhileStreaming) {
  constexpr auto kWait = 20ms;
  constexpr auto kNever = 20s;
  const auto time_of = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::steady_clock::now() - t0;
  };
  auto w = SharedRecordWriter::create(std::size_t{64} * 1024);
  auto r = SharedRecordReader::attach(w.fd());
  r.set_batching({4096, kNever});
  ASSERT_TRUE(w.push(bytes_of("a")));
  EXPECT_LT(time_of([&] { EXPECT_EQ(string_of(r.front()), "a"); }), kNever / 2) << "a new end is idle: no wait";
  r.pop();
  r.set_batching({4096, kWait});
  ASSERT_TRUE(w.push(bytes_of("b")));
  EXPECT_GE(time_of([&] { EXPECT_EQ(string_of(r.front()), "b"); }), kWait) << "streaming, 16 < 4096 bytes: waits";
  EXPECT_LT(time_of([&] { r.pop(); }), kNever / 2) << "pop takes what front() found";
  // Every wait form looks without waiting.
  r.set_batching({4096, kNever});
  EXPECT_EQ(r.wait(0ns), QueueStatus::timed_out);
  // A look that finds min_batch does not wait.
  const std::string line(4000, 'x');
  ASSERT_TRUE(w.push(bytes_of(line)));
  ASSERT_TRUE(w.push(bytes_of(line)));
  EXPECT_LT(time_of([&] { EXPECT_EQ(r.front().size(), line.size()); }), kNever / 2);
  // The slot queue's reader in elements: 1 of 10 found while streaming waits.
  auto q = picoring::SharedQueueWriter<Tick>::create(1000);
  auto c = picoring::SharedQueueReader<Tick>::attach(q.fd());
  ASSERT_TRUE(q.try_push(tick(0)));
  Tick t{};
  ASSERT_TRUE(c.try_pop(t));  // streaming from here on
  c.set_batching({10, kWait});
  ASSERT_TRUE(q.try_push(tick(1)));
  EXPECT_GE(time_of([&] { EXPECT_TRUE(c.try_pop(t)); }), kWait);
  EXPECT_TRUE(is_tick(t, 1));
}
// --- records from many processes: SharedRecordFanIn ---------------------------------------------

using picoring::SharedRecordFanIn;

// "<lane>.<seq>:" then filler: a fan-in record says which lane wrote it and where in that lane.
std::string lane_record(std::size_t lane, std::uint64_t seq, std::size_t len) {
  std::string s = std::to_string(lane) + "." + numbered(seq, 0);
  while (s.size() < len) s.push_back(static_cast<char>('a' + (lane + seq + s.size()) % 26));
  return s;
}
std::size_t lane_of(const std::string& rec) { return std::stoul(rec.substr(0, rec.find('.'))); }

// One lane written from this process: its writer and the records it published, in order.
struct ModelLane {
  std::uint64_t id = 0;  // what SharedRecordFanIn::add returned
  std::optional<SharedRecordWriter> writer;
  std::deque<std::string> published;
  std::uint64_t next = 0;
};

// Lanes added, written, ended (writer closed or destroyed) and read through the fan-in at
// random: every record the fan-in gives is the oldest of the lane that wrote it, an ended lane
// is dropped exactly when it is drained, and at the end everything was read.
TEST(SharedFanIn, MatchesOneDequePerLaneWithLanesAddedAndEnded) {
  std::mt19937 rng(5);
  SharedRecordFanIn in;
  std::vector<ModelLane> lanes;  // index: the lane's number (its records carry it)
  std::size_t taken = 0;
  const auto add_lane = [&] {
    ModelLane lane;
    lane.writer = SharedRecordWriter::create(1);
    lane.id = in.add(lane.writer->fd());
    ASSERT_EQ(lane.id, lanes.size() + 1) << "ids count from 1, one per lane added";
    lanes.push_back(std::move(lane));
  };
  const auto ended_and_drained = [&] {
    std::size_t n = 0;
    for (const auto& l : lanes) n += !l.writer.has_value() && l.published.empty();
    return n;
  };
  const auto take = [&](const std::string& rec, std::uint64_t id) {
    const std::size_t lane = lane_of(rec);
    ASSERT_LT(lane, lanes.size());
    ASSERT_EQ(id, lanes[lane].id) << "the lane's id comes with its records";
    ASSERT_FALSE(lanes[lane].published.empty()) << rec;
    ASSERT_EQ(rec, lanes[lane].published.front());
    lanes[lane].published.pop_front();
    ++taken;
  };
  for (int i = 0; i < 3; ++i) add_lane();
  std::size_t dropped_before = 0;
  for (int step = 0; step < 30000; ++step) {
    const auto op = rng() % 100;
    if (op < 45) {
      std::vector<std::size_t> live;
      for (std::size_t i = 0; i < lanes.size(); ++i)
        if (lanes[i].writer) live.push_back(i);
      if (live.empty()) continue;
      const std::size_t lane = live[rng() % live.size()];
      ModelLane& l = lanes[lane];
      const std::string rec = lane_record(lane, l.next, 8 + rng() % (l.writer->capacity() / 16));
      if (!l.writer->push(bytes_of(rec))) continue;  // full
      l.published.push_back(rec);
      ++l.next;
    } else if (op < 65) {
      const auto rec = in.front();
      bool any = false;
      for (const auto& l : lanes) any = any || !l.published.empty();
      ASSERT_EQ(rec.empty(), !any);
      // A look that finds nothing has been round every lane and dropped the ended ones.
      if (rec.empty()) {
        ASSERT_EQ(in.lanes(), lanes.size() - ended_and_drained());
        continue;
      }
      take(string_of(rec), in.front_lane());
      in.pop();
      ASSERT_EQ(in.front_lane(), 0u);
    } else if (op < 90) {
      const std::size_t max = rng() % 8;
      const std::size_t n =
          in.drain([&](std::span<const std::byte> rec, std::uint64_t id) { take(string_of(rec), id); }, max);
      ASSERT_LE(n, max);
    } else if (op < 95) {
      std::size_t live = 0;
      for (const auto& l : lanes) live += l.writer.has_value();
      if (live < 6) add_lane();
    } else if (op < 97) {
      ModelLane& l = lanes[rng() % lanes.size()];
      if (!l.writer) continue;
      if (rng() % 2 == 0) l.writer->close();  // the records stay readable
      l.writer.reset();                       // the destructor closes too
    } else {
      EXPECT_EQ(in.wait(0ns) == QueueStatus::ok, [&] {
        for (const auto& l : lanes)
          if (!l.published.empty()) return true;
        return false;
      }());
    }
    // Only ended, drained lanes are ever dropped, and only when the reader comes by.
    const std::size_t dropped = lanes.size() - in.lanes();
    ASSERT_LE(dropped, ended_and_drained());
    ASSERT_GE(dropped, dropped_before);
    dropped_before = dropped;
  }
  for (auto& l : lanes) l.writer.reset();
  while (in.wait(0ns) == QueueStatus::ok) {
    // The one-argument form too: the lane is then known from the record alone.
    in.drain([&](std::span<const std::byte> rec) { take(string_of(rec), lanes[lane_of(string_of(rec))].id); });
  }
  for (const auto& l : lanes) EXPECT_TRUE(l.published.empty());
  EXPECT_GT(taken, 3000u) << "the run moved records through many lanes";
  EXPECT_EQ(in.wait(0ns), QueueStatus::closed);
  EXPECT_EQ(in.lanes(), 0u);
}

// A lane kept full cannot keep the others waiting: a turn gives at most what its lane held when
// the turn began.
TEST(SharedFanIn, TurnsKeepABusyLaneFromStarvingTheOthers) {
  auto busy = SharedRecordWriter::create(1);
  auto quiet = SharedRecordWriter::create(1);
  SharedRecordFanIn in;
  in.add(busy.fd());
  in.add(quiet.fd());
  const std::string small(8, 'b');
  std::size_t per_turn = 0;
  while (busy.push(bytes_of(small))) ++per_turn;
  // The busy lane's turn begins (the quiet lane has nothing yet), then the quiet one writes.
  ASSERT_EQ(string_of(in.front()), small);
  in.pop();
  ASSERT_TRUE(busy.push(bytes_of(small)));
  ASSERT_TRUE(quiet.push(bytes_of("quiet")));
  // The busy lane is refilled after every record taken from it; the quiet one must come within
  // two of the busy lane's turns.
  std::size_t taken = 0;
  bool quiet_seen = false;
  while (!quiet_seen && taken <= 2 * per_turn + 1) {
    const std::string rec = string_of(in.front());
    in.pop();
    ++taken;
    if (rec == "quiet") quiet_seen = true;
    ASSERT_TRUE(quiet_seen || busy.push(bytes_of(small)));
  }
  EXPECT_TRUE(quiet_seen) << "after " << taken << " records from the busy lane";
}

// Producer processes, each the writer of its own lane, all at once: every record arrives, in
// order per producer; lanes go as their writers exit, then the wait reports closed; nothing
// is left open.
TEST(SharedFanIn, ProcessesWriteInParallelAndEachKeepsItsOrder) {
  constexpr std::size_t kProducers = 4;
  constexpr std::uint64_t kRecords = 20000;
  const std::size_t fds = picoring_test::count_open_fds();
  {
    SharedRecordFanIn in;
    std::vector<pid_t> children;
    for (std::size_t p = 0; p < kProducers; ++p) {
      // The reading side makes the lane and the child attaches as its writer.
      auto lane = SharedRecordReader::create(std::size_t{16} * 1024);
      const int fd = lane.fd();
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid == 0) {
        int status = 0;
        try {
          auto w = SharedRecordWriter::attach(fd);
          for (std::uint64_t i = 0; i < kRecords && status == 0; ++i) {
            if (w.push_wait(bytes_of(lane_record(p, i, 8 + static_cast<std::size_t>(i % 200))), 30s) != QueueStatus::ok)
              status = 1;
          }
        } catch (...) {
          status = 2;
        }
        ::_exit(status);  // after the writer's destructor: the lane is closed
      }
      ASSERT_GT(pid, 0);
      children.push_back(pid);
      lane.close_fd();
      in.add(std::move(lane));
    }
    std::vector<std::uint64_t> next(kProducers, 0);
    bool in_order = true;
    while (in.wait(30s) == QueueStatus::ok) {
      in.drain([&](std::span<const std::byte> rec) {
        const std::string s = string_of(rec);
        const std::size_t p = lane_of(s);
        in_order =
            in_order && p < kProducers && s == lane_record(p, next[p], 8 + static_cast<std::size_t>(next[p] % 200));
        if (p < kProducers) ++next[p];
      });
    }
    EXPECT_TRUE(in_order);
    for (std::size_t p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kRecords) << "producer " << p;
    EXPECT_EQ(in.lanes(), 0u);
    EXPECT_EQ(in.wait(0ns), QueueStatus::closed);
    for (const pid_t pid : children) {
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
  }
  EXPECT_EQ(picoring_test::count_open_fds(), fds);
}

// A writer's process that dies without closing ends its lane all the same: what it published is
// read, then the lane is dropped and the wait reports closed, long before its timeout.
TEST(SharedFanIn, AWriterThatDiesWithoutClosingEndsItsLane) {
  SharedRecordFanIn in;
  auto lane = SharedRecordReader::create(4096);
  const int fd = lane.fd();
  in.add(std::move(lane));
  const int status = in_child([fd] {
    auto w = SharedRecordWriter::attach(fd);
    for (std::uint64_t i = 0; i < 3; ++i) w.push(bytes_of(lane_record(0, i, 20)));
    ::_exit(0);  // a crash: no destructor, nothing closed
    return 1;
  });
  ASSERT_EQ(status, 0);
  std::uint64_t got = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (in.wait(30s) == QueueStatus::ok) {
    in.drain([&](std::span<const std::byte> rec) { EXPECT_EQ(string_of(rec), lane_record(0, got++, 20)); });
  }
  EXPECT_EQ(got, 3u);
  EXPECT_EQ(in.lanes(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the writer's death must end the wait, not the timeout";
}

// A lane whose writer publishes a counter that cannot be right is dropped, the call that found
// it throws, and the other lanes go on.
TEST(SharedFanIn, ACorruptLaneIsDroppedAndTheOthersGoOn) {
  for (const bool by_wait : {false, true}) {
    auto bad = SharedRecordWriter::create(1);
    auto good = SharedRecordWriter::create(1);
    SharedRecordFanIn in;
    in.add(bad.fd());
    in.add(good.fd());
    ASSERT_TRUE(good.push(bytes_of("fine")));
    RawHeader h(bad.fd());
    h.p->tail.store(12);  // not a whole record
    int thrown = 0;
    std::vector<std::string> got;
    for (int i = 0; i < 4 && got.empty(); ++i) {
      try {
        if (by_wait && in.wait(0ns) != QueueStatus::ok) continue;
        in.drain([&](std::span<const std::byte> rec) { got.push_back(string_of(rec)); });
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state);
        ++thrown;
      }
    }
    EXPECT_EQ(thrown, 1) << (by_wait ? "wait" : "drain");
    EXPECT_EQ(got, std::vector<std::string>{"fine"});
    EXPECT_EQ(in.lanes(), 1u);
    EXPECT_TRUE(bad.closed()) << "the corrupt lane was closed";
  }
}

TEST(SharedFanIn, BadInputIsRejectedAndChangesNothing) {
  SharedRecordFanIn in;
  EXPECT_EQ(in.wait(0ns), QueueStatus::closed) << "no lane: nothing will ever come";
  EXPECT_TRUE(in.front().empty());
  EXPECT_THROW(in.pop(), std::out_of_range);
  EXPECT_THROW(in.add(-1), std::system_error);
  EXPECT_THROW(in.add(SharedRecordReader{}), std::invalid_argument);
  auto stream = picoring::SharedStreamWriter::create(1);
  EXPECT_THROW(in.add(stream.fd()), std::system_error) << "a byte stream is not a record lane";
  EXPECT_EQ(in.lanes(), 0u);
  {
    auto twice = SharedRecordWriter::create(1);
    EXPECT_EQ(in.add(twice.fd()), 1u);
    try {
      in.add(twice.fd());
      ADD_FAILURE() << "one queue became two lanes";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::device_or_resource_busy) << "its reader role is taken";
    }
    EXPECT_EQ(in.lanes(), 1u);
  }
  // The writer is gone: the lane ends, and the next look drops it.
  EXPECT_EQ(in.wait(1s), QueueStatus::closed);
  EXPECT_EQ(in.lanes(), 0u);
  std::vector<SharedRecordWriter> writers;
  for (std::size_t i = 0; i < SharedRecordFanIn::kMaxLanes; ++i) {
    writers.push_back(SharedRecordWriter::create(1));
    EXPECT_EQ(in.add(writers.back().fd()), i + 2) << "the refused adds above took no id";
  }
  auto one_more = SharedRecordWriter::create(1);
  EXPECT_THROW(in.add(one_more.fd()), std::length_error);
  EXPECT_EQ(in.lanes(), SharedRecordFanIn::kMaxLanes);
  ASSERT_TRUE(writers[77].push(bytes_of("from lane 77")));
  EXPECT_EQ(in.wait(1s), QueueStatus::ok);
  EXPECT_EQ(string_of(in.front()), "from lane 77");
  EXPECT_EQ(in.front_lane(), 79u);
  in.close();
  EXPECT_TRUE(in.closed());
  EXPECT_TRUE(writers[3].closed()) << "close() closes every lane";
  EXPECT_FALSE(writers[3].push(bytes_of("too late")));
  EXPECT_THROW(in.add(one_more.fd()), std::logic_error);
  EXPECT_EQ(string_of(in.front()), "from lane 77") << "what was published can still be read";
  in.pop();
  EXPECT_EQ(in.wait(1s), QueueStatus::closed);
  EXPECT_EQ(in.lanes(), 0u);
}

// A wait that has parked wakes for a record on any lane: with futex_waitv, and where the kernel
// lacks it (denied here by a seccomp filter, as on kernels before 5.16), by looking again.
void a_parked_wait_wakes_for_any_lane() {
  std::vector<SharedRecordWriter> writers;
  SharedRecordFanIn in;
  for (int i = 0; i < 3; ++i) {
    writers.push_back(SharedRecordWriter::create(1));
    in.add(writers.back().fd());
  }
  for (const std::size_t lane : {2u, 0u, 1u}) {
    std::thread pusher([&] {
      std::this_thread::sleep_for(30ms);  // long after the wait's spin: it has parked
      EXPECT_TRUE(writers[lane].push(bytes_of(lane_record(lane, 0, 10))));
    });
    EXPECT_EQ(in.wait(30s), QueueStatus::ok);
    pusher.join();
    EXPECT_EQ(string_of(in.front()), lane_record(lane, 0, 10));
    in.pop();
  }
}
TEST(SharedFanIn, AParkedWaitWakesForARecordOnAnyLane) { a_parked_wait_wakes_for_any_lane(); }
TEST(SharedFanIn, AndWhereTheKernelHasNoFutexWaitv) {
  if (picoring_test::emulator() != nullptr) GTEST_SKIP() << picoring_test::emulator() << " has no seccomp filters";
  if (picoring_test::kSanitized) GTEST_SKIP() << "sanitizer runtimes make system calls a filter would disturb";
#if defined(SYS_futex_waitv)
  const int rc = in_child([] {
    if (!picoring_test::deny_syscall(SYS_futex_waitv, ENOSYS)) return 78;
    a_parked_wait_wakes_for_any_lane();
    return ::testing::Test::HasFailure() ? 1 : 0;
  });
  if (rc == 78) GTEST_SKIP() << "seccomp filters cannot be installed here";
  EXPECT_EQ(rc, 0);
#else
  GTEST_SKIP() << "these headers do not know futex_waitv: the fallback is the only path";
#endif
}
}  // namespace

#endif  // __linux__

#if defined(_WIN32)

// The same queues on Windows: a section for the memfd, named events for the futexes, process
// handles for pidfds. Run under wine in CI (the legacy mapping path); second processes are this
// test program started again to run one disabled test (CreateProcess, the handle inherited).
#include <windows.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "picoring/shared_queue.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using picoring::QueueStatus;
using picoring::SharedRecordReader;
using picoring::SharedRecordWriter;

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }
std::string string_of(std::span<const std::byte> s) { return {reinterpret_cast<const char*>(s.data()), s.size()}; }
// A handle value is an integer the system gives out as a pointer type.
HANDLE handle_of(int fd) {
  return reinterpret_cast<HANDLE>(static_cast<std::intptr_t>(fd));  // NOLINT(performance-no-int-to-ptr)
}
int int_of(HANDLE h) { return static_cast<int>(reinterpret_cast<std::intptr_t>(h)); }
// Record n of a stream: its number, then filler to a length that varies with n.
std::string numbered(std::uint64_t n) {
  std::string s = std::to_string(n) + ":";
  const std::size_t len = 1 + (n * 7919) % 3000;
  while (s.size() < len) s.push_back(static_cast<char>('a' + (n + s.size()) % 26));
  return s;
}

constexpr const char* kHandleVariable = "PICORING_SHARED_CHILD_HANDLE";

// Runs this program again with `test` (a disabled test of this file) and an inheritable copy of
// `fd` named in the environment; returns the child's exit code, or -1 when it did not end
// within 120 s.
int run_child(const char* test, int fd) {
  HANDLE inheritable = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), handle_of(fd), ::GetCurrentProcess(), &inheritable, 0, TRUE,
                         DUPLICATE_SAME_ACCESS))
    return -2;
  ::SetEnvironmentVariableA(kHandleVariable, std::to_string(int_of(inheritable)).c_str());
  wchar_t exe[MAX_PATH] = {};
  ::GetModuleFileNameW(nullptr, exe, MAX_PATH);
  std::wstring command = L"\"" + std::wstring(exe) + L"\" --gtest_also_run_disabled_tests --gtest_filter=";
  for (const char* c = test; *c != 0; ++c) command.push_back(static_cast<wchar_t>(*c));
  STARTUPINFOW si{};
  si.cb = sizeof si;
  PROCESS_INFORMATION pi{};
  const BOOL started = ::CreateProcessW(exe, command.data(), nullptr, nullptr, TRUE, 0, nullptr, nullptr, &si, &pi);
  ::CloseHandle(inheritable);  // the child has its own copy now
  ::SetEnvironmentVariableA(kHandleVariable, nullptr);
  if (!started) return -3;
  ::CloseHandle(pi.hThread);
  int code = -1;
  if (::WaitForSingleObject(pi.hProcess, 120000) == WAIT_OBJECT_0) {
    DWORD exit = 0;
    ::GetExitCodeProcess(pi.hProcess, &exit);
    code = static_cast<int>(exit);
  }
  ::CloseHandle(pi.hProcess);
  return code;
}

// In a child: the handle the parent left it.
int inherited_handle() {
  const char* v = std::getenv(kHandleVariable);
  return v == nullptr ? -1 : std::atoi(v);
}

TEST(SharedWindows, RecordsMatchADequeAcrossTheSeam) {
  auto w = SharedRecordWriter::create(1);  // one 64 KiB granule
  auto r = SharedRecordReader::attach(w.fd());
  const std::size_t cap = w.capacity();
  ASSERT_EQ(cap, picoring::allocation_granularity());
  ASSERT_EQ(r.capacity(), cap);
  std::deque<std::string> model;
  std::size_t used = 0;
  std::mt19937 rng(5);
  std::uint64_t next = 0;
  std::uint64_t crossed = 0;  // records whose bytes run past the physical end
  std::size_t written = 0;    // bytes ever written: where the next header goes
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 2 == 0) {
      const std::string rec = numbered(next);
      const std::size_t fp = picoring::record_footprint(rec.size());
      ASSERT_EQ(w.push(bytes_of(rec)), used + fp <= cap);
      if (used + fp > cap) continue;
      if (written % cap + 8 + rec.size() > cap) ++crossed;
      written += fp;
      model.push_back(rec);
      used += fp;
      ++next;
    } else {
      const auto rec = r.front();
      ASSERT_EQ(rec.empty(), model.empty());
      if (rec.empty()) continue;
      ASSERT_EQ(string_of(rec), model.front());  // one span, wrapped or not
      r.pop();
      used -= picoring::record_footprint(model.front().size());
      model.pop_front();
    }
  }
  EXPECT_GT(crossed, 10u);
}

TEST(SharedWindows, AWaitEndsWithTheWriterRecordOrClose) {
  auto w = SharedRecordWriter::create(1);
  auto r = SharedRecordReader::attach(w.fd());
  EXPECT_EQ(r.wait(30ms), QueueStatus::timed_out);
  std::thread writer([&w] {
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(w.push(bytes_of("late")));
    std::this_thread::sleep_for(50ms);
    w.close();
  });
  EXPECT_EQ(r.wait(30s), QueueStatus::ok);  // woken by the event, long before 30 s
  EXPECT_EQ(string_of(r.front()), "late");
  r.pop();
  EXPECT_EQ(r.wait(30s), QueueStatus::closed);
  writer.join();
}

TEST(SharedWindows, AFullWriterWaitsForTheReader) {
  auto w = SharedRecordWriter::create(1);
  auto r = SharedRecordReader::attach(w.fd());
  const std::string big(w.max_record_size(), 'x');
  ASSERT_TRUE(w.push(bytes_of(big)));
  EXPECT_EQ(w.push_wait(bytes_of("more"), 20ms), QueueStatus::timed_out);
  std::thread reader([&r] {
    std::this_thread::sleep_for(50ms);
    r.pop();
  });
  EXPECT_EQ(w.push_wait(bytes_of("more"), 30s), QueueStatus::ok);
  reader.join();
  EXPECT_EQ(string_of(r.front()), "more");
}

// Elements of 24 bytes do not divide a 64 KiB granule: the ring is three granules (8192 slots),
// and a window that wraps is still one span. Two threads, every element checked in order.
TEST(SharedWindows, OddSizedSlotsStreamBetweenThreads) {
  struct Tick {
    std::uint64_t seq, a, b;
  };
  static_assert(sizeof(Tick) == 24);
  auto w = picoring::SharedQueueWriter<Tick>::create(1000);
  auto r = picoring::SharedQueueReader<Tick>::attach(w.fd());
  ASSERT_EQ(w.capacity() * sizeof(Tick) % picoring::allocation_granularity(), 0u);
  ASSERT_EQ(r.capacity(), w.capacity());
  // One window across the physical end: the last 10 slots and the first 10.
  const std::size_t cap = w.capacity();
  for (std::uint64_t i = 0; i < cap - 10; ++i) ASSERT_TRUE(w.try_push(Tick{i, i * 3, ~i}));
  ASSERT_EQ(r.readable().size(), cap - 10);
  r.release(cap - 10);
  for (std::uint64_t i = cap - 10; i < cap + 10; ++i) ASSERT_TRUE(w.try_push(Tick{i, i * 3, ~i}));
  ASSERT_EQ(r.readable().size(), 20u);  // the window across the end, one span (checked below)
  // Then two threads, the rest of 200,000 ticks, each checked in order.
  constexpr std::uint64_t kTicks = 200000;
  std::thread writer([&w, cap] {
    for (std::uint64_t i = cap + 10; i < kTicks; ++i) {
      if (w.push_wait(Tick{i, i * 3, ~i}, 30s) != QueueStatus::ok) return;
    }
    w.close();
  });
  std::uint64_t next = cap - 10;
  bool in_order = true;
  while (in_order && r.wait(1, 30s) == QueueStatus::ok) {
    const auto window = r.readable();
    for (const Tick& t : window) {
      in_order = in_order && t.seq == next && t.a == next * 3 && t.b == ~next;
      ++next;
    }
    r.release(window.size());
  }
  r.close();  // a writer still pushing (after a mismatch) stops
  writer.join();
  EXPECT_TRUE(in_order) << "a tick out of order or damaged before tick " << next;
  EXPECT_EQ(next, kTicks);
}

// The byte stream: 4 MiB in writes of odd sizes from a writer thread, read back in whatever
// windows the reader finds (which cross the physical end), every byte checked.
TEST(SharedWindows, AByteStreamCarriesEveryByteInOrder) {
  auto w = picoring::SharedStreamWriter::create(1);
  auto r = picoring::SharedStreamReader::attach(w.fd());
  constexpr std::size_t kBytes = std::size_t{4} << 20;
  const auto byte_at = [](std::size_t i) { return static_cast<std::byte>((i * 2654435761u) >> 13); };
  std::thread writer([&] {
    std::vector<std::byte> chunk;
    for (std::size_t at = 0, n = 1; at < kBytes; at += n, n = n % 9000 + 777) {
      n = std::min(n, kBytes - at);
      chunk.resize(n);
      for (std::size_t i = 0; i < n; ++i) chunk[i] = byte_at(at + i);
      if (w.write_all(chunk, 30s) != QueueStatus::ok) return;
    }
    w.close();
  });
  std::size_t got = 0;
  bool same = true;
  while (same && r.wait(1, 30s) == QueueStatus::ok) {
    const auto window = r.readable();
    for (std::size_t i = 0; i < window.size() && same; ++i) same = window[i] == byte_at(got + i);
    got += window.size();
    r.release(window.size());
  }
  r.close();
  writer.join();
  EXPECT_TRUE(same) << "a byte differs near offset " << got;
  EXPECT_EQ(got, kBytes);
}

// The fan-in, its one wait on both lanes' events: two writers, each record in its lane's order.
TEST(SharedWindows, AFanInReadsTwoWritersInTheirOrder) {
  constexpr std::uint64_t kEach = 5000;
  std::vector<SharedRecordWriter> writers;
  picoring::SharedRecordFanIn in;
  std::vector<std::uint64_t> ids;
  for (int k = 0; k < 2; ++k) {
    writers.push_back(SharedRecordWriter::create(1));
    ids.push_back(in.add(writers.back().fd()));
  }
  std::vector<std::thread> threads;
  threads.reserve(writers.size());
  for (auto& w : writers) {
    threads.emplace_back([&w] {
      for (std::uint64_t i = 0; i < kEach; ++i) {
        if (w.push_wait(bytes_of(numbered(i)), 30s) != QueueStatus::ok) return;
        if (i % 1000 == 0) std::this_thread::sleep_for(5ms);  // the reader parks now and then
      }
      w.close();
    });
  }
  std::vector<std::uint64_t> next(2, 0);
  bool in_order = true;
  while (in_order && in.wait(30s) == QueueStatus::ok) {
    in.drain([&](std::span<const std::byte> rec, std::uint64_t lane) {
      const std::size_t k = lane == ids[0] ? 0 : 1;
      in_order = in_order && (lane == ids[0] || lane == ids[1]) && string_of(rec) == numbered(next[k]);
      ++next[k];
    });
  }
  in.close();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(next[0], kEach);
  EXPECT_EQ(next[1], kEach);
  EXPECT_EQ(in.lanes(), 0u) << "both lanes ended and were dropped";
}

TEST(SharedWindows, AttachRefusesWhatIsNotAQueueOfItsKind) {
  auto w = SharedRecordWriter::create(1);
  // A second reader: the role is taken.
  auto r = SharedRecordReader::attach(w.fd());
  try {
    static_cast<void>(SharedRecordReader::attach(w.fd()));
    ADD_FAILURE() << "a second reader attached";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
  }
  // Another kind of queue.
  EXPECT_THROW(static_cast<void>(picoring::SharedStreamReader::attach(w.fd())), std::system_error);
  // A section that is not a queue (zeros: no magic), and a handle that is not a section.
  const auto size = 2 * static_cast<DWORD>(picoring::allocation_granularity());
  HANDLE plain = ::CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE, 0, size, nullptr);
  ASSERT_NE(plain, nullptr);
  try {
    static_cast<void>(SharedRecordReader::attach(int_of(plain)));
    ADD_FAILURE() << "attached to a section without a header";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), picoring::errc::corrupt_shared_state) << e.what();
  }
  ::CloseHandle(plain);
  HANDLE event = ::CreateEventW(nullptr, FALSE, FALSE, nullptr);
  EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(int_of(event))), std::system_error);
  ::CloseHandle(event);
  // The queue still works.
  EXPECT_TRUE(w.push(bytes_of("after")));
  EXPECT_EQ(string_of(r.front()), "after");
}

TEST(SharedWindows, AHandleDuplicatedForAProcessAttaches) {
  auto w = SharedRecordWriter::create(1);
  const int copy = picoring::duplicate_for_process(w.fd(), static_cast<std::uint32_t>(::GetCurrentProcessId()));
  ASSERT_NE(copy, w.fd());
  {
    auto r = SharedRecordReader::attach(copy);
    ASSERT_TRUE(w.push(bytes_of("through a copy")));
    EXPECT_EQ(string_of(r.front()), "through a copy");
  }
  EXPECT_TRUE(::CloseHandle(handle_of(copy))) << "attach keeps a handle of its own; the copy stays the caller's";
  EXPECT_THROW(static_cast<void>(picoring::duplicate_for_process(w.fd(), 0)), std::system_error);
}

// The wake-up events' names go with the queue: once both ends are gone, neither name opens.
// The process's handles must not grow either (section, events, the peer's process handle).
TEST(SharedWindows, NoHandleOrNameOutlivesItsQueue) {
  const auto handles = picoring_test::count_handles;
  const auto event_exists = [](std::uint64_t id, const wchar_t* which) {
    const std::wstring name = L"Local\\picoring-queue-" + [id] {
      wchar_t hex[17] = {};
      std::swprintf(hex, 17, L"%016llx", static_cast<unsigned long long>(id));
      return std::wstring(hex);
    }() + which;
    HANDLE e = ::OpenEventW(SYNCHRONIZE, FALSE, name.c_str());
    if (e != nullptr) ::CloseHandle(e);
    return e != nullptr;
  };
  // One queue's life: made, attached, used (a park looks at the writer's process), refused
  // twice, destroyed; then its events' names must be gone.
  const auto cycle = [&event_exists] {
    std::uint64_t id = 0;
    {
      auto w = SharedRecordWriter::create(1);
      auto r = SharedRecordReader::attach(w.fd());
      void* view = ::MapViewOfFile(handle_of(w.fd()), FILE_MAP_READ, 0, 0, sizeof(picoring::detail::SharedHeader));
      ASSERT_NE(view, nullptr);
      id = static_cast<const picoring::detail::SharedHeader*>(view)->wake_id;
      ::UnmapViewOfFile(view);
      ASSERT_TRUE(event_exists(id, L"-data"));
      ASSERT_TRUE(event_exists(id, L"-space"));
      ASSERT_TRUE(w.push(bytes_of("x")));
      EXPECT_EQ(r.wait(1s), QueueStatus::ok);
      r.pop();
      EXPECT_EQ(r.wait(5ms), QueueStatus::timed_out);
      EXPECT_THROW(static_cast<void>(SharedRecordReader::attach(w.fd())), std::system_error);            // role taken
      EXPECT_THROW(static_cast<void>(picoring::SharedStreamReader::attach(w.fd())), std::system_error);  // kind
    }
    EXPECT_FALSE(event_exists(id, L"-data"));
    EXPECT_FALSE(event_exists(id, L"-space"));
  };
  cycle();  // first use: whatever the runtime opens once (under wine, two handles that stay)
  const std::size_t before = handles();
  for (int i = 0; i < 20; ++i) cycle();
  EXPECT_EQ(handles(), before);
}

TEST(SharedWindows, DISABLED_ChildReadsTheStream) {
  const int fd = inherited_handle();
  ASSERT_GE(fd, 0) << "run by SharedWindows.AChildProcessReadsEveryRecord";
  auto r = SharedRecordReader::attach(fd);
  ::CloseHandle(handle_of(fd));
  for (std::uint64_t i = 0;; ++i) {
    const QueueStatus st = r.wait(60s);
    if (st == QueueStatus::closed) {
      EXPECT_EQ(i, 3000u) << "the writer closed early";
      return;
    }
    ASSERT_EQ(st, QueueStatus::ok) << "record " << i;
    ASSERT_EQ(string_of(r.front()), numbered(i));
    r.pop();
  }
}

TEST(SharedWindows, AChildProcessReadsEveryRecord) {
  auto w = SharedRecordWriter::create(1);  // small: the writer waits for the child often
  int code = -1;
  std::thread child([&] { code = run_child("SharedWindows.DISABLED_ChildReadsTheStream", w.fd()); });
  for (std::uint64_t i = 0; i < 3000; ++i) ASSERT_EQ(w.push_wait(bytes_of(numbered(i)), 60s), QueueStatus::ok) << i;
  w.close();
  child.join();
  EXPECT_EQ(code, 0);
}

TEST(SharedWindows, DISABLED_ChildWriterDiesWithoutClosing) {
  const int fd = inherited_handle();
  ASSERT_GE(fd, 0) << "run by SharedWindows.AWriterProcessThatDiesEndsTheWait";
  auto w = SharedRecordWriter::attach(fd);
  ASSERT_TRUE(w.push(bytes_of("last words")));
  ::TerminateProcess(::GetCurrentProcess(), 7);  // no destructor runs: the queue stays open
}

TEST(SharedWindows, AWriterProcessThatDiesEndsTheWait) {
  auto r = SharedRecordReader::create(1);
  const int code = run_child("SharedWindows.DISABLED_ChildWriterDiesWithoutClosing", r.fd());
  ASSERT_EQ(code, 7);
  EXPECT_FALSE(r.closed()) << "nobody closed it";
  ASSERT_EQ(r.wait(10s), QueueStatus::ok);
  EXPECT_EQ(string_of(r.front()), "last words");
  r.pop();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(r.wait(30s), QueueStatus::closed) << "the writer's process has exited";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // Its role can be taken again.
  auto again = SharedRecordWriter::attach(r.fd());
  EXPECT_TRUE(again.push(bytes_of("a new writer")));
}

}  // namespace

#endif  // _WIN32
