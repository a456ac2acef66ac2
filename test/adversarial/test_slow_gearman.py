"""Slow peers on the Gearman port (issue 12, requirement 6, Gearman side).

- 1,000 connections trickling a packet that declares 64 MiB: RSS stays bounded and another
  client's ECHO is answered promptly meanwhile.
- --partial-frame-timeout: a connection that sent part of a packet (or admin line) and stops, or
  trickles, is closed that many seconds after the part's first byte; an idle worker between
  packets stays however long it waits. Counted in /metrics and logged.
- accept() failing for lack of file descriptors (EMFILE) is logged and counted, and the server
  keeps serving once descriptors are free again.
"""

import resource
import socket
import struct
import time
import unittest

import gearman_wire as gw
from server_fixture import RSS_BOUNDS  # noqa: E402
from broker_checks import (HOST, BrokerCase, echo_rtts, http_get, parse_prometheus, percentile,
                           rss_bytes)

MIB = 1024 * 1024


def open_file_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def closed_by_server(sock, timeout):
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Trickle(BrokerCase):
    def test_1000_trickling_connections_keep_rss_and_echo_bounded(self):
        count = 1000
        if open_file_limit(count + 200) < count + 100:
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % count)
        server = self.server = self.start_server(kind="roundhouse")
        probe = self.connect()
        echo_rtts(probe, 3)
        before = rss_bytes(server.pid)
        socks = [socket.create_connection((HOST, server.port)) for _ in range(count)]
        rtts = []
        try:
            header = gw.REQ + struct.pack(">II", gw.SUBMIT_JOB_BG, 64 * MIB)
            for s in socks:
                s.sendall(header)
            # Ten rounds of one more byte on every connection, ECHOs in between.
            for _ in range(10):
                for s in socks:
                    s.sendall(b"f")
                rtts += echo_rtts(probe, 5)
            peak = rss_bytes(server.pid)
        finally:
            for s in socks:
                s.close()
        growth = peak - before
        # Before the fix each declared 64 MiB was allocated; gearmand holds about 4 KiB each.
        if RSS_BOUNDS:
            self.assertLess(growth, 16 * MIB, "RSS grew %d bytes for %d connections" % (growth, count))
        self.assertLess(percentile(rtts, 99), 0.5, "ECHO p99 %.3f s" % percentile(rtts, 99))


class PartialFrameDeadline(BrokerCase):
    def test_a_started_packet_must_complete_in_time_idle_workers_stay(self):
        server = self.start_with_http("--partial-frame-timeout", "1")
        worker = self.connect()
        worker.can_do(b"idle")
        worker.pre_sleep()
        stalled = socket.create_connection((HOST, server.port))
        stalled.sendall(gw.REQ + struct.pack(">II", gw.SUBMIT_JOB, 100))  # header only
        line = socket.create_connection((HOST, server.port))
        line.sendall(b"stat")  # an admin line without its newline
        trickler = socket.create_connection((HOST, server.port))
        trickler.sendall(gw.REQ + struct.pack(">II", gw.ECHO_REQ, 50))
        started = time.monotonic()
        trickled = 0
        while time.monotonic() - started < 3.0 and trickled < 50:
            try:
                trickler.sendall(b"t")  # every byte arrives, the packet never completes in time
            except OSError:
                break
            trickled += 1
            time.sleep(0.1)
        self.assertTrue(closed_by_server(stalled, 3.0))
        self.assertTrue(closed_by_server(line, 3.0))
        self.assertTrue(closed_by_server(trickler, 3.0))
        self.assertLess(trickled, 50, "the trickling connection was never closed")
        # The idle worker (between packets for 3 s and more) is still served.
        time.sleep(1.5)
        self.assertEqual(len(echo_rtts(worker, 2)), 2)
        samples = parse_prometheus(http_get(server.http_port, "/metrics")[2])
        self.assertEqual(samples[("roundhouse_partial_frame_timeouts_total", ())], 3.0)
        self.assertIn("incomplete after --partial-frame-timeout", server.read_logs())

    def test_zero_turns_the_deadline_off(self):
        server = self.server = self.start_server("--partial-frame-timeout", "0",
                                                 kind="roundhouse")
        stalled = socket.create_connection((HOST, server.port))
        stalled.sendall(b"\0REQ")
        self.assertFalse(closed_by_server(stalled, 2.5))
        stalled.close()


class AcceptErrors(BrokerCase):
    def test_emfile_is_logged_counted_and_the_server_keeps_serving(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # The server inherits a limit of 64 descriptors (its own files, listeners and the HTTP
        # port use some of them).
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            server = self.start_with_http()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        socks = []
        for _ in range(100):
            try:
                socks.append(socket.create_connection((HOST, server.port), timeout=5))
            except OSError:
                pass
        time.sleep(0.5)
        dropped = sum(1 for s in socks if closed_by_server(s, 0.05))
        self.assertGreater(dropped, 0, "every connection was kept: the limit did not bite")
        for s in socks:
            s.close()
        time.sleep(0.5)
        with self.connect() as c:
            self.assertEqual(len(echo_rtts(c, 3)), 3)
        samples = parse_prometheus(http_get(server.http_port, "/metrics")[2])
        self.assertGreaterEqual(samples[("roundhouse_accept_errors_total", ())], float(dropped))
        self.assertIn("failed: too many open files", server.read_logs())


if __name__ == "__main__":
    unittest.main()
