"""picoring: mirrored ring buffers for Python and numpy.

The ring's memory is mapped twice, back to back, so every window of it, even one that wraps
past the end, is one contiguous numpy array or memoryview that shares the ring's memory.

    >>> import numpy as np, picoring
    >>> ring = picoring.Ring(1024, dtype=np.float32)
    >>> ring.extend(np.arange(4, dtype=np.float32))
    True
    >>> window = ring.readable()        # no copy, however the data wraps
    >>> float(window.sum())
    6.0
    >>> del window                      # while it lives, consume() raises BufferError
    >>> ring.consume(4)

Ring         a FIFO of one fixed dtype, with zero-copy readable()/peek()/writable() arrays.
ByteStream   a FIFO of bytes: file-like (write, read, readinto) and memoryview windows.
spsc()       a (Producer, Consumer) queue between two threads; blocking calls release the GIL.
records()    a (RecordWriter, RecordReader) queue of variable-size bytes records between two threads.
SharedRecordWriter, SharedRecordReader
             the same between two processes: create(capacity) on one side, attach(fd) on the other.
SharedQueueWriter, SharedQueueReader
             a queue of one dtype between two processes (C++ SharedQueueWriter<T> is the same queue).
SharedStreamWriter, SharedStreamReader
             a byte stream between two processes (a pipe through shared memory), memoryview windows.
SharedRecordFanIn
             one reader for the record queues of many writer processes: add(fd) each, pop().
Closed       raised by a queue end once the queue is closed.
"""

from ._picoring import (  # noqa: F401  (the package's public names)
    ByteStream,
    Closed,
    Consumer,
    MpscRecordReader,
    MpscRecordWriter,
    Producer,
    RecordReader,
    RecordWriter,
    Ring,
    SharedRecordFanIn,
    SharedRecordReader,
    SharedQueueReader,
    SharedQueueWriter,
    SharedRecordWriter,
    SharedStreamReader,
    SharedStreamWriter,
    Window,
    allocation_granularity,
    records,
    records_mpsc,
    spsc,
)

__all__ = [
    "Ring",
    "ByteStream",
    "spsc",
    "Producer",
    "Consumer",
    "records",
    "RecordWriter",
    "RecordReader",
    "records_mpsc",
    "MpscRecordWriter",
    "MpscRecordReader",
    "SharedRecordWriter",
    "SharedRecordReader",
    "SharedRecordFanIn",
    "SharedQueueWriter",
    "SharedQueueReader",
    "SharedStreamWriter",
    "SharedStreamReader",
    "Closed",
    "Window",
    "allocation_granularity",
]
