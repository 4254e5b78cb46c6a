#!/usr/bin/env python3
"""The disk alone: what one durable write costs here, without wabridge.

Writes 64 KiB and fdatasyncs it, about as often as the gateway commits at
5,000 webhooks/s (800 times a second), for a while, in a file under DIR
(default: the system's temp dir, where the benchmark's data dirs are), and
prints the sync times' p50 / p99 / max and every stall over 3 ms. A stall
here is the disk's, and would hold every webhook answered meanwhile.

It does so twice: once as one 64 KiB write, once as 16 pages of 4 KiB at
scattered places in an 8 MiB stretch of the file, as a redb commit writes
its pages (one `pwrite` each, wherever the allocator put them). The same
bytes cost more scattered here; the README says how little of that shows
in the gateway's own latency.

    python3 benches/disk_probe.py [DIR] [SECONDS]
"""
import os
import random
import sys
import tempfile
import time

folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
PAGE = 4096
PAGES = 16
WINDOW = 8 * 1024 * 1024 // PAGE  # pages a commit's writes are spread over
SPAN = 64 * 1024 * 1024  # rewrites the first 64 MiB: the file stops growing


def one_extent(fd, block, n):
    os.pwrite(fd, block, (n * len(block)) % SPAN)


def scattered(fd, block, _n):
    one_page = memoryview(block)[:PAGE]  # a view: no copy inside the timed write
    base = random.randrange(0, SPAN // PAGE - WINDOW)
    for page in random.sample(range(WINDOW), PAGES):
        os.pwrite(fd, one_page, (base + page) * PAGE)


def probe(fd, write):
    """(time from start, seconds) of each write + fdatasync, 800 a second."""
    block = os.urandom(PAGES * PAGE)
    times, start = [], time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        write(fd, block, n)
        os.fdatasync(fd)
        took = time.monotonic() - t0
        times.append((t0 - start, took))
        n += 1
        time.sleep(max(0.0, 1 / 800 - took))
    return times


def report(what, times):
    ms = sorted(t * 1e3 for _, t in times)
    print(f"{what}: {len(ms)} writes + fdatasync in {seconds:.0f} s under {folder}")
    print(f"  p50 {ms[len(ms) // 2]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms, max {ms[-1]:.1f} ms")
    stalls = [(at, t * 1e3) for at, t in times if t > 0.003]
    print(f"  {len(stalls)} over 3 ms" + (":" if stalls else ""))
    for at, took in stalls:
        print(f"    at {at:6.2f} s: {took:.1f} ms")


fd, path = tempfile.mkstemp(prefix="wabridge-disk-probe-", dir=folder)
try:
    # Written once first, so neither pass pays for growing the file.
    os.pwrite(fd, bytes(SPAN), 0)
    os.fsync(fd)
    report("64 KiB in one write", probe(fd, one_extent))
    report(f"{PAGES} pages of 4 KiB, scattered", probe(fd, scattered))
finally:
    os.close(fd)
    os.unlink(path)
