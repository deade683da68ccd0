// picoring: what the thread-safe queues (spsc.hpp, mpsc.hpp) report besides their elements.
#pragma once

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

}  // namespace picoring
