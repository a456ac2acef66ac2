#!/usr/bin/env python3
"""TLS on the Gearman port: roundhouse's own TLS against what a site would do instead today,
stunnel (Debian's stunnel4) in front of gearmand, and stunnel in front of roundhouse.

One run starts, on free loopback ports: roundhouse with --ssl (it serves plain text and TLS on
the same port, told apart by the first byte), gearmand 1.1.20, and one stunnel per backend
(TLS in, plain TCP to the server). Then, interleaved per repetition, it drives the background
and foreground loads of tools/compare.py with rh-loadgen (--tls for the TLS cases; handshakes
happen at connect time, before measuring) against:
  roundhouse plain, roundhouse TLS, gearmand plain, stunnel + gearmand, stunnel + roundhouse
and prints each median rate, its ratio to the same server's plain rate, and roundhouse TLS /
stunnel + gearmand.

Then a burst of --handshakes TLS handshakes (from --burst-threads threads) against roundhouse
while one established TLS connection sends ECHO_REQ back to back: ECHO p50/p99/max during the
burst against the same connection's idle figures (and the same against stunnel + gearmand).

Certificates are made for the run in a temporary directory (test/e2e/tls_certs.py: a
throw-away CA and server certificate). A benchmark program, never a test (doc/style.md rule
14). Every process it starts is stopped when it exits, also on failure and Ctrl-C.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from bench_servers import ServerProcess, accepts_connections, answers_version, free_port, \
    on_signal, stop_all

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "test", "e2e"))
import tls_certs  # noqa: E402

GEARMAND = "/usr/sbin/gearmand"
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "/usr/bin/stunnel4"

LOADS = [
    ("bg-4w", "background, 4 clients, 4 workers, window 200",
     ["--mode", "bg", "--clients", "4", "--workers", "4", "--window", "200"]),
    ("fg-4w", "foreground pipelined, 8 clients, 4 workers, window 50",
     ["--mode", "fg", "--clients", "8", "--workers", "4", "--window", "50"]),
]

# (key, label, backend, tls)
TARGETS = [
    ("rh-plain", "roundhouse plain", "roundhouse", False),
    ("rh-tls", "roundhouse TLS", "roundhouse", True),
    ("gd-plain", "gearmand plain", "gearmand", False),
    ("stunnel-gd", "stunnel + gearmand", "stunnel-gearmand", True),
    ("stunnel-rh", "stunnel + roundhouse", "stunnel-roundhouse", True),
]
PLAIN_OF = {"rh-tls": "rh-plain", "stunnel-gd": "gd-plain", "stunnel-rh": "rh-plain"}


def log(message):
    print(message, file=sys.stderr, flush=True)


def start_servers(args, work, certs):
    servers = {}
    rh_port = free_port()
    servers["roundhouse"] = ServerProcess(
        "roundhouse",
        [args.roundhouse, "-q", "none", "--port", str(rh_port), "--listen", "127.0.0.1",
         "--log-file", "none", "--ssl", "--ssl-certificate", certs.path("server.pem"),
         "--ssl-key", certs.path("server.key")],
        rh_port, os.path.join(work, "roundhouse.log"), ready=answers_version)
    gd_port = free_port()
    servers["gearmand"] = ServerProcess(
        "gearmand",
        [GEARMAND, "--port", str(gd_port), "--listen", "127.0.0.1", "--log-file", "none",
         "--threads", str(args.gearmand_threads)] + (["-u", "root"] if os.geteuid() == 0 else []),
        gd_port, os.path.join(work, "gearmand.log"), ready=answers_version)
    for backend in ("gearmand", "roundhouse"):
        port = free_port()
        conf = os.path.join(work, "stunnel-%s.conf" % backend)
        with open(conf, "w") as f:
            f.write("foreground = yes\npid =\n[gearman]\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
                    % (port, servers[backend].port, certs.path("server.pem"),
                       certs.path("server.key")))
        servers["stunnel-" + backend] = ServerProcess(
            "stunnel + " + backend, [STUNNEL, conf], port,
            os.path.join(work, "stunnel-%s.log" % backend), ready=accepts_connections)
    for server in servers.values():
        server.start()
    return servers


def run_loadgen(args, certs, load_argv, port, tls):
    argv = [args.loadgen, "--port", str(port), "--seconds", str(args.seconds), "--warmup",
            str(args.warmup), "--payload", str(args.payload)] + load_argv
    if tls:
        argv += ["--tls-ca", certs.path("ca.pem")]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=args.seconds + args.warmup + 120, check=False)
    lines = [l for l in proc.stdout.decode(errors="replace").splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": "rh-loadgen exit %d: %s" % (proc.returncode,
                                                       proc.stderr.decode(errors="replace")[-300:]),
                "argv": argv}
    result = json.loads(lines[-1])
    result["argv"] = argv
    return result


def echo_request(payload):
    return b"\0REQ" + struct.pack(">II", 16, len(payload)) + payload


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def echo_probe(sock, stop, rtts):
    """ECHO_REQ back to back on `sock` until `stop` is set; appends round trips in ms."""
    payload = b"p" * 32
    request = echo_request(payload)
    while not stop.is_set():
        t0 = time.perf_counter()
        sock.sendall(request)
        header = recv_exact(sock, 12)
        recv_exact(sock, struct.unpack(">I", header[8:])[0])
        rtts.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(0.001)


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def handshake_burst(args, certs, port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.path("ca.pem"))
    probe = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="localhost")
    probe.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Idle baseline.
    stop, idle = threading.Event(), []
    t = threading.Thread(target=echo_probe, args=(probe, stop, idle))
    t.start()
    time.sleep(args.idle_seconds)
    stop.set()
    t.join()
    # The burst.
    done, failures = [0], [0]
    lock = threading.Lock()
    per_thread = args.handshakes // args.burst_threads

    def shaker(count):
        for _ in range(count):
            try:
                with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                     server_hostname="localhost") as s:
                    s.sendall(echo_request(b"h"))
                    recv_exact(s, 13)
                with lock:
                    done[0] += 1
            except (OSError, ssl.SSLError):
                with lock:
                    failures[0] += 1

    stop, busy = threading.Event(), []
    prober = threading.Thread(target=echo_probe, args=(probe, stop, busy))
    prober.start()
    started = time.monotonic()
    shakers = [threading.Thread(target=shaker, args=(per_thread,))
               for _ in range(args.burst_threads)]
    for s in shakers:
        s.start()
    for s in shakers:
        s.join()
    elapsed = time.monotonic() - started
    stop.set()
    prober.join()
    probe.close()

    def summary(values):
        return {"count": len(values), "p50_ms": round(percentile(values, 50), 3),
                "p99_ms": round(percentile(values, 99), 3), "max_ms": round(max(values), 3)}

    return {"handshakes": done[0], "failures": failures[0], "seconds": round(elapsed, 2),
            "handshakes_per_s": round(done[0] / elapsed, 1), "echo_idle": summary(idle),
            "echo_during_burst": summary(busy)}


def fmt(value, digits=0):
    if value is None:
        return "-"
    return ("%." + str(digits) + "f") % value


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default=os.path.join(REPO_ROOT, "build"))
    p.add_argument("--roundhouse", help="server binary (default: <build-dir>/server/roundhouse)")
    p.add_argument("--loadgen", help="rh-loadgen (default: <build-dir>/tools/loadgen/rh-loadgen)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per load and target (3)")
    p.add_argument("--seconds", type=float, default=5, help="measured seconds per run (5)")
    p.add_argument("--warmup", type=float, default=1, help="warm-up seconds per run (1)")
    p.add_argument("--payload", type=int, default=64, help="job payload bytes (64)")
    p.add_argument("--gearmand-threads", type=int, default=4, help="gearmand --threads (4)")
    p.add_argument("--handshakes", type=int, default=1000, help="handshakes in the burst (1000)")
    p.add_argument("--burst-threads", type=int, default=8, help="threads making them (8)")
    p.add_argument("--idle-seconds", type=float, default=2, help="ECHO baseline seconds (2)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    args = p.parse_args()
    args.roundhouse = args.roundhouse or os.path.join(args.build_dir, "server", "roundhouse")
    args.loadgen = args.loadgen or os.path.join(args.build_dir, "tools", "loadgen", "rh-loadgen")
    for path in (args.roundhouse, args.loadgen, GEARMAND, STUNNEL):
        if not os.access(path, os.X_OK):
            sys.exit("bench_tls: %s not found (build first; Debian packages gearman-job-server, "
                     "stunnel4)" % path)

    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    work = tempfile.mkdtemp(prefix="rh-bench-tls-")
    atexit.register(shutil.rmtree, work, True)
    certs = tls_certs.CertSet(work)
    servers = start_servers(args, work, certs)

    results = {"loads": [], "burst": {}}
    for name, description, load_argv in LOADS:
        runs = {key: [] for key, *_ in TARGETS}
        for rep in range(args.repeat):
            for key, label, backend, tls in TARGETS:
                r = run_loadgen(args, certs, load_argv, servers[backend].port, tls)
                runs[key].append(r)
                log("%s rep %d %-22s %s" % (name, rep + 1, label,
                                            r.get("error") or "%.0f jobs/s" % r["jobs_per_s"]))
        medians = {}
        for key, *_ in TARGETS:
            rates = [r["jobs_per_s"] for r in runs[key] if "error" not in r]
            medians[key] = statistics.median(rates) if rates else None
        results["loads"].append({"name": name, "description": description,
                                 "loadgen_args": load_argv, "median_jobs_per_s": medians,
                                 "runs": runs})

    for key, backend in (("roundhouse", "roundhouse"), ("stunnel + gearmand", "stunnel-gearmand")):
        log("handshake burst against %s ..." % key)
        results["burst"][key] = handshake_burst(args, certs, servers[backend].port)

    print("TLS benchmark: %d x %.0f s per load and target (median), payload %d B, %s"
          % (args.repeat, args.seconds, args.payload, time.strftime("%Y-%m-%d")))
    for load in results["loads"]:
        m = load["median_jobs_per_s"]
        print("\n%s (%s)" % (load["name"], load["description"]))
        for key, label, *_ in TARGETS:
            line = "  %-22s %10s jobs/s" % (label, fmt(m[key]))
            if key in PLAIN_OF and m[key] and m[PLAIN_OF[key]]:
                line += "   %.2f x its plain rate" % (m[key] / m[PLAIN_OF[key]])
            print(line)
        if m["rh-tls"] and m["stunnel-gd"]:
            print("  roundhouse TLS / stunnel + gearmand: %.2f" % (m["rh-tls"] / m["stunnel-gd"]))
        if m["rh-tls"] and m["stunnel-rh"]:
            print("  roundhouse TLS / stunnel + roundhouse: %.2f" % (m["rh-tls"] / m["stunnel-rh"]))
    for key, b in results["burst"].items():
        print("\n%d TLS handshakes against %s (%d threads): %d ok, %d failed, %.1f s (%.0f/s)"
              % (args.handshakes, key, args.burst_threads, b["handshakes"], b["failures"],
                 b["seconds"], b["handshakes_per_s"]))
        for phase in ("echo_idle", "echo_during_burst"):
            e = b[phase]
            print("  ECHO on an established TLS connection, %-7s p50 %.2f ms  p99 %.2f ms  "
                  "max %.2f ms  (%d samples)"
                  % ("idle:" if phase == "echo_idle" else "burst:", e["p50_ms"], e["p99_ms"],
                     e["max_ms"], e["count"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
