"""A streaming FIR filter over a mirrored ring, as an audio callback would run it.

Each block of input is filtered together with the last len(taps) - 1 samples before it. With
a plain array ring that history plus the new block wraps past the end now and then, and the
window must be put together with numpy.concatenate (a copy) first; here ring.readable() is
always one array over the ring's memory, so numpy.convolve runs on it directly.

    python3 fir_stream.py   # filters 10 s of noise at 48 kHz and checks it against numpy.convolve
"""

import time

import numpy as np

import picoring


def fir_stream(signal, taps, block, capacity=None):
    """Filters signal block by block; returns what numpy.convolve(signal, taps)[:len(signal)] does."""
    history = len(taps) - 1
    ring = picoring.Ring(capacity or 4 * (block + history), dtype=signal.dtype)
    ring.extend(np.zeros(history, dtype=signal.dtype))  # silence before the first sample
    out = np.empty_like(signal)
    for start in range(0, len(signal), block):
        chunk = signal[start:start + block]
        ring.extend(chunk)
        window = ring.readable()  # history + chunk: one contiguous array, no copy
        out[start:start + len(chunk)] = np.convolve(window, taps, mode="valid")
        del window  # the ring refuses to consume what a live window shows
        ring.consume(len(chunk))
    return out


def main():
    rate, seconds, block = 48_000, 10, 256
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(rate * seconds).astype(np.float32)
    taps = np.hanning(101).astype(np.float32)
    taps /= taps.sum()
    t0 = time.perf_counter()
    filtered = fir_stream(signal, taps, block)
    elapsed = time.perf_counter() - t0
    reference = np.convolve(signal, taps)[: len(signal)]
    error = float(np.max(np.abs(filtered - reference)))
    print(f"{seconds} s of audio in blocks of {block}: {elapsed * 1e3:.1f} ms "
          f"({seconds / elapsed:.0f}x real time), max difference from numpy.convolve {error:.2e}")
    if error > 1e-4:
        raise SystemExit("the streamed filter differs from numpy.convolve")


if __name__ == "__main__":
    main()
