"""TLS on the Gearman port and the status API (doc/protocol.md §5.5, README "TLS").

Certificates come from tls_certs.CertSet (the openssl command line, a fresh throw-away CA per
test class). Clients: Python's ssl module over gearman_wire, `openssl s_client`, Debian's
`gearman -S` / `gearadmin -S` (which send plain text, see §5.2). The differential sessions of
test_differential.py run over TLS and must give the bytes they give over plain TCP.
"""

import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
import test_differential as differential  # noqa: E402
import tls_certs  # noqa: E402
from server_fixture import HOST, ServerTestCase  # noqa: E402


def client_context(certs, cert=None, check_hostname=True, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.path("ca.pem"))
    ctx.check_hostname = check_hostname
    if cert:
        ctx.load_cert_chain(certs.path(cert + ".pem"), certs.path(cert + ".key"))
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class TlsCase(ServerTestCase):
    server_kind = "roundhouse"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rh-tls-certs-")
        cls.certs = tls_certs.CertSet(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def tls_args(self, cert="server", verify="none", ca="ca"):
        return ["--ssl", "--ssl-certificate", self.certs.path(cert + ".pem"),
                "--ssl-key", self.certs.path(cert + ".key"),
                "--ssl-ca-file", self.certs.path(ca + ".pem"), "--ssl-verify-client", verify]

    def start_tls(self, *extra, verify="none", cert="server", tls=None, **kw):
        return self.start_server(*self.tls_args(cert=cert, verify=verify), *extra, tls=tls, **kw)

    def tls_connect(self, server, cert=None, timeout=5.0):
        conn = gw.Connection(HOST, server.port, timeout=timeout)
        self.addCleanup(conn.close)
        return conn.start_tls(client_context(self.certs, cert), server_hostname="localhost")

    def assert_echo(self, conn, payload=b"tls-echo"):
        self.assertEqual(conn.request(gw.ECHO_REQ, payload), gw.res(gw.ECHO_RES, payload))

    def assert_refused(self, server, cert=None, context=None):
        """The handshake fails, or the first request gets no reply but a close."""
        conn = gw.Connection(HOST, server.port, timeout=5.0)
        self.addCleanup(conn.close)
        try:
            conn.start_tls(context or client_context(self.certs, cert),
                           server_hostname="localhost")
            conn.send(gw.ECHO_REQ, b"x")
            self.assertTrue(conn.wait_closed(5.0), "server kept a refused TLS peer open")
            self.assertEqual(bytes(conn.buf), b"")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass

    def s_client(self, server, *args):
        """`openssl s_client` sending one ECHO_REQ. Returns (status, output): status 0 once the
        ECHO_RES arrived (s_client is then stopped), else s_client's own exit status."""
        reply = gw.encode(gw.ECHO_RES, b"s-client", magic=gw.RES)
        proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", "%s:%d" % (HOST, server.port), "-quiet",
             "-CAfile", self.certs.path("ca.pem"), "-verify_return_error", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            proc.stdin.write(gw.encode(gw.ECHO_REQ, b"s-client"))
            proc.stdin.flush()
            out = b""
            deadline = time.monotonic() + 15
            while reply not in out and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 0.2)
                if ready:
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    out += chunk
                elif proc.poll() is not None:
                    break
            if reply in out:
                return 0, out
            try:
                status = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                status = None
            return status, out
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()


class GearmanOverTls(TlsCase):
    def test_python_ssl_client_submits_and_echoes_without_client_certificate(self):
        server = self.start_tls()
        worker = self.tls_connect(server)
        client = self.tls_connect(server)
        self.assert_echo(client)
        worker.send(gw.CAN_DO, b"tls-reverse")
        self.assert_echo(worker)
        created = client.request(gw.SUBMIT_JOB, b"tls-reverse", b"u1", b"abc")
        self.assertEqual(created.type, gw.JOB_CREATED)
        handle = created.payload
        job = worker.request(gw.GRAB_JOB)
        self.assertEqual(job, gw.res(gw.JOB_ASSIGN, handle, b"tls-reverse", b"abc"))
        worker.send(gw.WORK_COMPLETE, handle, b"cba")
        self.assertEqual(client.recv_packet(), gw.res(gw.WORK_COMPLETE, handle, b"cba"))
        self.assertEqual(client.admin(b"status\n"), b"tls-reverse\t0\t0\t1\n.\n")
        self.assertIn(client.sock.version(), ("TLSv1.2", "TLSv1.3"))

    def test_python_ssl_client_with_a_required_client_certificate(self):
        server = self.start_tls(verify="required")
        conn = self.tls_connect(server, cert="client")
        self.assert_echo(conn)
        created = conn.request(gw.SUBMIT_JOB_BG, b"tls-bg", b"", b"payload")
        self.assertEqual(created.type, gw.JOB_CREATED)
        self.assertIn("client certificate CN=worker-1", server.read_logs())

    def test_required_client_certificate_refuses_none_another_ca_and_expired(self):
        server = self.start_tls(verify="required")
        self.assert_refused(server)
        self.assert_refused(server, cert="stranger")
        self.assert_refused(server, cert="expired")
        self.assert_echo(self.tls_connect(server, cert="client"))
        logs = server.read_logs()
        self.assertIn("TLS handshake failed", logs)

    def test_optional_client_certificate_accepts_none_but_refuses_a_bad_one(self):
        server = self.start_tls(verify="optional")
        self.assert_echo(self.tls_connect(server))
        self.assert_refused(server, cert="stranger")
        self.assert_echo(self.tls_connect(server, cert="client"))

    def test_server_presents_its_configured_certificate(self):
        server = self.start_tls(cert="wronghost")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.tls_connect(server)
        conn = gw.Connection(HOST, server.port)
        self.addCleanup(conn.close)
        conn.start_tls(client_context(self.certs, check_hostname=False))
        self.assert_echo(conn)

    def test_plain_and_tls_clients_share_the_port_and_the_jobs(self):
        server = self.start_tls()
        plain = self.connect(server)
        secure = self.tls_connect(server)
        plain.send(gw.CAN_DO, b"mixed")
        self.assert_echo(plain)
        created = secure.request(gw.SUBMIT_JOB, b"mixed", b"", b"x")
        handle = created.payload
        self.assertEqual(plain.request(gw.GRAB_JOB), gw.res(gw.JOB_ASSIGN, handle, b"mixed", b"x"))
        plain.send(gw.WORK_COMPLETE, handle, b"done")
        self.assertEqual(secure.recv_packet(), gw.res(gw.WORK_COMPLETE, handle, b"done"))
        self.assertEqual(plain.admin(b"version\n")[:3], b"OK ")

    def test_ssl_require_closes_plain_connections(self):
        server = self.start_tls("--ssl-require", tls=client_context(self.certs))
        plain = gw.Connection(HOST, server.port)
        self.addCleanup(plain.close)
        plain.send(gw.ECHO_REQ, b"plain")
        self.assertTrue(plain.wait_closed(5.0))
        # One ERROR that says why (in plain text: the peer speaks nothing else), never the echo.
        self.assertEqual(bytes(plain.buf),
                         gw.encode(gw.ERROR, b"TLS_REQUIRED", TLS_ONLY, magic=gw.RES))
        self.assert_echo(self.tls_connect(server))
        self.assertIn("plain-text connection refused", server.read_logs())


    def test_tls_1_1_and_tls_1_0_are_refused(self):
        server = self.start_tls()
        ctx = client_context(self.certs)
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        self.assert_refused(server, context=ctx)
        ctx12 = client_context(self.certs, maximum=ssl.TLSVersion.TLSv1_2)
        conn = gw.Connection(HOST, server.port)
        self.addCleanup(conn.close)
        conn.start_tls(ctx12, server_hostname="localhost")
        self.assertEqual(conn.sock.version(), "TLSv1.2")
        self.assert_echo(conn)

    def test_handshake_garbage_and_truncated_records_close_only_that_connection(self):
        server = self.start_tls()
        bystander = self.tls_connect(server)
        for junk in (b"\x16\x03\x01\x00\x05garbage-garbage", b"\x16\x03\x03\xff\xff" + b"A" * 64,
                     b"\x16\x03"):
            with socket.create_connection((HOST, server.port), timeout=5) as s:
                s.sendall(junk)
                if junk == b"\x16\x03":
                    s.shutdown(socket.SHUT_WR)  # a truncated record, then end of input
                s.settimeout(5)
                data = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except (ConnectionResetError, socket.timeout):
                    pass
                # At most a TLS alert record (content type 21), never Gearman bytes.
                self.assertTrue(data == b"" or data[0] == 0x15, data)
        self.assert_echo(bystander)


class OpensslSClient(TlsCase):
    def test_s_client_echo_with_tls_1_2_and_1_3(self):
        server = self.start_tls()
        for version in ("-tls1_2", "-tls1_3"):
            status, out = self.s_client(server, version, "-verify_hostname", "localhost")
            self.assertEqual(status, 0, out)

    def test_s_client_tls_1_1_is_refused(self):
        server = self.start_tls()
        status, out = self.s_client(server, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(status, 0, out)
        self.assertNotIn(b"\0RES", out)
        self.assertIn(b"alert", out)

    def test_s_client_without_certificate_or_from_another_ca_when_required(self):
        server = self.start_tls(verify="required")
        for extra in ([], ["-cert", self.certs.path("stranger.pem"),
                           "-key", self.certs.path("stranger.key")]):
            status, out = self.s_client(server, *extra)
            self.assertNotEqual(status, 0, out)
            self.assertNotIn(b"\0RES", out, extra)
        status, out = self.s_client(server, "-cert", self.certs.path("client.pem"),
                                    "-key", self.certs.path("client.key"))
        self.assertEqual(status, 0, out)


TLS_ONLY = b"this listener accepts TLS connections only"
SECOND_HOST = "127.0.0.2"  # another loopback address: a second listener on the same port


class PerListenerRequirement(TlsCase):
    """--ssl-require-listen: one listener accepts TLS only, -L's keeps serving plain text."""

    def test_tls_only_listener_refuses_plain_while_the_other_serves_it(self):
        server = self.start_tls("--ssl-require-listen", SECOND_HOST)
        # -L 127.0.0.1 (the fixture's): plain and TLS both served.
        self.assert_echo(self.connect(server))
        self.assert_echo(self.tls_connect(server))
        # --ssl-require-listen 127.0.0.2: TLS served ...
        secure = gw.Connection(SECOND_HOST, server.port, timeout=5.0)
        self.addCleanup(secure.close)
        secure.start_tls(client_context(self.certs), server_hostname="localhost")
        self.assert_echo(secure)
        # ... a plain binary request gets one ERROR TLS_REQUIRED and the close, no echo ...
        plain = gw.Connection(SECOND_HOST, server.port, timeout=5.0)
        self.addCleanup(plain.close)
        plain.send(gw.ECHO_REQ, b"plain")
        self.assertTrue(plain.wait_closed(5.0), "a plain peer stayed open on a TLS-only listener")
        self.assertEqual(bytes(plain.buf),
                         gw.encode(gw.ERROR, b"TLS_REQUIRED", TLS_ONLY, magic=gw.RES))
        # ... and a plain admin line one ERR line, not the version.
        admin = gw.Connection(SECOND_HOST, server.port, timeout=5.0)
        self.addCleanup(admin.close)
        admin.sock.sendall(b"version\n")
        self.assertTrue(admin.wait_closed(5.0))
        self.assertEqual(bytes(admin.buf),
                         b"ERR TLS_REQUIRED " + TLS_ONLY.replace(b" ", b"+") + b"\r\n")
        # The plain listener was not affected by the refusals.
        self.assert_echo(self.connect(server))
        self.assertIn("plain-text connection refused", server.read_logs())

    def test_ssl_require_listen_needs_ssl(self):
        proc = subprocess.run(
            [os.environ.get("ROUNDHOUSE_BIN", "build/server/roundhouse"), "-q", "none",
             "--listen", HOST, "--port", "0", "--ssl-require-listen", SECOND_HOST],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(b"--ssl-require-listen needs --ssl", proc.stdout)


class CloseNotify(TlsCase):
    """A graceful end of a TLS connection sends close_notify before the TCP close, so a client
    that treats a bare TCP close as truncation (suppress_ragged_eofs=False) sees a clean end."""

    def strict_connect(self, server):
        sock = socket.create_connection((HOST, server.port), timeout=5.0)
        tls = client_context(self.certs).wrap_socket(sock, server_hostname="localhost",
                                                     suppress_ragged_eofs=False)
        self.addCleanup(tls.close)
        return tls

    @staticmethod
    def recv_exactly(tls, n):
        got = b""
        while len(got) < n:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        return got

    def assert_clean_end(self, tls, deadline=10.0):
        """Reads to the end: b'' (close_notify) rather than SSLEOFError (a bare TCP close)."""
        tls.settimeout(deadline)
        data = b""
        while True:
            chunk = tls.recv(65536)  # SSLEOFError (UNEXPECTED_EOF) without a close_notify
            if not chunk:
                return data
            data += chunk

    def test_client_unwrap_gets_the_servers_close_notify(self):
        server = self.start_tls()
        tls = self.strict_connect(server)
        tls.sendall(gw.encode(gw.ECHO_REQ, b"bye"))
        want = gw.encode(gw.ECHO_RES, b"bye", magic=gw.RES)
        self.assertEqual(self.recv_exactly(tls, len(want)), want)
        # unwrap() sends our close_notify and returns only once the server's arrived.
        plain = tls.unwrap()
        plain.close()

    def test_server_closing_a_peer_for_a_protocol_error_sends_close_notify(self):
        server = self.start_tls()
        tls = self.strict_connect(server)
        tls.sendall(b"\0XYZ" + b"\0" * 8)  # not a Gearman magic: the server closes the peer
        self.assertEqual(self.assert_clean_end(tls), b"")
        self.assertIn("closing", server.read_logs())

    def test_server_shutdown_sends_close_notify_to_idle_tls_peers(self):
        server = self.start_tls()
        idle = self.strict_connect(server)
        idle.sendall(gw.encode(gw.ECHO_REQ, b"x"))
        want = gw.encode(gw.ECHO_RES, b"x", magic=gw.RES)
        self.assertEqual(self.recv_exactly(idle, len(want)), want)
        admin = self.connect(server)
        admin.sock.sendall(b"shutdown\n")
        self.assertEqual(self.assert_clean_end(idle), b"")


class DebianToolsAgainstSsl(TlsCase):
    """Debian's gearman -S / gearadmin -S are built without TLS: they send plain text."""

    def run_tool(self, *argv):
        return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=20)

    def test_gearman_and_gearadmin_with_S_keep_working_against_ssl(self):
        if shutil.which("gearman") is None or shutil.which("gearadmin") is None:
            self.skipTest("gearman-tools not installed")
        server = self.start_tls()
        port = str(server.port)
        out = self.run_tool("gearman", "-S", "-h", HOST, "-p", port, "-f", "tls-cli", "-b",
                            "payload")
        self.assertEqual(out.returncode, 0, out.stdout)
        out = self.run_tool("gearadmin", "-S", "-h", HOST, "-p", port, "--status")
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn(b"tls-cli\t1\t0\t0", out.stdout)

    def test_gearadmin_S_is_refused_with_ssl_require(self):
        if shutil.which("gearadmin") is None:
            self.skipTest("gearman-tools not installed")
        server = self.start_tls("--ssl-require", tls=client_context(self.certs))
        out = self.run_tool("gearadmin", "-S", "-h", HOST, "-p", str(server.port), "--status")
        self.assertNotIn(b"\n.\n", out.stdout)


class SslOptionLikeGearmand(TlsCase):
    def test_ssl_with_missing_default_files_starts_and_serves_plain(self):
        # gearmand's option test: `--ssl` alone must start and serve. The default files
        # (/etc/ssl/certs/gearmand.pem ...) do not exist here: logged, plain text served.
        missing = os.path.join(self.tmp, "absent")
        server = self.start_server("--ssl", "--ssl-certificate", missing + ".pem",
                                   "--ssl-key", missing + ".key")
        conn = self.connect(server)
        self.assert_echo(conn)
        self.assertIn("absent.pem", server.read_logs())
        self.assert_refused(server)

    def test_ssl_require_with_missing_files_refuses_to_start(self):
        missing = os.path.join(self.tmp, "absent")
        proc = subprocess.run(
            [os.environ.get("ROUNDHOUSE_BIN", "build/server/roundhouse"), "-q", "none",
             "--listen", HOST, "--port", "0", "--ssl", "--ssl-require",
             "--ssl-certificate", missing + ".pem", "--ssl-key", missing + ".key"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn(b"absent.pem", proc.stdout)


class Reload(TlsCase):
    def test_sighup_keeps_open_tls_connections_and_new_handshakes_get_the_new_certificate(self):
        live = os.path.join(self.tmp, "live-%d" % os.getpid())
        os.makedirs(live, exist_ok=True)
        self.addCleanup(shutil.rmtree, live, True)
        for ext in ("pem", "key"):
            shutil.copy(self.certs.path("server." + ext), os.path.join(live, "server." + ext))
        server = self.start_server("--ssl", "--ssl-certificate", os.path.join(live, "server.pem"),
                                   "--ssl-key", os.path.join(live, "server.key"))
        old = self.tls_connect(server)
        self.assert_echo(old)
        first = old.sock.getpeercert(binary_form=True)
        for ext in ("pem", "key"):
            shutil.copy(self.certs.path("server2." + ext), os.path.join(live, "server." + ext))
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "TLS certificate reloaded" not in server.read_logs():
            self.assertLess(time.monotonic(), deadline, "no reload logged")
            time.sleep(0.05)
        self.assert_echo(old, b"still-here")  # the old session survives the reload
        new = self.tls_connect(server)
        self.assert_echo(new)
        second = new.sock.getpeercert(binary_form=True)
        self.assertNotEqual(first, second)
        with open(self.certs.path("server2.pem")) as f:
            self.assertEqual(second, ssl.PEM_cert_to_DER_cert(f.read()))

    def test_sighup_with_a_broken_certificate_keeps_the_old_one(self):
        live = os.path.join(self.tmp, "broken-%d" % os.getpid())
        os.makedirs(live, exist_ok=True)
        self.addCleanup(shutil.rmtree, live, True)
        for ext in ("pem", "key"):
            shutil.copy(self.certs.path("server." + ext), os.path.join(live, "server." + ext))
        server = self.start_server("--ssl", "--ssl-certificate", os.path.join(live, "server.pem"),
                                   "--ssl-key", os.path.join(live, "server.key"))
        with open(os.path.join(live, "server.pem"), "w") as f:
            f.write("not a certificate\n")
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "keeping the previous certificate" not in server.read_logs():
            self.assertLess(time.monotonic(), deadline, "no failed reload logged")
            time.sleep(0.05)
        conn = self.tls_connect(server)
        self.assert_echo(conn)
        with open(self.certs.path("server.pem")) as f:
            self.assertEqual(conn.sock.getpeercert(binary_form=True),
                             ssl.PEM_cert_to_DER_cert(f.read()))


class StatusApiOverTls(TlsCase):
    def test_status_ssl_serves_the_status_api_over_https_only(self):
        http_port = socket.socket()
        http_port.bind((HOST, 0))
        port = http_port.getsockname()[1]
        http_port.close()
        self.start_tls("--status-port", str(port), "--status-ssl")
        url = "https://localhost:%d/api/status" % port
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(url, context=client_context(self.certs),
                                            timeout=5) as reply:
                    self.assertEqual(reply.status, 200)
                    self.assertIn(b"functions", reply.read())
                    break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with self.assertRaises(Exception):
            urllib.request.urlopen("http://127.0.0.1:%d/api/status" % port, timeout=5).read()


class AclOverTls(TlsCase):
    """The connection's identity comes from TLS (doc/acl.md): CN=<verified CN>, loopback-tls
    without a certificate, loopback-plain for plain text on the same port."""

    def test_identities_from_tls_grant_and_deny(self):
        conf = os.path.join(self.tmp, "acl-%d.conf" % os.getpid())
        with open(conf, "w") as f:
            f.write("[acl CN=worker-1]\nsubmit = tls-*\nregister = tls-*\nadmin = read\n"
                    "[acl loopback-tls]\nsubmit = open-*\n"
                    "[acl loopback-plain]\nadmin = read\n")
        self.addCleanup(os.unlink, conf)
        server = self.start_tls("--config-file", conf, verify="optional")
        named = self.tls_connect(server, cert="client")
        created = named.request(gw.SUBMIT_JOB_BG, b"tls-job", b"", b"x")
        self.assertEqual(created.type, gw.JOB_CREATED)
        denied = named.request(gw.SUBMIT_JOB_BG, b"open-job", b"", b"x")
        self.assertEqual(denied.type, gw.ERROR)
        self.assertIn(b"CN=worker-1 may not submit", denied.payload)
        anonymous = self.tls_connect(server)
        self.assertEqual(anonymous.request(gw.SUBMIT_JOB_BG, b"open-job", b"", b"x").type,
                         gw.JOB_CREATED)
        denied = anonymous.request(gw.SUBMIT_JOB_BG, b"tls-job", b"", b"x")
        self.assertEqual(denied.type, gw.ERROR)
        self.assertIn(b"loopback-tls may not submit", denied.payload)
        plain = self.connect(server)
        denied = plain.request(gw.SUBMIT_JOB_BG, b"open-job", b"", b"x")
        self.assertEqual(denied.type, gw.ERROR)
        self.assertIn(b"loopback-plain may not submit", denied.payload)


class DifferentialOverTls(TlsCase):
    """Every "same" session of test_differential.py over TLS gives the bytes it gives over plain
    TCP (both on roundhouse; the plain run is compared with gearmand by test_differential)."""

    def test_sessions_over_tls_match_plain(self):
        ctx = client_context(self.certs)
        self.assertGreater(len(differential.SAME), 20)
        for session in differential.SAME:
            with self.subTest(session=session.name):
                plain = self.start_server(*session.args)
                try:
                    observed_plain = differential.Runner(plain).run(session)
                finally:
                    plain.stop()
                secure = self.start_server(*session.args, *self.tls_args(), tls=ctx)
                try:
                    observed_tls = differential.Runner(secure).run(session)
                finally:
                    secure.stop()
                self.assertTrue(any(observed_plain), session.name)
                self.assertEqual(observed_tls, observed_plain, session.name)


if __name__ == "__main__":
    unittest.main()
