#!/usr/bin/env python3
"""Abuse benchmark (issue 12): roundhouse and gearmand side by side under slow and lying peers.

For each server (started here on a free loopback port, memory-only queue, stopped on exit):

  trickle   N connections each send a 12-byte SUBMIT_JOB_BG header declaring a 64 MiB body and
            then one byte of it per round, --rounds rounds;
  declared  N connections each send a header declaring 64 MiB followed by one byte, then nothing.

During each load a second client sends ECHO_REQ one at a time; the table shows the server's RSS
before and at the end of the load (VmRSS, /proc/PID/status), its peak (VmHWM), and the ECHO round
trip p50 / p99 / max while the load ran. Loopback only; Python 3 standard library only. A benchmark
prints numbers, it asserts nothing (doc/style.md rule 14).

    python3 tools/bench_abuse.py --roundhouse build/server/roundhouse
    python3 tools/bench_abuse.py --connections 1000 --rounds 20 --json abuse.json
"""

import argparse
import json
import os
import resource
import signal
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_servers import ServerProcess, answers_version, free_port, on_signal, stop_all  # noqa

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
ECHO = b"\0REQ" + struct.pack(">II", 16, 5) + b"probe"


def log(message):
    print(message, file=sys.stderr, flush=True)


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def echo_once(sock):
    """One ECHO round trip in seconds; None if the server did not answer within 10 s."""
    started = time.perf_counter()
    sock.sendall(ECHO)
    want = 12 + 5
    got = b""
    sock.settimeout(10.0)
    try:
        while len(got) < want:
            chunk = sock.recv(want - len(got))
            if not chunk:
                return None
            got += chunk
    except socket.timeout:
        return None
    return time.perf_counter() - started


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def run_load(server, kind, count, rounds, gap):
    """Opens `count` abusive connections and probes ECHO meanwhile; returns a result dict."""
    probe = socket.create_connection(("127.0.0.1", server.port))
    for _ in range(5):
        echo_once(probe)
    before = server.status_kib()["VmRSS"]
    header = b"\0REQ" + struct.pack(">II", 18, 64 * MIB)
    socks, refused, rtts, lost = [], 0, [], 0
    for i in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(header + (b"f" if kind == "declared" else b""))
            socks.append(s)
        except OSError:
            refused += 1
        if i % 50 == 49:
            rtt = echo_once(probe)
            if rtt is not None:
                rtts.append(rtt)
    rounds_done = 0
    end_rounds = rounds if kind == "trickle" else 0
    for _ in range(end_rounds):
        for s in socks:
            try:
                s.sendall(b"x")
            except OSError:
                lost += 1
        rounds_done += 1
        for _ in range(10):
            rtt = echo_once(probe)
            if rtt is None:
                lost += 1
            else:
                rtts.append(rtt)
        time.sleep(gap)
    if kind == "declared":
        deadline = time.monotonic() + rounds * gap
        while time.monotonic() < deadline:
            rtt = echo_once(probe)
            if rtt is not None:
                rtts.append(rtt)
            time.sleep(0.02)
    status = server.status_kib()
    for s in socks:
        s.close()
    probe.close()
    return {
        "server": server.name, "load": kind, "connections": len(socks), "refused": refused,
        "rounds": rounds_done, "rss_before_kib": before, "rss_kib": status["VmRSS"],
        "hwm_kib": status["VmHWM"], "echo_samples": len(rtts),
        "echo_p50_ms": percentile(rtts, 50) * 1000, "echo_p99_ms": percentile(rtts, 99) * 1000,
        "echo_max_ms": (max(rtts) if rtts else float("nan")) * 1000, "send_errors": lost,
    }


def start(name, argv_for_port, tmp):
    port = free_port()
    server = ServerProcess(name, argv_for_port(port), port, os.path.join(tmp, name + ".log"),
                           cwd=tmp, ready=answers_version)
    server.start()
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roundhouse", default=os.path.join(REPO_ROOT, "build/server/roundhouse"))
    parser.add_argument("--gearmand", default="/usr/sbin/gearmand")
    parser.add_argument("--servers", default="roundhouse,gearmand")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10,
                        help="trickle rounds (one byte per connection each); the declared load "
                             "is probed for as long")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between rounds")
    parser.add_argument("--json", help="write every result to this file")
    opts = parser.parse_args()
    opts.roundhouse = os.path.abspath(opts.roundhouse)  # the servers run in a temporary directory
    signal.signal(signal.SIGTERM, on_signal)
    raise_nofile(opts.connections + 256)

    argv = {
        "roundhouse": lambda port: [opts.roundhouse, "-q", "none", "--port", str(port),
                                    "--listen", "127.0.0.1", "--log-file", "none"],
        "gearmand": lambda port: [opts.gearmand, "--port", str(port), "--listen", "127.0.0.1",
                                  "--log-file", "/dev/null", "-t", "4"]
                                 + (["-u", "root"] if os.geteuid() == 0 else []),
    }
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
            for load in ("trickle", "declared"):
                for name in opts.servers.split(","):
                    server = start(name, argv[name], tmp)  # a fresh process per load
                    log("%s: %s, %d connections" % (name, load, opts.connections))
                    try:
                        results.append(run_load(server, load, opts.connections, opts.rounds,
                                                opts.gap))
                    finally:
                        server.stop()
    finally:
        stop_all()

    print("%-10s %-9s %6s %12s %10s %10s %9s %9s %9s" % (
        "server", "load", "conns", "RSS before", "RSS", "peak RSS", "ECHO p50", "ECHO p99",
        "ECHO max"))
    for r in results:
        print("%-10s %-9s %6d %9.1f MiB %6.1f MiB %6.1f MiB %6.2f ms %6.2f ms %6.2f ms" % (
            r["server"], r["load"], r["connections"], r["rss_before_kib"] / 1024,
            r["rss_kib"] / 1024, r["hwm_kib"] / 1024, r["echo_p50_ms"], r["echo_p99_ms"],
            r["echo_max_ms"]))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
