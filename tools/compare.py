#!/usr/bin/env python3
"""Side-by-side performance of roundhouse, gearmand 1.1.20 and minbroker on this machine.

Starts each server on a free loopback port, drives the same loads against each with rh-loadgen
(interleaved: every repetition runs every server before the next repetition starts, so drift on
the machine hits all of them alike), and prints per load the median rate, latency and the ratios
roundhouse/gearmand and roundhouse/minbroker, as a table and optionally as JSON (--json FILE).

minbroker is the smallest broker that can run these loads; it marks what the machine allows. Its
source (minbroker.c, a single C file) is NOT part of this repository: pass it with
--minbroker-src or the MINBROKER_SRC environment variable. Without it, minbroker is left out of
the default comparison with a message (asking for it with --servers is an error). Memory is measured on fresh server processes: peak RSS (VmHWM)
holding 1,000,000 queued background jobs, and with 10,000 idle worker connections while
round-trip latency is measured.

A benchmark program, never a test (doc/style.md rule 14). Python 3 standard library only. Every
server it starts is stopped when it exits, also on failure and Ctrl-C.
"""

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench_servers import CLK_TCK, ServerProcess, free_port, on_signal, stop_all

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_SERVERS = ("minbroker", "gearmand", "roundhouse")
GEARMAND = "/usr/sbin/gearmand"

# Throughput and latency loads: (name, description, rh-loadgen arguments).
LOADS = [
    ("bg-64w", "background, 4 clients, 64 workers, window 200",
     ["--mode", "bg", "--clients", "4", "--workers", "64", "--window", "200"]),
    ("bg-4w", "background, 4 clients, 4 workers, window 200",
     ["--mode", "bg", "--clients", "4", "--workers", "4", "--window", "200"]),
    ("fg-64w", "foreground pipelined, 8 clients, 64 workers, window 50",
     ["--mode", "fg", "--clients", "8", "--workers", "64", "--window", "50"]),
    ("fg-4w", "foreground pipelined, 8 clients, 4 workers, window 50",
     ["--mode", "fg", "--clients", "8", "--workers", "4", "--window", "50"]),
    ("rtt-1w", "round trip latency, 1 client, 1 worker",
     ["--mode", "latency", "--clients", "1", "--workers", "1"]),
    ("rtt-4w", "round trip latency, 1 client, 4 workers",
     ["--mode", "latency", "--clients", "1", "--workers", "4"]),
]

# What minbroker cannot do, per memory test (it has one wake-up list for all functions, so
# sleeping idle workers would swallow the NOOPs meant for the measuring worker).
MINBROKER_SKIPS = {
    "mem-idle": "minbroker wakes sleeping workers regardless of function: idle connections "
                "would take the wake-ups meant for the measuring worker",
}


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(needed, soft)
    if hard != resource.RLIM_INFINITY and target > hard:
        if os.geteuid() == 0:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
                return target
            except (ValueError, OSError):
                pass
        target = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ---------------------------------------------------------------------------------------------
# Machine load: CPU time used by processes other than the ones we measure.


def total_busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


QUIET_CORES = 0.15      # other processes below this are "quiet"
DISTURBED_CORES = 0.25  # a run during which other processes used more is retried


def wait_quiet(max_wait, quiet_seconds=3):
    """Waits until other processes have used less than QUIET_CORES for `quiet_seconds`
    consecutive seconds, or `max_wait` seconds have passed. Returns the load (in cores) of the
    last second measured. Called between runs, when none of our processes is busy."""
    deadline = time.monotonic() + max_wait
    quiet_for = 0
    while True:
        busy = total_busy_seconds()
        time.sleep(1.0)
        foreign = total_busy_seconds() - busy
        quiet_for = quiet_for + 1 if foreign < QUIET_CORES else 0
        if quiet_for >= quiet_seconds or time.monotonic() >= deadline:
            return foreign


# ---------------------------------------------------------------------------------------------
# Running the load generator


def run_loadgen(args, loadgen_argv, server, timeout):
    """Runs rh-loadgen once against `server`; returns its JSON result plus the server's CPU
    time and the CPU load other processes put on the machine meanwhile."""
    argv = [args.loadgen, "--port", str(server.port)] + loadgen_argv
    busy_before = total_busy_seconds()
    children_before = children_cpu_seconds()
    server_cpu_before = server.cpu_seconds()
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"rh-loadgen did not finish within {timeout} s", "argv": argv}
    wall = time.monotonic() - started
    server_cpu = server.cpu_seconds() if server.alive() else None
    foreign = (total_busy_seconds() - busy_before - (children_cpu_seconds() - children_before)
               - (server_cpu - server_cpu_before if server_cpu is not None else 0))
    stderr = proc.stderr.decode(errors="replace").strip()
    lines = [l for l in proc.stdout.decode(errors="replace").splitlines() if l.startswith("{")]
    if not lines:
        return {"error": f"rh-loadgen exit {proc.returncode}: {stderr[-300:]}", "argv": argv}
    result = json.loads(lines[-1])
    result["exit_status"] = proc.returncode
    result["argv"] = argv
    result["server_cpu_s"] = (round(server_cpu - server_cpu_before, 3)
                              if server_cpu is not None else None)
    result["loadgen_cpu_s"] = round(children_cpu_seconds() - children_before, 3)
    result["foreign_cpu_cores"] = round(max(0.0, foreign) / wall, 3) if wall > 0 else None
    if proc.returncode != 0:
        result["error"] = f"rh-loadgen exit {proc.returncode}: {stderr[-300:]}"
    if not server.alive():
        result["error"] = f"{server.name} died during the run: {server.log_tail()}"
    return result


def median_of(runs, key):
    values = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


# ---------------------------------------------------------------------------------------------
# Server command lines


def build_minbroker(source, workdir):
    binary = os.path.join(workdir, "minbroker")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc) to build minbroker")
    subprocess.run([cc, "-O2", "-o", binary, source], check=True)
    return binary


def server_argv(name, port, args, minbroker_binary):
    if name == "minbroker":
        return [minbroker_binary, str(port)]
    if name == "gearmand":
        argv = [GEARMAND, "--port", str(port), "--listen", "127.0.0.1", "--log-file",
                "/dev/null", "-t", str(args.gearmand_threads)]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        return argv
    return [args.roundhouse, "-q", "none", "--port", str(port), "--listen", "127.0.0.1",
            "--log-file", "none"]


def start_server(name, args, minbroker_binary):
    port = free_port()
    server = ServerProcess(name, server_argv(name, port, args, minbroker_binary), port,
                           os.path.join(args.workdir, f"{name}-{port}.log"))
    server.start()
    return server


# ---------------------------------------------------------------------------------------------
# The benchmark


def throughput_loads(args, servers, report):
    common = ["--seconds", str(args.seconds), "--warmup", str(args.warmup), "--payload",
              str(args.payload), "--threads", str(args.loadgen_threads)]
    timeout = args.seconds + args.warmup + 90
    results = {name: {server: [] for server in servers} for name, _, _ in LOADS}
    for rep in range(1, args.repeat + 1):
        for name, description, load_argv in LOADS:
            for server_name, server in servers.items():
                if not server.alive():
                    results[name][server_name].append({"error": f"{server_name} is not running"})
                    continue
                for attempt in range(1 + args.retry_disturbed):
                    if args.wait_quiet > 0:
                        wait_quiet(args.wait_quiet)
                    run = run_loadgen(args, load_argv + common, server, timeout)
                    run["attempt"] = attempt + 1
                    if "error" in run or (run.get("foreign_cpu_cores") or 0) <= DISTURBED_CORES:
                        break
                    log(f"compare: [{rep}/{args.repeat}] {name} {server_name}: other processes "
                        f"used {run['foreign_cpu_cores']} cores during the run; "
                        + ("retrying" if attempt < args.retry_disturbed else "keeping it"))
                results[name][server_name].append(run)
                log(f"compare: [{rep}/{args.repeat}] {name:7s} {server_name:10s} "
                    + (f"ERROR {run['error']}" if "error" in run else
                       f"{run['jobs_per_s']:>10.0f} jobs/s  p50 {run['p50_us']} us  "
                       f"p99 {run['p99_us']} us  cpu server {run['server_cpu_s']} s "
                       f"loadgen {run['loadgen_cpu_s']} s  other load "
                       f"{run['foreign_cpu_cores']} cores"))
    for name, description, load_argv in LOADS:
        entry = {"name": name, "description": description, "loadgen_args": load_argv + common,
                 "servers": {}}
        for server_name, runs in results[name].items():
            entry["servers"][server_name] = {
                "median_jobs_per_s": median_of(runs, "jobs_per_s"),
                "median_p50_us": median_of(runs, "p50_us"),
                "median_p99_us": median_of(runs, "p99_us"),
                "median_p999_us": median_of(runs, "p999_us"),
                "median_server_cpu_s": median_of(runs, "server_cpu_s"),
                "median_loadgen_cpu_s": median_of(runs, "loadgen_cpu_s"),
                "max_foreign_cpu_cores": max((r.get("foreign_cpu_cores") or 0 for r in runs),
                                             default=None),
                "errors": [r["error"] for r in runs if "error" in r],
                "runs": runs,
            }
        rate = {s: v["median_jobs_per_s"] for s, v in entry["servers"].items()}
        entry["ratios"] = {
            "roundhouse/gearmand": ratio(rate.get("roundhouse"), rate.get("gearmand")),
            "roundhouse/minbroker": ratio(rate.get("roundhouse"), rate.get("minbroker")),
        }
        report["loads"].append(entry)


def memory_tests(args, server_names, minbroker_binary, report):
    tests = [
        ("mem-queue", f"peak RSS holding {args.queue_jobs} queued background jobs of "
                      f"{args.payload} bytes (submit-only, no workers)",
         ["--submit-only", "--clients", "4", "--window", "200", "--jobs", str(args.queue_jobs),
          "--payload", str(args.payload), "--timeout", str(args.queue_timeout)],
         args.queue_timeout + 30),
        ("mem-idle", f"peak RSS with {args.idle_connections} idle worker connections (CAN_DO + "
                     f"PRE_SLEEP), round-trip latency measured meanwhile (1 client, 1 worker)",
         ["--mode", "latency", "--clients", "1", "--workers", "1", "--idle-connections",
          str(args.idle_connections), "--seconds", str(args.seconds), "--connect-concurrency",
          "32"],
         args.seconds + 300),
    ]
    for name, description, load_argv, timeout in tests:
        entry = {"name": name, "description": description, "loadgen_args": load_argv,
                 "servers": {}}
        for server_name in server_names:
            if server_name == "minbroker" and name in MINBROKER_SKIPS:
                entry["servers"][server_name] = {"skipped": MINBROKER_SKIPS[name]}
                log(f"compare: {name} {server_name}: skipped ({MINBROKER_SKIPS[name]})")
                continue
            try:
                server = start_server(server_name, args, minbroker_binary)
            except (RuntimeError, OSError) as e:
                entry["servers"][server_name] = {"error": str(e), "hwm_kib": None}
                log(f"compare: {name} {server_name}: ERROR {e}")
                continue
            try:
                before = server.status_kib()
                if args.wait_quiet > 0:
                    wait_quiet(args.wait_quiet)
                run = run_loadgen(args, load_argv, server, timeout)
                after = server.status_kib() if server.alive() else {}
            finally:
                server.stop()
            hwm = after.get("VmHWM")
            result = {
                "rss_start_kib": before.get("VmRSS"),
                "rss_end_kib": after.get("VmRSS"),
                "hwm_kib": hwm,
                "bytes_per_item": (round((hwm - before["VmRSS"]) * 1024 /
                                         (args.queue_jobs if name == "mem-queue"
                                          else args.idle_connections), 1)
                                   if hwm is not None else None),
                "run": run,
            }
            if "error" in run:
                result["error"] = run["error"]
            entry["servers"][server_name] = result
            log(f"compare: {name} {server_name:10s} "
                + (f"ERROR {run['error']}" if "error" in run else
                   f"VmHWM {hwm / 1024:.1f} MiB (start {before.get('VmRSS', 0) / 1024:.1f} MiB), "
                   f"{run['jobs_per_s']:.0f} jobs/s, p50 {run['p50_us']} us "
                   f"p99 {run['p99_us']} us"))
        hwm = {s: v.get("hwm_kib") for s, v in entry["servers"].items()}
        entry["ratios"] = {
            "roundhouse/gearmand": ratio(hwm.get("roundhouse"), hwm.get("gearmand")),
            "roundhouse/minbroker": ratio(hwm.get("roundhouse"), hwm.get("minbroker")),
        }
        report["memory"].append(entry)


# ---------------------------------------------------------------------------------------------
# Output


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(report, server_names):
    out = []
    head = f"{'load':32s}" + "".join(f"{s:>14s}" for s in server_names) + \
        f"{'rh/gearmand':>13s}{'rh/minbroker':>14s}"
    out.append(head)
    out.append("-" * len(head))
    for entry in report["loads"]:
        cells = entry["servers"]
        latency_load = entry["name"].startswith("rtt")
        row = f"{entry['name'] + ' jobs/s':32s}"
        for s in server_names:
            row += f"{fmt(cells[s]['median_jobs_per_s']):>14s}"
        row += f"{fmt(entry['ratios']['roundhouse/gearmand'], 2):>13s}"
        row += f"{fmt(entry['ratios']['roundhouse/minbroker'], 2):>14s}"
        out.append(row)
        label = "round trip" if entry["name"].startswith(("fg", "rtt")) else "submit ack"
        row = f"{'  ' + label + ' p50/p99 us':32s}"
        for s in server_names:
            row += f"{fmt(cells[s]['median_p50_us']) + '/' + fmt(cells[s]['median_p99_us']):>14s}"
        out.append(row)
        if not latency_load:
            row = f"{'  CPU s server/loadgen':32s}"
            for s in server_names:
                cpu = (fmt(cells[s]['median_server_cpu_s'], 2) + "/" +
                       fmt(cells[s]['median_loadgen_cpu_s'], 2))
                row += f"{cpu:>14s}"
            out.append(row)
        for s in server_names:
            for error in cells[s]["errors"]:
                out.append(f"  ! {s}: {error}")
    for entry in report["memory"]:
        row = f"{entry['name'] + ' VmHWM MiB':32s}"
        for s in server_names:
            cell = entry["servers"].get(s, {})
            hwm = cell.get("hwm_kib")
            text = "skipped" if "skipped" in cell else fmt(hwm / 1024 if hwm else None, 1)
            row += f"{text:>14s}"
        row += f"{fmt(entry['ratios']['roundhouse/gearmand'], 2):>13s}"
        row += f"{fmt(entry['ratios']['roundhouse/minbroker'], 2):>14s}"
        out.append(row)
        if entry["name"] == "mem-idle":
            row = f"{'  round trip p50/p99 us':32s}"
            for s in server_names:
                run = entry["servers"].get(s, {}).get("run")
                text = "-"
                if run and "error" not in run:
                    text = fmt(run.get("p50_us")) + "/" + fmt(run.get("p99_us"))
                row += f"{text:>14s}"
            out.append(row)
        for s in server_names:
            cell = entry["servers"].get(s, {})
            if "skipped" in cell:
                out.append(f"  - {s} skipped: {cell['skipped']}")
            elif "error" in cell:
                out.append(f"  ! {s}: {cell['error']}")
    out.append("")
    out.append("Rates are medians of the repetitions; ratios are roundhouse's median over the "
               "other's (memory: lower is better).")
    busy = max((cell.get("max_foreign_cpu_cores") or 0 for e in report["loads"]
                for cell in e["servers"].values()), default=0)
    if busy > DISTURBED_CORES:
        out.append(f"WARNING: other processes used up to {busy:.2f} cores during some runs; "
                   "those numbers are disturbed (see foreign_cpu_cores in the JSON).")
    print("\n".join(out))


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default=None,
                   help="comma-separated subset of minbroker,gearmand,roundhouse (default: all; "
                        "minbroker only when its source is given)")
    p.add_argument("--build-dir", default=os.path.join(REPO_ROOT, "build"),
                   help="meson build directory (default: <repo>/build)")
    p.add_argument("--roundhouse", help="server binary (default: <build-dir>/server/roundhouse)")
    p.add_argument("--loadgen", help="rh-loadgen (default: <build-dir>/tools/loadgen/rh-loadgen)")
    p.add_argument("--minbroker-src", default=os.environ.get("MINBROKER_SRC"),
                   help="minbroker.c, kept outside this repository (default: $MINBROKER_SRC)")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per load (3)")
    p.add_argument("--seconds", type=float, default=10, help="measured seconds per run (10)")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds per run (2)")
    p.add_argument("--payload", type=int, default=64, help="job payload bytes (64)")
    p.add_argument("--gearmand-threads", type=int, default=4,
                   help="gearmand -t (4, gearmand's default)")
    p.add_argument("--loadgen-threads", type=int, default=1, help="rh-loadgen --threads (1)")
    p.add_argument("--queue-jobs", type=int, default=1000000,
                   help="queued background jobs for the memory test (1000000)")
    p.add_argument("--queue-timeout", type=float, default=600,
                   help="hard limit for filling the queue (600 s)")
    p.add_argument("--idle-connections", type=int, default=10000,
                   help="idle worker connections for the memory test (10000)")
    p.add_argument("--skip-memory", action="store_true", help="only the throughput loads")
    p.add_argument("--skip-throughput", action="store_true", help="only the memory tests")
    p.add_argument("--wait-quiet", type=float, default=30,
                   help="before each run, wait up to this many seconds until other processes "
                        f"have used less than {QUIET_CORES} cores for 3 s (30; 0 = do not wait)")
    p.add_argument("--retry-disturbed", type=int, default=2,
                   help="re-run a run during which other processes used more than "
                        f"{DISTURBED_CORES} cores, up to this many times (2)")
    p.add_argument("--quick", action="store_true",
                   help="1 repetition, 3 s + 1 s warm-up, 100000 queued jobs, 1000 idle "
                        "connections")
    p.add_argument("--json", metavar="FILE", help="also write the full results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.seconds, args.warmup = 1, 3, 1
        args.queue_jobs, args.idle_connections = 100000, 1000
        args.wait_quiet = min(args.wait_quiet, 10)
    have_minbroker = bool(args.minbroker_src) and os.path.exists(args.minbroker_src)
    if args.servers is None:
        args.servers = ",".join(ALL_SERVERS)
        if not have_minbroker:
            args.servers = ",".join(s for s in ALL_SERVERS if s != "minbroker")
            print("compare.py: minbroker left out: its source is not in this repository; pass "
                  "--minbroker-src FILE or set MINBROKER_SRC to include it", file=sys.stderr)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.servers if s not in ALL_SERVERS]
    if unknown or not args.servers:
        p.error(f"--servers: unknown {unknown}; choose from {','.join(ALL_SERVERS)}")
    args.roundhouse = args.roundhouse or os.path.join(args.build_dir, "server", "roundhouse")
    args.loadgen = args.loadgen or os.path.join(args.build_dir, "tools", "loadgen", "rh-loadgen")
    if not os.access(args.loadgen, os.X_OK):
        p.error(f"no rh-loadgen at {args.loadgen}; build it (meson compile -C build) or pass "
                "--loadgen")
    if "roundhouse" in args.servers and not os.access(args.roundhouse, os.X_OK):
        p.error(f"no roundhouse at {args.roundhouse}; build it, pass --roundhouse, or leave it "
                "out with --servers minbroker,gearmand")
    if "gearmand" in args.servers and not os.access(GEARMAND, os.X_OK):
        p.error(f"{GEARMAND} is not installed; leave it out with --servers")
    if "minbroker" in args.servers and not have_minbroker:
        p.error("minbroker.c not found (it is not part of this repository); pass "
                "--minbroker-src FILE or set MINBROKER_SRC, or leave it out with --servers")
    return args


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(stop_all)
    nofile = raise_nofile(args.idle_connections * 2 + 1024)
    report = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version(), "nofile": nofile},
        "params": {k: v for k, v in vars(args).items() if k != "json"},
        "servers": {},
        "loads": [],
        "memory": [],
    }
    workdir = tempfile.mkdtemp(prefix="rh-compare-")
    args.workdir = workdir
    try:
        minbroker_binary = None
        if "minbroker" in args.servers:
            minbroker_binary = build_minbroker(args.minbroker_src, workdir)
        if not args.skip_throughput:
            servers = {}
            for name in args.servers:
                servers[name] = start_server(name, args, minbroker_binary)
                report["servers"][name] = {"argv": servers[name].argv}
                log(f"compare: started {name} on port {servers[name].port}")
            try:
                throughput_loads(args, servers, report)
            finally:
                for server in servers.values():
                    server.stop()
        if not args.skip_memory:
            memory_tests(args, args.servers, minbroker_binary, report)
    except KeyboardInterrupt:
        log("compare: interrupted; stopping servers")
        stop_all()
        return 130
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        log(f"compare: {e}")
        stop_all()
        return 1
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(report, args.servers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        log(f"compare: wrote {args.json}")
    failed = any(cell.get("errors") for e in report["loads"] for cell in e["servers"].values()) \
        or any("error" in cell for e in report["memory"] for cell in e["servers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
