#!/usr/bin/env python3
"""Large-reply benchmark (issue 12, requirement 3): how long another client waits while the
server produces a large reply.

Starts roundhouse (memory-only queue, status port on) on free loopback ports, submits --count
background jobs each to its own function (so there are --count functions and --count jobs),
then for each reply below, --repeat times: one client requests it and reads it as fast as it
can, while a second client sends ECHO_REQ one at a time; prints the reply's size and the
largest and p99 ECHO round trip seen while the reply was being produced and read.

  status      admin `status` on the Gearman port
  show jobs   admin `show jobs`
  metrics     GET /metrics
  api/status  GET /api/status

Loopback only; Python 3 standard library only. A benchmark prints numbers, it asserts nothing.

    python3 tools/bench_replies.py --roundhouse build/server/roundhouse --count 200000
"""

import argparse
import http.client
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_servers import free_port  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ECHO = b"\0REQ" + struct.pack(">II", 16, 5) + b"probe"
SUBMIT_JOB_BG = 18


def packet(ptype, *args):
    body = b"\0".join(args)
    return b"\0REQ" + struct.pack(">II", ptype, len(body)) + body


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise RuntimeError("connection closed")
        out += chunk
    return bytes(out)


def wait_ready(port, deadline=15.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"version\n")
                if s.recv(100).startswith(b"OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def populate(port, count):
    with socket.create_connection(("127.0.0.1", port)) as s:
        step = 5000
        for start in range(0, count, step):
            n = min(step, count - start)
            s.sendall(b"".join(packet(SUBMIT_JOB_BG, b"fn-%d" % i, b"", b"x")
                               for i in range(start, start + n)))
            for _ in range(n):
                _, _, size = struct.unpack(">4sII", recv_exact(s, 12))
                recv_exact(s, size)


class Prober:
    """ECHOs back to back on its own connection; records (sent_at, rtt) of each."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.sock.sendall(ECHO)
            recv_exact(self.sock, 17)
            self.samples.append((t0, time.perf_counter() - t0))

    def window(self, start, end):
        return [rtt for t0, rtt in self.samples if start <= t0 <= end]


def admin_reply(port, command):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(command + b"\n")
        got = bytearray()
        while not got.endswith(b"\n.\n") and got != b".\n":
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        return len(got)


def http_reply(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return len(resp.read())
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roundhouse", default=os.path.join(REPO_ROOT, "build/server/roundhouse"))
    parser.add_argument("--count", type=int, default=200000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import subprocess
    port, http_port = free_port(), free_port()
    server = subprocess.Popen([args.roundhouse, "-p", str(port), "-q", "none", "--status-port",
                               str(http_port), "--status-listen", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        populate(port, args.count)
        prober = Prober(port)
        prober.thread.start()
        time.sleep(0.2)
        replies = [
            ("status", lambda: admin_reply(port, b"status")),
            ("show jobs", lambda: admin_reply(port, b"show jobs")),
            ("metrics", lambda: http_reply(http_port, "/metrics")),
            ("api/status", lambda: http_reply(http_port, "/api/status")),
        ]
        print("%s, %d functions and %d jobs" % (args.roundhouse, args.count, args.count))
        print("%-12s %12s %14s %14s" % ("reply", "bytes", "ECHO max ms", "ECHO p99 ms"))
        for label, fetch in replies:
            worst, p99s, size = 0.0, [], 0
            for _ in range(args.repeat):
                start = time.perf_counter()
                size = fetch()
                end = time.perf_counter()
                rtts = sorted(prober.window(start, end))
                if rtts:
                    worst = max(worst, rtts[-1])
                    p99s.append(rtts[min(len(rtts) - 1, int(0.99 * len(rtts)))])
                time.sleep(0.2)
            print("%-12s %12d %14.1f %14.1f" % (label, size, worst * 1000,
                                                 max(p99s or [0]) * 1000))
        prober.stop.set()
        prober.thread.join(timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
