"""The admin text protocol (doc/protocol.md §4), byte for byte, over real sockets.

Each test starts its own server. @roundhouse_only tests assert our deliberate differences and
are skipped with GEARMAN_REFERENCE=1.
"""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
from gearman_wire import res  # noqa: E402
from e2e_base import GearmanTestCase  # noqa: E402
from server_fixture import roundhouse_only  # noqa: E402

UNKNOWN = b"ERR UNKNOWN_COMMAND Unknown+server+command"
INVALID_ARGS = b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+"
STILL_WORKERS = b"ERR there are still connected workers or executing clients\r\n"


def listing_lines(reply):
    """The lines of a listing without the final '.' line, in server order."""
    assert reply.endswith(b".\n"), reply
    body = reply[:-2]
    return body.split(b"\n")[:-1] if body else []


class AdminTestCase(GearmanTestCase):
    def setUp(self):
        super().setUp()
        self.a = self.connect()

    def cmd(self, line):
        """Send one raw command line (terminator included by the caller, or '\\n' added)."""
        return self.a.admin(line)

    def assertListingEqual(self, reply, lines, ordered=True):
        got = listing_lines(reply)
        if ordered:
            self.assertEqual(reply, b"".join(line + b"\n" for line in lines) + b".\n")
        else:
            self.assertEqual(sorted(got), sorted(lines), reply)


class SimpleCommands(AdminTestCase):
    def test_version_is_ok_and_one_token_with_lf(self):
        reply = self.cmd(b"version\n")
        self.assertRegex(reply, rb"^OK [^ \r\n]+\n$")
        if self.gearmand:
            self.assertEqual(reply, b"OK 1.1.20+ds\n")

    def test_getpid_is_the_server_pid(self):
        self.assertEqual(self.cmd(b"getpid\r\n"), b"OK %d\n" % self.server.pid)

    def test_verbose_reports_current_level(self):
        self.assertEqual(self.cmd(b"verbose\r\n"), b"OK INFO\n")

    def test_verbose_default_level_is_error(self):
        server = self.start_server(verbose=None)
        with server.connect() as c:
            self.assertEqual(c.admin(b"verbose\n"), b"OK ERROR\n")

    def test_verbose_reports_configured_level(self):
        server = self.start_server(verbose="DEBUG")
        with server.connect() as c:
            self.assertEqual(c.admin(b"verbose\n"), b"OK DEBUG\n")

    def test_command_words_are_case_insensitive(self):
        self.assertEqual(self.cmd(b"VERSION\n"), self.cmd(b"version\n"))
        self.assertEqual(self.cmd(b"GetPid\n"), b"OK %d\n" % self.server.pid)
        self.assertEqual(self.cmd(b"Status\n"), b".\n")
        self.assertEqual(self.cmd(b"SHOW JOBS\n"), b".\n")
        self.assertEqual(self.cmd(b"show UNIQUE Jobs\n"), b".\n")

    def test_lf_and_crlf_terminators_give_identical_replies(self):
        for command in (b"version", b"getpid", b"status", b"workers", b"show jobs", b"bogus"):
            self.assertEqual(self.cmd(command + b"\n"), self.cmd(command + b"\r\n"), command)

    def test_extra_tokens_after_argumentless_commands_are_ignored(self):
        self.assertEqual(self.cmd(b"version x\n"), self.cmd(b"version\n"))
        self.assertEqual(self.cmd(b"getpid x y\n"), b"OK %d\n" % self.server.pid)
        self.assertEqual(self.cmd(b"status x\n"), b".\n")

    def test_pipelined_commands_are_answered_in_order(self):
        self.a.send_raw(b"version\nstatus\ngetpid\n")
        self.assertTrue(self.a.recv_line().startswith(b"OK "))
        self.assertEqual(self.a.recv_line(), b".\n")
        self.assertEqual(self.a.recv_line(), b"OK %d\n" % self.server.pid)


class UnknownCommands(AdminTestCase):
    def test_unknown_command_glues_first_token_onto_text(self):
        self.assertEqual(self.cmd(b"foo bar\n"), UNKNOWN + b"foo\r\n")
        self.assertEqual(self.cmd(b"Foo\r\n"), UNKNOWN + b"Foo\r\n")

    def test_empty_line_is_unknown_command(self):
        self.assertEqual(self.cmd(b"\n"), UNKNOWN + b"\r\n")
        self.assertEqual(self.cmd(b"\r\n"), UNKNOWN + b"\r\n")

    def test_leading_space_gives_empty_first_token(self):
        self.assertEqual(self.cmd(b" status\n"), UNKNOWN + b"\r\n")

    def test_tab_is_an_ordinary_byte(self):
        self.assertEqual(self.cmd(b"status\tx\n"), UNKNOWN + b"status\tx\r\n")

    def test_runs_of_spaces_count_as_one_separator(self):
        self.assertEqual(self.cmd(b"show   jobs\n"), b".\n")
        self.assertEqual(self.cmd(b"cancel  job   H:none:1\r\n"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.cmd(b"a  b   c d    e\n"), UNKNOWN + b"a\r\n")

    def test_trailing_spaces_are_ignored(self):
        # doc/protocol.md §4.1: trailing spaces are ignored. Observed on gearmand 1.1.20: a
        # trailing space adds an empty token ("show jobs " -> ERR UNKNOWN_SHOW_ARGUMENTS, "cancel job H " ->
        # ERR UNKNOWN_ERROR, "a b c d e " -> 6 tokens -> connection closed).
        self.assertEqual(self.cmd(b"version   \r\n"), self.cmd(b"version\n"))
        if self.gearmand:
            self.assertEqual(self.cmd(b"show jobs \n"), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n")
            self.assertEqual(self.cmd(b"cancel job H:none:1 \r\n"), b"ERR UNKNOWN_ERROR\r\n")
        else:
            self.assertEqual(self.cmd(b"show jobs \n"), b".\n")
            self.assertEqual(self.cmd(b"show   jobs   \r\n"), b".\n")
            self.assertEqual(self.cmd(b"cancel job H:none:1 \r\n"), b"ERR UNKNOWN_JOB\r\n")
            self.assertEqual(self.cmd(b"a b c d e   \n"), UNKNOWN + b"a\r\n")

    def test_line_of_8191_bytes_is_accepted(self):
        token = b"a" * 8191
        self.assertEqual(self.cmd(token + b"\n"), UNKNOWN + token + b"\r\n")
        self.assertEqual(self.cmd(b"getpid\n"), b"OK %d\n" % self.server.pid)

    def test_line_of_8192_bytes_closes_connection_without_reply(self):
        self.a.send_raw(b"a" * 8192 + b"\n")
        self.assertTrue(self.a.wait_closed())
        self.assertEqual(bytes(self.a.buf), b"")

    def test_line_over_limit_without_newline_closes_connection(self):
        self.a.send_raw(b"b" * 9000)
        self.assertTrue(self.a.wait_closed())
        self.assertEqual(bytes(self.a.buf), b"")

    def test_five_tokens_are_accepted(self):
        self.assertEqual(self.cmd(b"a b c d e\n"), UNKNOWN + b"a\r\n")

    def test_more_than_five_tokens_close_connection_without_reply(self):
        self.a.send_raw(b"a b c d e f\n")
        self.assertTrue(self.a.wait_closed())
        self.assertEqual(bytes(self.a.buf), b"")

    def test_six_tokens_of_a_known_command_close_connection(self):
        self.a.send_raw(b"maxqueue fn 1 2 3 4\r\n")
        self.assertTrue(self.a.wait_closed())
        self.assertEqual(bytes(self.a.buf), b"")


class StatusListing(AdminTestCase):
    def test_empty_server_status_is_dot_line(self):
        self.assertEqual(self.cmd(b"status\n"), b".\n")
        self.assertEqual(self.cmd(b"prioritystatus\n"), b".\n")

    def test_status_counts_total_running_and_registrations(self):
        c, w1, w2 = self.client(), self.worker(b"fn"), self.worker(b"fn")
        for _ in range(5):
            self.submit_bg(c, b"fn", b"", b"x")
        for _ in range(3):
            self.grab(w1)
        self.assertEqual(self.cmd(b"status\n"), b"fn\t5\t3\t2\n.\n")

    def test_status_lists_idle_functions_created_by_can_do(self):
        w = self.worker(b"idle")
        self.assertEqual(self.cmd(b"status\n"), b"idle\t0\t0\t1\n.\n")
        w.reset_abilities()
        w.assert_quiet()
        # gearmand keeps every function forever; roundhouse frees one that has no job and no
        # worker left (doc/gearman-differences.md), so peer-chosen names cannot pile up.
        self.assertEqual(self.cmd(b"status\n"),
                         b"idle\t0\t0\t0\n.\n" if self.gearmand else b".\n")

    def test_function_stays_listed_after_its_jobs_end(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit(c, b"fn", b"", b"x")
        self.grab(w)
        w.work_complete(h, b"")
        self.assertEqual(c.recv_packet().type, gw.WORK_COMPLETE)
        self.assertEqual(self.cmd(b"status\n"), b"fn\t0\t0\t1\n.\n")

    def test_status_contains_every_function(self):
        c = self.client()
        names = [b"zeta", b"alpha", b"Beta", b"_x", b"m1", b"m10", b"m2"]
        for name in names:
            self.submit_bg(c, name, b"", b"x")
        self.assertListingEqual(self.cmd(b"status\n"), [n + b"\t1\t0\t0" for n in names],
                                ordered=False)

    @roundhouse_only("status in ascending byte order of names (gearmand: hash order)")
    def test_status_is_in_ascending_byte_order_of_names(self):
        c = self.client()
        names = [b"zeta", b"alpha", b"Beta", b"_x", b"m1", b"m10", b"m2", b"\xc3\xa9t\xc3\xa9"]
        for name in names:
            self.submit_bg(c, name, b"", b"x")
        self.assertListingEqual(self.cmd(b"status\n"), [n + b"\t1\t0\t0" for n in sorted(names)])

    def test_prioritystatus_counts_queued_jobs_per_priority(self):
        c, w = self.client(), self.worker(b"fn")
        self.submit(c, b"fn", b"", b"h", gw.SUBMIT_JOB_HIGH_BG)
        self.submit(c, b"fn", b"", b"n1", gw.SUBMIT_JOB_BG)
        self.submit(c, b"fn", b"", b"n2", gw.SUBMIT_JOB)
        self.submit(c, b"fn", b"", b"l", gw.SUBMIT_JOB_LOW_BG)
        c.request(gw.SUBMIT_JOB_EPOCH, b"fn", b"", int(time.time()) + 100, b"e")
        self.assertEqual(self.cmd(b"prioritystatus\n"), b"fn\t1\t3\t1\t1\n.\n")
        self.grab(w)  # the HIGH job is now running, no longer queued
        self.assertEqual(self.cmd(b"prioritystatus\n"), b"fn\t0\t3\t1\t1\n.\n")
        self.assertEqual(self.cmd(b"status\n"), b"fn\t5\t1\t1\n.\n")

    def test_epoch_job_is_counted_in_status_total(self):
        c = self.client()
        c.request(gw.SUBMIT_JOB_EPOCH, b"ep", b"u", int(time.time()) + 100, b"e")
        self.assertEqual(self.cmd(b"status\n"), b"ep\t1\t0\t0\n.\n")

    @roundhouse_only("a repeated CAN_DO is one registration (gearmand counts it twice)")
    def test_repeated_can_do_counts_once(self):
        w = self.worker(b"fn", b"fn", b"fn", client_id=b"dup")
        self.assertEqual(self.cmd(b"status\n"), b"fn\t0\t0\t1\n.\n")
        self.assertRegex(self.cmd(b"workers\n"), rb"^\d+ 127\.0\.0\.1 dup : fn\n\.\n$")
        w.cant_do(b"fn")
        w.assert_quiet()
        self.assertEqual(self.cmd(b"status\n"), b".\n")  # no job, no worker: freed

    def test_large_status_listing_arrives_in_one_burst(self):
        c = self.client()
        payload = b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"function-%04d" % i, b"", b"x")
                           for i in range(400))
        c.send_raw(payload)
        c.recv_packets(400)
        self.a.send_raw(b"status\r\n")
        burst = self.a.recv_burst()
        self.assertTrue(burst.endswith(b".\n"), burst[-100:])
        self.assertEqual(len(listing_lines(burst)), 400)


class WorkersListing(AdminTestCase):
    LINE = rb"^(\d+) 127\.0\.0\.1 (.*) :(.*)$"

    def worker_lines(self):
        return [re.match(self.LINE, line) for line in listing_lines(self.cmd(b"workers\n"))]

    def test_worker_line_has_fd_ip_id_and_functions(self):
        self.worker(b"fn", client_id=b"w1")
        lines = [m for m in self.worker_lines() if m and m.group(2) == b"w1"]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0].group(3), b" fn")

    def test_worker_without_client_id_shows_dash(self):
        w = self.connect()
        w.can_do(b"anon-fn")
        w.assert_quiet()
        lines = [m for m in self.worker_lines() if m and m.group(3) == b" anon-fn"]
        self.assertEqual([m.group(2) for m in lines], [b"-"])

    def test_client_id_is_printed_verbatim_with_spaces(self):
        self.worker(b"fn", client_id=b"id with  spaces")
        self.assertIn(b" id with  spaces : fn\n", self.cmd(b"workers\n"))

    def test_client_id_keeps_first_127_bytes(self):
        self.worker(b"fn", client_id=b"i" * 200)
        self.assertIn(b" " + b"i" * 127 + b" : fn\n", self.cmd(b"workers\n"))
        self.assertNotIn(b"i" * 128, self.cmd(b"workers\n"))

    def test_worker_with_no_functions_ends_with_colon(self):
        w = self.connect()
        w.set_client_id(b"nofuncs")
        w.assert_quiet()
        self.assertIn(b" nofuncs :\n", self.cmd(b"workers\n"))

    @roundhouse_only("workers lists only connections that acted as workers")
    def test_workers_lists_only_connections_that_acted_as_workers(self):
        c = self.client()
        self.submit(c, b"fn", b"", b"x")
        w1 = self.worker(b"fn", client_id=b"w1")
        w2 = self.connect()
        w2.pre_sleep()
        w2.assert_quiet()
        w3 = self.connect()
        self.assertNoJob(w3, gw.GRAB_JOB_UNIQ)
        lines = self.worker_lines()
        self.assertTrue(all(lines), self.cmd(b"workers\n"))
        fds = [int(m.group(1)) for m in lines]
        self.assertEqual(len(lines), 3, self.cmd(b"workers\n"))
        self.assertEqual(fds, sorted(fds))
        self.assertEqual(sorted((m.group(2), m.group(3)) for m in lines),
                         sorted([(b"w1", b" fn"), (b"-", b""), (b"-", b"")]))
        del w1

    @roundhouse_only("workers ordered by fd, registrations in CAN_DO order")
    def test_workers_are_ordered_by_fd_and_list_registrations_in_can_do_order(self):
        for i in range(5):
            self.worker(b"f%d" % i, b"g", b"a", client_id=b"w%d" % i)
        lines = self.worker_lines()
        self.assertEqual([m.group(2) for m in lines], [b"w%d" % i for i in range(5)])
        fds = [int(m.group(1)) for m in lines]
        self.assertEqual(fds, sorted(fds))
        for i, m in enumerate(lines):
            self.assertEqual(m.group(3), b" f%d g a" % i)

    def test_workers_listing_with_no_workers(self):
        if self.gearmand:
            # gearmand lists every connection, including this admin one (and, briefly, the
            # fixture's already closed readiness probes).
            self.assertRegex(self.cmd(b"workers\n"), rb"^(\d+ 127\.0\.0\.1 - :\n)+\.\n$")
        else:
            self.assertEqual(self.cmd(b"workers\n"), b".\n")

    def test_worker_leaves_listing_after_disconnect(self):
        w = self.worker(b"fn", client_id=b"leaver")
        self.assertIn(b" leaver : fn\n", self.cmd(b"workers\n"))
        # gearmand keeps the idle function listed; roundhouse frees it.
        gone = b"fn\t0\t0\t0\n.\n" if self.gearmand else b".\n"
        self.close_and_wait(w, b"leaver", until=lambda: self.cmd(b"status\n") == gone)


class ShowJobs(AdminTestCase):
    def test_show_jobs_lists_handle_retries_ignore_queued(self):
        c, w = self.client(), self.worker(b"fn")
        h_bg = self.submit_bg(c, b"fn", b"u1", b"x")
        h_fg = self.submit(c, b"fn", b"u2", b"x")
        self.assertListingEqual(self.cmd(b"show jobs\n"),
                                [h_bg + b"\t0\t0\t1", h_fg + b"\t0\t0\t0"], ordered=False)
        del w

    def test_show_jobs_counts_retries(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit_bg(c, b"fn", b"", b"x")
        for _ in range(2):
            self.grab(w)
            w.cant_do(b"fn")
            w.can_do(b"fn")
        w.assert_quiet()
        self.assertEqual(self.cmd(b"show jobs\n"), h + b"\t2\t0\t1\n.\n")

    def test_show_jobs_includes_running_and_epoch_jobs(self):
        c, w = self.client(), self.worker(b"fn")
        h1 = self.submit_bg(c, b"fn", b"", b"x")
        self.grab(w)
        h2 = c.request(gw.SUBMIT_JOB_EPOCH, b"fn", b"ep", int(time.time()) + 100, b"e").payload
        self.assertListingEqual(self.cmd(b"show jobs\n"),
                                [h1 + b"\t0\t0\t1", h2 + b"\t0\t0\t1"], ordered=False)

    @roundhouse_only("show jobs in creation order")
    def test_show_jobs_is_in_creation_order(self):
        c = self.client()
        handles = [self.submit_bg(c, b"fn%d" % (i % 3), b"u%d" % i, b"x") for i in range(30)]
        self.assertListingEqual(self.cmd(b"show jobs\n"), [h + b"\t0\t0\t1" for h in handles])

    def test_show_unique_jobs_prints_empty_uniques_as_empty_lines(self):
        c = self.client()
        self.submit_bg(c, b"fn", b"", b"x")
        self.submit_bg(c, b"fn", b"u1", b"x")
        c.request(gw.SUBMIT_JOB_EPOCH, b"fn", b"ep1", int(time.time()) + 100, b"e")
        self.assertListingEqual(self.cmd(b"show unique jobs\n"), [b"", b"u1", b"ep1"],
                                ordered=False)

    @roundhouse_only("show unique jobs in creation order")
    def test_show_unique_jobs_is_in_creation_order(self):
        c = self.client()
        self.submit_bg(c, b"fn", b"", b"x")
        self.submit_bg(c, b"fn", b"u1", b"x")
        c.request(gw.SUBMIT_JOB_EPOCH, b"fn", b"ep1", int(time.time()) + 100, b"e")
        self.assertEqual(self.cmd(b"show unique jobs\n"), b"\nu1\nep1\n.\n")

    def test_show_with_other_arguments_is_unknown_show_arguments(self):
        for line in (b"show jobs x\n", b"show unique\n", b"show foo\n", b"show unique jobs x\n",
                     b"show unique foo\n"):
            self.assertEqual(self.cmd(line), b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n", line)

    def test_show_alone_is_unknown_command(self):
        self.assertEqual(self.cmd(b"show\n"), UNKNOWN + b"show\r\n")

    def test_show_jobs_listing_arrives_in_one_burst(self):
        c = self.client()
        c.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"fn", b"", b"x") for _ in range(500)))
        c.recv_packets(500)
        self.a.send_raw(b"show jobs\r\n")
        burst = self.a.recv_burst()
        self.assertTrue(burst.endswith(b".\n"), burst[-100:])
        self.assertEqual(len(listing_lines(burst)), 500)


class CancelJob(AdminTestCase):
    def test_cancel_unknown_job_is_unknown_job(self):
        self.assertEqual(self.cmd(b"cancel job H:nohost:1\r\n"), b"ERR UNKNOWN_JOB\r\n")

    def test_cancel_grammar_errors(self):
        self.assertEqual(self.cmd(b"cancel\n"), UNKNOWN + b"cancel\r\n")
        self.assertEqual(self.cmd(b"cancel job\n"), UNKNOWN + b"cancel\r\n")
        self.assertEqual(self.cmd(b"cancel jobs H:x:1\n"), b"ERR UNKNOWN_ERROR\r\n")
        self.assertEqual(self.cmd(b"cancel job H:x:1 extra\n"), b"ERR UNKNOWN_ERROR\r\n")

    def test_cancel_keyword_is_case_insensitive_but_handle_is_not(self):
        c = self.client()
        h = self.submit_bg(c, b"fn", b"", b"x")
        self.assertEqual(self.cmd(b"CANCEL JOB " + h.swapcase() + b"\r\n"), b"ERR UNKNOWN_JOB\r\n")
        self.assertEqual(self.cmd(b"CANCEL JOB " + h + b"\r\n"), b"OK\r\n")

    def test_cancel_queued_background_job_is_never_handed_out(self):
        c = self.client()
        h = self.submit_bg(c, b"fn", b"", b"x")
        self.assertEqual(self.cmd(b"cancel job " + h + b"\r\n"), b"OK\r\n")
        self.assertNoJob(self.worker(b"fn"))

    @roundhouse_only("cancelled queued job removed at once (gearmand: IGNORE=1 until grabbed)")
    def test_cancel_queued_job_removes_it_at_once(self):
        c = self.client()
        h = self.submit_bg(c, b"fn", b"u", b"x")
        self.assertEqual(self.cmd(b"cancel job " + h + b"\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"show jobs\n"), b".\n")
        self.assertEqual(self.cmd(b"status\n"), b".\n")  # and its function, now empty
        self.assertEqual(self.cmd(b"cancel job " + h + b"\n"), b"ERR UNKNOWN_JOB\r\n")
        self.assertNotEqual(self.submit_bg(c, b"fn", b"u", b"x"), h)

    def test_cancel_queued_foreground_job_sends_work_fail_to_its_clients(self):
        c1, c2 = self.client(), self.client()
        h = self.submit(c1, b"fn", b"both", b"x")
        self.assertEqual(self.submit(c2, b"fn", b"both", b"x"), h)
        self.assertEqual(self.cmd(b"cancel job " + h + b"\r\n"), b"OK\r\n")
        for c in (c1, c2):
            self.assertEqual(c.recv_packet(), res(gw.WORK_FAIL, h))
        self.assertNoJob(self.worker(b"fn"))

    def test_cancel_running_job_sends_work_fail_to_clients(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit(c, b"fn", b"", b"x")
        self.grab(w)
        self.assertEqual(self.cmd(b"cancel job " + h + b"\r\n"), b"OK\r\n")
        self.assertEqual(c.recv_packet(), res(gw.WORK_FAIL, h))

    @roundhouse_only("cancelled running job: clients detached, later WORK_* discarded (3.11)")
    def test_cancel_running_job_detaches_clients_and_discards_worker_results(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit(c, b"fn", b"run", b"x")
        self.grab(w)
        self.assertEqual(self.cmd(b"cancel job " + h + b"\r\n"), b"OK\r\n")
        self.assertEqual(c.recv_packet(), res(gw.WORK_FAIL, h))
        self.assertEqual(self.cmd(b"show jobs\n"), h + b"\t0\t1\t0\n.\n")
        h2 = self.submit(self.client(), b"fn", b"run", b"y")  # unique free again
        self.assertNotEqual(h2, h)
        w.work_data(h, b"d")
        w.work_status(h, 1, 2)
        w.work_complete(h, b"late")
        self.assertQuiet(w)
        self.assertQuiet(c)
        self.assertEqual(self.cmd(b"show jobs\n"), h2 + b"\t0\t0\t0\n.\n")


class CreateAndDropFunction(AdminTestCase):
    def test_create_function_with_crlf(self):
        self.assertEqual(self.cmd(b"create function newfn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"newfn\t0\t0\t0\n.\n")

    @roundhouse_only("create function right with a bare LF (gearmand drops a byte)")
    def test_create_function_with_lf(self):
        self.assertEqual(self.cmd(b"create function fn_lf\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"fn_lf\t0\t0\t0\n.\n")

    def test_create_existing_function_is_ok(self):
        self.worker(b"fn")
        self.assertEqual(self.cmd(b"create function fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"fn\t0\t0\t1\n.\n")

    def test_create_keyword_is_case_insensitive(self):
        self.assertEqual(self.cmd(b"CREATE FUNCTION Caps\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"Caps\t0\t0\t0\n.\n")

    def test_create_function_argument_errors(self):
        for line, tok0 in ((b"create\r\n", b"create"), (b"create function\r\n", b"create"),
                           (b"create x y\r\n", b"create"), (b"create function a b\r\n", b"create"),
                           (b"Create func y\r\n", b"Create")):
            self.assertEqual(self.cmd(line), INVALID_ARGS + tok0 + b"\r\n", line)
        self.assertEqual(self.cmd(b"status\n"), b".\n")

    def test_drop_idle_function(self):
        self.assertEqual(self.cmd(b"create function gone\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"drop function gone\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b".\n")

    def test_drop_function_name_is_case_insensitive(self):
        self.assertEqual(self.cmd(b"create function MixedCase\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"drop function mixedcase\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b".\n")

    def test_drop_unknown_function(self):
        self.assertEqual(self.cmd(b"drop function nosuch\r\n"), b"ERR function not found\r\n")

    def test_drop_function_with_registered_worker_is_refused(self):
        self.worker(b"busy")
        self.assertEqual(self.cmd(b"drop function busy\r\n"), STILL_WORKERS)

    def test_drop_function_with_running_job_and_its_worker_is_refused(self):
        # A running job always has a registered worker: dropping the registration (CANT_DO,
        # RESET_ABILITIES) re-queues the job, so "running" cannot be tested on its own.
        c, w = self.client(), self.worker(b"busy")
        self.submit(c, b"busy", b"", b"x")
        self.grab(w)
        self.assertEqual(self.cmd(b"drop function busy\r\n"), STILL_WORKERS)
        self.assertEqual(self.cmd(b"drop function BUSY\r\n"), STILL_WORKERS)

    @roundhouse_only("drop refused while jobs are queued (gearmand drops them)")
    def test_drop_function_with_queued_jobs_is_refused(self):
        c = self.client()
        self.submit_bg(c, b"queued", b"", b"x")
        self.assertEqual(self.cmd(b"drop function queued\r\n"),
                         b"ERR there are still queued jobs\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"queued\t1\t0\t0\n.\n")

    @roundhouse_only("an exact-case match wins over a case-insensitive one")
    def test_drop_function_prefers_exact_case_match(self):
        self.assertEqual(self.cmd(b"create function Fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"create function fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"drop function fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b"Fn\t0\t0\t0\n.\n")

    def test_drop_function_argument_errors(self):
        for line, tok0 in ((b"drop\r\n", b"drop"), (b"drop function\r\n", b"drop"),
                           (b"drop x fn\r\n", b"drop"), (b"drop function a b\r\n", b"drop"),
                           (b"DROP function\r\n", b"DROP")):
            self.assertEqual(self.cmd(line), INVALID_ARGS + tok0 + b"\r\n", line)


class MaxQueueCommand(AdminTestCase):
    def test_maxqueue_forms_answer_ok(self):
        self.assertEqual(self.cmd(b"create function fn\r\n"), b"OK\r\n")
        for line in (b"maxqueue fn\r\n", b"maxqueue fn 5\r\n", b"maxqueue fn 5 6\r\n",
                     b"maxqueue fn 5 6 7\r\n", b"maxqueue fn abc\r\n", b"maxqueue fn -5\r\n",
                     b"MAXQUEUE fn 1\n"):
            self.assertEqual(self.cmd(line), b"OK\r\n", line)

    def test_maxqueue_of_unknown_function_is_ok_and_creates_nothing(self):
        self.assertEqual(self.cmd(b"maxqueue nosuch 3\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"status\n"), b".\n")

    def test_maxqueue_alone_is_invalid_arguments(self):
        self.assertEqual(self.cmd(b"maxqueue\r\n"), INVALID_ARGS + b"maxqueue\r\n")

    def test_maxqueue_negative_or_non_numeric_means_unlimited(self):
        c = self.client()
        self.assertEqual(self.cmd(b"create function fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"maxqueue fn -5\r\n"), b"OK\r\n")
        for _ in range(3):
            self.submit_bg(c, b"fn", b"", b"x")
        self.assertEqual(self.cmd(b"maxqueue fn abc\r\n"), b"OK\r\n")
        self.submit_bg(c, b"fn", b"", b"x")

    def test_maxqueue_function_name_is_matched_exactly(self):
        c = self.client()
        self.assertEqual(self.cmd(b"create function fn\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"maxqueue FN 1\r\n"), b"OK\r\n")
        for _ in range(3):
            self.submit_bg(c, b"fn", b"", b"x")


class Shutdown(AdminTestCase):
    def test_shutdown_is_unknown_on_gearmand(self):
        if not self.gearmand:
            self.skipTest("gearmand-only: roundhouse supports shutdown")
        self.assertEqual(self.cmd(b"shutdown\r\n"), UNKNOWN + b"shutdown\r\n")

    @roundhouse_only("shutdown supported as in gearmand <= 1.1.14")
    def test_shutdown_answers_ok_and_process_exits(self):
        self.assertEqual(self.cmd(b"shutdown\r\n"), b"OK\r\n")
        self.assertIsNotNone(self.server.wait_exit(5), "server still running after shutdown")

    @roundhouse_only("shutdown keyword case-insensitive")
    def test_shutdown_with_lf_and_uppercase(self):
        self.assertEqual(self.cmd(b"SHUTDOWN\n"), b"OK\r\n")
        self.assertIsNotNone(self.server.wait_exit(5))

    @roundhouse_only("shutdown argument other than graceful")
    def test_shutdown_with_other_argument_is_invalid_arguments(self):
        self.assertEqual(self.cmd(b"shutdown now\r\n"), INVALID_ARGS + b"shutdown\r\n")
        self.assertTrue(self.server.is_running())
        self.assertEqual(self.cmd(b"getpid\n"), b"OK %d\n" % self.server.pid)

    @roundhouse_only("graceful shutdown waits for jobs")
    def test_shutdown_graceful_keeps_serving_until_jobs_finish(self):
        c, w = self.client(), self.worker(b"fn")
        h = self.submit(c, b"fn", b"", b"x")
        self.grab(w)
        self.assertEqual(self.cmd(b"shutdown graceful\r\n"), b"OK\r\n")
        self.wait_until(lambda: not self._can_connect(), 5, "listener to close")
        self.assertTrue(self.server.is_running())
        self.assertEqual(c.echo(b"alive"), res(gw.ECHO_RES, b"alive"))
        w.work_complete(h, b"done")
        self.assertEqual(c.recv_packet(), res(gw.WORK_COMPLETE, h, b"done"))
        self.assertIsNotNone(self.server.wait_exit(5), "server still running with no jobs")

    @roundhouse_only("graceful shutdown with no jobs exits at once")
    def test_shutdown_graceful_without_jobs_exits(self):
        self.assertEqual(self.cmd(b"shutdown graceful\r\n"), b"OK\r\n")
        self.assertIsNotNone(self.server.wait_exit(5))

    @roundhouse_only("a second shutdown forces exit during a graceful one")
    def test_shutdown_during_graceful_forces_exit(self):
        c, w = self.client(), self.worker(b"fn")
        self.submit_bg(c, b"fn", b"", b"x")
        self.grab(w)
        self.assertEqual(self.cmd(b"shutdown graceful\r\n"), b"OK\r\n")
        self.assertEqual(self.cmd(b"shutdown\r\n"), b"OK\r\n")
        self.assertIsNotNone(self.server.wait_exit(5))

    def _can_connect(self):
        try:
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=1) as s:
                s.sendall(b"version\n")
                s.settimeout(1)
                return bool(s.recv(100))
        except OSError:
            return False


class OneBurst(AdminTestCase):
    """Every reply is written in one burst (gearadmin stops after 5 ms of silence)."""

    def test_every_command_reply_arrives_in_one_burst(self):
        c, w = self.client(), self.worker(b"fn", client_id=b"w")
        for i in range(50):
            self.submit_bg(c, b"fn%d" % i, b"u%d" % i, b"x")
        self.submit_bg(c, b"fn", b"", b"x")
        self.grab(w)
        for command in (b"status", b"prioritystatus", b"workers", b"show jobs",
                        b"show unique jobs", b"version", b"getpid", b"verbose", b"bogus",
                        b"show x", b"cancel job H:none:1", b"maxqueue fn 0"):
            self.a.send_raw(command + b"\r\n")
            burst = self.a.recv_burst()
            self.assertTrue(burst.endswith(b"\n"), (command, burst[-50:]))
            if not burst.startswith((b"OK", b"ERR")):
                self.assertTrue(burst.endswith(b".\n"), (command, burst[-50:]))
            else:
                self.assertEqual(burst.count(b"\n"), 1, (command, burst))


if __name__ == "__main__":
    unittest.main()
