"""Access control end to end (doc/acl.md): [acl NAME] sections in a config file, every permission
allowed and denied (submit, register, each admin group), the Jenkins build:* case with the
simulator, the denial log and /metrics counters, and the status API's bearer token.

Every connection a test can make from this host is from loopback, so its identity is
`loopback-plain`; allowed and denied cases differ by function pattern or by the server's config.
The `plain` identity is tested through a non-loopback address of this host when it has one.
"""

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
from gearman_wire import res  # noqa: E402
import server_fixture  # noqa: E402
from server_fixture import ServerTestCase, HOST, free_port  # noqa: E402

TOOLS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                      "tools"))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

SUBMIT_DENIED = b"INVALID_FUNCTION_NAME"
REGISTER_DENIED = b"INVALID_WORKER_FUNCTION"
STATUS_TOKEN = "status-tok-4b1d9e27c3a85f60-SECRET"

SUBMITS = [gw.SUBMIT_JOB, gw.SUBMIT_JOB_BG, gw.SUBMIT_JOB_HIGH, gw.SUBMIT_JOB_HIGH_BG,
           gw.SUBMIT_JOB_LOW, gw.SUBMIT_JOB_LOW_BG]

# Admin commands by group, each harmless when allowed on a server with no jobs and no masters.
READ_COMMANDS = ["status", "prioritystatus", "workers", "version", "getpid", "show jobs",
                 "show unique jobs", "jenkins list", "jenkins show nosuch"]
CONTROL_COMMANDS = ["cancel job H:nosuch:1", "maxqueue acl:f 3", "create function acl:f",
                    "drop function acl:f"]
OPERATOR_COMMANDS = ["verbose", "jenkins remove nosuch",
                     "jenkins add nosuch base_url=http://127.0.0.1:1/"]
GROUPS = {"read": READ_COMMANDS, "control": CONTROL_COMMANDS, "operator": OPERATOR_COMMANDS}


def denied_admin(reply):
    return reply.startswith(b"ERR PERMISSION_DENIED ")


def non_loopback_address():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            addr = s.getsockname()[0]
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


class AclServer(server_fixture.Server):
    """A roundhouse whose start-up probe (admin `version`) may be denied by its own ACL."""

    def _answers_version(self):
        try:
            with gw.Connection(HOST, self.port, timeout=2.0, connect_timeout=1.0) as c:
                c.send_raw(b"version\r\n")
                line = c.recv_line()
                return line.startswith(b"OK ") or line.startswith(b"ERR PERMISSION_DENIED")
        except (OSError, gw.WireError):
            return False


class AclTestCase(ServerTestCase):
    server_kind = "roundhouse"

    def setUp(self):
        if server_fixture.reference_mode():
            self.skipTest("roundhouse-only: gearmand has no access control")

    def write_config(self, text):
        fd, path = tempfile.mkstemp(prefix="rh-acl-", suffix=".conf")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def start_acl(self, config_text, *args, env=None):
        server = AclServer("roundhouse", args=["--config-file", self.write_config(config_text)]
                           + list(args), env=env)
        self._servers.append(server)
        self.addCleanup(server.stop)
        server.start()
        self.server = server
        return server

    def admin(self, command, server=None):
        with (server or self.server).connect() as conn:
            return conn.admin(command)

    def assertDenied(self, pkt, text_part, code=SUBMIT_DENIED):
        self.assertEqual(pkt.type, gw.ERROR, pkt)
        got_code, text = pkt.args(2)
        self.assertEqual(got_code, code, pkt)
        self.assertTrue(text.startswith(b"permission denied: "), pkt)
        self.assertIn(text_part, text, pkt)

    def assertRegisterDenied(self, pkt, text_part):
        self.assertDenied(pkt, text_part, REGISTER_DENIED)

    def log_lines(self, pattern):
        return [line for line in self.server.read_logs().splitlines() if re.search(pattern, line)]


class SubmitPermission(AclTestCase):
    CONFIG = ("[acl loopback-plain]\n"
              "submit = allowed:* exact\n"
              "admin = read\n")

    def setUp(self):
        super().setUp()
        self.start_acl(self.CONFIG)

    def test_every_submit_type_allowed_by_pattern(self):
        c = self.connect()
        for ptype in SUBMITS:
            c.submit(ptype, b"allowed:one", b"", b"x")
        c.submit(gw.SUBMIT_JOB_BG, b"exact", b"", b"x")
        c.submit(gw.SUBMIT_JOB_BG, b"allowed:", b"", b"x")  # '*' matches the empty rest
        pkt = c.request(gw.SUBMIT_JOB_EPOCH, b"allowed:epoch", b"", b"4102444800", b"x")
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
        pkt = c.request(gw.SUBMIT_REDUCE_JOB_BACKGROUND, b"allowed:reduce", b"", b"red", b"", b"x")
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)

    def test_every_submit_type_denied_outside_the_patterns(self):
        c = self.connect()
        for func in (b"denied", b"exactly", b"xallowed:a", b"Allowed:a"):
            for ptype in SUBMITS:
                self.assertDenied(c.request(ptype, func, b"", b"x"),
                                  b"loopback-plain may not submit jobs for function " + func)
        self.assertDenied(c.request(gw.SUBMIT_JOB_EPOCH, b"denied", b"", b"4102444800", b"x"),
                          b"function denied")
        self.assertDenied(c.request(gw.SUBMIT_REDUCE_JOB, b"denied", b"", b"red", b"", b"x"),
                          b"function denied")
        self.assertDenied(c.request(gw.SUBMIT_REDUCE_JOB_BACKGROUND, b"denied", b"", b"red", b"",
                                    b"x"), b"function denied")
        # The connection stays usable and no job or function was created.
        self.assertEqual(c.echo(b"still-here"), res(gw.ECHO_RES, b"still-here"))
        self.assertEqual(self.admin("show jobs"), b".\n")
        self.assertEqual(self.admin("status"), b".\n")

    def test_denial_is_logged_with_identity_and_rate_limited(self):
        c = self.connect()
        started = time.monotonic()
        for i in range(60):
            self.assertDenied(c.request(gw.SUBMIT_JOB_BG, b"denied:%d" % i, b"", b""),
                              b"denied:%d" % i)
        elapsed = time.monotonic() - started
        c.submit(gw.SUBMIT_JOB_BG, b"allowed:sync", b"", b"")
        lines = self.log_lines(r"acl: denied submit to identity=loopback-plain address=127\.0\.0\.1")
        self.assertGreaterEqual(len(lines), 1)
        self.assertIn("denied:0", lines[0])  # the first denial is always logged
        # At most one line per second per kind: bounded by the time the 60 requests took.
        self.assertLessEqual(len(lines), int(elapsed) + 2, lines)
        self.assertLess(len(lines), 60)
        # Once the second is over, the next denial is logged with how many were left out, so
        # the lines and the counts they report add up to every denial.
        time.sleep(max(0.0, started + 1.1 - time.monotonic()))
        self.assertDenied(c.request(gw.SUBMIT_JOB_BG, b"denied:last", b"", b""), b"denied:last")
        c.submit(gw.SUBMIT_JOB_BG, b"allowed:sync2", b"", b"")
        lines = self.log_lines(r"acl: denied submit to identity=loopback-plain")
        self.assertIn("denied:last", lines[-1])
        left_out = [int(m.group(1)) for line in lines
                    for m in [re.search(r"\((\d+) more submit denials since the last such line "
                                        r"not logged\)", line)] if m]
        self.assertTrue(left_out, lines)
        self.assertEqual(len(lines) + sum(left_out), 61, lines)


class RegisterPermission(AclTestCase):
    CONFIG = ("[acl loopback-plain]\n"
              "register = work:* single\n"
              "submit = *\n"
              "admin = read\n")

    def setUp(self):
        super().setUp()
        self.start_acl(self.CONFIG)

    def test_can_do_and_can_do_timeout_allowed_by_pattern(self):
        w = self.connect()
        w.set_client_id(b"acl-worker")
        w.can_do(b"work:a")
        w.can_do_timeout(b"work:b", b"5000")
        w.can_do(b"single")
        w.assert_quiet()
        listing = self.admin("workers")
        self.assertRegex(listing, rb"acl-worker : work:a work:b single\n")
        c = self.connect()
        handle = c.submit(gw.SUBMIT_JOB_BG, b"work:a", b"", b"payload")
        pkt = w.request(gw.GRAB_JOB)
        self.assertEqual(pkt, res(gw.JOB_ASSIGN, handle, b"work:a", b"payload"))

    def test_can_do_and_can_do_timeout_denied_registration_ignored(self):
        w = self.connect()
        w.set_client_id(b"acl-worker")
        w.can_do(b"work:ok")
        w.can_do(b"other")
        w.can_do_timeout(b"other:t", b"5000")
        w.can_do(b"singles")
        replies = w.sync()
        self.assertEqual(len(replies), 3, replies)
        for pkt, func in zip(replies, (b"other", b"other:t", b"singles")):
            self.assertRegisterDenied(pkt, b"loopback-plain may not register as a worker for "
                                      b"function " + func)
        # Only the granted registration stands; a queued job of a denied function is not handed
        # out, and the connection keeps working as a worker.
        self.assertRegex(self.admin("workers"), rb"acl-worker : work:ok\n")
        c = self.connect()
        c.submit(gw.SUBMIT_JOB_BG, b"other", b"", b"x")
        self.assertEqual(w.request(gw.GRAB_JOB), res(gw.NO_JOB))
        handle = c.submit(gw.SUBMIT_JOB_BG, b"work:ok", b"", b"y")
        self.assertEqual(w.request(gw.GRAB_JOB), res(gw.JOB_ASSIGN, handle, b"work:ok", b"y"))
        self.assertIn(b"other\t1\t0\t0\n", self.admin("status"))


class AdminGroups(AclTestCase):
    """One server per granted set; every command of every group checked against it."""

    def check(self, granted):
        admin_value = ", ".join(granted) if granted else ""
        self.start_acl("[acl loopback-plain]\nsubmit = *\nadmin = %s\n" % admin_value)
        for group, commands in GROUPS.items():
            for command in commands:
                reply = self.admin(command)
                if group in granted:
                    self.assertFalse(denied_admin(reply), "%s (%s): %r" % (command, group, reply))
                else:
                    self.assertTrue(denied_admin(reply), "%s (%s): %r" % (command, group, reply))
                    label = b"read-only" if group == "read" else group.encode()
                    self.assertIn(b"loopback-plain+may+not+use+%s+admin+command+" % label, reply)
        # Unknown commands are not part of any group: answered as always.
        self.assertTrue(self.admin("frobnicate").startswith(b"ERR UNKNOWN_COMMAND"))
        shutdown = self.admin("shutdown")
        if "operator" in granted:
            self.assertEqual(shutdown, b"OK\r\n")
            self.assertEqual(self.server.wait_exit(10), 0)
        else:
            self.assertTrue(denied_admin(shutdown), shutdown)
            self.assertTrue(self.server.is_running())

    def test_no_admin_group(self):
        self.check([])

    def test_read_only(self):
        self.check(["read"])

    def test_control_only(self):
        self.check(["control"])

    def test_operator_only(self):
        self.check(["operator"])

    def test_all(self):
        self.start_acl("[acl loopback-plain]\nadmin = all\n")
        for commands in GROUPS.values():
            for command in commands:
                self.assertFalse(denied_admin(self.admin(command)), command)

    def test_denied_values_are_exact(self):
        self.start_acl("[acl loopback-plain]\nadmin = read\n")
        self.assertEqual(self.admin("cancel job H:x:1"),
                         b"ERR PERMISSION_DENIED loopback-plain+may+not+use+"
                         b"control+admin+command+cancel\r\n")
        self.assertEqual(self.admin("jenkins add m base_url=http://x/"),
                         b"ERR PERMISSION_DENIED loopback-plain+may+not+use+"
                         b"operator+admin+command+jenkins+add\r\n")
        self.assertTrue(self.admin("jenkins list").endswith(b".\n"))


class IdentityFallback(AclTestCase):
    def test_unlisted_identity_gets_the_default_section(self):
        self.start_acl("[acl default]\nsubmit = public:*\nadmin = read\n"
                       "[acl CN=someone]\nsubmit = *\n")
        c = self.connect()
        c.submit(gw.SUBMIT_JOB_BG, b"public:a", b"", b"")
        self.assertDenied(c.request(gw.SUBMIT_JOB_BG, b"private:a", b"", b""), b"private:a")
        self.assertTrue(self.admin("status").endswith(b".\n"))

    def test_without_default_an_unlisted_identity_may_do_nothing(self):
        self.start_acl("[acl CN=someone]\nsubmit = *\nregister = *\nadmin = all\n")
        c = self.connect()
        self.assertDenied(c.request(gw.SUBMIT_JOB_BG, b"f", b"", b""), b"function f")
        c.can_do(b"f")
        self.assertRegisterDenied(c.recv_packet(), b"function f")
        self.assertTrue(denied_admin(self.admin("status")))
        # What needs no grant still works: ECHO, OPTION_REQ, GET_STATUS.
        self.assertEqual(c.echo(b"e"), res(gw.ECHO_RES, b"e"))
        self.assertEqual(c.request(gw.GET_STATUS, b"H:x:1"),
                         res(gw.STATUS_RES, b"H:x:1", b"0", b"0", b"0", b"0"))

    def test_a_section_mistake_stops_start_up(self):
        binary = server_fixture.roundhouse_bin()
        path = self.write_config("[acl loopback]\nsubmit = *\n")
        proc = subprocess.run([binary, "--check-args", "--config-file", path],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(b"[acl loopback]: unknown identity", proc.stderr + proc.stdout)

    def test_plain_identity_from_a_non_loopback_address(self):
        addr = non_loopback_address()
        if addr is None:
            self.skipTest("this host has no non-loopback IPv4 address")
        self.start_acl("[acl loopback-plain]\nsubmit = local:*\nadmin = read\n"
                       "[acl plain]\nsubmit = remote:*\nadmin = operator\n", "-L", addr)
        try:
            remote = gw.Connection(addr, self.server.port, timeout=5)
        except OSError as e:
            self.skipTest("cannot reach %s: %s" % (addr, e))
        self.addCleanup(remote.close)
        if remote.sock.getsockname()[0] != addr:
            self.skipTest("connection to %s does not come from it" % addr)
        remote.submit(gw.SUBMIT_JOB_BG, b"remote:a", b"", b"")
        self.assertDenied(remote.request(gw.SUBMIT_JOB_BG, b"local:a", b"", b""),
                          b"plain may not submit jobs for function local:a")
        local = self.connect()
        self.assertDenied(local.request(gw.SUBMIT_JOB_BG, b"remote:a", b"", b""),
                          b"loopback-plain may not")
        self.assertTrue(denied_admin(self.admin("shutdown")))
        # With the ACL on, the operator grant replaces the loopback-only rule of shutdown.
        self.assertEqual(remote.admin("shutdown"), b"OK\r\n")
        self.assertEqual(self.server.wait_exit(10), 0)


class Metrics(AclTestCase):
    def setUp(self):
        super().setUp()
        self.http_port = free_port()

    def metrics(self):
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read().decode()
            self.assertEqual(resp.status, 200, body)
            return body
        finally:
            conn.close()

    def denials(self, text):
        out = {}
        for m in re.finditer(r'^roundhouse_acl_denials_total\{permission="([a-z_]+)"\} (\d+)$',
                             text, re.M):
            out[m.group(1)] = int(m.group(2))
        return out

    def test_denials_counted_per_permission_kind(self):
        self.start_acl("[acl loopback-plain]\nsubmit = ok:*\nregister = ok:*\n",
                       "--status-port", str(self.http_port), "--status-listen", HOST)
        before = self.denials(self.metrics())
        self.assertEqual(sorted(before), ["admin_control", "admin_operator", "admin_read",
                                          "register", "submit"])
        c = self.connect()
        for i in range(3):
            self.assertDenied(c.request(gw.SUBMIT_JOB_BG, b"secret:name-%d" % i, b"", b""),
                              b"secret")
        c.can_do(b"secret:w1")
        c.can_do(b"secret:w2")
        c.can_do(b"ok:w")
        self.assertEqual(len(c.sync()), 2)
        for command, n in (("status", 1), ("cancel job H:x:1", 2), ("shutdown", 4)):
            for _ in range(n):
                self.assertTrue(denied_admin(self.admin(command)))
        c.submit(gw.SUBMIT_JOB_BG, b"ok:a", b"", b"")
        text = self.metrics()
        after = self.denials(text)
        delta = {k: after[k] - before[k] for k in after}
        self.assertEqual(delta, {"submit": 3, "register": 2, "admin_read": 1,
                                 "admin_control": 2, "admin_operator": 4})
        # Per kind, never per name: the denied function names are nowhere in /metrics.
        self.assertNotIn("secret:", text)

    def test_no_acl_no_denial_series(self):
        self.start_server("--status-port", str(self.http_port), "--status-listen", HOST)
        self.assertNotIn("roundhouse_acl_denials_total", self.metrics())


class StatusToken(AclTestCase):
    def setUp(self):
        super().setUp()
        self.http_port = free_port()

    def http(self, path, token=None, header=None):
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=10)
        try:
            headers = {}
            if token is not None:
                headers["Authorization"] = "Bearer " + token
            if header is not None:
                headers["Authorization"] = header
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def check_token_required(self):
        for path in ("/api/status", "/api/workers", "/api/jobs", "/api/jenkins", "/metrics",
                     "/nosuch"):
            for token, header in ((None, None), ("wrong", None), (STATUS_TOKEN[:-1], None),
                                  (STATUS_TOKEN + "x", None), (None, "Basic " + STATUS_TOKEN),
                                  (None, STATUS_TOKEN)):
                status, headers, body = self.http(path, token, header)
                self.assertEqual(status, 401, (path, token, header, body))
                self.assertTrue(headers.get("WWW-Authenticate", "").startswith("Bearer"), headers)
                self.assertNotIn(STATUS_TOKEN.encode(), body)
        for path in ("/api/status", "/api/workers", "/api/jobs", "/api/jenkins", "/metrics"):
            status, _, body = self.http(path, STATUS_TOKEN)
            self.assertEqual(status, 200, (path, body))
        self.assertEqual(self.http("/nosuch", STATUS_TOKEN)[0], 404)
        # The dashboard's static files carry no data and load without the token.
        for path in ("/", "/dashboard.js", "/dashboard.css"):
            self.assertEqual(self.http(path)[0], 200, path)
        self.assertNotIn(STATUS_TOKEN, self.server.read_logs())

    def test_token_from_a_file(self):
        fd, path = tempfile.mkstemp(prefix="rh-status-", suffix=".token")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(STATUS_TOKEN + "\n")
        os.chmod(path, 0o600)
        self.start_acl("status-token-file = %s\n" % path, "--status-port", str(self.http_port),
                       "--status-listen", HOST)
        self.check_token_required()

    def test_token_from_an_environment_variable(self):
        env = dict(os.environ, RH_ACL_TEST_STATUS_TOKEN=STATUS_TOKEN)
        self.start_acl("status-token-env = RH_ACL_TEST_STATUS_TOKEN\n", "--status-port",
                       str(self.http_port), "--status-listen", HOST, env=env)
        self.check_token_required()
        self.assertNotIn(STATUS_TOKEN, " ".join(self.server.cmdline))

    def test_no_token_configured_the_api_is_open(self):
        self.start_server("--status-port", str(self.http_port), "--status-listen", HOST)
        self.assertEqual(self.http("/api/status")[0], 200)
        self.assertEqual(self.http("/metrics", "anything")[0], 200)

    def test_unset_variable_or_missing_file_stops_start_up(self):
        binary = server_fixture.roundhouse_bin()
        env = dict(os.environ)
        env.pop("RH_ACL_TEST_UNSET", None)
        for flag, value, expected in (
                ("--status-token-env", "RH_ACL_TEST_UNSET", b"RH_ACL_TEST_UNSET is unset"),
                ("--status-token-file", "/nonexistent/rh.token", b"--status-token-file")):
            proc = subprocess.run(
                [binary, "--port", str(free_port()), "--listen", HOST, "-q", "none",
                 "--status-port", str(free_port()), "--status-listen", HOST, flag, value],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=20, env=env)
            self.assertNotEqual(proc.returncode, 0, flag)
            self.assertIn(expected, proc.stderr + proc.stdout)


class JenkinsBuilds(AclTestCase):
    """External workers without `register` for build:* cannot take Jenkins builds; the in-process
    Jenkins executors are the server's own and are never checked."""

    def setUp(self):
        super().setUp()
        import test_jenkins as tj
        self.tj = tj
        self.sim = tj.Simulator(tj.make_world([{"name": "n1", "labels": ["lin"], "numExecutors": 1}],
                                              [{"name": "rj", "label": "lin",
                                                "build": {"duration": 200}}]),
                                realtime=True, tick_s=0.01).start(0)
        self.addCleanup(lambda: self.assertEqual(self.sim.errors, [], "simulator bugs"))
        self.addCleanup(self.sim.stop)

    def start_with(self, grants):
        self.start_acl("[acl loopback-plain]\n" + grants,
                       *self.tj.jenkins_flag("m1", self.sim))

    def status(self):
        out = {}
        for line in self.admin("status").decode().splitlines():
            if line != ".":
                f, t, r, w = line.split("\t")
                out[f] = (int(t), int(r), int(w))
        return out

    def wait_until(self, predicate, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def test_worker_without_register_grant_cannot_take_builds(self):
        self.start_with("submit = build:*\nregister = other:*\nadmin = read\n")
        self.wait_until(lambda: self.status().get("build:rj", (0, 0, 0))[2] >= 1,
                        "the Jenkins executor to register build:rj")
        intruder = self.connect()
        intruder.set_client_id(b"intruder")
        intruder.can_do(b"build:rj")
        intruder.can_do(b"build:*")
        replies = intruder.sync()
        self.assertEqual(len(replies), 2, replies)
        self.assertRegisterDenied(replies[0], b"register as a worker for function build:rj")
        self.assertRegisterDenied(replies[1], b"function build:*")
        self.assertRegex(self.admin("workers"), rb"intruder :\n")
        intruder.pre_sleep()
        # The build goes to Jenkins, never to the intruder.
        client = self.connect(timeout=30)
        unique = self.tj.uniq().encode()
        handle = client.submit(gw.SUBMIT_JOB, b"build:rj", unique, b"")
        while True:
            pkt = client.recv_packet(timeout=30)
            self.assertNotIn(pkt.type, (gw.WORK_FAIL, gw.WORK_EXCEPTION, gw.ERROR), pkt)
            self.assertEqual(pkt.args()[0], handle)
            if pkt.type == gw.WORK_COMPLETE:
                break
        self.assertEqual(len(self.tj.builds_for(self.sim, unique.decode())), 1)
        self.assertEqual(intruder.sync(), [])  # no NOOP: nothing it may do was queued
        self.assertEqual(intruder.request(gw.GRAB_JOB), res(gw.NO_JOB))

    def test_worker_with_register_grant_may_serve_build_functions(self):
        self.start_with("submit = build:*\nregister = build:*\nadmin = read\n")
        self.wait_until(lambda: self.status().get("build:rj", (0, 0, 0))[2] >= 1,
                        "the Jenkins executor to register build:rj")
        worker = self.connect()
        worker.set_client_id(b"trusted")
        worker.can_do(b"build:rj")
        worker.assert_quiet()
        self.assertRegex(self.admin("workers"), rb"trusted : build:rj\n")
        self.assertEqual(self.status()["build:rj"][2], 2)  # the executor and this worker



class TlsIdentities(AclTestCase):
    """With TLS on the Gearman port, a verified client certificate's CN, TLS without a
    certificate and plain text are three identities with grants of their own."""

    @classmethod
    def setUpClass(cls):
        import tls_certs
        cls.tmp = tempfile.mkdtemp(prefix="rh-acl-certs-")
        cls.certs = tls_certs.CertSet(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def tls_connect(self, cert=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.certs.path("ca.pem"))
        if cert:
            ctx.load_cert_chain(self.certs.path(cert + ".pem"), self.certs.path(cert + ".key"))
        conn = gw.Connection(HOST, self.server.port, timeout=5.0)
        self.addCleanup(conn.close)
        return conn.start_tls(ctx, server_hostname="localhost")

    def test_certificate_cn_tls_and_plain_are_separate_identities(self):
        self.start_acl("[acl CN=worker-1]\nregister = build:*\nsubmit = cert:*\n"
                       "[acl loopback-tls]\nsubmit = tls:*\n"
                       "[acl loopback-plain]\nsubmit = plain:*\nadmin = read\n",
                       "--ssl", "--ssl-certificate", self.certs.path("server.pem"),
                       "--ssl-key", self.certs.path("server.key"),
                       "--ssl-ca-file", self.certs.path("ca.pem"),
                       "--ssl-verify-client", "optional")
        cert = self.tls_connect("client")  # CN=worker-1
        cert.set_client_id(b"cert-worker")
        cert.can_do(b"build:x")
        cert.assert_quiet()
        cert.submit(gw.SUBMIT_JOB_BG, b"cert:a", b"", b"")
        self.assertDenied(cert.request(gw.SUBMIT_JOB_BG, b"tls:a", b"", b""),
                          b"CN=worker-1 may not submit jobs for function tls:a")
        anon = self.tls_connect()
        anon.submit(gw.SUBMIT_JOB_BG, b"tls:a", b"", b"")
        self.assertDenied(anon.request(gw.SUBMIT_JOB_BG, b"cert:a", b"", b""),
                          b"loopback-tls may not submit jobs for function cert:a")
        anon.can_do(b"build:x")
        self.assertRegisterDenied(anon.recv_packet(), b"loopback-tls may not register")
        plain = self.connect()
        plain.submit(gw.SUBMIT_JOB_BG, b"plain:a", b"", b"")
        self.assertDenied(plain.request(gw.SUBMIT_JOB_BG, b"tls:a", b"", b""),
                          b"loopback-plain may not submit jobs for function tls:a")
        self.assertRegex(self.admin("workers"), rb"cert-worker : build:x\n")


if __name__ == "__main__":
    unittest.main()
