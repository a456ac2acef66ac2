"""Conformance of the binary protocol (doc/protocol.md §1–§3), over real sockets.

Each test starts its own server. Tests decorated @roundhouse_only assert one of our deliberate
differences ("Decision:" lines of doc/protocol.md) and are skipped with GEARMAN_REFERENCE=1.
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
from gearman_wire import res, error  # noqa: E402
from e2e_base import GearmanTestCase  # noqa: E402
import server_fixture  # noqa: E402
from server_fixture import roundhouse_only, Server, ServerStartError  # noqa: E402

INVALID_COMMAND = error("INVALID_COMMAND", "Command not expected")
INVALID_PACKET = error("INVALID_PACKET", "Packet is missing arguments")
NOT_FOUND_RESULT = error("JOB_NOT_FOUND", "Job given in work result not found")
NOT_FOUND_DATA = error("JOB_NOT_FOUND", "Job does not exist on server")
NOT_FOUND_EXCEPTION = error("JOB_NOT_FOUND",
                            "An exception was received for a job that does not exist")
UNIQUE_TOO_LARGE = error("ARGUMENT_TOO_LARGE", "Unique value too large")
QUEUE_FULL = error("QUEUE_ERROR", "Job queue is full")

SUBMIT_FOREGROUND = (gw.SUBMIT_JOB, gw.SUBMIT_JOB_HIGH, gw.SUBMIT_JOB_LOW)
SUBMIT_BACKGROUND = (gw.SUBMIT_JOB_BG, gw.SUBMIT_JOB_HIGH_BG, gw.SUBMIT_JOB_LOW_BG)
SUBMIT_3ARG = SUBMIT_FOREGROUND + SUBMIT_BACKGROUND

# Response-only and unimplemented types, each with well-formed arguments (gearmand would
# otherwise wait for the missing separators).
RESPONSE_TYPES_WITH_ARGS = {
    gw.UNUSED: [],
    gw.NOOP: [],
    gw.JOB_CREATED: [b"H:x:1"],
    gw.NO_JOB: [],
    gw.JOB_ASSIGN: [b"H:x:1", b"f", b"d"],
    gw.ECHO_RES: [b"d"],
    gw.ERROR: [b"CODE", b"text"],
    gw.STATUS_RES: [b"H:x:1", b"1", b"0", b"0", b"0"],
    gw.ALL_YOURS: [],
    gw.OPTION_RES: [b"exceptions"],
    gw.JOB_ASSIGN_UNIQ: [b"H:x:1", b"f", b"u", b"d"],
    gw.SUBMIT_JOB_SCHED: [b"f", b"u", b"1", b"2", b"3", b"4", b"5", b"d"],
    gw.JOB_ASSIGN_ALL: [b"H:x:1", b"f", b"u", b"r", b"d"],
    gw.STATUS_RES_UNIQUE: [b"u", b"0", b"0", b"0", b"0", b"0"],
}


class Framing(GearmanTestCase):
    """Section 1: packet layout, split reads, pipelining, mixing text and binary, closes."""

    def test_echo_returns_payload_byte_for_byte_under_res_magic(self):
        c = self.client()
        c.send_raw(b"\x00REQ\x00\x00\x00\x10\x00\x00\x00\x05a\x00b\x00c")
        self.assertEqual(c.recv_exact(17), b"\x00RES\x00\x00\x00\x11\x00\x00\x00\x05a\x00b\x00c")

    def test_echo_with_empty_payload_answers_empty_echo_res(self):
        c = self.client()
        self.assertEqual(c.request(gw.ECHO_REQ), res(gw.ECHO_RES, b""))

    def test_echo_of_one_mebibyte_round_trips(self):
        c = self.client()
        data = bytes(range(256)) * 4096
        self.assertEqual(c.request(gw.ECHO_REQ, data, timeout=20), res(gw.ECHO_RES, data))

    def test_echo_of_2048_bytes_round_trips(self):
        c = self.client()
        data = b"x" * 2048
        self.assertEqual(c.request(gw.ECHO_REQ, data), res(gw.ECHO_RES, data))

    def test_packet_split_at_every_byte_is_reassembled(self):
        c = self.client()
        packet = gw.encode(gw.ECHO_REQ, b"split")
        for cut in range(1, len(packet)):
            c.send_raw(packet[:cut])
            time.sleep(0.005)  # give the server a chance to read the fragment on its own
            c.send_raw(packet[cut:])
            self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"split"), "cut at %d" % cut)

    def test_packet_sent_one_byte_at_a_time_is_reassembled(self):
        c = self.client()
        h = self.submit(c, b"f", b"u1", b"d")
        for byte in gw.encode(gw.GET_STATUS, h):
            c.send_raw(bytes([byte]))
        self.assertEqual(c.recv_packet(), res(gw.STATUS_RES, h, 1, 0, 0, 0))

    def test_admin_line_split_across_writes_is_reassembled(self):
        c = self.client()
        for piece in (b"ver", b"sio", b"n\r", b"\n"):
            c.send_raw(piece)
            time.sleep(0.005)
        self.assertTrue(c.recv_line().startswith(b"OK "))

    def test_1000_pipelined_echo_requests_are_answered_in_order(self):
        c = self.client()
        c.send_raw(b"".join(gw.encode(gw.ECHO_REQ, b"echo-%d" % i) for i in range(1000)))
        for i in range(1000):
            self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"echo-%d" % i))

    def test_pipelined_mixed_requests_are_answered_in_request_order(self):
        c = self.client()
        c.send_raw(gw.encode(gw.ECHO_REQ, b"one")
                   + gw.encode(gw.SUBMIT_JOB, b"f", b"u", b"x")
                   + gw.encode(gw.OPTION_REQ, b"bogus")
                   + gw.encode(gw.GET_STATUS, b"H:none:1")
                   + gw.encode(gw.ECHO_REQ, b"two"))
        self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"one"))
        self.assertEqual(c.recv_packet().type, gw.JOB_CREATED)
        self.assertEqual(c.recv_packet(), error("UNKNOWN_OPTION",
                                                "Server does not recognize given option"))
        self.assertEqual(c.recv_packet(), res(gw.STATUS_RES, b"H:none:1", 0, 0, 0, 0))
        self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"two"))

    def test_binary_and_text_mixed_on_one_connection_keep_reply_order(self):
        c = self.client()
        c.send_raw(gw.encode(gw.ECHO_REQ, b"a") + b"version\n"
                   + gw.encode(gw.SUBMIT_JOB, b"mixfn", b"", b"x") + b"status\r\n"
                   + gw.encode(gw.ECHO_REQ, b"b"))
        self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"a"))
        self.assertTrue(c.recv_line().startswith(b"OK "))
        self.assertEqual(c.recv_packet().type, gw.JOB_CREATED)
        self.assertEqual(c.recv_listing(), b"mixfn\t1\t0\t0\n.\n")
        self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"b"))

    def test_text_line_directly_after_binary_packet_in_same_write(self):
        c = self.client()
        c.send_raw(gw.encode(gw.ECHO_REQ, b"x") + b"getpid\n")
        self.assertEqual(c.recv_packet(), res(gw.ECHO_RES, b"x"))
        self.assertEqual(c.recv_line(), b"OK %d\n" % self.server.pid)

    def test_res_magic_request_gets_invalid_magic_and_connection_stays(self):
        c = self.client()
        c.send(gw.ECHO_REQ, b"hello", magic=gw.RES)
        self.assertEqual(c.recv_packet(), error("INVALID_MAGIC", "Request magic expected"))
        self.assertEqual(c.echo(b"still"), res(gw.ECHO_RES, b"still"))

    def test_unknown_magic_closes_connection_without_reply(self):
        for magic in (b"\x00XYZ", b"\x00req", b"\x00RE\x00"):
            c = self.client()
            c.send_raw(gw.encode_payload(gw.ECHO_REQ, b"x", magic=magic))
            self.assertTrue(c.wait_closed(), magic)
            self.assertEqual(bytes(c.buf), b"", magic)

    def test_type_zero_closes_connection_without_reply(self):
        c = self.client()
        c.send_raw(gw.encode_payload(0, b""))
        self.assertTrue(c.wait_closed())
        self.assertEqual(bytes(c.buf), b"")

    def test_type_43_and_above_close_connection_without_reply(self):
        for ptype in (43, 44, 1000, 0xFFFFFFFF):
            c = self.client()
            c.send_raw(gw.encode_payload(ptype, b""))
            self.assertTrue(c.wait_closed(), ptype)
            self.assertEqual(bytes(c.buf), b"", ptype)

    def test_zero_argument_packet_ignores_junk_payload(self):
        c = self.client()
        c.send_raw(gw.encode_payload(gw.GRAB_JOB, b"junk"))
        self.assertEqual(c.recv_packet(), res(gw.NO_JOB))
        c.send_raw(gw.encode_payload(gw.RESET_ABILITIES, b"\0\0\0"))
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))

    def test_last_argument_is_unterminated_and_may_contain_nul(self):
        c = self.client()
        w = self.worker(b"f")
        self.submit(c, b"f", b"u", b"a\0b\0")
        h, func, data = self.grab(w)
        self.assertEqual((func, data), (b"f", b"a\0b\0"))

    @roundhouse_only("argument split bounded by size (doc/protocol.md §1.2)")
    def test_submit_job_without_separators_gets_invalid_packet_and_connection_stays(self):
        c = self.client()
        c.send_raw(gw.encode_payload(gw.SUBMIT_JOB, b"funconly"))
        self.assertEqual(c.recv_packet(), INVALID_PACKET)
        c.send_raw(gw.encode_payload(gw.SUBMIT_JOB, b"func\0uniq"))
        self.assertEqual(c.recv_packet(), INVALID_PACKET)
        self.assertEqual(c.echo(b"after"), res(gw.ECHO_RES, b"after"))
        self.assertEqual(self.admin("status"), b".\n")

    @roundhouse_only("argument split bounded by size (doc/protocol.md §1.2)")
    def test_work_status_with_one_argument_gets_invalid_packet(self):
        c = self.client()
        c.send_raw(gw.encode_payload(gw.WORK_STATUS, b"H:x:1"))
        self.assertEqual(c.recv_packet(), INVALID_PACKET)
        c.send_raw(gw.encode_payload(gw.WORK_STATUS, b"H:x:1\x001"))
        self.assertEqual(c.recv_packet(), INVALID_PACKET)
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))

    @roundhouse_only("3-argument SUBMIT_REDUCE_JOB rejected (doc/protocol.md §2)")
    def test_three_argument_submit_reduce_job_gets_invalid_packet(self):
        c = self.client()
        for ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            c.send_raw(gw.encode_payload(ptype, b"f\0u\0reducer\0data"))
            self.assertEqual(c.recv_packet(), INVALID_PACKET)
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))
        self.assertEqual(self.admin("status"), b".\n")

    @roundhouse_only("missing separators answered for every multi-argument type")
    def test_every_multi_argument_request_type_with_no_separator_gets_invalid_packet(self):
        c = self.client()
        for ptype in (gw.SUBMIT_JOB, gw.SUBMIT_JOB_BG, gw.SUBMIT_JOB_HIGH, gw.SUBMIT_JOB_HIGH_BG,
                      gw.SUBMIT_JOB_LOW, gw.SUBMIT_JOB_LOW_BG, gw.SUBMIT_JOB_EPOCH,
                      gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND, gw.WORK_STATUS,
                      gw.WORK_COMPLETE, gw.WORK_EXCEPTION, gw.WORK_DATA, gw.WORK_WARNING,
                      gw.CAN_DO_TIMEOUT):
            c.send_raw(gw.encode_payload(ptype, b"noseparator"))
            self.assertEqual(c.recv_packet(), INVALID_PACKET, gw.NAMES[ptype])
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))


class PacketBodyLimit(GearmanTestCase):
    """Our server: a body over --max-packet-body is answered and discarded (doc/protocol.md §1.1)."""

    LIMIT = 1024
    server_args = ("--max-packet-body", str(LIMIT))

    def setUp(self):
        if self.gearmand:
            self.skipTest("roundhouse-only: packet body limit (gearmand has none)")
        super().setUp()

    def test_body_exactly_at_limit_is_accepted(self):
        c = self.client()
        data = b"a" * self.LIMIT
        self.assertEqual(c.request(gw.ECHO_REQ, data), res(gw.ECHO_RES, data))

    def test_body_one_byte_over_limit_gets_data_too_large_and_connection_stays(self):
        c = self.client()
        c.send(gw.ECHO_REQ, b"a" * (self.LIMIT + 1))
        self.assertEqual(c.recv_packet(),
                         error("DATA_TOO_LARGE", "Packet body exceeds server limit"))
        self.assertEqual(c.echo(b"after"), res(gw.ECHO_RES, b"after"))

    def test_oversized_submit_creates_no_job(self):
        c = self.client()
        c.send(gw.SUBMIT_JOB_BG, b"f", b"u", b"x" * self.LIMIT)
        self.assertEqual(c.recv_packet(),
                         error("DATA_TOO_LARGE", "Packet body exceeds server limit"))
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))
        self.assertEqual(self.admin("status"), b".\n")

    def test_large_oversized_body_sent_in_pieces_is_discarded_as_it_arrives(self):
        c = self.client()
        body = b"\0" * (4 << 20)  # NULs: would look like packets if not discarded
        c.send_raw(gw.HEADER.pack(gw.REQ, gw.ECHO_REQ, len(body)))
        for i in range(0, len(body), 65536):
            c.send_raw(body[i:i + 65536])
        c.send(gw.ECHO_REQ, b"next")
        self.assertEqual(c.recv_packet(timeout=20),
                         error("DATA_TOO_LARGE", "Packet body exceeds server limit"))
        self.assertEqual(c.recv_packet(timeout=20), res(gw.ECHO_RES, b"next"))


class ResponseTypesAsRequests(GearmanTestCase):
    """Section 2: types a client must not send get INVALID_COMMAND, connection kept."""

    def test_each_response_or_unimplemented_type_gets_invalid_command(self):
        c = self.client()
        for ptype, args in RESPONSE_TYPES_WITH_ARGS.items():
            c.send(ptype, *args)
            self.assertEqual(c.recv_packet(), INVALID_COMMAND, gw.NAMES[ptype])
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))

    def test_invalid_command_set_is_exactly_the_listed_types(self):
        self.assertEqual(sorted(RESPONSE_TYPES_WITH_ARGS),
                         [5, 6, 8, 10, 11, 17, 19, 20, 24, 27, 31, 35, 40, 42])

    def test_submit_job_sched_is_not_implemented(self):
        c = self.client()
        c.send(gw.SUBMIT_JOB_SCHED, b"f", b"u", b"*", b"*", b"*", b"*", b"*", b"data")
        self.assertEqual(c.recv_packet(), INVALID_COMMAND)
        self.assertEqual(self.admin("show jobs"), b".\n")

    def test_all_yours_gets_invalid_command(self):
        c = self.worker(b"f")
        c.send(gw.ALL_YOURS)
        self.assertEqual(c.recv_packet(), INVALID_COMMAND)


class Submission(GearmanTestCase):
    """Section 2: submit packets, JOB_CREATED, assignment formats, field limits."""

    def test_submit_then_grab_job_assign_format(self):
        c, w = self.client(), self.worker(b"reverse")
        h = self.submit(c, b"reverse", b"", b"test")
        self.assertEqual(w.request(gw.GRAB_JOB), res(gw.JOB_ASSIGN, h, b"reverse", b"test"))

    def test_grab_with_nothing_queued_gets_no_job_with_empty_payload(self):
        w = self.worker(b"f")
        w.send(gw.GRAB_JOB)
        self.assertEqual(w.recv_exact(12), b"\x00RES\x00\x00\x00\x0a\x00\x00\x00\x00")

    def test_grab_without_registrations_gets_no_job(self):
        c = self.client()
        self.submit(c, b"f", b"", b"x")
        self.assertNoJob(self.connect())

    def test_grab_job_uniq_includes_unique_which_may_be_empty(self):
        c, w = self.client(), self.worker(b"fn")
        h1 = self.submit(c, b"fn", b"", b"hi")
        h2 = self.submit(c, b"fn", b"u2", b"there")
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ), res(gw.JOB_ASSIGN_UNIQ, h1, b"fn", b"", b"hi"))
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ),
                         res(gw.JOB_ASSIGN_UNIQ, h2, b"fn", b"u2", b"there"))
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ), res(gw.NO_JOB))

    def test_grab_job_all_without_reducer_gets_job_assign_uniq(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit(c, b"fn", b"u1", b"payload1")
        self.assertEqual(w.request(gw.GRAB_JOB_ALL),
                         res(gw.JOB_ASSIGN_UNIQ, h, b"fn", b"u1", b"payload1"))
        self.assertEqual(w.request(gw.GRAB_JOB_ALL), res(gw.NO_JOB))

    def test_submit_reduce_job_four_arguments_then_grab_job_all_gets_job_assign_all(self):
        c, w = self.client(), self.worker(b"mapper")
        pkt = c.request(gw.SUBMIT_REDUCE_JOB, b"mapper", b"ru", b"reducer", b"", b"d\0ata")
        self.assertEqual(pkt.type, gw.JOB_CREATED)
        self.assertEqual(w.request(gw.GRAB_JOB_ALL),
                         res(gw.JOB_ASSIGN_ALL, pkt.payload, b"mapper", b"ru", b"reducer",
                             b"d\0ata"))

    def test_submit_reduce_job_with_aggregator_is_accepted_and_aggregator_not_shown(self):
        c, w = self.client(), self.worker(b"mapper")
        pkt = c.request(gw.SUBMIT_REDUCE_JOB, b"mapper", b"ru", b"red", b"agg", b"data")
        self.assertEqual(pkt.type, gw.JOB_CREATED)
        self.assertEqual(w.request(gw.GRAB_JOB_ALL),
                         res(gw.JOB_ASSIGN_ALL, pkt.payload, b"mapper", b"ru", b"red", b"data"))

    def test_reduce_job_grabbed_with_grab_job_gets_plain_job_assign(self):
        c, w = self.client(), self.worker(b"mapper")
        h = c.request(gw.SUBMIT_REDUCE_JOB, b"mapper", b"ru", b"red", b"", b"data").payload
        self.assertEqual(w.request(gw.GRAB_JOB), res(gw.JOB_ASSIGN, h, b"mapper", b"data"))

    def test_reduce_job_grabbed_with_grab_job_uniq_gets_job_assign_uniq(self):
        c, w = self.client(), self.worker(b"mapper")
        h = c.request(gw.SUBMIT_REDUCE_JOB, b"mapper", b"ru", b"red", b"", b"data").payload
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ),
                         res(gw.JOB_ASSIGN_UNIQ, h, b"mapper", b"ru", b"data"))

    def test_submit_reduce_job_background_is_created_and_runs(self):
        c, w = self.client(), self.worker(b"mapper")
        pkt = c.request(gw.SUBMIT_REDUCE_JOB_BACKGROUND, b"mapper", b"rb", b"red", b"", b"x")
        self.assertEqual(pkt.type, gw.JOB_CREATED)
        self.assertEqual(w.request(gw.GRAB_JOB_ALL),
                         res(gw.JOB_ASSIGN_ALL, pkt.payload, b"mapper", b"rb", b"red", b"x"))

    def test_reduce_job_with_empty_reducer_grab_job_all_gets_job_assign_uniq(self):
        c, w = self.client(), self.worker(b"mapper")
        h = c.request(gw.SUBMIT_REDUCE_JOB, b"mapper", b"ru", b"", b"", b"x").payload
        self.assertEqual(w.request(gw.GRAB_JOB_ALL),
                         res(gw.JOB_ASSIGN_UNIQ, h, b"mapper", b"ru", b"x"))

    def test_every_submit_type_answers_job_created(self):
        c = self.client()
        handles = set()
        for ptype in SUBMIT_3ARG:
            handles.add(self.submit(c, b"f", b"", b"x", ptype))
        pkt = c.request(gw.SUBMIT_JOB_EPOCH, b"f", b"", b"0", b"x")
        self.assertEqual(pkt.type, gw.JOB_CREATED)
        handles.add(pkt.payload)
        for ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            pkt = c.request(ptype, b"f", b"", b"r", b"", b"x")
            self.assertEqual(pkt.type, gw.JOB_CREATED)
            handles.add(pkt.payload)
        self.assertEqual(len(handles), 9)
        self.assertEqual(self.admin("status"), b"f\t9\t0\t0\n.\n")

    def test_empty_function_name_is_allowed(self):
        c, w = self.client(), self.worker(b"")
        h = self.submit(c, b"", b"", b"x")
        self.assertEqual(w.request(gw.GRAB_JOB), res(gw.JOB_ASSIGN, h, b"", b"x"))

    def test_function_names_are_case_sensitive(self):
        c, w = self.client(), self.worker(b"Fn")
        self.submit(c, b"fn", b"", b"x")
        self.assertNoJob(w)

    def test_submit_job_with_unique_over_64_bytes_gets_argument_too_large(self):
        c = self.client()
        for ptype in SUBMIT_3ARG:
            c.send(ptype, b"f", b"u" * 65, b"x")
            self.assertEqual(c.recv_packet(), UNIQUE_TOO_LARGE, gw.NAMES[ptype])
        c.send(gw.SUBMIT_JOB_EPOCH, b"f", b"u" * 65, b"0", b"x")
        self.assertEqual(c.recv_packet(), UNIQUE_TOO_LARGE)
        self.assertEqual(self.admin("status"), b".\n")

    def test_submit_job_with_unique_of_64_bytes_is_accepted(self):
        c = self.client()
        for ptype in SUBMIT_3ARG:
            self.submit(c, b"f", b"%d" % ptype + b"u" * 62, b"x", ptype)

    @roundhouse_only("64-byte uniques stored whole (gearmand keeps 63, never coalesces)")
    def test_unique_of_64_bytes_coalesces(self):
        c = self.client()
        unique = b"u" * 64
        h1 = self.submit(c, b"f", unique, b"x")
        h2 = self.submit(c, b"f", unique, b"y")
        self.assertEqual(h1, h2)
        w = self.worker(b"f")
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ), res(gw.JOB_ASSIGN_UNIQ, h1, b"f", unique, b"x"))

    def test_submit_reduce_job_with_reducer_over_64_bytes_gets_argument_too_large(self):
        c = self.client()
        for ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            c.send(ptype, b"f", b"u", b"r" * 65, b"", b"x")
            self.assertEqual(c.recv_packet(), UNIQUE_TOO_LARGE)
            pkt = c.request(ptype, b"f", b"u%d" % ptype, b"r" * 64, b"", b"x")
            self.assertEqual(pkt.type, gw.JOB_CREATED)

    @roundhouse_only("unique of reduce jobs limited too (gearmand never checks it)")
    def test_submit_reduce_job_with_unique_over_64_bytes_gets_argument_too_large(self):
        c = self.client()
        for ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            c.send(ptype, b"f", b"u" * 65, b"r", b"", b"x")
            self.assertEqual(c.recv_packet(), UNIQUE_TOO_LARGE)
        self.assertEqual(self.admin("status"), b".\n")

    def test_job_handles_are_at_most_63_bytes_and_distinct(self):
        c = self.client()
        handles = [self.submit(c, b"f", b"", b"x") for _ in range(20)]
        self.assertEqual(len(set(handles)), 20)
        for h in handles:
            self.assertLessEqual(len(h), 63)


class HandlePrefix(GearmanTestCase):
    PREFIX = b"P" * 42
    server_args = ("--job-handle-prefix", PREFIX.decode())

    def test_job_handle_prefix_replaces_whole_prefix_and_handle_fits_63_bytes(self):
        c = self.client()
        for _ in range(3):
            h = self.submit(c, b"f", b"", b"x")
            self.assertTrue(h.startswith(self.PREFIX + b":"), h)
            self.assertTrue(h[len(self.PREFIX) + 1:].isdigit(), h)
            self.assertLessEqual(len(h), 63)


class HandleCounter(GearmanTestCase):
    """Our server: handles never reissued; counter >= start-up time in microseconds (3.2)."""

    def setUp(self):
        if self.gearmand:
            self.skipTest("roundhouse-only: gearmand restarts its counter at 1")
        self.server = None

    @staticmethod
    def number(handle):
        return int(handle.rsplit(b":", 1)[1])

    def test_handle_numbers_start_at_or_above_startup_time_in_microseconds(self):
        before = int(time.time() * 1_000_000)
        server = self.start_server()
        with server.connect() as c:
            h = self.submit(c, b"f", b"", b"x")
        self.assertGreaterEqual(self.number(h), before)

    def test_handle_numbers_increase_across_a_restart(self):
        first = self.start_server()
        with first.connect() as c:
            h1 = [self.submit(c, b"f", b"", b"x") for _ in range(5)]
        first.stop()
        second = self.start_server()
        with second.connect() as c:
            h2 = self.submit(c, b"f", b"", b"x")
        self.assertGreater(self.number(h2), max(self.number(h) for h in h1))
        self.assertNotIn(h2, h1)

    def test_handle_prefix_longer_than_42_bytes_is_refused_at_startup(self):
        server = Server("roundhouse", args=("--job-handle-prefix", "P" * 43))
        self.addCleanup(server.stop)
        with self.assertRaises(ServerStartError):
            server.start()


class Status(GearmanTestCase):
    """GET_STATUS / STATUS_RES and GET_STATUS_UNIQUE / STATUS_RES_UNIQUE formats."""

    def test_get_status_of_unknown_handle(self):
        c = self.client()
        self.assertEqual(c.request(gw.GET_STATUS, b"H:nohost:99"),
                         res(gw.STATUS_RES, b"H:nohost:99", 0, 0, 0, 0))

    def test_get_status_of_queued_job(self):
        c = self.client()
        h = self.submit_bg(c, b"f", b"", b"x")
        self.assertEqual(self.get_status(c, h), b"%s\x001\x000\x000\x000" % h)

    def test_get_status_of_running_job_after_work_status(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        self.assertEqual(self.get_status(c, h), h + b"\x001\x001\x000\x000")
        w.work_status(h, b"1", b"4")
        self.assertEqual(c.recv_packet(), res(gw.WORK_STATUS, h, 1, 4))
        other = self.client()
        self.assertEqual(self.get_status(other, h), h + b"\x001\x001\x001\x004")

    def test_work_status_is_forwarded_unchanged_and_non_digits_store_zero(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.work_status(h, b"abc", b"x y")
        self.assertEqual(c.recv_packet(), res(gw.WORK_STATUS, h, b"abc", b"x y"))
        self.assertEqual(self.get_status(c, h), h + b"\x001\x001\x000\x000")

    def test_get_status_on_any_connection_for_background_job(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit_bg(c, b"f", b"", b"x")
        self.grab(w)
        w.work_status(h, 3, 7)
        w.assert_quiet()
        self.assertEqual(self.get_status(self.client(), h), h + b"\x001\x001\x003\x007")

    def test_get_status_after_completion_is_unknown(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.work_complete(h, b"done")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"done"))
        self.assertEqual(self.get_status(c, h), h + b"\x000\x000\x000\x000")

    def test_get_status_with_63_byte_handle_is_unknown(self):
        c = self.client()
        self.assertEqual(self.get_status(c, b"H" * 63), b"H" * 63 + b"\x000\x000\x000\x000")

    @roundhouse_only("GET_STATUS handle >= 64 bytes answered unknown (gearmand drops)")
    def test_get_status_with_64_byte_handle_answers_unknown(self):
        c = self.client()
        self.assertEqual(self.get_status(c, b"H" * 64), b"H" * 64 + b"\x000\x000\x000\x000")
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))

    def test_get_status_unique_of_unknown_unique(self):
        c = self.client()
        self.assertEqual(c.request(gw.GET_STATUS_UNIQUE, b"stu"),
                         res(gw.STATUS_RES_UNIQUE, b"stu", 0, 0, 0, 0, 0))

    def test_get_status_unique_of_running_job_with_one_client(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"stu", b"x")
        self.grab(w)
        w.work_status(h, 3, 7)
        self.assertEqual(c.recv_packet(), res(gw.WORK_STATUS, h, 3, 7))
        self.assertEqual(self.client().request(gw.GET_STATUS_UNIQUE, b"stu"),
                         res(gw.STATUS_RES_UNIQUE, b"stu", 1, 1, 3, 7, 1))

    def test_get_status_unique_counts_attached_clients(self):
        c1, c2, c3 = self.client(), self.client(), self.client()
        self.submit(c1, b"f", b"multi", b"x")
        self.submit(c2, b"f", b"multi", b"x")
        self.assertEqual(c3.request(gw.GET_STATUS_UNIQUE, b"multi"),
                         res(gw.STATUS_RES_UNIQUE, b"multi", 1, 0, 0, 0, 2))

    def test_get_status_unique_of_queued_background_job_has_zero_clients(self):
        c = self.client()
        self.submit_bg(c, b"f", b"bgu", b"x")
        self.assertEqual(c.request(gw.GET_STATUS_UNIQUE, b"bgu"),
                         res(gw.STATUS_RES_UNIQUE, b"bgu", 1, 0, 0, 0, 0))

    @roundhouse_only("GET_STATUS_UNIQUE >= 64 bytes answered unknown (gearmand: nothing)")
    def test_get_status_unique_with_64_byte_unique_answers_unknown(self):
        c = self.client()
        self.assertEqual(c.request(gw.GET_STATUS_UNIQUE, b"u" * 64),
                         res(gw.STATUS_RES_UNIQUE, b"u" * 64, 0, 0, 0, 0, 0))

    @roundhouse_only("GET_STATUS_UNIQUE with several matches takes the oldest job")
    def test_get_status_unique_with_same_unique_under_two_functions_reports_oldest(self):
        c, w = self.client(), self.worker(b"b")
        self.submit_bg(c, b"a", b"same", b"x")
        hb = self.submit_bg(c, b"b", b"same", b"x")
        self.assertEqual(self.grab(w)[0], hb)
        self.assertEqual(c.request(gw.GET_STATUS_UNIQUE, b"same"),
                         res(gw.STATUS_RES_UNIQUE, b"same", 1, 0, 0, 0, 0))


class WorkResults(GearmanTestCase):
    """WORK_* forwarding and their misuse replies (2, 2.1, 3.9)."""

    def setUp(self):
        super().setUp()
        self.c = self.client()
        self.w = self.worker(b"f")
        self.h = self.submit(self.c, b"f", b"u", b"x")
        self.assertEqual(self.grab(self.w), (self.h, b"f", b"x"))

    def test_work_data_warning_status_complete_are_forwarded_in_order(self):
        h = self.h
        self.w.send_raw(gw.encode(gw.WORK_DATA, h, b"d1") + gw.encode(gw.WORK_WARNING, h, b"w1")
                        + gw.encode(gw.WORK_STATUS, h, 1, 2) + gw.encode(gw.WORK_DATA, h, b"")
                        + gw.encode(gw.WORK_COMPLETE, h, b"r\0es"))
        self.assertEqual(self.c.recv_packets(5), [
            res(gw.WORK_DATA, h, b"d1"), res(gw.WORK_WARNING, h, b"w1"),
            res(gw.WORK_STATUS, h, 1, 2), res(gw.WORK_DATA, h, b""),
            res(gw.WORK_COMPLETE, h, b"r\0es")])
        self.assertQuiet(self.w)
        self.assertQuiet(self.c)

    def test_work_complete_with_empty_result(self):
        self.w.work_complete(self.h, b"")
        self.assertEqual(self.c.recv_packet(), res(gw.WORK_COMPLETE, self.h, b""))

    def test_work_fail_is_forwarded_and_ends_job(self):
        self.w.work_fail(self.h)
        self.assertEqual(self.c.recv_packet(), res(gw.WORK_FAIL, self.h))
        self.assertEqual(self.get_status(self.c, self.h), self.h + b"\x000\x000\x000\x000")
        self.assertNoJob(self.w)

    def test_work_exception_without_option_becomes_work_fail_with_trailing_nul(self):
        self.w.work_exception(self.h, b"boom")
        self.assertEqual(self.c.recv_exact(12 + len(self.h) + 1),
                         b"\x00RES\x00\x00\x00\x0e" + bytes([0, 0, 0, len(self.h) + 1])
                         + self.h + b"\x00")
        self.assertEqual(self.get_status(self.c, self.h), self.h + b"\x000\x000\x000\x000")

    def test_work_complete_from_other_connection_gets_job_not_found(self):
        other = self.worker(b"f")
        other.work_complete(self.h, b"x")
        self.assertEqual(other.recv_packet(), NOT_FOUND_RESULT)

    def test_work_results_for_unknown_handle_get_job_not_found_texts(self):
        w = self.worker(b"g")
        bogus = b"H:bogus:1"
        for ptype, expected in ((gw.WORK_STATUS, NOT_FOUND_RESULT),
                                (gw.WORK_COMPLETE, NOT_FOUND_RESULT),
                                (gw.WORK_FAIL, NOT_FOUND_RESULT),
                                (gw.WORK_DATA, NOT_FOUND_DATA),
                                (gw.WORK_WARNING, NOT_FOUND_DATA),
                                (gw.WORK_EXCEPTION, NOT_FOUND_EXCEPTION)):
            args = {gw.WORK_STATUS: (bogus, 1, 2), gw.WORK_FAIL: (bogus,)}.get(ptype, (bogus, b"x"))
            w.send(ptype, *args)
            self.assertEqual(w.recv_packet(), expected, gw.NAMES[ptype])

    def test_work_fail_with_64_byte_handle_gets_snprintf_error(self):
        self.w.work_fail(b"H" * 64)
        self.assertEqual(self.w.recv_packet(), error(
            "ARGUMENT_TOO_LARGE",
            "Error occurred due to GEARMAND_JOB_HANDLE_SIZE being too small from snprintf"))

    def test_client_cancel_via_work_fail_gets_job_not_found(self):
        # gearman_client_cancel_job() sends WORK_FAIL from the client connection (2.3).
        self.c.work_fail(self.h)
        self.assertEqual(self.c.recv_packet(), NOT_FOUND_RESULT)

    def test_work_results_after_completion_get_job_not_found(self):
        self.w.work_complete(self.h, b"done")
        self.assertEqual(self.c.recv_packet(), res(gw.WORK_COMPLETE, self.h, b"done"))
        self.w.work_complete(self.h, b"again")
        self.assertEqual(self.w.recv_packet(), NOT_FOUND_RESULT)
        self.w.work_data(self.h, b"late")
        self.assertEqual(self.w.recv_packet(), NOT_FOUND_DATA)

    def test_work_exception_after_completion_gets_job_not_found(self):
        self.w.work_complete(self.h, b"done")
        self.assertEqual(self.c.recv_packet(), res(gw.WORK_COMPLETE, self.h, b"done"))
        self.w.work_exception(self.h, b"late")
        self.assertEqual(self.w.recv_packet(), NOT_FOUND_EXCEPTION)
        self.assertEqual(self.w.echo(), res(gw.ECHO_RES, b"sync"))

    def test_worker_may_hold_several_jobs(self):
        h2 = self.submit(self.c, b"f", b"u2", b"y")
        self.assertEqual(self.grab(self.w), (h2, b"f", b"y"))
        self.w.work_complete(h2, b"two")
        self.w.work_complete(self.h, b"one")
        self.assertEqual(self.c.recv_packets(2), [res(gw.WORK_COMPLETE, h2, b"two"),
                                                  res(gw.WORK_COMPLETE, self.h, b"one")])


class Options(GearmanTestCase):
    """OPTION_REQ and the exceptions option (2, 3.9)."""

    def test_option_exceptions_echoes_bytes_as_sent_in_any_case(self):
        c = self.client()
        for option in (b"exceptions", b"EXCEPTIONS", b"ExCePtIoNs"):
            self.assertEqual(c.request(gw.OPTION_REQ, option), res(gw.OPTION_RES, option))

    def test_unknown_option_gets_unknown_option(self):
        c = self.client()
        for option in (b"bogus", b"", b"exceptions2", b"exception"):
            self.assertEqual(c.request(gw.OPTION_REQ, option),
                             error("UNKNOWN_OPTION", "Server does not recognize given option"),
                             option)

    def test_option_name_of_64_bytes_is_unknown(self):
        c = self.client()
        self.assertEqual(c.request(gw.OPTION_REQ, b"exceptions" + b"x" * 54),
                         error("UNKNOWN_OPTION", "Server does not recognize given option"))

    def test_work_exception_is_forwarded_to_client_with_exceptions_option(self):
        c, w = self.client(), self.worker(b"f")
        self.assertEqual(c.request(gw.OPTION_REQ, b"exceptions").type, gw.OPTION_RES)
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.work_exception(h, b"boom\0detail")
        self.assertEqual(c.recv_packet(), res(gw.WORK_EXCEPTION, h, b"boom\0detail"))
        self.assertEqual(self.get_status(c, h), h + b"\x000\x000\x000\x000")

    def test_work_exception_goes_per_client_option(self):
        plain, rich, w = self.client(), self.client(), self.worker(b"f")
        rich.option_req(b"exceptions")
        self.assertEqual(rich.recv_packet().type, gw.OPTION_RES)
        h = self.submit(plain, b"f", b"shared", b"x")
        self.assertEqual(self.submit(rich, b"f", b"shared", b"x"), h)
        self.grab(w)
        w.work_exception(h, b"why")
        self.assertEqual(plain.recv_packet(), res(gw.WORK_FAIL, h + b"\0"))
        self.assertEqual(rich.recv_packet(), res(gw.WORK_EXCEPTION, h, b"why"))


class ExceptionsFlag(GearmanTestCase):
    server_args = ("--exceptions",)

    def test_exceptions_flag_forwards_work_exception_without_option_req(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.work_exception(h, b"boom")
        self.assertEqual(c.recv_packet(), res(gw.WORK_EXCEPTION, h, b"boom"))


class Coalescing(GearmanTestCase):
    """Section 3.3."""

    def test_same_function_and_unique_returns_same_handle_and_one_job(self):
        c1, c2, w = self.client(), self.client(), self.worker(b"f")
        h1 = self.submit(c1, b"f", b"key", b"first")
        h2 = self.submit(c2, b"f", b"key", b"second")
        self.assertEqual(h1, h2)
        self.assertEqual(self.grab(w), (h1, b"f", b"first"))
        self.assertNoJob(w)
        w.work_complete(h1, b"r")
        self.assertEqual(c1.recv_packet(), res(gw.WORK_COMPLETE, h1, b"r"))
        self.assertEqual(c2.recv_packet(), res(gw.WORK_COMPLETE, h1, b"r"))

    def test_same_unique_under_two_functions_gives_two_jobs(self):
        c = self.client()
        self.assertNotEqual(self.submit(c, b"f", b"key", b"x"), self.submit(c, b"g", b"key", b"x"))

    def test_empty_unique_never_coalesces(self):
        c = self.client()
        self.assertNotEqual(self.submit(c, b"f", b"", b"x"), self.submit(c, b"f", b"", b"x"))
        self.assertEqual(self.admin("status"), b"f\t2\t0\t0\n.\n")

    def test_dash_unique_coalesces_on_identical_data(self):
        c = self.client()
        h1 = self.submit(c, b"f", b"-", b"same")
        self.assertEqual(self.submit(c, b"f", b"-", b"same"), h1)
        self.assertNotEqual(self.submit(c, b"f", b"-", b"other"), h1)
        w = self.worker(b"f")
        self.assertEqual(w.request(gw.GRAB_JOB_UNIQ), res(gw.JOB_ASSIGN_UNIQ, h1, b"f", b"-", b"same"))

    def test_dash_unique_with_empty_data_never_coalesces(self):
        c = self.client()
        self.assertNotEqual(self.submit(c, b"f", b"-", b""), self.submit(c, b"f", b"-", b""))

    def test_running_job_coalesces_and_late_client_gets_only_later_results(self):
        c1, c2, w = self.client(), self.client(), self.worker(b"f")
        h = self.submit(c1, b"f", b"run", b"x")
        self.grab(w)
        w.work_data(h, b"early")
        self.assertEqual(c1.recv_packet(), res(gw.WORK_DATA, h, b"early"))
        self.assertEqual(self.submit(c2, b"f", b"run", b"ignored"), h)
        w.work_data(h, b"late")
        w.work_complete(h, b"done")
        for c in (c1, c2):
            self.assertEqual(c.recv_packets(2), [res(gw.WORK_DATA, h, b"late"),
                                                 res(gw.WORK_COMPLETE, h, b"done")])
        self.assertQuiet(c2)

    def test_coalesced_submit_ignores_its_priority_and_data(self):
        c, w = self.client(), self.worker(b"f")
        h_low = self.submit(c, b"f", b"k", b"orig", gw.SUBMIT_JOB_LOW_BG)
        h_norm = self.submit(c, b"f", b"", b"normal", gw.SUBMIT_JOB_BG)
        self.assertEqual(self.submit(c, b"f", b"k", b"new", gw.SUBMIT_JOB_HIGH_BG), h_low)
        self.assertEqual(self.grab(w), (h_norm, b"f", b"normal"))
        self.assertEqual(self.grab(w), (h_low, b"f", b"orig"))

    def test_unique_is_free_again_after_the_job_ends(self):
        c, w = self.client(), self.worker(b"f")
        h1 = self.submit(c, b"f", b"again", b"x")
        self.grab(w)
        w.work_complete(h1, b"r")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h1, b"r"))
        h2 = self.submit(c, b"f", b"again", b"x")
        self.assertNotEqual(h1, h2)

    def test_foreground_submit_coalesces_onto_background_job(self):
        bg, fg, w = self.client(), self.client(), self.worker(b"f")
        h = self.submit_bg(bg, b"f", b"mix", b"x")
        self.assertEqual(self.submit(fg, b"f", b"mix", b"y"), h)
        self.grab(w)
        w.work_complete(h, b"r")
        self.assertEqual(fg.recv_packet(), res(gw.WORK_COMPLETE, h, b"r"))
        self.assertQuiet(bg)

    @roundhouse_only("a background job survives a coalesced foreground client leaving")
    def test_background_job_survives_coalesced_foreground_client_leaving(self):
        bg, w = self.client(), self.worker(b"f")
        h = self.submit_bg(bg, b"f", b"keep", b"x")
        fg_id = self.fresh_id(b"fg".decode())
        fg = self.client(client_id=fg_id)
        self.assertEqual(self.submit(fg, b"f", b"keep", b"y"), h)
        self.close_and_wait(fg, fg_id, until=lambda: self.unique_clients(b"keep") == 0)
        self.assertEqual(self.grab(w), (h, b"f", b"x"))

    def test_coalesced_submit_is_accepted_when_queue_is_full(self):
        c = self.client()
        self.assertEqual(self.admin("create function f\r\n"), b"OK\r\n")
        self.assertEqual(self.admin("maxqueue f 1"), b"OK\r\n")
        h = self.submit(c, b"f", b"full", b"x")
        self.assertEqual(c.request(gw.SUBMIT_JOB, b"f", b"other", b"x"), QUEUE_FULL)
        self.assertEqual(self.submit(c, b"f", b"full", b"x"), h)


class Priorities(GearmanTestCase):
    """Section 3.4 with the default (global) order of our server."""

    def test_within_a_function_high_then_normal_then_low_fifo_each(self):
        c, w = self.client(), self.worker(b"f")
        order = [(gw.SUBMIT_JOB_LOW_BG, b"low1"), (gw.SUBMIT_JOB_BG, b"norm1"),
                 (gw.SUBMIT_JOB_HIGH_BG, b"high1"), (gw.SUBMIT_JOB_LOW_BG, b"low2"),
                 (gw.SUBMIT_JOB_BG, b"norm2"), (gw.SUBMIT_JOB_HIGH_BG, b"high2")]
        for ptype, data in order:
            self.submit(c, b"f", b"", data, ptype)
        got = [self.grab(w)[2] for _ in order]
        self.assertEqual(got, [b"high1", b"high2", b"norm1", b"norm2", b"low1", b"low2"])

    def test_foreground_priorities_order_like_background(self):
        c, w = self.client(), self.worker(b"f")
        self.submit(c, b"f", b"", b"low", gw.SUBMIT_JOB_LOW)
        self.submit(c, b"f", b"", b"normal", gw.SUBMIT_JOB)
        self.submit(c, b"f", b"", b"high", gw.SUBMIT_JOB_HIGH)
        self.assertEqual([self.grab(w)[2] for _ in range(3)], [b"high", b"normal", b"low"])

    @roundhouse_only("global priority order is our default (gearmand 1.1: per function)")
    def test_high_job_of_any_registered_function_beats_normal_jobs_by_default(self):
        c, w = self.client(), self.worker(b"a", b"b", b"c")
        self.submit_bg(c, b"a", b"", b"a-normal")
        self.submit(c, b"b", b"", b"b-high", gw.SUBMIT_JOB_HIGH_BG)
        self.submit_bg(c, b"c", b"", b"c-normal")
        self.submit(c, b"a", b"", b"a-low", gw.SUBMIT_JOB_LOW_BG)
        # b is used first and rotates to the end: the walk is then a, c, b.
        self.assertEqual([self.grab(w)[2] for _ in range(4)],
                         [b"b-high", b"a-normal", b"c-normal", b"a-low"])

    @roundhouse_only("round robin is always on in the global order")
    def test_registrations_rotate_after_each_grab_in_global_order(self):
        c, w = self.client(), self.worker(b"a", b"b")
        for data in (b"a1", b"a2"):
            self.submit_bg(c, b"a", b"", data)
        for data in (b"b1", b"b2"):
            self.submit_bg(c, b"b", b"", data)
        self.assertEqual([self.grab(w)[2] for _ in range(4)], [b"a1", b"b1", b"a2", b"b2"])

    @roundhouse_only("-R accepted as a no-op in the global order")
    def test_round_robin_flag_is_accepted(self):
        server = self.start_server("-R")
        with server.connect() as c:
            self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))


class PerFunctionPriorities(GearmanTestCase):
    """--priority-order=per-function: the gearmand 1.1 order (gearmand's only order).

    Observed on gearmand 1.1.20: its registration list is walked newest CAN_DO first (a worker
    that registers a then b is offered b's jobs first). doc/protocol.md §3.4 says "registrations in list
    order"; we expect CAN_DO order from roundhouse and record gearmand's order beside it.
    """

    server_args = ("--priority-order=per-function",)

    def setUp(self):
        if self.gearmand:
            self.server_args = ()
        super().setUp()

    def walk(self, *funcs):
        """The order the server walks a worker's registrations made in `funcs` order."""
        return list(reversed(funcs)) if self.gearmand else list(funcs)

    def test_first_function_in_walk_order_with_jobs_wins_regardless_of_priority(self):
        c, w = self.client(), self.worker(b"a", b"b")
        first, second = self.walk(b"a", b"b")
        self.submit_bg(c, first, b"", first + b"-normal")
        self.submit(c, second, b"", second + b"-high", gw.SUBMIT_JOB_HIGH_BG)
        self.submit(c, first, b"", first + b"-low", gw.SUBMIT_JOB_LOW_BG)
        self.assertEqual([self.grab(w)[2] for _ in range(3)],
                         [first + b"-normal", first + b"-low", second + b"-high"])

    def test_registrations_are_walked_in_can_do_order(self):
        c, w = self.client(), self.worker(b"b", b"a", b"c")
        for f in (b"a", b"b", b"c"):
            self.submit_bg(c, f, b"", f)
        self.assertEqual([self.grab(w)[2] for _ in range(3)], self.walk(b"b", b"a", b"c"))

    def test_without_round_robin_first_function_is_drained_first(self):
        c, w = self.client(), self.worker(b"a", b"b")
        first, second = self.walk(b"a", b"b")
        for f in (b"a", b"b"):
            for n in (b"1", b"2"):
                self.submit_bg(c, f, b"", f + n)
        self.assertEqual([self.grab(w)[2] for _ in range(4)],
                         [first + b"1", first + b"2", second + b"1", second + b"2"])

    def test_round_robin_flag_rotates_registrations(self):
        server = self.start_server(*(self.server_args + ("-R",)))
        with server.connect() as c, server.connect() as w:
            w.can_do(b"a")
            w.can_do(b"b")
            first, second = self.walk(b"a", b"b")
            for f in (b"a", b"b"):
                for n in (b"1", b"2"):
                    self.submit_bg(c, f, b"", f + n)
            self.assertEqual([self.grab(w)[2] for _ in range(4)],
                             [first + b"1", second + b"1", first + b"2", second + b"2"])


class Wakeups(GearmanTestCase):
    """NOOP rules, section 3.6."""

    def sleeping_worker(self, *funcs):
        w = self.worker(*funcs)
        w.pre_sleep()
        self.assertQuiet(w)
        return w

    def test_sleeping_worker_gets_one_noop_until_it_grabs(self):
        c, w = self.client(), self.sleeping_worker(b"f")
        self.submit(c, b"f", b"", b"1")
        self.assertGotNoop(w)
        self.submit(c, b"f", b"", b"2")
        self.assertQuiet(w)
        self.grab(w)
        w.pre_sleep()
        self.assertGotNoop(w)  # work is queued: immediate NOOP

    def test_pre_sleep_with_queued_job_gets_immediate_noop(self):
        c = self.client()
        self.submit_bg(c, b"f", b"", b"x")
        w = self.worker(b"f")
        w.pre_sleep()
        self.assertGotNoop(w)

    def test_three_sleeping_workers_and_two_jobs_each_get_exactly_one_noop(self):
        c = self.client()
        workers = [self.sleeping_worker(b"f") for _ in range(3)]
        self.submit_bg(c, b"f", b"", b"1")
        self.submit_bg(c, b"f", b"", b"2")
        for w in workers:
            self.assertGotNoop(w)

    def test_worker_that_never_pre_sleeps_gets_no_noop(self):
        c, w = self.client(), self.worker(b"f")
        self.submit_bg(c, b"f", b"", b"x")
        self.assertQuiet(w)

    def test_pre_sleep_without_registrations_sends_nothing(self):
        c = self.client()
        self.submit_bg(c, b"f", b"", b"x")
        w = self.connect()
        w.pre_sleep()
        self.assertQuiet(w)

    def test_sleeping_worker_of_other_function_is_not_woken(self):
        c, w = self.client(), self.sleeping_worker(b"g")
        self.submit_bg(c, b"f", b"", b"x")
        self.assertQuiet(w)

    def test_noop_is_sent_to_worker_registered_later_in_its_list(self):
        c, w = self.client(), self.sleeping_worker(b"a", b"b", b"c")
        self.submit_bg(c, b"c", b"", b"x")
        self.assertGotNoop(w)

    def test_grab_clears_noop_sent_so_next_job_wakes_again(self):
        c, w = self.client(), self.sleeping_worker(b"f")
        self.submit_bg(c, b"f", b"", b"1")
        self.assertGotNoop(w)
        self.grab(w)
        self.assertNoJob(w)
        w.pre_sleep()
        self.assertQuiet(w)
        self.submit_bg(c, b"f", b"", b"2")
        self.assertGotNoop(w)


class WakeupLimit(GearmanTestCase):
    server_args = ("-w", "1")

    def test_worker_wakeup_one_wakes_one_sleeper_per_job_in_rotation(self):
        c = self.client()
        workers = [self.worker(b"f") for _ in range(3)]
        for w in workers:
            w.pre_sleep()
            self.assertQuiet(w)
        woken = []
        for i in range(3):
            self.submit_bg(c, b"f", b"", b"job%d" % i)
            got = [n for n, w in enumerate(workers) if w.sync() == [res(gw.NOOP)]]
            self.assertEqual(len(got), 1, "job %d woke %r" % (i, got))
            woken += got
        self.assertEqual(sorted(woken), [0, 1, 2])


class Requeue(GearmanTestCase):
    """Section 3.7: re-queue on disconnect, CANT_DO, RESET_ABILITIES; at the tail."""

    def test_job_of_disconnected_worker_is_requeued_and_client_gets_later_result(self):
        c = self.client()
        wid = self.fresh_id("w1")
        w1 = self.worker(b"f", client_id=wid)
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w1)
        w1.work_status(h, 1, 2)
        self.assertEqual(c.recv_packet(), res(gw.WORK_STATUS, h, 1, 2))
        self.close_and_wait(w1, wid, until=lambda: self.job_state(h) == (1, 0))
        self.assertEqual(self.get_status(self.client(), h), h + b"\x001\x000\x000\x000")
        w2 = self.worker(b"f")
        self.assertEqual(self.grab(w2), (h, b"f", b"x"))
        w2.work_complete(h, b"done")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"done"))

    def test_requeued_job_goes_to_the_tail_of_its_queue(self):
        c = self.client()
        wid = self.fresh_id("w1")
        w1 = self.worker(b"f", client_id=wid)
        h1 = self.submit_bg(c, b"f", b"", b"first")
        h2 = self.submit_bg(c, b"f", b"", b"second")
        self.assertEqual(self.grab(w1)[0], h1)
        self.close_and_wait(w1, wid, until=lambda: self.job_state(h1) == (1, 0))
        w2 = self.worker(b"f")
        self.assertEqual([self.grab(w2)[0], self.grab(w2)[0]], [h2, h1])

    def test_cant_do_requeues_held_jobs_of_that_function(self):
        c, w = self.client(), self.worker(b"f", b"g")
        hf = self.submit_bg(c, b"f", b"", b"x")
        hg = self.submit_bg(c, b"g", b"", b"y")
        self.grab(w)
        self.grab(w)
        w.cant_do(b"f")
        w.assert_quiet()
        self.assertEqual(self.get_status(c, hf), hf + b"\x001\x000\x000\x000")
        self.assertEqual(self.get_status(c, hg), hg + b"\x001\x001\x000\x000")
        w.work_complete(hf, b"late")
        self.assertEqual(w.recv_packet(), NOT_FOUND_RESULT)
        w2 = self.worker(b"f")
        self.assertEqual(self.grab(w2)[0], hf)

    def test_cant_do_of_unknown_function_is_ignored(self):
        w = self.worker(b"f")
        w.cant_do(b"never-registered")
        self.assertQuiet(w)

    def test_reset_abilities_requeues_every_held_job(self):
        c, w = self.client(), self.worker(b"f", b"g")
        hf = self.submit_bg(c, b"f", b"", b"x")
        hg = self.submit_bg(c, b"g", b"", b"y")
        self.grab(w)
        self.grab(w)
        w.reset_abilities()
        self.assertQuiet(w)
        for h in (hf, hg):
            self.assertEqual(self.get_status(c, h), h + b"\x001\x000\x000\x000")
        self.assertNoJob(w)
        self.assertEqual(self.admin("status"), b"f\t1\t0\t0\ng\t1\t0\t0\n.\n")

    def test_requeue_resets_status_numbers(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit_bg(c, b"f", b"", b"x")
        self.grab(w)
        w.work_status(h, 5, 9)
        w.cant_do(b"f")
        w.assert_quiet()
        self.assertEqual(self.get_status(c, h), h + b"\x001\x000\x000\x000")

    def test_requeue_wakes_a_sleeping_worker(self):
        c, w1 = self.client(), self.worker(b"f")
        sleeper = self.worker(b"f")
        self.submit_bg(c, b"f", b"", b"x")
        self.grab(w1)
        sleeper.pre_sleep()
        self.assertQuiet(sleeper)
        w1.cant_do(b"f")
        w1.assert_quiet()
        self.assertGotNoop(sleeper)


class RetriesUnlimited(GearmanTestCase):
    def test_default_retries_are_unlimited(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        for _ in range(12):
            self.assertEqual(self.grab(w)[0], h)
            w.reset_abilities()
            w.can_do(b"f")
        self.assertEqual(self.grab(w)[0], h)
        self.assertQuiet(c)


class RetriesMinusOne(GearmanTestCase):
    server_args = ("-j", "-1")

    def test_job_retries_minus_one_is_unlimited(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        for _ in range(5):
            self.assertEqual(self.grab(w)[0], h)
            w.cant_do(b"f")
            w.can_do(b"f")
        self.assertEqual(self.grab(w)[0], h)


class RetriesZero(GearmanTestCase):
    server_args = ("-j", "0")

    @roundhouse_only("-j 0 means no retries (HEAD semantics; gearmand 1.1: unlimited)")
    def test_job_retries_zero_drops_at_first_requeue_and_fails_clients(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.cant_do(b"f")
        w.can_do(b"f")
        self.assertEqual(c.recv_packet(), res(gw.WORK_FAIL, h))
        self.assertNoJob(w)
        self.assertEqual(self.get_status(c, h), h + b"\x000\x000\x000\x000")


class RetriesTwo(GearmanTestCase):
    server_args = ("-j", "2")

    def test_job_retries_two_allows_two_starts_then_work_fail_without_nul(self):
        c, w = self.client(), self.worker(b"f")
        h = self.submit(c, b"f", b"", b"x")
        self.assertEqual(self.grab(w)[0], h)
        w.cant_do(b"f")
        w.can_do(b"f")
        self.assertEqual(self.grab(w)[0], h)
        w.cant_do(b"f")
        w.can_do(b"f")
        self.assertEqual(c.recv_exact(12 + len(h)),
                         b"\x00RES\x00\x00\x00\x0e" + bytes([0, 0, 0, len(h)]) + h)
        self.assertNoJob(w)
        self.assertEqual(self.admin("show jobs"), b".\n")


class CanDoTimeout(GearmanTestCase):
    """Section 3.8 (timeouts in milliseconds; 1000 ms is the floor)."""

    def grab_after_wakeup(self, w):
        """GRAB after a timeout NOOP. roundhouse: the job must be there. gearmand re-queues on
        an I/O thread and, under load, can send the NOOP before the job is grabbable (and then
        wake nobody), so in reference mode the GRAB is polled."""
        deadline = time.monotonic() + 4
        while True:
            pkt = w.request(gw.GRAB_JOB)
            if pkt.type != gw.NO_JOB or not self.gearmand or time.monotonic() > deadline:
                self.assertEqual(pkt.type, gw.JOB_ASSIGN, pkt)
                return tuple(pkt.args(3))
            time.sleep(0.02)

    def test_timed_out_job_is_requeued_and_the_first_result_wins(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=1000)
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w1)
        w2 = self.worker(b"f")
        w2.pre_sleep()
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.assertEqual(self.grab_after_wakeup(w2), (h, b"f", b"x"))
        w1.work_complete(h, b"late")
        if self.gearmand:
            # gearmand: the timed-out worker lost the job; only the new worker's result counts.
            self.assertEqual(w1.recv_packet(), NOT_FOUND_RESULT)
            w2.work_complete(h, b"good")
            self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"good"))
            return
        # roundhouse (doc/protocol.md, late results): the timed-out worker's result came first,
        # so it ends the job; the new worker's later packets are not found.
        self.assertQuiet(w1)
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"late"))
        w2.work_data(h, b"more")
        self.assertEqual(w2.recv_packet(), NOT_FOUND_DATA)
        w2.work_complete(h, b"good")
        self.assertEqual(w2.recv_packet(), NOT_FOUND_RESULT)
        self.assertQuiet(c)
        self.assertEqual(self.admin("status"), b"f\t0\t0\t2\n.\n")

    def test_timeout_below_1000_ms_is_raised_to_1000_ms(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=1)
        h = self.submit_bg(c, b"f", b"", b"x")
        self.grab(w1)
        time.sleep(0.5)
        self.assertEqual(self.get_status(c, h), h + b"\x001\x001\x000\x000")
        w2 = self.worker(b"f")
        w2.pre_sleep()
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.assertEqual(self.grab_after_wakeup(w2)[0], h)

    def test_non_numeric_timeout_means_no_timeout(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=b"abc")
        h = self.submit_bg(c, b"f", b"", b"x")
        self.grab(w1)
        time.sleep(1.5)
        self.assertEqual(self.get_status(c, h), h + b"\x001\x001\x000\x000")

    def test_completion_before_timeout_is_forwarded(self):
        c = self.client()
        w = self.worker(b"f", timeout_ms=1000)
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        w.work_complete(h, b"fast")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"fast"))

    @roundhouse_only("one timer per assigned job (gearmand: one per connection)")
    def test_each_held_job_times_out_on_its_own(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=1000)
        h1 = self.submit_bg(c, b"f", b"", b"1")
        h2 = self.submit_bg(c, b"f", b"", b"2")
        self.grab(w1)
        self.grab(w1)
        w2 = self.worker(b"f")
        w2.pre_sleep()
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.wait_until(lambda: self.admin("status") == b"f\t2\t0\t2\n.\n", 4,
                        "both jobs re-queued")
        self.assertEqual(sorted([self.grab(w2)[0], self.grab(w2)[0]]), sorted([h1, h2]))

    @roundhouse_only("PRE_SLEEP does not cancel the job timer (gearmand deletes it)")
    def test_pre_sleep_does_not_cancel_job_timeout(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=1000)
        h = self.submit_bg(c, b"f", b"", b"x")
        self.grab(w1)
        w1.pre_sleep()
        w2 = self.worker(b"f")
        w2.pre_sleep()
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.assertEqual(self.grab_after_wakeup(w2)[0], h)

    @roundhouse_only("timer armed per job with the registration's timeout")
    def test_timeout_applies_only_to_jobs_of_the_timed_registration(self):
        c = self.client()
        w1 = self.worker(b"g")
        w1.can_do_timeout(b"f", 1000)
        hf = self.submit_bg(c, b"f", b"", b"x")
        hg = self.submit_bg(c, b"g", b"", b"y")
        held = {self.grab(w1)[0], self.grab(w1)[0]}
        self.assertEqual(held, {hf, hg})
        w2 = self.worker(b"f")
        w2.pre_sleep()
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.assertEqual(self.grab(w2)[0], hf)
        self.assertEqual(self.get_status(c, hg), hg + b"\x001\x001\x000\x000")


class LateResultAfterTimeout(GearmanTestCase):
    """A job that always outlives its CAN_DO_TIMEOUT still finishes (doc/protocol.md, "Late
    results after a timeout"). Each worker here behaves like a busy libgearman worker: it
    grabs, works past its 1 s timeout without reading, then sends its result."""

    WORK_SECONDS = 1.4  # > the 1000 ms timeout, so every assignment expires first

    def run_job(self, worker, handle, result):
        time.sleep(self.WORK_SECONDS)
        worker.work_complete(handle, result)

    @roundhouse_only("late result after a timeout ends the job (gearmand: JOB_NOT_FOUND)")
    def test_one_worker_whose_jobs_outlive_their_timeout_completes_them(self):
        c = self.client()
        w = self.worker(b"f", timeout_ms=1000)
        for n in range(2):
            data = b"job-%d" % n
            h = self.submit(c, b"f", b"", data)
            self.assertEqual(self.grab(w), (h, b"f", data))
            w.pre_sleep()  # libgearman pipelines this; the re-queue NOOPs it
            self.run_job(w, h, b"done-%d" % n)
            self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"done-%d" % n))
            self.assertEqual(w.sync(), [res(gw.NOOP)])  # and no ERROR for the result
            self.assertNoJob(w)  # not run again
            self.assertEqual(self.admin("status"), b"f\t0\t0\t1\n.\n")
        self.assertEqual(self.admin("show jobs"), b".\n")

    @roundhouse_only("late result after a timeout ends the job (gearmand: JOB_NOT_FOUND)")
    def test_two_workers_whose_job_outlives_the_timeout_complete_it_once(self):
        c = self.client()
        w1 = self.worker(b"f", timeout_ms=1000)
        w2 = self.worker(b"f", timeout_ms=1000)
        w2.pre_sleep()
        c.send(gw.SUBMIT_JOB, b"f", b"", b"x")
        h = c.recv_packet().payload
        self.assertEqual(w2.recv_packet(), res(gw.NOOP))
        self.assertEqual(self.grab(w1)[0], h)
        self.assertNoJob(w2)
        w2.pre_sleep()
        # w1's timeout re-queues the job and wakes w2, which takes it over.
        self.assertEqual(w2.recv_packet(timeout=4), res(gw.NOOP))
        self.assertEqual(self.grab(w2)[0], h)
        w1.work_complete(h, b"from-w1")  # w1 finishes first: its result wins
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"from-w1"))
        self.assertQuiet(w1)
        time.sleep(self.WORK_SECONDS)  # w2 outlives its own timeout too, then reports
        w2.work_complete(h, b"from-w2")
        self.assertEqual(w2.recv_packet(), NOT_FOUND_RESULT)
        self.assertQuiet(c)
        self.assertEqual(self.admin("status"), b"f\t0\t0\t2\n.\n")


class LateResultAfterTimeoutOneRetry(GearmanTestCase):
    server_args = ("-j", "1")

    @roundhouse_only("-j 1 drops at the first re-queue (HEAD semantics)")
    def test_j1_drops_the_job_at_its_timeout_and_the_late_result_is_not_found(self):
        c = self.client()
        w = self.worker(b"f", timeout_ms=1000)
        h = self.submit(c, b"f", b"", b"x")
        self.grab(w)
        self.assertEqual(c.recv_packet(timeout=4), res(gw.WORK_FAIL, h))
        w.work_complete(h, b"late")
        self.assertEqual(w.recv_packet(), NOT_FOUND_RESULT)
        self.assertQuiet(c)
        self.assertEqual(self.admin("show jobs"), b".\n")


class EpochJobs(GearmanTestCase):
    """Section 3.5."""

    def epoch_submit(self, conn, func, unique, when, data=b"x"):
        pkt = conn.request(gw.SUBMIT_JOB_EPOCH, func, unique, when, data)
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
        return pkt.payload

    def test_epoch_in_the_past_is_runnable_now(self):
        c, w = self.client(), self.worker(b"f")
        h = self.epoch_submit(c, b"f", b"", b"1")
        self.assertEqual(self.grab(w), (h, b"f", b"x"))

    def test_non_numeric_epoch_means_now(self):
        c, w = self.client(), self.worker(b"f")
        h = self.epoch_submit(c, b"f", b"", b"soon")
        self.assertEqual(self.grab(w), (h, b"f", b"x"))

    def test_epoch_job_is_background_and_normal_priority(self):
        c, w = self.client(), self.worker(b"f")
        h_low = self.submit(c, b"f", b"", b"low", gw.SUBMIT_JOB_LOW_BG)
        h_ep = self.epoch_submit(c, b"f", b"", b"0", b"epoch")
        h_high = self.submit(c, b"f", b"", b"high", gw.SUBMIT_JOB_HIGH_BG)
        self.assertEqual([self.grab(w)[0] for _ in range(3)], [h_high, h_ep, h_low])
        self.assertQuiet(c)

    @roundhouse_only("a not-yet-due epoch job never blocks others (gearmand blocks)")
    def test_future_epoch_job_does_not_block_later_jobs_of_its_function(self):
        c, w = self.client(), self.worker(b"f")
        self.epoch_submit(c, b"f", b"later", int(time.time()) + 30)
        h_now = self.submit_bg(c, b"f", b"", b"now")
        h_low = self.submit(c, b"f", b"", b"low", gw.SUBMIT_JOB_LOW_BG)
        self.assertEqual(self.grab(w)[0], h_now)
        self.assertEqual(self.grab(w)[0], h_low)
        self.assertNoJob(w)
        w.pre_sleep()
        self.assertQuiet(w)

    @roundhouse_only("a due timer wakes sleeping workers (gearmand has none)")
    def test_timer_releases_epoch_job_when_due_and_wakes_sleeping_worker(self):
        c, w = self.client(), self.worker(b"f")
        h = self.epoch_submit(c, b"f", b"ep", int(time.time()) + 2)
        self.assertNoJob(w)
        w.pre_sleep()
        self.assertQuiet(w)  # submitting a not-yet-due job wakes no one
        self.assertEqual(w.recv_packet(timeout=5), res(gw.NOOP))
        self.assertEqual(self.grab(w), (h, b"f", b"x"))

    @roundhouse_only("submitting a not-yet-due job wakes no one")
    def test_submitting_future_epoch_job_does_not_wake_sleepers(self):
        w = self.worker(b"f")
        w.pre_sleep()
        self.assertQuiet(w)
        self.epoch_submit(self.client(), b"f", b"", int(time.time()) + 30)
        self.assertQuiet(w)

    def test_epoch_outside_signed_64_bit_range_closes_connection(self):
        # gearmand closes only with -t 0 (threaded: packet silently dropped); we always close.
        server = self.start_server("-t", "0")
        for when in (b"99999999999999999999", b"-99999999999999999999"):
            with server.connect() as c:
                c.send(gw.SUBMIT_JOB_EPOCH, b"f", b"", when, b"x")
                self.assertTrue(c.wait_closed(), when)
                self.assertEqual(bytes(c.buf), b"")


class CanDoTimeoutLimits(GearmanTestCase):
    server_args = ("-t", "0")  # gearmand closes only without I/O threads (see README)

    def test_can_do_timeout_value_over_20_characters_closes_connection(self):
        c = self.client()
        c.send(gw.CAN_DO_TIMEOUT, b"f", b"1" * 21)
        self.assertTrue(c.wait_closed())
        self.assertEqual(bytes(c.buf), b"")

    def test_can_do_timeout_value_of_20_characters_is_accepted(self):
        c = self.client()
        c.send(gw.CAN_DO_TIMEOUT, b"f", b"0" * 19 + b"5")
        self.assertEqual(c.echo(), res(gw.ECHO_RES, b"sync"))


class ForegroundDisconnect(GearmanTestCase):
    """Section 3.10."""

    def test_queued_job_of_departed_client_is_never_handed_out(self):
        cid = self.fresh_id("fg")
        c = self.client(client_id=cid)
        self.submit(c, b"f", b"left", b"x")
        self.close_and_wait(c, cid, until=lambda: self.unique_clients(b"left") == 0)
        self.assertNoJob(self.worker(b"f"))

    @roundhouse_only("abandoned queued job removed at once (gearmand keeps it listed)")
    def test_queued_job_of_departed_client_is_removed_at_once(self):
        cid = self.fresh_id("fg")
        c = self.client(client_id=cid)
        h = self.submit(c, b"f", b"gone", b"x")
        self.close_and_wait(c, cid, until=lambda: self.unique_clients(b"gone") == 0)
        self.assertEqual(self.admin("status"), b".\n")  # its function is empty: freed too
        self.assertEqual(self.admin("show jobs"), b".\n")
        self.assertEqual(self.get_status(self.client(), h), h + b"\x000\x000\x000\x000")
        self.assertNotEqual(self.submit(self.client(), b"f", b"gone", b"x"), h)

    def test_background_job_is_unaffected_by_submitter_leaving(self):
        cid = self.fresh_id("bg")
        c = self.client(client_id=cid)
        h = self.submit_bg(c, b"f", b"", b"x")
        self.close_and_wait(c, cid)
        self.assertEqual(self.grab(self.worker(b"f"))[0], h)

    def test_other_clients_of_a_job_still_get_results_when_one_leaves(self):
        cid = self.fresh_id("fg")
        c1 = self.client(client_id=cid)
        c2, w = self.client(), self.worker(b"f")
        h = self.submit(c1, b"f", b"both", b"x")
        self.assertEqual(self.submit(c2, b"f", b"both", b"x"), h)
        self.close_and_wait(c1, cid, until=lambda: self.unique_clients(b"both") == 1)
        self.assertEqual(self.grab(w)[0], h)
        w.work_complete(h, b"r")
        self.assertEqual(c2.recv_packet(), res(gw.WORK_COMPLETE, h, b"r"))

    def test_running_job_of_departed_client_finishes_silently(self):
        cid = self.fresh_id("fg")
        c, w = self.client(client_id=cid), self.worker(b"f")
        h = self.submit(c, b"f", b"run", b"x")
        self.grab(w)
        self.close_and_wait(c, cid, until=lambda: self.unique_clients(b"run") == 0)
        w.work_data(h, b"d")
        w.work_complete(h, b"r")
        self.assertQuiet(w)
        self.assertNoJob(w)

    @roundhouse_only("abandoned running job is dropped instead of re-queued")
    def test_abandoned_running_job_is_dropped_when_its_worker_leaves(self):
        cid, wid = self.fresh_id("fg"), self.fresh_id("w")
        c, w = self.client(client_id=cid), self.worker(b"f", client_id=wid)
        self.submit(c, b"f", b"drop", b"x")
        self.grab(w)
        self.close_and_wait(c, cid, until=lambda: self.unique_clients(b"drop") == 0)
        self.close_and_wait(w, wid)
        self.assertEqual(self.admin("show jobs"), b".\n")
        self.assertNoJob(self.worker(b"f"))

    def test_identical_submission_readopts_abandoned_running_job(self):
        cid = self.fresh_id("fg")
        c1, w = self.client(client_id=cid), self.worker(b"f")
        h = self.submit(c1, b"f", b"adopt", b"x")
        self.grab(w)
        self.close_and_wait(c1, cid, until=lambda: self.unique_clients(b"adopt") == 0)
        c2 = self.client()
        self.assertEqual(self.submit(c2, b"f", b"adopt", b"x"), h)
        w.work_complete(h, b"r")
        self.assertEqual(c2.recv_packet(), res(gw.WORK_COMPLETE, h, b"r"))


class MaxQueue(GearmanTestCase):
    """Section 3.12."""

    def setUp(self):
        super().setUp()
        self.assertEqual(self.admin("create function f\r\n"), b"OK\r\n")

    def test_new_job_refused_when_function_total_reaches_limit(self):
        c = self.client()
        self.assertEqual(self.admin("maxqueue f 2"), b"OK\r\n")
        self.submit(c, b"f", b"", b"1")
        self.submit_bg(c, b"f", b"", b"2")
        for ptype in SUBMIT_3ARG:
            self.assertEqual(c.request(ptype, b"f", b"", b"3"), QUEUE_FULL, gw.NAMES[ptype])
        self.assertEqual(c.request(gw.SUBMIT_JOB_EPOCH, b"f", b"", b"0", b"3"), QUEUE_FULL)
        self.assertEqual(self.admin("status"), b"f\t2\t0\t0\n.\n")

    def test_running_jobs_count_toward_the_limit(self):
        c, w = self.client(), self.worker(b"f")
        self.assertEqual(self.admin("maxqueue f 1"), b"OK\r\n")
        h = self.submit(c, b"f", b"", b"1")
        self.grab(w)
        self.assertEqual(c.request(gw.SUBMIT_JOB, b"f", b"", b"2"), QUEUE_FULL)
        w.work_complete(h, b"r")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"r"))
        self.submit(c, b"f", b"", b"3")

    def test_high_normal_form_sets_low_unlimited(self):
        c = self.client()
        self.assertEqual(self.admin("maxqueue f 5 1"), b"OK\r\n")
        self.submit_bg(c, b"f", b"", b"n1")
        self.assertEqual(c.request(gw.SUBMIT_JOB_BG, b"f", b"", b"n2"), QUEUE_FULL)
        self.submit(c, b"f", b"", b"h1", gw.SUBMIT_JOB_HIGH_BG)
        for i in range(6):
            self.submit(c, b"f", b"", b"low%d" % i, gw.SUBMIT_JOB_LOW_BG)
        self.assertEqual(self.admin("status"), b"f\t8\t0\t0\n.\n")

    def test_three_number_form_sets_each_priority(self):
        c = self.client()
        self.assertEqual(self.admin("maxqueue f 3 2 1"), b"OK\r\n")
        self.submit(c, b"f", b"", b"l1", gw.SUBMIT_JOB_LOW_BG)
        self.assertEqual(c.request(gw.SUBMIT_JOB_LOW_BG, b"f", b"", b"l2"), QUEUE_FULL)
        self.submit_bg(c, b"f", b"", b"n1")
        self.assertEqual(c.request(gw.SUBMIT_JOB_BG, b"f", b"", b"n2"), QUEUE_FULL)
        self.submit(c, b"f", b"", b"h1", gw.SUBMIT_JOB_HIGH_BG)
        self.assertEqual(c.request(gw.SUBMIT_JOB_HIGH_BG, b"f", b"", b"h2"), QUEUE_FULL)

    def test_maxqueue_without_number_removes_limits(self):
        c = self.client()
        self.assertEqual(self.admin("maxqueue f 1"), b"OK\r\n")
        self.submit_bg(c, b"f", b"", b"1")
        self.assertEqual(self.admin("maxqueue f"), b"OK\r\n")
        self.submit_bg(c, b"f", b"", b"2")

    @roundhouse_only("reduce submits at the limit answered QUEUE_ERROR (gearmand closes)")
    def test_submit_reduce_job_at_limit_gets_queue_error(self):
        c = self.client()
        self.assertEqual(self.admin("maxqueue f 1"), b"OK\r\n")
        self.submit_bg(c, b"f", b"", b"1")
        for ptype in (gw.SUBMIT_REDUCE_JOB, gw.SUBMIT_REDUCE_JOB_BACKGROUND):
            self.assertEqual(c.request(ptype, b"f", b"", b"r", b"", b"x"), QUEUE_FULL)


class ClientId(GearmanTestCase):
    def test_set_client_id_has_no_reply(self):
        c = self.client()
        c.set_client_id(b"my id with spaces")
        self.assertQuiet(c)

    def test_can_do_and_registration_packets_have_no_reply(self):
        c = self.client()
        c.can_do(b"f")
        c.can_do_timeout(b"g", 5000)
        c.cant_do(b"f")
        c.reset_abilities()
        self.assertQuiet(c)


if __name__ == "__main__":
    unittest.main()


@roundhouse_only("features of later milestones are refused, never silently ignored")
class InvalidJenkinsMaster(unittest.TestCase):
    """A Jenkins master whose settings do not validate stops start-up (and --check-args) with a
    message naming the master and the key, before anything is served."""

    def run_roundhouse(self, *args):
        binary = server_fixture.roundhouse_bin()
        if not os.path.exists(binary):
            self.skipTest("roundhouse binary not found at %s" % binary)
        return subprocess.run([binary, "-q", "none", "--port", "0", "--listen", "127.0.0.1",
                               *args], capture_output=True, text=True, timeout=20)

    def test_an_unknown_setting_is_refused_at_start_up(self):
        done = self.run_roundhouse(
            "--jenkins", "ci:base_url=http://127.0.0.1:9/,user=u,api_token=t,colour=blue")
        self.assertEqual(done.returncode, 1)
        self.assertIn("'ci'", done.stderr)
        self.assertIn("colour", done.stderr)

    def test_check_args_validates_masters(self):
        done = self.run_roundhouse("--check-args",
                                   "--jenkins", "ci:base_url=http://127.0.0.1:9/,user=u")
        self.assertEqual(done.returncode, 1)
        self.assertIn("api_token", done.stderr)
        ok = self.run_roundhouse("--check-args",
                                 "--jenkins", "ci:base_url=http://127.0.0.1:9/,user=u,api_token=t")
        self.assertEqual(ok.returncode, 0, ok.stderr)


class ConfiguredLimits(GearmanTestCase):
    """Our server: --max-text-line and --max-unique take effect at the limit and one past it."""

    server_args = ("--max-text-line", "100", "--max-unique", "8")

    def setUp(self):
        if self.gearmand:
            self.skipTest("roundhouse-only: gearmand's limits are fixed")
        super().setUp()

    def test_admin_line_at_the_configured_limit_is_answered(self):
        c = self.client()
        token = b"a" * 100
        c.send_raw(token + b"\n")
        self.assertEqual(c.recv_line(), b"ERR UNKNOWN_COMMAND Unknown+server+command" + token + b"\r\n")

    def test_admin_line_one_byte_over_the_configured_limit_closes(self):
        c = self.client()
        c.send_raw(b"a" * 101 + b"\n")
        self.assertTrue(c.wait_closed())

    def test_unique_at_and_over_the_configured_limit(self):
        c = self.client()
        self.assertEqual(c.request(gw.SUBMIT_JOB_BG, b"f", b"u" * 8, b"x")[1], gw.JOB_CREATED)
        self.assertEqual(c.request(gw.SUBMIT_JOB_BG, b"f", b"u" * 9, b"x"), UNIQUE_TOO_LARGE)
