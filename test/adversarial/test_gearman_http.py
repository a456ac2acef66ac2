"""Abusive peers on gearmand's HTTP protocol port (-r http, --http-port; doc/protocol.md §5.4):
bodies and heads at and past their limits, tricklers and silent peers (--http-request-timeout),
one address holding many connections (--http-max-connections-per-address), a peer that does not
read its reply, and a peer that keeps sending while its job runs. Peers use distinct loopback
source addresses (127.0.0.N) where a test needs several "machines". gearmand has none of these
limits, so every test is roundhouse-only.

The port shares the Gearman port's server-wide limits (SharedLimits): a reply owed to an HTTP
submitter counts in --max-memory and --max-output-queue exactly as output owed to a Gearman
client does, and accept() failures on it (out of descriptors) are logged at most once a second
and counted in /metrics while the server keeps serving.
"""

import math
import os
import resource
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import gearman_wire as gw  # noqa: E402
import server_fixture as sf  # noqa: E402
from broker_checks import closed_by_server, http_get, parse_prometheus, rss_bytes  # noqa: E402

REQUEST_TIMEOUT = 2  # --http-request-timeout given to every server here
PER_ADDRESS = 4      # --http-max-connections-per-address
MAX_BODY = 4096      # --max-packet-body
MAX_REPLY = 16 << 20  # --max-pending-output: caps a reply (WORK_DATA chunks and the result)
CHUNK = 4000         # WORK_DATA chunk (under MAX_BODY with its handle)


def connect_from(source, port, timeout=10, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((sf.HOST, port))
    return s


def read_all(s):
    """Everything until the server closes (a reset ends it too)."""
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def post(path, body=b"", headers=b""):
    return (b"POST " + path + b" HTTP/1.0\r\n" + headers +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def status_line(reply):
    return reply.split(b"\r\n", 1)[0]


def echo_job(data_fn):
    """The per-job callback of a worker whose data_fn(data) is the result, or a list of WORK_DATA
    chunks followed by the (empty) result. Packets on the Gearman port are capped by
    --max-packet-body, so big replies are made of chunks."""

    def on_job(job):
        result = data_fn(job.data)
        if not isinstance(result, list):
            return [(gw.WORK_COMPLETE, job.handle, result)]
        return ([(gw.WORK_DATA, job.handle, chunk) for chunk in result] +
                [(gw.WORK_COMPLETE, job.handle, b"")])

    return on_job


class GearmanHttpAbuse(sf.ServerTestCase):
    def setUp(self):
        if sf.reference_mode():
            self.skipTest("roundhouse-only: gearmand's HTTP port has no limits")
        self.http_port = sf.free_port()
        self.server = self.start_server(
            "-r", "http", "--http-port", str(self.http_port),
            "--http-request-timeout", str(REQUEST_TIMEOUT),
            "--http-max-connections-per-address", str(PER_ADDRESS),
            "--max-packet-body", str(MAX_BODY), "--max-pending-output", str(MAX_REPLY))

    def worker(self, functions, data_fn=lambda d: d):
        w = gw.Worker(sf.HOST, self.server.port, functions, echo_job(data_fn))
        self.addCleanup(w.stop)
        return w

    def exchange(self, raw, source="127.0.0.1"):
        with connect_from(source, self.http_port) as s:
            s.sendall(raw)
            return read_all(s)

    def gearman_status(self):
        with self.server.connect() as c:
            return c.admin(b"status\n")

    def assert_gearman_port_answers(self):
        with self.server.connect() as c:
            self.assertEqual(c.echo(b"alive"), gw.res(gw.ECHO_RES, b"alive"))

    def test_body_at_the_limit_is_served_and_one_byte_more_is_413(self):
        w = self.worker([b"size"], lambda d: b"%d" % len(d))
        reply = self.exchange(post(b"/size", b"a" * MAX_BODY))
        self.assertEqual(status_line(reply), b"HTTP/1.0 200 OK")
        self.assertTrue(reply.endswith(b"\r\n\r\n%d" % MAX_BODY), reply)
        reply = self.exchange(post(b"/size", b"a" * (MAX_BODY + 1)))
        self.assertEqual(reply, b"HTTP/1.0 413 REQUEST_ENTITY_TOO_LARGE\r\n"
                                b"Server: roundhouse/" + reply.split(b"Server: roundhouse/")[1])
        self.assertIn(b"Content-Length: 0\r\n\r\n", reply)
        self.assertEqual(len(w.jobs), 1)

    def test_a_huge_content_length_is_refused_before_any_body_arrives(self):
        s = connect_from("127.0.0.1", self.http_port)
        self.addCleanup(s.close)
        s.sendall(b"POST /echo HTTP/1.0\r\nContent-Length: 10737418240\r\n\r\n")
        self.assertEqual(status_line(read_all(s)), b"HTTP/1.0 413 REQUEST_ENTITY_TOO_LARGE")
        self.assertEqual(self.gearman_status(), b".\n")

    def test_a_head_over_16_kib_is_431(self):
        raw = b"GET /echo HTTP/1.0\r\nX-Pad: " + b"p" * (16 * 1024) + b"\r\n\r\n"
        self.assertEqual(status_line(self.exchange(raw)),
                         b"HTTP/1.0 431 REQUEST_HEADER_FIELDS_TOO_LARGE")
        self.assertEqual(self.gearman_status(), b".\n")

    def test_tricklers_and_silent_peers_get_408_and_are_closed(self):
        silent = connect_from("127.0.0.2", self.http_port, timeout=REQUEST_TIMEOUT + 10)
        trickler = connect_from("127.0.0.3", self.http_port, timeout=REQUEST_TIMEOUT + 10)
        self.addCleanup(silent.close)
        self.addCleanup(trickler.close)
        trickler.sendall(b"POST /echo HTTP/1.0\r\nX-Slow: ")
        stop = threading.Event()
        sent = []

        def trickle():
            while not stop.wait(0.2):
                try:
                    trickler.sendall(b"a")
                    sent.append(1)
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            self.assertEqual(status_line(read_all(trickler)), b"HTTP/1.0 408 REQUEST_TIMEOUT")
            self.assertEqual(status_line(read_all(silent)), b"HTTP/1.0 408 REQUEST_TIMEOUT")
        finally:
            stop.set()
            t.join(5)
        # The trickler kept sending all along: the deadline counts from the accept.
        self.assertGreaterEqual(len(sent), 3)
        self.assert_gearman_port_answers()
        self.assertEqual(self.gearman_status(), b".\n")

    def test_one_address_holds_at_most_its_cap_and_others_are_still_served(self):
        held = [connect_from("127.0.0.5", self.http_port) for _ in range(PER_ADDRESS)]
        for s in held:
            self.addCleanup(s.close)
            s.sendall(post(b"/nobody", b"x"))  # foreground, no worker: each one waits
        deadline = time.monotonic() + 10
        while self.gearman_status() != b"nobody\t1\t0\t0\n.\n" and time.monotonic() < deadline:
            time.sleep(0.05)  # the same data coalesces: one job, four clients
        self.assertEqual(self.gearman_status(), b"nobody\t1\t0\t0\n.\n")
        extra = self.exchange(post(b"/nobody", b"y"), source="127.0.0.5")
        self.assertEqual(status_line(extra), b"HTTP/1.0 503 SERVICE_UNAVAILABLE")
        other = self.exchange(post(b"/nobody", b"z", b"X-Gearman-Background: true\r\n"),
                              source="127.0.0.6")
        self.assertEqual(status_line(other), b"HTTP/1.0 200 OK")
        # The held ones are answered when a worker comes.
        self.worker([b"nobody"])
        for s in held:
            self.assertEqual(status_line(read_all(s)), b"HTTP/1.0 200 OK")
        # Their slots are free again.
        reply = self.exchange(post(b"/nobody", b"w"), source="127.0.0.5")
        self.assertEqual(status_line(reply), b"HTTP/1.0 200 OK")

    def test_a_peer_that_does_not_read_its_reply_is_closed(self):
        chunks = 3000  # 12 MB: more than the socket buffers hold, under MAX_REPLY
        size = chunks * CHUNK
        self.worker([b"big"], lambda d: [b"r" * CHUNK] * chunks)
        s = connect_from("127.0.0.7", self.http_port, timeout=30, rcvbuf=4096)
        self.addCleanup(s.close)
        s.sendall(post(b"/big", b"x"))
        # Not read for longer than the write deadline (REQUEST_TIMEOUT + 1 s per MiB).
        time.sleep(REQUEST_TIMEOUT + size / (1 << 20) + 3)
        got = read_all(s)
        self.assertLess(len(got), size, "the whole reply was delivered to a peer that never read")
        self.assertTrue(got.startswith(b"HTTP/1.0 200 OK"), got[:100])
        self.assert_gearman_port_answers()

    def test_a_reply_over_the_output_cap_is_502(self):
        self.worker([b"huge"], lambda d: [b"r" * CHUNK] * (MAX_REPLY // CHUNK + 1))
        self.assertEqual(status_line(self.exchange(post(b"/huge", b"x"))),
                         b"HTTP/1.0 502 BAD_GATEWAY")

    def test_sending_more_while_the_job_waits_closes_and_abandons_it(self):
        s = connect_from("127.0.0.8", self.http_port)
        self.addCleanup(s.close)
        s.sendall(post(b"/nobody", b"x"))
        deadline = time.monotonic() + 10
        while self.gearman_status() != b"nobody\t1\t0\t0\n.\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.gearman_status(), b"nobody\t1\t0\t0\n.\n")
        try:
            for _ in range(64):
                s.sendall(b"g" * 4096)
        except OSError:
            pass
        self.assertEqual(read_all(s), b"")
        deadline = time.monotonic() + 10
        while self.gearman_status() != b".\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.gearman_status(), b".\n")

    def test_clients_leaving_in_a_loop_leave_nothing_behind(self):
        for i in range(200):
            s = connect_from("127.0.0.9", self.http_port)
            s.sendall(post(b"/nobody", b"%d" % i))
            s.close()
        deadline = time.monotonic() + 10
        while self.gearman_status() != b".\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.gearman_status(), b".\n")
        # And the per-address count went back to zero: the cap admits a full set again.
        w = self.worker([b"echo"])
        for _ in range(PER_ADDRESS + 1):
            self.assertEqual(status_line(self.exchange(post(b"/echo", b"k"),
                                                       source="127.0.0.9")),
                             b"HTTP/1.0 200 OK")
        self.assertEqual(len(w.jobs), PER_ADDRESS + 1)


MIB = 1 << 20


def quiet_gearman_client(port, func, unique):
    """A Gearman client that submits one foreground job and then never reads (small receive
    buffer, so the kernel takes little of what the server sends)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((sf.HOST, port))
    s.sendall(gw.encode(gw.SUBMIT_JOB, func, unique, b"data"))
    return s


class SharedLimits(sf.ServerTestCase):
    """What the HTTP protocol port shares with the Gearman port: the memory budget, the output
    cap, and the accept() failure path."""

    def setUp(self):
        if sf.reference_mode():
            self.skipTest("roundhouse-only: gearmand has no memory budget or output cap")

    def start(self, *args):
        self.http_port = sf.free_port()
        self.status_port = sf.free_port()
        self.server = self.start_server(
            "-r", "http", "--http-port", str(self.http_port),
            "--status-port", str(self.status_port), "--status-listen", sf.HOST, *args,
            kind="roundhouse")
        return self.server

    def metrics(self):
        return parse_prometheus(http_get(self.status_port, "/metrics")[2])

    def metric(self, name):
        return self.metrics()[("roundhouse_" + name, ())]

    def wait_metric(self, name, predicate, timeout=20):
        deadline = time.monotonic() + timeout * sf.TIMEOUT_SCALE
        value = self.metric(name)
        while not predicate(value) and time.monotonic() < deadline:
            time.sleep(0.05)
            value = self.metric(name)
        return value

    def worker(self, functions, on_job):
        w = gw.Worker(sf.HOST, self.server.port, functions, on_job)
        self.addCleanup(w.stop)
        return w

    def gearman_probe(self, size):
        """A background SUBMIT of `size` bytes: JOB_CREATED's handle, or the ERROR's code."""
        with self.server.connect(timeout=30) as c:
            pkt = c.request(gw.SUBMIT_JOB_BG, b"probe", b"", b"p" * size)
        return pkt.payload if pkt.type == gw.JOB_CREATED else pkt.args(2)[0]

    def http_probe(self, size):
        """A background POST of `size` bytes: the X-Gearman-Job-Handle of the reply."""
        with connect_from("127.0.0.1", self.http_port, timeout=30) as s:
            s.sendall(post(b"/probe", b"p" * size, b"X-Gearman-Background: true\r\n"))
            reply = read_all(s)
        self.assertEqual(status_line(reply), b"HTTP/1.0 200 OK", reply[:200])
        return reply.split(b"X-Gearman-Job-Handle: ", 1)[1].split(b"\r\n", 1)[0]

    def test_a_non_reading_submitters_reply_counts_in_max_memory_like_a_gearman_clients(self):
        reply_size = 16 * MIB  # the kernel holds at most a few MiB of it (tcp_wmem, rcvbuf)
        probe = 4 * MIB
        # Unsent output of one non-reader (>= 12 MiB) plus a probe passes the budget; the probe
        # alone, or two of them, do not.
        self.start("--max-memory", "14M")
        chunk = b"r" * MIB
        self.worker([b"big"], lambda job: [(gw.WORK_DATA, job.handle, chunk)] * 16 +
                    [(gw.WORK_COMPLETE, job.handle, b"")])
        held = {}
        for kind in ("gearman", "http"):
            if kind == "gearman":
                peer = quiet_gearman_client(self.server.port, b"big", kind.encode())
            else:
                peer = connect_from("127.0.0.1", self.http_port, rcvbuf=4096)
                peer.sendall(post(b"/big", b"x"))
            self.addCleanup(peer.close)
            held[kind] = self.wait_metric("unsent_output_bytes",
                                          lambda v: v >= reply_size - 4 * MIB)
            self.assertGreaterEqual(held[kind], reply_size - 4 * MIB,
                                    "%s: the reply is not counted as unsent output" % kind)
            # At the budget both ports refuse new work alike, with QUEUE_ERROR.
            self.assertEqual(self.gearman_probe(probe), b"QUEUE_ERROR",
                             "%s non-reader: a Gearman submission" % kind)
            self.assertEqual(self.http_probe(probe), b"QUEUE_ERROR",
                             "%s non-reader: an HTTP submission" % kind)
            # The non-reader leaves: its bytes leave the budget, and work is taken again.
            peer.close()
            self.assertLess(self.wait_metric("unsent_output_bytes", lambda v: v < MIB), MIB, kind)
            self.assertTrue(self.gearman_probe(probe).startswith(b"H:"), kind)
            self.assertTrue(self.http_probe(probe).startswith(b"H:"), kind)
            with self.server.connect() as c:  # the probes' jobs go, their bytes with them
                c.can_do(b"probe")
                for _ in range(2):
                    handle = c.grab().args(3)[0]
                    c.work_complete(handle, b"")
                c.echo()
        # The same reply weighs the same from either port (what the kernel took aside).
        self.assertLess(abs(held["http"] - held["gearman"]), 4 * MIB, held)
        self.assertEqual(self.metric("memory_refusals_total"), 4.0)
        self.assertIn("memory budget reached (--max-memory", self.server.read_logs())

    def test_a_reply_past_max_output_queue_closes_the_submitter_like_a_gearman_client(self):
        # An HTTP reply is collected before any of it can be read, so the cap applies to what
        # the submitter is owed whether it reads or not; --max-pending-output (the 502) is
        # larger here, so the cap is what ends it.
        cap = 2 * MIB
        self.start("--max-output-queue", str(cap), "--max-pending-output", str(256 * MIB))
        chunk = b"s" * (256 * 1024)
        chunks = 160  # 40 MiB per job: without the cap, held twice over for the reply
        self.worker([b"stream"], lambda job: [(gw.WORK_DATA, job.handle, chunk)] * chunks +
                    [(gw.WORK_COMPLETE, job.handle, b"end")])
        before = rss_bytes(self.server.pid)
        client = quiet_gearman_client(self.server.port, b"stream", b"g")
        self.addCleanup(client.close)
        submitter = connect_from("127.0.0.1", self.http_port, timeout=30, rcvbuf=4096)
        self.addCleanup(submitter.close)
        submitter.sendall(post(b"/stream", b"h"))
        self.assertTrue(closed_by_server(client, 30 * sf.TIMEOUT_SCALE),
                        "the non-reading Gearman client was not closed")
        # Closed as if it had left: no reply at all.
        self.assertEqual(read_all(submitter), b"")
        self.assertEqual(self.wait_metric("output_overflows_total", lambda v: v >= 2.0), 2.0)
        if sf.RSS_BOUNDS:
            growth = rss_bytes(self.server.pid) - before
            self.assertLess(growth, 16 * MIB, "RSS grew %d bytes" % growth)
        self.assertIn("output passed --max-output-queue", self.server.read_logs())
        # Both jobs went on without their clients and ended; nothing is left queued.
        deadline = time.monotonic() + 20 * sf.TIMEOUT_SCALE
        with self.server.connect() as c:
            while c.admin(b"status\n") != b"stream\t0\t0\t1\n.\n" and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(c.admin(b"status\n"), b"stream\t0\t0\t1\n.\n")
        self.assertEqual(self.metric("unsent_output_bytes"), 0.0)

    def test_accept_failures_on_the_http_port_are_logged_once_a_second_and_counted(self):
        server = self.start("--http-request-timeout", "60")
        worker = self.worker([b"echo"], lambda job: [(gw.WORK_COMPLETE, job.handle, job.data)])
        self.assertEqual(self.metric("accept_errors_total"), 0.0)
        # Out of descriptors: the server may open four more than it holds now.
        soft, hard = resource.prlimit(server.pid, resource.RLIMIT_NOFILE)
        held_fds = len(os.listdir("/proc/%d/fd" % server.pid))
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (held_fds + 4, hard))
        self.addCleanup(resource.prlimit, server.pid, resource.RLIMIT_NOFILE, (soft, hard))
        socks = []
        started = time.monotonic()
        for burst in range(2):
            if burst:
                time.sleep(1.2)  # the second burst is in the next interval
            for _ in range(40):
                s = connect_from("127.0.0.1", self.http_port)
                self.addCleanup(s.close)
                socks.append(s)
        time.sleep(0.5)
        elapsed = time.monotonic() - started
        dropped = sum(1 for s in socks if closed_by_server(s, 0.05))
        resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (soft, hard))
        for s in socks:
            s.close()
        self.assertGreaterEqual(dropped, 40, "the descriptor limit did not bite")
        self.assertLess(dropped, len(socks), "no connection was accepted at all")
        # The server keeps serving, on both ports.
        reply = self.exchange(post(b"/echo", b"still here"))
        self.assertTrue(reply.endswith(b"\r\n\r\nstill here"), reply)
        self.assertEqual(len(worker.jobs), 1)
        self.assertGreaterEqual(self.metric("accept_errors_total"), float(dropped))
        failed = ":%d failed: too many open files" % self.http_port
        lines = [line for line in server.read_logs().splitlines() if failed in line]
        self.assertGreaterEqual(len(lines), 2, "one line per interval at least")
        self.assertLessEqual(len(lines), math.ceil(elapsed) + 1,
                             "%d failures logged in %d lines over %.1f s"
                             % (dropped, len(lines), elapsed))
        self.assertTrue(any("more in the last second" in line for line in lines), lines)

    def exchange(self, raw):
        with connect_from("127.0.0.1", self.http_port) as s:
            s.sendall(raw)
            return read_all(s)


if __name__ == "__main__":
    unittest.main()
