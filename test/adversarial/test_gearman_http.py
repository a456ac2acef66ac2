"""Abusive peers on gearmand's HTTP protocol port (-r http, --http-port; doc/protocol.md §5.4):
bodies and heads at and past their limits, tricklers and silent peers (--http-request-timeout),
one address holding many connections (--http-max-connections-per-address), a peer that does not
read its reply, and a peer that keeps sending while its job runs. Peers use distinct loopback
source addresses (127.0.0.N) where a test needs several "machines". gearmand has none of these
limits, so every test is roundhouse-only.
"""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import gearman_wire as gw  # noqa: E402
import server_fixture as sf  # noqa: E402

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


class Echo:
    """A worker answering every job of `functions`: data_fn(data) is the result, or a list of
    WORK_DATA chunks followed by the (empty) result. Packets on the Gearman port are capped by
    --max-packet-body, so big replies are made of chunks."""

    def __init__(self, port, functions, data_fn=lambda d: d):
        self.conn = gw.Connection(sf.HOST, port, timeout=60)
        for fn in functions:
            self.conn.send(gw.CAN_DO, fn)
        self.conn.echo()
        self.jobs = 0
        self.data_fn = data_fn
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        c = self.conn
        try:
            while True:
                c.send(gw.GRAB_JOB)
                p = c.recv_packet()
                if p.type == gw.NO_JOB:
                    c.send(gw.PRE_SLEEP)
                    c.recv_packet()
                    continue
                if p.type != gw.JOB_ASSIGN:
                    continue
                handle, _, data = p.args(3)
                self.jobs += 1
                result = self.data_fn(data)
                if isinstance(result, list):
                    for chunk in result:
                        c.send(gw.WORK_DATA, handle, chunk)
                    result = b""
                c.send(gw.WORK_COMPLETE, handle, result)
        except (OSError, ValueError, AttributeError, gw.WireError):
            pass

    def stop(self):
        self.conn.close()
        self.thread.join(5)


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
        w = Echo(self.server.port, functions, data_fn)
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
        self.assertEqual(w.jobs, 1)

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
        self.assertEqual(w.jobs, PER_ADDRESS + 1)


if __name__ == "__main__":
    unittest.main()
