"""Jenkins adapters under failure (doc/jenkins.md §1.6, §4.7-4.11, §5, §6 fault injection).

Every row of the §5 failure table is a unit test (test/unit/jenkins/adapter_test.cc, one TEST_CASE
per row, on a fake clock and transport); this suite keeps the rows whose proof needs the real
parts: the HTTP client's errors, the simulator's Jenkins behaviour (303 merging, R10 lookups,
cancelled items, node disconnects), several masters, admin output and restarts with a real
database. Class names follow the rows; rows without a class here (spurious 404, item cancelled by
a person, node offline before or during a build, bad JSON, hung build) are unit-only, their
REST calls and packets exercised by the cases that remain. Plus §4.9 OFFLINE_NODE_WHEN_COMPLETE
(taint, W6 on start / on complete) and a seeded randomized soak. Each scenario asserts the "what the adapter does" column from the client's view
(packets) and the simulator's view (request log, builds, queue), then the invariants
(FailureCase.invariants):

- every job the test submitted got exactly one ending, and nothing after it;
- no executor was double-booked (the simulator's build intervals per executor do not overlap);
- reservations did not leak: `jenkins list` IDLE/TOTAL back to the expected values,
  BUILDS_IN_FLIGHT 0, and `jenkins show` state.builds / state.reservations 0.

Short timings (unhealthy_after=2, inflight_grace_s=2, queue_wait_timeout_s=1, polls 0.1-0.2 s);
every wait is a condition with a deadline, no duration is asserted.
"""

import json
import os
import random
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gearman_wire as gw  # noqa: E402
from test_jenkins import (JenkinsTestCase, make_world, jenkins_flag, triggers_for,  # noqa: E402
                          builds_for, triggers, uniq, WAIT)

POLL = 0.2
FF = {  # fast failure settings (doc/jenkins.md §4.1 keys)
    "poll.computers_s": POLL,
    "poll.computers_idle_s": POLL,
    "poll.queue_item_s": 0.1,
    "poll.build_s": POLL,
    "poll.build_max_s": POLL,
    "poll.health_s": POLL,
    "poll.jobs_s": 1,
    "unhealthy_after": 2,
    "inflight_grace_s": 2,
    "node_lost_window_s": 5,
    "queue_wait_timeout_s": 1,
    "contention_cooldown_s": 1,
    "http.timeout_s": 1,
    "http.connect_timeout_s": 1,
    "meta_timeout_s": 3,
}
ENDINGS = (gw.WORK_COMPLETE, gw.WORK_FAIL, gw.WORK_EXCEPTION)
OFFLINE = b'{"OFFLINE_NODE_WHEN_COMPLETE":"true"}'


def job(name, label="lin", duration=None, concurrent=True, **extra):
    spec = {"name": name, "label": label, "concurrentBuild": concurrent,
            "build": {"duration": duration}}
    spec.update(extra)
    return spec


def node(name, executors=1, labels=("lin",)):
    return {"name": name, "labels": list(labels), "numExecutors": executors}


def posts(sim, path_pred):
    return [e for e in sim.requests() if e["method"] == "POST" and path_pred(e["path"])]


def cancel_items(sim):
    return posts(sim, lambda p: p == "/queue/cancelItem")


def w6(sim, node_name):
    return posts(sim, lambda p: p == "/computer/%s/changeOfflineCause" % node_name)


def stops(sim, job_name):
    return posts(sim, lambda p: p.startswith("/job/%s/" % job_name) and
                 p.endswith(("/stop", "/term", "/kill")))


def queue_items(sim, unique=None):
    out = []
    with sim.world.lock:
        sim.world.tick()
        for item in sim.world.queue.values():
            params = {k: v for k, v in item.params}
            if unique is None or params.get("GEARMAN_UNIQUE") == unique:
                out.append({"id": item.id, "state": item.state, "cancelled": item.cancelled,
                            "params": params, "job": item.job.full_name})
    return out


def set_job(sim, name, **attrs):
    with sim.world.lock:
        j = sim.world.job(name)
        for k, v in attrs.items():
            setattr(j, k, v)
        sim.world.tick()


def node_state(sim, name):
    with sim.world.lock:
        n = sim.world.node(name)
        return None if n is None else {"temp_offline": n.temp_offline, "connected": n.connected}


def double_booked(sim):
    """Overlapping [start, end) intervals on one (node, executor)."""
    per = {}
    for b in sim.builds():
        if b["executor"] is None:
            continue
        per.setdefault((b["node"], b["executor"]), []).append(b)
    bad = []
    for key, builds in per.items():
        builds.sort(key=lambda b: (b["start"], b["number"]))
        for prev, cur in zip(builds, builds[1:]):
            if prev["end"] is None or prev["end"] > cur["start"]:
                bad.append((key, prev["job"], prev["number"], cur["job"], cur["number"]))
    return bad


class Tracked:
    """One submitted job on its own client connection, with every packet received for it."""

    def __init__(self, conn, handle, unique, func):
        self.conn, self.handle, self.unique, self.func = conn, handle, unique, func
        self.packets = []
        self.abandoned = False  # the client went away on purpose: no ending expected

    def endings(self):
        return [p for p in self.packets if p.type in ENDINGS]


class FailureCase(JenkinsTestCase):
    def setUp(self):
        super().setUp()
        self.tracked = []

    def start_rh(self, masters=None, args=(), verbose="INFO", **overrides):
        kv = dict(FF)
        kv.update(overrides)
        server = super().start_rh(masters, args, verbose, **kv)
        for name in (masters if masters is not None else self.sims):
            self.wait_healthy(name)
        return server

    # -- client side ------------------------------------------------------------------------

    def submit_job(self, func, unique=None, data=b"", exceptions=False):
        conn = self.client(exceptions=exceptions)
        unique = uniq() if unique is None else unique
        func = func if isinstance(func, bytes) else func.encode()
        handle = self.submit(conn, func, unique.encode(), data)
        t = Tracked(conn, handle, unique, func)
        self.tracked.append(t)
        return t

    def next_packet(self, t, timeout=WAIT):
        pkt = t.conn.recv_packet(timeout)
        t.packets.append(pkt)
        self.assertTrue(pkt.payload.startswith(t.handle + b"\0") or pkt.payload == t.handle,
                        pkt)
        return pkt

    def expect_packet(self, t, ptype, timeout=WAIT):
        pkt = self.next_packet(t, timeout)
        self.assertEqual(pkt.name, gw.NAMES[ptype], "%s: got %r" % (t.func, pkt))
        return pkt.payload[len(t.handle) + 1:]

    def expect_start(self, t, timeout=WAIT):
        start = json.loads(self.expect_packet(t, gw.WORK_DATA, timeout))
        self.expect_packet(t, gw.WORK_STATUS)
        return start

    def expect_result(self, t, result=None, timeout=WAIT):
        data = self.expect_packet(t, gw.WORK_DATA, timeout)
        done = self.expect_packet(t, gw.WORK_COMPLETE)
        self.assertEqual(data, done)
        final = json.loads(done)
        if result is not None:
            self.assertEqual(final["result"], result, final)
        return final

    def expect_fail(self, t, timeout=WAIT):
        self.expect_packet(t, gw.WORK_FAIL, timeout)

    def assert_silent(self, t, wait):
        """No packet for t within `wait` seconds."""
        try:
            pkt = t.conn.recv_packet(wait)
        except gw.ReplyTimeout:
            return
        t.packets.append(pkt)
        self.fail("unexpected packet for %s: %r" % (t.func, pkt))

    def master_state(self, name):
        lines = self.admin("jenkins show %s" % name).decode().splitlines()
        return dict(line.split(" ", 1) for line in lines if " " in line)

    def wait_health(self, name, health, timeout=WAIT):
        self.wait_until(lambda: (self.list_fields(name) or ["", ""])[1] == health, timeout,
                        "master %s %s" % (name, health))

    def wait_polls(self, sim, path, count=2):
        """Until the adapter has sent `count` more GETs of `path` (its view caught up)."""
        mark = time.time()
        self.wait_until(lambda: len([e for e in sim.requests() if e["method"] == "GET" and
                                     e["path"] == path and e["wall"] > mark]) >= count,
                        WAIT, "%d polls of %s" % (count, path))

    def finish_running(self, sim, result="SUCCESS"):
        for b in sim.builds():
            if b["end"] is None:
                sim.world.finish_build(b["job"], b["number"], result)

    # -- invariants -------------------------------------------------------------------------

    def invariants(self, expected):
        """expected: {master: (idle, total)} once everything has ended."""
        # 1. exactly one ending per job, nothing after it
        time.sleep(POLL)
        for t in self.tracked:
            if t.abandoned:
                continue
            while True:
                try:
                    t.packets.append(t.conn.recv_packet(0.01))
                except (gw.ReplyTimeout, gw.ConnectionClosed):
                    break
            ends = t.endings()
            self.assertEqual(len(ends), 1, "%s %s: endings %r" % (t.func, t.unique, t.packets))
            self.assertIs(t.packets[-1], ends[0], "packets after the ending: %r" % t.packets)
            datas = [p for p in t.packets if p.type == gw.WORK_DATA]
            if ends[0].type != gw.WORK_COMPLETE:  # no failure after a final WORK_DATA
                self.assertFalse([d for d in datas if b'"result":' in d.payload], t.packets)
        # 2. no executor double-booked
        for name, sim in self.sims.items():
            self.assertEqual(double_booked(sim), [], "double-booked executors on %s" % name)
        # 3. reservations do not leak
        for name, (idle, total) in expected.items():
            def back(name=name, idle=idle, total=total):
                f = self.list_fields(name) or []
                if f[4:7] != [str(idle), str(total), "0"]:
                    return False
                st = self.master_state(name)
                return st.get("state.builds") == "0" and st.get("state.reservations") == "0"
            try:
                self.wait_until(back, WAIT, "master %s back to idle=%d total=%d" % (
                    name, idle, total))
            except AssertionError:
                raise AssertionError("%s: jenkins list %r; show %r" % (
                    name, self.list_fields(name), self.master_state(name)))


# =========================================================================== §5 failure table

class MasterUnreachable(FailureCase):
    """Row "master unreachable": SUSPECT→DOWN, no dispatch, in-flight kept for inflight_grace_s,
    then WORK_FAIL (started) / back to our queue (queued)."""

    def test_down_beyond_grace_fails_started_build_and_requeues_queued_item(self):
        sim = self.start_sim("m1", make_world([node("n1", 2)], [
            job("run"), job("blk", blockedWhy="Waiting for lock")]))
        self.start_rh(queue_wait_timeout_s=60)
        self.wait_workers(["build:run", "build:blk"])
        a = self.submit_job("build:run")
        self.expect_start(a)
        b = self.submit_job("build:blk")
        self.wait_until(lambda: [i for i in queue_items(sim, b.unique) if i["state"] == "blocked"],
                        WAIT, "b's item blocked")
        sim.add_fault("status:503")
        self.wait_health("m1", "DOWN")
        # Names stay listed, registrations go.
        self.wait_until(lambda: self.status().get("build:run", (0, 0, -1))[2] == 0, WAIT,
                        "build:run listed with 0 workers")
        c = self.submit_job("build:run")
        self.expect_fail(a)  # beyond inflight_grace_s
        self.wait_until(lambda: self.get_status(b.handle)[2] == b"0", WAIT,
                        "b back in our queue (running 0)")
        self.assert_silent(b, 0.1)
        self.assertEqual(triggers_for(sim, c.unique), [], "dispatched to a DOWN master")
        old_item = [i for i in queue_items(sim, b.unique)][0]["id"]
        sim.clear_faults()
        self.wait_healthy("m1")
        # The abandoned item is cancelled (orphan_policy abort) before b is triggered again;
        # unblocking only then keeps the old item from starting a build of its own.
        self.wait_until(lambda: [i for i in queue_items(sim, b.unique)
                                 if i["id"] == old_item and i["cancelled"]], WAIT,
                        "the abandoned item %d cancelled" % old_item)
        set_job(sim, "blk", blocked_why=None)
        try:
            self.expect_start(b)
        except gw.ReplyTimeout:
            self.fail("b never started again; its builds %r, items %r, triggers %d" % (
                builds_for(sim, b.unique), queue_items(sim, b.unique),
                len(triggers_for(sim, b.unique))))
        start_c = self.expect_start(c)
        self.wait_until(lambda: len([x for x in builds_for(sim, b.unique)]) >= 1, WAIT, "b built")
        time.sleep(4 * POLL)
        self.assertEqual(len(builds_for(sim, b.unique)), 1, "b's build ran twice")
        self.finish_running(sim)
        self.expect_result(b, "SUCCESS")
        self.expect_result(c, "SUCCESS")
        self.assertEqual(start_c["manager"], "m1")
        self.invariants({"m1": (2, 2)})

    def test_down_within_grace_build_continues(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("run")]))
        self.start_rh(inflight_grace_s=8)
        self.wait_workers(["build:run"])
        a = self.submit_job("build:run")
        start = self.expect_start(a)
        sim.add_fault("status:503")
        self.wait_health("m1", "DOWN")
        sim.clear_faults()
        self.wait_healthy("m1")
        sim.world.finish_build("run", start["number"], "UNSTABLE")
        self.expect_result(a, "UNSTABLE")
        self.invariants({"m1": (1, 1)})

    def test_refused_connections(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("run", duration=50)]))
        self.start_rh()
        self.wait_workers(["build:run"])
        sim.add_fault("refuse", refuse_ms=200)  # every request refused until cleared
        self.wait_health("m1", "DOWN")
        a = self.submit_job("build:run")
        time.sleep(3 * POLL)
        self.assertEqual(triggers_for(sim, a.unique), [])
        sim.clear_faults()
        self.wait_healthy("m1", timeout=WAIT)
        self.expect_start(a)
        self.expect_result(a, "SUCCESS")
        self.invariants({"m1": (1, 1)})


    def test_timeouts(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("run", duration=50)]))
        self.start_rh()
        self.wait_workers(["build:run"])
        sim.add_fault("hang")  # no answer: the adapter's http.timeout_s (1 s) expires
        self.wait_health("m1", "DOWN")
        a = self.submit_job("build:run")
        time.sleep(3 * POLL)
        self.assertEqual(triggers_for(sim, a.unique), [])
        sim.clear_faults()
        self.wait_healthy("m1")
        self.expect_start(a)
        self.expect_result(a, "SUCCESS")
        self.invariants({"m1": (1, 1)})


class AuthRejected(FailureCase):
    """Row "401/403 from master": DOWN immediately; jobs stay queued or go elsewhere."""

    def test_403_marks_master_down_and_jobs_go_elsewhere(self):
        s1 = self.start_sim("m1", make_world([node("n1")], [job("j", duration=50)]))
        self.start_sim("m2", make_world([node("k1")], [job("j", duration=50)]))
        self.start_rh(unhealthy_after=1000)
        self.wait_workers(["build:j"])
        s1.add_fault("status:403", method="GET")
        self.wait_health("m1", "DOWN")
        t0 = len(triggers(s1))
        for _ in range(3):
            t = self.submit_job("build:j")
            self.assertEqual(self.expect_start(t)["manager"], "m2")
            self.expect_result(t, "SUCCESS")
        self.assertEqual(len(triggers(s1)), t0, "triggered on a DOWN master")
        s1.clear_faults()
        self.wait_healthy("m1")
        self.invariants({"m1": (1, 1), "m2": (1, 1)})


class ControllerRestarted(FailureCase):
    """Row "controller restarted": new instance id → reconcile; ABORTED → restart_policy;
    queued items kept. restart_policy = report is a unit test (adapter_endings_test.cc)."""

    def test_aborted_across_restart_is_work_fail(self):
        sim = self.start_sim("m1", make_world([node("n1", 2)], [
            job("run"), job("blk", blockedWhy="Waiting for lock")]))
        self.start_rh(queue_wait_timeout_s=60, restart_policy="retry")
        self.wait_workers(["build:run", "build:blk"])
        a = self.submit_job("build:run")
        self.expect_start(a)
        b = self.submit_job("build:blk")
        item = self.wait_until(lambda: [i for i in queue_items(sim, b.unique)
                                        if i["state"] == "blocked"], WAIT, "b blocked")[0]
        sim.restart(refuse_ms=400, unavailable_ms=400)
        self.expect_fail(a)
        self.wait_healthy("m1")
        set_job(sim, "blk", blocked_why=None)
        self.expect_start(b)
        (build,) = builds_for(sim, b.unique)
        self.assertEqual(build["queueId"], item["id"], "queued item not kept")
        self.assertEqual(len(triggers_for(sim, b.unique)), 1)
        self.assertEqual(len(triggers_for(sim, a.unique)), 1)
        self.finish_running(sim)
        self.expect_result(b, "SUCCESS")
        self.invariants({"m1": (2, 2)})


class QuietingDown(FailureCase):
    """Row "Jenkins quieting down": capacity 0; Jenkins-queued items re-routed on timeout."""

    def test_quiet_down(self):
        s1 = self.start_sim("m1", make_world([node("n1")], [job("q")]))
        s2 = self.start_sim("m2", make_world([node("k1")], [job("q")]))
        s2.world.take_executor("k1", 0)  # the first dispatch must go to m1
        self.start_rh()
        self.wait_workers(["build:q"])
        self.wait_idle_executors("m2", 0)
        s1.add_fault("delay:600", method="POST", path="/job/q/buildWithParameters", count=1)
        a = self.submit_job("build:q")
        self.wait_until(lambda: triggers_for(s1, a.unique), WAIT, "the trigger on m1")
        s1.world.set_quiet_down(True)  # before the item exists: it waits in Jenkins' queue
        self.wait_until(lambda: self.master_state("m1").get("state.quieting_down") == "true",
                        WAIT, "m1 seen quieting down")
        self.wait_until(lambda: cancel_items(s1), WAIT, "W3 on m1 after the queue-wait timeout")
        s2.world.release_executor("k1", 0)
        start = self.expect_start(a)
        self.assertEqual(start["manager"], "m2")
        self.assertEqual(builds_for(s1, a.unique), [])
        # While quieting down m1 gets nothing new, and its functions stay listed.
        self.assertIn("build:q", self.status())
        b = self.submit_job("build:q")
        time.sleep(4 * POLL)
        self.assertEqual(triggers_for(s1, b.unique), [])
        s1.world.set_quiet_down(False)
        self.assertEqual(self.expect_start(b)["manager"], "m1")
        self.finish_running(s1)
        self.finish_running(s2)
        self.expect_result(a, "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.invariants({"m1": (1, 1), "m2": (1, 1)})


class QueueItemWaits(FailureCase):
    """Row "queue item waits (foreign build took the executor)": W3 → invisible requeue →
    node cooldown. The same path serves the row "node temporarily offline before start"."""

    def test_foreign_build_takes_the_executor(self):
        sim = self.start_sim("m1", make_world([node("n1"), node("n2")], [job("w")]))
        sim.world.take_executor("n2", 0)
        self.start_rh()
        self.wait_workers(["build:w"])
        self.wait_idle_executors("m1", 1)
        sim.add_fault("delay:500", method="POST", path="/job/w/buildWithParameters", count=1)
        a = self.submit_job("build:w")
        self.wait_until(lambda: triggers_for(sim, a.unique), WAIT, "the trigger")
        self.assertEqual(triggers_for(sim, a.unique)[0][1]["GEARMAN_NODE"], "n1")
        sim.world.take_executor("n1", 0)  # a foreign build wins the race
        self.wait_until(lambda: cancel_items(sim), WAIT, "W3 after the queue-wait timeout")
        sim.world.release_executor("n2", 0)
        start = self.expect_start(a)
        self.assertEqual(start["node_name"], "n2")
        self.assertEqual([b["node"] for b in builds_for(sim, a.unique)], ["n2"])
        self.assertEqual([f["GEARMAN_NODE"] for _, f in triggers_for(sim, a.unique)],
                         ["n1", "n2"])
        self.assertTrue(all(i["cancelled"] for i in queue_items(sim, a.unique)
                            if i["params"]["GEARMAN_NODE"] == "n1"))
        sim.world.release_executor("n1", 0)
        self.finish_running(sim)
        self.expect_result(a, "SUCCESS")
        self.invariants({"m1": (2, 2)})


class LeftItemExpired(FailureCase):
    """Row "LeftItem expired before seen": R10 lookup by queueId."""

    def test_r10_lookup_by_queue_id(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("le", duration=300)],
                                              leftItemTtl=0))
        self.start_rh()
        self.wait_workers(["build:le"])
        a = self.submit_job("build:le")
        start = self.expect_start(a)
        (build,) = builds_for(sim, a.unique)
        self.assertEqual(start["number"], build["number"])
        self.expect_result(a, "SUCCESS")
        r10 = [e for e in sim.requests() if e["method"] == "GET" and e["path"] ==
               "/job/le/api/json" and "queueId" in e["query"]]
        self.assertTrue(r10, "no R10 lookup")
        self.assertEqual(len(triggers_for(sim, a.unique)), 1)
        self.invariants({"m1": (1, 1)})


class MergedItem(FailureCase):
    """Row "identical item merged (303)": never shared; requeue; warn."""

    def test_303_is_never_shared(self):
        sim = self.start_sim("m1", make_world([node("n1", 2)], [
            job("nu", duration=200, blockedWhy="Waiting for lock", std=False,
                parameters=[{"type": "node", "name": "GEARMAN_NODE"}])]))
        self.start_rh(queue_wait_timeout_s=60)
        self.wait_workers(["build:nu"])
        with sim.world.lock:  # someone else's identical item
            _, foreign = sim.world.trigger(sim.world.job("nu"), {"GEARMAN_NODE": "n1"}, True, 0)
        a = self.submit_job("build:nu")
        self.wait_until(lambda: [e for e, _ in triggers(sim)], WAIT, "the trigger (303)")
        self.assert_silent(a, 4 * POLL)
        set_job(sim, "nu", blocked_why=None)
        start = self.expect_start(a)
        builds = sim.builds()
        foreign_build = [b for b in builds if b["queueId"] == foreign.id]
        self.assertEqual(len(foreign_build), 1)
        self.assertNotEqual(start["number"], foreign_build[0]["number"], "merged item shared")
        self.assertGreaterEqual(len(triggers(sim)), 2)
        self.expect_result(a, "SUCCESS")
        self.assertEqual(len(sim.builds()), 2)
        self.invariants({"m1": (2, 2)})


class TriggerResponseLost(FailureCase):
    """Row "trigger response lost": search by unique_param; adopt or redispatch. Here the build
    has already started when the adapter searches (found through R10); adoption of an item
    still in the queue (R8) and redispatch when nothing matches are unit tests
    (adapter_test.cc)."""

    def test_lost_response_build_started_is_adopted(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("lt", duration=300)]))
        self.start_rh(queue_wait_timeout_s=60)
        self.wait_workers(["build:lt"])
        sim.add_fault("lost_response", method="POST", path="/job/lt/buildWithParameters",
                      count=1)
        a = self.submit_job("build:lt")
        self.wait_until(lambda: triggers_for(sim, a.unique), WAIT, "the trigger")
        start = self.expect_start(a)
        self.assertEqual(len(triggers_for(sim, a.unique)), 1, "triggered twice")
        (build,) = builds_for(sim, a.unique)
        self.assertEqual(start["number"], build["number"])
        self.finish_running(sim)
        self.expect_result(a, "SUCCESS")
        self.assertEqual(len(builds_for(sim, a.unique)), 1)
        self.invariants({"m1": (1, 1)})


class JobGoneAfterClaim(FailureCase):
    """Row "job disabled/deleted after claim": 409/404 → refresh, put back, re-route. The 409 of
    a disabled job is a unit test (adapter_test.cc); here the job is deleted (404) and the
    refreshed view sends the job to the other master."""

    def test_deleted_after_claim_404(self):
        s1 = self.start_sim("m1", make_world([node("n1")], [job("g", duration=100)]))
        s2 = self.start_sim("m2", make_world([node("k1")], [job("g", duration=100)]))
        s2.world.take_executor("k1", 0)
        self.start_rh()
        self.wait_workers(["build:g"])
        self.wait_idle_executors("m2", 0)
        s1.add_fault("delay:500", method="POST", path="/job/g/buildWithParameters", count=1)
        a = self.submit_job("build:g")
        self.wait_until(lambda: triggers_for(s1, a.unique), WAIT, "the trigger on m1")
        with s1.world.lock:
            j = s1.world.job("g")
            del s1.world.jobs[j.full_name]
        s2.world.release_executor("k1", 0)
        start = self.expect_start(a, timeout=40)
        self.assertEqual(start["manager"], "m2")
        self.expect_result(a, "SUCCESS")
        self.assertEqual(builds_for(s1, a.unique), [])
        self.assertEqual(len(triggers_for(s1, a.unique)), 1)
        self.invariants({"m1": (1, 1), "m2": (1, 1)})


class NonConcurrentRunning(FailureCase):
    """Row "non-concurrent job already running": not dispatched (D6). Our own running build is
    a unit test (adapter_test.cc); a foreign one is seen only through the job list."""

    def test_not_dispatched_while_a_foreign_build_runs(self):
        sim = self.start_sim("m1", make_world([node("n1", 2)], [job("nc", concurrent=False)]))
        self.start_rh()
        self.wait_workers(["build:nc"])
        # A build started by someone else (seen through the job list: lastBuild.building).
        with sim.world.lock:
            sim.world.trigger(sim.world.job("nc"), {"GEARMAN_UNIQUE": "foreign"}, True, 0)
        fb = self.wait_build(sim, "foreign")
        mark = time.time()
        self.wait_until(lambda: len([e for e in sim.requests() if e["path"] == "/api/json"
                                     and "jobs" in e["query"] and e["wall"] > mark]) >= 2,
                        WAIT, "two job-list polls")
        c = self.submit_job("build:nc")
        time.sleep(4 * POLL)
        self.assertEqual(triggers_for(sim, c.unique), [], "dispatched while a build runs")
        sim.world.finish_build("nc", fb["number"], "SUCCESS")
        sc = self.expect_start(c)
        sim.world.finish_build("nc", sc["number"], "SUCCESS")
        self.expect_result(c, "SUCCESS")
        self.invariants({"m1": (2, 2)})


class NodeDisconnected(FailureCase):
    """Row "node disconnected during build": node_lost_policy (default retry). The other
    results and node_lost_policy = report are unit tests (adapter_endings_test.cc)."""

    def test_disconnect_aborted_is_work_fail(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("nd")]))
        self.start_rh(node_lost_policy="retry")
        self.wait_workers(["build:nd"])
        a = self.submit_job("build:nd")
        self.expect_start(a)
        sim.world.disconnect("n1", "ABORTED", latency_ms=1000)
        self.expect_fail(a)
        sim.world.connect("n1")
        b = self.submit_job("build:nd")
        sb = self.expect_start(b)
        sim.world.finish_build("nd", sb["number"], "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.invariants({"m1": (1, 1)})


class ExecutorsAndLabelsChanged(FailureCase):
    """Row "executor count or labels changed": next computers poll."""

    def test_changes_apply_at_next_poll(self):
        sim = self.start_sim("m1", make_world([node("n1", 1)], [job("ec", label="lin || win")]))
        self.start_rh()
        self.wait_workers(["build:ec", "build:ec:lin"])
        a = self.submit_job("build:ec")
        sa = self.expect_start(a)
        b = self.submit_job("build:ec")
        self.assert_silent(b, 3 * POLL)
        sim.world.set_node("n1", num_executors=2)
        sb = self.expect_start(b)
        self.assertEqual(sb["worker"], "n1_exec-1")
        sim.world.set_node("n1", labels=["win"])
        self.wait_until(lambda: self.status().get("build:ec:win", (0, 0, 0))[2] == 2 and
                        self.status().get("build:ec:lin", (0, 0, 0))[2] == 0, WAIT,
                        "labels re-registered")
        sim.world.finish_build("ec", sa["number"], "SUCCESS")
        sim.world.finish_build("ec", sb["number"], "SUCCESS")
        self.expect_result(a, "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.invariants({"m1": (2, 2)})


class OfflineWhenComplete(FailureCase):
    """§4.9 on start and on complete. The rows "OFFLINE_NODE_WHEN_COMPLETE POST fails" (retry,
    taint holds) and "single-use node deleted after the build" (404 counts as done) are unit tests
    (adapter_test.cc); a failing W6 is also exercised by ServerRestartsMidBuild."""

    def test_on_start_taints_and_posts_w6_while_running(self):
        sim = self.start_sim("m1", make_world([node("n1", 2), node("n2")], [job("ow")]))
        sim.world.take_executor("n2", 0)
        self.start_rh()
        self.wait_workers(["build:ow"])
        self.wait_idle_executors("m1", 2)
        # W6 answered late: the node stays online for a while, but is tainted.
        sim.add_fault("delay:1500", method="POST", path="/computer/n1/changeOfflineCause",
                      count=1)
        a = self.submit_job("build:ow", data=OFFLINE)
        sa = self.expect_start(a)
        self.assertEqual(sa["node_name"], "n1")
        b = self.submit_job("build:ow")
        self.wait_until(lambda: w6(sim, "n1"), WAIT, "W6 while the build runs")
        self.assertIsNone(builds_for(sim, a.unique)[0]["end"])
        entry = w6(sim, "n1")[0]
        self.assertIn("offlineMessage=", entry["query"] + "&" + entry["body"])
        time.sleep(4 * POLL)
        self.assertEqual(triggers_for(sim, b.unique), [], "dispatched to a tainted node")
        self.wait_until(lambda: node_state(sim, "n1")["temp_offline"], WAIT, "n1 offline")
        sim.world.finish_build("ow", sa["number"], "SUCCESS")
        self.expect_result(a, "SUCCESS")
        self.assertEqual(len(w6(sim, "n1")), 1)
        time.sleep(4 * POLL)
        self.assertEqual(triggers_for(sim, b.unique), [], "dispatched to an offline node")
        self.wait_polls(sim, "/computer/api/json")  # offline seen
        sim.world.set_offline("n1", offline=False)  # back online: taint released
        sb = self.expect_start(b)
        self.assertEqual(sb["node_name"], "n1")
        sim.world.finish_build("ow", sb["number"], "SUCCESS")
        self.expect_result(b, "SUCCESS")
        sim.world.release_executor("n2", 0)
        self.invariants({"m1": (3, 3)})

    def test_pinned_offline_job_waits_for_a_whole_idle_node(self):
        sim = self.start_sim("m1", make_world([node("n1", 2)], [job("ow")]))
        self.start_rh()
        self.wait_workers(["build:ow"])
        a = self.submit_job("build:ow")
        sa = self.expect_start(a)
        b = self.submit_job("build:ow", data=OFFLINE)
        time.sleep(4 * POLL)
        self.assertEqual(triggers_for(sim, b.unique), [], "claimed a partly busy node")
        sim.world.finish_build("ow", sa["number"], "SUCCESS")
        self.expect_result(a, "SUCCESS")
        sb = self.expect_start(b)
        sim.world.finish_build("ow", sb["number"], "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.wait_until(lambda: node_state(sim, "n1")["temp_offline"], WAIT, "n1 offline")
        self.wait_polls(sim, "/computer/api/json")  # offline seen
        sim.world.set_offline("n1", offline=False)
        self.invariants({"m1": (2, 2)})

    def test_on_complete_posts_w6_before_the_final_packets(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("oc")]))
        self.start_rh(offline_timing="on-complete")
        self.wait_workers(["build:oc"])
        a = self.submit_job("build:oc", data=OFFLINE)
        sa = self.expect_start(a)
        time.sleep(5 * POLL)
        self.assertEqual(w6(sim, "n1"), [], "W6 before the build ended")
        sim.world.finish_build("oc", sa["number"], "FAILURE")
        self.expect_result(a, "FAILURE")
        received = time.time()
        (entry,) = w6(sim, "n1")
        self.assertLess(entry["wall"], received)
        self.assertTrue(node_state(sim, "n1")["temp_offline"])
        self.wait_polls(sim, "/computer/api/json")  # offline seen
        sim.world.set_offline("n1", offline=False)
        b = self.submit_job("build:oc")
        sb = self.expect_start(b)
        sim.world.finish_build("oc", sb["number"], "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.invariants({"m1": (1, 1)})


class CancelAfterGrab(FailureCase):
    """Row "`cancel job` after grab, before start": core answers OK; adapter W3 (or W4 if it
    just started). The plain W3 case is CancelJob in test_jenkins.py."""

    def test_cancel_just_started_stops_the_build(self):
        sim = self.start_sim("m1", make_world([node("n1")], [
            job("blk", blockedWhy="Waiting for lock")]))
        self.start_rh(queue_wait_timeout_s=60)
        self.wait_workers(["build:blk"])
        a = self.submit_job("build:blk")
        self.wait_until(lambda: [i for i in queue_items(sim, a.unique)
                                 if i["state"] == "blocked"], WAIT, "blocked")
        sim.add_fault("delay:500", method="POST", path="/queue/cancelItem", count=1)
        self.assertEqual(self.admin(b"cancel job " + a.handle), b"OK\r\n")
        self.expect_fail(a)
        self.wait_until(lambda: cancel_items(sim), WAIT, "W3")
        set_job(sim, "blk", blocked_why=None)  # starts before the W3 is handled
        self.wait_until(lambda: [b for b in builds_for(sim, a.unique)
                                 if b["result"] == "ABORTED"], WAIT, "the build stopped (W4)")
        self.assertTrue(stops(sim, "blk"))
        self.invariants({"m1": (1, 1)})


class StopEdgeCases(FailureCase):
    """Row "`stop:` while master DOWN": answered once the master is back. The error after
    meta_timeout_s is a unit test (adapter_test.cc); `stop:` for a finished / unknown build is
    Meta in test_jenkins.py."""

    def test_stop_while_down_completes_when_the_master_returns(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("st")]))
        self.start_rh(meta_timeout_s=10, inflight_grace_s=20)
        self.wait_workers(["build:st", "stop:m1"])
        a = self.submit_job("build:st")
        sa = self.expect_start(a)
        sim.add_fault("status:503")
        self.wait_health("m1", "DOWN")
        conn = self.client(exceptions=True)
        handle = self.submit(conn, b"stop:m1", b"",
                             json.dumps({"name": "st", "number": sa["number"]}).encode())
        time.sleep(3 * POLL)
        sim.clear_faults()
        pkt = conn.recv_packet(WAIT)
        self.assertEqual((pkt.type, pkt.payload), (gw.WORK_COMPLETE, handle + b"\0"))
        self.expect_result(a, "ABORTED")
        self.invariants({"m1": (1, 1)})


class ClientDisconnects(FailureCase):
    """Row "Gearman client disconnects mid-build": re-adoption window, then orphan_policy
    (default abort)."""

    def test_orphan_is_stopped(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("cd")]))
        self.start_rh(resume_window_s=1)
        self.wait_workers(["build:cd"])
        a = self.submit_job("build:cd")
        sa = self.expect_start(a)
        a.conn.close()
        a.abandoned = True
        self.wait_until(lambda: builds_for(sim, a.unique)[0]["result"] == "ABORTED", WAIT,
                        "the orphaned build stopped")
        self.assertTrue(stops(sim, "cd"))
        self.assertEqual(builds_for(sim, a.unique)[0]["number"], sa["number"])
        self.invariants({"m1": (1, 1)})

    def test_resubmitted_within_window_is_readopted(self):
        sim = self.start_sim("m1", make_world([node("n1")], [job("cd")]))
        self.start_rh(resume_window_s=30)
        self.wait_workers(["build:cd"])
        a = self.submit_job("build:cd")
        sa = self.expect_start(a)
        a.conn.close()
        a.abandoned = True
        b = self.submit_job("build:cd", unique=a.unique)
        sb = self.expect_start(b)
        self.assertEqual(sb["number"], sa["number"], "not re-adopted; builds %r; stops %r" % (
            builds_for(sim, a.unique), [e["path"] for e in stops(sim, "cd")]))
        sim.world.finish_build("cd", sa["number"], "SUCCESS")
        self.expect_result(b, "SUCCESS")
        self.assertEqual(len(triggers_for(sim, a.unique)), 1)
        self.invariants({"m1": (1, 1)})


class ServerRestartsMidBuild(FailureCase):
    """Row "our server restarts mid-build": journal reconcile (§4.11); kill -9. Resubmission
    after kill -9 is Journal in test_jenkins.py."""

    def start_durable(self, db, **overrides):
        kv = dict(FF)
        kv.update(overrides)
        flags = jenkins_flag("m1", self.sims["m1"], **kv)
        self.server = self.start_server("-q", "libsqlite3", "--libsqlite3-db", db, *flags,
                                        use_default_args=False)
        self.wait_healthy("m1")

    def test_pending_offline_action_survives_kill_9(self):
        # §4.9 O4 / §4.11 J6: a W6 that has not succeeded yet is journalled and re-applied by
        # the next process.
        db = os.path.join(tempfile.mkdtemp(prefix="rh-fail-"), "q.db")
        sim = self.start_sim("m1", make_world([node("n1")], [job("ob")]))
        sim.add_fault("status:500", method="POST", path="/computer/n1/changeOfflineCause")
        self.start_durable(db)
        unique = uniq()
        with self.client() as conn:
            self.submit(conn, b"build:ob", unique.encode(), OFFLINE, gw.SUBMIT_JOB_BG)
        build = self.wait_build(sim, unique)
        self.wait_until(lambda: w6(sim, "n1"), WAIT, "a first (failing) W6")
        self.server.proc.kill()
        self.server.stop()
        sim.clear_faults()
        before = len(w6(sim, "n1"))
        self.start_durable(db)
        self.wait_until(lambda: len(w6(sim, "n1")) > before and
                        node_state(sim, "n1")["temp_offline"], WAIT,
                        "the W6 re-applied after the restart")
        sim.world.finish_build("ob", build["number"], "SUCCESS")
        self.wait_until(lambda: self.status().get("build:ob", (0, 0, 0))[0] == 0, WAIT,
                        "the background job to end")
        self.assertEqual(len(triggers_for(sim, unique)), 1)
        self.wait_polls(sim, "/computer/api/json")
        sim.world.set_offline("n1", offline=False)
        self.invariants({"m1": (1, 1)})


# ========================================================================= randomized soak

SOAK_SECONDS = 12.0   # fault phase; the drain afterwards is bounded by SOAK_DRAIN
SOAK_DRAIN = 45.0
SOAK_WINDOW = 10      # jobs the Zuul-like client keeps open


class SoakClient:
    """Zuul-like: one connection, `exceptions` on, SUBMIT_JOB with 32-hex uniques; after the
    server dies it reconnects and resubmits every open job with the same function and unique
    (what Zuul does for a lost connection), so each unique must end exactly once."""

    def __init__(self, test):
        self.test = test
        self.jobs = {}          # unique -> {"func", "handles", "packets", "ends"}
        self.by_handle = {}
        self.awaiting = []      # uniques waiting for JOB_CREATED, in order
        self.conn = None
        self.connect()

    def connect(self):
        self.conn = self.test.client(exceptions=True)
        self.awaiting = []

    def open_jobs(self):
        return [u for u, j in self.jobs.items() if not j["ends"]]

    def submit(self, func, unique=None):
        unique = unique or uniq()
        j = self.jobs.setdefault(unique, {"func": func, "handles": [], "packets": [], "ends": []})
        self.conn.send(gw.SUBMIT_JOB, func.encode(), unique.encode(), b"")
        self.awaiting.append(unique)
        return unique

    def pump(self, wait=0.02):
        deadline = time.monotonic() + wait
        while True:
            try:
                pkt = self.conn.recv_packet(max(0.005, deadline - time.monotonic()))
            except gw.ReplyTimeout:
                return
            self.on_packet(pkt)

    def on_packet(self, pkt):
        if pkt.type == gw.JOB_CREATED:
            unique = self.awaiting.pop(0)
            self.jobs[unique]["handles"].append(pkt.payload)
            self.by_handle[pkt.payload] = unique
            return
        handle = pkt.payload.split(b"\0", 1)[0]
        unique = self.by_handle.get(handle)
        self.test.assertIsNotNone(unique, "packet for an unknown handle: %r" % (pkt,))
        j = self.jobs[unique]
        j["packets"].append(pkt)
        if pkt.type in ENDINGS:
            j["ends"].append(pkt)

    def server_died(self):
        """Reconnect to the (new) server and resubmit every open job with its unique."""
        try:
            self.conn.close()
        except OSError:
            pass
        self.connect()
        for unique in self.open_jobs():
            self.submit(self.jobs[unique]["func"], unique)


class Soak(FailureCase):
    """Seeded randomized soak (RH_SOAK_SEED): faults, node churn, a controller restart and a
    roundhouse kill -9 / restart while a Zuul-like client submits. At the end every submitted job
    has exactly one outcome, no build was triggered twice for one unique, no executor was
    double-booked, and reservations are back to zero."""

    def world(self, nodes, seed):
        jobs = [{"name": "s", "label": "lin", "concurrentBuild": True,
                 "build": {"random": {"seed": seed, "duration": [100, 900],
                                      "results": {"SUCCESS": 6, "FAILURE": 1, "UNSTABLE": 1}}}},
                {"name": "t", "label": "big", "concurrentBuild": True,
                 "build": {"random": {"seed": seed + 1, "duration": [200, 1500],
                                      "results": {"SUCCESS": 1}}}}]
        return make_world(nodes, jobs)

    def start_durable(self):
        flags = []
        for name, sim in self.sims.items():
            kv = dict(FF)
            kv.update(resume_window_s=30, inflight_grace_s=4, queue_wait_timeout_s=2)
            flags += jenkins_flag(name, sim, **kv)
        self.server = self.start_server("-q", "libsqlite3", "--libsqlite3-db", self.db, *flags,
                                        use_default_args=False)
        for name in self.sims:
            self.wait_healthy(name)

    def test_soak(self):
        seed = int(os.environ.get("RH_SOAK_SEED", "20261128"))
        rng = random.Random(seed)
        began = time.monotonic()
        self.db = os.path.join(tempfile.mkdtemp(prefix="rh-soak-"), "q.db")
        sa = self.start_sim("ma", self.world([node("a1", 2, ("lin", "big")), node("a2", 1)],
                                             seed))
        sb = self.start_sim("mb", self.world([node("b1", 2, ("lin", "big")), node("b2", 2)],
                                             seed + 10))
        sims = {"ma": sa, "mb": sb}
        original = {name: {nd.name: nd.num_executors for nd in sim.world.nodes if nd.name}
                    for name, sim in sims.items()}
        self.start_durable()
        self.wait_workers(["build:s", "build:t"])
        client = SoakClient(self)
        counts = {"submitted": 0, "faults": 0, "restarts": 0, "kills": 0, "churn": 0}
        events = []
        # Fixed moments for the big events, random ones for the rest.
        restart_at = rng.uniform(0.3, 0.5) * SOAK_SECONDS
        kill_at = rng.uniform(0.55, 0.75) * SOAK_SECONDS
        restarted = killed = False
        offline, disconnected = set(), set()
        next_event = time.monotonic() + rng.uniform(0.3, 0.8)
        start = time.monotonic()
        while time.monotonic() - start < SOAK_SECONDS:
            now = time.monotonic() - start
            while len(client.open_jobs()) < SOAK_WINDOW:
                client.submit(rng.choice(["build:s", "build:s", "build:s", "build:t"]))
                counts["submitted"] += 1
            client.pump(0.05)
            if not restarted and now >= restart_at:
                restarted = True
                counts["restarts"] += 1
                name = rng.choice(sorted(sims))
                events.append("%.1f restart %s" % (now, name))
                sims[name].restart(refuse_ms=300, unavailable_ms=300)
            if not killed and now >= kill_at:
                killed = True
                counts["kills"] += 1
                events.append("%.1f kill -9 roundhouse" % now)
                self.server.proc.kill()
                self.server.stop()
                self.start_durable()
                client.server_died()
            if time.monotonic() < next_event:
                continue
            next_event = time.monotonic() + rng.uniform(0.3, 0.8)
            name = rng.choice(sorted(sims))
            sim = sims[name]
            nodes = [n.name for n in sim.world.nodes if n.name]
            kind = rng.choice(["503", "lost", "404", "reset", "offline", "online", "disconnect",
                               "connect", "executors"])
            n = rng.choice(nodes)
            events.append("%.1f %s %s %s" % (now, kind, name, n))
            if kind == "503":
                counts["faults"] += 1
                sim.add_fault("status:503", count=rng.randint(1, 4),
                              probability=0.5, seed=rng.randint(0, 1 << 30))
            elif kind == "lost":
                counts["faults"] += 1
                sim.add_fault("lost_response", method="POST", path="/job/.*/buildWithParameters",
                              count=1)
            elif kind == "404":
                counts["faults"] += 1
                sim.add_fault("spurious404:1", method="POST", path="/job/.*/buildWithParameters")
            elif kind == "reset":
                counts["faults"] += 1
                sim.add_fault("reset", method="GET", count=1)
            elif kind == "offline":
                counts["churn"] += 1
                sim.world.set_offline(n, "soak")
                offline.add((name, n))
            elif kind == "online" and offline:
                counts["churn"] += 1
                m, x = sorted(offline)[rng.randrange(len(offline))]
                offline.discard((m, x))
                sims[m].world.set_offline(x, offline=False)
            elif kind == "disconnect":
                counts["churn"] += 1
                sim.world.disconnect(n, rng.choice(["ABORTED", "FAILURE"]),
                                     latency_ms=rng.randint(0, 600))
                disconnected.add((name, n))
            elif kind == "connect" and disconnected:
                counts["churn"] += 1
                m, x = sorted(disconnected)[rng.randrange(len(disconnected))]
                disconnected.discard((m, x))
                sims[m].world.connect(x)
            elif kind == "executors":
                counts["churn"] += 1
                sim.world.set_node(n, num_executors=rng.randint(1, 3))
        # Heal everything, then let every open job end.
        for sim in sims.values():
            sim.clear_faults()
            for nd in list(sim.world.nodes):
                if nd.name:
                    sim.world.connect(nd.name)
                    sim.world.set_offline(nd.name, offline=False)
        deadline = time.monotonic() + SOAK_DRAIN
        while client.open_jobs() and time.monotonic() < deadline:
            client.pump(0.2)
        open_left = client.open_jobs()
        outcomes = {}
        for j in client.jobs.values():
            for e in j["ends"]:
                outcomes[e.name] = outcomes.get(e.name, 0) + 1
        duration = time.monotonic() - began
        print("\nsoak: seed=%d duration=%.1fs submitted=%d outcomes=%s faults=%d churn=%d "
              "controller_restarts=%d roundhouse_kills=%d open_at_end=%d" % (
                  seed, duration, len(client.jobs), outcomes, counts["faults"], counts["churn"],
                  counts["restarts"], counts["kills"], len(open_left)), file=sys.stderr)
        self.assertEqual(open_left, [], "jobs without an outcome (seed %d); events: %s" % (
            seed, events))
        multi = {u: [p.name for p in j["ends"]] for u, j in client.jobs.items()
                 if len(j["ends"]) != 1}
        self.assertEqual(multi, {}, "jobs with more than one outcome (seed %d)" % seed)
        for name, sim in sims.items():
            twice = {}
            for b in sim.builds():
                u = b["params"].get("GEARMAN_UNIQUE")
                twice.setdefault(u, []).append(b["number"])
            twice = {u: v for u, v in twice.items() if len(v) > 1}
            self.assertEqual(twice, {}, "%s: builds triggered twice for one unique (seed %d)"
                             % (name, seed))
        # Reported results match Jenkins' builds.
        for u, j in client.jobs.items():
            end = j["ends"][0]
            if end.type == gw.WORK_COMPLETE and end.payload.split(b"\0", 1)[1]:
                final = json.loads(end.payload.split(b"\0", 1)[1])
                sim = sims[final["manager"]]
                (b,) = [b for b in sim.builds() if b["params"].get("GEARMAN_UNIQUE") == u]
                self.assertEqual((b["number"], b["result"]), (final["number"], final["result"]))
        # Executor counts back to the start (every build has ended, so shrinking works).
        expected = {}
        for name, sim in sims.items():
            for nd, count in original[name].items():
                sim.world.set_node(nd, num_executors=count)
            total = sum(original[name].values())
            expected[name] = (total, total)
        self.invariants(expected)


if __name__ == "__main__":
    unittest.main()
