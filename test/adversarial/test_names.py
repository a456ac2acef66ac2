"""Names that reach JSON, metrics and admin lines stay valid and unforgeable (issue 12, req. 4).

A peer may name a function (or a unique, or its client id) with any bytes, as gearmand allows.
roundhouse escapes on output (doc/protocol.md, "Names in output"): admin lines and metric labels
show `\\xHH` for control bytes and invalid UTF-8 and `\\\\` for a backslash (admin `workers`
also escapes the space that separates its fields); JSON replaces invalid UTF-8 with U+FFFD.
"""

import json
import unittest

import gearman_wire as gw
from broker_checks import (BrokerCase, PromFormatError, admin_lines, http_get,
                           parse_prometheus)

INVALID = b"inv\xff\xfe\xc3name"          # not UTF-8
FORGER = b"job\nforged\t7\t7\t7"           # would add a `status` line
TABBED = b"tab\tname"                      # would add `status` fields
SPACED = b"build:My Project"               # legitimate; a `workers` field separator
SLASHED = b"back\\slash"
LOOKALIKE = b"job\\x0aforged\\x097\\x097\\x097"  # spelled like FORGER's escaped form
NAMES = [INVALID, FORGER, TABBED, SPACED, SLASHED, LOOKALIKE, b"plain"]


def escaped(name, escape_space=False):
    """The documented escaped form (doc/protocol.md)."""
    out = bytearray()
    text = name.decode("utf-8", "surrogateescape")
    for ch in text:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:                 # an undecodable byte
            out += b"\\x%02x" % (cp - 0xDC00)
        elif ch == "\\":
            out += b"\\\\"
        elif cp < 0x20 or cp == 0x7F or (escape_space and ch == " "):
            out += b"\\x%02x" % cp
        else:
            out += ch.encode()
    return bytes(out)


class CheckerSelfTest(unittest.TestCase):
    """The strict checker must reject what Prometheus rejects, or the tests below prove nothing."""

    def test_checker_rejects_invalid_scrapes(self):
        good = b'# TYPE m gauge\nm{a="x"} 1\n'
        self.assertEqual(parse_prometheus(good), {("m", (("a", "x"),)): 1.0})
        for bad in (b'm{a="\xff"} 1\n',            # not UTF-8
                    b'm{a="x\\ty"} 1\n',           # unknown escape
                    b'm{a="x"} 1\nm{a="x"} 2\n',   # same series twice
                    b'm{a="x} 1\n',                # unterminated
                    b'm{a="x"}\n',                 # no value
                    b'm 1\nn 1\nm 2\n',            # family split
                    b'm{a="x"} one\n'):
            with self.assertRaises(PromFormatError, msg=bad):
                parse_prometheus(bad)


class NamesInOutput(BrokerCase):
    def setUp(self):
        self.server = self.start_with_http()
        self.worker = self.connect()
        self.worker.set_client_id(b"id\nfake 1.2.3.4 x : forged")
        for name in NAMES:
            self.worker.can_do(name)
        self.worker.assert_quiet()
        self.client = self.connect()
        for i, name in enumerate(NAMES):
            self.client.submit(gw.SUBMIT_JOB_BG, name, b"u\n%d\tx" % i, b"d")

    def test_status_has_one_line_of_four_fields_per_function(self):
        for command in ("status", "prioritystatus"):
            lines = admin_lines(self.server.port, command)
            self.assertEqual(len(lines), len(NAMES), (command, lines))
            width = 4 if command == "status" else 5
            names = set()
            for line in lines:
                fields = line.split(b"\t")
                self.assertEqual(len(fields), width, (command, line))
                names.add(fields[0])
                self.assertTrue(all(f.isdigit() for f in fields[1:]), line)
            self.assertEqual(names, {escaped(n) for n in NAMES}, command)
            self.assertFalse([l for l in lines if l.startswith(b"forged")], lines)
            # Different names stay different (the lookalike is not the forger).
            self.assertEqual(len(names), len(NAMES))

    def test_workers_lines_are_not_forged_by_names_or_client_id(self):
        lines = admin_lines(self.server.port, "workers")
        self.assertEqual(len(lines), 1, lines)
        # The client id keeps its spaces (gearmand prints it verbatim); its newline is escaped.
        cid = escaped(b"id\nfake 1.2.3.4 x : forged")
        self.assertEqual(cid, b"id\\x0afake 1.2.3.4 x : forged")
        fd, ip, rest = lines[0].split(b" ", 2)
        self.assertTrue(fd.isdigit())
        self.assertTrue(rest.startswith(cid + b" : "), rest)
        funcs = rest[len(cid) + 3:]
        self.assertEqual(sorted(funcs.split(b" ")), sorted(escaped(n, True) for n in NAMES))

    def test_show_unique_jobs_keeps_one_line_per_job(self):
        lines = admin_lines(self.server.port, "show unique jobs")
        self.assertEqual(sorted(lines), sorted(escaped(b"u\n%d\tx" % i) for i in range(len(NAMES))))
        jobs = admin_lines(self.server.port, "show jobs")
        self.assertEqual(len(jobs), len(NAMES))
        for line in jobs:
            self.assertEqual(len(line.split(b"\t")), 4, line)

    def test_api_documents_are_valid_json(self):
        for path in ("/api/status", "/api/workers", "/api/jobs", "/api/jobs?limit=2"):
            status, headers, body = http_get(self.server.http_port, path)
            self.assertEqual(status, 200, path)
            doc = json.loads(body)  # bytes: decoded as strict UTF-8, raises on invalid bytes
            self.assertIsInstance(doc, dict)
        doc = json.loads(http_get(self.server.http_port, "/api/status")[2])
        names = sorted(f["name"] for f in doc["functions"])
        expect = sorted(n.decode("utf-8", "replace") for n in NAMES)
        self.assertEqual(names, expect)
        workers = json.loads(http_get(self.server.http_port, "/api/workers")[2])["workers"]
        self.assertEqual(workers[0]["client_id"], "id\nfake 1.2.3.4 x : forged")
        jobs = json.loads(http_get(self.server.http_port, "/api/jobs")[2])["jobs"]
        self.assertIn("inv\ufffd\ufffd\ufffdname", [j["function"] for j in jobs])

    def test_metrics_scrape_is_strictly_valid_and_one_series_per_function(self):
        status, headers, body = http_get(self.server.http_port, "/metrics")
        self.assertEqual(status, 200)
        samples = parse_prometheus(body)  # raises on anything Prometheus would reject
        functions = {dict(labels)["function"] for (name, labels) in samples
                     if name == "roundhouse_jobs_submitted_total" and labels != (("other", "true"),)}
        expect = {escaped(n).decode() for n in NAMES}
        self.assertEqual(functions, expect)
        for n in NAMES:
            key = ("roundhouse_jobs_submitted_total", (("function", escaped(n).decode()),))
            self.assertEqual(samples[key], 1.0, n)


if __name__ == "__main__":
    unittest.main()
