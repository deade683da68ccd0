// picoring: what the thread-safe queues (spsc.hpp, mpsc.hpp, fanin.hpp, shared_queue.hpp) report
// besides their elements, and their batching setting.
#pragma once

#include <chrono>
#include <cstddef>

namespace picoring {

// The outcome of a blocking queue call (wait, pop_wait, push_wait).
//   ok:        the call did what it was asked (an element or a slot was there).
//   timed_out: the timeout passed first.
//   closed:    the queue is closed and (for the consumer) empty: nothing more will come.
enum class QueueStatus { ok, timed_out, closed };

// Whether the queues' wake-up handshake uses membarrier() (Linux, registered at the first queue's
// creation), so that the publishing side executes no fence instruction; false before any queue
// exists, on other systems, and for good after a membarrier call has failed. For diagnostics and
// benchmark reports. Thread-safe.
bool fences_use_membarrier() noexcept;

// Throughput mode for one end of an SPSC queue; off by default, set per handle with
// set_batching(). Why: a side that tails the other closely (a consumer that keeps finding one
// new element, a producer that keeps finding one free slot) reads the other side's counter for
// every element, so that counter's cache line, and the data line beside the reader, cross
// between the cores once per element and both threads run at the speed of those transfers.
// What it does: when a refresh of the other side's counter (a call that needs more than this
// side's cached copy shows) finds fewer than `min_batch` elements (consumer) or free slots
// (producer), and this side is streaming (its previous refresh found some, with fewer than
// kStreamingRefreshes fruitless ones since), the call waits `max_wait` spinning on the clock,
// touching no shared line, then refreshes once more and goes on with what is there. A side
// that was idle is never delayed: the first element after an empty spell is taken at once, so a
// request-reply round trip is unaffected. Cost: up to max_wait of added latency for elements
// that arrive in a stream. Which calls may wait: the producer's try_push, try_emplace,
// push_slice, push_some, reserve and push_wait; the consumer's try_pop, pop_slice, peek and
// drain. size(), free_space(), release(), commit() and wait() never do.
struct Batching {
  std::size_t min_batch = 0;             // elements or free slots; 0 turns batching off
  std::chrono::nanoseconds max_wait{0};  // the wait; 0 turns batching off
};

}  // namespace picoring
