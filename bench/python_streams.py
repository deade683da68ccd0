"""Bytes between two Python processes: picoring's shared byte stream against a pipe and a socket.

  picoring        SharedStreamWriter.write_all(chunk); the reader copies out with
                  SharedStreamReader.readinto(buffer), as the others' readers do
  picoring view   the same writer; the reader takes readable_view() (no copy), sums one byte per
                  4 KiB page of it (so that it reads every page the writer filled) and consume()s it
  pipe            os.pipe() grown to the stream's 1 MiB (F_SETPIPE_SZ): os.write / os.readv
  socket          socket.socketpair() (Unix stream sockets, default buffers): sendall / recv_into

The parent writes chunks of one size (each begins with its sequence number) to a spawned child,
which reads into a 64 KiB buffer, counts the bytes and checks the last chunk's number. A run is
timed from the child's "ready" to its report; runs are interleaved (A B C D A B C D ...), each cell
is the median over repetitions, each ratio the median of the ratios within a repetition. Before
timing, every contender's bytes are compared whole once (SHA-256 in the child).

    PYTHONPATH=build/release/python python3 bench/python_streams.py [--reps 5] [--markdown] [--quick]
"""

import argparse
import fcntl
import hashlib
import multiprocessing
import multiprocessing.reduction
import os
import socket
import statistics
import time

import picoring
from python_windows import machine, print_table  # this directory's: the CPU and Python versions, tables

CAPACITY = 1 << 20  # bytes the stream holds, and the pipe
READ = 1 << 16  # the readers' buffer


def make_chunks(size, distinct=16):
    pad = bytes(range(256)) * (size // 256 + 1)
    return [i.to_bytes(8, "little") + pad[: size - 8] for i in range(distinct)]


# ---- the readers (in the child): "ready", then (bytes read, the last 8 bytes) or the digest ------


def read_stream(fd_arg, total, ctl, check, view):
    reader = picoring.SharedStreamReader.attach(fd_arg.detach())
    ctl.send("ready")
    got, digest, buf, tail, touched = 0, hashlib.sha256(), bytearray(READ), b"", 0
    while got < total:
        if view:
            v = reader.readable_view(timeout=60)
            n = len(v)
            touched += sum(v[::4096])
            if check:
                digest.update(v)
            tail = (tail + bytes(v[-8:]))[-8:]
            v.release()
            reader.consume(n)
        else:
            n = reader.readinto(buf, timeout=60)
            if check:
                digest.update(buf[:n])
            tail = (tail + bytes(buf[max(0, n - 8) : n]))[-8:]
        got += n
    ctl.send(digest.hexdigest() if check else (got, tail))


def read_fd(fd_arg, total, ctl, check, kind):
    fd = fd_arg.detach()
    sock = socket.socket(fileno=fd) if kind == "socket" else None
    ctl.send("ready")
    got, digest, buf, tail = 0, hashlib.sha256(), bytearray(READ), b""
    while got < total:
        n = sock.recv_into(buf) if sock else os.readv(fd, [buf])
        if n == 0:
            raise RuntimeError(f"{kind}: end of file after {got} bytes")
        if check:
            digest.update(buf[:n])
        tail = (tail + bytes(buf[max(0, n - 8) : n]))[-8:]
        got += n
    ctl.send(digest.hexdigest() if check else (got, tail))


# ---- the writers (in the parent) ----------------------------------------------------------------


def write_stream(w, chunks, count):
    for i in range(count):
        w.write_all(chunks[i % len(chunks)])


def write_pipe(fd, chunks, count):
    for i in range(count):
        view = memoryview(chunks[i % len(chunks)])
        while view:
            view = view[os.write(fd, view) :]


def write_socket(sock, chunks, count):
    for i in range(count):
        sock.sendall(chunks[i % len(chunks)])


KINDS = ("picoring", "picoring view", "pipe", "socket")


def run(kind, chunks, count, check=False):
    """Sends count chunks to a spawned child through `kind`; returns (seconds, what the child sent)."""
    ctx = multiprocessing.get_context("spawn")
    ctl_parent, ctl_child = ctx.Pipe()
    total = count * len(chunks[0])
    if kind.startswith("picoring"):
        writer = picoring.SharedStreamWriter.create(CAPACITY)
        args = (multiprocessing.reduction.DupFd(writer.fd), total, ctl_child, check, kind == "picoring view")
        child = ctx.Process(target=read_stream, args=args)
        write, done, ends = write_stream, writer.close, ()
    elif kind == "pipe":
        r, writer = os.pipe()
        fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, CAPACITY)
        child = ctx.Process(target=read_fd, args=(multiprocessing.reduction.DupFd(r), total, ctl_child, check, kind))
        write, done, ends = write_pipe, (lambda: os.close(writer)), (r,)
    else:
        writer, r = socket.socketpair()
        child = ctx.Process(target=read_fd,
                            args=(multiprocessing.reduction.DupFd(r.fileno()), total, ctl_child, check, kind))
        write, done, ends = write_socket, writer.close, (r.detach(),)
    child.start()
    if ctl_parent.recv() != "ready":
        raise RuntimeError(f"{kind}: the child did not start")
    t0 = time.perf_counter()
    write(writer, chunks, count)
    result = ctl_parent.recv()
    seconds = time.perf_counter() - t0
    done()
    for fd in ends:
        os.close(fd)
    child.join(60)
    if child.exitcode != 0:
        raise RuntimeError(f"{kind}: the child exited with {child.exitcode}")
    return seconds, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256, help="bytes per run, in MiB")
    ap.add_argument("--sizes", default="4096,65536", help="chunk sizes in bytes (>= 8)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--quick", action="store_true", help="one short repetition (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.mib = 1, 8
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        if size < 8:
            raise SystemExit("python_streams: sizes must be >= 8 (each chunk begins with its number)")
        chunks = make_chunks(size)
        count = max(1, (args.mib << 20) // size)
        expected_tail = chunks[(count - 1) % len(chunks)][-8:]
        sent = hashlib.sha256(b"".join(chunks[i % len(chunks)] for i in range(min(count, 2000)))).hexdigest()
        for kind in KINDS:  # every contender delivers the same bytes, whole and in order
            if run(kind, chunks, min(count, 2000), check=True)[1] != sent:
                raise SystemExit(f"python_streams: {kind} delivered other bytes")
        seconds = {k: [] for k in KINDS}
        for _ in range(args.reps):
            for kind in KINDS:
                s, got = run(kind, chunks, count)
                if tuple(got) != (count * size, expected_tail):
                    raise SystemExit(f"python_streams: {kind} read {got[0]} bytes ending {got[1]!r}")
                seconds[kind].append(s)
        rate = {k: count * size / statistics.median(v) / 1e9 for k, v in seconds.items()}

        def ratio(a, b):
            return statistics.median(x / y for x, y in zip(seconds[b], seconds[a]))

        rows.append((size, rate, ratio("picoring", "pipe"), ratio("picoring", "socket"),
                     ratio("picoring view", "pipe")))
    print(f"# Bytes between two Python processes ({machine()}, {multiprocessing.cpu_count()} CPUs); "
          f"{args.mib} MiB per run, median of {args.reps} interleaved repetitions")
    head = ("chunk", "picoring GB/s", "picoring view", "pipe", "socket", "picoring / pipe", "picoring / socket",
            "view / pipe")
    print_table(head, [(f"{size} B", *(f"{rate[k]:.2f}" for k in KINDS), *(f"{r:.2f}x" for r in ratios))
                       for size, rate, *ratios in rows], args.markdown)
    print("Ratios: the other's time over picoring's in the same repetition (median); above 1, picoring is faster.")


if __name__ == "__main__":
    main()
