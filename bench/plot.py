#!/usr/bin/env python3
"""Draws speedup (classic ns / picoring ns) against size, one line per table, from the
results.csv that picoring_tables writes. Usage: plot.py RESULTS_CSV OUTPUT_PNG"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    rows = defaultdict(dict)  # (table, size) -> variant -> ns
    with open(sys.argv[1], newline="") as f:
        for r in csv.DictReader(f):
            rows[(r["table"], int(r["size_bytes"]))][r["variant"]] = float(r["median_ns"])
    lines = {
        "read (checksum a wrapped window)": ("read", "picoring"),
        "full cycle (write + checksum + consume)": ("cycle", "picoring"),
        "write (push_slice across the end)": ("write", "picoring"),
        "byte stream write + read": ("collections", "stream"),
        "queue write + read": ("collections", "queue"),
    }
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, (table, variant) in lines.items():
        pts = sorted((size, v["classic"] / v[variant]) for (t, size), v in rows.items() if t == table)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.axhline(1.0, color="grey", linewidth=1, linestyle="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per operation")
    ax.set_ylabel("speedup over the classic ring (x)")
    ax.set_title("picoring vs a two-memcpy ring (same capacity, windows across the end)")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
