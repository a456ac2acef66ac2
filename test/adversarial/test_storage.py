"""Storage integrity through the real server (issue 12, requirements 5 and 8; doc/storage.md).

A byte damaged in the database of a stopped server: the next start refuses, naming the lost job
and --libsqlite3-skip-damaged; with the option it serves every other job, and a damaged payload
never reaches a worker whatever byte was hit. A segment damaged while the server runs does not
stop later durable submits (before: every one failed with QUEUE_ERROR). The database, its WAL and
SHM are 0600, and an existing 0644 database is restricted.

Python 3 standard library; each test starts its own servers on free loopback ports (the
fixture stops them even when the test fails).
"""

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import gearman_wire as gw  # noqa: E402
import server_fixture  # noqa: E402
from server_fixture import ServerTestCase, roundhouse_only  # noqa: E402

SKIP_OPTION = "--libsqlite3-skip-damaged"
PROCESS_TIMEOUT = 20.0


@roundhouse_only("the durable queue's integrity checks (doc/storage.md)")
class StorageTestCase(ServerTestCase):
    server_kind = "roundhouse"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rh-adversarial-storage-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "queue.db")

    def start_durable(self, *extra):
        return self.start_server("-q", "libsqlite3", "--libsqlite3-db", self.db, *extra,
                                 use_default_args=False)

    def stop(self, server):
        server.stop()
        self.assertEqual(server.exit_code, 0, "server did not exit cleanly:\n" + server.final_log)

    def refused_start(self, *extra):
        """Runs the server on self.db expecting it to refuse; returns what it printed."""
        cmd = [server_fixture.roundhouse_bin(), "--port", "0", "--listen", "127.0.0.1",
               "-q", "libsqlite3", "--libsqlite3-db", self.db, "--log-file", "stderr"] + list(extra)
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=PROCESS_TIMEOUT, cwd=self.dir)
        except subprocess.TimeoutExpired:
            self.fail("roundhouse started on a damaged database")
        text = (proc.stdout + proc.stderr).decode(errors="replace")
        self.assertNotEqual(proc.returncode, 0, text)
        return text

    def submit_bg(self, conn, func, data):
        pkt = conn.request(gw.SUBMIT_JOB_BG, func, b"", data)
        self.assertEqual(pkt.type, gw.JOB_CREATED, pkt)
        return pkt.payload

    def drain(self, server, *funcs):
        """Every job a worker can grab now, completed: [(handle, func, data)]."""
        out = []
        with server.connect() as worker:
            for func in funcs:
                worker.can_do(func)
            for _ in range(10000):
                pkt = worker.request(gw.GRAB_JOB)
                if pkt.type == gw.NO_JOB:
                    return out
                self.assertEqual(pkt.type, gw.JOB_ASSIGN, pkt)
                handle, func, data = pkt.args(3)
                out.append((handle, func, data))
                worker.work_complete(handle, b"")
        self.fail("more jobs than expected")

    def fill(self, jobs):
        """Stores `jobs` [(func, data)] through a server, stopped cleanly; {data: handle}."""
        server = self.start_durable()
        handles = {}
        with server.connect() as client:
            for func, data in jobs:
                handles[data] = self.submit_bg(client, func, data)
        self.stop(server)
        self.assertFalse(os.path.exists(self.db + "-wal") and os.path.getsize(self.db + "-wal"),
                         "a clean stop leaves everything in the database file")
        return handles

    def flip_file_byte(self, offset):
        with open(self.db, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0x20]))

    def offset_of(self, needle):
        with open(self.db, "rb") as f:
            content = f.read()
        at = content.find(needle)
        self.assertGreaterEqual(at, 0, "%r not in the database file" % needle)
        self.assertEqual(content.find(needle, at + 1), -1, "%r stored twice" % needle)
        return at


class DamagedAtRest(StorageTestCase):
    JOBS = ([(b"resize", b"resize-payload-%02d-" % i + b"r" * 40) for i in range(5)]
            + [(b"mail", b"mail-payload-%02d-" % i + b"m" * 40) for i in range(5)])

    def test_flipped_payload_byte_refuses_start_then_option_serves_the_rest(self):
        handles = self.fill(self.JOBS)
        victim = self.JOBS[2][1]
        self.flip_file_byte(self.offset_of(victim) + 20)

        text = self.refused_start()
        self.assertIn(SKIP_OPTION, text)
        self.assertIn(handles[victim].decode(), text, "the lost job's handle is named")
        self.assertIn("function resize", text)
        # Refusing changed nothing: refused again.
        self.assertIn(SKIP_OPTION, self.refused_start())

        server = self.start_durable(SKIP_OPTION)
        served = self.drain(server, b"resize", b"mail")
        expected = {data for _, data in self.JOBS if data != victim}
        self.assertEqual({data for _, _, data in served}, expected)
        self.assertEqual(len(served), len(expected))
        # The submissions of the surviving jobs keep their handles.
        for handle, _, data in served:
            self.assertEqual(handle, handles[data])
        self.stop(server)
        self.assertIn(handles[victim].decode(), server.final_log, "the loss is logged")

        # Retired for good: a plain start works, and durable submits go on.
        server = self.start_durable()
        with server.connect() as client:
            self.submit_bg(client, b"resize", b"after")
        self.assertEqual([d for _, _, d in self.drain(server, b"resize")], [b"after"])
        self.stop(server)

    def fill_one_segment(self, jobs):
        """Stores `jobs` pipelined (one group commit: one segment), stopped cleanly."""
        server = self.start_durable()
        with server.connect() as client:
            client.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, func, b"", data)
                                     for func, data in jobs))
            created = [client.recv_packet() for _ in jobs]
        self.assertTrue(all(p.type == gw.JOB_CREATED for p in created), created)
        self.stop(server)

    def segment_holding(self, needle):
        """(blob, its offset in the file, [(start, end)] of its records) of the segment with
        `needle`; the blob is small enough to sit whole in one page."""
        conn = sqlite3.connect(self.db)
        try:
            blobs = [b for (b,) in conn.execute("SELECT records FROM roundhouse_job_segments")]
        finally:
            conn.close()
        blob = next(b for b in blobs if needle in b)
        records, pos = [], 0
        while pos < len(blob):
            length, shift, start = 0, 0, pos
            while True:
                byte = blob[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            pos += length + 4  # body and its CRC-32C (doc/storage.md)
            records.append((start, pos))
        self.assertEqual(pos, len(blob))
        return blob, self.offset_of(blob), records

    def test_no_flipped_byte_ever_reaches_a_worker(self):
        # Damage anywhere in the stored record of one job (length, id, priority, time, handle,
        # function, unique, data, checksum): with the option, workers get exactly what was
        # submitted minus what was lost, never an altered payload, and never lose a job stored
        # before the damaged one.
        jobs = [(b"fn", b"job-%02d-" % i + b"x" * 30) for i in range(6)]
        self.fill_one_segment(jobs)
        with open(self.db, "rb") as f:
            pristine = f.read()
        victim = 3
        blob, file_at, records = self.segment_holding(jobs[victim][1])
        self.assertEqual(len(records), len(jobs), "the pipelined submits share one segment")
        start, end = records[victim]
        offsets = sorted(set(list(range(start, start + 12)) + list(range(start + 12, end, 7))
                             + list(range(end - 4, end))))
        submitted = [data for _, data in jobs]
        for offset in offsets:
            with self.subTest(byte=offset - start):
                with open(self.db, "wb") as f:
                    f.write(pristine)
                self.flip_file_byte(file_at + offset)
                self.assertIn(SKIP_OPTION, self.refused_start())
                server = self.start_durable(SKIP_OPTION)
                served = [data for _, _, data in self.drain(server, b"fn")]
                self.stop(server)
                self.assertNotIn(submitted[victim], served)
                self.assertLessEqual(set(served), set(submitted))
                self.assertEqual(len(served), len(set(served)))
                self.assertLessEqual(set(submitted[:victim]), set(served))
                if offset - start >= 2:  # past the length: the damaged job alone is lost
                    self.assertEqual(set(served), set(submitted) - {submitted[victim]})

    def test_damage_below_the_records_names_the_salvage_tool_which_recovers_the_rest(self):
        # A flipped byte in SQLite's own structure (the type byte of one b-tree page of the
        # segments table) is not ours to skip: start-up refuses naming tools/rh-salvage; the
        # salvaged copy starts with the option and serves the jobs of the other pages, unaltered.
        jobs = [(b"fn", b"salvage-%03d-" % i + b"s" * 60) for i in range(120)]
        self.fill(jobs)  # one segment per job: a few pages of segments
        conn = sqlite3.connect(self.db)
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.close()
        self.assertGreater(pages, 4)
        at = self.offset_of(jobs[0][1])
        page_start = at // page * page
        self.assertGreater(page_start, 0)
        with open(self.db, "rb") as f:
            f.seek(page_start)
            self.assertEqual(f.read(1), b"\x0d", "a table leaf page")
        self.flip_file_byte(page_start)
        text = self.refused_start()
        self.assertIn("tools/rh-salvage", text)
        self.assertIn(SKIP_OPTION, text)
        salvaged = os.path.join(self.dir, "salvaged.db")
        tool = os.path.join(server_fixture.REPO_ROOT, "tools", "rh-salvage")
        proc = subprocess.run([tool, self.db, salvaged], capture_output=True,
                              timeout=PROCESS_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn(b"unreadable", proc.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(salvaged).st_mode), 0o600)
        self.db = salvaged
        server = self.start_durable(SKIP_OPTION)
        served = [data for _, _, data in self.drain(server, b"fn")]
        self.stop(server)
        self.assertLessEqual(set(served), {data for _, data in jobs})
        self.assertNotIn(jobs[0][1], served)
        self.assertIn(jobs[-1][1], served, "the jobs of the undamaged pages come back")

    def test_damaged_legacy_row_is_refused_and_dropped_with_the_option(self):
        self.fill([(b"fn", b"segment-job")])
        conn = sqlite3.connect(self.db)
        conn.execute("INSERT INTO roundhouse_jobs(id, handle, function, unique_key, priority, "
                     "when_to_run, reducer, data, checksum) "
                     "VALUES(5, 'H:old:5', 'fn', x'', 1, 0, x'', 'tampered', 12345)")
        conn.commit()
        conn.close()
        text = self.refused_start()
        self.assertIn("job row 5", text)
        self.assertIn(SKIP_OPTION, text)
        server = self.start_durable(SKIP_OPTION)
        self.assertEqual([d for _, _, d in self.drain(server, b"fn")], [b"segment-job"])
        self.stop(server)


class DamagedWhileRunning(StorageTestCase):
    def test_damaged_segment_never_blocks_later_durable_submits(self):
        server = self.start_durable()
        payloads = [b"busy-%03d-" % i + b"b" * 20 for i in range(100)]
        with server.connect() as client:
            # Pipelined in one write: one group commit, one segment.
            client.send_raw(b"".join(gw.encode(gw.SUBMIT_JOB_BG, b"busy", b"", data)
                                     for data in payloads))
            created = [client.recv_packet() for _ in payloads]
        self.assertTrue(all(p.type == gw.JOB_CREATED for p in created), created[:3])
        handles = {data: p.payload for data, p in zip(payloads, created)}
        victim = payloads[50]

        # The disk goes bad under the running server (through SQLite, as a torn sector would
        # look after the page cache is dropped).
        conn = sqlite3.connect(self.db, timeout=10)
        rows = conn.execute("SELECT id, records FROM roundhouse_job_segments").fetchall()
        for seg, blob in rows:
            at = blob.find(victim)
            if at >= 0:
                blob = bytearray(blob)
                blob[at + 10] ^= 0x20
                conn.execute("UPDATE roundhouse_job_segments SET records = ? WHERE id = ?",
                             (bytes(blob), seg))
        conn.commit()
        conn.close()

        # Finish all but the damaged job and nine others: the segment turns sparse, and the next
        # commits want to compact it. The kept jobs go back to the queue when the worker leaves.
        keep = set(payloads[i] for i in range(0, 100, 10)) | {victim}
        worker = server.connect()
        worker.can_do(b"busy")
        for _ in payloads:
            pkt = worker.request(gw.GRAB_JOB)
            self.assertEqual(pkt.type, gw.JOB_ASSIGN, pkt)
            handle, _, data = pkt.args(3)
            if data not in keep:
                worker.work_complete(handle, b"")
        worker.assert_quiet()
        worker.close()
        with server.connect() as client:
            for i in range(20):
                pkt = client.request(gw.SUBMIT_JOB_BG, b"other-%d" % (i % 3), b"", b"later-%d" % i)
                self.assertEqual(pkt.type, gw.JOB_CREATED,
                                 "durable submit %d after the damage: %r\n%s"
                                 % (i, pkt, server.read_logs()[-2000:]))
        self.assertIn("no longer compacted", server.read_logs())
        self.stop(server)
        text = self.refused_start()
        self.assertIn(handles[victim].decode(), text)
        server = self.start_durable(SKIP_OPTION)
        served = self.drain(server, *[b"other-%d" % i for i in range(3)])
        self.assertEqual(sorted(d for _, _, d in served), sorted(b"later-%d" % i for i in range(20)))
        served = self.drain(server, b"busy")
        self.assertEqual(sorted(d for _, _, d in served), sorted(keep - {victim}))
        self.stop(server)


class FileModes(StorageTestCase):
    def mode(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def test_database_wal_and_shm_are_created_0600(self):
        old = os.umask(0o022)
        try:
            server = self.start_durable()
        finally:
            os.umask(old)
        with server.connect() as client:
            self.submit_bg(client, b"fn", b"secret-ish")
        for suffix in ("", "-wal", "-shm"):
            self.assertEqual(self.mode(self.db + suffix), 0o600, self.db + suffix)
        self.stop(server)

    def test_existing_0644_database_is_restricted_with_a_notice(self):
        conn = sqlite3.connect(self.db)
        conn.execute("CREATE TABLE unrelated(x)")
        conn.commit()
        conn.close()
        os.chmod(self.db, 0o644)
        server = self.start_durable()
        with server.connect() as client:
            self.submit_bg(client, b"fn", b"x")
        for suffix in ("", "-wal", "-shm"):
            self.assertEqual(self.mode(self.db + suffix), 0o600, self.db + suffix)
        self.assertIn("was mode 0644; restricted to 0600", server.read_logs())
        self.stop(server)


if __name__ == "__main__":
    unittest.main()
