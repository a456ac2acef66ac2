"""Throw-away certificates for the TLS tests, made with the `openssl` command line.

CertSet(directory) writes, all EC P-256 and valid for two days unless said otherwise:
  ca.pem / ca.key                 the test CA
  server.pem / server.key         CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (signed by ca)
  server2.pem / server2.key       the same names, another key (for reload tests)
  client.pem / client.key         CN=worker-1 (signed by ca)
  expired.pem / expired.key       CN=expired-client, expired yesterday (signed by ca)
  wronghost.pem / wronghost.key   CN=wrong.example, SAN DNS:wrong.example (signed by ca)
  other-ca.pem / other-ca.key     another CA
  stranger.pem / stranger.key     CN=stranger, signed by other-ca
Nothing is kept: the directory is the caller's temporary directory.
"""

import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class CertSet:
    def __init__(self, directory):
        self.dir = directory
        self.make_ca("ca", "roundhouse-test-ca")
        self.make_ca("other-ca", "other-test-ca")
        self.issue("server", "localhost", san="DNS:localhost,IP:127.0.0.1")
        self.issue("server2", "localhost", san="DNS:localhost,IP:127.0.0.1")
        self.issue("client", "worker-1")
        self.issue("expired", "expired-client", days=-1)
        self.issue("wronghost", "wrong.example", san="DNS:wrong.example")
        self.issue("stranger", "stranger", ca="other-ca")

    def path(self, name):
        return os.path.join(self.dir, name)

    def make_ca(self, name, cn):
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)

    def issue(self, name, cn, san=None, days=2, ca="ca"):
        _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=self.dir)
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write("subjectAltName=%s\n" % san)
        _run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", str(days), "-extfile", ext,
             cwd=self.dir)
