"""The Python module against reference models (collections.deque), its export tracking, its
errors, the file-like ByteStream, the SPSC and record queues across Python threads, and the
record queue between two processes."""

import collections
import errno
import gc
import hashlib
import io
import os
import pathlib
import random
import re
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import picoring

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKED3 = np.dtype([("a", "u1"), ("b", "<u2")])  # 3 bytes: never divides a page
REC24 = np.dtype([("t", "<f8"), ("id", "<u4"), ("flags", "u1"), ("pad", "V11")])  # 24 bytes
DTYPES = [np.dtype(np.float32), np.dtype(np.int16), np.dtype(np.complex64), PACKED3, REC24]


def sample(dtype, n, rng):
    """n distinct-ish values of dtype, from random bytes (every bit pattern is a valid element)."""
    return np.frombuffer(rng.randbytes(n * dtype.itemsize), dtype=dtype).copy()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_ring_matches_a_deque_under_random_operations(dtype):
    rng = random.Random(1234)
    ring = picoring.Ring(100, dtype=dtype)
    cap = ring.capacity
    assert cap >= 100
    assert (cap * dtype.itemsize) % picoring.allocation_granularity() == 0
    model = collections.deque()
    for _ in range(3000):
        op = rng.randrange(7)
        if op == 0:
            block = sample(dtype, rng.randrange(0, cap // 2 + 2), rng)
            ok = ring.extend(block)
            assert ok == (len(block) <= cap - len(model))
            if ok:
                model.extend(block.tobytes()[i * dtype.itemsize:(i + 1) * dtype.itemsize] for i in range(len(block)))
        elif op == 1:
            value = sample(dtype, 1, rng)[0]
            ok = ring.push(value, overwrite=rng.random() < 0.5)
            if ok:
                model.append(np.array(value, dtype=dtype).tobytes())
                while len(model) > cap:
                    model.popleft()
        elif op == 2:
            n = rng.randrange(0, len(model) + 2)
            out = ring.pop(n)
            assert len(out) == min(n, len(model))
            expect = [model.popleft() for _ in range(len(out))]
            assert out.tobytes() == b"".join(expect)
        elif op == 3:
            n = rng.randrange(0, len(model) + 1)
            ring.consume(n)
            for _ in range(n):
                model.popleft()
        elif op == 4:
            w = ring.writable()
            assert len(w) == cap - len(model)
            n = rng.randrange(0, len(w) + 1)
            block = sample(dtype, n, rng)
            w[:n] = block
            del w
            ring.commit(n)
            model.extend(block.tobytes()[i * dtype.itemsize:(i + 1) * dtype.itemsize] for i in range(n))
        elif op == 5 and model:
            off = rng.randrange(0, len(model))
            cnt = rng.randrange(0, len(model) - off + 1)
            view = ring.peek(off, cnt)
            assert view.tobytes() == b"".join(list(model)[off:off + cnt])
            del view
        # The whole readable window is always one array equal to the model, wrapped or not.
        window = ring.readable()
        assert len(window) == len(ring) == len(model)
        assert window.flags.c_contiguous and not window.flags.owndata
        assert window.tobytes() == b"".join(model)
        del window
        assert ring.exports == 0


def test_a_wrapped_window_is_one_array_that_shares_the_ring_memory():
    ring = picoring.Ring(1, dtype=np.float64)
    cap = ring.capacity
    ring.extend(np.zeros(cap - 3))
    ring.consume(cap - 3)  # the next elements start 3 slots before the physical end
    data = np.arange(10, dtype=np.float64)
    assert ring.extend(data)
    window = ring.readable()
    np.testing.assert_array_equal(window, data)
    window *= 2  # in place, through the mirror: the ring sees it
    del window
    np.testing.assert_array_equal(ring.pop(), data * 2)


def test_live_windows_block_what_would_invalidate_them():
    ring = picoring.Ring(16, dtype=np.int32)
    ring.extend(np.arange(8, dtype=np.int32))
    window = ring.readable()
    part = window[2:5]  # a view of the view keeps the export too
    del window
    gc.collect()
    assert ring.exports == 1
    with pytest.raises(BufferError):
        ring.consume(1)
    with pytest.raises(BufferError):
        ring.pop(1)
    with pytest.raises(BufferError):
        ring.clear()
    with pytest.raises(BufferError):
        ring.close()
    assert len(ring) == 8  # nothing changed
    ring.extend(np.arange(4, dtype=np.int32))  # writing behind the window is fine
    del part
    assert ring.exports == 0
    ring.consume(12)

    # A window of the free space blocks writes into it; overwrite cannot drop exported elements.
    free = ring.writable()
    with pytest.raises(BufferError):
        ring.push(1)
    del free
    ring.extend(np.arange(ring.capacity, dtype=np.int32))
    oldest = ring.peek(0, 1)
    with pytest.raises(BufferError):
        ring.push(7, overwrite=True)
    del oldest
    assert ring.push(7, overwrite=True)
    assert ring.pop(1)[0] == 1 and ring.readable()[-1] == 7


def test_a_window_keeps_the_ring_alive():
    ring = picoring.Ring(8, dtype=np.uint16)
    ring.extend(np.array([5, 6, 7], dtype=np.uint16))
    window = ring.readable()
    del ring
    gc.collect()
    np.testing.assert_array_equal(window, [5, 6, 7])  # the mapping is still there
    mv = memoryview(window)
    del window
    gc.collect()
    assert mv.tobytes() == np.array([5, 6, 7], dtype=np.uint16).tobytes()


def test_bad_input_is_refused_and_changes_nothing():
    with pytest.raises(ValueError):
        picoring.Ring(0)
    with pytest.raises(ValueError):
        picoring.Ring(-5)
    with pytest.raises(TypeError):
        picoring.Ring(8, dtype=object)
    with pytest.raises(TypeError):
        picoring.Ring(8, dtype=[("a", "O")])
    with pytest.raises(ValueError):
        picoring.Ring(8, residency="sometimes")
    with pytest.raises(ValueError):
        picoring.Ring(8, huge_pages="3mb")
    ring = picoring.Ring(8, dtype=np.float32)
    with pytest.raises(TypeError):
        ring.extend(np.zeros(3, dtype=np.float64))  # no silent narrowing cast
    with pytest.raises(ValueError):
        ring.extend(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError):
        ring.push(np.zeros(2, dtype=np.float32))  # push takes one element
    with pytest.raises(ValueError):
        ring.consume(1)
    with pytest.raises(ValueError):
        ring.commit(ring.capacity + 1)
    with pytest.raises(IndexError):
        ring.peek(0, 1)
    with pytest.raises(ValueError):
        ring.extend(np.zeros(ring.capacity + 1, dtype=np.float32), overwrite=True)
    assert not ring.extend(np.zeros(ring.capacity + 1, dtype=np.float32))
    assert len(ring) == 0 and ring.exports == 0
    ring.extend([1.5, 2.5])  # a list converts through numpy.asarray
    np.testing.assert_array_equal(ring.pop(), np.array([1.5, 2.5], dtype=np.float32))
    ring.close()
    assert ring.closed
    with pytest.raises(ValueError):
        ring.push(1.0)


def test_os_errors_carry_errno_and_the_step():
    # Explicit huge pages with none reserved: refused by the kernel at creation.
    try:
        reserved = int(pathlib.Path("/proc/sys/vm/nr_hugepages").read_text())
    except OSError:
        pytest.skip("no /proc/sys/vm/nr_hugepages")
    if reserved != 0:
        pytest.skip("huge pages are reserved on this machine")
    with pytest.raises(OSError) as info:
        picoring.Ring(1 << 20, dtype=np.uint8, huge_pages="2mb")
    assert info.value.errno != 0
    assert "failed" in str(info.value)


def test_bytestream_is_a_fifo_file_with_memoryview_windows():
    s = picoring.ByteStream(100)
    cap = s.capacity
    assert s.readable() and s.writable() and not s.seekable()
    assert s.write(b"x" * (cap - 10)) == cap - 10
    assert s.read(cap - 10) == b"x" * (cap - 10)
    assert s.write(b"hello, wrapped world") == 20  # crosses the physical end
    view = s.readable_view()
    assert isinstance(view, memoryview) and view.contiguous
    assert bytes(view) == b"hello, wrapped world"
    with pytest.raises(BufferError):
        s.consume(1)
    view.release()
    buf = bytearray(5)
    assert s.readinto(buf) == 5 and buf == b"hello"
    w = s.writable_view()
    assert len(w) == s.free
    w[:3] = b"!!!"
    w.release()
    s.commit(3)
    assert s.read() == b", wrapped world!!!"
    assert s.read() == b"" and s.readinto(bytearray(4)) == 0  # empty reads as end of file
    assert s.write(b"y" * (cap + 50)) == cap  # partial, as a non-blocking file
    assert s.write(b"z") == 0

    # Standard library file helpers work on it.
    s.clear()
    src = io.BytesIO(os.urandom(cap // 2))
    shutil.copyfileobj(src, s)
    dst = io.BytesIO()
    shutil.copyfileobj(s, dst)
    assert dst.getvalue() == src.getvalue()

    with pytest.raises(TypeError):
        s.write("text is not bytes")
    with picoring.ByteStream(10) as t:
        t.write(b"abc")
    assert t.closed
    with pytest.raises(ValueError):
        t.read()


def test_spsc_between_python_threads_keeps_order_and_releases_the_gil():
    rng = random.Random(7)
    prod, cons = picoring.spsc(1000, dtype=np.int64)
    total = 200_000
    blocks = []
    n = 0
    while n < total:
        k = min(rng.randrange(1, 300), total - n)
        blocks.append(np.arange(n, n + k, dtype=np.int64))
        n += k

    def produce():
        with prod:  # closes the queue at the end
            for b in blocks:
                prod.extend(b) if len(b) > 1 else prod.push(b[0])

    t = threading.Thread(target=produce)
    t.start()
    got = []
    expected_next = 0
    use_window = False
    while True:
        try:
            if use_window:
                w = cons.readable()
                got_block = w.copy()
                del w
                cons.consume(len(got_block))
            else:
                got_block = cons.pop(max_items=rng.randrange(1, 500))
        except picoring.Closed:
            break
        assert got_block[0] == expected_next
        np.testing.assert_array_equal(got_block, np.arange(expected_next, expected_next + len(got_block)))
        expected_next += len(got_block)
        got.append(len(got_block))
        use_window = not use_window
    t.join()
    assert expected_next == total


def test_spsc_timeouts_close_and_bad_input():
    prod, cons = picoring.spsc(4, dtype=np.float32)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        cons.pop(timeout=0.05)
    assert time.monotonic() - t0 >= 0.045
    with pytest.raises(TimeoutError):
        cons.pop(timeout=0)
    with pytest.raises(ValueError):
        prod.extend(np.zeros(prod.capacity + 1, dtype=np.float32))
    with pytest.raises(TypeError):
        prod.extend(np.zeros(2, dtype=np.float64))
    prod.extend(np.zeros(prod.capacity, dtype=np.float32))
    with pytest.raises(TimeoutError):
        prod.push(1.0, timeout=0.02)  # full
    window = cons.readable()
    with pytest.raises(BufferError):
        cons.consume(1)
    with pytest.raises(BufferError):
        cons.pop(1)
    del window
    cons.consume(1)
    prod.push(2.0, timeout=0)
    prod.close()
    with pytest.raises(picoring.Closed):
        prod.push(3.0)
    rest = cons.pop()
    assert len(rest) == cons.capacity and rest[-1] == 2.0
    with pytest.raises(picoring.Closed):
        cons.pop(timeout=5)


def pop_in_a_blocked_thread(pop):
    """Starts a thread that blocks in pop(timeout=30) and returns (thread, result dict) once it is
    blocked: a second thread's pop(timeout=0) on the same end is then refused (RuntimeError).
    Until then that pop just times out. The thread runs here only because the blocked one released
    the GIL."""
    started = threading.Event()
    result = {}

    def consume():
        started.set()
        result["got"] = pop(timeout=30)

    t = threading.Thread(target=consume)
    t.start()
    started.wait()
    deadline = time.monotonic() + 30
    while True:
        try:
            pop(timeout=0)
        except RuntimeError:
            return t, result
        except TimeoutError:
            assert time.monotonic() < deadline, "the consumer thread never blocked"
            time.sleep(0.01)


def test_spsc_blocked_consumer_is_woken_and_one_thread_per_end():
    prod, cons = picoring.spsc(16, dtype=np.uint8)
    t, result = pop_in_a_blocked_thread(cons.pop)
    prod.extend(np.array([1, 2, 3], dtype=np.uint8))
    t.join(30)
    assert not t.is_alive()
    np.testing.assert_array_equal(result["got"], [1, 2, 3])


def record_bytes(seq, length):
    """A record that names its sequence number and has one exact length (>= 1)."""
    head = seq.to_bytes(8, "little")
    return (head * (length // 8 + 1))[:length] if length >= 8 else bytes([seq % 251 + 1]) * length


def test_records_between_python_threads_keep_order_content_and_length():
    rng = random.Random(11)
    writer, reader = picoring.records(4096)  # a small ring: the records wrap around many times
    longest = writer.max_record_size
    assert longest == writer.capacity - 8
    lengths = [rng.choice([1, 7, 8, 9, 100, 1000, longest // 2, longest]) for _ in range(3000)]
    expected = [record_bytes(i, n) for i, n in enumerate(lengths)]

    def produce():
        with writer:  # closes the queue at the end
            i = 0
            while i < len(expected):
                if rng.random() < 0.5:
                    kind = rng.randrange(4)  # any bytes-like object is one record
                    rec = expected[i]
                    writer.push([rec, bytearray(rec), memoryview(rec), np.frombuffer(rec, np.uint8)][kind])
                    i += 1
                else:
                    i += writer.push_many(expected[i : i + rng.randrange(1, 40)])

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while True:
        try:
            way = rng.randrange(3)
            if way == 0:
                got.append(reader.pop())
            elif way == 1:
                batch = reader.pop_many(max_records=rng.randrange(1, 50))
                assert batch
                got.extend(batch)
            else:
                view = reader.front()
                assert view.readonly and view.contiguous
                got.append(bytes(view))
                view.release()
                reader.consume()
        except picoring.Closed:
            break
    t.join()
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"record {i}: {len(g)} bytes, expected {len(e)}"


def test_records_bad_input_timeouts_views_and_close():
    with pytest.raises(ValueError):
        picoring.records(0)
    with pytest.raises(ValueError):
        picoring.records(4096, residency="sometimes")
    writer, reader = picoring.records(4096)
    with pytest.raises(ValueError):
        writer.push(b"")
    with pytest.raises(ValueError):
        writer.push(bytes(writer.max_record_size + 1))
    with pytest.raises(TypeError):
        writer.push("text is not bytes")
    with pytest.raises(ValueError):  # one bad record anywhere: none is pushed
        writer.push_many([b"a", b"", b"c"])
    with pytest.raises(TypeError):
        writer.push_many([b"a", 3])
    assert writer.push_many([]) == 0
    with pytest.raises(TimeoutError):
        reader.pop(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.pop_many(timeout=0.05)
    assert time.monotonic() - t0 >= 0.045

    # Fill the ring with 1000-byte records (1008 each with the header), then one more times out.
    pushed = 0
    while True:
        try:
            writer.push(record_bytes(pushed, 1000), timeout=0)
            pushed += 1
        except TimeoutError:
            break
    assert pushed == writer.capacity // 1008
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        writer.push_many([b"x" * 1000], timeout=0.02)
    assert time.monotonic() - t0 >= 0.015

    view = reader.front()
    assert bytes(view) == record_bytes(0, 1000)
    with pytest.raises(TypeError):
        view[0] = 1  # read-only: the writer's bytes are the reader's to look at, not to change
    for remove in (reader.pop, reader.pop_many, reader.consume):
        with pytest.raises(BufferError):
            remove()
    assert reader.exports == 1
    del view
    gc.collect()
    assert reader.exports == 0
    reader.consume()
    assert reader.pop() == record_bytes(1, 1000)
    with pytest.raises(ValueError):
        reader.pop_many(max_records=0)
    assert reader.pop_many(max_records=1) == [record_bytes(2, 1000)]
    assert writer.push_many([b"one", b"two"], timeout=0) == 2
    writer.close()
    with pytest.raises(picoring.Closed):
        writer.push(b"late")
    with pytest.raises(picoring.Closed):
        writer.push_many([b"late"])
    rest = reader.pop_many()
    assert rest == [record_bytes(i, 1000) for i in range(3, pushed)] + [b"one", b"two"]
    with pytest.raises(picoring.Closed):
        reader.pop(timeout=5)
    with pytest.raises(picoring.Closed):
        reader.front()
    with pytest.raises(ValueError):
        reader.consume()


def test_records_blocked_reader_is_woken_and_one_thread_per_end():
    writer, reader = picoring.records(4096)
    t, result = pop_in_a_blocked_thread(reader.pop)
    writer.push(b"wake up")
    t.join(30)
    assert not t.is_alive()
    assert result["got"] == b"wake up"


def test_records_mpsc_from_many_threads_keep_each_writers_order_and_close_with_the_last():
    rng = random.Random(19)
    writer, reader = picoring.records_mpsc(4096)  # small: every writer waits for room, records wrap
    assert writer.capacity == reader.capacity and writer.max_record_size == writer.capacity - 8
    longest = writer.max_record_size
    writers = [writer] + [writer.copy() for _ in range(3)]
    plans = []
    for w in range(len(writers)):
        lengths = [rng.choice([9, 16, 100, 1000, longest // 3, longest]) for _ in range(1500)]
        plans.append([bytes([w]) + record_bytes(i, n - 1) for i, n in enumerate(lengths)])

    def produce(w):
        local = random.Random(w)
        with writers[w]:  # release(): the queue closes when the last writer's block ends
            i = 0
            while i < len(plans[w]):
                if local.random() < 0.5:
                    writers[w].push(plans[w][i])
                    i += 1
                else:
                    i += writers[w].push_many(plans[w][i : i + local.randrange(1, 20)])

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(len(writers))]
    for t in threads:
        t.start()
    got = [[] for _ in writers]
    while True:
        try:
            batch = reader.pop_many(max_records=rng.randrange(1, 40), timeout=30)
        except picoring.Closed:
            break
        for rec in batch:
            got[rec[0]].append(rec)
    for t in threads:
        t.join()
    for w, (g, plan) in enumerate(zip(got, plans)):
        assert len(g) == len(plan), f"writer {w}: {len(g)} records of {len(plan)}"
        for i, (a, b) in enumerate(zip(g, plan)):
            assert a == b, f"writer {w}, record {i}: {len(a)} bytes, expected {len(b)}"
    assert all(w.closed for w in writers)
    with pytest.raises(picoring.Closed):
        writer.push(b"after release")
    assert writer.copy().closed  # a copy of a dropped handle is dropped too


def test_records_mpsc_bad_input_and_close_reaches_every_writer():
    with pytest.raises(ValueError):
        picoring.records_mpsc(0)
    writer, reader = picoring.records_mpsc(4096)
    other = writer.copy()
    with pytest.raises(ValueError):
        other.push(b"")
    with pytest.raises(ValueError):
        other.push(bytes(other.max_record_size + 1))
    with pytest.raises(ValueError):  # checked first: none pushed
        other.push_many([b"a", bytes(other.max_record_size + 1)])
    with pytest.raises(TimeoutError):
        reader.pop(timeout=0)
    other.push(b"kept")
    writer.release()  # one writer gone: the queue stays open for the other
    assert not reader.closed and not other.closed
    other.push(b"still open")
    assert reader.pop_many() == [b"kept", b"still open"]
    third = other.copy()
    result = {}

    def wait_for_a_record():
        try:
            result["got"] = reader.pop(timeout=30)
        except picoring.Closed:
            result["closed"] = True

    t = threading.Thread(target=wait_for_a_record)
    t.start()
    time.sleep(0.05)  # most likely parked by now; either way it must end with Closed
    other.close()  # close() ends the queue for every handle, not only this one
    t.join(30)
    assert not t.is_alive() and result == {"closed": True}
    for w in (other, third):
        with pytest.raises(picoring.Closed):
            w.push(b"late")


def run_child(code, fd, **kwargs):
    """A Python process that inherits fd (its number stays the same) and runs code with FD set."""
    return subprocess.Popen(
        [sys.executable, "-c", f"FD = {fd}\n" + code],
        pass_fds=[fd],
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,
    )


CHILD_READER = """
import hashlib, picoring
r = picoring.SharedRecordReader.attach(FD)
count, digest = 0, hashlib.sha256()
while True:
    try:
        batch = r.pop_many(timeout=30)
    except picoring.Closed:
        break
    for rec in batch:
        digest.update(len(rec).to_bytes(4, "little") + rec)
        count += 1
print(count, digest.hexdigest(), flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_records_reach_another_process_whole_and_in_order():
    rng = random.Random(5)
    writer = picoring.SharedRecordWriter.create(1 << 16)
    assert writer.fd >= 0 and not writer.locked
    lengths = [rng.choice([1, 8, 13, 200, 4000, writer.max_record_size]) for _ in range(2000)]
    expected = [record_bytes(i, n) for i, n in enumerate(lengths)]
    child = run_child(CHILD_READER, writer.fd)
    i = 0
    while i < len(expected):
        if rng.random() < 0.5:
            writer.push(expected[i], timeout=30)
            i += 1
        else:
            i += writer.push_many(expected[i : i + rng.randrange(1, 30)], timeout=30)
    writer.close()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    digest = hashlib.sha256()
    for rec in expected:
        digest.update(len(rec).to_bytes(4, "little") + rec)
    assert out.split() == [str(len(expected)), digest.hexdigest()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_records_a_dead_peer_ends_the_wait_and_bad_fds_are_refused():
    writer = picoring.SharedRecordWriter.create(1 << 16)
    # The reader's process dies without closing anything: the writer's wait for room ends (Closed).
    child = run_child('import picoring, time\nr = picoring.SharedRecordReader.attach(FD)\nprint("attached", '
                      'flush=True)\ntime.sleep(60)', writer.fd)
    assert child.stdout.readline().strip() == "attached"
    child.kill()
    child.wait(timeout=30)
    record = b"x" * 1000
    with pytest.raises(picoring.Closed):
        for _ in range(1000):  # more than fits: the last push waits, then sees the reader gone
            writer.push(record, timeout=30)

    # The writer's process dies after three records: the reader gets them, then Closed.
    reader = picoring.SharedRecordReader.create(1 << 16)
    child = run_child('import os, picoring\nw = picoring.SharedRecordWriter.attach(FD)\n'
                      'w.push_many([b"one", b"two", b"three"])\nos._exit(0)', reader.fd)
    child.wait(timeout=30)
    assert [reader.pop(timeout=30) for _ in range(3)] == [b"one", b"two", b"three"]
    with pytest.raises(picoring.Closed):
        reader.pop(timeout=30)

    with pytest.raises(OSError):
        picoring.SharedRecordReader.attach(-1)
    with open(__file__, "rb") as f:
        with pytest.raises(OSError):  # not a picoring queue
            picoring.SharedRecordReader.attach(f.fileno())
    live = picoring.SharedRecordWriter.create(1 << 16)
    with pytest.raises(OSError) as e:  # its writer's end is held (by this live process)
        picoring.SharedRecordWriter.attach(live.fd)
    assert e.value.errno == errno.EBUSY
    with pytest.raises(ValueError):
        picoring.SharedRecordWriter.create(0)
    with pytest.raises(ValueError):
        picoring.SharedRecordWriter.create(4096, residency="always")
    live.close_fd()
    assert live.fd == -1
    live.push(b"still works")  # the mapping stays: only this process's fd is gone


CHILD_LANE_WRITER = """
import os, picoring, socket, sys
sock = socket.socket(fileno=FD)
k, count, die = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "die"
w = picoring.SharedRecordWriter.create(8192)  # small: the writer waits for the reader often
socket.send_fds(sock, [b"queue"], [w.fd])
recs = [f"{k}:{i}:".encode() + bytes(i % 300) for i in range(count)]
i = 0
while i < count:
    if i % 3:
        w.push(recs[i], timeout=30)
        i += 1
    else:
        i += w.push_many(recs[i : i + 7], timeout=30)
if die:
    os._exit(0)  # no close: the reader must notice the process is gone
w.close()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_fanin_reads_many_writer_processes_each_in_order():
    fanin = picoring.SharedRecordFanIn()
    children, lanes = [], {}
    counts = [3000, 2000, 500]
    for k, count in enumerate(counts):
        parent_end, child_end = socket.socketpair()
        # The last writer exits without closing its queue.
        child = subprocess.Popen([sys.executable, "-c", f"FD = {child_end.fileno()}\n" + CHILD_LANE_WRITER, str(k),
                                  str(count), "die" if k == 2 else "close"], pass_fds=[child_end.fileno()])
        child_end.close()
        _, fds, _, _ = socket.recv_fds(parent_end, 16, 1)
        lanes[fanin.add(fds[0])] = k
        os.close(fds[0])  # the fan-in has its own mapping
        parent_end.close()
        children.append(child)
    assert sorted(lanes) == [1, 2, 3] and fanin.lanes == 3
    next_seq = [0] * len(counts)
    many = False  # pop() and pop_many() in turns
    while True:
        try:
            got = fanin.pop_many(max_records=100, timeout=30) if many else [fanin.pop(timeout=30)]
        except picoring.Closed:
            break
        many = not many
        for lane, rec in got:
            k = lanes[lane]
            head, _, rest = rec.partition(b":")
            seq, _, pad = rest.partition(b":")
            assert int(head) == k and int(seq) == next_seq[k], f"lane {lane}: {rec[:20]}"
            assert pad == bytes(next_seq[k] % 300)
            next_seq[k] += 1
    assert next_seq == counts
    assert fanin.lanes == 0
    for child in children:
        assert child.wait(timeout=30) == 0

    with pytest.raises(ValueError):
        fanin.pop_many(max_records=0, timeout=0)
    with pytest.raises(OSError):
        fanin.add(-1)
    fanin.close()
    with pytest.raises(RuntimeError):  # closed: no new lanes
        fanin.add(picoring.SharedRecordWriter.create(4096).fd)
    with pytest.raises(picoring.Closed):
        fanin.pop(timeout=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_stream_matches_a_bytearray_under_random_operations():
    # Both ends in one process, a small stream (one page, or what the system gives), so every
    # kind of call meets the wrap: each end's calls against a model of the bytes in flight.
    rng = random.Random(11)
    writer = picoring.SharedStreamWriter.create(1)
    reader = picoring.SharedStreamReader.attach(writer.fd)
    cap = writer.capacity
    assert cap == reader.capacity and cap % picoring.allocation_granularity() == 0
    model = bytearray()
    for step in range(20000):
        op = rng.randrange(7)
        if op == 0:  # write: as much as fits
            data = rng.randbytes(rng.randrange(1, cap + 100))
            n = writer.write(data)
            assert n == min(len(data), cap - len(model))
            model += data[:n]
        elif op == 1:  # write_all without waiting: all of it when it fits
            data = rng.randbytes(rng.randrange(1, 200))
            if len(data) <= cap - len(model):
                writer.write_all(data, timeout=0)
                model += data
            else:
                with pytest.raises(TimeoutError) as e:
                    writer.write_all(data, timeout=0)
                assert e.value.written == cap - len(model)
                model += data[: e.value.written]
        elif op == 2:  # writable_view + commit: one view over every free byte, however it wraps
            view = writer.writable_view()
            assert len(view) == cap - len(model)
            n = rng.randrange(len(view) + 1)
            data = rng.randbytes(n)
            view[:n] = data
            view.release()
            writer.commit(n)
            model += data
        elif op == 3:  # read
            if not model:
                with pytest.raises(TimeoutError):
                    reader.read(timeout=0)
                continue
            n = rng.randrange(1, cap + 1)
            got = reader.read(n, timeout=0)
            assert got == bytes(model[:n])
            del model[: len(got)]
        elif op == 4 and model:  # readinto
            buf = bytearray(rng.randrange(1, 300))
            n = reader.readinto(buf, timeout=0)
            assert n == min(len(buf), len(model)) and buf[:n] == model[:n]
            del model[:n]
        elif op == 5 and model:  # readable_view + consume
            view = reader.readable_view(timeout=0)
            assert view.readonly and view == model
            n = rng.randrange(len(model) + 1)
            with pytest.raises(BufferError):
                reader.consume(max(n, 1))
            view.release()
            reader.consume(n)
            del model[:n]
        elif op == 6:  # bad input changes nothing
            with pytest.raises(ValueError):
                reader.consume(len(model) + 1)
            with pytest.raises(ValueError):
                writer.commit(cap - len(model) + 1)
            with pytest.raises(ValueError):
                reader.read(0)
    if model:
        assert reader.read(timeout=0) == bytes(model)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_stream_views_timeouts_close_and_bad_fds():
    writer = picoring.SharedStreamWriter.create(4096)
    reader = picoring.SharedStreamReader.attach(writer.fd)
    cap = writer.capacity
    with pytest.raises(TimeoutError):
        reader.readable_view(min_bytes=10, timeout=0.01)
    with pytest.raises(ValueError):  # could never be readable
        reader.readable_view(min_bytes=cap + 1, timeout=0)
    with pytest.raises(ValueError):
        writer.wait_for_space(cap + 1, timeout=0)
    writer.wait_for_space(cap, timeout=0)
    # A live writable view blocks write() over the bytes it shows, not commit().
    view = writer.writable_view()
    view[:5] = b"hello"
    with pytest.raises(BufferError):
        writer.write(b"x")
    assert writer.exports == 1
    writer.commit(5)
    del view
    gc.collect()
    assert writer.exports == 0
    assert writer.write(b" world") == 6
    # A reader's view keeps the stream alive and shows the bytes until they are consumed.
    rview = reader.readable_view(min_bytes=11, timeout=1)
    assert rview == b"hello world" and reader.exports == 1
    with pytest.raises(BufferError):
        reader.read(timeout=0)
    with pytest.raises(TypeError):  # read-only
        rview[0] = 0
    rview.release()
    # Close: the writer's calls raise Closed, the reader gets what was written, then b"".
    writer.close()
    with pytest.raises(picoring.Closed):
        writer.write(b"late")
    with pytest.raises(picoring.Closed):
        writer.write_all(b"late", timeout=1)
    with pytest.raises(picoring.Closed):
        writer.writable_view()
    assert reader.read(3, timeout=1) == b"hel"
    buf = bytearray(100)
    assert reader.readinto(buf, timeout=1) == 8 and buf[:8] == b"lo world"
    assert reader.read(timeout=1) == b"" and reader.readinto(buf, timeout=1) == 0
    with pytest.raises(picoring.Closed):
        reader.readable_view(timeout=1)
    # A stream end refuses a record queue, and the other way round; a held end is EBUSY.
    records = picoring.SharedRecordWriter.create(4096)
    with pytest.raises(OSError):
        picoring.SharedStreamReader.attach(records.fd)
    live = picoring.SharedStreamWriter.create(4096)
    with pytest.raises(OSError):
        picoring.SharedRecordReader.attach(live.fd)
    with pytest.raises(OSError) as e:
        picoring.SharedStreamWriter.attach(live.fd)
    assert e.value.errno == errno.EBUSY
    with pytest.raises(OSError):
        picoring.SharedStreamReader.attach(-1)
    with pytest.raises(ValueError):
        picoring.SharedStreamWriter.create(0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_stream_blocked_reader_is_woken_and_one_thread_per_end():
    writer = picoring.SharedStreamWriter.create(4096)
    reader = picoring.SharedStreamReader.attach(writer.fd)
    got = []
    waiting = threading.Thread(target=lambda: got.append(reader.read(timeout=30)))
    waiting.start()
    deadline = time.monotonic() + 30
    while True:  # the reader's wait holds the end (and released the GIL, or this loop would not run)
        try:
            reader.read(timeout=0)
        except RuntimeError:
            break
        except TimeoutError:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    writer.write(b"wake up")
    waiting.join(timeout=30)
    assert got == [b"wake up"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_shared_queue_matches_a_deque_under_random_operations(dtype):
    # Both ends in one process, a small queue, every call against a deque of the elements' bytes.
    rng = random.Random(dtype.itemsize)
    writer = picoring.SharedQueueWriter.create(100, dtype)
    reader = picoring.SharedQueueReader.attach(writer.fd, dtype)
    cap = writer.capacity
    assert cap == reader.capacity >= 100 and writer.dtype == reader.dtype == dtype
    assert cap * dtype.itemsize % picoring.allocation_granularity() == 0  # whole pages of whole elements
    model = collections.deque()
    for step in range(3000):
        op = rng.randrange(6)
        if op == 0:  # extend: all or nothing
            values = sample(dtype, rng.randrange(1, cap // 2), rng)
            if len(values) <= cap - len(model):
                writer.extend(values, timeout=0)
                model.extend(v.tobytes() for v in values)
            else:
                with pytest.raises(TimeoutError):
                    writer.extend(values, timeout=0)
        elif op == 1 and len(model) < cap:  # push one
            value = sample(dtype, 1, rng)[0]
            writer.push(value, timeout=0)
            model.append(value.tobytes())
        elif op == 2:  # writable + commit, in place, however it wraps
            window = writer.writable()
            assert len(window) == cap - len(model)
            n = rng.randrange(len(window) + 1)
            values = sample(dtype, n, rng)
            window[:n] = values
            del window
            writer.commit(n)
            model.extend(v.tobytes() for v in values)
        elif op == 3 and model:  # pop up to max_items
            got = reader.pop(rng.randrange(1, cap + 1), timeout=0)
            assert [v.tobytes() for v in got] == [model.popleft() for _ in range(len(got))]
        elif op == 4 and model:  # readable (read-only, one array) + consume
            window = reader.readable(timeout=0)
            assert not window.flags.writeable and len(window) == len(model) == len(reader)
            assert [v.tobytes() for v in window] == list(model)
            n = rng.randrange(len(model) + 1)
            with pytest.raises(BufferError):
                reader.consume(max(n, 1))
            del window
            reader.consume(n)
            for _ in range(n):
                model.popleft()
        elif op == 5:  # bad input changes nothing
            with pytest.raises(ValueError):
                reader.consume(len(model) + 1)
            with pytest.raises(ValueError):
                writer.commit(cap - len(model) + 1)
            with pytest.raises(ValueError):
                writer.extend(sample(dtype, cap + 1, rng), timeout=0)
            assert len(reader) == len(model)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_queue_between_processes_bad_input_and_a_dead_writer():
    writer = picoring.SharedQueueWriter.create(1000, np.int64)
    child = run_child("import numpy as np, picoring\nr = picoring.SharedQueueReader.attach(FD, np.int64)\n"
                      "total, count = 0, 0\nwhile True:\n    try:\n        a = r.readable(timeout=30)\n"
                      "    except picoring.Closed:\n        break\n    total += int(a.sum())\n"
                      "    count += len(a)\n    n = len(a)\n    del a\n    r.consume(n)\n"
                      "print(count, total, flush=True)", writer.fd)
    values = np.arange(200_000, dtype=np.int64)
    for start in range(0, len(values), 700):  # more than the queue holds: the writer waits
        writer.extend(values[start : start + 700], timeout=30)
    writer.close()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.split() == [str(len(values)), str(int(values.sum()))]

    with pytest.raises(TypeError):  # no silent cast
        picoring.SharedQueueWriter.create(10, np.float32).extend(np.zeros(3))
    live = picoring.SharedQueueWriter.create(10, np.float32)
    with pytest.raises(OSError):  # another element size
        picoring.SharedQueueReader.attach(live.fd, np.float64)
    with pytest.raises(OSError):  # another kind of queue
        picoring.SharedQueueReader.attach(picoring.SharedStreamWriter.create(4096).fd, np.uint8)
    with pytest.raises(TypeError):
        picoring.SharedQueueWriter.create(10, object)
    with pytest.raises(picoring.Closed):
        live.close()
        live.push(1.0)

    # The writer's process dies without close: the reader gets its elements, then Closed.
    reader = picoring.SharedQueueReader.create(100, np.float32)
    child = run_child("import os, numpy as np, picoring\nw = picoring.SharedQueueWriter.attach(FD, np.float32)\n"
                      "w.extend(np.array([1.5, 2.5], dtype=np.float32))\nos._exit(0)", reader.fd)
    child.wait(timeout=30)
    assert reader.pop(timeout=30).tolist() == [1.5, 2.5]
    with pytest.raises(picoring.Closed):
        reader.pop(timeout=30)


CHILD_STREAM_READER = """
import hashlib, picoring, random
r = picoring.SharedStreamReader.attach(FD)
rng, total, digest, buf = random.Random(2), 0, hashlib.sha256(), bytearray(5000)
while True:
    how = rng.randrange(3)
    if how == 0:
        chunk = r.read(rng.randrange(1, 9000), timeout=30)
    elif how == 1:
        chunk = bytes(buf[: r.readinto(buf, timeout=30)])
    else:
        try:
            view = r.readable_view(timeout=30)
        except picoring.Closed:
            chunk = b""
        else:
            chunk = bytes(view[: rng.randrange(1, len(view) + 1)])
            view.release()
            r.consume(len(chunk))
    if not chunk:
        break
    digest.update(chunk)
    total += len(chunk)
print(total, digest.hexdigest(), flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_stream_carries_bytes_to_another_process_in_order():
    rng = random.Random(7)
    writer = picoring.SharedStreamWriter.create(8192)  # small: both sides wait and wrap often
    data = rng.randbytes(3 << 20)
    child = run_child(CHILD_STREAM_READER, writer.fd)
    i = 0
    while i < len(data):
        n = rng.randrange(1, 20000)
        if rng.random() < 0.5:
            writer.write_all(data[i : i + n], timeout=30)
            i += len(data[i : i + n])
        else:
            writer.wait_for_space(1, timeout=30)
            view = writer.writable_view()
            k = min(n, len(view), len(data) - i)
            view[:k] = data[i : i + k]
            view.release()
            writer.commit(k)
            i += k
    writer.close()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.split() == [str(len(data)), hashlib.sha256(data).hexdigest()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_shared_stream_a_dead_peer_ends_the_wait():
    # The writer's process dies without close: the reader gets its bytes, then the end (b"").
    reader = picoring.SharedStreamReader.create(4096)
    child = run_child('import os, picoring\nw = picoring.SharedStreamWriter.attach(FD)\n'
                      'w.write_all(b"last words")\nos._exit(0)', reader.fd)
    child.wait(timeout=30)
    assert reader.read(timeout=30) == b"last words"
    assert reader.read(timeout=30) == b""
    # The reader's process dies: a writer waiting for room sees Closed, not a hang.
    writer = picoring.SharedStreamWriter.create(4096)
    child = run_child('import picoring, time\nr = picoring.SharedStreamReader.attach(FD)\nprint("attached", '
                      'flush=True)\ntime.sleep(60)', writer.fd)
    assert child.stdout.readline().strip() == "attached"
    child.kill()
    child.wait(timeout=30)
    with pytest.raises(picoring.Closed):
        writer.write_all(bytes(writer.capacity + 1), timeout=30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
@pytest.mark.parametrize("script, sizes", [("python_messages.py", ("64 B", "4096 B")),
                                           ("python_streams.py", ("4096 B", "65536 B"))])
def test_the_ipc_benchmarks_run_and_check_what_they_deliver(script, sizes):
    # Their own checks (each contender's messages or bytes compared whole once, then every timed
    # run's counts and last sequence number) end them with an error when a contender loses,
    # changes or reorders anything.
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--markdown"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(tuple(f"| {size} |" for size in sizes))]
    assert len(rows) == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_worker_pool_example_collects_every_result_once(monkeypatch):
    # Imported by name (not run_path): its spawned workers import it again to find worker().
    monkeypatch.syspath_prepend(str(ROOT / "python" / "examples"))
    import worker_pool

    results = worker_pool.collect(workers=3, count=5000)
    assert results == {task: worker_pool.work(task) for task in range(5000)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared queues pass a memfd (Linux)")
def test_level_meter_example_reads_blocks_in_place_across_the_wrap(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "python" / "examples"))
    import level_meter

    audio = level_meter.signal(5)
    # One page holds one 3840-byte block and a bit: blocks straddle the end of the stream, arrive
    # in pieces, and are read as one array all the same.
    levels = level_meter.meter(audio, capacity=4096)
    blocks = audio.reshape(-1, level_meter.BLOCK, level_meter.CHANNELS).astype(np.float64)
    np.testing.assert_allclose(levels, np.sqrt(np.mean(blocks**2, axis=1)), rtol=1e-12)


def test_fir_example_matches_numpy_convolve():
    example = runpy.run_path(str(ROOT / "python" / "examples" / "fir_stream.py"))
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(50_000).astype(np.float32)
    taps = rng.standard_normal(63).astype(np.float32)
    # A small ring, so that the history window wraps many times.
    got = example["fir_stream"](signal, taps, block=1000, capacity=1200)
    want = np.convolve(signal, taps)[: len(signal)]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("readme", ["README.md", "python/README.md"])
def test_the_readme_examples_run(readme):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / readme).read_text(), re.S)
    assert blocks, f"{readme} has no python example"
    for code in blocks:
        exec(compile(code, readme, "exec"), {})


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
