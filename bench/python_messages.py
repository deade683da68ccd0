"""Messages between two Python processes: picoring's shared record queue against multiprocessing.

  picoring push        SharedRecordWriter.push, one call per message; the reader takes lists of
                       up to 64 (SharedRecordReader.pop_many(max_records=64): without a cap, a
                       list of every published 4 KiB message, allocated while the previous list
                       is still referenced, made glibc give heap pages back and fault them in
                       again, 70-290 k msg/s against 650-750 with the cap, on this machine)
  picoring push_many   the writer hands over lists of 64 messages (one publication per list)
  Pipe                 multiprocessing.Pipe: Connection.send_bytes / recv_bytes, one per message
  Queue                multiprocessing.Queue: put / get, one per message (pickled, through a feeder
                       thread and a pipe)

The same messages (bytes, each beginning with its sequence number) go from the parent to a child
process, which checks the count, the bytes and the last sequence number, and reports. The child is
spawned, not forked: after a fork every page of the parent's messages is shared copy-on-write, and
the first reference count taken on each message (by any contender's send) copies its page, which
cost about 40 us per 4 KiB message here and made every contender equally slow. A run is timed
from the child's "ready" to its report; runs are interleaved (A B C D A B C D ...) and each cell is
the median over repetitions, each ratio the median of the ratios within a repetition. Before
timing, every contender's messages are checked whole once.

    PYTHONPATH=build/release/python python3 bench/python_messages.py [--reps 5] [--markdown] [--quick]
"""

import argparse
import multiprocessing
import multiprocessing.reduction
import statistics
import time

import picoring
from python_windows import machine, print_table  # this directory's: the CPU and Python versions, tables

LIST = 64  # messages per push_many call, and at most per pop_many
CAPACITY = 1 << 20  # bytes the picoring queue holds (headers included)


def make_messages(count, size):
    pad = bytes(range(256)) * (size // 256 + 1)
    return [i.to_bytes(8, "little") + pad[: size - 8] for i in range(count)]


def summary(messages):
    return len(messages), sum(map(len, messages)), int.from_bytes(messages[-1][:8], "little")


# ---- the readers (in the child) -----------------------------------------------------------------
# Each sends "ready", reads `count` messages and sends what it read: (count, bytes, last sequence
# number), or with `keep` the messages themselves (the untimed check).


def read_picoring(fd_arg, count, ctl, keep):
    fd = fd_arg.detach()  # the memfd, sent over a Unix socket (SCM_RIGHTS) by multiprocessing
    reader = picoring.SharedRecordReader.attach(fd)
    ctl.send("ready")
    got, total, kept, last = 0, 0, [], b""
    while got < count:
        batch = reader.pop_many(max_records=LIST, timeout=60)
        got += len(batch)
        total += sum(map(len, batch))
        last = batch[-1]
        if keep:
            kept.extend(batch)
    ctl.send(kept if keep else (got, total, int.from_bytes(last[:8], "little")))


def read_one_by_one(source, receive, count, ctl, keep):
    """The Pipe's and the Queue's reader: `receive` names the method that returns one message."""
    ctl.send("ready")
    receive = getattr(source, receive)
    total, kept, m = 0, [], b""
    for _ in range(count):
        m = receive()
        total += len(m)
        if keep:
            kept.append(m)
    ctl.send(kept if keep else (count, total, int.from_bytes(m[:8], "little")))


# ---- the writers (in the parent) ----------------------------------------------------------------


def write_push(w, messages):
    for m in messages:
        w.push(m)


def write_push_many(w, messages):
    for i in range(0, len(messages), LIST):
        rest = messages[i : i + LIST]
        while rest:
            rest = rest[w.push_many(rest) :]


def write_pipe(conn, messages):
    for m in messages:
        conn.send_bytes(m)


def write_queue(q, messages):
    for m in messages:
        q.put(m)


# ---- one run --------------------------------------------------------------------------------------


def run(kind, messages, keep=False):
    """Sends messages to a spawned child through `kind`; returns (seconds, what the child sent)."""
    ctx = multiprocessing.get_context("spawn")
    ctl_parent, ctl_child = ctx.Pipe()
    if kind in ("picoring push", "picoring push_many"):
        writer = picoring.SharedRecordWriter.create(CAPACITY)
        fd_arg = multiprocessing.reduction.DupFd(writer.fd)
        child = ctx.Process(target=read_picoring, args=(fd_arg, len(messages), ctl_child, keep))
        write = write_push if kind == "picoring push" else write_push_many
        done = writer.close
    elif kind == "Pipe":
        writer, reader_end = ctx.Pipe(duplex=False)[::-1]
        child = ctx.Process(target=read_one_by_one, args=(reader_end, "recv_bytes", len(messages), ctl_child, keep))
        write, done = write_pipe, writer.close
    else:
        writer = ctx.Queue()
        child = ctx.Process(target=read_one_by_one, args=(writer, "get", len(messages), ctl_child, keep))
        write, done = write_queue, writer.close
    child.start()
    if ctl_parent.recv() != "ready":
        raise RuntimeError(f"{kind}: the child did not start")
    t0 = time.perf_counter()
    write(writer, messages)
    result = ctl_parent.recv()
    seconds = time.perf_counter() - t0
    done()
    child.join(60)
    if child.exitcode != 0:
        raise RuntimeError(f"{kind}: the child exited with {child.exitcode}")
    return seconds, result


KINDS = ("picoring push", "picoring push_many", "Pipe", "Queue")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=50_000, help="messages per run")
    ap.add_argument("--sizes", default="64,4096", help="message sizes in bytes (>= 8)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--quick", action="store_true", help="one short repetition (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.count = 1, 2000
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        if size < 8:
            raise SystemExit("python_messages: sizes must be >= 8 (each message begins with its number)")
        messages = make_messages(args.count, size)
        for kind in KINDS:  # every contender delivers the same messages, whole and in order
            if run(kind, messages[:1000], keep=True)[1] != messages[:1000]:
                raise SystemExit(f"python_messages: {kind} delivered other messages")
        seconds = {k: [] for k in KINDS}
        for _ in range(args.reps):
            for kind in KINDS:
                s, got = run(kind, messages)
                if tuple(got) != summary(messages):
                    raise SystemExit(f"python_messages: {kind} read {got}, expected {summary(messages)}")
                seconds[kind].append(s)
        rate = {k: args.count / statistics.median(v) / 1e3 for k, v in seconds.items()}

        def ratio(a, b):
            return statistics.median(x / y for x, y in zip(seconds[b], seconds[a]))

        rows.append((size, rate, ratio("picoring push", "Pipe"), ratio("picoring push_many", "Pipe"),
                     ratio("picoring push", "Queue"), ratio("picoring push_many", "Queue")))
    print(f"# Messages between two Python processes ({machine()}, {multiprocessing.cpu_count()} CPUs); "
          f"{args.count} per run, "
          f"median of {args.reps} interleaved repetitions")
    head = ("message", "picoring push k msg/s", "picoring push_many", "Pipe", "Queue", "push / Pipe",
            "push_many / Pipe", "push / Queue", "push_many / Queue")
    print_table(head, [(f"{size} B", *(f"{rate[k]:.1f}" for k in KINDS), *(f"{r:.2f}x" for r in ratios))
                       for size, rate, *ratios in rows], args.markdown, width=20)
    print("Ratios: the other's time over picoring's in the same repetition (median); above 1, picoring is faster.")


if __name__ == "__main__":
    main()
