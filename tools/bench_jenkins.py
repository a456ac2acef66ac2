#!/usr/bin/env python3
"""Jenkins-adapter benchmark: one roundhouse, many simulated masters, short builds.

    python3 tools/bench_jenkins.py --roundhouse build/server/roundhouse
    python3 tools/bench_jenkins.py --roundhouse PATH --masters 20 --executors 50 --sim-procs 4 \
        --seconds 30 --duration-ms 1000:3000

Builds nothing itself. Starts --masters simulated Jenkins masters (tools/jenkins_sim, real clock)
with --executors executors each (spread over --nodes nodes per master), split over --sim-procs
Python processes so the simulators keep up; then roundhouse with one `--jenkins` flag per master;
then a client that keeps --window foreground `build:bench` jobs open (default 1.5x the executor
count, so roundhouse's queue stays non-empty), for --warmup + --seconds. A second, short phase
submits one job at a time at a low rate (--latency-jobs), when executors are free.

Reports (JSON line on stdout, human summary on stderr):
  builds_per_min         builds that ended in the measured window, per minute (simulator records)
  utilisation            busy executor-time / total executor-time over the instants of the
                         measured window at which roundhouse's queue was non-empty (a job was
                         submitted but its trigger POST had not reached Jenkins yet); executor
                         occupancy from the simulators' build records
  submit_to_post_ms      p50/p99/max from the client's submit time to the simulator's request-log
                         time of the trigger POST, for the low-rate phase (an executor was free)
  saturated_submit_to_post_ms   the same for every job of the load phase (includes queueing)
  sim                    per-simulator-process keep-up: request rate, service time p50/p99/max
                         (from the request log), and a probe round trip p50/p99 measured from
                         this process every 0.5 s; sim_keeps_up is false when the probe p99
                         exceeds --sim-max-probe-ms (then raise --sim-procs)
Exit status 0 when the run completed (whatever the numbers), 1 on errors (start-up, lost jobs).
Python 3 standard library only.
"""

import argparse
import bisect
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "e2e"))

import bench_servers  # noqa: E402

USER = "rh"
TOKEN = "bench-token"


# ---------------------------------------------------------------------- simulator child process

def sim_child(server_kind):
    """--sim-child: reads a JSON list of world specs on stdin, starts one real-time Simulator per
    spec, prints their ports as one JSON line, then runs until stdin closes. `server_kind`
    "select" serves them all from one thread (tools/jenkins_sim/select_server.py), "threaded"
    with the tests' thread-per-connection server."""
    from jenkins_sim.server import Simulator
    specs = json.loads(sys.stdin.readline())
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    if server_kind == "select":
        from jenkins_sim.select_server import SelectServer
        sims = [Simulator(spec, realtime=True, tick_s=0) for spec in specs]
        server = SelectServer(sims, tick_s=0.05).open()
        print(json.dumps([s.port for s in sims]), flush=True)
        server.run(sys.stdin.fileno())  # EOF = parent gone or done
        print(json.dumps(server.load()), flush=True)
        return 0
    sims = [Simulator(spec, realtime=True, tick_s=0.05).start(0) for spec in specs]
    print(json.dumps([s.port for s in sims]), flush=True)
    sys.stdin.read()  # EOF = parent gone or done
    for s in sims:
        s.stop()
    return 0


class SimProcess:
    def __init__(self, specs, server_kind):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sim-child",
                                      server_kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     start_new_session=True, text=True)
        self.proc.stdin.write(json.dumps(specs) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("simulator process did not start")
        self.ports = json.loads(line)
        self.load = None  # the select loop's load() once stopped

    def stop(self):
        if self.proc.returncode is not None:
            return
        try:
            self.proc.stdin.close()
            last = self.proc.stdout.readline()
            if last.strip():
                self.load = json.loads(last)
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def fetch(port, path, timeout=60):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return json.loads(r.read())


def world(index, nodes, executors, duration):
    per_node = [executors // nodes + (1 if i < executors % nodes else 0) for i in range(nodes)]
    return {
        "version": "2.440.3",
        "users": {USER: {"token": TOKEN, "permissions": "all"}},
        "builtin": {"numExecutors": 0, "labels": [], "mode": "EXCLUSIVE"},
        "nodes": [{"name": "m%02d-n%d" % (index, i), "labels": ["linux"], "numExecutors": n}
                  for i, n in enumerate(per_node) if n > 0],
        "jobs": [{"name": "bench", "label": "linux", "concurrentBuild": True,
                  "parameters": [{"type": "string", "name": "GEARMAN_UNIQUE"},
                                 {"type": "node", "name": "GEARMAN_NODE"},
                                 {"type": "string", "name": "ZUUL_UUID"}],
                  "build": {"random": {"seed": index, "results": {"SUCCESS": 1},
                                       "duration": list(duration)}}}],
    }


# ---------------------------------------------------------------------------------- the client

REQ = b"\0REQ"
HDR_SIZE = 12


def packet(ptype, *args):
    payload = b"\0".join(args)
    return REQ + ptype.to_bytes(4, "big") + len(payload).to_bytes(4, "big") + payload


SUBMIT_JOB, JOB_CREATED, WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION = 7, 8, 13, 14, 25


class Client:
    """Foreground build:bench submissions over a few connections, one select() loop."""

    def __init__(self, port, conns=4):
        self.socks = []
        for _ in range(conns):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append([s, bytearray(), []])  # sock, buffer, pending uniques
        self.submit_t = {}   # unique -> time.time() just before the send
        self.ended = {}      # unique -> (packet type, time)
        self.handles = {}
        self.open = 0
        self.errors = []
        self.rr = 0

    def submit(self, func=b"build:bench"):
        unique = uuid.uuid4().hex
        s = self.socks[self.rr % len(self.socks)]
        self.rr += 1
        data = json.dumps({"ZUUL_UUID": unique}).encode()
        self.submit_t[unique] = time.time()
        s[0].sendall(packet(SUBMIT_JOB, func, unique.encode(), data))
        s[2].append(unique)
        self.open += 1
        return unique

    def poll(self, timeout):
        ready, _, _ = select.select([s[0] for s in self.socks], [], [], timeout)
        now = time.time()
        for entry in self.socks:
            if entry[0] not in ready:
                continue
            chunk = entry[0].recv(1 << 20)
            if not chunk:
                raise RuntimeError("roundhouse closed a client connection")
            buf = entry[1]
            buf += chunk
            while len(buf) >= HDR_SIZE:
                ptype = int.from_bytes(buf[4:8], "big")
                size = int.from_bytes(buf[8:12], "big")
                if len(buf) < HDR_SIZE + size:
                    break
                payload = bytes(buf[HDR_SIZE:HDR_SIZE + size])
                del buf[:HDR_SIZE + size]
                if ptype == JOB_CREATED:
                    self.handles[payload] = entry[2].pop(0)
                elif ptype in (WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION):
                    unique = self.handles.get(payload.split(b"\0", 1)[0])
                    if unique is not None and unique not in self.ended:
                        self.ended[unique] = (ptype, now)
                        self.open -= 1
                        if ptype != WORK_COMPLETE:
                            self.errors.append("job %s ended with packet type %d" % (unique, ptype))

    def close(self):
        for s in self.socks:
            s[0].close()


# ------------------------------------------------------------------------------------ analysis

def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def utilisation(starts, ends, total_exec, submits, posts, t0, t1, step=0.01):
    """Busy fraction of executors over the instants of [t0, t1) where the queue was non-empty.
    starts/ends: sorted build start/end times; submits/posts: sorted submit / first-POST times."""
    busy_sum = 0.0
    samples = 0
    t = t0
    while t < t1:
        queued = bisect.bisect_right(submits, t) - bisect.bisect_right(posts, t)
        if queued > 0:
            busy = bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t)
            busy_sum += busy / float(total_exec)
            samples += 1
        t += step
    return (busy_sum / samples if samples else None), samples * step


def main():
    if "--sim-child" in sys.argv:
        return sim_child(sys.argv[sys.argv.index("--sim-child") + 1])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--roundhouse", required=True, help="path to the roundhouse binary")
    ap.add_argument("--masters", type=int, default=20)
    ap.add_argument("--executors", type=int, default=50, help="executors per master")
    ap.add_argument("--nodes", type=int, default=5, help="nodes per master")
    ap.add_argument("--sim-procs", type=int, default=4, help="simulator processes")
    ap.add_argument("--sim-server", choices=("select", "threaded"), default="select",
                    help="simulator transport: one thread per process (tools/jenkins_sim/"
                    "select_server.py), or the tests' thread per connection")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--duration-ms", default="1000:3000", help="build duration range MIN:MAX")
    ap.add_argument("--window", type=int, default=0,
                    help="open jobs kept by the client (default 1.5 x all executors)")
    ap.add_argument("--latency-jobs", type=int, default=100)
    ap.add_argument("--latency-gap-ms", type=float, default=50.0)
    ap.add_argument("--poll-computers", type=float, default=0.25,
                    help="poll.computers_s: a free executor is seen half of it late on average, "
                    "so builds of seconds want a short one (doc/jenkins.md §4.1)")
    ap.add_argument("--poll-queue-item", type=float, default=0.5, help="poll.queue_item_s")
    ap.add_argument("--poll-build", type=float, default=1.0, help="poll.build_s")
    ap.add_argument("--extra", default="", help="more K=V,... settings for every master")
    ap.add_argument("--sim-max-probe-ms", type=float, default=50.0,
                    help="threaded simulators keep up when the probe p99 stays under this")
    ap.add_argument("--sim-max-busy-ms", type=float, default=20.0,
                    help="select simulators keep up when p99 of their busy stretches stays under this")
    ap.add_argument("--sim-max-cpu", type=float, default=0.8,
                    help="... and they used at most this fraction of a core")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--dump", metavar="FILE",
                    help="write every simulator's build records and request log here (JSON)")
    opts = ap.parse_args()
    lo, _, hi = opts.duration_ms.partition(":")
    duration = (int(lo), int(hi or lo))
    total_exec = opts.masters * opts.executors
    window = opts.window or int(total_exec * 1.5)
    signal.signal(signal.SIGTERM, bench_servers.on_signal)

    sims = []
    tmp = tempfile.mkdtemp(prefix="bench-jenkins-")
    server = None
    result = {"masters": opts.masters, "executors_per_master": opts.executors,
              "total_executors": total_exec, "nodes_per_master": opts.nodes,
              "sim_procs": opts.sim_procs, "duration_ms": list(duration), "window": window,
              "poll": {"computers_s": opts.poll_computers, "queue_item_s": opts.poll_queue_item,
                       "build_s": opts.poll_build}}
    try:
        # -- simulators
        specs = [world(i, opts.nodes, opts.executors, duration) for i in range(opts.masters)]
        groups = [specs[i::opts.sim_procs] for i in range(opts.sim_procs)]
        ports = {}  # master index -> (SimProcess index, port)
        for g, group in enumerate(groups):
            if not group:
                continue
            sp = SimProcess(group, opts.sim_server)
            sims.append(sp)
            for k, port in enumerate(sp.ports):
                ports[g + k * opts.sim_procs] = (len(sims) - 1, port)
        # -- roundhouse
        port = bench_servers.free_port()
        argv = [opts.roundhouse, "--port", str(port), "--listen", "127.0.0.1", "-q", "none",
                "--log-file", os.path.join(tmp, "roundhouse.log"), "--verbose", "NOTICE"]
        for i in range(opts.masters):
            kv = ["base_url=http://127.0.0.1:%d/" % ports[i][1], "user=" + USER,
                  "api_token=" + TOKEN, "poll.computers_s=%g" % opts.poll_computers,
                  "poll.queue_item_s=%g" % opts.poll_queue_item,
                  "poll.build_s=%g" % opts.poll_build, "poll.jobs_s=30",
                  "max_inflight_starts=%d" % max(20, opts.executors)]
            if opts.extra:
                kv.append(opts.extra)
            argv += ["--jenkins", "j%02d:%s" % (i, ",".join(kv))]
        server = bench_servers.ServerProcess("roundhouse", argv, port,
                                             os.path.join(tmp, "roundhouse.out"),
                                             ready=bench_servers.answers_version)
        server.start()
        wait_registered(port, opts.masters, timeout=60)

        # -- probes of the simulators' responsiveness
        probes = {i: [] for i in range(len(sims))}
        stop_probe = threading.Event()

        def probe():
            while not stop_probe.wait(0.5):
                for i, sp in enumerate(sims):
                    t = time.monotonic()
                    try:
                        fetch(sp.ports[0], "/_fake/faults", timeout=10)
                        probes[i].append((time.monotonic() - t) * 1000.0)
                    except OSError:
                        probes[i].append(10000.0)
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()

        # -- load phase
        client = Client(port)
        t_start = time.time()
        t0 = t_start + opts.warmup
        t1 = t0 + opts.seconds
        load_uniques = []
        while time.time() < t1:
            while client.open < window:
                load_uniques.append(client.submit())
            client.poll(0.02)
        # drain what is open (bounded)
        drain_end = time.time() + 60
        while client.open > 0 and time.time() < drain_end:
            client.poll(0.05)
        # -- latency phase: one job at a time, executors idle
        lat_uniques = []
        for _ in range(opts.latency_jobs):
            lat_uniques.append(client.submit())
            end = time.time() + opts.latency_gap_ms / 1000.0
            while time.time() < end:
                client.poll(max(0.0, end - time.time()))
        drain_end = time.time() + 60
        while client.open > 0 and time.time() < drain_end:
            client.poll(0.05)
        stop_probe.set()
        lost = client.open

        # -- collect
        builds, posts, service = [], {}, {}
        req_counts = {}
        dump = {"t0": t0, "t1": t1, "masters": []}
        for m in range(opts.masters):
            sp_index, sport = ports[m]
            master_builds = fetch(sport, "/_fake/builds")
            builds.extend(master_builds)
            log = fetch(sport, "/_fake/requests")
            if opts.dump:
                dump["masters"].append({"builds": master_builds, "requests": [
                    {k: e.get(k) for k in ("method", "path", "query", "body", "wall", "time")}
                    for e in log]})
            service.setdefault(sp_index, []).extend(e.get("service_ms", 0.0) for e in log)
            req_counts[sp_index] = req_counts.get(sp_index, 0) + len(log)
            for e in log:
                if e["method"] == "POST" and e["path"].endswith(("/buildWithParameters", "/build")):
                    from urllib.parse import parse_qs
                    u = parse_qs(e["body"]).get("GEARMAN_UNIQUE", [None])[-1]
                    if u is not None and u not in posts:
                        posts[u] = e.get("wall", e["time"] / 1000.0)
        elapsed = time.time() - t_start
        ends_in = [b for b in builds if b["end"] is not None and t0 <= b["end"] / 1000.0 < t1]
        starts = sorted(b["start"] / 1000.0 for b in builds)
        ends = sorted(b["end"] / 1000.0 for b in builds if b["end"] is not None)
        submits = sorted(client.submit_t[u] for u in load_uniques)
        post_times = sorted(posts[u] for u in load_uniques if u in posts)
        util, util_seconds = utilisation(starts, ends, total_exec, submits, post_times, t0, t1)
        lat = [(posts[u] - client.submit_t[u]) * 1000.0 for u in lat_uniques if u in posts]
        sat = [(posts[u] - client.submit_t[u]) * 1000.0 for u in load_uniques if u in posts]
        uniq_counts = {}
        for b in builds:
            u = b["params"].get("GEARMAN_UNIQUE")
            uniq_counts[u] = uniq_counts.get(u, 0) + 1
        dup = sum(1 for c in uniq_counts.values() if c > 1)
        for sp in sims:
            sp.stop()  # a select loop reports its load as it ends
        sim_report = []
        for i in range(len(sims)):
            pr = probes[i]
            sv = service.get(i, [])
            entry = {
                "process": i, "masters": len(sims[i].ports),
                "requests_per_s": round(req_counts.get(i, 0) / elapsed, 1),
                "service_ms_p50": rnd(percentile(sv, 0.5)), "service_ms_p99": rnd(percentile(sv, 0.99)),
                "service_ms_max": rnd(max(sv) if sv else None),
                "probe_ms_p50": rnd(percentile(pr, 0.5)), "probe_ms_p99": rnd(percentile(pr, 0.99))}
            if sims[i].load is not None:
                entry["loop"] = sims[i].load
            sim_report.append(entry)
        if opts.sim_server == "select":
            # The loop's own account: how long a request could wait for it, and its CPU share.
            keeps_up = all(s.get("loop") and s["loop"]["busy_ms_p99"] <= opts.sim_max_busy_ms
                           and s["loop"]["cpu_fraction"] <= opts.sim_max_cpu
                           for s in sim_report)
        else:
            keeps_up = all((s["probe_ms_p99"] or 0) <= opts.sim_max_probe_ms for s in sim_report)
        if opts.dump:
            with open(opts.dump, "w") as f:
                json.dump(dump, f)
        result.update({
            "seconds": opts.seconds, "builds_in_window": len(ends_in),
            "builds_per_min": round(len(ends_in) * 60.0 / opts.seconds, 1),
            "utilisation": rnd(util, 4), "utilisation_seconds": round(util_seconds, 2),
            "submit_to_post_ms": {"samples": len(lat), "p50": rnd(percentile(lat, 0.5)),
                                  "p99": rnd(percentile(lat, 0.99)), "max": rnd(max(lat) if lat else None)},
            "saturated_submit_to_post_ms": {"samples": len(sat), "p50": rnd(percentile(sat, 0.5)),
                                            "p99": rnd(percentile(sat, 0.99))},
            "jobs_submitted": len(client.submit_t), "jobs_unfinished": lost,
            "jobs_failed": len(client.errors), "duplicate_builds": dup,
            "sim": sim_report, "sim_keeps_up": keeps_up,
            "roundhouse_cpu_s": round(server.cpu_seconds(), 2),
        })
        client.close()
    except Exception as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
        if server is not None:
            result["roundhouse_log_tail"] = server.log_tail()
    finally:
        if server is not None:
            server.stop()
        for sp in sims:
            sp.stop()
        if not opts.keep_logs:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, sort_keys=True), flush=True)
    human(result)
    ok = "error" not in result and not result.get("jobs_unfinished") and \
        not result.get("duplicate_builds")
    return 0 if ok else 1


def rnd(v, digits=1):
    return None if v is None else round(v, digits)


def wait_registered(port, masters, timeout):
    """Until `jenkins list` shows every master HEALTHY and `status` has build:bench workers."""
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"jenkins list\n")
                last = read_listing(s)
            healthy = [l for l in last.splitlines() if "\tHEALTHY\t" in l]
            if len(healthy) >= masters:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("masters not HEALTHY within %.0fs; last `jenkins list`:\n%s" % (timeout, last))


def read_listing(sock):
    data = b""
    while not (data.endswith(b"\n.\n") or data == b".\n" or data.startswith(b"ERR")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"ERR") and data.endswith(b"\n"):
            break
    return data.decode("utf-8", "replace")


def human(r):
    w = sys.stderr.write
    if "error" in r:
        w("bench_jenkins: ERROR %s\n%s\n" % (r["error"], r.get("roundhouse_log_tail", "")))
        return
    w("bench_jenkins: %d masters x %d executors (%d), builds %s ms, window %d, %d sim procs\n" % (
        r["masters"], r["executors_per_master"], r["total_executors"], r["duration_ms"],
        r["window"], r["sim_procs"]))
    w("  builds/min %.0f (%d builds in %.0f s)\n" % (r["builds_per_min"], r["builds_in_window"],
                                                   r["seconds"]))
    w("  utilisation while queue non-empty: %s over %.1f s\n" % (
        "n/a" if r["utilisation"] is None else "%.1f%%" % (100 * r["utilisation"]),
        r["utilisation_seconds"]))
    s = r["submit_to_post_ms"]
    w("  submit->POST with a free executor: p50 %s ms, p99 %s ms, max %s ms (%d samples)\n" % (
        s["p50"], s["p99"], s["max"], s["samples"]))
    s = r["saturated_submit_to_post_ms"]
    w("  submit->POST under load (queueing included): p50 %s ms, p99 %s ms\n" % (s["p50"], s["p99"]))
    w("  jobs %d submitted, %d unfinished, %d failed, %d duplicate builds; roundhouse CPU %.1f s\n" % (
        r["jobs_submitted"], r["jobs_unfinished"], r["jobs_failed"], r["duplicate_builds"],
        r["roundhouse_cpu_s"]))
    for s in r["sim"]:
        w("  sim proc %d (%d masters): %.0f req/s, service p50/p99/max %s/%s/%s ms, probe p50/p99 %s/%s ms\n"
          % (s["process"], s["masters"], s["requests_per_s"], s["service_ms_p50"],
             s["service_ms_p99"], s["service_ms_max"], s["probe_ms_p50"], s["probe_ms_p99"]))
        if "loop" in s:
            w("      loop busy stretches p50/p99/max %s/%s/%s ms, %.0f%% of a core\n" % (
                s["loop"]["busy_ms_p50"], s["loop"]["busy_ms_p99"], s["loop"]["busy_ms_max"],
                100 * s["loop"]["cpu_fraction"]))
    if r["sim_keeps_up"]:
        w("  simulators kept up (%s)\n" % ("loop busy p99 and CPU share under the limits"
                                          if "loop" in r["sim"][0] else "probe p99 under the limit"))
    else:
        w("  WARNING: simulators did not keep up (over the limits above): numbers are bounded "
          "by the simulator; raise --sim-procs\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        bench_servers.stop_all()
        sys.exit(130)
