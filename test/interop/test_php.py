"""Interop with PHP's gearman extension (Debian php-cli + php-gearman; wraps libgearman 1.1.20).
Driven by php_gearman.php."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_base import InteropTestCase, HANDLE_RE, HERE  # noqa: E402

SCRIPT = os.path.join(HERE, "php_gearman.php")


def php_gearman_available():
    try:
        return subprocess.run(["php", "-r", "exit(class_exists('GearmanClient') ? 0 : 1);"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@unittest.skipUnless(php_gearman_available(), "php-gearman not installed")
class PhpGearman(InteropTestCase):
    required_tools = ("php",)

    def php(self, *args):
        out = self.run_cmd(["php", SCRIPT, str(self.port)] + [str(a) for a in args])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout.decode().strip()

    def spawn_php(self, *args):
        return self.spawn(["php", SCRIPT, str(self.port)] + [str(a) for a in args])

    def worker(self, func, count, kind="worker"):
        proc = self.spawn_php(kind, func, count) if kind == "worker" else self.spawn_php(kind, func)
        self.assertEqual(self.read_line(proc), b"ready")
        return proc

    def bg(self, prio, func, arg, uniq=None):
        line = self.php("bg", prio, func, arg, *([uniq] if uniq is not None else []))
        match = re.match(r"^handle (%s) rc 0$" % HANDLE_RE.decode(), line)
        self.assertIsNotNone(match, line)
        return match.group(1)

    def test_do_normal_high_low_are_done_by_php_worker(self):
        worker = self.worker("rev", 3)
        self.wait_for_workers(b"rev")
        for prio in ("normal", "high", "low"):
            self.assertEqual(self.php("do", prio, "rev", "abc" + prio),
                             "result %scba rc 0" % prio[::-1])
            self.assertEqual(self.read_line(worker), b"job abc" + prio.encode())
        self.assertEqual(self.wait_exit(worker), 0)

    def test_status_and_data_callbacks_receive_forwarded_packets(self):
        self.worker("progress", 1, kind="status_worker")
        self.wait_for_workers(b"progress")
        self.assertEqual(self.php("do_status", "progress", "x").splitlines(),
                         ["status 1/4", "data part", "complete done", "end rc 0"])

    def test_work_exception_reaches_client_with_exceptions_option(self):
        self.worker("exc", 1, kind="exception_worker")
        self.wait_for_workers(b"exc")
        lines = self.php("do_exception", "exc", "x").splitlines()
        self.assertIn("exception boom", lines)
        self.assertNotIn("complete", " ".join(lines))

    def test_work_exception_without_exceptions_option_leaves_libgearman_waiting(self):
        # The server downgrades WORK_EXCEPTION to WORK_FAIL "HANDLE\0" (doc/protocol.md §3.9, gearmand's
        # bytes). libgearman 1.1.20 does not match that handle and waits until its timeout
        # (GEARMAN_TIMEOUT = 47); a plain WORK_FAIL "HANDLE" would call the fail callback.
        self.worker("exc", 1, kind="exception_worker")
        self.wait_for_workers(b"exc")
        lines = self.php("do_status", "exc", "x", 1500).splitlines()
        self.assertEqual(lines, ["end rc 47"])

    def test_background_job_is_queued_then_run_by_woken_worker(self):
        worker = self.worker("bgfn", 1)
        self.wait_for_workers(b"bgfn")
        self.bg("normal", "bgfn", "payload")
        self.assertEqual(self.read_line(worker), b"job payload")
        self.assertEqual(self.wait_exit(worker), 0)
        self.wait_for_status(b"bgfn", (0, 0, 0))

    def test_background_priorities_reach_worker_high_normal_low(self):
        for prio in ("low", "normal", "high"):
            self.bg(prio, "prio", prio)
        self.assertEqual(self.admin("prioritystatus"), b"prio\t1\t1\t1\t0\n.\n")
        worker = self.worker("prio", 3)
        self.assertEqual([self.read_line(worker) for _ in range(3)],
                         [b"job high", b"job normal", b"job low"])

    def test_background_jobs_with_same_unique_coalesce(self):
        h1 = self.bg("normal", "ufn", "first", "key")
        h2 = self.bg("high", "ufn", "second", "key")
        self.assertEqual(h1, h2)
        self.assertEqual(self.status()[b"ufn"], (1, 0, 0))
        self.assertEqual(self.admin("show unique jobs"), b"key\n.\n")

    def test_job_status_of_queued_and_unknown_jobs(self):
        h = self.bg("normal", "st", "x")
        self.assertEqual(self.php("status", h), "status 1 0 0 0")
        self.assertEqual(self.php("status", "H:nohost:1"), "status 0 0 0 0")

    def test_job_status_by_unique_key(self):
        self.bg("normal", "st", "x", "the-key")
        self.assertEqual(self.php("status_unique", "the-key"), "status_unique 1 0 0 0")
        self.assertEqual(self.php("status_unique", "missing"), "status_unique 0 0 0 0")

    def test_ping_is_answered(self):
        self.assertEqual(self.php("ping"), "ping ok")


if __name__ == "__main__":
    unittest.main()
