"""Wrapped windows from Python: picoring.Ring against the two rings Python code writes today.

  numpy ring   a numpy array with a head index; a window that wraps is put together with
               numpy.concatenate (a copy), one that does not is a slice (a view).
  deque        collections.deque of Python floats, windows made with numpy.fromiter.

Two measurements per window size (float32 elements, ring of 4 windows):
  read     get a window that wraps past the physical end as one contiguous array (the ring is
           left where the window wraps; picoring's window is created and dropped each time).
  stream   the loop of a streaming consumer: push a block of a quarter window, read the last
           window, consume the block; over many steps, so wrapped and unwrapped windows mix.
Each cell is the median over repetitions (each about 20 ms) of the mean time per operation; the contenders run
interleaved (A B C A B C ...) so that a change of machine state hits all of them alike.

    PYTHONPATH=build/release/python python3 bench/python_windows.py [--reps 7] [--markdown]
"""

import argparse
import collections
import itertools
import platform
import statistics
import time

import numpy as np

import picoring

DTYPE = np.dtype(np.float32)


class NumpyRing:
    """The classic array ring: two copies at the seam, concatenate for a wrapped window."""

    def __init__(self, capacity):
        self.buf = np.zeros(capacity, dtype=DTYPE)
        self.head = 0  # oldest element
        self.size = 0

    def extend(self, block):
        cap = len(self.buf)
        tail = (self.head + self.size) % cap
        first = min(len(block), cap - tail)
        self.buf[tail:tail + first] = block[:first]
        self.buf[: len(block) - first] = block[first:]
        self.size += len(block)

    def window(self, offset, count):
        cap = len(self.buf)
        start = (self.head + offset) % cap
        if start + count <= cap:
            return self.buf[start:start + count]
        return np.concatenate((self.buf[start:], self.buf[: start + count - cap]))

    def consume(self, n):
        self.head = (self.head + n) % len(self.buf)
        self.size -= n


class DequeRing:
    def __init__(self, capacity):
        self.d = collections.deque()

    def extend(self, block):
        self.d.extend(block.tolist())

    def window(self, offset, count):
        return np.fromiter(itertools.islice(self.d, offset, offset + count), dtype=DTYPE, count=count)

    def consume(self, n):
        for _ in range(n):
            self.d.popleft()


class Pico:
    def __init__(self, capacity):
        self.r = picoring.Ring(capacity, dtype=DTYPE)

    def extend(self, block):
        self.r.extend(block)

    def window(self, offset, count):
        return self.r.peek(offset, count)

    def consume(self, n):
        self.r.consume(n)


def wrapped_state(make, window):
    """A ring of 4 windows (as picoring rounds it) holding one window that wraps at the end."""
    cap = picoring.Ring(4 * window, dtype=DTYPE).capacity
    ring = make(cap)
    pad = cap - window // 2
    ring.extend(np.zeros(pad, dtype=DTYPE))
    ring.consume(pad)
    ring.extend(np.arange(window, dtype=DTYPE))
    return ring


def time_read(ring, window, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        w = ring.window(0, window)
        del w
    return (time.perf_counter() - t0) / iters


def time_stream(ring, window, steps, block):
    t0 = time.perf_counter()
    for _ in range(steps):
        ring.extend(block)
        w = ring.window(0, window)
        del w
        ring.consume(len(block))
    return (time.perf_counter() - t0) / steps


def check_windows_agree(window):
    # Same data, same window, every contender: the benchmark compares equal work.
    wins = [wrapped_state(m, window).window(0, window) for m in (Pico, NumpyRing, DequeRing)]
    for w in wins[1:]:
        np.testing.assert_array_equal(wins[0], w)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, Python {platform.python_version()}, numpy {np.__version__}"


def print_table(head, rows, markdown, width=18):
    """Prints the column names and rows of cells (strings): a markdown table (the first column
    left-aligned, the figures right-aligned), or columns `width` wide."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" + "---:|" * (len(head) - 1))
        for cells in rows:
            print("| " + " | ".join(cells) + " |")
    else:
        for cells in (head, *rows):
            print("  ".join(f"{c:>{width}}" for c in cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--sizes", default="4096,16384,65536,262144,1048576", help="window sizes in bytes")
    args = ap.parse_args()
    contenders = {"picoring": Pico, "numpy ring": NumpyRing, "deque": DequeRing}
    rows = []
    for nbytes in (int(s) for s in args.sizes.split(",")):
        window = nbytes // DTYPE.itemsize
        check_windows_agree(window)
        block = np.arange(window // 4, dtype=DTYPE)
        # Iterations per cell from one trial run: about 20 ms each, at least 3.
        iters = {}
        for name, make in contenders.items():
            per_op = max(time_read(wrapped_state(make, window), window, 3),
                         time_stream(wrapped_state(make, window), window, 3, block))
            iters[name] = max(3, int(0.02 / per_op))
        read = {k: [] for k in contenders}
        stream = {k: [] for k in contenders}
        for _ in range(args.reps):
            for name, make in contenders.items():
                read[name].append(time_read(wrapped_state(make, window), window, iters[name]))
                stream[name].append(time_stream(wrapped_state(make, window), window, iters[name], block))
        med = {k: (statistics.median(read[k]), statistics.median(stream[k])) for k in contenders}
        rows.append((nbytes, med))
    print(f"# Wrapped windows from Python ({machine()}); median of {args.reps} interleaved repetitions")
    head = ("window", "picoring read us", "numpy ring read us", "deque read us", "read: numpy/pico", "read: deque/pico",
            "stream: numpy/pico", "stream: deque/pico")
    table = []
    for nbytes, med in rows:
        p, n, d = med["picoring"], med["numpy ring"], med["deque"]
        size = f"{nbytes // 1024} KiB" if nbytes < 1 << 20 else f"{nbytes >> 20} MiB"
        table.append((size, f"{p[0] * 1e6:.2f}", f"{n[0] * 1e6:.2f}", f"{d[0] * 1e6:.1f}", f"{n[0] / p[0]:.1f}x",
                      f"{d[0] / p[0]:.0f}x", f"{n[1] / p[1]:.2f}x", f"{d[1] / p[1]:.0f}x"))
    print_table(head, table, args.markdown)


if __name__ == "__main__":
    main()
