"""Every output queue is capped, whoever produced the data (issue 12, requirement 2).

A worker's WORK_DATA to a foreground client that never reads, and one WORK_DATA fanned out to
100 coalesced clients that never read, used to be queued without limit (1.3 GB and 1.6 GB RSS).
Past --max-output-queue the client is closed as if it had disconnected: the worker and other
clients are unaffected, background work is untouched, RSS stays bounded, and each close is logged
and counted in /metrics.
"""

import socket
import time
import unittest

import gearman_wire as gw
from server_fixture import RSS_BOUNDS  # noqa: E402
from broker_checks import (HOST, BrokerCase, closed_by_server, echo_rtts, http_get,
                           parse_prometheus, rss_bytes)

MIB = 1024 * 1024
CAP = 1 * MIB


def quiet_client(port, func, unique):
    """A client that submits one foreground job and then never reads (small receive buffer,
    so the kernel takes little of what the server sends)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((HOST, port))
    s.sendall(gw.encode(gw.SUBMIT_JOB, func, unique, b"data"))
    return s


class OutputCap(BrokerCase):
    def metrics(self, server):
        return parse_prometheus(http_get(server.http_port, "/metrics")[2])

    def test_a_client_that_never_reads_is_closed_past_its_cap(self):
        server = self.start_with_http("--max-output-queue", str(CAP))
        worker = self.connect()
        worker.can_do(b"stream")
        # A background job queued before: it must be untouched by what follows.
        other = self.connect()
        bg = other.submit(gw.SUBMIT_JOB_BG, b"stream", b"bg", b"keep")
        client = quiet_client(server.port, b"stream", b"fg")
        probe = self.connect()
        echo_rtts(probe, 1)
        before = rss_bytes(server.pid)

        assign = worker.grab()
        self.assertEqual(assign.type, gw.JOB_ASSIGN)
        handle = assign.args(3)[0]
        if handle == bg:  # the background job came first: finish it, take the foreground one
            worker.work_complete(bg, b"")
            assign = worker.grab()
            handle = assign.args(3)[0]
            bg = None
        chunk = b"d" * (64 * 1024)
        for _ in range(320):  # 20 MiB for a client that reads nothing
            worker.work_data(handle, chunk)
        worker.work_complete(handle, b"end")
        echo_rtts(worker, 1)
        self.assertTrue(closed_by_server(client), "the non-reading client was not closed")
        client.close()
        growth = rss_bytes(server.pid) - before
        if RSS_BOUNDS:
            self.assertLess(growth, 8 * MIB, "RSS grew %d bytes" % growth)

        # The worker goes on; the background job (if it was not the first) is still served.
        if bg is not None:
            assign = worker.grab()
            self.assertEqual(assign.args(3)[0], bg)
            worker.work_complete(bg, b"")
        echo_rtts(probe, 3)
        samples = self.metrics(server)
        self.assertEqual(samples[("roundhouse_output_overflows_total", ())], 1.0)
        self.assertIn("output passed --max-output-queue", server.read_logs())

    def test_one_work_data_fanned_out_to_100_clients_that_never_read(self):
        server = self.start_with_http("--max-output-queue", str(CAP))
        worker = self.connect()
        worker.can_do(b"fan")
        clients = [quiet_client(server.port, b"fan", b"same") for _ in range(100)]
        probe = self.connect()
        echo_rtts(probe, 1)
        samples = self.metrics(server)
        self.assertEqual(samples[("roundhouse_connections", ())], 102.0)  # worker, clients, probe
        before = rss_bytes(server.pid)

        assign = worker.grab()
        handle = assign.args(3)[0]
        chunk = b"f" * (256 * 1024)
        for _ in range(40):  # 10 MiB to each of 100 clients: 1 GB if nothing bounded it
            worker.work_data(handle, chunk)
        echo_rtts(worker, 1)
        peak = rss_bytes(server.pid)
        worker.work_complete(handle, b"end")
        echo_rtts(worker, 1)
        for c in clients:
            self.assertTrue(closed_by_server(c, timeout=5.0))
            c.close()
        # Each client holds at most its cap (plus one chunk) before it is closed.
        if RSS_BOUNDS:
            self.assertLess(peak - before, 100 * (CAP + len(chunk)) + 16 * MIB,
                            "RSS grew %d bytes" % (peak - before))
        samples = self.metrics(server)
        self.assertEqual(samples[("roundhouse_output_overflows_total", ())], 100.0)
        self.assertLess(max(echo_rtts(probe, 10)), 1.0)


if __name__ == "__main__":
    unittest.main()
