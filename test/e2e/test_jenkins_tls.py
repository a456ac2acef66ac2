"""Jenkins masters over https (doc/jenkins-http.md): the simulator served with TLS, directly and
through a CONNECT proxy started by the test.

Every certificate is made by the test (openssl, in a temporary directory removed afterwards): a
throw-away CA, a server certificate for 127.0.0.1, an expired one, one for another host name, one
from another CA, and a client certificate. Nothing secret is committed.

- the happy path: a build runs end to end over https, with the CA given as tls.ca_file, and
  through a proxy (per-master `proxy` key, and the standard https_proxy environment variable);
- the failure-table rows that involve connection errors (test_jenkins_failures.py's
  MasterUnreachable and TriggerResponseLost), rerun over https and over https through the proxy;
- each certificate failure marks the master DOWN with its own message, the same text in
  `jenkins show`, /api/jenkins and the log;
- tls.verify=false connects anyway and is warned about at registration and in `jenkins show`;
- a master that requires a client certificate gets one from tls.cert_file / tls.key_file;
- the admin port cannot name tls files (they are paths the server would read).
"""

import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
import test_jenkins as tj  # noqa: E402
import test_jenkins_failures as tjf  # noqa: E402
from server_fixture import HOST  # noqa: E402
from jenkins_sim.server import Simulator  # noqa: E402

WAIT = tj.WAIT


# ------------------------------------------------------------------------------ certificates

CA_CONFIG = """[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
"""


class Pki:
    """Certificates for one test class, in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rh-tls-")
        self.ca = self._ca("ca", "roundhouse test CA")
        self.other_ca = self._ca("other", "another test CA")
        self.server = self.leaf("server", "ca", "IP:127.0.0.1,DNS:localhost")
        self.expired = self.leaf("expired", "ca", "IP:127.0.0.1",
                                 dates=("20200101000000Z", "20200201000000Z"))
        self.wrong_host = self.leaf("wronghost", "ca", "DNS:wrong.example")
        self.foreign = self.leaf("foreign", "other", "IP:127.0.0.1")
        self.client = self.leaf("client", "ca", None, client=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _ca(self, name, cn):
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
                     "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.path(name + ".pem")

    def leaf(self, name, ca, san, dates=None, client=False):
        """(cert path, key path) signed by `ca`."""
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                     "-subj", "/CN=" + name)
        ext = ["basicConstraints=CA:FALSE",
               "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth")]
        if san:
            ext.append("subjectAltName=" + san)
        with open(self.path(name + ".ext"), "w") as f:
            f.write("\n".join(ext) + "\n")
        if dates is None:
            self.openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                         "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
                         "-extfile", name + ".ext", "-out", name + ".pem")
        else:
            # Only `openssl ca` takes explicit validity dates (OpenSSL 3.0).
            with open(self.path("ca.cnf"), "w") as f:
                f.write(CA_CONFIG)
            open(self.path("index.txt"), "w").close()
            with open(self.path("serial"), "w") as f:
                f.write("1000\n")
            self.openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem",
                         "-keyfile", ca + ".key", "-in", name + ".csr", "-out", name + ".pem",
                         "-startdate", dates[0], "-enddate", dates[1],
                         "-extfile", name + ".ext", "-notext")
        return self.path(name + ".pem"), self.path(name + ".key")

    def server_context(self, cert, require_client=False):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*cert)
        if require_client:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.ca)
        return ctx

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------- CONNECT proxy

class ConnectProxy:
    """A small HTTP CONNECT proxy on a free loopback port: one thread per tunnel, each byte
    relayed as is. `targets` lists every CONNECT target; anything but CONNECT gets 405."""

    def __init__(self):
        self.targets = []
        self.lock = threading.Lock()
        self.socks = set()
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = "http://%s:%d" % (HOST, self.port)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.socks.add(conn)
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn):
        upstream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
            if method != b"CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            with self.lock:
                self.targets.append(target.decode())
            host, _, port = target.decode().rpartition(":")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with self.lock:
                self.socks.add(upstream)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pair = {conn: upstream, upstream: conn}
            while not self.stopping:
                readable, _, _ = select.select(list(pair), [], [], 0.5)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except OSError:
            return
        finally:
            for s in (conn, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
                    with self.lock:
                        self.socks.discard(s)

    def stop(self):
        self.stopping = True
        self.listener.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ------------------------------------------------------------------------------ test bases

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class TlsMixin:
    """Simulators served over https with `sim_cert` (default: the good server certificate);
    roundhouse given the test CA as tls.ca_file unless a test says otherwise."""

    pki = None
    sim_cert = "server"
    require_client_cert = False
    proxy = False  # True: every master goes through a ConnectProxy (its `proxy` key)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.pki.remove()
        super().tearDownClass()

    def start_sim(self, name, spec, cert=None):
        ctx = self.pki.server_context(getattr(self.pki, cert or self.sim_cert),
                                      self.require_client_cert)
        sim = Simulator(spec, realtime=True, tick_s=0.01, ssl_context=ctx).start(0)
        self.addCleanup(lambda: self.assertEqual(sim.errors, [], "simulator %s bugs" % name))
        self.addCleanup(sim.stop)
        self.sims[name] = sim
        return sim

    def start_proxy(self):
        proxy = ConnectProxy()
        self.addCleanup(proxy.stop)
        return proxy

    def start_rh(self, masters=None, args=(), verbose="INFO", **overrides):
        overrides.setdefault("tls.ca_file", self.pki.ca)
        if self.proxy and "proxy" not in overrides:
            self.tunnel = self.start_proxy()
            overrides["proxy"] = self.tunnel.url
        return super().start_rh(masters, args, verbose, **overrides)


# ------------------------------------------------------------------------ the happy path

class HttpsHappyPath(TlsMixin, tj.JenkinsTestCase):

    def run_build(self, **overrides):
        sim = self.start_sim("m1", tj.make_world([tjf.node("n1")], [tjf.job("run", duration=50)]))
        self.start_rh(**overrides)
        self.wait_workers(["build:run"])
        conn = self.client()
        unique = tj.uniq()
        handle = self.submit(conn, b"build:run", unique.encode(), b"")
        start = json.loads(self.expect(conn, gw.WORK_DATA, handle))
        self.assertTrue(start["url"].startswith("https://127.0.0.1:%d/" % sim.port), start)
        self.expect(conn, gw.WORK_STATUS, handle)
        self.expect(conn, gw.WORK_DATA, handle)
        final = json.loads(self.expect(conn, gw.WORK_COMPLETE, handle))
        self.assertEqual(final["result"], "SUCCESS")
        self.assertEqual(len(tj.builds_for(sim, unique)), 1)
        return sim

    def test_build_runs_end_to_end_over_https(self):
        self.run_build()
        show = dict(l.split(" ", 1) for l in self.admin("jenkins show m1").decode().splitlines()
                    if " " in l)
        self.assertEqual(show["tls.verify"], "true")
        self.assertEqual(show["tls.ca_file"], self.pki.ca)
        self.assertEqual(show["state.health"], "HEALTHY")
        self.assertEqual(show["state.last_error"], "-")

    def test_build_runs_through_the_proxy_key(self):
        proxy = self.start_proxy()
        sim = self.run_build(proxy=proxy.url)
        self.assertTrue(proxy.targets)
        self.assertEqual(set(proxy.targets), {"127.0.0.1:%d" % sim.port})

    def test_build_runs_through_https_proxy_from_the_environment(self):
        proxy = self.start_proxy()
        env = dict(os.environ)
        for k in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(k, None)
        env["https_proxy"] = proxy.url
        world = tj.make_world([tjf.node("n1")], [tjf.job("run", duration=50)])
        sim = self.start_sim("m1", world)
        # m2 says proxy=none: it ignores the environment and connects directly.
        sim2 = self.start_sim("m2", tj.make_world([tjf.node("n2")], [tjf.job("other")]))
        ca = {"tls.ca_file": self.pki.ca}
        self.server = self.start_server(*(tj.jenkins_flag("m1", sim, **ca) +
                                          tj.jenkins_flag("m2", sim2, proxy="none", **ca)),
                                        env=env)
        self.wait_workers(["build:run", "build:other"])
        conn = self.client()
        handle = self.submit(conn, b"build:run", tj.uniq().encode(), b"")
        self.expect(conn, gw.WORK_DATA, handle)
        self.expect(conn, gw.WORK_STATUS, handle)
        self.expect(conn, gw.WORK_DATA, handle)
        self.expect(conn, gw.WORK_COMPLETE, handle)
        self.wait_healthy("m2")
        self.assertTrue(sim2.requests())
        self.assertEqual(set(proxy.targets), {"127.0.0.1:%d" % sim.port})

    def test_client_certificate(self):
        self.require_client_cert = True
        sim = self.start_sim("m1", tj.make_world([tjf.node("n1")], [tjf.job("run")]))
        cert, key = self.pki.client
        self.start_rh(**{"tls.cert_file": cert, "tls.key_file": key})
        self.wait_healthy("m1")
        self.assertTrue(sim.requests())


# ------------------------------------------------------------------- certificate failures

class CertificateFailures(TlsMixin, tj.JenkinsTestCase):
    """Each failure marks the master DOWN with a message that names it, the same in `jenkins
    show`, /api/jenkins and the log."""

    def down_with(self, cert, **overrides):
        sim = self.start_sim("m1", tj.make_world([tjf.node("n1")], [tjf.job("run")]), cert=cert)
        http_port = free_port()
        kv = {"unhealthy_after": 1, "poll.health_s": 0.2}
        kv.update(overrides)
        self.start_rh(args=("--status-port", str(http_port), "--status-listen", HOST), **kv)
        self.wait_until(lambda: (self.list_fields("m1") or ["", ""])[1] == "DOWN", WAIT,
                        "m1 DOWN")
        show = dict(l.split(" ", 1) for l in self.admin("jenkins show m1").decode().splitlines()
                    if " " in l)
        with urllib.request.urlopen("http://%s:%d/api/jenkins" % (HOST, http_port),
                                    timeout=5) as r:
            doc = json.loads(r.read())
        self.assertEqual(doc["masters"][0]["last_error"], show["state.last_error"])
        self.assertIn("jenkins master=m1: " + show["state.last_error"], self.server.logs())
        self.assertEqual([r for r in sim.requests()], [], "a request got through")
        return show["state.last_error"]

    def test_unknown_ca(self):
        # A certificate from another CA than tls.ca_file.
        self.assertEqual(self.down_with("foreign"),
                         "TLS: the server's certificate is not signed by a CA in tls.ca_file " +
                         self.pki.ca)

    def test_not_in_system_store(self):
        # No tls.ca_file: the system store, which does not know the test CA.
        self.assertEqual(self.down_with("server", **{"tls.ca_file": None}),
                         "TLS: the server's certificate is not signed by a CA in the system store")

    def test_expired(self):
        self.assertEqual(self.down_with("expired"), "TLS: the server's certificate has expired")

    def test_wrong_host(self):
        error = self.down_with("wrong_host")
        self.assertTrue(error.startswith("TLS: the server's certificate is not for host "
                                         "127.0.0.1"), error)

    def test_plain_http_server_behind_an_https_url(self):
        sim = tj.Simulator(tj.make_world([tjf.node("n1")], [tjf.job("run")]), realtime=True,
                           tick_s=0.01).start(0)
        self.addCleanup(sim.stop)
        self.server = self.start_server(
            "--jenkins", "m1:" + tj.kv_text(dict(tj.master_kv(sim), base_url="https://127.0.0.1:%d/"
                                                 % sim.port, unhealthy_after=1)))
        self.wait_until(lambda: (self.list_fields("m1") or ["", ""])[1] == "DOWN", WAIT,
                        "m1 DOWN")
        error = dict(l.split(" ", 1) for l in self.admin("jenkins show m1").decode().splitlines()
                     if " " in l)["state.last_error"]
        self.assertTrue(error.startswith("TLS handshake failed: "), error)

    def test_verify_false_connects_with_a_loud_warning(self):
        self.start_sim("m1", tj.make_world([tjf.node("n1")], [tjf.job("run")]), cert="wrong_host")
        self.start_rh(**{"tls.verify": "false", "tls.ca_file": None})
        self.wait_healthy("m1")
        show = dict(l.split(" ", 1) for l in self.admin("jenkins show m1").decode().splitlines()
                    if " " in l)
        self.assertTrue(show["tls.verify"].startswith("false (WARNING: "), show["tls.verify"])
        self.assertIn("jenkins master=m1: WARNING: tls.verify=false", self.server.logs())

    def test_admin_port_cannot_name_tls_files(self):
        sim = self.start_sim("m1", tj.make_world([tjf.node("n1")], [tjf.job("run")]))
        self.server = self.start_server()
        for key in ("tls.ca_file", "tls.cert_file", "tls.key_file"):
            with self.server.connect() as c:
                reply = c.admin("jenkins add m1 " + tj.kv_text(tj.master_kv(sim, **{key: self.pki.ca})))
            self.assertIn(b"not+accepted+from+the+admin+port", reply, key)
        with self.server.connect() as c:
            reply = c.admin("jenkins add m1 " + tj.kv_text(tj.master_kv(sim)))
        self.assertTrue(reply.startswith(b"OK"), reply)
        # Without the test CA the system store refuses the certificate.
        self.wait_until(lambda: (self.list_fields("m1") or ["", ""])[1] == "DOWN", WAIT,
                        "m1 DOWN")


# --------------------------------------------- failure-table rows with connection errors

class HttpsMasterUnreachable(TlsMixin, tjf.MasterUnreachable):
    pass


class HttpsTriggerResponseLost(TlsMixin, tjf.TriggerResponseLost):
    pass


class ProxiedMasterUnreachable(TlsMixin, tjf.MasterUnreachable):
    proxy = True


class ProxiedTriggerResponseLost(TlsMixin, tjf.TriggerResponseLost):
    proxy = True


if __name__ == "__main__":
    unittest.main()
