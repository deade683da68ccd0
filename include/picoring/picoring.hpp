// picoring: mirrored ring buffers. Include this for everything, or the single headers:
//   picoring/mirror_buffer.hpp  MirrorBuffer: memory mapped twice, back to back
//   picoring/ring.hpp           PicoRing<T>, PicoQueue<T>
//   picoring/byte_stream.hpp    PicoByteStream, ByteStreamBuf (std::streambuf)
//   picoring/spsc.hpp           make_spsc: thread-safe single-producer single-consumer queue
//   picoring/mpsc.hpp           make_mpsc: thread-safe multi-producer single-consumer queue
//   picoring/fanin.hpp          make_fanin: many producers, one SPSC lane each (per-producer order)
//   picoring/record_ring.hpp    RecordRing, make_record_spsc, make_record_mpsc: variable-size records,
//                               each one span
//   picoring/pool.hpp           RingPool: rings kept for reuse (no system call per take)
//   picoring/queue_status.hpp   QueueStatus, what the queues' blocking calls report
#pragma once

#include "picoring/byte_stream.hpp"
#include "picoring/fanin.hpp"
#include "picoring/mirror_buffer.hpp"
#include "picoring/mpsc.hpp"
#include "picoring/pool.hpp"
#include "picoring/queue_status.hpp"
#include "picoring/record_ring.hpp"
#include "picoring/ring.hpp"
#include "picoring/spsc.hpp"

#define PICORING_VERSION_MAJOR 0
#define PICORING_VERSION_MINOR 1
#define PICORING_VERSION_PATCH 0
