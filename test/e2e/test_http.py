"""The HTTP status endpoint (issue 6): JSON shapes of /api/*, the Prometheus text of /metrics
(parsed, not string-compared), 4xx answers and limits, the dashboard in headless Chromium.

Every test starts its own roundhouse with --status-port on a free loopback port.
"""

import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import gearman_wire as gw
import server_fixture
from server_fixture import ServerTestCase, free_port, roundhouse_only

REPO_ROOT = server_fixture.REPO_ROOT
HOST = "127.0.0.1"


# ---- Prometheus text format ------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """Returns ({name: type}, [(name, {label: value}, float)]). Raises on any malformed line."""
    types, samples = {}, []
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "duplicate TYPE for " + name
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "malformed sample line: %r" % line
        name, _, label_text, value = m.groups()
        labels = {}
        pos = 0
        label_text = label_text or ""
        while pos < len(label_text):
            lm = _LABEL.match(label_text, pos)
            assert lm, "malformed labels: %r" % line
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                         lm.group(2))
            pos = lm.end()
        samples.append((name, labels, float(value)))
    # Every sample belongs to a declared family (histograms through their suffixes).
    for name, _, _ in samples:
        base = re.sub(r'_(bucket|sum|count)$', "", name)
        assert name in types or types.get(base) == "histogram", "sample without TYPE: " + name
    return types, samples


def metric(samples, name, **labels):
    found = [v for n, l, v in samples if n == name and all(l.get(k) == v for k, v in labels.items())]
    if len(found) != 1:
        raise AssertionError("%s%r: %d samples" % (name, labels, len(found)))
    return found[0]


# ---- HTTP helpers ----------------------------------------------------------------------------

class HttpServerCase(ServerTestCase):
    """A roundhouse with the status endpoint; `server_args` extra, `durable` = SQLite store."""

    server_args = ()
    durable = False

    def setUp(self):
        if server_fixture.reference_mode():
            self.skipTest("roundhouse-only: gearmand has no status endpoint")
        args = ["--status-port", str(free_port()), "--status-listen", HOST]
        kw = {}
        if self.durable:
            args += ["-q", "sqlite", "--libsqlite3-db", "roundhouse.db"]
            kw["use_default_args"] = False
        self.server = self.start_server(*args, *self.server_args, **kw)
        self.http_port = int(args[1])

    def http(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get_json(self, path):
        status, headers, body = self.http("GET", path)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
        return json.loads(body)

    def raw(self, data, read_until_close=True, timeout=5):
        """Sends raw bytes; returns everything the server sent until it closed."""
        with socket.create_connection((HOST, self.http_port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    def assertShape(self, obj, shape, where="$"):
        """`shape` is a dict of key -> type (or nested shape / [shape]); keys must match exactly."""
        if isinstance(shape, dict):
            self.assertIsInstance(obj, dict, where)
            self.assertEqual(sorted(obj), sorted(shape), where)
            for k, sub in shape.items():
                self.assertShape(obj[k], sub, where + "." + k)
        elif isinstance(shape, list):
            self.assertIsInstance(obj, list, where)
            for i, item in enumerate(obj):
                self.assertShape(item, shape[0], "%s[%d]" % (where, i))
        elif shape is int:
            self.assertTrue(isinstance(obj, int) and not isinstance(obj, bool), where)
        elif shape is type(None):
            self.assertIsNone(obj, where)
        else:
            self.assertIsInstance(obj, shape, where)


FUNCTION_SHAPE = {"name": str, "queued": {"high": int, "normal": int, "low": int},
                  "queued_total": int, "running": int, "workers": int, "submitted": int,
                  "completed": int, "failed": int}
STATUS_SHAPE = {
    "server": {"version": str, "uptime_ms": int, "started_unix": int, "connections": int},
    "store": {"type": str, "path": str, "commits": int, "failed_commits": int,
              "pending_adds": int},
    "functions": [FUNCTION_SHAPE],
    "totals": {"functions": int, "queued": int, "running": int, "workers": int},
    "jenkins": {"enabled": bool, "masters": int},
}
WORKER_SHAPE = {"fd": int, "address": str, "client_id": str, "functions": [str],
                "running": [str], "sleeping": bool}
JOB_SHAPE = {"handle": str, "function": str, "unique": str, "priority": str, "state": str,
             "background": bool, "ignored": bool, "age_ms": int, "when": int, "retries": int,
             "worker": str}


class Populated(HttpServerCase):
    """Jobs and workers present, SQLite store: the documents and metrics agree with them."""

    durable = True

    def populate(self):
        client = self.connect()
        # build: one HIGH, two NORMAL, one LOW background job; deploy: two NORMAL.
        client.submit(gw.SUBMIT_JOB_HIGH_BG, b"build", b"b-high", b"x")
        client.submit(gw.SUBMIT_JOB_BG, b"build", b"b-n1", b"x")
        client.submit(gw.SUBMIT_JOB_BG, b"build", b"b-n2", b"x")
        client.submit(gw.SUBMIT_JOB_LOW_BG, b"build", b"b-low", b"x")
        client.submit(gw.SUBMIT_JOB_BG, b"deploy", b"d-1", b"x")
        client.submit(gw.SUBMIT_JOB_BG, b"deploy", b"d-2", b"x")
        worker = self.connect()
        worker.set_client_id(b"builder-1")
        worker.can_do(b"build")
        # HIGH first: complete it; then the first NORMAL: fail it; then keep one running.
        for outcome in ("complete", "fail", None):
            pkt = worker.grab()
            self.assertEqual(pkt.type, gw.JOB_ASSIGN)
            handle = pkt.args(3)[0]
            if outcome == "complete":
                worker.work_complete(handle, b"ok")
            elif outcome == "fail":
                worker.work_fail(handle)
        worker.assert_quiet()
        self.running_handle = handle.decode()
        return client, worker

    def test_status_document_has_every_field_and_the_queue_counts(self):
        self.populate()
        doc = self.get_json("/api/status")
        self.assertShape(doc, STATUS_SHAPE)
        self.assertEqual(doc["store"]["type"], "sqlite")
        self.assertGreater(doc["store"]["commits"], 0)
        self.assertEqual(doc["server"]["connections"], 2)
        funcs = {f["name"]: f for f in doc["functions"]}
        self.assertEqual([f["name"] for f in doc["functions"]], ["build", "deploy"])
        self.assertEqual(funcs["build"]["queued"], {"high": 0, "normal": 0, "low": 1})
        self.assertEqual(funcs["build"]["running"], 1)
        self.assertEqual(funcs["build"]["workers"], 1)
        self.assertEqual((funcs["build"]["submitted"], funcs["build"]["completed"],
                          funcs["build"]["failed"]), (4, 1, 1))
        self.assertEqual(funcs["deploy"]["queued"], {"high": 0, "normal": 2, "low": 0})
        self.assertEqual(funcs["deploy"]["workers"], 0)
        self.assertEqual(doc["totals"], {"functions": 2, "queued": 3, "running": 1, "workers": 1})
        self.assertIsInstance(doc["jenkins"]["enabled"], bool)  # adapters built in
        self.assertEqual(doc["jenkins"]["masters"], 0)

    def test_workers_document_lists_the_worker_and_its_job(self):
        self.populate()
        doc = self.get_json("/api/workers")
        self.assertShape(doc, {"workers": [WORKER_SHAPE]})
        self.assertEqual(len(doc["workers"]), 1)
        w = doc["workers"][0]
        self.assertEqual(w["client_id"], "builder-1")
        self.assertEqual(w["address"], HOST)
        self.assertEqual(w["functions"], ["build"])
        self.assertEqual(w["running"], [self.running_handle])

    def test_jobs_document_filters_by_function_and_limit(self):
        self.populate()
        doc = self.get_json("/api/jobs")
        self.assertShape(doc, {"function": type(None), "limit": int, "matched": int,
                               "jobs": [JOB_SHAPE]})
        self.assertEqual((doc["limit"], doc["matched"]), (100, 4))
        by_unique = {j["unique"]: j for j in doc["jobs"]}
        self.assertEqual(sorted(by_unique), ["b-low", "b-n2", "d-1", "d-2"])
        self.assertEqual(by_unique["b-n2"]["state"], "running")
        self.assertEqual(by_unique["b-n2"]["handle"], self.running_handle)
        self.assertEqual(by_unique["b-n2"]["worker"], "builder-1")
        self.assertEqual(by_unique["b-low"]["priority"], "low")
        self.assertEqual(by_unique["b-low"]["state"], "queued")
        for job in doc["jobs"]:
            self.assertTrue(job["background"])
            self.assertGreaterEqual(job["age_ms"], 0)
            self.assertLess(job["age_ms"], 60000)

        doc = self.get_json("/api/jobs?function=deploy&limit=1")
        self.assertEqual(doc["function"], "deploy")
        self.assertEqual((doc["limit"], doc["matched"], len(doc["jobs"])), (1, 2, 1))
        self.assertEqual(doc["jobs"][0]["unique"], "d-1")  # creation order
        doc = self.get_json("/api/jobs?function=no%20such")
        self.assertEqual((doc["function"], doc["matched"], doc["jobs"]), ("no such", 0, []))

    def test_metrics_parse_and_agree_with_the_queue(self):
        self.populate()
        status, headers, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        types, samples = parse_prometheus(body.decode())
        self.assertEqual(types["roundhouse_jobs_submitted_total"], "counter")
        self.assertEqual(types["roundhouse_jobs_queued"], "gauge")
        self.assertEqual(types["roundhouse_store_commit_seconds"], "histogram")
        self.assertEqual(metric(samples, "roundhouse_jobs_submitted_total", function="build"), 4)
        self.assertEqual(metric(samples, "roundhouse_jobs_submitted_total", function="deploy"), 2)
        self.assertEqual(metric(samples, "roundhouse_jobs_completed_total", function="build"), 1)
        self.assertEqual(metric(samples, "roundhouse_jobs_failed_total", function="build"), 1)
        self.assertEqual(metric(samples, "roundhouse_jobs_queued", function="build",
                                priority="low"), 1)
        self.assertEqual(metric(samples, "roundhouse_jobs_queued", function="deploy",
                                priority="normal"), 2)
        self.assertEqual(metric(samples, "roundhouse_jobs_running", function="build"), 1)
        self.assertEqual(metric(samples, "roundhouse_function_workers", function="build"), 1)
        self.assertEqual(metric(samples, "roundhouse_workers"), 1)
        self.assertEqual(metric(samples, "roundhouse_connections"), 2)
        self.assertEqual(metric(samples, "roundhouse_info", version=metric_version(samples)), 1)
        # The commit histogram: cumulative buckets ending in +Inf == _count == commits_total.
        buckets = sorted(((float(l["le"]), v) for n, l, v in samples
                          if n == "roundhouse_store_commit_seconds_bucket"),
                         key=lambda b: b[0])
        self.assertTrue(math.isinf(buckets[-1][0]))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))
        commits = metric(samples, "roundhouse_store_commits_total", store="sqlite")
        self.assertGreater(commits, 0)
        self.assertEqual(buckets[-1][1], commits)
        self.assertEqual(metric(samples, "roundhouse_store_commit_seconds_count"), commits)
        self.assertGreater(metric(samples, "roundhouse_store_commit_seconds_sum"), 0)
        self.assertEqual(metric(samples, "roundhouse_jenkins_masters"), 0)

    def test_label_values_are_escaped(self):
        client = self.connect()
        client.submit(gw.SUBMIT_JOB_BG, b'we"ird\\fn', b"u", b"x")
        _, _, body = self.http("GET", "/metrics")
        _, samples = parse_prometheus(body.decode())
        # The label carries the escaped form (doc/protocol.md): the backslash doubled.
        self.assertEqual(metric(samples, "roundhouse_jobs_queued", function='we"ird\\\\fn',
                                priority="normal"), 1)


def metric_version(samples):
    return [l for n, l, _ in samples if n == "roundhouse_info"][0]["version"]


class Requests(HttpServerCase):
    """Bad requests get 4xx answers; framing edge cases; the dashboard's files."""

    def test_unknown_path_is_404_with_a_json_error(self):
        status, headers, body = self.http("GET", "/api/nope")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"]["status"], 404)

    def test_wrong_method_is_405_with_allow(self):
        for method in ("POST", "PUT", "DELETE"):
            status, headers, _ = self.http(method, "/api/status", body=b"")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers["Allow"], "GET, HEAD")

    def test_bad_query_values_are_400(self):
        for query in ("limit=0", "limit=10001", "limit=abc", "limit=-1", "limit=", "bogus=1"):
            status, _, body = self.http("GET", "/api/jobs?" + query)
            self.assertEqual(status, 400, query)
            self.assertIn("message", json.loads(body)["error"])
        self.assertEqual(self.http("GET", "/api/jobs?limit=10000")[0], 200)
        self.assertEqual(self.http("GET", "/api/status?x=1")[0], 400)

    def test_head_has_headers_and_no_body(self):
        status, headers, body = self.http("HEAD", "/api/status")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(headers["Content-Length"]), 0)

    def test_oversized_head_is_431_and_closed(self):
        reply = self.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 431 "), reply[:80])

    def test_a_body_over_the_limit_is_413(self):
        reply = self.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" +
                         b"a" * 4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 413 "), reply[:80])

    def test_garbage_is_400_and_closed(self):
        reply = self.raw(b"\x00\x01 nonsense\r\n\r\n")
        self.assertTrue(reply.startswith(b"HTTP/1.1 400 "), reply[:80])

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = (b"GET /api/workers HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /api/jenkins HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = self.raw(reqs)
        statuses = re.findall(rb"^HTTP/1\.1 (\d{3}) ", reply, re.M)
        self.assertEqual(statuses, [b"200", b"404", b"200"])

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=5)
        try:
            for _ in range(20):
                conn.request("GET", "/api/status")
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                json.loads(resp.read())
        finally:
            conn.close()

    def test_jenkins_document_without_masters(self):
        doc = self.get_json("/api/jenkins")
        self.assertEqual(sorted(doc), ["enabled", "masters"])
        self.assertEqual(doc["masters"], [])

    def test_dashboard_files_are_served(self):
        status, headers, body = self.http("GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertIn(b'<script src="/dashboard.js">', body)
        self.assertNotIn(b"http://", body.replace(b'href="/', b""))  # no external assets
        status, headers, body = self.http("GET", "/dashboard.js")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/javascript; charset=utf-8"))
        self.assertIn(b"/api/status", body)
        status, headers, _ = self.http("GET", "/dashboard.css")
        self.assertEqual((status, headers["Content-Type"]), (200, "text/css; charset=utf-8"))


class Limits(HttpServerCase):
    """The listener's connection caps (server/http/status_server.h): past 16 connections from one
    address the next gets 503 and is closed; at 64 in all, the connection waiting longest for a
    request is closed to make room; the others keep working; the Gearman port is unaffected.
    (Slow peers and output budgets: test/adversarial/test_slow_http.py.)"""

    PER_ADDRESS = 16

    def test_connections_past_the_per_address_cap_get_503(self):
        held = []
        try:
            for _ in range(self.PER_ADDRESS):
                s = socket.create_connection((HOST, self.http_port), timeout=5)
                held.append(s)
            # Make sure the server accepted them all before the next one arrives.
            held[-1].sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(held[-1].recv(12).startswith(b"HTTP/1.1 200"))
            reply = self.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(reply.startswith(b"HTTP/1.1 503 "), reply[:80])
            self.assertIn(b"Connection: close", reply)
        finally:
            for s in held:
                s.close()
        # Once they are gone, new connections are served again.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.http("GET", "/api/status")[0] == 200:
                break
            time.sleep(0.05)
        else:
            self.fail("the endpoint did not recover after connections closed")
        with self.server.connect() as conn:
            self.assertTrue(conn.admin("version").startswith(b"OK "))


# ---- a simulated Jenkins master --------------------------------------------------------------

TOOLS = os.path.join(REPO_ROOT, "tools")
JENKINS_USER, JENKINS_TOKEN = "rh", "tok-http-test"
JENKINS_STD_PARAMS = [{"type": "string", "name": "GEARMAN_UNIQUE"},
                      {"type": "node", "name": "GEARMAN_NODE"}]


def jenkins_world():
    """Two nodes: u1 (linux, 2 executors), w1 (windows, 1); builds of gate-a never finish."""
    return {"version": "2.440.3",
            "users": {JENKINS_USER: {"token": JENKINS_TOKEN, "permissions": "all"}},
            "builtin": {"numExecutors": 0, "labels": [], "mode": "EXCLUSIVE"},
            "nodes": [{"name": "u1", "labels": ["linux"], "numExecutors": 2},
                      {"name": "w1", "labels": ["windows"], "numExecutors": 1}],
            "jobs": [{"name": "gate-a", "label": "linux", "parameters": JENKINS_STD_PARAMS,
                      "build": {"duration": None}}]}


class JenkinsServerCase(HttpServerCase):
    """A roundhouse with a simulated Jenkins master registered with --jenkins (no tests of its
    own: WithJenkins and JenkinsDashboard share it)."""

    durable = True

    def setUp(self):
        if server_fixture.reference_mode():
            self.skipTest("roundhouse-only")
        if TOOLS not in sys.path:
            sys.path.insert(0, TOOLS)
        from jenkins_sim.server import Simulator
        self.sim = Simulator(jenkins_world(), realtime=True, tick_s=0.01).start(0)
        self.addCleanup(self.sim.stop)
        flag = "sim:base_url=%s,user=%s,api_token=%s,poll.computers_s=0.2,poll.queue_item_s=0.1," \
               "poll.build_s=0.2" % (self.sim.url, JENKINS_USER, JENKINS_TOKEN)
        self.server_args = ("--jenkins", flag)
        super().setUp()

    def wait_for(self, predicate, what, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.1)

    def start_build(self):
        client = self.connect()
        client.submit(gw.SUBMIT_JOB_BG, b"build:gate-a", b"0123456789abcdef0123456789abcdef",
                      b"{}")

        # The adapter must have a view of the master first: its nodes within 10 s (the
        # computers poll runs every 0.2 s), else the test fails.
        def viewed():
            doc = self.get_json("/api/jenkins")
            return doc["masters"] and doc["masters"][0]["nodes"]
        self.wait_for(viewed, "the Jenkins adapter to report the simulated master's nodes",
                      timeout=10)

        def started():
            doc = self.get_json("/api/jenkins")
            m = doc["masters"][0] if doc["masters"] else None
            return m and m["executors"]["busy"] == 1 and m["builds"] and doc
        return self.wait_for(started, "a started build on the simulated master")


class WithJenkins(JenkinsServerCase):
    """/api/jenkins and the metrics come from the adapter's summaries."""

    def test_jenkins_document_shows_master_nodes_executors_and_the_build(self):
        doc = self.start_build()
        self.assertTrue(doc["enabled"])
        m = doc["masters"][0]
        self.assertEqual(m["name"], "sim")
        self.assertEqual(m["health"], "HEALTHY")
        self.assertEqual(m["executors"], {"total": 3, "busy": 1, "idle": 2, "offline": 0})
        nodes = {n["name"]: n for n in m["nodes"] if n["executors"]}  # built-in has none
        self.assertEqual(sorted(nodes), ["u1", "w1"])
        self.assertEqual(len(nodes["u1"]["executors"]), 2)
        build = m["builds"][0]
        self.assertEqual(build["job"], "gate-a")
        self.assertEqual(build["function"], "build:gate-a")
        self.assertTrue(build["url"].startswith(self.sim.url), build)
        self.assertGreater(m["requests"], 0)

    def test_jenkins_metrics(self):
        self.start_build()
        _, _, body = self.http("GET", "/metrics")
        _, samples = parse_prometheus(body.decode())
        self.assertEqual(metric(samples, "roundhouse_jenkins_masters"), 1)
        self.assertEqual(metric(samples, "roundhouse_jenkins_master_up", master="sim"), 1)
        self.assertEqual(metric(samples, "roundhouse_jenkins_master_health", master="sim",
                                state="HEALTHY"), 1)
        self.assertGreater(metric(samples, "roundhouse_jenkins_requests_total", master="sim"), 0)
        self.assertEqual(metric(samples, "roundhouse_jenkins_request_errors_total",
                                master="sim"), 0)
        self.assertEqual(metric(samples, "roundhouse_jenkins_executors", master="sim",
                                state="busy"), 1)
        self.assertEqual(metric(samples, "roundhouse_jenkins_builds_in_flight", master="sim"), 1)
        self.assertEqual(metric(samples, "roundhouse_jobs_running", function="build:gate-a"), 1)


# ---- the dashboard in headless Chromium ----------------------------------------------------

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1280,900"]


def find_program(*names):
    for name in names:
        path = shutil.which(name) or (name if os.path.exists(name) else None)
        if path:
            return path
    return None


def artifact_dir():
    """meson's build dir meson-logs/ when run by meson test (ROUNDHOUSE_BIN is in the build
    tree), else a temporary directory."""
    binary = server_fixture.roundhouse_bin()
    build = os.path.dirname(os.path.dirname(binary))
    logs = os.path.join(build, "meson-logs")
    if os.path.isdir(logs):
        return logs
    return tempfile.mkdtemp(prefix="roundhouse-dashboard-")


class WebDriver:
    """The few W3C WebDriver commands the test needs, over urllib (no selenium)."""

    def __init__(self, driver_path, chromium_path):
        import urllib.request  # noqa: F401 (used by _call)
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([driver_path, "--port=%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=os.setpgrp)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status")["value"].get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.quit()
                raise RuntimeError("chromedriver did not become ready")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium_path, "args": CHROMIUM_ARGS}}}}
        self.session = self._call("POST", "/session", caps)["value"]["sessionId"]

    def _call(self, method, path, body=None):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError("WebDriver %s %s: %s" % (method, path, e.read()[:500]))

    def cmd(self, method, path, body=None):
        return self._call(method, "/session/%s%s" % (self.session, path), body)["value"]

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def script(self, source, *args):
        return self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    def screenshot(self, path):
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self):
        try:
            if getattr(self, "session", None):
                self._call("DELETE", "/session/" + self.session)
        except Exception:
            pass
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait()
        self.log.close()


TABLE_ROWS_JS = """
const out = {};
for (const id of ["functions", "workers", "jobs"]) {
  out[id] = [...document.querySelectorAll("#" + id + " tbody tr")].map(
      tr => [...tr.querySelectorAll("td")].map(td => td.textContent));
}
out.masters = [...document.querySelectorAll("#masters .master")].map(m => ({
  name: m.dataset.master,
  executors: [...m.querySelectorAll("tbody tr")].map(
      tr => [...tr.querySelectorAll("td")].map(td => td.textContent))}));
out.loaded = document.body.dataset.loaded || "";
return out;
"""


class Dashboard(HttpServerCase):
    """GET / in headless Chromium shows the queue and worker tables (and the executor view
    when Jenkins is configured); a screenshot is saved as an artifact."""

    durable = True
    populate = Populated.populate

    def setUp(self):
        self.chromium = find_program("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
        self.driver_path = find_program("chromedriver", "/usr/lib/chromium/chromedriver")
        if not self.chromium or not self.driver_path:
            self.skipTest("chromium / chromium-driver not installed (tools/dev installs them)")
        super().setUp()

    def wait_rows(self, driver, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            rows = driver.script(TABLE_ROWS_JS)
            if rows["loaded"] and predicate(rows):
                return rows
            if time.monotonic() > deadline:
                self.fail("dashboard did not show the expected rows: %r" % rows)
            time.sleep(0.2)

    def test_dashboard_shows_queues_workers_and_jobs(self):
        _, worker = self.populate()
        driver = WebDriver(self.driver_path, self.chromium)
        self.addCleanup(driver.quit)
        driver.get("http://%s:%d/" % (HOST, self.http_port))
        rows = self.wait_rows(driver, lambda r: len(r["functions"]) == 2)
        funcs = {r[0]: r[1:] for r in rows["functions"]}
        # high, normal, low, running, workers, submitted, completed, failed
        self.assertEqual(funcs["build"], ["0", "0", "1", "1", "1", "4", "1", "1"])
        self.assertEqual(funcs["deploy"], ["0", "2", "0", "0", "0", "2", "0", "0"])
        self.assertEqual(len(rows["workers"]), 1)
        self.assertEqual(rows["workers"][0][0], "builder-1")
        self.assertEqual(sorted(r[2] for r in rows["jobs"]), ["b-low", "b-n2", "d-1", "d-2"])

        # The page refreshes itself: a new queued job appears without a reload.
        self.connect().submit(gw.SUBMIT_JOB_BG, b"deploy", b"d-3", b"x")
        rows = self.wait_rows(driver, lambda r: any(x[0] == "deploy" and x[2] == "3"
                                                    for x in r["functions"]), timeout=10)
        out = os.path.join(artifact_dir(), "dashboard.png")
        driver.screenshot(out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print("dashboard screenshot: %s" % out, file=sys.stderr)

    def test_dashboard_is_readable_on_a_phone_sized_window(self):
        self.populate()
        driver = WebDriver(self.driver_path, self.chromium)
        self.addCleanup(driver.quit)
        driver.cmd("POST", "/window/rect", {"width": 390, "height": 844})
        driver.get("http://%s:%d/" % (HOST, self.http_port))
        self.wait_rows(driver, lambda r: len(r["functions"]) == 2)
        # Nothing wider than the viewport except inside the horizontally scrolling tables.
        overflow = driver.script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        self.assertLessEqual(overflow, 0)
        driver.screenshot(os.path.join(artifact_dir(), "dashboard-phone.png"))


EXECUTOR_VIEW_JS = """
return [...document.querySelectorAll("#masters .master")].map(m => ({
  name: m.dataset.master,
  title: m.querySelector("h3 .name").textContent,
  health: [...m.querySelectorAll("h3 .badge")].map(b => b.textContent),
  meta: [...m.querySelectorAll(".meta")].map(d => d.textContent),
  rows: [...m.querySelectorAll("table.executors tbody tr")].map(tr => ({
    node: tr.dataset.node || "", worker: tr.dataset.worker || "", state: tr.dataset.state || "",
    cells: [...tr.querySelectorAll("td")].map(td => td.textContent),
    links: [...tr.querySelectorAll("a")].map(a => a.getAttribute("href"))})),
  pending: [...m.querySelectorAll(".pending li")].map(li => li.textContent)}));
"""

# A laptop-sized window for the screenshot kept as doc/dashboard.png.
SCREENSHOT_WIDTH, SCREENSHOT_MAX_HEIGHT = 1366, 1600


class JenkinsDashboard(JenkinsServerCase):
    """The dashboard's per-master executor view against a simulated master with one of our
    builds running: the master, its health, every node's executor rows (busy/idle) and the
    build's link. With RH_DASHBOARD_SCREENSHOT=path, the page (jobs, workers and the master) is
    also saved there at laptop width; that is how doc/dashboard.png is made."""

    populate = Populated.populate
    wait_rows = Dashboard.wait_rows

    def setUp(self):
        self.chromium = find_program("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
        self.driver_path = find_program("chromedriver", "/usr/lib/chromium/chromedriver")
        if not self.chromium or not self.driver_path:
            self.skipTest("chromium / chromium-driver not installed (tools/dev installs them)")
        super().setUp()

    def test_dashboard_shows_each_masters_executors_and_the_running_build(self):
        self.populate()  # queues, a worker and jobs, so the page is a realistic one
        self.start_build()

        # The executor can turn busy before the adapter learns the build's number and URL.
        def known():
            doc = self.get_json("/api/jenkins")
            m = doc["masters"][0]
            return (m["builds"] and m["builds"][0]["state"] == "STARTED" and
                    m["builds"][0]["number"] > 0 and
                    any(e["build_url"] for n in m["nodes"] for e in n["executors"]) and m)
        m = self.wait_for(known, "the build's number and its executor")
        build = m["builds"][0]
        executors = [(n["name"], e["worker"], e["idle"], e["build_url"])
                     for n in m["nodes"] for e in n["executors"]]
        self.assertEqual(sorted((n, idle) for n, _, idle, _ in executors),
                         [("u1", False), ("u1", True), ("w1", True)])
        busy_worker = [w for _, w, idle, _ in executors if not idle][0]

        driver = WebDriver(self.driver_path, self.chromium)
        self.addCleanup(driver.quit)
        driver.get("http://%s:%d/" % (HOST, self.http_port))
        self.wait_rows(driver, lambda r: len(r["functions"]) >= 2 and r["workers"])

        def shown():
            view = driver.script(EXECUTOR_VIEW_JS)
            return view if view and any(r["state"] == "busy" for r in view[0]["rows"]) else None
        view = self.wait_for(shown, "the executor view to show the busy executor")
        self.assertEqual(len(view), 1, view)
        master = view[0]
        self.assertEqual((master["name"], master["title"]), ("sim", "sim"))
        self.assertEqual(master["health"], ["HEALTHY"])
        self.assertIn(self.sim.url, master["meta"][0])
        self.assertIn("1/3 executors busy", master["meta"][1])
        self.assertIn("1 build in flight", master["meta"][1])

        # One row per executor, in the adapter's order; the built-in node (0 executors) has none.
        self.assertEqual([(r["node"], r["worker"]) for r in master["rows"]],
                         [(n, w) for n, w, _, _ in executors])
        for row in master["rows"]:
            node, worker, state, build_cell = row["cells"]
            self.assertEqual((node, worker), (row["node"], row["worker"]))
            self.assertEqual(state, row["state"])
            if worker == busy_worker:
                self.assertEqual((node, state), ("u1", "busy"), row)
                self.assertTrue(build_cell.startswith("gate-a #%d" % build["number"]), row)
                self.assertIn("build:gate-a", build_cell)
                self.assertEqual(len(row["links"]), 1, row)
                self.assertEqual(row["links"][0].rstrip("/"), build["url"].rstrip("/"))
            else:
                self.assertEqual(state, "idle", row)
                self.assertEqual((build_cell, row["links"]), ("", []), row)
        self.assertEqual(master["pending"], [])  # the only build is on its executor

        self.save_screenshot(driver)

    def save_screenshot(self, driver):
        height = driver.script("return document.documentElement.scrollHeight;")
        driver.cmd("POST", "/window/rect", {"width": SCREENSHOT_WIDTH,
                                            "height": min(SCREENSHOT_MAX_HEIGHT, height + 120)})
        # Resize until the viewport (window minus browser chrome) holds the whole page.
        inner = driver.script("return window.innerHeight;")
        if inner < height:
            rect = driver.cmd("GET", "/window/rect")
            driver.cmd("POST", "/window/rect", {
                "width": SCREENSHOT_WIDTH,
                "height": min(SCREENSHOT_MAX_HEIGHT, rect["height"] + height - inner)})
        time.sleep(0.3)  # let the page re-lay out at the new size
        out = os.path.join(artifact_dir(), "dashboard-jenkins.png")
        driver.screenshot(out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print("dashboard screenshot: %s" % out, file=sys.stderr)
        wanted = os.environ.get("RH_DASHBOARD_SCREENSHOT")
        if wanted:
            shutil.copyfile(out, wanted)
            print("dashboard screenshot copied to %s" % wanted, file=sys.stderr)


class ExecutorCountsAgree(JenkinsServerCase):
    """One executor count everywhere: admin `jenkins list` and `jenkins show`, /api/jenkins,
    /metrics and (with chromium) the dashboard show the same busy/idle/offline numbers, also
    with a node offline (the rule: doc/jenkins.md "Admin commands"). Two views that counted
    with different rules (offline executors idle in one, not in the other) fail here."""

    def views(self, driver=None):
        """{view: (total, busy, idle, offline)} from every view, or None for views that do not
        say the number (the dashboard shows busy/total and offline only)."""
        out = {}
        with self.connect() as conn:
            fields = conn.admin("jenkins list").decode().splitlines()[0].split("\t")
            out["jenkins list"] = (int(fields[5]), None, int(fields[4]), None)
            show = dict(line.split(" ", 1) for line in
                        conn.admin("jenkins show sim").decode().splitlines() if " " in line)
        out["jenkins show"] = tuple(int(show["state.executors_" + k])
                                    for k in ("total", "busy", "idle", "offline"))
        x = self.get_json("/api/jenkins")["masters"][0]["executors"]
        out["/api/jenkins"] = (x["total"], x["busy"], x["idle"], x["offline"])
        _, _, body = self.http("GET", "/metrics")
        _, samples = parse_prometheus(body.decode())
        by_state = {st: int(metric(samples, "roundhouse_jenkins_executors", master="sim",
                                   state=st)) for st in ("busy", "idle", "offline")}
        out["/metrics"] = (sum(by_state.values()), by_state["busy"], by_state["idle"],
                           by_state["offline"])
        if driver is not None:
            view = driver.script(EXECUTOR_VIEW_JS)
            meta = view[0]["meta"][1] if view else ""
            m = re.search(r"(\d+)/(\d+) executors busy(?: · (\d+) offline)?", meta)
            out["dashboard"] = (int(m.group(2)), int(m.group(1)), None,
                                int(m.group(3) or 0)) if m else None
        return out

    def assert_agree(self, expected, driver=None):
        """Until every view shows `expected` (views refresh on their own schedule)."""
        last = {}

        def agree():
            last.update(self.views(driver))
            return all(v is not None and all(a is None or a == b for a, b in zip(v, expected))
                       for v in last.values())
        deadline = time.monotonic() + 15
        while not agree():
            if time.monotonic() > deadline:
                self.fail("views disagree with %r (total, busy, idle, offline): %r" % (
                    expected, last))
            time.sleep(0.2)

    def test_every_view_shows_the_same_counts_with_a_node_offline(self):
        driver = None
        chromium = find_program("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
        driver_path = find_program("chromedriver", "/usr/lib/chromium/chromedriver")
        if chromium and driver_path:
            driver = WebDriver(driver_path, chromium)
            self.addCleanup(driver.quit)
            driver.get("http://%s:%d/" % (HOST, self.http_port))
        self.start_build()  # one build on u1 (2 executors); w1 (1 executor) idle
        self.assert_agree((3, 1, 2, 0), driver)
        self.sim.world.set_offline("w1", "maintenance")  # idle executor of an offline node
        self.assert_agree((3, 1, 1, 1), driver)
        self.sim.world.set_offline("u1", "maintenance")  # its build keeps running: busy
        self.assert_agree((3, 1, 0, 2), driver)


@roundhouse_only("roundhouse's own option")
class StartUp(unittest.TestCase):
    def test_a_busy_http_port_fails_start_up_with_a_message(self):
        binary = server_fixture.roundhouse_bin()
        if not os.path.exists(binary):
            self.skipTest("no binary")
        with socket.socket() as s:
            s.bind((HOST, 0))
            s.listen(1)
            port = s.getsockname()[1]
            done = subprocess.run([binary, "-q", "none", "--port", "0", "--listen", HOST,
                                   "--status-port", str(port), "--status-listen", "256.1.1.1"],
                                  capture_output=True, text=True, timeout=20)
        self.assertEqual(done.returncode, 1)
        self.assertIn("--status-port", done.stderr)


if __name__ == "__main__":
    unittest.main()
