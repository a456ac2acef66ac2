"""Checks of what the broker writes for others to parse (issue 12: names, cardinality, large
replies): a strict Prometheus text-format checker, HTTP and admin helpers, ECHO latency.

The Prometheus checker follows the text exposition format 0.0.4 as Prometheus documents it:
UTF-8 only; `# HELP name text` and `# TYPE name type` comments, at most one TYPE per family and
before its samples; sample lines `name{label="value",...} value [timestamp]`; metric names
[a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*, label values with only the escapes
\\\\, \\" and \\n; values that parse as floats (or +Inf, -Inf, NaN); all samples of one family
together; no series (name and label set) twice. Prometheus rejects a whole scrape for any of these.
"""

import http.client
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import gearman_wire as gw  # noqa: E402
import server_fixture as sf  # noqa: E402

HOST = sf.HOST
PAGE = os.sysconf("SC_PAGE_SIZE")

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class PromFormatError(AssertionError):
    pass


def _parse_labels(text, pos, lineno):
    """Parses `{a="x",b="y"}` starting at text[pos] == '{'; returns (labels tuple, end)."""
    assert text[pos] == "{"
    pos += 1
    labels = []
    while True:
        if pos < len(text) and text[pos] == "}":
            return tuple(labels), pos + 1
        m = _LABEL_NAME.match(text, pos)
        if not m:
            raise PromFormatError("line %d: bad label name at %r" % (lineno, text[pos:pos + 20]))
        name = m.group(0)
        pos = m.end()
        if text[pos:pos + 2] != '="':
            raise PromFormatError("line %d: expected =\" after label %s" % (lineno, name))
        pos += 2
        value = []
        while True:
            if pos >= len(text):
                raise PromFormatError("line %d: unterminated label value" % lineno)
            c = text[pos]
            if c == '"':
                pos += 1
                break
            if c == "\\":
                nxt = text[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise PromFormatError("line %d: invalid escape \\%s in label value"
                                          % (lineno, nxt))
                value.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                pos += 2
                continue
            if c == "\n":
                raise PromFormatError("line %d: raw newline in label value" % lineno)
            value.append(c)
            pos += 1
        if any(n == name for n, _ in labels):
            raise PromFormatError("line %d: label %s twice" % (lineno, name))
        labels.append((name, "".join(value)))
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "}":
            return tuple(labels), pos + 1
        raise PromFormatError("line %d: expected , or } in label set" % lineno)


def _family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def parse_prometheus(body):
    """Strictly parses a /metrics body (bytes). Returns {(name, labels tuple): float}.
    Raises PromFormatError (an AssertionError) at the first violation."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PromFormatError("not UTF-8: %s" % e)
    if text and not text.endswith("\n"):
        raise PromFormatError("last line not terminated by \\n")
    types = {}
    helps = set()
    seen_families = []  # in order of first sample
    closed = set()
    samples = {}
    current = None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if not _METRIC_NAME.fullmatch(parts[2]):
                    raise PromFormatError("line %d: bad metric name %r" % (lineno, parts[2]))
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in _TYPES:
                        raise PromFormatError("line %d: bad TYPE line %r" % (lineno, line))
                    if parts[2] in types:
                        raise PromFormatError("line %d: second TYPE for %s" % (lineno, parts[2]))
                    if parts[2] in closed or parts[2] == current:
                        raise PromFormatError("line %d: TYPE after samples of %s"
                                              % (lineno, parts[2]))
                    types[parts[2]] = parts[3]
                else:
                    if parts[2] in helps:
                        raise PromFormatError("line %d: second HELP for %s" % (lineno, parts[2]))
                    helps.add(parts[2])
            continue
        if not line.strip():
            continue
        m = _METRIC_NAME.match(line)
        if not m:
            raise PromFormatError("line %d: bad metric name in %r" % (lineno, line[:60]))
        name = m.group(0)
        pos = m.end()
        labels = ()
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos, lineno)
        if pos >= len(line) or line[pos] != " ":
            raise PromFormatError("line %d: expected a space before the value" % lineno)
        fields = line[pos + 1:].split(" ")
        if len(fields) not in (1, 2) or not fields[0]:
            raise PromFormatError("line %d: bad value/timestamp %r" % (lineno, line[pos:]))
        try:
            value = float(fields[0])
        except ValueError:
            raise PromFormatError("line %d: value %r is not a float" % (lineno, fields[0]))
        if len(fields) == 2 and not re.fullmatch(r"-?[0-9]+", fields[1]):
            raise PromFormatError("line %d: bad timestamp %r" % (lineno, fields[1]))
        family = _family_of(name, types)
        if family != current:
            if family in closed:
                raise PromFormatError("line %d: samples of %s are not together" % (lineno, family))
            if current is not None:
                closed.add(current)
            current = family
            seen_families.append(family)
        key = (name, tuple(sorted(labels)))
        if key in samples:
            raise PromFormatError("line %d: series %s%r twice" % (lineno, name, labels))
        samples[key] = value
    return samples


def http_get(port, path, timeout=60):
    """GET `path`; returns (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def admin_lines(port, command, timeout=60):
    """An admin listing as a list of lines (bytes, without the final "." line)."""
    with gw.Connection(HOST, port, timeout=timeout) as c:
        reply = c.admin(command, timeout=timeout)
    assert reply.endswith(b".\n"), reply[-100:]
    lines = reply[:-2].split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def rss_bytes(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE


def closed_by_server(sock, timeout=10.0):
    """True once the server has closed `sock` (reads, and discards, what is there until EOF or
    a reset); False if it is still open after `timeout` seconds of silence."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(1 << 20):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def echo_rtts(conn, count, payload=b"echo-probe"):
    """Round-trip times (s) of `count` sequential ECHOs on an open gearman_wire connection."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.send(gw.ECHO_REQ, payload)
        pkt = conn.recv_packet()
        out.append(time.perf_counter() - t0)
        if pkt.type != gw.ECHO_RES:
            raise gw.WireError("echo got %r" % (pkt,))
    return out


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


class BrokerCase(sf.ServerTestCase):
    """Starts roundhouse with the status endpoint on a second free port."""

    def start_with_http(self, *args, **kw):
        http_port = sf.free_port()
        server = self.start_server("--status-port", str(http_port), "--status-listen", HOST,
                                   *args, kind="roundhouse", **kw)
        server.http_port = http_port
        self.server = server  # ServerTestCase.connect() defaults to it
        return server
