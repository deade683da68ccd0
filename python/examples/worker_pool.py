"""Worker processes report to one collector through shared record queues, read with one wait.

Each worker creates its own queue (SharedRecordWriter.create), hands the memfd to the collector
over a Unix socket (socket.send_fds), and pushes one record per result, several at once when it
has them (push_many). The collector adds every queue to a SharedRecordFanIn and reads them all
in turns: no pickling, no pipe per message, each worker's results in the order it sent them. A
worker that exits (or dies) ends its lane; the collector still gets what it sent first, and
pop_many raises picoring.Closed once every lane has ended and been read.

    python3 worker_pool.py   # 4 workers, 200,000 tasks; checks every result against a serial run
"""

import multiprocessing
import os
import socket
import struct
import time

import picoring

RESULT = struct.Struct("<QQ")  # task number, result


def work(task):
    """The task: something a worker computes (the number of steps of the Collatz sequence)."""
    n, steps = task + 1, 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def worker(sock, first, count, stride):
    queue = picoring.SharedRecordWriter.create(1 << 20)
    socket.send_fds(sock, [b"queue"], [queue.fd])
    sock.close()
    with queue:  # closes the queue when done: the collector's lane ends once it is read
        batch = []
        for task in range(first, count, stride):
            batch.append(RESULT.pack(task, work(task)))
            if len(batch) == 64:
                while batch:  # push_many takes as many as fit, waiting for room for the first
                    batch = batch[queue.push_many(batch, timeout=60) :]
        while batch:
            batch = batch[queue.push_many(batch, timeout=60) :]


def collect(workers=4, count=200_000):
    """Runs the pool; returns {task: result} as the collector received them."""
    ctx = multiprocessing.get_context("spawn")  # workers share no memory with the collector
    fanin = picoring.SharedRecordFanIn()
    procs = []
    for k in range(workers):
        mine, theirs = socket.socketpair()
        p = ctx.Process(target=worker, args=(theirs, k, count, workers))
        p.start()
        theirs.close()
        _, fds, _, _ = socket.recv_fds(mine, 16, 1)
        fanin.add(fds[0])
        os.close(fds[0])  # the fan-in maps the queue; the descriptor is no longer needed
        mine.close()
        procs.append(p)
    results = {}
    while True:
        try:
            records = fanin.pop_many(max_records=256, timeout=60)
        except picoring.Closed:  # every worker has closed its queue (or died) and all was read
            break
        for _lane, record in records:
            task, value = RESULT.unpack(record)
            if task in results:
                raise RuntimeError(f"task {task} reported twice")
            results[task] = value
    for p in procs:
        p.join(60)
    return results


def main():
    count = 200_000
    t0 = time.perf_counter()
    results = collect(workers=4, count=count)
    elapsed = time.perf_counter() - t0
    expected = {task: work(task) for task in range(count)}
    if results != expected:
        missing = len(set(expected) - set(results))
        raise SystemExit(f"worker_pool: {missing} results missing or wrong")
    print(f"worker_pool: {count} results from 4 workers in {elapsed:.2f} s, all correct")


if __name__ == "__main__":
    main()
