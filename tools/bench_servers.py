"""Server processes for the benchmark programs in tools/ (compare.py, bench_durable.py).

Each server runs in its own session with its output in a log file (a pipe could fill and block
it). Every started server is remembered until stopped, so stop_all() (registered with atexit,
and reached from on_signal through KeyboardInterrupt) never leaves one behind. Loopback only.
Python 3 standard library only.
"""

import os
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

_RUNNING = []


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts_connections(port):
    """Readiness for any server: the port accepts a TCP connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def answers_version(port):
    """Readiness for Gearman servers with the admin protocol: `version` gets `OK ...`.
    roundhouse answers only after replaying its durable queue."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.settimeout(2.0)
            s.sendall(b"version\r\n")
            data = b""
            while b"\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"OK ")
    except OSError:
        return False


class ServerProcess:
    """One server we started. stop() is idempotent and only ever signals this child."""

    def __init__(self, name, argv, port, log_path, cwd=None, ready=accepts_connections):
        self.name, self.argv, self.port, self.log_path, self.cwd = name, argv, port, log_path, cwd
        self.ready = ready
        self.proc = None

    def start(self, timeout=15.0):
        """Starts the process; returns the seconds until `ready(port)` held."""
        with open(self.log_path, "ab") as log_file:
            started_at = time.monotonic()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=subprocess.STDOUT, cwd=self.cwd,
                                         start_new_session=True)
        _RUNNING.append(self)
        end = started_at + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start-up: %s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            if self.ready(self.port):
                return time.monotonic() - started_at
            time.sleep(0.005)
        raise RuntimeError("%s was not ready on port %d within %.0f s"
                           % (self.name, self.port, timeout))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, size=600):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-size:].decode(errors="replace").strip()
        except OSError:
            return ""

    def status_kib(self):
        """VmRSS and VmHWM of the server in KiB, from /proc/PID/status."""
        values = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
        return values

    def cpu_seconds(self):
        """User + system CPU time of the server process (all threads)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self, timeout=30.0):
        """SIGTERM (a durable queue commits what is queued), SIGKILL after `timeout`.
        Returns the exit status, or None if it had to be killed."""
        status = None
        if self.alive():
            self.proc.terminate()
            try:
                status = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc is not None:
            status = self.proc.returncode
        if self in _RUNNING:
            _RUNNING.remove(self)
        return status


def stop_all():
    for server in list(_RUNNING):
        try:
            server.stop(timeout=5.0)
        except Exception as e:  # keep stopping the others
            print("stopping %s: %s" % (server.name, e), file=sys.stderr, flush=True)


def on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)
