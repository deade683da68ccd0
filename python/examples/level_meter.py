"""A capture process streams stereo float32 audio to an analysis process through shared memory.

The capture side writes 10 ms blocks of interleaved samples into a SharedStreamWriter (as a sound
card callback would hand them over). The analysis side never copies them: readable_view() is one
memoryview over every byte published, however it wraps at the end of the stream, so
numpy.frombuffer makes it a (frames, 2) array in place. It measures each whole block's level
(RMS per channel), then consume()s those blocks. A block may arrive in pieces (write_all writes
what fits, then waits for room), so the reader only ever takes whole blocks and leaves the rest
for the next look.

    python3 level_meter.py   # 60 s of 48 kHz stereo; checks every level against numpy on the whole signal
"""

import multiprocessing
import multiprocessing.reduction

import numpy as np

import picoring

RATE = 48_000
BLOCK = RATE // 100  # frames per 10 ms block
CHANNELS = 2
FRAME_BYTES = CHANNELS * np.dtype(np.float32).itemsize
BLOCK_BYTES = BLOCK * FRAME_BYTES


def signal(seconds):
    """The test signal: a 440 Hz tone on the left, a slowly rising noise on the right."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(1)
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = rng.standard_normal(t.size) * np.linspace(0.01, 0.3, t.size)
    frames = (t.size // BLOCK) * BLOCK
    return np.stack([left, right], axis=1)[:frames].astype(np.float32)


def analyse(fd, conn):
    """The analysis process: the RMS of each block, per channel, read in place."""
    reader = picoring.SharedStreamReader.attach(fd.detach())  # the memfd, passed by multiprocessing
    levels = []
    while True:
        try:
            view = reader.readable_view(min_bytes=BLOCK_BYTES, timeout=30)
        except picoring.Closed:  # the capture side closed the stream and every whole block was read
            break
        whole = len(view) // BLOCK_BYTES * BLOCK_BYTES
        blocks = np.frombuffer(view[:whole], dtype=np.float32).reshape(-1, BLOCK, CHANNELS)
        levels.append(np.sqrt(np.mean(np.square(blocks, dtype=np.float64), axis=1)))
        del blocks
        view.release()  # no array shows the bytes any more: they may be freed
        reader.consume(whole)
    conn.send(np.concatenate(levels) if levels else np.empty((0, CHANNELS)))


def meter(audio, capacity=1 << 16):
    """Streams audio (frames x 2, float32) to an analysis process; returns its levels (blocks x 2)."""
    ctx = multiprocessing.get_context("spawn")  # the analysis process shares no memory but the stream's
    writer = picoring.SharedStreamWriter.create(capacity)
    mine, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=analyse, args=(multiprocessing.reduction.DupFd(writer.fd), theirs))
    proc.start()
    with writer:  # closes the stream when done: the reader ends once it has read everything
        for start in range(0, len(audio), BLOCK):
            writer.write_all(audio[start : start + BLOCK], timeout=30)  # any C-contiguous buffer
    levels = mine.recv()
    proc.join(30)
    return levels


def main():
    audio = signal(60)
    levels = meter(audio)
    want = np.sqrt(np.mean(np.square(audio.reshape(-1, BLOCK, CHANNELS), dtype=np.float64), axis=1))
    assert levels.shape == want.shape and np.allclose(levels, want), "levels differ from numpy's"
    print(f"{len(levels)} blocks; left {levels[:, 0].mean():.3f} RMS, right from {levels[0, 1]:.3f} to "
          f"{levels[-1, 1]:.3f}: matches numpy on the whole signal")


if __name__ == "__main__":
    main()
