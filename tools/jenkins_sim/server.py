"""HTTP transport and the Simulator object (listener lifecycle, request log, faults, restart)."""

import socket
import struct
import threading
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control, handlers
from .faults import FaultSet
from .model import Clock, World


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    ssl_context = None  # set for an https simulator

    def handle_error(self, request, client_address):
        pass  # resets and client timeouts are expected under fault injection

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake runs on the connection's own thread (its first read), so a client
            # that refuses our certificate never stalls the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    # Open connections are tracked so that closing the listener (refuse, restart) also drops
    # kept-alive connections, as a controller going down does; otherwise a client with a
    # persistent connection would never notice the refusal.
    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        with self.conns_lock:
            conns, self.conns = list(self.conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Simulator:
    """One simulated Jenkins controller on a loopback port.

    In-process use:  sim = Simulator(world_spec); sim.start(); ... sim.stop()
    All control operations are methods here (see control.py for their HTTP names).
    """

    def __init__(self, world=None, realtime=False, host="127.0.0.1", start_ms=1_700_000_000_000,
                 tick_s=None, ssl_context=None):
        """realtime: the clock follows the wall clock (time.time(), so request-log times can be
        compared with a test's own time.time()). tick_s: with realtime, a background thread calls
        World.tick() every tick_s seconds, so builds end and queue items start on time even when
        nobody sends a request (default 0.02 s in real time; 0 disables). ssl_context: an
        ssl.SSLContext (server side) to serve https instead of http."""
        self.host = host
        self.ssl_context = ssl_context
        self.tick_s = (0.02 if tick_s is None else tick_s) if realtime else 0
        self.port = 0
        self.world = World(world or {}, Clock(start_ms, realtime))
        self.faults = FaultSet()
        self.log = []
        self.errors = []  # tracebacks of simulator bugs (tests assert it stays empty)
        self.log_lock = threading.Lock()
        self.unavailable_until = 0.0  # monotonic deadline of the 503 phase
        self.stopping = threading.Event()
        self._server = None
        self._thread = None
        self._listen_lock = threading.Lock()
        self._timers = []
        self._ticker = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self):
        return "%s://%s:%d/" % ("https" if self.ssl_context else "http", self.host, self.port)

    def start(self, port=0):
        self.port = port
        self._open_listener()
        if not self.world.spec.get("url"):
            self.world.base_url = self.url
        if self.tick_s and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="jenkins-sim-tick",
                                            daemon=True)
            self._ticker.start()
        return self

    def _tick_loop(self):
        while not self.stopping.wait(self.tick_s):
            try:
                self.world.tick()
            except Exception:  # a simulator bug: keep it visible, keep ticking
                self.errors.append(traceback.format_exc())

    def _open_listener(self):
        with self._listen_lock:
            if self._server is not None or self.stopping.is_set():
                return
            srv = _Server((self.host, self.port), _Handler, bind_and_activate=False)
            srv.conns = set()
            srv.ssl_context = self.ssl_context
            srv.conns_lock = threading.Lock()
            try:
                srv.server_bind()
                srv.server_activate()
            except OSError:
                srv.server_close()
                raise
            srv.sim = self
            self.port = srv.server_address[1]
            self._server = srv
            self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="jenkins-sim", daemon=True)
            self._thread.start()

    def _close_listener(self):
        with self._listen_lock:
            srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            srv.drop_connections()

    def stop(self):
        self.stopping.set()
        for t in self._timers:
            t.cancel()
        self._close_listener()

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ control operations

    def load_world(self, spec):
        self.world.load(spec)
        if not spec.get("url") and self.port:
            self.world.base_url = self.url

    def advance(self, ms=0, seconds=0):
        self.world.advance(int(ms) + int(float(seconds) * 1000))
        return self.world.clock.now()

    def refuse(self, ms):
        """Close the listener (connection refused) for `ms` real milliseconds."""
        self._close_listener()
        t = threading.Timer(ms / 1000.0, self._open_listener)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def restart(self, refuse_ms=1000, unavailable_ms=1000):
        """Controller restart: refuse connections for T1, then 503 for T2 (real time).

        The world changes at once: new session id, running builds ABORTED, queued items kept,
        LeftItems dropped."""
        self.world.restart()
        if refuse_ms > 0:
            self._close_listener()

            def reopen():
                self.unavailable_until = time.monotonic() + unavailable_ms / 1000.0
                self._open_listener()
            t = threading.Timer(refuse_ms / 1000.0, reopen)
            t.daemon = True
            self._timers.append(t)
            t.start()
        else:
            self.unavailable_until = time.monotonic() + unavailable_ms / 1000.0

    def add_fault(self, fault, path=".*", method=".*", count=None, probability=1.0, seed=0,
                  refuse_ms=1000, unavailable_ms=0):
        return self.faults.add(fault=fault, path=path, method=method, count=count,
                               probability=probability, seed=seed, refuse_ms=refuse_ms,
                               unavailable_ms=unavailable_ms)

    def clear_faults(self):
        self.faults.clear()

    def requests(self):
        with self.log_lock:
            return list(self.log)

    def builds(self):
        """Every build of every job, oldest first per job, as plain dicts: job (fullName),
        number, queueId, node ('' = built-in, None = flyweight), executor (number or None),
        start / end (clock ms; end None while building), result, description, params {name: value}.
        Executor occupancy over time is exactly the [start, end) intervals per (node, executor)."""
        w = self.world
        out = []
        with w.lock:
            w.tick()
            for job in w.jobs.values():
                for b in job.builds:
                    out.append({
                        "job": job.full_name, "number": b.number, "queueId": b.queue_id,
                        "node": None if b.node is None else b.node.name,
                        "executor": None if b.executor is None else b.executor.number,
                        "start": b.timestamp,
                        "end": None if b.building else b.timestamp + b.duration,
                        "result": b.result, "description": b.description,
                        "params": {k: v for k, v in b.params}})
        return out

    def clear_requests(self):
        with self.log_lock:
            self.log = []

    def record(self, entry):
        with self.log_lock:
            self.log.append(entry)

    # What every transport does around a Jenkins request (server.py's threaded one and
    # select_server.py's): log it, and answer it with the handlers.

    def log_request(self, method, raw_path, query, headers, body):
        """Appends a request-log entry and returns it; the transport sets entry["service_ms"]
        (real time spent answering, waits included: how far the simulator keeps up)."""
        entry = {"method": method, "path": raw_path, "query": query, "headers": headers,
                 "body": body.decode("utf-8", "replace"), "time": self.world.clock.now(),
                 "wall": time.time()}
        self.record(entry)
        return entry

    def answer(self, method, raw_path, query, headers, body):
        """The handlers' Response; a simulator bug is answered 500, shown, and kept in errors."""
        try:
            return handlers.handle(self.world, handlers.Request(method, raw_path, query, headers,
                                                                body))
        except Exception:
            text = traceback.format_exc()
            sys.stderr.write(text)
            self.errors.append(text)
            return handlers.Response(500, "simulator error\n" + text)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Jetty(10.0.20)"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def version_string(self):
        return self.server_version

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        sim = self.server.sim
        raw_path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if raw_path.startswith("/_fake/"):
            self._send(control.handle(sim, self.command, raw_path[len("/_fake/"):].strip("/"),
                                      query, body))
            return
        entry = sim.log_request(self.command, raw_path, query, dict(self.headers.items()), body)
        started = time.monotonic()
        try:
            self._serve(sim, raw_path, query, body)
        finally:
            entry["service_ms"] = round((time.monotonic() - started) * 1000.0, 3)

    def _serve(self, sim, raw_path, query, body):
        if time.monotonic() < sim.unavailable_until:
            self._send(handlers.Response(503, "Jenkins is getting ready to work"), jenkins=False)
            return
        rule = sim.faults.match(self.command, raw_path)
        lost = False
        if rule is not None:
            kind = rule.kind
            if kind in ("status", "spurious404"):
                self._send(handlers.Response(rule.status, "injected fault %s" % rule.fault))
                return
            if kind == "delay":
                time.sleep(rule.delay_ms / 1000.0)
            elif kind == "hang":
                sim.stopping.wait(600)
                self._reset()
                return
            elif kind == "reset":
                self._reset(partial=True)
                return
            elif kind == "refuse":
                self._reset()
                sim.refuse(rule.refuse_ms)
                return
            elif kind == "restart":
                self._reset()
                threading.Thread(target=sim.restart, args=(rule.refuse_ms, rule.unavailable_ms),
                                 daemon=True).start()
                return
            elif kind == "lost_response":
                lost = True
            elif kind == "body":
                self._hostile_body(rule.arg)
                return
        resp = sim.answer(self.command, raw_path, query, dict(self.headers.items()), body)
        if lost:
            self._reset(partial=True)
            return
        self._send(resp)

    def _send(self, resp, jenkins=True):
        world = self.server.sim.world
        self.send_response(resp.status)
        if jenkins:
            self.send_header("X-Jenkins", world.version)
            self.send_header("X-Jenkins-Session", world.session_id)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    def _hostile_body(self, shape):
        """A 200 reply shaped to hurt the client's parser or memory (fault body:<shape>)."""
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if shape in ("deep", "utf8"):
                body = (b"[" * (500 * 1024) if shape == "deep"
                        else b'{"jobs":[{"name":"\xc3\x28","buildable":true}],"crumb":"\xff",'
                             b'"computer":[],"id":1,"number":1,"builds":[],"nodes":[]}')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif shape == "declared":
                self.send_header("Content-Length", str(1 << 30))
                self.end_headers()
                self.wfile.write(b'{"jobs":[')
            else:  # huge: chunked, 64 MiB in 1 MiB chunks, until the client hangs up
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"[0," * (1 << 18) + b"0]," * 0
                for _ in range(64):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass  # the client refused the rest: what it should do

    def _reset(self, partial=False):
        """Abort the connection with a TCP RST (optionally after a partial status line)."""
        try:
            if partial:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-")
                self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass
