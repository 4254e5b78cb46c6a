#!/usr/bin/env python3
"""The disk alone: what one durable write costs here, without wabridge.

Writes 64 KiB and fdatasyncs it, about as often as the gateway commits at
5,000 webhooks/s (800 times a second), for a while, in a file under DIR
(default: the system's temp dir, where the benchmark's data dirs are), and
prints the sync times' p50 / p99 / max and every stall over 3 ms. A stall
here is the disk's, and would hold every webhook answered meanwhile.

    python3 benches/disk_probe.py [DIR] [SECONDS]
"""
import os
import sys
import tempfile
import time

folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
block = os.urandom(64 * 1024)
span = 64 * 1024 * 1024  # rewrites the first 64 MiB: the file stops growing

fd, path = tempfile.mkstemp(prefix="wabridge-disk-probe-", dir=folder)
try:
    times, start = [], time.monotonic()
    offset = 0
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        os.pwrite(fd, block, offset % span)
        os.fdatasync(fd)
        took = time.monotonic() - t0
        times.append((t0 - start, took))
        offset += len(block)
        time.sleep(max(0.0, 1 / 800 - took))
finally:
    os.close(fd)
    os.unlink(path)

ms = sorted(t * 1e3 for _, t in times)
print(f"{len(ms)} writes of 64 KiB + fdatasync in {seconds:.0f} s under {folder}")
print(f"p50 {ms[len(ms) // 2]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms, max {ms[-1]:.1f} ms")
stalls = [(at, t * 1e3) for at, t in times if t > 0.003]
print(f"{len(stalls)} over 3 ms" + (":" if stalls else ""))
for at, took in stalls:
    print(f"  at {at:6.2f} s: {took:.1f} ms")
