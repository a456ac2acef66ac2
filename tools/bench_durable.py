#!/usr/bin/env python3
"""Durable-queue benchmark: roundhouse's SQLite queue against gearmand 1.1.20's libsqlite3 queue
and against roundhouse without a durable queue, on this machine (issue 3).

Throughput: for each client count (default 4 and 16) every server gets the same load, one after
the other, each on a fresh database and a free loopback port:

    gearmand   -q libsqlite3 --libsqlite3-db FRESH     (one transaction per job)
    roundhouse -q libsqlite3 --libsqlite3-db FRESH     (group commit, WAL, synchronous=FULL)
    roundhouse -q none                                 (memory only: the ceiling)

The load is `rh-loadgen --submit-only`: N clients, each keeping --window SUBMIT_JOB_BG
unacknowledged, a distinct unique per job (--unique seq, as libgearman's UUIDs; empty uniques
would collide in gearmand's table), no workers, so every acknowledged job is a durable write.
Rates are acknowledged jobs per second after a warm-up. The table shows the ratios
roundhouse-sqlite / gearmand-sqlite (target >= 40) and roundhouse-sqlite / roundhouse-none
(target >= 0.5).

Replay: roundhouse-sqlite is filled with --replay-jobs (default 1,000,000) background jobs
through the server itself, stopped with SIGTERM, and started again --replay-runs times; each
time counts from the process start until it answers `version` (replay finishes before the
listener accepts, doc/protocol.md §6.1). Target < 5 s.

A benchmark, not a test (doc/style.md rule 14): it prints numbers and exits 0 when it could measure,
whether or not a target was met (the table marks misses), 1 when a measurement failed.
Bounded: every step has a timeout and --max-seconds caps the whole run. Every server it starts
is stopped when it exits, also on failure, timeout and Ctrl-C. Python 3 standard library only.

    python3 tools/bench_durable.py                                  # build/ under the repo
    python3 tools/bench_durable.py --roundhouse /tmp/b/server/roundhouse \\
        --loadgen /tmp/b/tools/loadgen/rh-loadgen --json out.json
    python3 tools/bench_durable.py --clients 4 --seconds 3 --replay-jobs 100000   # quick look
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench_servers import ServerProcess, answers_version, free_port, on_signal, stop_all

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEARMAND = "/usr/sbin/gearmand"
TARGET_VS_GEARMAND = 40.0
TARGET_VS_MEMORY = 0.5
TARGET_REPLAY_S = 5.0
SERVERS = ("gearmand-sqlite", "roundhouse-sqlite", "roundhouse-none")


def log(message):
    print("bench_durable: " + message, file=sys.stderr, flush=True)


class Deadline:
    """The --max-seconds budget: each step asks for its timeout and never gets more than is left."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def timeout(self, wanted):
        left = self.left()
        if left <= 1:
            raise TimeoutError("--max-seconds reached")
        return min(wanted, left)


# ---------------------------------------------------------------------------------------------
# Processes


def server_argv(kind, port, db, args):
    if kind == "gearmand-sqlite":
        argv = [args.gearmand, "--port", str(port), "--listen", "127.0.0.1", "--log-file",
                "/dev/null", "-q", "libsqlite3", "--libsqlite3-db=" + db]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        return argv
    argv = [args.roundhouse, "--port", str(port), "--listen", "127.0.0.1", "--log-file", "stderr",
            "--verbose", "NOTICE"]
    if kind == "roundhouse-sqlite":
        return argv + ["-q", "libsqlite3", "--libsqlite3-db", db]
    return argv + ["-q", "none"]


def start_server(kind, db, args, deadline):
    port = free_port()
    server = ServerProcess(kind, server_argv(kind, port, db, args), port,
                           os.path.join(args.workdir, "%s-%d.log" % (kind, port)), args.workdir,
                           ready=answers_version)
    ready_s = server.start(deadline.timeout(args.start_timeout))
    return server, ready_s


def fresh_db(args, name):
    db = os.path.join(args.workdir, name + ".db")
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return db


def run_loadgen(args, server, loadgen_args, deadline, wanted_timeout):
    argv = [args.loadgen, "--port", str(server.port)] + [str(a) for a in loadgen_args]
    timeout = deadline.timeout(wanted_timeout)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "rh-loadgen did not finish within %.0f s" % timeout, "argv": argv}
    lines = [l for l in proc.stdout.decode(errors="replace").splitlines() if l.startswith("{")]
    stderr = proc.stderr.decode(errors="replace").strip()
    if not lines:
        return {"error": "rh-loadgen exit %d: %s" % (proc.returncode, stderr[-300:]),
                "argv": argv}
    result = json.loads(lines[-1])
    result["argv"] = argv
    result["exit_status"] = proc.returncode
    if proc.returncode != 0:
        result["error"] = "rh-loadgen exit %d: %s" % (proc.returncode, stderr[-300:])
    if not server.alive():
        result["error"] = "%s died during the run: %s" % (server.name, server.log_tail())
    return result


def db_bytes(db):
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


# ---------------------------------------------------------------------------------------------
# Measurements


def throughput(args, deadline, results):
    """Fills `results` {clients: {server: [run, ...]}} as it goes (so an interrupted run still
    reports what it measured): --repeat runs each, servers interleaved per repetition."""
    load = ["--submit-only", "--window", args.window, "--payload", args.payload,
            "--unique", "seq", "--seconds", args.seconds, "--warmup", args.warmup]
    results.update({n: {kind: [] for kind in args.servers} for n in args.clients})
    for rep in range(1, args.repeat + 1):
        for clients in args.clients:
            for kind in args.servers:
                db = fresh_db(args, kind)
                server = None
                try:
                    server, _ = start_server(kind, db, args, deadline)
                    run = run_loadgen(args, server, load + ["--clients", clients], deadline,
                                      args.seconds + args.warmup + 60)
                except (RuntimeError, TimeoutError) as e:
                    run = {"error": str(e)}
                finally:
                    if server is not None:
                        server.stop()
                if "error" not in run and kind != "roundhouse-none":
                    run["db_bytes"] = db_bytes(db)
                results[clients][kind].append(run)
                log("[%d/%d] %2d clients %-18s %s" % (
                    rep, args.repeat, clients, kind,
                    "ERROR " + run["error"] if "error" in run else
                    "%10.0f jobs/s  (%d jobs, ack p50 %s us, p99 %s us)" % (
                        run["jobs_per_s"], run["jobs"], run["p50_us"], run["p99_us"])))


def replay(args, deadline):
    """Fills roundhouse-sqlite with args.replay_jobs jobs, then times args.replay_runs restarts."""
    db = fresh_db(args, "replay")
    out = {"jobs_requested": args.replay_jobs, "runs_s": []}
    server, _ = start_server("roundhouse-sqlite", db, args, deadline)
    try:
        started = time.monotonic()
        fill = run_loadgen(args, server, [
            "--submit-only", "--jobs", args.replay_jobs, "--clients", 16, "--window", 200,
            "--payload", args.payload, "--unique", "seq", "--priority", "mixed",
            "--functions", 8], deadline, args.fill_timeout)
        out["fill_s"] = round(time.monotonic() - started, 3)
        if "error" in fill:
            out["error"] = "fill: " + fill["error"]
            return out
        out["jobs_stored"] = fill["created"]
        log("replay: stored %d jobs through the server in %.1f s (%.0f jobs/s)"
            % (fill["created"], out["fill_s"], fill["jobs_per_s"]))
    finally:
        status = server.stop(timeout=deadline.timeout(120))
    if status != 0:
        out["error"] = "roundhouse exited with %s after the fill: %s" % (status, server.log_tail())
        return out
    out["db_bytes"] = db_bytes(db)
    for run in range(args.replay_runs):
        server = None
        try:
            server, ready_s = start_server("roundhouse-sqlite", db, args, deadline)
            out["runs_s"].append(round(ready_s, 3))
            log("replay: run %d: answered `version` %.3f s after the process started"
                % (run + 1, ready_s))
        except (RuntimeError, TimeoutError) as e:
            out["error"] = str(e)
            break
        finally:
            if server is not None:
                server.stop(timeout=deadline.timeout(120))
    if out["runs_s"]:
        out["median_s"] = statistics.median(out["runs_s"])
        out["max_s"] = max(out["runs_s"])
    return out


# ---------------------------------------------------------------------------------------------
# Report


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def median_rate(runs):
    rates = [r["jobs_per_s"] for r in runs if "error" not in r]
    return statistics.median(rates) if rates else None


def mark(value, target, higher_is_better=True):
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value < target
    return "%s %s" % (value, "ok" if ok else "MISS")


def summarize(args, results, replay_result):
    rows = []
    for clients in args.clients:
        rates = {kind: median_rate(results[clients][kind]) for kind in args.servers}
        rows.append({
            "clients": clients,
            "jobs_per_s": {k: (round(v) if v is not None else None) for k, v in rates.items()},
            "rh_sqlite_vs_gearmand_sqlite": ratio(rates.get("roundhouse-sqlite"),
                                                  rates.get("gearmand-sqlite")),
            "rh_sqlite_vs_rh_none": ratio(rates.get("roundhouse-sqlite"),
                                          rates.get("roundhouse-none")),
        })
    return rows


def print_table(args, rows, replay_result):
    print()
    print("Durable background submissions per second (rh-loadgen --submit-only, window %d, "
          "payload %d B, %g s after %g s warm-up, median of %d)"
          % (args.window, args.payload, args.seconds, args.warmup, args.repeat))
    header = "%8s %16s %18s %16s %20s %20s" % (
        "clients", "gearmand-sqlite", "roundhouse-sqlite", "roundhouse-none",
        "rh-sqlite/gearmand", "rh-sqlite/rh-none")
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = row["jobs_per_s"]
        print("%8d %16s %18s %16s %20s %20s" % (
            row["clients"], *(("-" if rate.get(k) is None else rate[k]) for k in SERVERS),
            mark(row["rh_sqlite_vs_gearmand_sqlite"], TARGET_VS_GEARMAND),
            mark(row["rh_sqlite_vs_rh_none"], TARGET_VS_MEMORY)))
    print("targets: rh-sqlite/gearmand >= %g, rh-sqlite/rh-none >= %g"
          % (TARGET_VS_GEARMAND, TARGET_VS_MEMORY))
    if replay_result is not None:
        print()
        if replay_result.get("runs_s"):
            print("Start-up replay of %d stored jobs (db %.0f MiB): %s s (median %s, target < %g s:"
                  " %s)" % (replay_result.get("jobs_stored", 0),
                            replay_result.get("db_bytes", 0) / 1048576.0,
                            ", ".join("%.3f" % r for r in replay_result["runs_s"]),
                            replay_result["median_s"], TARGET_REPLAY_S,
                            "ok" if replay_result["max_s"] < TARGET_REPLAY_S else "MISS"))
        if "error" in replay_result:
            print("Replay measurement failed: %s" % replay_result["error"])


def machine():
    info = {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def parse_args():
    build = os.path.join(REPO_ROOT, "build")
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--roundhouse", default=os.environ.get(
        "ROUNDHOUSE_BIN", os.path.join(build, "server", "roundhouse")))
    p.add_argument("--loadgen", default=os.environ.get(
        "RH_LOADGEN", os.path.join(build, "tools", "loadgen", "rh-loadgen")))
    p.add_argument("--gearmand", default=os.environ.get("GEARMAND_BIN", GEARMAND))
    p.add_argument("--clients", default="4,16",
                   help="comma-separated client counts (default 4,16)")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help="subset of %s" % ",".join(SERVERS))
    p.add_argument("--window", type=int, default=64,
                   help="unacknowledged submits per client (default 64)")
    p.add_argument("--payload", type=int, default=64, help="bytes per job (default 64)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run")
    p.add_argument("--repeat", type=int, default=1, help="runs per server and client count")
    p.add_argument("--replay-jobs", type=int, default=1000000,
                   help="jobs stored for the replay measurement; 0 skips it")
    p.add_argument("--replay-runs", type=int, default=3)
    p.add_argument("--fill-timeout", type=float, default=300.0)
    p.add_argument("--start-timeout", type=float, default=60.0)
    p.add_argument("--max-seconds", type=float, default=900.0,
                   help="hard bound on the whole run (default 900)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE "
                   "('-' for stdout, instead of the table)")
    p.add_argument("--workdir", help="keep databases and logs here (default: a temporary "
                   "directory, removed at exit)")
    args = p.parse_args()
    args.clients = [int(c) for c in args.clients.split(",") if c]
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.servers:
        if s not in SERVERS:
            p.error("unknown server %r" % s)
    for path, what in ((args.roundhouse, "roundhouse"), (args.loadgen, "rh-loadgen")):
        if not os.access(path, os.X_OK):
            p.error("%s not found at %s" % (what, path))
    if "gearmand-sqlite" in args.servers and not os.access(args.gearmand, os.X_OK):
        p.error("gearmand not found at %s (or leave it out with --servers)" % args.gearmand)
    return args


def main():
    args = parse_args()
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    own_workdir = args.workdir is None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="rh-bench-durable-")
    os.makedirs(args.workdir, exist_ok=True)
    deadline = Deadline(args.max_seconds)
    failed = False
    results, replay_result = {}, None
    try:
        log("workdir %s; servers %s; clients %s" % (args.workdir, ", ".join(args.servers),
                                                    args.clients))
        throughput(args, deadline, results)
        if args.replay_jobs > 0:
            replay_result = replay(args, deadline)
    except TimeoutError as e:
        log("stopped: %s" % e)
        failed = True
    except KeyboardInterrupt as e:
        log("interrupted (%s)" % e)
        failed = True
    finally:
        stop_all()
        if own_workdir:
            shutil.rmtree(args.workdir, ignore_errors=True)
    rows = summarize(args, results, replay_result) if results else []
    failed = failed or any("error" in run for per in results.values() for runs in per.values()
                           for run in runs) or (replay_result is not None
                                                and "error" in replay_result)
    report = {
        "tool": "bench_durable", "machine": machine(),
        "params": {k: getattr(args, k) for k in ("clients", "servers", "window", "payload",
                                                 "seconds", "warmup", "repeat", "replay_jobs",
                                                 "replay_runs")},
        "targets": {"rh_sqlite_vs_gearmand_sqlite": TARGET_VS_GEARMAND,
                    "rh_sqlite_vs_rh_none": TARGET_VS_MEMORY, "replay_s": TARGET_REPLAY_S},
        "throughput": rows,
        "runs": {str(n): per for n, per in results.items()},
        "replay": replay_result,
        "failed": failed,
    }
    if args.json == "-":
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(args, rows, replay_result)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
