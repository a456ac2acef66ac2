"""Shared helpers for the protocol and admin suites: a fresh server per test plus shortcuts."""

import time

import gearman_wire as gw
from gearman_wire import res
from server_fixture import ServerTestCase, reference_mode  # noqa: F401 (re-exported)


class GearmanTestCase(ServerTestCase):
    """Starts one server per test with `server_args` (plus `reference_args` on gearmand)."""

    server_args = ()
    # Extra arguments used only when the server under test is gearmand (reference mode), e.g.
    # to select the behaviour our server has by default.
    reference_args = ()

    def setUp(self):
        args = list(self.server_args)
        if self.gearmand:
            args += list(self.reference_args)
        self.server = self.start_server(*args)
        self._ids = 0

    # -- connections -----------------------------------------------------------------------

    def client(self, client_id=None):
        conn = self.connect()
        if client_id is not None:
            conn.set_client_id(client_id)
        return conn

    def worker(self, *funcs, client_id=None, timeout_ms=None):
        conn = self.connect()
        if client_id is not None:
            conn.set_client_id(client_id)
        for func in funcs:
            if timeout_ms is None:
                conn.can_do(func)
            else:
                conn.can_do_timeout(func, timeout_ms)
        conn.assert_quiet()  # registrations are processed before the test goes on
        return conn

    def admin(self, command):
        """One admin command on a fresh connection; returns the whole reply."""
        with self.server.connect() as conn:
            return conn.admin(command)

    def status_lines(self):
        return self.admin("status")

    def fresh_id(self, prefix="conn"):
        self._ids += 1
        return ("%s-%d-%d" % (prefix, id(self) % 100000, self._ids)).encode()

    def close_and_wait(self, conn, client_id, until=None, timeout=5.0):
        """Close a connection that sent SET_CLIENT_ID(client_id) and wait until the server has
        processed the close: it leaves the `workers` listing, and then `until()` (if given) is
        true. Polls; no fixed sleep. (gearmand's I/O threads drop the connection from `workers`
        before its proc thread detaches it from jobs, hence `until`.)"""
        conn.close()
        needle = b" " + client_id + b" :"
        self.wait_until(lambda: needle not in self.admin("workers"), timeout,
                        "the server to notice the close of %r" % client_id)
        if until is not None:
            self.wait_until(until, timeout, "the close of %r to take effect" % client_id)

    def unique_clients(self, unique):
        """CLIENTS field of GET_STATUS_UNIQUE (0 for an unknown unique)."""
        with self.server.connect() as c:
            return int(c.request(gw.GET_STATUS_UNIQUE, unique).args()[-1])

    def job_state(self, handle):
        """(known, running) from GET_STATUS."""
        with self.server.connect() as c:
            fields = c.request(gw.GET_STATUS, handle).args()
        return int(fields[1]), int(fields[2])

    def wait_until(self, predicate, timeout=5.0, message="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.01)
        self.fail("timed out waiting for %s" % message)

    # -- packets ---------------------------------------------------------------------------

    def assertPacket(self, pkt, ptype, *args):
        self.assertEqual(pkt, res(ptype, *args))

    def assertError(self, pkt, code, text):
        self.assertEqual(pkt, gw.error(code, text))

    def submit(self, conn, func, unique=b"", data=b"", ptype=gw.SUBMIT_JOB):
        pkt = conn.request(ptype, func, unique, data)
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
        self.assertTrue(0 < len(pkt.payload) <= 63, pkt)
        return pkt.payload

    def submit_bg(self, conn, func, unique=b"", data=b""):
        return self.submit(conn, func, unique, data, gw.SUBMIT_JOB_BG)

    def grab(self, worker, ptype=gw.GRAB_JOB):
        """GRAB_JOB expecting JOB_ASSIGN; returns (handle, func, data)."""
        pkt = worker.request(ptype)
        self.assertEqual(pkt.type, gw.JOB_ASSIGN, pkt)
        return tuple(pkt.args(3))

    def grab_handle(self, worker):
        return self.grab(worker)[0]

    def assertNoJob(self, worker, ptype=gw.GRAB_JOB):
        self.assertPacket(worker.request(ptype), gw.NO_JOB)

    def assertGotNoop(self, conn):
        self.assertEqual(conn.sync(), [res(gw.NOOP)])

    def assertQuiet(self, conn):
        self.assertEqual(conn.sync(), [])

    def get_status(self, conn, handle):
        pkt = conn.request(gw.GET_STATUS, handle)
        self.assertEqual(pkt.type, gw.STATUS_RES, pkt)
        return pkt.payload
