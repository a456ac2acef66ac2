"""Secrets and files (issue 12, requirement 5; doc/jenkins.md, "Secrets").

The admin port can never make the server read a path: `jenkins add ... api_token_file=PATH` is
refused, or with --jenkins-token-dir DIR limited to a bare file name in DIR (no symlink out of
it); `api_token_env` is refused there. A token on the command line is warned about at start;
api_token_env works; no token appears in the log, in `jenkins show` or in /api/jenkins.
A tiny HTTP server stands in for the master and records every Authorization header it is sent.
"""

import base64
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import gearman_wire as gw  # noqa: E402
import server_fixture as sf  # noqa: E402

SECRET = "TOPSECRET-0123456789abcdef"


class RecordingMaster:
    """Answers every request 404 and keeps the Authorization headers it saw."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                seen.append(self.headers.get("Authorization", ""))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((sf.HOST, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "http://%s:%d/" % (sf.HOST, self.port)

    def tokens(self):
        out = set()
        for h in self.seen:
            if h.startswith("Basic "):
                out.add(base64.b64decode(h[6:]).decode("utf-8", "replace").split(":", 1)[1])
        return out

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Secrets(sf.ServerTestCase):
    def setUp(self):
        if sf.reference_mode():
            self.skipTest("roundhouse-only: gearmand has no Jenkins adapters")
        self.dir = tempfile.mkdtemp(prefix="rh-secrets-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.secret_file = os.path.join(self.dir, "private.key")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(self.secret_file, 0o600)
        self.master = RecordingMaster()
        self.addCleanup(self.master.close)

    def admin(self, server, line):
        with gw.Connection(sf.HOST, server.port, timeout=10) as c:
            return c.admin(line)

    def add(self, server, name, extra):
        line = "jenkins add %s base_url=%s,user=u,%s" % (name, self.master.url(), extra)
        return self.admin(server, line)

    def assert_no_secret_anywhere(self, server):
        time.sleep(0.5)
        self.assertNotIn(SECRET, server.logs())
        self.assertNotIn(SECRET, self.master.tokens())

    def test_admin_api_token_file_is_refused_without_a_token_dir(self):
        server = self.start_server()
        for path in (self.secret_file, "/etc/shadow", "/etc/passwd", "private.key"):
            reply = self.add(server, "evil", "api_token_file=" + path)
            self.assertTrue(reply.startswith(b"ERR INVALID_ARGUMENTS"), reply)
            self.assertIn(b"not+accepted+from+the+admin+port", reply.replace(b" ", b"+"))
        reply = self.add(server, "evil", "api_token_env=HOME")
        self.assertTrue(reply.startswith(b"ERR INVALID_ARGUMENTS"), reply)
        self.assertNotIn(b"evil\t", self.admin(server, "jenkins list"))
        self.assert_no_secret_anywhere(server)

    def test_token_dir_allows_bare_names_inside_it_only(self):
        tokens = os.path.join(self.dir, "tokens")
        os.mkdir(tokens)
        with open(os.path.join(tokens, "ci.token"), "w") as f:
            f.write("dir-token-1\n")
        os.symlink(self.secret_file, os.path.join(tokens, "link.token"))
        server = self.start_server("--jenkins-token-dir", tokens)
        for bad in (self.secret_file, "../private.key", "sub/ci.token", ".hidden", "link.token"):
            reply = self.add(server, "evil", "api_token_file=" + bad)
            self.assertTrue(reply.startswith(b"ERR INVALID_ARGUMENTS"), (bad, reply))
        self.assertEqual(self.add(server, "ok1", "api_token_file=ci.token"), b"OK\r\n")
        show = self.admin(server, "jenkins show ok1")
        self.assertIn(b"api_token (set)", show)
        deadline = time.monotonic() + 10
        while "dir-token-1" not in self.master.tokens() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("dir-token-1", self.master.tokens())  # the file in DIR is used
        self.assertNotIn(b"dir-token-1", show)
        self.assert_no_secret_anywhere(server)

    def test_command_line_token_is_warned_about_and_never_shown(self):
        http_port = sf.free_port()
        server = self.start_server(
            "--status-port", str(http_port), "--status-listen", sf.HOST,
            "--jenkins", "cli:base_url=%s,user=u,api_token=%s" % (self.master.url(), SECRET))
        self.assertIn("a token or password on the command line is readable by every local user",
                      server.logs())
        show = self.admin(server, "jenkins show cli")
        self.assertIn(b"api_token (set)", show)
        self.assertNotIn(SECRET.encode(), show)
        with urllib.request.urlopen("http://%s:%d/api/jenkins" % (sf.HOST, http_port),
                                    timeout=10) as r:
            body = r.read()
        json.loads(body)
        self.assertNotIn(SECRET.encode(), body)
        self.assertNotIn(SECRET, server.logs())

    def test_api_token_env_is_the_way_and_not_warned_about(self):
        env = dict(os.environ, RH_TEST_JENKINS_TOKEN="env-token-7")
        server = self.start_server(
            "--jenkins", "envm:base_url=%s,user=u,api_token_env=RH_TEST_JENKINS_TOKEN"
            % self.master.url(), env=env)
        deadline = time.monotonic() + 10
        while "env-token-7" not in self.master.tokens() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("env-token-7", self.master.tokens())
        self.assertNotIn("readable by every local user", server.logs())
        self.assertNotIn("env-token-7", server.logs())
        self.assertNotIn(b"env-token-7", self.admin(server, "jenkins show envm"))


if __name__ == "__main__":
    unittest.main()
