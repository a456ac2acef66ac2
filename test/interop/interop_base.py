"""Helpers for interop tests: third-party Gearman clients (Debian packages) against our server.

Each test starts its own server (roundhouse, or gearmand with GEARMAN_REFERENCE=1) on a free
loopback port through test/e2e/server_fixture.py, and runs the client programs as
subprocesses in their own process groups, killed at cleanup.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import gearman_wire as gw  # noqa: E402
from server_fixture import ServerTestCase, _set_pdeathsig  # noqa: E402

HANDLE_RE = rb"H:[A-Za-z0-9._-]+:\d+"


class InteropTestCase(ServerTestCase):
    """Starts a server per test; runs and reaps client processes."""

    server_args = ()
    required_tools = ()

    def setUp(self):
        for tool in self.required_tools:
            if shutil.which(tool) is None:
                self.skipTest("%s not installed" % tool)
        self.server = self.start_server(*self.server_args)
        self.port = self.server.port

    # -- processes -------------------------------------------------------------------------

    def run_cmd(self, cmd, input=None, timeout=20, env=None):
        """Run a client to completion; returns CompletedProcess with bytes stdout/stderr."""
        proc = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=env, preexec_fn=_set_pdeathsig)
        return proc

    def spawn(self, cmd, env=None):
        """Start a long-running client (a worker); killed with its process group at cleanup."""
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, preexec_fn=_set_pdeathsig)
        self.addCleanup(self._reap, proc)
        proc.line_buf = b""
        return proc

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()

    def read_line(self, proc, timeout=15):
        """Next stdout line of a spawned process (without the newline)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in proc.line_buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.fail("no output line from %r within %ss (have %r)"
                          % (proc.args, timeout, proc.line_buf))
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    err = proc.stderr.read() if proc.poll() is not None else b""
                    self.fail("%r ended (status %s) before a full line: %r %r"
                              % (proc.args, proc.poll(), proc.line_buf, err))
                proc.line_buf += chunk
        line, _, proc.line_buf = proc.line_buf.partition(b"\n")
        return line

    def wait_exit(self, proc, timeout=15):
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("%r did not exit within %ss" % (proc.args, timeout))

    # -- server state via the admin protocol ---------------------------------------------------

    def admin(self, command):
        with self.server.connect() as c:
            return c.admin(command)

    def status(self):
        """{function: (total, running, workers)} from `status`."""
        out = {}
        for line in self.admin("status").split(b"\n"):
            parts = line.split(b"\t")
            if len(parts) == 4:
                out[parts[0]] = tuple(int(p) for p in parts[1:])
        return out

    def wait_for_workers(self, func, count=1, timeout=15):
        """Poll `status` until `func` has at least `count` registrations."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status().get(func, (0, 0, 0))[2] >= count:
                return
            time.sleep(0.02)
        self.fail("no worker registered for %r within %ss: %r" % (func, timeout, self.status()))

    def wait_for_status(self, func, expected, timeout=15):
        """Poll `status` until `func` shows `expected`. An all-zero `expected` is also met by
        `func` not being listed: a function left with no job, worker or waiting client is
        freed (doc/gearman-differences.md, idle functions), while gearmand lists it as zeros."""
        idle = not any(expected)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.status().get(func)
            if got == expected or (idle and got is None):
                return
            time.sleep(0.02)
        self.fail("status of %r never became %r: %r" % (func, expected, self.status()))

    def wait_until(self, predicate, message, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        self.fail("timed out waiting for " + message)

    def raw_submit_bg(self, func, data, ptype=gw.SUBMIT_JOB_BG, unique=b""):
        with self.server.connect() as c:
            return c.submit(ptype, func, unique, data)
