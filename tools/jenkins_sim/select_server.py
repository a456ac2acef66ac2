"""One thread serving several simulators with a selector: the benchmark's transport.

The threaded server (server.py) gives every kept-alive connection its own thread. That is what
the tests want (a fault can hang or reset one connection without touching the others), but under a
benchmark's load every request then queues for the GIL behind every other busy thread, and a
simulator answers in tens of milliseconds what it computes in one. Here one thread parses the
requests of all connections of all its simulators, answers them one after the other with the
same handlers and request log as the threaded server, and runs the worlds' ticks between them.

Faults that need a connection of their own (delay, hang, reset, refuse, restart, lost responses,
hostile bodies) are not served here: a request that matches such a rule is answered 500 with the
reason, so a misuse shows. Status faults (`status`, `spurious404`) and the 503 phase work.
"""

import os
import selectors
import socket
import time
import traceback
from email.utils import formatdate
from http import HTTPStatus

from . import control, handlers

MAX_HEAD = 64 * 1024  # a request head longer than this is answered 431 and closed
SERVER = "Jetty(10.0.20)"


class _Conn:
    __slots__ = ("sock", "sim", "inbuf", "outbuf", "continued", "close_after")

    def __init__(self, sock, sim):
        self.sock = sock
        self.sim = sim
        self.inbuf = b""
        self.outbuf = b""
        self.continued = False  # "100 Continue" sent for the request being read
        self.close_after = False  # close once outbuf is written


class SelectServer:
    """Serves `sims` (Simulator objects that were never start()ed) from the calling thread.

    open() binds one loopback listener per simulator (port 0 = any free port) and sets each
    simulator's port and base URL; run(stop_fd) serves until `stop_fd` (a readable file
    descriptor, e.g. stdin) reports EOF or becomes readable with data "stop"."""

    def __init__(self, sims, tick_s=0.05, host="127.0.0.1"):
        self.sims = sims
        self.tick_s = tick_s
        self.host = host
        self.sel = selectors.DefaultSelector()
        self.listeners = []
        # How well this thread keeps up: the length of each stretch between two looks at the
        # sockets (a request that arrives during one waits for its end), and the CPU it used.
        self.busy_ms = []
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def open(self):
        for sim in self.sims:
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((self.host, 0))
            lsock.listen(1024)
            lsock.setblocking(False)
            sim.port = lsock.getsockname()[1]
            if not sim.world.spec.get("url"):
                sim.world.base_url = sim.url
            self.listeners.append(lsock)
            self.sel.register(lsock, selectors.EVENT_READ, ("listen", sim))
        return self

    def run(self, stop_fd):
        self.sel.register(stop_fd, selectors.EVENT_READ, ("stop", None))
        wall0, cpu0 = time.monotonic(), time.process_time()
        next_tick = time.monotonic()
        woke = None
        while True:
            now = time.monotonic()
            if now >= next_tick:
                for sim in self.sims:
                    try:
                        sim.world.tick()
                    except Exception:  # a simulator bug: keep it visible, keep serving
                        sim.errors.append(traceback.format_exc())
                next_tick = now + self.tick_s
            if woke is not None:
                self.busy_ms.append((time.monotonic() - woke) * 1000.0)
            ready = self.sel.select(max(0.0, next_tick - time.monotonic()))
            woke = time.monotonic()
            for key, events in ready:
                kind, obj = key.data
                if kind == "listen":
                    self._accept(key.fileobj, obj)
                elif kind == "stop":
                    if not os.read(stop_fd, 4096):
                        self.wall_s = time.monotonic() - wall0
                        self.cpu_s = time.process_time() - cpu0
                        return self.close()
                else:
                    if events & selectors.EVENT_READ:
                        self._read(obj)
                    if events & selectors.EVENT_WRITE and obj.sock.fileno() >= 0:
                        self._flush(obj)

    def load(self):
        """{"busy_ms_p50", "busy_ms_p99", "busy_ms_max", "cpu_fraction"} of the last run()."""
        busy = sorted(self.busy_ms)
        pick = lambda q: round(busy[min(len(busy) - 1, int(q * len(busy)))], 2) if busy else 0.0
        return {"busy_ms_p50": pick(0.5), "busy_ms_p99": pick(0.99),
                "busy_ms_max": round(busy[-1], 2) if busy else 0.0,
                "cpu_fraction": round(self.cpu_s / self.wall_s, 3) if self.wall_s else 0.0}

    def close(self):
        for key in list(self.sel.get_map().values()):
            kind, obj = key.data
            if kind in ("listen", "conn"):
                key.fileobj.close()
        self.sel.close()

    # ---------------------------------------------------------------- connections

    def _accept(self, lsock, sim):
        while True:
            try:
                sock, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, sim)
            self.sel.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _drop(self, conn):
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _read(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self._drop(conn)
        if not data:
            return self._drop(conn)
        conn.inbuf += data
        while conn.sock.fileno() >= 0 and not conn.close_after:
            if not self._serve_one(conn):
                break
        self._flush(conn)

    def _flush(self, conn):
        while conn.outbuf:
            try:
                n = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return self._drop(conn)
            conn.outbuf = conn.outbuf[n:]
        if not conn.outbuf and conn.close_after:
            return self._drop(conn)
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        if self.sel.get_key(conn.sock).events != want:
            self.sel.modify(conn.sock, want, ("conn", conn))

    # ---------------------------------------------------------------- requests

    def _serve_one(self, conn):
        """Answers the first complete request in conn.inbuf; False when none is complete yet."""
        head_end = conn.inbuf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(conn.inbuf) > MAX_HEAD:
                self._answer(conn, "GET", handlers.Response(431, "request head too large"),
                             close=True)
            return False
        lines = conn.inbuf[:head_end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._answer(conn, "GET", handlers.Response(400, "bad request line"), close=True)
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            length = int(lower.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if length < 0 or "chunked" in lower.get("transfer-encoding", "").lower():
            self._answer(conn, method, handlers.Response(400, "unsupported body framing"),
                         close=True)
            return False
        if len(conn.inbuf) < head_end + 4 + length:
            if lower.get("expect", "").lower() == "100-continue" and not conn.continued:
                conn.outbuf += b"HTTP/1.1 100 Continue\r\n\r\n"
                conn.continued = True
            return False
        body = conn.inbuf[head_end + 4:head_end + 4 + length]
        conn.inbuf = conn.inbuf[head_end + 4 + length:]
        conn.continued = False
        close = (lower.get("connection", "").lower() == "close" or version == "HTTP/1.0")
        self._dispatch(conn, method, target, headers, body, close)
        return True

    def _dispatch(self, conn, method, target, headers, body, close):
        sim = conn.sim
        raw_path, _, query = target.partition("?")
        if raw_path.startswith("/_fake/"):
            resp = control.handle(sim, method, raw_path[len("/_fake/"):].strip("/"), query, body)
            return self._answer(conn, method, resp, close=close, jenkins=True)
        entry = sim.log_request(method, raw_path, query, headers, body)
        started = time.monotonic()
        jenkins = True
        if time.monotonic() < sim.unavailable_until:
            resp, jenkins = handlers.Response(503, "Jenkins is getting ready to work"), False
        else:
            rule = sim.faults.match(method, raw_path)
            if rule is not None and rule.kind in ("status", "spurious404"):
                resp = handlers.Response(rule.status, "injected fault %s" % rule.fault)
            elif rule is not None:
                resp = handlers.Response(500, "fault %s needs the threaded simulator server"
                                         % rule.fault)
            else:
                resp = sim.answer(method, raw_path, query, headers, body)
        self._answer(conn, method, resp, close=close, jenkins=jenkins)
        entry["service_ms"] = round((time.monotonic() - started) * 1000.0, 3)

    def _answer(self, conn, method, resp, close=False, jenkins=True):
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = ""
        head = ["HTTP/1.1 %d %s" % (resp.status, reason), "Server: " + SERVER,
                "Date: " + formatdate(usegmt=True)]
        if jenkins:
            world = conn.sim.world
            head += ["X-Jenkins: " + world.version, "X-Jenkins-Session: " + world.session_id]
        head += ["%s: %s" % kv for kv in resp.headers]
        head.append("Content-Length: %d" % len(resp.body))
        if close:
            head.append("Connection: close")
            conn.close_after = True
        conn.outbuf += ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if method != "HEAD":
            conn.outbuf += resp.body
