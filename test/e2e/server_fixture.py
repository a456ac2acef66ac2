"""Start a Gearman server for one test and make sure it dies with the test.

Two kinds:
  roundhouse  ROUNDHOUSE_BIN (default build/server/roundhouse under the repository root),
              started with ROUNDHOUSE_DEFAULT_ARGS plus the test's own arguments.
  gearmand    /usr/sbin/gearmand 1.1.20 (GEARMAND_BIN overrides), the reference.

Every server gets a free loopback port, its own temporary directory and log file, and its own
process group. It is stopped (SIGTERM to the group, SIGKILL after a timeout) by the context
manager, by unittest cleanups (ServerTestCase.start_server), by atexit, and, if the test process
itself dies, by PR_SET_PDEATHSIG. ServerTestCase appends the server logs to the report of a
failing test.

Environment:
  ROUNDHOUSE_BIN      path to the roundhouse binary
  GEARMAN_REFERENCE=1 run suites against gearmand instead of roundhouse; tests decorated with
                      @roundhouse_only are skipped.
  GEARMAN_REFERENCE=all  as 1, but run the @roundhouse_only tests too (they are expected to
                      fail on gearmand: shows what each deliberate difference looks like).
"""

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import gearman_wire as gw

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# roundhouse's durable store is not under test here; change this one constant to test with it.
ROUNDHOUSE_DEFAULT_ARGS = ("-q", "none")

GEARMAND_DEFAULT_BIN = "/usr/sbin/gearmand"
HOST = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

_live_servers = set()

# Under `tools/dev sanitize` (ROUNDHOUSE_SANITIZED=1) ASan keeps freed blocks in quarantine and
# pads every allocation, so a resident-memory bound would measure ASan, not roundhouse. Tests
# still run every hostile input there; their RSS bounds are asserted in the plain build only.
SANITIZED = os.environ.get("ROUNDHOUSE_SANITIZED", "") not in ("", "0")
RSS_BOUNDS = not SANITIZED
# The sanitized build is a debug build with instrumentation, several times slower: a test's
# client-side waits for replies scale by this there (never an assertion on time).
TIMEOUT_SCALE = 5 if SANITIZED else 1

# Tests talk only to loopback servers they start. A proxy set for the machine (CI runners often
# have one) would make roundhouse's Jenkins client (libcurl reads these variables) route the
# simulated masters through it; tests that exercise proxies set their own, per server.
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


def roundhouse_bin():
    path = os.environ.get("ROUNDHOUSE_BIN", os.path.join("build", "server", "roundhouse"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def reference_mode():
    """True when GEARMAN_REFERENCE asks to run the suites against gearmand."""
    return os.environ.get("GEARMAN_REFERENCE", "") not in ("", "0", "no", "false")


def default_kind():
    return "gearmand" if reference_mode() else "roundhouse"


def run_roundhouse_only_on_reference():
    """GEARMAN_REFERENCE=all: also run roundhouse-only tests on gearmand (they should fail)."""
    return os.environ.get("GEARMAN_REFERENCE", "") == "all"


def roundhouse_only(reason="roundhouse differs from gearmand here (doc/protocol.md: Decision)"):
    """Skip the test in reference mode: it asserts one of our deliberate differences."""
    return unittest.skipIf(reference_mode() and not run_roundhouse_only_on_reference(),
                           "roundhouse-only: " + reason)


def gearmand_skip(reason):
    """Skip in reference mode because gearmand cannot be tested for this (hangs, crashes)."""
    return unittest.skipIf(reference_mode(), "not testable on gearmand: " + reason)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _set_pdeathsig():
    os.setpgrp()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # best effort: the other three mechanisms still apply
        pass


class ServerStartError(RuntimeError):
    def __init__(self, message, conflict=False):
        super().__init__(message)
        self.conflict = conflict


class Server:
    """One server process. Use as a context manager, or call start()/stop()."""

    def __init__(self, kind=None, args=(), port=None, env=None, use_default_args=True,
                 verbose="INFO", cwd=None, tls=None):
        self.kind = kind or default_kind()
        if self.kind not in ("roundhouse", "gearmand"):
            raise ValueError("unknown server kind %r" % self.kind)
        self.extra_args = [str(a) for a in args]
        self.fixed_port = port
        self.port = None
        self.env = env
        self.use_default_args = use_default_args
        self.verbose = verbose  # None: leave the server's default log level
        self.cwd = cwd  # working directory; None: the server's own temporary directory
        # An ssl.SSLContext: start-up probes and connect() speak TLS (servers that refuse plain
        # text, roundhouse --ssl-require); None: plain TCP.
        self.tls = tls
        self.proc = None
        self.tmpdir = None
        self.log_path = None
        self.stderr_path = None
        self.final_log = ""
        self.exit_code = None

    # -- properties ------------------------------------------------------------------------

    @property
    def is_gearmand(self):
        return self.kind == "gearmand"

    @property
    def is_roundhouse(self):
        return self.kind == "roundhouse"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self, port):
        if self.is_gearmand:
            binary = os.environ.get("GEARMAND_BIN", GEARMAND_DEFAULT_BIN)
            cmd = [binary, "--port", str(port), "--listen", HOST, "--log-file", self.log_path]
            if os.geteuid() == 0:
                cmd += ["-u", "root"]
        else:
            binary = roundhouse_bin()
            cmd = [binary, "--port", str(port), "--listen", HOST, "--log-file", self.log_path]
            if self.use_default_args:
                cmd += list(ROUNDHOUSE_DEFAULT_ARGS)
        if self.verbose:
            cmd += ["--verbose", self.verbose]
        return cmd + self.extra_args

    # -- lifecycle -------------------------------------------------------------------------

    def start(self):
        if self.is_roundhouse and not os.access(roundhouse_bin(), os.X_OK):
            raise unittest.SkipTest("roundhouse binary not found at %s (set ROUNDHOUSE_BIN)"
                                    % roundhouse_bin())
        self.tmpdir = tempfile.mkdtemp(prefix="gearman-e2e-%s-" % self.kind)
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        attempts = 1 if self.fixed_port else 5
        last_error = None
        for _ in range(attempts):
            port = self.fixed_port or free_port()
            try:
                self._launch(port)
                return self
            except ServerStartError as e:
                last_error = e
                self._kill()
                if not (e.conflict or self._port_conflict()):
                    break
                self._truncate_logs()
        self.final_log = self.read_logs()
        raise ServerStartError("%s did not start: %s\n%s" % (self.kind, last_error, self.final_log))

    def _launch(self, port):
        cmd = self.command(port)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         cwd=self.cwd or self.tmpdir, env=self.env,
                                         preexec_fn=_set_pdeathsig)
        _live_servers.add(self)
        self.port = port
        self.cmdline = cmd
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError("exited with status %s: %s" % (self.proc.returncode, cmd))
            if self._port_conflict():
                raise ServerStartError("port %d in use" % port, conflict=True)
            if self._answers_version():
                self._check_identity()
                return
            time.sleep(0.02)
        raise ServerStartError("no answer to version within %.0fs: %s" % (START_TIMEOUT, cmd))

    def _open(self, timeout, connect_timeout=5.0):
        c = gw.Connection(HOST, self.port, timeout=timeout, connect_timeout=connect_timeout)
        if self.tls is not None:
            try:
                c.start_tls(self.tls, server_hostname="localhost")
            except BaseException:
                c.close()
                raise
        return c

    def _answers_version(self):
        try:
            with self._open(timeout=2.0, connect_timeout=1.0) as c:
                c.send_raw(b"version\r\n")
                line = c.recv_line()
                return line.startswith(b"OK ")
        except (OSError, gw.WireError):
            return False

    def _check_identity(self):
        """Make sure the process that answered is ours, not a neighbour on a reused port."""
        try:
            with self._open(timeout=2.0) as c:
                c.send_raw(b"getpid\r\n")
                line = c.recv_line()
        except (OSError, gw.WireError):
            return
        if line.startswith(b"OK ") and line[3:].strip().isdigit():
            if int(line[3:].strip()) != self.proc.pid:
                raise ServerStartError("port %d answered by pid %s, not ours (%d)"
                                       % (self.port, line[3:].strip().decode(), self.proc.pid),
                                       conflict=True)

    def _port_conflict(self):
        text = self.read_logs()
        return "already in use" in text or "EADDRINUSE" in text

    def _truncate_logs(self):
        for path in (self.log_path, self.stderr_path):
            if path and os.path.exists(path):
                os.truncate(path, 0)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM the process group, SIGKILL it after `timeout`; keep the logs; remove tmpdir.

        Idempotent: a second call keeps the logs captured by the first."""
        if self.proc is None and self.tmpdir is None:
            return
        if self.proc is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
            self.exit_code = self.proc.returncode
            self._signal_group(signal.SIGKILL)  # leftovers in the group, if any
        self.final_log = self.read_logs()
        _live_servers.discard(self)
        if self.tmpdir and os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None
        self.proc = None

    def _kill(self):
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait_exit(self, timeout):
        """Wait for the process to exit on its own; returns its status or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def read_logs(self):
        parts = []
        for label, path in (("log file", self.log_path), ("stdout/stderr", self.stderr_path)):
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
                if data:
                    parts.append("---- %s %s (%s) ----\n%s" % (
                        self.kind, label, path, data.decode("utf-8", "replace")[-20000:]))
        return "\n".join(parts)

    def logs(self):
        return self.read_logs() if self.proc is not None else self.final_log

    def connect(self, timeout=gw.DEFAULT_TIMEOUT):
        return self._open(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@atexit.register
def _stop_all():
    for server in list(_live_servers):
        try:
            server.stop(timeout=2.0)
        except Exception:
            pass


class ServerTestCase(unittest.TestCase):
    """Base class: start_server() with automatic stop, connections closed, logs on failure."""

    server_kind = None  # None: default_kind()

    def start_server(self, *args, kind=None, **kw):
        server = Server(kind or self.server_kind or default_kind(), args=args, **kw)
        self._servers.append(server)
        self.addCleanup(server.stop)
        server.start()
        return server

    def connect(self, server=None, timeout=gw.DEFAULT_TIMEOUT):
        server = server or self.server
        conn = server.connect(timeout)
        self.addCleanup(conn.close)
        return conn

    def run(self, result=None):
        self._servers = []
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        lists = [result.failures, result.errors]
        if len(result.failures) + len(result.errors) > before and self._servers:
            logs = "\n".join(s.logs() or "(%s wrote no log)" % s.kind for s in self._servers)
            for lst in lists:
                for i, (test, text) in enumerate(lst):
                    if test is self and "---- server logs ----" not in text:
                        lst[i] = (test, text + "\n---- server logs ----\n" + logs)
        return outcome

    @property
    def gearmand(self):
        """True when the server under test is the reference gearmand."""
        return (self.server_kind or default_kind()) == "gearmand"
