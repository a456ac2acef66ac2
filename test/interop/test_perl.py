"""Interop with Perl Gearman::Client / Gearman::Worker (Debian libgearman-client-perl), a pure
Perl implementation of the protocol independent of libgearman. Driven by perl_gearman.pl."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_base import InteropTestCase, HANDLE_RE, HERE  # noqa: E402
import gearman_wire as gw  # noqa: E402

SCRIPT = os.path.join(HERE, "perl_gearman.pl")


def perl_module_available():
    try:
        return subprocess.run(["perl", "-MGearman::Client", "-MGearman::Worker", "-e", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@unittest.skipUnless(perl_module_available(), "Perl Gearman::Client not installed")
class PerlGearman(InteropTestCase):
    required_tools = ("perl",)

    def perl(self, *args):
        out = self.run_cmd(["perl", SCRIPT, str(self.port)] + [str(a) for a in args])
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode().strip()

    def worker(self, func, count, kind="worker"):
        proc = self.spawn(["perl", SCRIPT, str(self.port), kind, func, str(count)])
        self.assertEqual(self.read_line(proc), b"ready")
        return proc

    def bg(self, func, arg, prio="normal", uniq=""):
        line = self.perl("bg", func, arg, prio, uniq)
        match = re.match(r"^handle 127\.0\.0\.1:%d//(%s)$" % (self.port, HANDLE_RE.decode()), line)
        self.assertIsNotNone(match, line)
        return match.group(1)

    def test_foreground_job_is_done_by_perl_worker(self):
        worker = self.worker("rev", 1)
        self.wait_for_workers(b"rev")
        self.assertEqual(self.perl("do", "rev", "abc"), "result cba")
        self.assertEqual(self.read_line(worker), b"job abc")
        self.assertEqual(self.wait_exit(worker), 0)

    def test_failed_job_is_reported_to_client(self):
        self.worker("failfn", 1, kind="fail_worker")
        self.wait_for_workers(b"failfn")
        self.assertEqual(self.perl("do", "failfn", "x"), "failed")

    def test_background_job_is_queued_then_run_by_woken_worker(self):
        worker = self.worker("bgfn", 1)
        self.wait_for_workers(b"bgfn")
        h = self.bg("bgfn", "payload")
        self.assertEqual(self.read_line(worker), b"job payload")  # NOOP woke the sleeping worker
        self.assertEqual(self.wait_exit(worker), 0)
        self.wait_for_status(b"bgfn", (0, 0, 0))
        self.assertEqual(self.perl("status", "127.0.0.1:%d//%s" % (self.port, h)),
                         "status 0 0 0 0")

    def test_priorities_reach_worker_high_normal_low(self):
        for prio in ("low", "normal", "high"):
            self.bg("prio", prio, prio)
        self.assertEqual(self.admin("prioritystatus"), b"prio\t1\t1\t1\t0\n.\n")
        worker = self.worker("prio", 3)
        self.assertEqual([self.read_line(worker) for _ in range(3)],
                         [b"job high", b"job normal", b"job low"])
        self.assertEqual(self.wait_exit(worker), 0)

    def test_background_jobs_with_same_uniq_coalesce(self):
        h1 = self.bg("ufn", "first", uniq="key")
        h2 = self.bg("ufn", "second", uniq="key")
        self.assertEqual(h1, h2)
        self.assertEqual(self.status()[b"ufn"], (1, 0, 0))

    def test_foreground_jobs_with_same_uniq_share_one_run(self):
        waiting = [self.spawn(["perl", SCRIPT, str(self.port), "do", "shared", "abc", "normal",
                               "same"]) for _ in range(2)]
        with self.server.connect() as c:
            def both_attached():
                c.send(gw.GET_STATUS_UNIQUE, b"same")
                return c.recv_packet().payload == b"same\x001\x000\x000\x000\x002"
            self.wait_until(both_attached, "both Perl clients attached to one job")
        self.assertEqual(self.status()[b"shared"], (1, 0, 0))
        worker = self.worker("shared", 1)
        self.assertEqual(self.read_line(worker), b"job abc")
        for proc in waiting:
            self.assertEqual(self.read_line(proc), b"result cba")

    def test_get_status_of_queued_background_job(self):
        h = self.bg("st", "x")
        self.assertEqual(self.perl("status", "127.0.0.1:%d//%s" % (self.port, h)),
                         "status 1 0 0 0")

    def test_job_server_status_reports_queued_running_capable(self):
        self.bg("alpha", "x")
        self.bg("alpha", "y")
        with self.server.connect() as w:
            w.can_do(b"beta")
            w.assert_quiet()
            lines = self.perl("server_status").splitlines()
        self.assertEqual(lines, ["func alpha 2 0 0", "func beta 0 0 1", "end"])


if __name__ == "__main__":
    unittest.main()
