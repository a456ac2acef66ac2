"""Raw Gearman wire protocol for end-to-end tests (doc/protocol.md §1 and §2).

Encodes request packets byte for byte, decodes response packets, and wraps one TCP connection
with a receive buffer so binary packets and admin text replies can be read from the same socket
in arrival order. Python 3 standard library only.

Nothing here interprets job semantics: the tests do that. Every read has a timeout, so a server
that stays silent fails the test instead of hanging it.
"""

import collections
import select
import socket
import struct
import threading
import time

REQ = b"\0REQ"
RES = b"\0RES"
HEADER = struct.Struct(">4sII")
HEADER_SIZE = HEADER.size  # 12

# Packet types 1-42, named as in gearmand's protocol (doc/protocol.md §2).
TYPES = {
    "CAN_DO": 1,
    "CANT_DO": 2,
    "RESET_ABILITIES": 3,
    "PRE_SLEEP": 4,
    "UNUSED": 5,
    "NOOP": 6,
    "SUBMIT_JOB": 7,
    "JOB_CREATED": 8,
    "GRAB_JOB": 9,
    "NO_JOB": 10,
    "JOB_ASSIGN": 11,
    "WORK_STATUS": 12,
    "WORK_COMPLETE": 13,
    "WORK_FAIL": 14,
    "GET_STATUS": 15,
    "ECHO_REQ": 16,
    "ECHO_RES": 17,
    "SUBMIT_JOB_BG": 18,
    "ERROR": 19,
    "STATUS_RES": 20,
    "SUBMIT_JOB_HIGH": 21,
    "SET_CLIENT_ID": 22,
    "CAN_DO_TIMEOUT": 23,
    "ALL_YOURS": 24,
    "WORK_EXCEPTION": 25,
    "OPTION_REQ": 26,
    "OPTION_RES": 27,
    "WORK_DATA": 28,
    "WORK_WARNING": 29,
    "GRAB_JOB_UNIQ": 30,
    "JOB_ASSIGN_UNIQ": 31,
    "SUBMIT_JOB_HIGH_BG": 32,
    "SUBMIT_JOB_LOW": 33,
    "SUBMIT_JOB_LOW_BG": 34,
    "SUBMIT_JOB_SCHED": 35,
    "SUBMIT_JOB_EPOCH": 36,
    "SUBMIT_REDUCE_JOB": 37,
    "SUBMIT_REDUCE_JOB_BACKGROUND": 38,
    "GRAB_JOB_ALL": 39,
    "JOB_ASSIGN_ALL": 40,
    "GET_STATUS_UNIQUE": 41,
    "STATUS_RES_UNIQUE": 42,
}
NAMES = {number: name for name, number in TYPES.items()}
globals().update(TYPES)  # gearman_wire.SUBMIT_JOB == 7, etc.

DEFAULT_TIMEOUT = 5.0


class WireError(AssertionError):
    """The server did not send what the caller waited for (timeout, close, garbage)."""


class ConnectionClosed(WireError):
    pass


class ReplyTimeout(WireError):
    pass


def as_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int):
        return str(value).encode()
    return str(value).encode()


def type_number(ptype):
    return TYPES[ptype] if isinstance(ptype, str) else int(ptype)


def encode(ptype, *args, magic=REQ):
    """One packet: magic, big-endian type and size, args joined by a single NUL each."""
    payload = b"\0".join(as_bytes(a) for a in args)
    return HEADER.pack(magic, type_number(ptype), len(payload)) + payload


def encode_payload(ptype, payload, magic=REQ, size=None):
    """A packet with a verbatim payload (and optionally a lying size field)."""
    payload = as_bytes(payload)
    return HEADER.pack(magic, type_number(ptype), len(payload) if size is None else size) + payload


def decode(buf):
    """Decode one packet from the front of buf.

    Returns ((magic, type, payload), consumed) or (None, 0) when buf holds less than a packet.
    """
    if len(buf) < HEADER_SIZE:
        return None, 0
    magic, ptype, size = HEADER.unpack_from(buf, 0)
    if len(buf) < HEADER_SIZE + size:
        return None, 0
    return (magic, ptype, bytes(buf[HEADER_SIZE:HEADER_SIZE + size])), HEADER_SIZE + size


class Packet(tuple):
    """(magic, type, payload) with a few conveniences for assertions."""

    __slots__ = ()

    def __new__(cls, magic, ptype, payload):
        return super().__new__(cls, (magic, ptype, payload))

    magic = property(lambda self: self[0])
    type = property(lambda self: self[1])
    payload = property(lambda self: self[2])
    name = property(lambda self: NAMES.get(self[1], "TYPE_%d" % self[1]))

    def args(self, count=None):
        """Split the payload on NUL: into count pieces (the last keeps its NULs) or all."""
        if count is None:
            return self.payload.split(b"\0")
        return self.payload.split(b"\0", count - 1)

    def encode(self):
        return HEADER.pack(self.magic, self.type, len(self.payload)) + self.payload

    def __repr__(self):
        return "Packet(%r, %s, %r)" % (self.magic, self.name, self.payload)


def res(ptype, *args):
    """The response packet the server should send, as a Packet (for assertEqual)."""
    return Packet(RES, type_number(ptype), b"\0".join(as_bytes(a) for a in args))


def error(code, text):
    return res(ERROR, code, text)


class Connection:
    """One TCP connection to the server with a receive buffer shared by binary and text reads."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT, connect_timeout=5.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fileno(self):
        return self.sock.fileno()

    def local_port(self):
        return self.sock.getsockname()[1]

    # -- sending -----------------------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(as_bytes(data))

    def send(self, ptype, *args, magic=REQ):
        self.send_raw(encode(ptype, *args, magic=magic))

    def send_text(self, line):
        """An admin command; a bare line gets '\\n' appended (pass the terminator to choose)."""
        line = as_bytes(line)
        if not line.endswith(b"\n"):
            line += b"\n"
        self.send_raw(line)

    # -- receiving ---------------------------------------------------------------------------

    def _readable(self, timeout):
        """select() on the socket, except that a TLS socket (ssl.SSLSocket, see
        start_tls) may already hold decrypted bytes that select cannot see."""
        pending = getattr(self.sock, "pending", None)
        if pending is not None and pending() > 0:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def start_tls(self, context, server_hostname=None):
        """Wrap the connection in TLS (an ssl.SSLContext); the handshake happens now. Nothing
        may have been sent yet. Every other method then works unchanged over TLS."""
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return self

    def _fill(self, deadline):
        """Read at least one more byte into the buffer or raise."""
        if self.eof:
            raise ConnectionClosed("connection closed by server; buffered %r" % bytes(self.buf))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReplyTimeout("no reply in time; buffered %r" % bytes(self.buf))
        if not self._readable(remaining):
            raise ReplyTimeout("no reply in time; buffered %r" % bytes(self.buf))
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by server; buffered %r" % bytes(self.buf))
        self.buf += chunk

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def recv_packet(self, timeout=None):
        """The next binary packet (raises if the buffer starts with text)."""
        deadline = self._deadline(timeout)
        while True:
            if self.buf and self.buf[0] != 0:
                raise WireError("expected a binary packet, got text %r" % bytes(self.buf[:200]))
            pkt, used = decode(self.buf)
            if pkt is not None:
                del self.buf[:used]
                return Packet(*pkt)
            self._fill(deadline)

    def recv_packets(self, count, timeout=None):
        return [self.recv_packet(timeout) for _ in range(count)]

    def recv_exact(self, count, timeout=None):
        deadline = self._deadline(timeout)
        while len(self.buf) < count:
            self._fill(deadline)
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def recv_line(self, timeout=None):
        """One text line including its '\\n' (and any '\\r' before it)."""
        deadline = self._deadline(timeout)
        while True:
            index = self.buf.find(b"\n")
            if index >= 0:
                line = bytes(self.buf[:index + 1])
                del self.buf[:index + 1]
                return line
            self._fill(deadline)

    def recv_listing(self, timeout=None):
        """An admin listing: every byte up to and including the '.\\n' line."""
        deadline = self._deadline(timeout)
        out = b""
        while True:
            line = self.recv_line(max(0.0, deadline - time.monotonic()))
            out += line
            if line == b".\n":
                return out

    def recv_available(self, wait=0.3):
        """Whatever is buffered plus what arrives within `wait` seconds of silence."""
        end = time.monotonic() + wait
        while not self.eof:
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            if not self._readable(remaining):
                break
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
            end = time.monotonic() + wait
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def recv_burst(self, settle=0.2, timeout=None):
        """Wait for the first byte, sleep `settle`, then take what a single recv() returns.

        Used to check that an admin reply was written in one burst, as gearadmin needs (it
        stops reading after 5 ms of silence).
        """
        assert not self.buf, "unread bytes before a burst read: %r" % bytes(self.buf)
        if not self._readable(self.timeout if timeout is None else timeout):
            raise ReplyTimeout("no reply in time")
        time.sleep(settle)
        data = self.sock.recv(1 << 22)
        if not data:
            self.eof = True
            raise ConnectionClosed("connection closed by server")
        return data

    def wait_closed(self, timeout=None):
        """True if the server closes the connection (after sending nothing more) in time.

        Bytes that arrive first are kept in self.buf so the caller can assert on them.
        """
        deadline = self._deadline(timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self._readable(remaining):
                return False
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        return True

    # -- request/response helpers --------------------------------------------------------------

    def request(self, ptype, *args, timeout=None):
        """Send one packet and return the next packet received."""
        self.send(ptype, *args)
        return self.recv_packet(timeout)

    def admin(self, command, timeout=None):
        """Send an admin command and read its reply: a listing, or one OK/ERR line."""
        self.send_text(command)
        return self.recv_admin_reply(timeout)

    def recv_admin_reply(self, timeout=None):
        deadline = self._deadline(timeout)
        first = self.recv_line(timeout)
        if first.startswith(b"OK") or first.startswith(b"ERR"):
            return first
        out = first
        while out != b".\n" and not out.endswith(b"\n.\n"):
            out += self.recv_line(max(0.0, deadline - time.monotonic()))
        return out

    def echo(self, data=b"sync"):
        self.send(ECHO_REQ, data)
        return self.recv_packet()

    def sync(self, token=b"sync-marker", timeout=None):
        """Round-trip an ECHO and return every packet that arrived before its ECHO_RES.

        Replies on one connection keep request order (doc/protocol.md §1.3), so this proves deterministically
        that the server sent nothing else in between, without sleeping.
        """
        self.send(ECHO_REQ, token)
        before = []
        while True:
            pkt = self.recv_packet(timeout)
            if pkt == res(ECHO_RES, token):
                return before
            before.append(pkt)

    def assert_quiet(self, token=b"quiet-marker"):
        before = self.sync(token)
        if before:
            raise WireError("unexpected packets before ECHO_RES: %r" % (before,))

    # -- typical multi-packet exchanges ---------------------------------------------------------

    def submit(self, ptype, func, unique=b"", data=b""):
        """A SUBMIT_JOB* of 3-argument form; returns the handle from JOB_CREATED."""
        pkt = self.request(ptype, func, unique, data)
        if pkt.type != JOB_CREATED:
            raise WireError("submit got %r" % (pkt,))
        return pkt.payload

    def grab(self, ptype=GRAB_JOB):
        return self.request(ptype)


def _make_helper(name, number):
    def helper(self, *args, magic=REQ):
        self.send(number, *args, magic=magic)

    helper.__name__ = name.lower()
    helper.__doc__ = "Send %s (type %d) with the given arguments joined by NUL." % (name, number)
    return helper


# conn.submit_job(b"f", b"u", b"data"), conn.grab_job(), conn.work_complete(h, b"x") ...
for _name, _number in TYPES.items():
    setattr(Connection, _name.lower(), _make_helper(_name, _number))


def connect(port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
    return Connection(host, port, timeout=timeout)


# One job a Worker took: its handle, function, unique id (b"" unless grabbed with uniq=True) and
# workload.
Job = collections.namedtuple("Job", "handle function unique data")


class Worker:
    """A worker thread on the Gearman port. It registers `functions` (CAN_DO each, then an ECHO
    round trip, so they are registered when the constructor returns) and then loops: GRAB_JOB
    (GRAB_JOB_UNIQ with uniq=True), PRE_SLEEP and wait for the NOOP when there is no job. For each
    job it appends a Job to `jobs` and sends what on_job(job) returns: a list of packets, each a
    (type, args...) tuple, e.g. [(WORK_DATA, job.handle, b"a"), (WORK_COMPLETE, job.handle, b"")].
    stop() closes the connection and ends the thread; so does the server going away."""

    def __init__(self, host, port, functions, on_job, uniq=False, timeout=60):
        self.conn = Connection(host, port, timeout=timeout)
        for fn in functions:
            self.conn.send(CAN_DO, fn)
        self.conn.echo()
        self.on_job = on_job
        self.uniq = uniq
        self.jobs = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c = self.conn
        grab, assign = (GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ) if self.uniq else (GRAB_JOB, JOB_ASSIGN)
        try:
            while not self.stopped:
                c.send(grab)
                p = c.recv_packet()
                if p.type == NO_JOB:
                    c.send(PRE_SLEEP)
                    c.recv_packet()
                    continue
                if p.type != assign:
                    continue
                if self.uniq:
                    job = Job(*p.args(4))
                else:
                    handle, function, data = p.args(3)
                    job = Job(handle, function, b"", data)
                self.jobs.append(job)
                for packet in self.on_job(job):
                    c.send(packet[0], *packet[1:])
        except (OSError, ValueError, AttributeError, WireError):  # closed by stop() or the server
            pass
        except TypeError:
            if not self.stopped:  # else stop() closed the socket under a read
                raise

    def stop(self):
        self.stopped = True
        self.conn.close()
        self.thread.join(5)
