"""gearmand's HTTP protocol (-r http, --http-port; doc/protocol.md §5.4): the parts where
roundhouse decides differently from gearmand 1.1.20 (doc/gearman-differences.md, "HTTP
protocol") and the option changes around it. What both servers answer alike is compared byte for
byte in test_differential.py (HttpDifferential).

Every test starts its own roundhouse with -r http on free loopback ports.
"""

import os
import socket
import threading
import time
import unittest

import gearman_wire as gw
from server_fixture import HOST, ServerTestCase, free_port, roundhouse_only


def exchange(port, raw, timeout=10.0):
    """Sends `raw` and reads until the server closes. Returns (head, body) as bytes."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            out += data
    head, _, body = out.partition(b"\r\n\r\n")
    return head, body


def post(path, body=b"", headers=b""):
    return (b"POST " + path + b" HTTP/1.0\r\n" + headers +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b": ")
        if key.lower() == name.lower():
            return value
    return None


@roundhouse_only("gearmand's HTTP replies differ here (doc/gearman-differences.md)")
class GearmanHttp(ServerTestCase):
    def start(self, *args, **kw):
        self.http_port = free_port()
        self.server = self.start_server("-r", "http", "--http-port", str(self.http_port), *args,
                                        **kw)
        return self.server

    def worker(self, functions, script):
        """A worker answering each job with script(handle, fn, data) -> packets (a list of
        (type, args...) tuples)."""
        w = gw.Worker(HOST, self.server.port, functions,
                      lambda job: script(job.handle, job.function, job.data))
        self.addCleanup(w.stop)
        return w

    def test_work_data_chunks_lead_the_body(self):
        self.start()
        self.worker([b"chunks"], lambda h, fn, data: [(gw.WORK_DATA, h, b"one,"),
                                                      (gw.WORK_DATA, h, b"two,"),
                                                      (gw.WORK_COMPLETE, h, b"end")])
        head, body = exchange(self.http_port, post(b"/chunks", b"x"))
        self.assertEqual(header(head, b"X-Gearman-Command"), b"WORK_COMPLETE")
        self.assertEqual(body, b"one,two,end")
        self.assertEqual(header(head, b"Content-Length"), b"11")

    def test_status_and_warning_do_not_end_the_reply(self):
        self.start()
        self.worker([b"talky"], lambda h, fn, data: [(gw.WORK_STATUS, h, b"1", b"2"),
                                                     (gw.WORK_WARNING, h, b"careful"),
                                                     (gw.WORK_COMPLETE, h, b"result")])
        head, body = exchange(self.http_port, post(b"/talky", b"x"))
        self.assertTrue(head.startswith(b"HTTP/1.0 200 OK\r\n"), head)
        self.assertEqual(header(head, b"X-Gearman-Command"), b"WORK_COMPLETE")
        self.assertEqual(body, b"result")

    def test_priority_headers_order_background_jobs(self):
        self.start()
        for priority, data in ((b"low", b"L"), (None, b"N"), (b"high", b"H")):
            headers = b"X-Gearman-Background: true\r\n"
            if priority:
                headers += b"X-Gearman-Priority: " + priority + b"\r\n"
            head, _ = exchange(self.http_port, post(b"/prio", data, headers))
            self.assertEqual(header(head, b"X-Gearman-Command"), b"JOB_CREATED")
        with self.server.connect() as c:
            self.assertEqual(c.admin(b"status\n"), b"prio\t3\t0\t0\n.\n")
        w = self.worker([b"prio"], lambda h, fn, data: [(gw.WORK_COMPLETE, h, b"")])
        deadline = time.monotonic() + 10
        while len(w.jobs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([job.data for job in w.jobs], [b"H", b"N", b"L"])

    def test_same_unique_coalesces_two_foreground_requests(self):
        self.start()
        replies = []
        threads = [threading.Thread(target=lambda: replies.append(exchange(
            self.http_port, post(b"/once", b"d", b"X-Gearman-Unique: same\r\n"))))
            for _ in range(2)]
        for t in threads:
            t.start()
        with self.server.connect() as c:
            deadline = time.monotonic() + 10
            while c.admin(b"status\n") != b"once\t1\t0\t0\n.\n" and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(c.admin(b"status\n"), b"once\t1\t0\t0\n.\n")
        w = self.worker([b"once"], lambda h, fn, data: [(gw.WORK_COMPLETE, h, b"r")])
        for t in threads:
            t.join(10)
        self.assertEqual(len(replies), 2)
        self.assertEqual(len(w.jobs), 1)
        self.assertEqual(header(replies[0][0], b"X-Gearman-Job-Handle"),
                         header(replies[1][0], b"X-Gearman-Job-Handle"))
        self.assertEqual([body for _, body in replies], [b"r", b"r"])

    def test_chunked_body_is_the_workload(self):
        self.start()
        self.worker([b"echo"], lambda h, fn, data: [(gw.WORK_COMPLETE, h, data)])
        raw = (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        head, body = exchange(self.http_port, raw)
        self.assertEqual(body, b"abcde")

    def test_durable_background_job_is_stored_before_the_reply(self):
        db = os.path.join(self.start_tmp(), "q.db")
        self.start("-q", "libsqlite3", "--libsqlite3-db", db, use_default_args=False)
        head, _ = exchange(self.http_port, post(b"/later", b"kept",
                                                b"X-Gearman-Background: true\r\n"))
        self.assertEqual(header(head, b"X-Gearman-Command"), b"JOB_CREATED")
        handle = header(head, b"X-Gearman-Job-Handle")
        self.server.stop()
        self.start("-q", "libsqlite3", "--libsqlite3-db", db, use_default_args=False)
        with self.server.connect() as c:
            self.assertEqual(c.admin(b"status\n"), b"later\t1\t0\t0\n.\n")
            c.send(gw.CAN_DO, b"later")
            c.send(gw.GRAB_JOB)
            self.assertEqual(c.recv_packet(), gw.res(gw.JOB_ASSIGN, handle, b"later", b"kept"))

    def start_tmp(self):
        import tempfile
        import shutil
        path = tempfile.mkdtemp(prefix="rh-gearman-http-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def test_graceful_shutdown_answers_waiting_requests_and_refuses_new_ones(self):
        self.start()
        replies = []
        t = threading.Thread(target=lambda: replies.append(
            exchange(self.http_port, post(b"/slow", b"d"))))
        t.start()
        worker = self.connect(self.server)  # before the Gearman listener closes too
        with self.server.connect() as c:
            deadline = time.monotonic() + 10
            while c.admin(b"status\n") != b"slow\t1\t0\t0\n.\n" and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(c.admin(b"shutdown graceful\n"), b"OK\r\n")
        deadline = time.monotonic() + 10
        refused = False
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.http_port), timeout=1).close()
            except OSError:
                refused = True
                break
            time.sleep(0.05)
        self.assertTrue(refused, "the HTTP listener is still open during a graceful shutdown")
        worker.send(gw.CAN_DO, b"slow")
        handle, _, _ = worker.request(gw.GRAB_JOB).args(3)
        worker.send(gw.WORK_COMPLETE, handle, b"finished")
        t.join(15)
        self.assertEqual(replies[0][1], b"finished")
        self.assertIsNotNone(self.server.wait_exit(15))


@roundhouse_only("access control is roundhouse's (doc/acl.md)")
class AccessControl(ServerTestCase):
    def test_http_submissions_need_the_submit_grant(self):
        import tempfile
        fd, path = tempfile.mkstemp(prefix="rh-http-acl-", suffix=".conf")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write("[acl loopback-plain]\nsubmit = open:*\nadmin = read\n")
        http_port = free_port()
        server = self.start_server("--config-file", path, "-r", "http", "--http-port",
                                   str(http_port))
        background = b"X-Gearman-Background: true\r\n"
        head, _ = exchange(http_port, post(b"/secret", b"x", background))
        self.assertTrue(head.startswith(b"HTTP/1.0 200 OK\r\n"), head)
        self.assertEqual(header(head, b"X-Gearman-Job-Handle"), b"INVALID_FUNCTION_NAME")
        self.assertEqual(header(head, b"X-Gearman-Command"), b"ERROR")
        head, _ = exchange(http_port, post(b"/open:a", b"x", background))
        self.assertEqual(header(head, b"X-Gearman-Command"), b"JOB_CREATED")
        with server.connect() as c:
            self.assertEqual(c.admin(b"status\n"), b"open:a\t1\t0\t0\n.\n")
        self.assertIn("acl: denied submit to identity=loopback-plain", server.logs())


@roundhouse_only("roundhouse's options")
class Options(ServerTestCase):
    def test_http_port_without_protocol_is_warned_and_not_bound(self):
        port = free_port()
        server = self.start_server("--http-port", str(port))
        self.assertIn("--http-port has no effect without -r http", server.logs())
        with self.assertRaises(OSError):
            socket.create_connection((HOST, port), timeout=2).close()

    def test_status_api_has_its_own_port_beside_the_gearman_http_port(self):
        http_port, status_port = free_port(), free_port()
        server = self.start_server("-r", "http", "--http-port", str(http_port),
                                   "--status-port", str(status_port), "--http-listen", HOST)
        self.assertIn("--http-listen is deprecated", server.logs())
        head, body = exchange(status_port, b"GET /api/status HTTP/1.0\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertIn(b'"version"', body)
        # On --http-port the same path is a job for function "api/status".
        head, _ = exchange(http_port, b"GET /api/status HTTP/1.0\r\n"
                                      b"X-Gearman-Background: true\r\n\r\n")
        self.assertEqual(header(head, b"X-Gearman-Command"), b"JOB_CREATED")
        head, _ = exchange(http_port, post(b"/", b""))
        self.assertTrue(head.startswith(b"HTTP/1.0 404 NOT_FOUND"), head)


if __name__ == "__main__":
    unittest.main()
