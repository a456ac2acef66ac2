"""Large replies (issue 12, requirement 3): admin `status`, `show jobs` / `show unique jobs`,
`workers`, /api/status and /metrics over 200k functions or jobs are streamed a slice per loop
turn (doc/protocol.md §4.4), so

  - another client is answered while a big reply is still in progress: its reader stops reading
    after the first bytes, and the reply is far larger than what the kernel buffers can hold,
    so its last byte cannot have been sent when the other client's ECHO is answered; the server
    also says it holds only about a slice for that reader (roundhouse_unsent_output_bytes), not
    the reply;
  - the reply is complete and correct once read (lines counted, JSON parsed, Prometheus text
    parsed);
  - readers that never read cost bounded memory, not the reply's size each;
  - a reader that disconnects mid-reply leaves the server healthy (its listing is freed).

Ordering, never wall time. Sizes scale down under the sanitizer build (names grow instead, so
the replies still exceed the kernel's buffers)."""

import json
import socket
import unittest

import gearman_wire as gw
import server_fixture as sf
from broker_checks import BrokerCase, http_get, parse_prometheus, rss_bytes

FUNCTIONS = 40000 if sf.SANITIZED else 200000
NAME_PAD = 300 if sf.SANITIZED else 60  # bytes per name: each reply is > 10 MB
JOBS = 30000 if sf.SANITIZED else 150000
WAIT = 60 * sf.TIMEOUT_SCALE
# What the kernel may hold of one reply whatever the reader does: the server's send buffer at
# its autotuning maximum plus the small receive buffer the stalled reader asks for.
with open("/proc/sys/net/ipv4/tcp_wmem") as f:
    KERNEL_BYTES = int(f.read().split()[2]) + 64 * 1024
SLICE = 64 * 1024  # server/reply_producer.h kReplySliceBytes


def name(i):
    return b"fn-%07d-" % i + b"n" * NAME_PAD


def stalled_reader(port, request, first=1024):
    """Connects with a tiny receive buffer, sends `request`, reads `first` bytes of the reply and
    then stops reading. Returns (socket, bytes read)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT)
    s.connect((sf.HOST, port))
    s.sendall(request)
    got = b""
    while len(got) < first:
        chunk = s.recv(first - len(got))
        if not chunk:
            raise AssertionError("reply ended after %d bytes" % len(got))
        got += chunk
    return s, got


def read_until(s, got, done):
    """Reads into a bytearray (appending is linear) until `done(buffer)` or EOF."""
    buf = bytearray(got)
    while not done(buf):
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def read_to_close(s, got):
    return read_until(s, got, lambda _: False)


def count_at_least(token, n):
    """A done() for read_until: `token` seen `n` times (counted incrementally)."""
    state = {"seen": 0, "pos": 0}

    def done(buf):
        # Re-scan from a little before the last end, so a token split across reads is counted.
        start = max(0, state["pos"] - len(token) + 1)
        state["seen"] += bytes(buf[start:]).count(token)
        state["pos"] = len(buf)
        return state["seen"] >= n
    return done


def admin_listing(port, command):
    """An admin listing read straight from the socket (large ones too)."""
    with socket.create_connection((sf.HOST, port), timeout=WAIT) as s:
        s.sendall(command + b"\n")
        return read_until(s, b"", lambda g: g.endswith(b"\n.\n") or g == b".\n")


class LargeReplies(BrokerCase):
    def setUp(self):
        super().setUp()
        self.start_with_http()

    def create_functions(self, count=FUNCTIONS):
        with gw.Connection(sf.HOST, self.server.port, timeout=WAIT) as c:
            step = 20000
            for start in range(0, count, step):
                n = min(step, count - start)
                c.send_raw(b"".join(b"create function " + name(start + i) + b"\n"
                                    for i in range(n)))
                got = read_until(c.sock, b"", count_at_least(b"OK\r\n", n))
                self.assertEqual(got.count(b"OK\r\n"), n)

    def unsent_output(self):
        _, _, body = http_get(self.server.http_port, "/metrics", timeout=WAIT)
        return parse_prometheus(body)[("roundhouse_unsent_output_bytes", ())]

    def assert_answered_meanwhile(self, reader, expected_size):
        """While `reader` does not read, another client is served, and the server holds about
        a slice for the reader, not its reply."""
        if not sf.SANITIZED:  # (there the sizes are smaller; the server-side bound remains)
            self.assertGreater(expected_size, 2 * KERNEL_BYTES,
                               "the reply must not fit in the kernel's buffers")
        with self.connect(timeout=WAIT) as other:
            self.assertEqual(other.echo(b"meanwhile"), gw.res(gw.ECHO_RES, b"meanwhile"))
            # The last byte of the big reply cannot have left: it is larger than all the
            # kernel can hold for a reader that stopped. And the rest is not built either.
            held = self.unsent_output()
            self.assertLess(held, 4 * SLICE + 1024 * 1024, "held for the stalled reader")
            self.assertEqual(other.echo(b"again"), gw.res(gw.ECHO_RES, b"again"))

    # ---- admin

    def test_status_is_streamed_complete_and_others_are_answered_meanwhile(self):
        self.create_functions()
        expected = FUNCTIONS * (len(name(0)) + len(b"\t0\t0\t0\n")) + 2
        reader, got = stalled_reader(self.server.port, b"status\n")
        self.assert_answered_meanwhile(reader, expected)
        got = read_until(reader, got, lambda g: g.endswith(b"\n.\n"))
        reader.close()
        lines = got.split(b"\n")
        self.assertEqual(lines[-2:], [b".", b""])
        self.assertEqual(len(got), expected)
        body = lines[:-2]
        self.assertEqual(len(body), FUNCTIONS)
        # In byte order of name, each exactly once.
        self.assertEqual(body, [name(i) + b"\t0\t0\t0" for i in range(FUNCTIONS)])

    def test_show_jobs_streamed_and_listings_survive_changes_between_slices(self):
        unique_pad = b"u" * 56  # uniques of up to 64 bytes
        handles = []
        with self.connect(timeout=WAIT) as c:
            step = 10000
            for start in range(0, JOBS, step):
                n = min(step, JOBS - start)
                c.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"jobs", b"%d-" % (start + i) +
                                              unique_pad, b"x") for i in range(n)))
                for pkt in c.recv_packets(n, timeout=WAIT):
                    self.assertEqual(pkt.type, gw.JOB_CREATED)
                    handles.append(pkt.payload)
        expected = sum(len(b"%d-" % i + unique_pad) + 1 for i in range(JOBS)) + 2
        reader, got = stalled_reader(self.server.port, b"show unique jobs\n")
        self.assert_answered_meanwhile(reader, expected)
        # Change the jobs while the listing is paused: every 50th job is cancelled (queued, so
        # freed at once: some already listed, most not), and new ones come.
        cancelled = set(range(0, JOBS, 50))
        with self.connect(timeout=WAIT) as c:
            c.send_raw(b"".join(b"cancel job " + handles[i] + b"\n" for i in sorted(cancelled)))
            got_ok = read_until(c.sock, b"", count_at_least(b"OK\r\n", len(cancelled)))
            self.assertEqual(got_ok.count(b"OK\r\n"), len(cancelled))
            c.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"jobs", b"new-%d" % i, b"x")
                                for i in range(100)))
            for pkt in c.recv_packets(100, timeout=WAIT):
                self.assertEqual(pkt.type, gw.JOB_CREATED)
        got = read_until(reader, got, lambda g: g.endswith(b"\n.\n"))
        reader.close()
        lines = got.split(b"\n")[:-2]
        # Every job alive throughout is listed exactly once; the others at most once; no line
        # is damaged.
        self.assertEqual(len(lines), len(set(lines)))
        survivors = {b"%d-" % i + unique_pad for i in range(JOBS) if i not in cancelled}
        self.assertLessEqual(survivors, set(lines))
        allowed = {b"%d-" % i + unique_pad for i in range(JOBS)} | {
            b"new-%d" % i for i in range(100)}
        self.assertLessEqual(set(lines), allowed)

        # `show jobs`, read at once: one line per live job.
        reply = admin_listing(self.server.port, b"show jobs")
        rows = reply.split(b"\n")[:-2]
        self.assertEqual(len(rows), JOBS - len(cancelled) + 100)
        self.assertTrue(all(r.count(b"\t") == 3 and r.endswith(b"\t0\t0\t1") for r in rows))

    def test_workers_listing_resumes_by_key(self):
        # More workers than one look-up takes (512), so the listing resumes after the last
        # (fd, serial); two disconnect and one attaches between the look-ups' slices.
        count = 600
        conns = []
        for i in range(count):
            c = gw.Connection(sf.HOST, self.server.port, timeout=WAIT)
            self.addCleanup(c.close)
            c.send(gw.CAN_DO, b"w%d" % i)
            conns.append(c)
        conns[-1].sync(timeout=WAIT)
        for c in conns[::50]:
            c.sync(timeout=WAIT)
        reply = admin_listing(self.server.port, b"workers")
        rows = reply.split(b"\n")[:-2]
        self.assertEqual(len(rows), count)
        fds = [int(r.split(b" ")[0]) for r in rows]
        self.assertEqual(fds, sorted(fds))
        self.assertEqual(sorted(r.split(b" : ")[1] for r in rows),
                         sorted(b"w%d" % i for i in range(count)))
        status, _, body = http_get(self.server.http_port, "/api/workers", timeout=WAIT)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)["workers"]), count)

    def test_a_reader_that_leaves_mid_reply_leaves_the_server_healthy(self):
        self.create_functions()
        for _ in range(5):
            reader, _ = stalled_reader(self.server.port, b"status\n")
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            reader.close()  # a reset, mid-reply
            h, _ = stalled_reader(self.server.http_port,
                                  b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
            h.close()
        with self.connect(timeout=WAIT) as c:
            self.assertEqual(c.echo(b"ok"), gw.res(gw.ECHO_RES, b"ok"))
        reply = admin_listing(self.server.port, b"status")
        self.assertEqual(reply.count(b"\n"), FUNCTIONS + 1)
        # Nothing is held for the readers that left.
        self.assertLess(self.unsent_output(), SLICE)
        status, _, body = http_get(self.server.http_port, "/api/status", timeout=WAIT)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)["functions"]), FUNCTIONS)

    # ---- HTTP

    def test_api_status_and_metrics_are_streamed_and_complete(self):
        self.create_functions()
        # A stalled /api/status reader; the status port and the Gearman port answer meanwhile.
        reader, got = stalled_reader(self.server.http_port,
                                     b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: chunked\r\n", got.split(b"\r\n\r\n")[0] + b"\r\n")
        status, _, small = http_get(self.server.http_port, "/api/jobs?limit=1", timeout=WAIT)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(small)["matched"], 0)
        with self.connect(timeout=WAIT) as other:
            self.assertEqual(other.echo(b"x"), gw.res(gw.ECHO_RES, b"x"))
        # /metrics meanwhile, whole and valid, with the capped series.
        status, _, body = http_get(self.server.http_port, "/metrics", timeout=WAIT)
        self.assertEqual(status, 200)
        samples = parse_prometheus(body)
        self.assertEqual(samples[("roundhouse_functions", ())], FUNCTIONS)
        workers = {k: v for k, v in samples.items() if k[0] == "roundhouse_function_workers"}
        self.assertEqual(len(workers), 101)  # --metrics-max-functions 100, plus other="true"
        # The stalled document, read now: chunked, complete, consistent.
        got = read_until(reader, got, lambda g: g.endswith(b"\r\n0\r\n\r\n"))
        reader.close()
        _, chunked = got.split(b"\r\n\r\n", 1)
        doc = dechunk(chunked)
        data = json.loads(doc)
        self.assertEqual(len(data["functions"]), FUNCTIONS)
        self.assertEqual(data["totals"]["functions"], FUNCTIONS)
        self.assertEqual([f["name"] for f in data["functions"][:2]],
                         [name(0).decode(), name(1).decode()])
        # HTTP/1.0: no chunking, the body ends with the connection.
        s = socket.create_connection((sf.HOST, self.server.http_port), timeout=WAIT)
        s.sendall(b"GET /api/status HTTP/1.0\r\n\r\n")
        raw = read_to_close(s, b"")
        s.close()
        head, body = raw.split(b"\r\n\r\n", 1)
        self.assertNotIn(b"Transfer-Encoding", head)
        self.assertIn(b"Connection: close", head)
        self.assertEqual(len(json.loads(body)["functions"]), FUNCTIONS)

    @unittest.skipUnless(sf.RSS_BOUNDS, "RSS bounds are asserted in the plain build only")
    def test_readers_that_never_read_cost_bounded_memory(self):
        self.create_functions()
        status_size = FUNCTIONS * (len(name(0)) + 7) + 2
        _, _, doc = http_get(self.server.http_port, "/api/status", timeout=WAIT)
        before = rss_bytes(self.server.pid)
        readers = []
        for _ in range(8):
            readers.append(stalled_reader(self.server.port, b"status\n")[0])
            readers.append(stalled_reader(
                self.server.http_port, b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")[0])
        with self.connect(timeout=WAIT) as c:  # every reader got its first slice by now
            c.echo(b"x")
        grown = rss_bytes(self.server.pid) - before
        unbounded = 8 * (status_size + len(doc))
        print("\n  16 stalled readers of a %d KB status and a %d KB /api/status: RSS grew %d KB "
              "(whole replies: %d KB)" % (status_size >> 10, len(doc) >> 10, grown >> 10,
                                          unbounded >> 10))
        # Each reader holds about a slice, not its reply.
        self.assertLess(grown, 16 * 4 * SLICE + 8 * 1024 * 1024)
        self.assertLess(grown, unbounded // 20)
        for r in readers:
            r.close()


def dechunk(data):
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2:end + 2 + size]
        assert data[end + 2 + size:end + 4 + size] == b"\r\n"
        pos = end + 4 + size


if __name__ == "__main__":
    unittest.main()
