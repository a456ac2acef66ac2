"""The durable SQLite queue through the real server (doc/protocol.md §6, §3.2; issue 3).

Every test owns a temporary directory holding its database, starts roundhouse on it (and
restarts it there: SIGTERM, or SIGKILL for the crash tests) on free loopback ports, and checks
what a restarted server hands out: the jobs, their order, handles, uniques, data, reducers and
epoch times; that finished jobs stay finished; that handles are never reissued; that start-up
refuses a database it cannot use without touching it; that a failed commit acknowledges
nothing; and that a gearmand 1.1.20 libsqlite3 table is imported exactly once.

Needs: the roundhouse binary (ROUNDHOUSE_BIN); rh-loadgen for the crash-under-load test
(RH_LOADGEN, default <build>/tools/loadgen/rh-loadgen next to the server's build directory);
/usr/sbin/gearmand and /usr/bin/gearman for the import test; root (tmpfs mounts) for the
disk-full and read-only tests. A missing piece skips the tests that need it, with the reason.

All of it is roundhouse-only: gearmand reissues handles and collides empty uniques (§6.3).
"""

import collections
import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
from gearman_wire import res  # noqa: E402
import server_fixture  # noqa: E402
from server_fixture import ServerTestCase, roundhouse_only  # noqa: E402

HIGH, NORMAL, LOW = 0, 1, 2
PRIORITY_OF = {
    gw.SUBMIT_JOB_HIGH_BG: HIGH,
    gw.SUBMIT_JOB_BG: NORMAL,
    gw.SUBMIT_JOB_LOW_BG: LOW,
    gw.SUBMIT_JOB_EPOCH: NORMAL,
    gw.SUBMIT_REDUCE_JOB_BACKGROUND: NORMAL,
}
# Seconds between submitting a future epoch job and its `when`: long enough to restart the server
# and see the job not yet due on a loaded 2-core machine, short enough to wait for.
EPOCH_DELAY = 5
PROCESS_TIMEOUT = 20.0  # any start-up that should fail, any loadgen run beyond its own bound

# One job as a worker receives it. `reducer` is None unless JOB_ASSIGN_ALL carried one; `unique`
# is None for a plain JOB_ASSIGN.
Assigned = collections.namedtuple("Assigned", "handle func unique reducer data")


def handle_number(handle):
    """The counter in `<prefix>:<n>` (the prefix may itself contain ':')."""
    return int(handle.rsplit(b":", 1)[1])


def parse_assign(pkt):
    if pkt.type == gw.JOB_ASSIGN_ALL:
        h, f, u, r, d = pkt.args(5)
        return Assigned(h, f, u, r, d)
    if pkt.type == gw.JOB_ASSIGN_UNIQ:
        h, f, u, d = pkt.args(4)
        return Assigned(h, f, u, None, d)
    if pkt.type == gw.JOB_ASSIGN:
        h, f, d = pkt.args(3)
        return Assigned(h, f, None, None, d)
    raise AssertionError("expected a job assignment, got %r" % (pkt,))


def loadgen_bin():
    path = os.environ.get("RH_LOADGEN")
    if path:
        return path
    build = os.path.dirname(os.path.dirname(server_fixture.roundhouse_bin()))
    return os.path.join(build, "tools", "loadgen", "rh-loadgen")


def file_snapshot(directory):
    """{name: bytes} of every file in `directory` (to prove start-up left it untouched)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = f.read()
        else:
            out[name] = "<%s>" % ("dir" if os.path.isdir(path) else "other")
    return out


def unescape_name(field):
    r"""The raw bytes of a name printed in admin output's escaped form: `\\` is a backslash,
    `\xHH` the byte HH, everything else itself (doc/protocol.md, "Names in output")."""
    out, i = bytearray(), 0
    while i < len(field):
        if field[i:i + 2] == b"\\\\":
            out.append(0x5c)
            i += 2
        elif field[i:i + 2] == b"\\x" and i + 4 <= len(field):
            out.append(int(field[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def read_record(path):
    """rh-loadgen --record lines: [(handle, unique)] in file order (escapes undone)."""
    def unescape(field):
        out, i = bytearray(), 0
        while i < len(field):
            if field[i:i + 1] == b"\\" and i + 1 < len(field):
                out += {b"\\": b"\\", b"t": b"\t", b"n": b"\n"}.get(field[i + 1:i + 2],
                                                                    field[i:i + 2])
                i += 2
            else:
                out.append(field[i])
                i += 1
        return bytes(out)

    rows = []
    with open(path, "rb") as f:
        for line in f:
            assert line.endswith(b"\n"), "torn record line %r in %s" % (line, path)
            handle, unique = line[:-1].split(b"\t")
            rows.append((unescape(handle), unescape(unique)))
    return rows


def log(message):
    sys.stderr.write("\n    [durability] %s\n" % message)
    sys.stderr.flush()


@roundhouse_only("durable queue semantics of our server (doc/protocol.md §3.2, 6.3, 6.4)")
class DurableTestCase(ServerTestCase):
    server_kind = "roundhouse"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rh-durability-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "queue.db")

    # -- servers ---------------------------------------------------------------------------

    def start_durable(self, *extra, db=None):
        """roundhouse on `db` (default self.db) with the SQLite queue, stopped at cleanup."""
        return self.start_server("-q", "libsqlite3", "--libsqlite3-db", db or self.db, *extra,
                                 use_default_args=False)

    def stop(self, server):
        """SIGTERM, and insist on a clean exit (a crash would hide shutdown bugs)."""
        server.stop()
        self.assertEqual(server.exit_code, 0, "server did not exit cleanly:\n" + server.final_log)

    def crash(self, server):
        """SIGKILL: no shutdown code runs, as in a power cut for the process."""
        os.killpg(server.pid, signal.SIGKILL)
        server.proc.wait(server_fixture.STOP_TIMEOUT)
        server.stop()

    def restart(self, server, *extra, db=None):
        self.stop(server)
        return self.start_durable(*extra, db=db)

    def spawn(self, port, *args, cwd=None, log_name=None):
        """roundhouse as a plain child process in `cwd` (default self.dir), for tests whose
        servers must share a working directory (the fixture gives each its own)."""
        log_path = os.path.join(self.dir, log_name or "log-%d" % port)
        with open(log_path + ".stderr", "ab") as err:
            proc = subprocess.Popen([server_fixture.roundhouse_bin(), "--port", str(port),
                                     "--listen", "127.0.0.1", "--log-file", log_path,
                                     "--verbose", "INFO"] + [str(a) for a in args],
                                    cwd=cwd or self.dir, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        proc.log_path = log_path
        self.addCleanup(self._reap, proc)
        return proc

    def stop_spawned(self, proc):
        proc.terminate()
        self.assertEqual(proc.wait(server_fixture.STOP_TIMEOUT), 0)

    def _connect_when_up(self, proc, port):
        deadline = time.monotonic() + server_fixture.START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail("roundhouse exited with %s" % proc.returncode)
            try:
                conn = gw.Connection("127.0.0.1", port, connect_timeout=1.0)
            except OSError:
                time.sleep(0.02)
                continue
            if conn.request(gw.ECHO_REQ, b"up") == res(gw.ECHO_RES, b"up"):
                return conn
        self.fail("roundhouse did not answer on port %d" % port)

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # -- wire helpers ----------------------------------------------------------------------

    def submit(self, conn, ptype, func, unique, data, when=None, reducer=None):
        if ptype == gw.SUBMIT_JOB_EPOCH:
            pkt = conn.request(ptype, func, unique, when, data)
        elif ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            pkt = conn.request(ptype, func, unique, reducer, b"", data)
        else:
            pkt = conn.request(ptype, func, unique, data)
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
        return pkt.payload

    def worker(self, server, *funcs):
        conn = self.connect(server)
        for func in funcs:
            conn.can_do(func)
        conn.assert_quiet()
        return conn

    def grab_all(self, worker, ptype=gw.GRAB_JOB_ALL, limit=100000):
        """Grab until NO_JOB (jobs are held, not completed); returns [Assigned]."""
        out = []
        for _ in range(limit):
            pkt = worker.request(ptype)
            if pkt.type == gw.NO_JOB:
                return out
            out.append(parse_assign(pkt))
        self.fail("more than %d jobs" % limit)

    def admin(self, server, command):
        with server.connect() as conn:
            return conn.admin(command)

    def queued_counts(self, server):
        """{func: (high, normal, low)} from `prioritystatus`, functions with no queued job left
        out (CAN_DO and the unique index keep idle functions listed). Names are listed in the
        escaped form of doc/protocol.md ("Names in output"); the keys are the raw names."""
        out = {}
        for line in self.admin(server, "prioritystatus").split(b"\n"):
            if line in (b".", b""):
                continue
            func, high, normal, low, _workers = line.rsplit(b"\t", 4)
            counts = (int(high), int(normal), int(low))
            if counts != (0, 0, 0):
                out[unescape_name(func)] = counts
        return out

    def show_jobs(self, server):
        """[handle] from `show jobs` (creation order)."""
        lines = self.admin(server, "show jobs").split(b"\n")
        return [line.split(b"\t")[0] for line in lines if line not in (b".", b"")]

    def get_status(self, conn, handle):
        """STATUS_RES fields after the handle: KNOWN\0RUNNING\0NUM\0DEN."""
        pkt = conn.request(gw.GET_STATUS, handle)
        self.assertEqual(pkt.type, gw.STATUS_RES, pkt)
        return pkt.payload[len(handle) + 1:]

    def wait_noop(self, worker, timeout):
        worker.pre_sleep()
        self.assertEqual(worker.recv_packet(timeout=timeout), res(gw.NOOP))

    def wait_until(self, predicate, timeout, message):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        self.fail("timed out waiting for " + message)

    def table_rows(self, table, db=None):
        """Row count of `table` in the database, read with a read-only connection."""
        conn = sqlite3.connect("file:%s?mode=ro" % (db or self.db), uri=True, timeout=10)
        try:
            return conn.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
        finally:
            conn.close()


class RestartKeepsBackgroundJobs(DurableTestCase):
    """SIGTERM, then start on the same file: §6.1 replay and §3.2 handles."""

    def submit_mix(self, conn):
        """The issue's mix of background jobs, in submission order. Returns a list of dicts
        (ptype, func, unique, data, reducer, when, handle, index)."""
        now = int(time.time())
        unique64 = bytes(range(0x40, 0x80))  # 64 bytes: the limit, kept whole (§1.5)
        binary = b"\x00bin\x00ary\xff\x00" * 37 + b"\x00"
        big = bytes((i * 131 + 7) % 256 for i in range(100000))  # binary, NULs included
        specs = [
            (gw.SUBMIT_JOB_BG, b"fa", b"a-normal-1", b"a n1"),
            (gw.SUBMIT_JOB_LOW_BG, b"fa", b"a-low-1", b"a l1"),
            (gw.SUBMIT_JOB_BG, b"fa", b"", b"a empty 1"),
            (gw.SUBMIT_JOB_HIGH_BG, b"fa", b"a-high-1", b"a h1"),
            (gw.SUBMIT_JOB_BG, b"fa", b"", b"a empty 2"),
            (gw.SUBMIT_JOB_EPOCH, b"fa", b"a-epoch-future", b"a ep", now + EPOCH_DELAY),
            (gw.SUBMIT_JOB_BG, b"fa", b"", b"a empty 3"),
            (gw.SUBMIT_JOB_EPOCH, b"fa", b"a-epoch-past", b"a ep past", 1),
            (gw.SUBMIT_JOB_LOW_BG, b"fa", b"a-low-2", b"a l2"),
            (gw.SUBMIT_JOB_BG, b"fa", b"", b"a empty 4"),
            (gw.SUBMIT_JOB_HIGH_BG, b"fa", b"a-high-2", b"a h2"),
            (gw.SUBMIT_JOB_BG, b"fb", unique64, b"b 64-byte unique"),
            (gw.SUBMIT_JOB_LOW_BG, b"fb", b"b-binary", binary),
            (gw.SUBMIT_JOB_HIGH_BG, b"fb", b"\xfe\xff-binary-unique", b"\x00"),
            (gw.SUBMIT_JOB_BG, b"fb", b"b-empty-data", b""),
            (gw.SUBMIT_REDUCE_JOB_BACKGROUND, b"fb", b"b-reduce", b"reduce\x00data", None,
             b"the-reducer"),
            (gw.SUBMIT_JOB_BG, b"\xc0fn\x01bin", b"c-big", big),
            (gw.SUBMIT_JOB_EPOCH, b"fep", b"", b"epoch only fn", now + EPOCH_DELAY),
            (gw.SUBMIT_JOB_LOW_BG, b"fa", b"a-low-3", b"a l3"),
        ]
        jobs = []
        for index, spec in enumerate(specs):
            ptype, func, unique, data = spec[:4]
            when = spec[4] if len(spec) > 4 else None
            reducer = spec[5] if len(spec) > 5 else None
            handle = self.submit(conn, ptype, func, unique, data, when=when, reducer=reducer)
            jobs.append(dict(ptype=ptype, func=func, unique=unique, data=data, reducer=reducer,
                             when=when or 0, handle=handle, index=index,
                             priority=PRIORITY_OF[ptype]))
        handles = [j["handle"] for j in jobs]
        self.assertEqual(len(set(handles)), len(handles), "a handle was issued twice")
        return jobs

    @staticmethod
    def expected_order(jobs, func, due_by):
        """What one worker registered only for `func` grabs: priority, then FIFO (§3.4), due
        jobs only."""
        mine = [j for j in jobs if j["func"] == func and j["when"] <= due_by]
        return sorted(mine, key=lambda j: (j["priority"], j["index"]))

    def assertAssigned(self, got, job):
        self.assertEqual(got.handle, job["handle"], "handle not kept across restart")
        self.assertEqual((got.func, got.unique, got.data),
                         (job["func"], job["unique"], job["data"]), job["handle"])
        self.assertEqual(got.reducer, job["reducer"], "reducer of %r" % job["handle"])

    def test_every_background_job_comes_back_in_order_with_handle_data_and_reducer(self):
        server = self.start_durable()
        jobs = self.submit_mix(self.connect(server))
        # A foreground job is never written (§6.1); its client is still waiting at shutdown.
        fg = self.connect(server)
        fg_handle = self.submit(fg, gw.SUBMIT_JOB, b"fa", b"fg-only", b"fg")
        counts = collections.defaultdict(lambda: [0, 0, 0])
        for j in jobs:
            counts[j["func"]][j["priority"]] += 1
        counts[b"fa"][NORMAL] += 1  # the foreground job, before restart
        self.assertEqual(self.queued_counts(server), {f: tuple(c) for f, c in counts.items()})

        server = self.restart(server)
        counts[b"fa"][NORMAL] -= 1
        self.assertEqual(self.queued_counts(server), {f: tuple(c) for f, c in counts.items()},
                         "prioritystatus after restart")
        self.assertEqual(self.show_jobs(server), [j["handle"] for j in jobs],
                         "show jobs after restart (creation order, handles kept)")

        # The epoch-only function: its job is stored but not due yet.
        epoch_worker = self.worker(server, b"fep")
        epoch_when = max(j["when"] for j in jobs)
        self.assertLess(time.time(), epoch_when,
                        "the machine took over %ds to restart; cannot test 'not yet due'"
                        % EPOCH_DELAY)
        self.assertEqual(epoch_worker.request(gw.GRAB_JOB_ALL), res(gw.NO_JOB))

        now = int(time.time())
        workers = {}
        for func in (b"fa", b"fb", b"\xc0fn\x01bin"):
            workers[func] = self.worker(server, func)
            got = self.grab_all(workers[func])
            want = self.expected_order(jobs, func, now)
            self.assertEqual([g.handle for g in got], [j["handle"] for j in want],
                             "grab order of %r after restart" % func)
            for g, j in zip(got, want):
                self.assertAssigned(g, j)
        self.assertEqual(self.get_status(self.connect(server), fg_handle), b"0\x000\x000\x000",
                         "the foreground job must not survive a restart")

        # The future epoch jobs (one in fa, one in fep) are released by the timer, not before.
        for func in (b"fa", b"fep"):
            w = epoch_worker if func == b"fep" else workers[func]
            self.wait_noop(w, EPOCH_DELAY + 5)
            got = self.grab_all(w)
            self.assertGreaterEqual(int(time.time()), epoch_when, "epoch job handed out early")
            want = [j for j in jobs if j["func"] == func and j["when"] > now]
            self.assertEqual(len(got), 1, got)
            self.assertAssigned(got[0], want[0])

    def test_coalescing_is_rebuilt_and_new_handles_exceed_every_old_one(self):
        server = self.start_durable()
        c = self.connect(server)
        jobs = self.submit_mix(c)
        dash = self.submit(c, gw.SUBMIT_JOB_BG, b"fd", b"-", b"dash data")  # coalesces on DATA
        # One job is running at shutdown: it is queued again after restart, and still coalesces.
        running_worker = self.worker(server, b"fb")
        running = parse_assign(running_worker.request(gw.GRAB_JOB_ALL))
        # A finished job's handle must not come back either.
        finisher = self.worker(server, b"\xc0fn\x01bin")
        finished = parse_assign(finisher.request(gw.GRAB_JOB_ALL))
        finisher.work_complete(finished.handle, b"done")
        finisher.assert_quiet()
        old_max = max(handle_number(j["handle"]) for j in jobs)
        old_max = max(old_max, handle_number(dash))
        before = self.queued_counts(server)

        server = self.restart(server)
        c = self.connect(server)
        after = self.queued_counts(server)
        self.assertEqual(after[b"fd"], before[b"fd"])
        for j in jobs:
            if not j["unique"] or j["handle"] == finished.handle:
                continue
            # Same key, other priority and data: the existing job's handle (§3.3).
            again = self.submit(c, gw.SUBMIT_JOB_LOW_BG, j["func"], j["unique"], b"other")
            self.assertEqual(again, j["handle"], "unique %r did not coalesce" % j["unique"])
            fg = self.submit(c, gw.SUBMIT_JOB, j["func"], j["unique"], b"other")
            self.assertEqual(fg, j["handle"], "foreground submit of %r" % j["unique"])
        self.assertEqual(self.submit(c, gw.SUBMIT_JOB_BG, b"fd", b"-", b"dash data"), dash)
        self.assertIn(running.handle, [j["handle"] for j in jobs if j["unique"]])
        self.assertEqual(self.queued_counts(server), after, "coalesced submits created jobs")

        fresh = [self.submit(c, gw.SUBMIT_JOB_BG, b"fa", b"", b"new empty"),
                 self.submit(c, gw.SUBMIT_JOB_BG, b"fa", b"", b"new empty"),
                 self.submit(c, gw.SUBMIT_JOB_HIGH_BG, b"fnew", b"new-unique", b"x"),
                 self.submit(c, gw.SUBMIT_JOB, b"fnew", b"", b"fg")]
        self.assertEqual(len(set(fresh)), len(fresh))
        for h in fresh:
            self.assertGreater(handle_number(h), old_max,
                               "handle %r reissued or below an old one (old max %d)"
                               % (h, old_max))
        # The finished job's unique is free again: a new job, not the old handle.
        reused = self.submit(c, gw.SUBMIT_JOB_BG, finished.func, finished.unique, b"again")
        self.assertGreater(handle_number(reused), max(handle_number(h) for h in fresh))
        fresh.append(reused)

        # Coalesced submits wrote nothing: another restart shows exactly the same jobs.
        expect = self.show_jobs(server)
        expect.remove(fresh[3])  # the foreground one
        server = self.restart(server)
        self.assertEqual(self.show_jobs(server), expect)
        newest = self.submit(self.connect(server), gw.SUBMIT_JOB_BG, b"fa", b"", b"x")
        self.assertGreater(handle_number(newest), max(handle_number(h) for h in fresh))


    def test_foreground_job_joined_by_a_background_submit_is_durable(self):
        # §3.3: a background submit that coalesces onto a foreground job makes it background,
        # and durable before its JOB_CREATED. Also while the job runs.
        server = self.start_durable()
        fg = self.connect(server)
        queued = self.submit(fg, gw.SUBMIT_JOB, b"fj", b"joined-queued", b"fg data")
        running = self.submit(fg, gw.SUBMIT_JOB_HIGH, b"fj", b"joined-running", b"fg run")
        w = self.worker(server, b"fj")
        self.assertEqual(parse_assign(w.request(gw.GRAB_JOB_UNIQ)).handle, running)
        bg = self.connect(server)
        self.assertEqual(self.submit(bg, gw.SUBMIT_JOB_BG, b"fj", b"joined-queued", b"x"), queued)
        self.assertEqual(self.submit(bg, gw.SUBMIT_JOB_BG, b"fj", b"joined-running", b"y"),
                         running)
        fg.close()  # the background jobs must not go with their foreground client

        def clients_of(unique):
            return int(bg.request(gw.GET_STATUS_UNIQUE, unique).args()[-1])

        self.wait_until(lambda: clients_of(b"joined-queued") == clients_of(b"joined-running") == 0,
                        5, "the server to detach the closed foreground client")
        self.assertEqual(self.show_jobs(server), [queued, running])

        server = self.restart(server)
        got = self.grab_all(self.worker(server, b"fj"), gw.GRAB_JOB_UNIQ)
        self.assertEqual([(g.handle, g.unique, g.data) for g in got],
                         [(running, b"joined-running", b"fg run"),
                          (queued, b"joined-queued", b"fg data")])


class FinishedJobsStayFinished(DurableTestCase):
    """§6.1: rows are deleted on WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION, the retry-limit drop
    and admin cancel; a job running at shutdown keeps its row (§5.3: SIGTERM leaves durable rows
    to be replayed)."""

    def test_completed_failed_cancelled_and_dropped_jobs_do_not_come_back(self):
        server = self.start_durable("-j", "1")  # -j 1: drop at the first re-queue
        c = self.connect(server)
        names = ["complete", "fail", "exception", "cancel-queued", "cancel-running", "dropped",
                 "queued"]
        handles = {n: self.submit(c, gw.SUBMIT_JOB_BG, b"f", n.encode(), n.encode())
                   for n in names}

        w = self.worker(server, b"f")
        for name in names[:3]:
            job = parse_assign(w.request(gw.GRAB_JOB_UNIQ))
            self.assertEqual((job.unique, job.handle), (name.encode(), handles[name]))
        w.work_complete(handles["complete"], b"result")
        w.work_fail(handles["fail"])
        w.work_exception(handles["exception"], b"boom")
        w.assert_quiet()
        self.assertEqual(self.admin(server, "cancel job " + handles["cancel-queued"].decode()),
                         b"OK\r\n")
        job = parse_assign(w.request(gw.GRAB_JOB_UNIQ))
        self.assertEqual(job.unique, b"cancel-running")
        self.assertEqual(self.admin(server, "cancel job " + job.handle.decode()), b"OK\r\n")

        dropper = self.connect(server)
        dropper.can_do(b"f")
        job = parse_assign(dropper.request(gw.GRAB_JOB_UNIQ))
        self.assertEqual(job.unique, b"dropped")
        dropper.close()  # re-queue #1 with -j 1: dropped, row deleted
        self.wait_until(lambda: handles["dropped"] not in self.show_jobs(server), 5,
                        "the retry-limit drop")
        w.close()  # the cancelled running job ends with its worker
        self.wait_until(lambda: self.show_jobs(server) == [handles["queued"]], 5,
                        "only the queued job to be left")

        server = self.restart(server, "-j", "1")
        self.assertEqual(self.show_jobs(server), [handles["queued"]])
        got = self.grab_all(self.worker(server, b"f"), gw.GRAB_JOB_UNIQ)
        self.assertEqual([(g.handle, g.unique) for g in got], [(handles["queued"], b"queued")])

    def check_running_job_survives_sigterm(self, *args):
        server = self.start_durable(*args)
        c = self.connect(server)
        running = self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"running", b"r")
        queued = self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"queued", b"q")
        w = self.worker(server, b"f")
        w.work_status(parse_assign(w.request(gw.GRAB_JOB_UNIQ)).handle, b"1", b"3")
        w.assert_quiet()
        server = self.restart(server, *args)  # w still holds `running`
        self.assertEqual(self.show_jobs(server), [running, queued])
        got = self.grab_all(self.worker(server, b"f"), gw.GRAB_JOB_UNIQ)
        self.assertEqual([(g.handle, g.unique) for g in got],
                         [(running, b"running"), (queued, b"queued")])

    def test_job_running_at_sigterm_comes_back(self):
        self.check_running_job_survives_sigterm()

    def test_job_running_at_sigterm_comes_back_with_a_retry_limit(self):
        # Shutdown is not a re-queue: it must not count toward -j and drop (delete) the job.
        self.check_running_job_survives_sigterm("-j", "1")


class MemoryQueue(DurableTestCase):
    """-q none: nothing is written; handles still never go backwards (§3.2)."""

    def test_nothing_survives_a_restart_but_handles_still_increase(self):
        server = self.start_server("-q", "none", use_default_args=False)
        c = self.connect(server)
        old = [
            self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"u1", b"d"),
            self.submit(c, gw.SUBMIT_JOB_HIGH_BG, b"f", b"", b"d"),
            self.submit(c, gw.SUBMIT_JOB_EPOCH, b"f", b"ep", b"d", when=int(time.time()) + 60)]
        self.assertEqual(os.listdir(server.tmpdir).count("roundhouse.db"), 0,
                         "-q none wrote a database in its working directory")
        self.stop(server)

        server = self.start_server("-q", "none", use_default_args=False)
        self.assertEqual(self.queued_counts(server), {})
        self.assertEqual(self.show_jobs(server), [])
        c = self.connect(server)
        self.assertEqual(c.request(gw.GET_STATUS, old[0]), res(gw.STATUS_RES, old[0], 0, 0, 0, 0))
        new = self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"u1", b"d")
        self.assertGreater(handle_number(new), max(handle_number(h) for h in old))

    def test_default_queue_is_sqlite_in_the_working_directory(self):
        # Not through the fixture: the two runs must share their working directory (and port).
        port = server_fixture.free_port()
        handles = []
        for run in range(2):
            proc = self.spawn(port, log_name="log%d" % run)
            with self._connect_when_up(proc, port) as conn:
                if run == 0:
                    handles.append(self.submit(conn, gw.SUBMIT_JOB_BG, b"f", b"dflt", b"x"))
                else:
                    self.assertEqual(self.submit(conn, gw.SUBMIT_JOB_BG, b"f", b"dflt", b"y"),
                                     handles[0], "job did not survive in ./roundhouse-PORT.db")
            self.stop_spawned(proc)
            self.assertTrue(os.path.isfile(os.path.join(self.dir, "roundhouse-%d.db" % port)))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "roundhouse.db")))


class OneServerPerDatabase(DurableTestCase):
    """A server owns its database file for its lifetime; default names carry the port
    (doc/protocol.md §5.1 --libsqlite3-db, §6.4)."""

    def read(self, path):
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")

    def test_two_default_servers_in_one_directory_on_different_ports(self):
        ports = [server_fixture.free_port(), server_fixture.free_port()]
        while ports[1] == ports[0]:
            ports[1] = server_fixture.free_port()
        procs = [self.spawn(p) for p in ports]
        handles = {}
        for port, proc in zip(ports, procs):
            with self._connect_when_up(proc, port) as conn:
                # Durable submits work on both (they failed with QUEUE_ERROR on a shared file).
                handles[port] = [self.submit(conn, gw.SUBMIT_JOB_BG, b"f%d" % port, b"u%d" % i,
                                             b"d") for i in range(3)]
        for port, proc in zip(ports, procs):
            self.stop_spawned(proc)
            self.assertTrue(os.path.isfile(os.path.join(self.dir, "roundhouse-%d.db" % port)))
        # Each restarted server replays its own jobs and none of the other's.
        for port in ports:
            proc = self.spawn(port, log_name="again-%d" % port)
            with self._connect_when_up(proc, port) as conn:
                conn.can_do(b"f%d" % port)
                for other in ports:
                    conn.can_do(b"f%d" % other)
                got = sorted(a.handle for a in self.grab_all(conn))
            self.assertEqual(got, sorted(handles[port]))
            self.stop_spawned(proc)

    def test_second_server_on_the_same_database_refuses_to_start(self):
        first = self.start_durable()
        with self.connect(first) as c:
            held = self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"keep", b"d")
        port = server_fixture.free_port()
        second = self.spawn(port, "-q", "libsqlite3", "--libsqlite3-db", self.db)
        self.assertEqual(second.wait(PROCESS_TIMEOUT), 1)
        want = "database %s is in use by another server (pid %d" % (self.db, first.pid)
        self.assertIn(want, self.read(second.log_path + ".stderr"))
        self.assertIn(want, self.read(second.log_path))
        self.assertIn(self.db + ".lock", self.read(second.log_path))
        # The first server was not disturbed: its job is still there and it still writes.
        with self.connect(first) as c:
            self.submit(c, gw.SUBMIT_JOB_BG, b"f", b"more", b"d")
        self.assertEqual(self.queued_counts(first), {b"f": (0, 2, 0)})
        # The same file under another spelling is the same file.
        other = self.spawn(server_fixture.free_port(), "-q", "libsqlite3", "--libsqlite3-db",
                           os.path.join(self.dir, ".", "queue.db"), log_name="spelling")
        self.assertEqual(other.wait(PROCESS_TIMEOUT), 1)
        self.assertIn("is in use by another server (pid %d" % first.pid,
                      self.read(other.log_path))

        # kill -9 leaves no stale lock: the next server starts at once and has the jobs.
        self.crash(first)
        third = self.start_durable()
        w = self.worker(third, b"f")
        self.assertIn(held, [a.handle for a in self.grab_all(w)])
        with open(self.db + ".lock") as f:
            self.assertEqual(f.read(), "%d\n" % third.pid)

    def test_default_server_refuses_a_port_twin_in_the_same_directory(self):
        # Two default-named servers on the same port cannot both listen anyway, but one on
        # another address family or a port that is reused must not share the file either.
        port = server_fixture.free_port()
        first = self.spawn(port)
        self._connect_when_up(first, port).close()
        twin = self.spawn(port, "--listen", "127.0.0.2", log_name="twin")
        self.assertEqual(twin.wait(PROCESS_TIMEOUT), 1)
        self.assertIn("database roundhouse-%d.db is in use by another server (pid %d"
                      % (port, first.pid), self.read(twin.log_path))

    def test_old_default_database_is_adopted_under_the_new_name(self):
        # A queue left by an older roundhouse in ./roundhouse.db (written here with an explicit
        # --libsqlite3-db, which is the same file format and name).
        port = server_fixture.free_port()
        old = self.spawn(port, "-q", "libsqlite3", "--libsqlite3-db", "roundhouse.db",
                         log_name="old")
        with self._connect_when_up(old, port) as conn:
            h = self.submit(conn, gw.SUBMIT_JOB_BG, b"f", b"legacy", b"d")
        self.crash_spawned(old)  # kill -9: the job may still be in the WAL only
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "roundhouse.db")))

        new = self.spawn(port, log_name="new")
        with self._connect_when_up(new, port) as conn:
            conn.can_do(b"f")
            self.assertEqual([a.handle for a in self.grab_all(conn)], [h])
        self.assertIn("renamed roundhouse.db to roundhouse-%d.db" % port, self.read(new.log_path))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "roundhouse.db")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "roundhouse.db-wal")))
        self.stop_spawned(new)

        # A server on another port starts with an empty file of its own.
        port2 = server_fixture.free_port()
        other = self.spawn(port2, log_name="other")
        with self._connect_when_up(other, port2) as conn:
            conn.can_do(b"f")
            self.assertEqual(self.grab_all(conn), [])
        self.stop_spawned(other)

    def test_old_default_database_in_use_is_left_alone(self):
        port = server_fixture.free_port()
        holder = self.spawn(port, "-q", "libsqlite3", "--libsqlite3-db", "roundhouse.db",
                            log_name="holder")
        with self._connect_when_up(holder, port) as conn:
            self.submit(conn, gw.SUBMIT_JOB_BG, b"f", b"held", b"d")
        port2 = server_fixture.free_port()
        new = self.spawn(port2, log_name="new")
        with self._connect_when_up(new, port2) as conn:
            conn.can_do(b"f")
            self.assertEqual(self.grab_all(conn), [])
            self.submit(conn, gw.SUBMIT_JOB_BG, b"f", b"mine", b"d")  # its own file works
        self.assertIn("roundhouse.db is not adopted as roundhouse-%d.db" % port2,
                      self.read(new.log_path))
        self.assertTrue(os.path.isfile(os.path.join(self.dir, "roundhouse.db")))
        self.stop_spawned(new)
        self.stop_spawned(holder)

    def crash_spawned(self, proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Crash(DurableTestCase):
    """kill -9: every acknowledged job is delivered at least once after restart (§6.1)."""

    SUBMIT_SECONDS = 2.0   # sustained submission before the kill
    # ... or until this much was acknowledged (about 400,000 jobs), so that draining them keeps
    # the suite bounded however fast the server gets.
    MAX_RECORD_BYTES = 20 << 20
    CLIENTS = 4
    FUNCTIONS = 3
    WINDOW = 64

    def run_loadgen(self, server, *args):
        if not os.access(loadgen_bin(), os.X_OK):
            self.skipTest("rh-loadgen not found at %s (set RH_LOADGEN)" % loadgen_bin())
        cmd = [loadgen_bin(), "--port", str(server.port)] + [str(a) for a in args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc

    def finish_loadgen(self, proc, timeout=PROCESS_TIMEOUT + 60):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail("rh-loadgen did not finish: %s" % err.decode(errors="replace"))
        try:
            report = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.fail("rh-loadgen printed no JSON (status %s): %s"
                      % (proc.returncode, err.decode(errors="replace")))
        return proc.returncode, report

    def drain(self, server, record, idle_ms):
        return self.run_loadgen(server, "--drain", "--workers", 4, "--functions", self.FUNCTIONS,
                                "--idle-exit-ms", idle_ms, "--record", record)

    def crash_under_load(self, with_workers):
        """Kills the server SUBMIT_SECONDS into a pipelined submission by CLIENTS connections
        (and, `with_workers`, 4 workers completing jobs meanwhile), restarts it, drains it, and
        returns the counts after asserting that no acknowledged job was lost."""
        acked_path = os.path.join(self.dir, "acked.txt")
        before_path = os.path.join(self.dir, "delivered-before.txt")
        after_path = os.path.join(self.dir, "delivered-after.txt")
        server = self.start_durable()
        if with_workers:
            # Long idle limit: they work until the crash takes their connections away.
            early = self.drain(server, before_path, 60000)
        submitter = self.run_loadgen(
            server, "--submit-only", "--clients", self.CLIENTS, "--window", self.WINDOW,
            "--functions", self.FUNCTIONS, "--priority", "mixed", "--unique", "seq",
            "--payload", 100, "--seconds", 30, "--record", acked_path)
        self.wait_until(lambda: os.path.exists(acked_path) and os.path.getsize(acked_path) > 0,
                        10, "the first acknowledged submission")
        loaded_at = time.monotonic()
        while (time.monotonic() - loaded_at < self.SUBMIT_SECONDS
               and os.path.getsize(acked_path) < self.MAX_RECORD_BYTES):
            time.sleep(0.05)
        submit_seconds = time.monotonic() - loaded_at
        self.assertIsNone(submitter.poll(), "the load ended before the kill")
        self.crash(server)
        status, report = self.finish_loadgen(submitter)
        self.assertEqual(status, 1, report)  # it saw the server go away mid-run
        self.assertEqual(report["error_packets"], 0, report)
        before = []
        if with_workers:
            status, early_report = self.finish_loadgen(early)
            self.assertEqual(early_report["error_packets"], 0, early_report)
            before = read_record(before_path)

        server = self.start_durable()
        status, drain_report = self.finish_loadgen(self.drain(server, after_path, 1500))
        self.assertEqual(status, 0, drain_report)

        acked = read_record(acked_path)
        after = read_record(after_path)
        acked_by_handle = dict(acked)
        self.assertEqual(len(acked_by_handle), len(acked), "a handle was acknowledged twice")
        self.assertEqual(len(acked), report["created"])
        delivered = dict(before)
        delivered.update(after)
        after_counts = collections.Counter(h for h, _ in after)
        before_set = {h for h, _ in before}
        counts = {
            "acknowledged": len(acked),
            "delivered_before_crash": len(before),
            "delivered_after_restart": len(after),
            "lost": sorted(set(acked_by_handle) - set(delivered)),
            "changed_unique": [h for h, u in acked if h in delivered and delivered[h] != u],
            "redelivered": len(before_set & set(after_counts)),
            "twice_after_restart": sum(n - 1 for n in after_counts.values() if n > 1),
            "stored_unacknowledged": len(set(delivered) - set(acked_by_handle)),
        }
        log("crash under load (%d clients, window %d, %.1f s%s): %d acknowledged, %d delivered "
            "before the crash, %d after restart; lost %d; re-delivered %d (running or completed "
            "but not yet deleted at the crash); stored but never acknowledged %d (allowed)"
            % (self.CLIENTS, self.WINDOW, submit_seconds,
               ", 4 workers" if with_workers else ", no workers", counts["acknowledged"],
               counts["delivered_before_crash"], counts["delivered_after_restart"],
               len(counts["lost"]), counts["redelivered"], counts["stored_unacknowledged"]))
        self.assertGreater(len(acked), 1000, "too little load to mean anything")
        self.assertEqual(counts["lost"][:10], [],
                         "%d acknowledged jobs lost in the crash" % len(counts["lost"]))
        self.assertEqual(counts["changed_unique"][:10], [])
        self.assertEqual(counts["twice_after_restart"], 0)
        # At most CLIENTS * WINDOW submits were unanswered when the server died.
        self.assertLessEqual(counts["stored_unacknowledged"], self.CLIENTS * self.WINDOW)

        # The drain completed every job; a clean restart must find none of them.
        server = self.restart(server)
        self.assertEqual(self.queued_counts(server), {})
        return counts

    def test_kill_9_during_pipelined_submission_loses_no_acknowledged_job(self):
        counts = self.crash_under_load(with_workers=False)
        self.assertEqual(counts["redelivered"], 0, "no job was running at the crash")

    def test_kill_9_during_submission_and_work_loses_no_acknowledged_job(self):
        counts = self.crash_under_load(with_workers=True)
        self.assertGreater(counts["delivered_before_crash"], 0, "the workers did nothing")

    def test_kill_9_while_workers_hold_jobs_brings_running_jobs_back(self):
        server = self.start_durable()
        c = self.connect(server)
        # Pipelined: 300 submits in one write, then the 300 acknowledgements.
        uniques = [b"mj-%03d" % i for i in range(300)]
        c.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"mj", u, b"data " + u)
                            for u in uniques))
        handles = {}
        for u in uniques:
            pkt = c.recv_packet()
            self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
            handles[pkt.payload] = u
        workers = [self.worker(server, b"mj") for _ in range(3)]
        running, completed = {}, {}
        for i, w in enumerate(workers):
            for _ in range(4):  # a connection may hold several jobs
                job = parse_assign(w.request(gw.GRAB_JOB_UNIQ))
                running[job.handle] = job.unique
            w.work_status(job.handle, b"1", b"2")
        # Worker 0 finishes two of its jobs just before the crash (their deletes may or may not
        # have been committed: either outcome is allowed, and counted).
        for h in list(running)[:2]:
            workers[0].work_complete(h, b"ok")
            completed[h] = running.pop(h)
        workers[0].assert_quiet()
        self.crash(server)

        server = self.start_durable()
        got = self.grab_all(self.worker(server, b"mj"), gw.GRAB_JOB_UNIQ)
        delivered = collections.Counter(g.handle for g in got)
        for g in got:
            self.assertEqual(g.unique, handles[g.handle])
            self.assertEqual(g.data, b"data " + g.unique)
        missing_running = sorted(set(running) - set(delivered))
        missing_queued = sorted(set(handles) - set(running) - set(completed) - set(delivered))
        completed_again = sorted(set(completed) & set(delivered))
        log("crash with running jobs: %d acknowledged, %d running at the crash (all back: %s), "
            "%d completed just before it of which %d re-delivered, %d delivered in all"
            % (len(handles), len(running), not missing_running, len(completed),
               len(completed_again), len(got)))
        self.assertEqual(missing_running, [], "running jobs lost in the crash")
        self.assertEqual(missing_queued, [], "queued jobs lost in the crash")
        self.assertEqual(max(delivered.values()), 1, "a job was handed out twice")
        self.assertEqual(set(delivered) - set(handles), set())
        # The handle counter was never persisted past these; still no reuse after a crash.
        newest = self.submit(self.connect(server), gw.SUBMIT_JOB_BG, b"mj", b"", b"new")
        self.assertGreater(handle_number(newest), max(handle_number(h) for h in handles))


class ShutdownIsTheLastThing(DurableTestCase):
    """"shutdown complete" is logged once the database is closed, so the exit follows at once."""

    def test_database_is_closed_when_shutdown_complete_is_logged(self):
        port = server_fixture.free_port()
        cmd = [server_fixture.roundhouse_bin(), "--port", str(port), "--listen", "127.0.0.1",
               "-q", "libsqlite3", "--libsqlite3-db", self.db, "--log-file", "stderr",
               "--verbose", "NOTICE"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=self.dir)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        conn = None
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while conn is None:
            try:
                conn = gw.connect(port)
            except OSError:
                self.assertIsNone(proc.poll(), "roundhouse exited at start-up")
                self.assertLess(time.monotonic(), deadline, "roundhouse did not start")
                time.sleep(0.05)
        # Enough durable work that the WAL holds pages when the store is closed.
        for i in range(2000):
            conn.send(gw.SUBMIT_JOB_BG, b"shut", b"", b"x" * 1000)
        self.assertEqual(len(conn.recv_packets(2000, timeout=PROCESS_TIMEOUT)), 2000)
        self.assertTrue(os.path.exists(self.db + "-wal"))
        proc.send_signal(signal.SIGTERM)
        lines = []
        for line in proc.stderr:
            lines.append(line.decode(errors="replace"))
            if "shutdown complete" in lines[-1]:
                # SQLite removes the WAL when the last connection closes: the store is closed.
                self.assertFalse(os.path.exists(self.db + "-wal"),
                                 "shutdown complete was logged before the database was closed")
                break
        rest = proc.stderr.read().decode(errors="replace")
        self.assertEqual(proc.wait(PROCESS_TIMEOUT), 0, "".join(lines) + rest)
        self.assertTrue(lines and "shutdown complete" in lines[-1], "".join(lines))
        self.assertEqual(rest, "", "shutdown complete must be the last line")


class UnusableDatabase(DurableTestCase):
    """Start-up refuses a file it cannot use, says why, exits non-zero and leaves it alone."""

    def start_expecting_refusal(self, db):
        cmd = [server_fixture.roundhouse_bin(), "--port", "0", "--listen", "127.0.0.1",
               "-q", "libsqlite3", "--libsqlite3-db", db, "--log-file", "stderr"]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=PROCESS_TIMEOUT, cwd=self.dir)
        except subprocess.TimeoutExpired:
            self.fail("roundhouse started on an unusable database %s" % db)
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        self.assertNotEqual(proc.returncode, 0, text)
        self.assertIn(db, text, "the message must name the file")
        return text

    def assertRefusedAndUntouched(self, db, *reasons):
        # The lock file beside the database (<db>.lock, the server's pid) is taken before the
        # database is opened and stays, as it always does; everything else must be untouched.
        def snapshot():
            return {k: v for k, v in file_snapshot(self.dir).items() if not k.endswith(".lock")}

        before = snapshot()
        text = self.start_expecting_refusal(db)
        for reason in reasons:
            self.assertIn(reason, text)
        self.assertEqual(snapshot(), before, "start-up changed the directory")
        return text

    def test_directory_is_refused(self):
        os.mkdir(self.db)
        self.assertRefusedAndUntouched(self.db, "cannot open", "is a directory, not a file")

    def test_missing_directory_is_named_in_one_roundhouse_line(self):
        missing = os.path.join(self.dir, "no-such-dir")
        db = os.path.join(missing, "deeper", "queue.db")
        text = self.assertRefusedAndUntouched(
            db, "roundhouse: cannot open queue database %s (--libsqlite3-db): directory %s does "
            "not exist" % (db, missing))
        self.assertEqual(text.count("cannot open queue database"), 1, text)

    def test_path_through_a_file_is_named(self):
        blocker = os.path.join(self.dir, "plain-file")
        with open(blocker, "w") as f:
            f.write("x")
        db = os.path.join(blocker, "queue.db")
        self.assertRefusedAndUntouched(db, "%s is not a directory" % blocker)

    def test_text_file_is_refused_and_unchanged(self):
        with open(self.db, "wb") as f:
            f.write(b"this is not a database\n" * 100)
        self.assertRefusedAndUntouched(self.db, "not a usable SQLite database")

    def test_random_bytes_file_is_refused_and_unchanged(self):
        with open(self.db, "wb") as f:
            f.write(bytes((i * 7919 + 13) % 251 for i in range(65536)))
        self.assertRefusedAndUntouched(self.db, "not a usable SQLite database")

    def test_newer_schema_version_is_refused_and_unchanged(self):
        # The version lives in roundhouse_meta.schema_version (storage/sqlite_schema.cc), not in
        # PRAGMA user_version.
        server = self.start_durable()
        h = self.submit(self.connect(server), gw.SUBMIT_JOB_BG, b"f", b"keep", b"x")
        self.stop(server)
        conn = sqlite3.connect(self.db)
        ours = conn.execute(
            "SELECT value FROM roundhouse_meta WHERE key = 'schema_version'").fetchone()[0]
        conn.execute("UPDATE roundhouse_meta SET value = 99 WHERE key = 'schema_version'")
        conn.commit()
        conn.close()
        self.assertRefusedAndUntouched(self.db, "schema version 99", "newer")
        # Back to our version: the job is still there.
        conn = sqlite3.connect(self.db)
        conn.execute("UPDATE roundhouse_meta SET value = ? WHERE key = 'schema_version'", (ours,))
        conn.commit()
        conn.close()
        server = self.start_durable()
        self.assertEqual(self.show_jobs(server), [h])

    def test_database_on_read_only_filesystem_is_refused_and_unchanged(self):
        mount = mount_tmpfs(self, "4m")
        db = os.path.join(mount, "ro.db")
        server = self.start_durable(db=db)
        self.submit(self.connect(server), gw.SUBMIT_JOB_BG, b"f", b"u", b"x")
        self.stop(server)
        remount(self, mount, "ro")
        before = file_snapshot(mount)
        self.start_expecting_refusal(db)
        self.assertEqual(file_snapshot(mount), before)


def mount_tmpfs(test, size):
    """A fresh tmpfs of `size` (mount(8) syntax), unmounted at cleanup; skips without root."""
    if os.geteuid() != 0:
        test.skipTest("needs root to mount a tmpfs")
    mount = tempfile.mkdtemp(prefix="rh-tmpfs-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                           mount], capture_output=True, timeout=PROCESS_TIMEOUT)
    if proc.returncode != 0:
        os.rmdir(mount)
        test.skipTest("mount -t tmpfs not permitted: %s" % proc.stderr.decode().strip())

    def unmount():
        if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", mount], capture_output=True)
        os.rmdir(mount)

    test.addCleanup(unmount)  # registered before any server on it starts: runs after they stop
    return mount


def remount(test, mount, mode):
    proc = subprocess.run(["mount", "-o", "remount,%s" % mode, mount], capture_output=True,
                          timeout=PROCESS_TIMEOUT)
    test.assertEqual(proc.returncode, 0, proc.stderr)


def fill_filesystem(directory):
    """Write a file until the filesystem has no free block left; returns its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            block = b"\xee" * chunk
            while True:
                try:
                    if os.write(fd, block) < chunk:
                        break
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return path


class FailedCommit(DurableTestCase):
    """§6.1: a failed durable write answers ERROR QUEUE_ERROR and acknowledges nothing."""

    BATCH = 16
    DATA = 8192

    def submit_batch(self, conn, tag, start):
        """BATCH pipelined background submits; returns {unique: handle or error payload}."""
        uniques = [b"%s-%04d" % (tag, start + i) for i in range(self.BATCH)]
        conn.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"df", u, u * (self.DATA // len(u)))
                               for u in uniques))
        out = {}
        for u in uniques:
            pkt = conn.recv_packet(timeout=15)
            if pkt.type == gw.JOB_CREATED:
                out[u] = ("ok", pkt.payload)
            else:
                self.assertEqual(pkt.type, gw.ERROR, pkt)
                code, text = pkt.args(2)
                self.assertEqual(code, b"QUEUE_ERROR", pkt)
                self.assertTrue(text, "QUEUE_ERROR without a message")
                out[u] = ("error", text)
        return out

    def fill_until_refused(self, conn, mount, results):
        """Fills the filesystem, then submits batches until one is refused entirely."""
        filler = fill_filesystem(mount)
        errors = 0
        for round_no in range(40):  # the WAL's slack absorbs a few commits before one fails
            batch = self.submit_batch(conn, b"full", round_no * self.BATCH)
            results.update(batch)
            errors = sum(kind == "error" for kind, _ in batch.values())
            if errors == self.BATCH:
                break
        self.assertEqual(errors, self.BATCH, "submissions kept succeeding on a full disk")
        self.assertEqual(conn.echo(), res(gw.ECHO_RES, b"sync"), "server stopped answering")
        return filler

    def test_disk_full_fails_submissions_then_recovers_and_restart_shows_only_acknowledged(self):
        mount = mount_tmpfs(self, "2m")
        db = os.path.join(mount, "full.db")
        server = self.start_durable(db=db)
        c = self.connect(server)
        results = self.submit_batch(c, b"before", 0)
        self.assertTrue(all(kind == "ok" for kind, _ in results.values()))
        w = self.worker(server, b"df")
        finished = parse_assign(w.request(gw.GRAB_JOB_UNIQ))

        filler = self.fill_until_refused(c, mount, results)
        message = next(t for k, t in results.values() if k == "error")
        log("disk full: QUEUE_ERROR %r" % message)
        # Its delete cannot be committed now; it must be kept and committed with a later batch.
        w.work_complete(finished.handle, b"done")
        w.assert_quiet()

        os.unlink(filler)
        after = self.submit_batch(c, b"after", 0)
        self.assertTrue(all(kind == "ok" for kind, _ in after.values()),
                        "submissions still fail after space was freed: %r" % after)
        results.update(after)

        server = self.restart(server, db=db)
        got = self.grab_all(self.worker(server, b"df"), gw.GRAB_JOB_UNIQ)
        acked = {u: h for u, (kind, h) in results.items() if kind == "ok"}
        refused = {u for u, (kind, _) in results.items() if kind == "error"}
        log("disk full: %d acknowledged, %d refused with QUEUE_ERROR, %d back after restart"
            % (len(acked), len(refused), len(got)))
        del acked[finished.unique]
        self.assertEqual({g.unique: g.handle for g in got}, acked)
        self.assertEqual(len(got), len(acked), "a job came back twice")
        for g in got:
            self.assertEqual(g.data, g.unique * (self.DATA // len(g.unique)))

    def test_sigterm_while_disk_is_full_exits_and_keeps_every_acknowledged_job(self):
        mount = mount_tmpfs(self, "2m")
        db = os.path.join(mount, "full.db")
        server = self.start_durable(db=db)
        c = self.connect(server)
        results = self.submit_batch(c, b"before", 0)
        filler = self.fill_until_refused(c, mount, results)
        server.stop()  # SIGTERM; SIGKILL after the fixture's 5 s
        self.assertIsNotNone(server.exit_code)
        self.assertGreaterEqual(server.exit_code, 0,
                                "killed: shutdown hung on the full disk\n" + server.final_log)
        log("SIGTERM on a full disk: exit status %d" % server.exit_code)

        os.unlink(filler)
        server = self.start_durable(db=db)
        got = self.grab_all(self.worker(server, b"df"), gw.GRAB_JOB_UNIQ)
        acked = {u: h for u, (kind, h) in results.items() if kind == "ok"}
        self.assertEqual({g.unique: g.handle for g in got}, acked)


class GearmandImport(DurableTestCase):
    """§6.4 end to end: gearmand 1.1.20 writes the file, roundhouse imports it exactly once."""

    def setUp(self):
        super().setUp()
        binary = os.environ.get("GEARMAND_BIN", server_fixture.GEARMAND_DEFAULT_BIN)
        if not os.access(binary, os.X_OK):
            self.skipTest("gearmand not found at %s" % binary)

    def gearman_cli(self, port, *args):
        if not shutil.which("gearman"):
            return None
        proc = subprocess.run(["gearman", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                              capture_output=True, timeout=PROCESS_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc

    def test_gearmand_table_is_imported_with_fresh_handles_once(self):
        gearmand = self.start_server("-q", "libsqlite3", "--libsqlite3-db=%s" % self.db,
                                     kind="gearmand")
        c = self.connect(gearmand)
        when = int(time.time()) + EPOCH_DELAY + 2
        binary = b"bin\x00\x01\x02\xff\x00end"
        jobs = [  # (func, unique, data, priority, when)
            (b"ga", b"ga-normal", b"n1", NORMAL, 0),
            (b"ga", b"ga-low", b"l1", LOW, 0),
            (b"ga", b"ga-high", b"h1", HIGH, 0),
            (b"ga", b"", b"empty unique", NORMAL, 0),
            (b"gb", b"gb-binary", binary, NORMAL, 0),
            (b"gep", b"gep-1", b"epoch", NORMAL, when),
        ]
        ptype_of = {HIGH: gw.SUBMIT_JOB_HIGH_BG, NORMAL: gw.SUBMIT_JOB_BG,
                    LOW: gw.SUBMIT_JOB_LOW_BG}
        gearmand_handles = []
        for func, unique, data, prio, at in jobs:
            ptype = gw.SUBMIT_JOB_EPOCH if at else ptype_of[prio]
            gearmand_handles.append(self.submit(c, ptype, func, unique, data, when=at))
        if self.gearman_cli(gearmand.port, "-f", "gc", "-b", "-u", "gc-cli", "from the cli"):
            jobs.append((b"gc", b"gc-cli", b"from the cli", NORMAL, 0))
        self.wait_until(lambda: self.table_rows("gearman_queue") == len(jobs), 10,
                        "gearmand to write %d rows" % len(jobs))
        self.stop(gearmand)  # gearmand exits 0 on SIGTERM too
        self.assertEqual(self.table_rows("gearman_queue"), len(jobs))

        server = self.start_durable()
        self.assertEqual(self.table_rows("gearman_queue"), 0, "imported rows left behind")
        self.assertEqual(self.table_rows("roundhouse_jobs"), len(jobs))
        handles = self.show_jobs(server)
        self.assertEqual(len(handles), len(jobs))
        self.assertFalse(set(handles) & set(gearmand_handles), "gearmand handles reused")
        expected_counts = collections.defaultdict(lambda: [0, 0, 0])
        for func, _, _, prio, _ in jobs:
            expected_counts[func][prio] += 1
        self.assertEqual(self.queued_counts(server),
                         {f: tuple(v) for f, v in expected_counts.items()})

        # Second start: the same jobs with the same handles, nothing imported again.
        server = self.restart(server)
        self.assertEqual(self.show_jobs(server), handles, "second start changed the jobs")
        self.assertEqual(self.table_rows("roundhouse_jobs"), len(jobs))
        self.assertEqual(self.table_rows("gearman_queue"), 0)
        fresh = self.submit(self.connect(server), gw.SUBMIT_JOB_BG, b"ga", b"", b"new")
        self.assertGreater(handle_number(fresh), max(handle_number(h) for h in handles))

        epoch_worker = self.worker(server, b"gep")
        self.assertLess(time.time(), when, "too slow to test 'not yet due'")
        self.assertEqual(epoch_worker.request(gw.GRAB_JOB_UNIQ), res(gw.NO_JOB))
        for func in sorted({j[0] for j in jobs if not j[4]}):
            got = self.grab_all(self.worker(server, func), gw.GRAB_JOB_UNIQ)
            want = [j for j in jobs if j[0] == func]
            if func == b"ga":
                want.append((b"ga", b"", b"new", NORMAL, 0))
            want.sort(key=lambda j: j[3])  # stable: FIFO within a priority
            self.assertEqual([(g.func, g.unique, g.data) for g in got],
                             [(f, u, d) for f, u, d, _, _ in want], func)
            for g in got:
                self.assertIn(g.handle, handles + [fresh])
        self.wait_noop(epoch_worker, EPOCH_DELAY + 6)
        got = self.grab_all(epoch_worker, gw.GRAB_JOB_UNIQ)
        self.assertGreaterEqual(int(time.time()), when)
        self.assertEqual([(g.func, g.unique, g.data) for g in got],
                         [(b"gep", b"gep-1", b"epoch")])


if __name__ == "__main__":
    unittest.main()