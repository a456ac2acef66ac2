"""Interop with Debian gearman-tools: the `gearman` client/worker CLI and `gearadmin` (doc/protocol.md §7.1,
7.2). Both are built on libgearman 1.1.20; nothing here was written by us."""

import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from interop_base import InteropTestCase, HANDLE_RE  # noqa: E402
import gearman_wire as gw  # noqa: E402


class GearmanCli(InteropTestCase):
    required_tools = ("gearman", "rev")

    def gearman(self, *args, input=None, timeout=20):
        return self.run_cmd(["gearman", "-h", "127.0.0.1", "-p", str(self.port)] + list(args),
                            input=input, timeout=timeout)

    def worker(self, func, *args, wait_registered=True):
        proc = self.spawn(["gearman", "-h", "127.0.0.1", "-p", str(self.port), "-w", "-f", func]
                          + list(args))
        if wait_registered:
            self.wait_for_workers(func.encode())
        return proc

    def test_foreground_job_through_rev_worker(self):
        self.worker("rev", "--", "rev")
        out = self.gearman("-f", "rev", input=b"abc")
        self.assertEqual((out.returncode, out.stdout), (0, b"cba"), out.stderr)

    def test_foreground_jobs_run_repeatedly_on_one_worker(self):
        self.worker("rev", "--", "rev")
        for word in (b"hello", b"gearman", b"x"):
            out = self.gearman("-f", "rev", input=word)
            self.assertEqual(out.stdout, word[::-1], out.stderr)

    def test_worker_without_command_prints_workload_and_returns_empty_result(self):
        worker = self.worker("echo", "-c", "1")
        out = self.gearman("-f", "echo", "hello")
        self.assertEqual((out.returncode, out.stdout), (0, b""), out.stderr)
        self.assertEqual(self.wait_exit(worker), 0)
        self.assertEqual(worker.stdout.read(), b"hello")

    def test_failing_worker_command_makes_client_report_job_failed(self):
        self.worker("failfn", "-c", "1", "--", "false")
        out = self.gearman("-f", "failfn", "x")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"Job failed", out.stderr)

    def test_background_job_is_queued_then_run(self):
        out = self.gearman("-f", "bgfn", "-b", "payload")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.status()[b"bgfn"], (1, 0, 0))
        worker = self.worker("bgfn", "-c", "1", wait_registered=False)
        self.assertEqual(self.wait_exit(worker), 0)
        self.wait_for_status(b"bgfn", (0, 0, 0))

    def test_verbose_background_prints_task_created_with_handle(self):
        out = self.gearman("-f", "bgfn", "-v", "-b", "x")
        self.assertEqual(out.returncode, 0, out.stderr)
        match = re.search(rb"Task created: (" + HANDLE_RE + rb")", out.stdout + out.stderr)
        self.assertIsNotNone(match, out.stdout + out.stderr)
        self.assertIn(match.group(1), self.admin("show jobs"))

    def test_priorities_high_normal_low_reach_worker_in_order(self):
        for flag, data in (("-L", "low"), (None, "normal"), ("-I", "high")):
            args = ["-f", "prio", "-b"] + ([flag] if flag else []) + [data]
            self.assertEqual(self.gearman(*args).returncode, 0)
        self.assertEqual(self.admin("prioritystatus"), b"prio\t1\t1\t1\t0\n.\n")
        with tempfile.NamedTemporaryFile() as order:
            worker = self.worker("prio", "-c", "3", "--", "sh", "-c",
                                 'cat >> "$0"; echo >> "$0"', order.name, wait_registered=False)
            self.assertEqual(self.wait_exit(worker), 0)
            with open(order.name, "rb") as f:
                self.assertEqual(f.read(), b"high\nnormal\nlow\n")

    def test_same_unique_twice_in_background_coalesces_into_one_job(self):
        for data in ("x", "y"):
            self.assertEqual(self.gearman("-f", "ufn", "-u", "key", "-b", data).returncode, 0)
        self.assertEqual(self.status()[b"ufn"], (1, 0, 0))
        self.assertEqual(self.admin("show unique jobs"), b"key\n.\n")

    def test_gearman_server_environment_variable_selects_server(self):
        env = dict(os.environ, GEARMAN_SERVER="127.0.0.1:%d" % self.port)
        out = self.run_cmd(["gearman", "-f", "envfn", "-b", "x"], env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.status()[b"envfn"], (1, 0, 0))


class Gearadmin(InteropTestCase):
    required_tools = ("gearadmin",)

    def gearadmin(self, *args):
        return self.run_cmd(["gearadmin", "-h", "127.0.0.1", "-p", str(self.port)] + list(args))

    def ok(self, *args):
        out = self.gearadmin(*args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_status_lists_functions_with_counts(self):
        self.raw_submit_bg(b"alpha", b"x")
        self.raw_submit_bg(b"beta", b"x")
        self.raw_submit_bg(b"beta", b"y")
        lines = sorted(self.ok("--status").splitlines())
        self.assertEqual(lines, [b".", b"alpha\t1\t0\t0", b"beta\t2\t0\t0"])

    def test_priority_status(self):
        self.raw_submit_bg(b"fn", b"h", gw.SUBMIT_JOB_HIGH_BG)
        self.raw_submit_bg(b"fn", b"l", gw.SUBMIT_JOB_LOW_BG)
        self.assertEqual(self.ok("--priority-status"), b"fn\t1\t0\t1\t0\n.\n")

    def test_workers_lists_registered_functions(self):
        with self.server.connect() as w:
            w.set_client_id(b"cli-test")
            w.can_do(b"fa")
            w.assert_quiet()
            self.assertRegex(self.ok("--workers"), rb"(?m)^\d+ 127\.0\.0\.1 cli-test : fa$")

    def test_show_jobs_and_show_unique_jobs(self):
        h = self.raw_submit_bg(b"fn", b"x", unique=b"u-1")
        self.assertEqual(self.ok("--show-jobs"), h + b"\t0\t0\t1\n.\n")
        self.assertEqual(self.ok("--show-unique-jobs"), b"u-1\n.\n")

    def test_getpid_prints_server_pid(self):
        self.assertEqual(self.ok("--getpid"), b"%d\n" % self.server.pid)

    def test_server_version_prints_one_token(self):
        self.assertRegex(self.ok("--server-version"), rb"^[^\s]+\n$")

    def test_server_verbose_prints_level(self):
        self.assertEqual(self.ok("--server-verbose"), b"INFO\n")

    def test_create_and_drop_function(self):
        self.assertEqual(self.ok("--create-function", "made"), b"OK\n")
        self.assertIn(b"made\t0\t0\t0\n", self.admin("status"))
        self.assertEqual(self.ok("--drop-function", "made"), b"OK\n")
        self.assertEqual(self.admin("status"), b".\n")

    def test_drop_unknown_function_reports_error_on_stderr_with_status_zero(self):
        out = self.gearadmin("--drop-function", "nosuch")
        self.assertEqual((out.returncode, out.stdout), (0, b""))
        self.assertIn(b"Error: function not found", out.stderr)

    def test_cancel_job(self):
        h = self.raw_submit_bg(b"fn", b"x")
        self.assertEqual(self.ok("--cancel-job", h.decode()), b"OK\n")
        out = self.gearadmin("--cancel-job", "H:nohost:424242")
        self.assertEqual(out.returncode, 0)
        self.assertIn(b"Error: UNKNOWN_JOB", out.stderr)

    def test_several_options_run_in_reverse_order(self):
        self.raw_submit_bg(b"fn", b"x")
        with self.server.connect() as w:
            w.set_client_id(b"rev-order")
            w.can_do(b"fn")
            w.assert_quiet()
            out = self.ok("--status", "--workers")
        workers_at = out.index(b"rev-order : fn")
        status_at = out.index(b"fn\t1\t0\t1")
        self.assertLess(workers_at, status_at, out)

    def test_connection_error_exits_one(self):
        port = self.port
        self.server.stop()
        out = self.run_cmd(["gearadmin", "-h", "127.0.0.1", "-p", str(port), "--status"])
        self.assertEqual(out.returncode, 1)


if __name__ == "__main__":
    unittest.main()
