#!/usr/bin/env python3
"""Cold start: time from exec of `wabridge serve` to the first 200 from /healthz.

    packaging/measure-cold-start.py [BINARY] [--runs 10]

Three cases, each the median (and min/max) of --runs starts:
  fresh, TLS     a new data dir: database created, certificate generated, admin token made
  again, TLS     the same data dir again (the usual restart)
  again, no TLS  the same, plain HTTP
/healthz is polled every millisecond on loopback.
"""
import argparse
import http.client
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Made once: building a context loads the CA store, which takes longer than a start.
TLS_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
TLS_CONTEXT.check_hostname = False
TLS_CONTEXT.verify_mode = ssl.CERT_NONE


def healthy(port, tls):
    try:
        if tls:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=TLS_CONTEXT)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start_once(binary, data_dir, tls):
    port = free_port()
    args = [binary, "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}"]
    if not tls:
        args.append("--no-tls")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WABRIDGE_")}
    env["WABRIDGE_ADMIN_TOKEN"] = "cold-start-measurement-token-0123456789abcdef"
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            if healthy(port, tls):
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise SystemExit(f"wabridge exited with {proc.returncode}")
            if time.perf_counter() - t0 > 20:
                raise SystemExit("no healthy /healthz within 20 s")
            time.sleep(0.001)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary", nargs="?", default="target/x86_64-unknown-linux-gnu/release/wabridge")
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    cases = {"fresh, TLS": [], "again, TLS": [], "again, no TLS": []}
    for _ in range(a.runs):
        d = tempfile.mkdtemp(prefix="wabridge-cold-")
        try:
            data = os.path.join(d, "data")
            cases["fresh, TLS"].append(start_once(a.binary, data, True))
            cases["again, TLS"].append(start_once(a.binary, data, True))
            cases["again, no TLS"].append(start_once(a.binary, data, False))
        finally:
            shutil.rmtree(d)
    for name, xs in cases.items():
        ms = [x * 1000 for x in xs]
        print(f"{name:14} median {statistics.median(ms):7.1f} ms   min {min(ms):7.1f}   max {max(ms):7.1f}   (n={len(ms)})")


if __name__ == "__main__":
    main()
