"""Tests of the Jenkins simulator (tools/jenkins_sim). Standard library only.

Each test starts a Simulator in-process on a free loopback port (stopped in cleanup even on
failure); one test runs the CLI as a subprocess.
"""

import base64
import copy
import http.client
import json
import os
import subprocess
import sys
import time
import unittest
from urllib.parse import quote, urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, TOOLS)

from jenkins_sim import labelexpr, treefilter  # noqa: E402
from jenkins_sim.server import Simulator  # noqa: E402

TOKEN = "tok-gearman"
R1 = "mode,numExecutors,quietingDown,useCrumbs,useSecurity"
JOB_FIELDS = ("_class,name,fullName,url,buildable,disabled,concurrentBuild,labelExpression,inQueue,"
              "lastBuild[number,building],property[parameterDefinitions[_class,name,type,"
              "defaultParameterValue[value]]]")
R2 = "jobs[%s,jobs[%s,jobs[%s]]]" % (JOB_FIELDS, JOB_FIELDS, JOB_FIELDS)
R4 = ("busyExecutors,totalExecutors,computer[_class,displayName,offline,temporarilyOffline,"
      "offlineCauseReason,numExecutors,idle,assignedLabels[name],executors[number,idle,"
      "currentExecutable[number,url]],oneOffExecutors[currentExecutable[number,url]]]")
R7 = "_class,id,why,blocked,buildable,stuck,cancelled,inQueueSince,executable[number,url]"
R9 = ("_class,number,url,building,result,timestamp,duration,estimatedDuration,queueId,builtOn,"
      "description")
R10 = "builds[number,queueId,building,result,url,actions[parameters[name,value]]]{0,50}"
R11 = "executors[number,currentExecutable[url]],oneOffExecutors[currentExecutable[url]]"

PARAMS = [{"type": "string", "name": "GEARMAN_UNIQUE"},
          {"type": "string", "name": "S", "default": "dflt"},
          {"type": "text", "name": "T"},
          {"type": "boolean", "name": "B", "default": True},
          {"type": "choice", "name": "C", "choices": ["one", "two"]},
          {"type": "node", "name": "GEARMAN_NODE"},
          {"type": "label", "name": "LBL"}]

WORLD = {
    "version": "2.440.3",
    "users": {
        "gearman": {"token": TOKEN, "password": "pw", "permissions": "all"},
        "viewer": {"token": "tok-viewer", "permissions": ["Overall/Read", "Job/Read"]},
    },
    "builtin": {"numExecutors": 1, "labels": ["controller"], "mode": "EXCLUSIVE"},
    "nodes": [
        {"name": "u1", "labels": ["ubuntu", "gcc", "linux"], "numExecutors": 1},
        {"name": "w1", "labels": ["windows"], "numExecutors": 1},
        {"name": "x1", "labels": ["a", "b"], "numExecutors": 1},
        {"name": "y1", "labels": ["a"], "mode": "EXCLUSIVE", "numExecutors": 1},
    ],
    "jobs": [
        {"name": "p", "label": "linux", "parameters": PARAMS, "build": {"duration": 10000}},
        {"name": "plain", "label": "windows", "build": {"duration": [1000, 2000, 3000, 4000],
                                                         "result": ["SUCCESS", "SUCCESS", "FAILURE", "SUCCESS"]}},
        {"name": "off", "disabled": True},
        {"name": "secret", "readers": ["gearman"]},
        {"name": "team/sub/deep", "label": "a", "parameters": [{"type": "string", "name": "X"}]},
        {"name": "caf\u00e9 job", "label": "windows"},
    ],
}


def basic(user, secret):
    return "Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode()


class Resp:
    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        self.raw = r.read()

    @property
    def json(self):
        return json.loads(self.raw.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name)


class SimCase(unittest.TestCase):
    world = WORLD

    def setUp(self):
        self.sim = Simulator(copy.deepcopy(self.world))
        self.sim.start(0)
        self.addCleanup(self.sim.stop)
        self.addCleanup(lambda: self.assertEqual(self.sim.errors, []))

    def http(self, method, path, body=None, auth=(("gearman", TOKEN)), headers=None, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if auth:
                h["Authorization"] = basic(*auth)
            if isinstance(body, dict):
                body = urlencode(body)
                h.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
            conn.request(method, path, body=body, headers=h)
            return Resp(conn.getresponse())
        finally:
            conn.close()

    def get(self, path, tree=None, **kw):
        if tree is not None:
            path += ("&" if "?" in path else "?") + "tree=" + quote(tree, safe="")
        return self.http("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.http("POST", path, body=body, **kw)

    def advance(self, ms):
        self.sim.advance(ms)

    def trigger(self, job_path, params=None, delay="0sec", **kw):
        q = "?delay=%s" % delay if delay is not None else ""
        if params is None:
            return self.post("/%sbuild%s" % (job_path, q), **kw)
        return self.post("/%sbuildWithParameters%s" % (job_path, q), body=params, **kw)

    def item_id(self, resp):
        self.assertIn(resp.status, (201, 303), resp.raw)
        loc = resp.header("Location")
        self.assertRegex(loc, r"^http://127\.0\.0\.1:\d+/queue/item/\d+/$")
        return int(loc.rstrip("/").rsplit("/", 1)[1])

    def item(self, item_id):
        return self.get("/queue/item/%d/api/json" % item_id, tree=R7)


# ------------------------------------------------------------------------------ pure modules

class LabelExprTest(unittest.TestCase):
    def ast(self, text):
        return labelexpr.parse(text)

    def test_precedence(self):
        A, B, C = ("atom", "a"), ("atom", "b"), ("atom", "c")
        self.assertEqual(self.ast("a || b && c"), ("or", A, ("and", B, C)))
        self.assertEqual(self.ast("!a && b"), ("and", ("not", A), B))
        self.assertEqual(self.ast("a -> b || c"), ("implies", A, ("or", B, C)))
        self.assertEqual(self.ast("a <-> b -> c"), ("iff", A, ("implies", B, C)))
        self.assertEqual(self.ast("a<->b"), ("iff", A, B))
        self.assertEqual(self.ast("a <-> b <-> c"), ("iff", ("iff", A, B), C))
        self.assertEqual(self.ast("\t(a)\t"), A)

    def test_atoms_and_strings(self):
        self.assertEqual(self.ast("x-y"), ("atom", "x-y"))
        self.assertEqual(self.ast("x->y"), ("implies", ("atom", "x"), ("atom", "y")))
        self.assertEqual(self.ast('"a b\\"c\\\\" && d'),
                         ("and", ("atom", 'a b"c\\'), ("atom", "d")))
        self.assertEqual(labelexpr.Label("(a || linux) && !b").atoms(), ["a", "linux", "b"])

    def test_syntax_errors_fall_back_to_literal_atom(self):
        for bad in ("a -> b -> c", "bogus(", "!!a", "a &&", '"open', '"a\nb"', "a & b", "", "'q'"):
            with self.assertRaises(labelexpr.LabelSyntaxError, msg=bad):
                labelexpr.parse(bad)
        lab = labelexpr.compile_label("a -> b -> c")
        self.assertFalse(lab.valid)
        self.assertEqual(lab.atoms(), ["a -> b -> c"])
        self.assertFalse(lab.matches({"a", "b", "c"}))
        self.assertTrue(lab.matches({"a -> b -> c"}))
        self.assertIsNone(labelexpr.compile_label("  "))
        self.assertIsNone(labelexpr.compile_label(None))

    def test_semantics(self):
        L = labelexpr.compile_label
        self.assertTrue(L("a -> b").matches({"x"}))
        self.assertFalse(L("a -> b").matches({"a"}))
        self.assertTrue(L("a <-> b").matches(set()))
        self.assertFalse(L("a <-> b").matches({"b"}))
        self.assertFalse(L("A").matches({"a"}))  # case-sensitive


class TreeFilterTest(unittest.TestCase):
    def test_parse_and_apply(self):
        tree = treefilter.parse_tree("a,b[c,d[e]],f{1,3},g[h]{1},i")
        value = {"_class": "K", "a": 1, "b": [{"_class": "B", "c": 2, "d": {"e": 3, "z": 0}, "y": 1}],
                 "f": [0, 1, 2, 3], "g": [{"h": 0}, {"h": 1}, {"h": 2}], "x": 9}
        self.assertEqual(treefilter.apply_tree(value, tree), {
            "_class": "K", "a": 1, "b": [{"_class": "B", "c": 2, "d": {"e": 3}}],
            "f": [1, 2], "g": [{"h": 1}]})
        self.assertEqual(treefilter.parse_range("5,"), (5, None))
        self.assertEqual(treefilter.parse_range(",5"), (0, 5))
        # an object named without a sub-tree keeps only its _class
        self.assertEqual(treefilter.apply_tree({"o": {"_class": "O", "v": 1}}, [("o", None, None)]),
                         {"o": {"_class": "O"}})
        for bad in ("a[b", "a,,b", "a{x}", "a]"):
            with self.assertRaises(treefilter.TreeSyntaxError, msg=bad):
                treefilter.parse_tree(bad)


# ------------------------------------------------------------------------------ read endpoints

class ReadTest(SimCase):
    def test_r1_headers_and_exact_fields(self):
        r = self.get("/api/json", tree=R1)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Jenkins"), "2.440.3")
        self.assertRegex(r.header("X-Jenkins-Session"), r"^[0-9a-f]{8}$")
        self.assertEqual(r.header("X-You-Are-Authenticated-As"), "gearman")
        self.assertEqual(r.json, {"_class": "hudson.model.Hudson", "mode": "EXCLUSIVE",
                                  "numExecutors": 1, "quietingDown": False, "useCrumbs": True,
                                  "useSecurity": True})

    def test_r2_recursive_jobs_and_folders(self):
        r = self.get("/api/json", tree=R2)
        self.assertEqual(r.status, 200)
        jobs = {j["fullName"]: j for j in r.json["jobs"]}
        self.assertEqual(sorted(jobs), ["caf\u00e9 job", "off", "p", "plain", "secret", "team"])
        p = jobs["p"]
        self.assertEqual(set(p), set(JOB_FIELDS.split(",")[:9]) | {"lastBuild", "property"})
        self.assertEqual(p["_class"], "hudson.model.FreeStyleProject")
        self.assertEqual(p["url"], self.sim.url + "job/p/")
        self.assertIsNone(p["lastBuild"])
        defs = p["property"][0]["parameterDefinitions"]
        self.assertEqual([d["type"] for d in defs], [
            "StringParameterDefinition", "StringParameterDefinition", "TextParameterDefinition",
            "BooleanParameterDefinition", "ChoiceParameterDefinition", "NodeParameterDefinition",
            "LabelParameterDefinition"])
        self.assertEqual(defs[1], {"_class": "hudson.model.StringParameterDefinition", "name": "S",
                                   "type": "StringParameterDefinition",
                                   "defaultParameterValue": {"_class": "hudson.model.StringParameterValue",
                                                             "value": "dflt"}})
        self.assertEqual(defs[3]["defaultParameterValue"]["value"], True)
        self.assertEqual(defs[4]["defaultParameterValue"]["value"], "one")
        self.assertEqual(jobs["plain"]["property"], [])
        self.assertIsNone(jobs["off"]["labelExpression"])
        self.assertEqual((jobs["off"]["buildable"], jobs["off"]["disabled"]), (False, True))
        team = jobs["team"]
        self.assertEqual(team["_class"], "com.cloudbees.hudson.plugins.folder.Folder")
        self.assertNotIn("buildable", team)
        deep = team["jobs"][0]["jobs"][0]
        self.assertEqual((deep["name"], deep["fullName"], deep["url"]),
                         ("deep", "team/sub/deep", self.sim.url + "job/team/job/sub/job/deep/"))
        self.assertEqual(jobs["caf\u00e9 job"]["url"], self.sim.url + "job/caf%C3%A9%20job/")

    def test_r3_job_and_folder_paths(self):
        r = self.get("/job/team/job/sub/job/deep/api/json", tree=JOB_FIELDS)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["labelExpression"], "a")
        self.assertEqual(self.get("/job/caf%C3%A9%20job/api/json", tree="name").json["name"], "caf\u00e9 job")
        self.assertEqual(self.get("/job/team/api/json", tree="jobs[name]").json["jobs"][0]["name"], "sub")
        self.assertEqual(self.get("/job/nope/api/json").status, 404)
        self.assertEqual(self.get("/job/team/job/nope/api/json").status, 404)
        self.assertEqual(self.get("/api/json", tree="jobs[name").status, 400)

    def test_r4_computers_and_r11(self):
        r = self.get("/computer/api/json", tree=R4)
        self.assertEqual(r.status, 200)
        comps = r.json["computer"]
        self.assertEqual(r.json["totalExecutors"], 5)
        self.assertEqual(r.json["busyExecutors"], 0)
        built_in = comps[0]
        self.assertEqual(built_in["_class"], "hudson.model.Hudson$MasterComputer")
        self.assertEqual(built_in["displayName"], "Built-In Node")
        self.assertEqual([l["name"] for l in built_in["assignedLabels"]], ["built-in", "controller"])
        u1 = comps[1]
        self.assertEqual(set(u1), set("_class,displayName,offline,temporarilyOffline,offlineCauseReason,"
                                      "numExecutors,idle,assignedLabels,executors,oneOffExecutors".split(",")))
        self.assertEqual(u1["_class"], "hudson.slaves.SlaveComputer")
        self.assertEqual([l["name"] for l in u1["assignedLabels"]], ["gcc", "linux", "u1", "ubuntu"])
        self.assertEqual(u1["executors"], [{"_class": "hudson.model.Executor", "number": 0, "idle": True,
                                            "currentExecutable": None}])
        iid = self.item_id(self.trigger("job/p/", {"GEARMAN_UNIQUE": "u"}))
        r = self.get("/computer/u1/api/json", tree=R11)
        url = self.sim.url + "job/p/1/"
        self.assertEqual(r.json["executors"][0]["currentExecutable"],
                         {"_class": "hudson.model.FreeStyleBuild", "url": url})
        self.assertEqual(self.get("/computer/api/json", tree="busyExecutors").json["busyExecutors"], 1)
        self.assertEqual(self.item(iid).json["executable"]["number"], 1)
        self.assertEqual(self.get("/computer/(built-in)/api/json", tree="displayName").json["displayName"],
                         "Built-In Node")
        self.assertEqual(self.get("/computer/(master)/api/json").status, 200)
        self.assertEqual(self.get("/computer/zz/api/json").status, 404)

    def test_r5_r6_labels(self):
        r = self.get("/label/y1/api/json", tree="nodes[nodeName,mode]")
        self.assertEqual(r.json["nodes"], [{"_class": "hudson.slaves.DumbSlave", "nodeName": "y1",
                                            "mode": "EXCLUSIVE"}])
        r = self.get("/label/built-in/api/json", tree="nodes[nodeName,mode]")
        self.assertEqual(r.json["nodes"], [{"_class": "hudson.model.Hudson", "nodeName": "",
                                            "mode": "EXCLUSIVE"}])
        r = self.get("/label/%s/api/json" % quote("a || linux", safe=""),
                     tree="name,idleExecutors,busyExecutors,totalExecutors,offline,nodes[nodeName]")
        self.assertEqual([n["nodeName"] for n in r.json["nodes"]], ["u1", "x1", "y1"])
        self.assertEqual((r.json["idleExecutors"], r.json["totalExecutors"], r.json["offline"]), (3, 3, False))

    def test_old_version_builtin_naming(self):
        self.sim.load_world(dict(copy.deepcopy(WORLD), version="2.303.3"))
        comp = self.get("/computer/api/json", tree="computer[displayName,assignedLabels[name]]").json["computer"][0]
        self.assertEqual(comp["displayName"], "master")
        self.assertEqual([l["name"] for l in comp["assignedLabels"]], ["controller", "master"])
        self.assertEqual(self.get("/computer/(master)/api/json").status, 200)
        self.assertEqual(self.get("/label/master/api/json", tree="nodes[nodeName]").json["nodes"][0]["nodeName"], "")


# ------------------------------------------------------------------------------ writes / queue

class QueueTest(SimCase):
    def test_quiet_period_lifecycle_and_build_fields(self):
        r = self.trigger("job/plain/", None, delay=None)
        self.assertEqual(r.status, 201)
        iid = self.item_id(r)
        it = self.item(iid).json
        self.assertEqual(it["_class"], "hudson.model.Queue$WaitingItem")
        self.assertEqual(set(it), {"_class", "id", "why", "blocked", "buildable", "stuck", "inQueueSince"})
        t0 = it["inQueueSince"]
        self.advance(4999)
        self.assertEqual(self.item(iid).json["_class"], "hudson.model.Queue$WaitingItem")
        self.advance(1)
        it = self.item(iid).json
        self.assertEqual(it["_class"], "hudson.model.Queue$LeftItem")
        self.assertEqual((it["cancelled"], it["executable"]["number"]), (False, 1))
        b = self.get("/job/plain/1/api/json", tree=R9).json
        self.assertEqual(b, {"_class": "hudson.model.FreeStyleBuild", "number": 1,
                             "url": self.sim.url + "job/plain/1/", "building": True, "result": None,
                             "timestamp": t0 + 5000, "duration": 0, "estimatedDuration": -1,
                             "queueId": iid, "builtOn": "w1", "description": None})
        self.advance(1000)
        b = self.get("/job/plain/1/api/json", tree=R9).json
        self.assertEqual((b["building"], b["result"], b["duration"]), (False, "SUCCESS", 1000))

    def test_estimated_duration_and_scripted_results(self):
        results = []
        for _ in range(4):
            self.item_id(self.trigger("job/plain/", None))
            self.advance(10000)
        for n in range(1, 5):
            b = self.get("/job/plain/%d/api/json" % n, tree="result,duration,estimatedDuration").json
            results.append((b["result"], b["duration"]))
        self.assertEqual(results, [("SUCCESS", 1000), ("SUCCESS", 2000), ("FAILURE", 3000), ("SUCCESS", 4000)])
        # mean of the last three successful builds: (4000 + 2000 + 1000) / 3
        self.assertEqual(self.get("/job/plain/4/api/json", tree="estimatedDuration").json["estimatedDuration"], 2333)
        r = self.get("/job/plain/api/json", tree="builds[number]{1,3}")
        self.assertEqual([b["number"] for b in r.json["builds"]], [3, 2])
        self.assertEqual(self.get("/job/plain/lastBuild/api/json", tree="number").json["number"], 4)

    def test_params_defaults_drop_and_merge_303(self):
        r1 = self.trigger("job/p/", {"GEARMAN_UNIQUE": "u1", "UNKNOWN": "x", "B": "false"}, delay="5")
        iid = self.item_id(r1)
        self.assertEqual(r1.status, 201)
        r2 = self.trigger("job/p/", {"GEARMAN_UNIQUE": "u1", "B": "false", "OTHER": "y"}, delay="5")
        self.assertEqual(r2.status, 303)
        self.assertEqual(r2.header("Location"), r1.header("Location"))
        r3 = self.trigger("job/p/", {"GEARMAN_UNIQUE": "u2", "B": "false"}, delay="5")
        self.assertEqual(r3.status, 201)
        self.assertNotEqual(self.item_id(r3), iid)
        q = self.get("/queue/api/json", tree="items[id,task[name],actions[parameters[name,value]]]").json
        self.assertEqual(len(q["items"]), 2)
        params = {p["name"]: p["value"] for p in q["items"][0]["actions"][0]["parameters"]}
        self.assertEqual(params, {"GEARMAN_UNIQUE": "u1", "S": "dflt", "T": "", "B": False, "C": "one",
                                  "GEARMAN_NODE": "", "LBL": ""})
        self.assertEqual(self.trigger("job/p/", {"C": "three"}).status, 500)  # illegal choice

    def test_w2_and_status_codes(self):
        r1 = self.trigger("job/plain/", None, delay=None)
        r2 = self.trigger("job/plain/", None, delay=None)
        self.assertEqual((r1.status, r2.status), (201, 201))
        self.assertEqual(r1.header("Location"), r2.header("Location"))
        self.assertEqual(self.trigger("job/plain/", {}).status, 400)  # not parameterised
        self.assertEqual(self.trigger("job/off/", None).status, 409)
        self.assertEqual(self.trigger("job/nope/", {"a": "b"}).status, 404)
        for path in ("/job/plain/build", "/job/p/buildWithParameters", "/queue/cancelItem?id=1",
                     "/job/plain/1/stop", "/computer/u1/changeOfflineCause"):
            r = self.get(path)
            self.assertEqual(r.status, 405, path)
            self.assertEqual(r.header("Allow"), "POST")
        self.sim.world.job("plain").veto = True
        r = self.trigger("job/plain/", None)
        self.assertEqual((r.status, r.header("Location")), (302, "."))

    def test_blocked_non_concurrent(self):
        a = self.item_id(self.trigger("job/p/", {"GEARMAN_UNIQUE": "a"}))
        b = self.item_id(self.trigger("job/p/", {"GEARMAN_UNIQUE": "b"}))
        self.assertEqual(self.item(a).json["_class"], "hudson.model.Queue$LeftItem")
        it = self.item(b).json
        self.assertEqual((it["_class"], it["blocked"], it["buildable"]), ("hudson.model.Queue$BlockedItem", True, False))
        self.assertTrue(it["why"].startswith("Build #1 is already in progress"), it["why"])
        self.assertTrue(self.get("/job/p/api/json", tree="inQueue").json["inQueue"])
        self.advance(10000)
        it = self.item(b).json
        self.assertEqual(it["executable"]["number"], 2)
        self.assertEqual(self.get("/job/p/2/api/json", tree="timestamp").json["timestamp"],
                         self.sim.world.clock.now())

    def test_buildable_while_busy_and_foreign_executor(self):
        self.sim.world.take_executor("w1")
        iid = self.item_id(self.trigger("job/plain/", None))
        it = self.item(iid).json
        self.assertEqual((it["_class"], it["buildable"], it["stuck"]), ("hudson.model.Queue$BuildableItem", True, False))
        self.assertEqual(it["why"], "Waiting for next available executor on \u2018windows\u2019")
        ex = self.get("/computer/w1/api/json", tree=R11).json["executors"][0]
        self.assertEqual(ex["currentExecutable"]["url"], self.sim.url + "job/foreign/1/")
        self.sim.world.release_executor("w1", 0)
        self.assertEqual(self.item(iid).json["executable"]["number"], 1)

    def test_cancel_item(self):
        self.sim.world.take_executor("w1")
        iid = self.item_id(self.trigger("job/plain/", None))
        self.assertEqual(self.post("/queue/cancelItem?id=%d" % iid, auth=("viewer", "tok-viewer")).status, 422)
        self.assertEqual(self.post("/queue/cancelItem?id=%d" % iid).status, 204)
        it = self.item(iid).json
        self.assertEqual((it["_class"], it["cancelled"], it["executable"]), ("hudson.model.Queue$LeftItem", True, None))
        self.assertEqual(self.post("/queue/cancelItem?id=%d" % iid).status, 404)
        self.assertEqual(self.post("/queue/cancelItem?id=999").status, 404)

    def test_stop_and_description(self):
        self.item_id(self.trigger("job/plain/", None))
        r = self.post("/job/plain/1/stop")
        self.assertEqual(r.status, 302)
        b = self.get("/job/plain/1/api/json", tree=R9).json
        self.assertEqual((b["building"], b["result"]), (False, "ABORTED"))
        self.assertEqual(self.post("/job/plain/1/stop").status, 302)  # not running: still 302
        self.assertEqual(self.post("/job/plain/9/stop").status, 404)
        self.assertEqual(self.post("/job/plain/1/stop", auth=("viewer", "tok-viewer")).status, 403)
        self.assertEqual(self.post("/job/plain/1/submitDescription", {"description": "<b>hi</b>"}).status, 302)
        self.assertEqual(self.get("/job/plain/1/api/json", tree="description").json["description"], "<b>hi</b>")
        self.assertEqual(self.post("/job/plain/1/submitDescription", {"description": "x"},
                                   auth=("viewer", "tok-viewer")).status, 403)
        self.assertEqual(self.post("/job/plain/7/submitDescription", {"description": "x"}).status, 404)

    def test_stop_latency(self):
        self.sim.world.stop_latency_ms = 2000
        self.item_id(self.trigger("job/p/", {}))
        self.post("/job/p/1/stop")
        self.assertTrue(self.get("/job/p/1/api/json", tree="building").json["building"])
        self.advance(2000)
        self.assertEqual(self.get("/job/p/1/api/json", tree="result").json["result"], "ABORTED")

    def test_change_offline_cause(self):
        r = self.post("/computer/u1/changeOfflineCause?offlineMessage=" + quote("Offline due to Gearman request"))
        self.assertEqual(r.status, 302)
        c = self.get("/computer/u1/api/json", tree="offline,temporarilyOffline,offlineCauseReason").json
        self.assertEqual(c, {"_class": "hudson.slaves.SlaveComputer", "offline": True,
                             "temporarilyOffline": True, "offlineCauseReason": "Offline due to Gearman request"})
        self.assertEqual(self.post("/computer/u1/changeOfflineCause").status, 302)  # idempotent
        self.assertTrue(self.get("/computer/u1/api/json", tree="temporarilyOffline").json["temporarilyOffline"])
        self.assertEqual(self.post("/computer/nope/changeOfflineCause").status, 404)
        self.assertEqual(self.post("/computer/u1/changeOfflineCause", auth=("viewer", "tok-viewer")).status, 403)
        iid = self.item_id(self.trigger("job/p/", {}))
        self.assertTrue(self.item(iid).json["why"].endswith("are offline"))

    def test_left_item_expiry_then_r10(self):
        iid = self.item_id(self.trigger("job/p/", {"GEARMAN_UNIQUE": "zz"}))
        self.advance(299999)
        self.assertEqual(self.item(iid).status, 200)
        self.advance(1)
        self.assertEqual(self.item(iid).status, 404)
        r = self.get("/job/p/api/json", tree=R10).json
        self.assertEqual(r["builds"][0]["queueId"], iid)
        params = {p["name"]: p["value"] for p in r["builds"][0]["actions"][0]["parameters"]}
        self.assertEqual(params["GEARMAN_UNIQUE"], "zz")

    def test_quiet_down(self):
        self.assertEqual(self.post("/quietDown").status, 302)
        self.assertTrue(self.get("/api/json", tree=R1).json["quietingDown"])
        iid = self.item_id(self.trigger("job/plain/", None))
        it = self.item(iid).json
        self.assertEqual((it["_class"], it["why"]), ("hudson.model.Queue$BuildableItem", "Jenkins is about to shut down"))
        self.assertEqual(self.post("/cancelQuietDown").status, 302)
        self.assertEqual(self.item(iid).json["executable"]["number"], 1)
        self.assertEqual(self.post("/quietDown", auth=("viewer", "tok-viewer")).status, 403)

    def test_node_and_label_parameters_pin(self):
        iid = self.item_id(self.trigger("job/p/", {"GEARMAN_NODE": "x1"}))
        self.assertEqual(self.get("/job/p/1/api/json", tree="builtOn").json["builtOn"], "x1")
        self.assertEqual(self.item(iid).json["executable"]["number"], 1)
        self.sim.world.job("p").concurrent = True
        self.item_id(self.trigger("job/p/", {"LBL": "(linux)&&u1"}))
        self.assertEqual(self.get("/job/p/2/api/json", tree="builtOn").json["builtOn"], "u1")
        self.item_id(self.trigger("job/p/", {"GEARMAN_NODE": "built-in"}))
        self.assertEqual(self.get("/job/p/3/api/json", tree="builtOn").json["builtOn"], "")
        iid = self.item_id(self.trigger("job/p/", {"GEARMAN_NODE": "ghost"}))
        self.assertEqual(self.item(iid).json["why"], "There are no nodes with the label \u2018ghost\u2019")

    def test_node_disconnect_aborts_build(self):
        self.item_id(self.trigger("job/plain/", None))
        self.sim.world.disconnect("w1", result="FAILURE", latency_ms=500)
        c = self.get("/computer/w1/api/json", tree="offline,temporarilyOffline").json
        self.assertEqual((c["offline"], c["temporarilyOffline"]), (True, False))
        self.advance(500)
        self.assertEqual(self.get("/job/plain/1/api/json", tree="result").json["result"], "FAILURE")

    def test_seeded_random_is_deterministic(self):
        spec = {"jobs": [{"name": "r", "concurrentBuild": True, "build": {
            "random": {"seed": 42, "results": {"SUCCESS": 1, "FAILURE": 1}, "duration": [100, 900]}}}],
            "builtin": {"numExecutors": 10}}
        runs = []
        for _ in range(2):
            self.sim.load_world(copy.deepcopy(spec))
            for _ in range(6):
                self.sim.world.trigger(self.sim.world.job("r"), {}, False, 0)
            self.advance(1000)
            runs.append([(b.result, b.duration) for b in self.sim.world.job("r").builds])
        self.assertEqual(runs[0], runs[1])
        self.assertEqual(len(set(r for r, _ in runs[0])), 2)


class FlyweightTest(SimCase):
    world = {"jobs": [{"name": "pipe", "type": "pipeline", "build": {"duration": None}},
                      {"name": "fs", "build": {"duration": None}}],
             "builtin": {"numExecutors": 1}}

    def test_pipeline_runs_flyweight_and_term(self):
        iid = self.item_id(self.trigger("job/pipe/", None, auth=None))
        job = self.get("/job/pipe/api/json", tree="_class,labelExpression,lastBuild[number,building]", auth=None).json
        self.assertEqual(job, {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
                               "lastBuild": {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                                             "number": 1, "building": True}})
        b = self.get("/job/pipe/1/api/json", tree=R9, auth=None).json
        self.assertNotIn("builtOn", b)
        self.assertEqual(b["queueId"], iid)
        comp = self.get("/computer/api/json", tree=R4, auth=None).json["computer"][0]
        self.assertEqual(comp["oneOffExecutors"][0]["currentExecutable"]["number"], 1)
        self.assertEqual(comp["executors"][0]["idle"], True)
        self.assertEqual(self.post("/job/pipe/1/term", auth=None).status, 302)
        self.assertEqual(self.get("/job/pipe/1/api/json", tree="result", auth=None).json["result"], "ABORTED")
        self.assertEqual(self.post("/job/pipe/1/kill", auth=None).status, 302)
        # classic builds have no term/kill; null duration runs until finished by control
        self.item_id(self.trigger("job/fs/", None, auth=None))
        self.assertEqual(self.post("/job/fs/1/term", auth=None).status, 404)
        self.advance(10 ** 9)
        self.assertTrue(self.get("/job/fs/1/api/json", tree="building", auth=None).json["building"])
        self.sim.world.finish_build("fs", 1, "NOT_BUILT")
        self.assertEqual(self.get("/job/fs/1/api/json", tree="result", auth=None).json["result"], "NOT_BUILT")


class PlacementTableTest(SimCase):
    """Spec section 3.4: the nodes where a build of J may run, per label expression."""
    world = {
        "nodes": [
            {"name": "u1", "labels": ["ubuntu", "gcc", "linux"]},
            {"name": "w1", "labels": ["windows"]},
            {"name": "x1", "labels": ["a", "b"]},
            {"name": "y1", "labels": ["a"], "mode": "EXCLUSIVE"},
        ],
        "jobs": [{"name": "J", "concurrentBuild": True, "parameters": [{"type": "string", "name": "N"}],
                  "build": {"duration": 60000}}],
    }
    TABLE = [(None, ["u1", "w1", "x1"]), ("linux", ["u1"]), ("a && b", ["x1"]), ("a || b", ["x1", "y1"]),
             ("!linux", ["w1", "x1", "y1"]), ("u1", ["u1"]), ("linux && !gcc", []),
             ("a -> b", ["u1", "w1", "x1"]), ("(a || linux) && !b", ["u1", "y1"]), ("bogus", [])]

    def test_table(self):
        for label, expected in self.TABLE:
            spec = copy.deepcopy(self.world)
            spec["jobs"][0]["label"] = label
            self.sim.load_world(spec)
            for i in range(4):  # one executor per node: 4 distinct items fill every eligible node
                self.assertEqual(self.trigger("job/J/", {"N": str(i)}, auth=None).status, 201)
            on = sorted(b.node.name for b in self.sim.world.job("J").builds)
            self.assertEqual(on, expected, label)
            q = self.get("/queue/api/json", tree="items[_class]", auth=None).json["items"]
            self.assertEqual(len(q), 4 - len(expected))
            self.assertTrue(all(i["_class"].endswith("$BuildableItem") for i in q))


# ------------------------------------------------------------------------------ auth

class AuthTest(SimCase):
    def test_tokens_401_403_404(self):
        self.assertEqual(self.get("/api/json", auth=("gearman", "wrong")).status, 401)
        self.assertEqual(self.get("/api/json", auth=("nobody", "x")).status, 401)
        self.assertEqual(self.get("/api/json", auth=None).status, 403)
        self.assertEqual(self.trigger("job/plain/", None, auth=("viewer", "tok-viewer")).status, 403)
        self.assertEqual(self.get("/job/secret/api/json", auth=("viewer", "tok-viewer")).status, 404)
        self.assertEqual(self.get("/job/secret/api/json").status, 200)
        names = [j["name"] for j in self.get("/api/json", tree="jobs[name]", auth=("viewer", "tok-viewer")).json["jobs"]]
        self.assertNotIn("secret", names)
        # token auth needs no crumb
        self.assertEqual(self.post("/job/plain/build").status, 201)

    def test_password_mode_crumbs(self):
        pw = ("gearman", "pw")
        r = self.post("/job/plain/build", auth=pw)
        self.assertEqual(r.status, 403)
        self.assertIn(b"No valid crumb", r.raw)
        c = self.get("/crumbIssuer/api/json", auth=pw)
        self.assertEqual(c.status, 200)
        self.assertEqual(c.json["crumbRequestField"], "Jenkins-Crumb")
        cookie = c.header("Set-Cookie").split(";")[0]
        self.assertTrue(cookie.startswith("JSESSIONID."))
        crumb = c.json["crumb"]
        self.assertEqual(self.post("/job/plain/build", auth=pw, headers={"Jenkins-Crumb": crumb}).status, 403)
        self.assertEqual(self.post("/job/plain/build", auth=pw, headers={"Jenkins-Crumb": "bad", "Cookie": cookie}).status, 403)
        self.assertEqual(self.post("/job/plain/build", auth=pw,
                                   headers={"Jenkins-Crumb": crumb, "Cookie": cookie}).status, 201)
        # sessions die with a restart
        self.sim.restart(refuse_ms=0, unavailable_ms=0)
        self.assertEqual(self.post("/job/plain/build", auth=pw,
                                   headers={"Jenkins-Crumb": crumb, "Cookie": cookie}).status, 403)

    def test_no_security_and_no_crumbs(self):
        self.sim.load_world({"jobs": [{"name": "j"}]})
        r = self.get("/api/json", tree=R1, auth=None)
        self.assertEqual((r.json["useSecurity"], r.json["useCrumbs"]), (False, False))
        self.assertEqual(self.get("/crumbIssuer/api/json", auth=None).status, 404)
        self.assertEqual(self.post("/job/j/build", auth=None).status, 201)


# ------------------------------------------------------------------------------ faults, restart, control

class FaultTest(SimCase):
    def test_status_and_spurious404(self):
        self.sim.add_fault("status:500", path=r"/api/json", method="GET", count=1)
        self.assertEqual(self.get("/api/json", tree=R1).status, 500)
        self.assertEqual(self.get("/api/json", tree=R1).status, 200)
        self.sim.add_fault("spurious404:2", path=r"/job/plain/build", method="POST")
        self.assertEqual(self.post("/job/plain/build").status, 404)
        self.assertEqual(self.post("/job/plain/build").status, 404)
        self.assertEqual(self.post("/job/plain/build").status, 201)
        self.assertEqual(self.get("/api/json").status, 200)

    def test_reset_and_lost_response(self):
        self.sim.add_fault("reset", path=r"/computer/.*", count=1)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.get("/computer/api/json")
        self.assertEqual(self.get("/computer/api/json").status, 200)
        self.sim.add_fault("lost_response", path=r".*/buildWithParameters", method="POST", count=1)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.trigger("job/p/", {"GEARMAN_UNIQUE": "lost"})
        q = self.get("/queue/api/json", tree="items[id]").json["items"]
        started = self.sim.world.job("p").builds
        self.assertEqual(len(started), 1)  # the side effect happened
        self.assertEqual(started[0].params[0], ("GEARMAN_UNIQUE", "lost"))
        self.assertEqual(q, [])

    def test_delay_and_hang(self):
        self.sim.add_fault("delay:300", path=r"/api/json", count=1)
        t = time.monotonic()
        self.assertEqual(self.get("/api/json").status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.sim.add_fault("hang", path=r"/queue/api/json", count=1)
        with self.assertRaises(OSError):  # socket.timeout
            self.get("/queue/api/json", timeout=0.5)

    def test_refuse(self):
        self.sim.add_fault("refuse", path=r"/api/json", count=1, refuse_ms=400)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.get("/api/json")
        with self.assertRaises(ConnectionRefusedError):
            self.get("/api/json")
        deadline = time.monotonic() + 5
        while True:
            try:
                self.assertEqual(self.get("/api/json").status, 200)
                break
            except ConnectionRefusedError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)

    def test_refuse_drops_kept_alive_connections(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=5)
        self.addCleanup(conn.close)
        h = {"Authorization": basic("gearman", TOKEN)}
        conn.request("GET", "/api/json", headers=h)
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.sim.refuse(400)  # a controller going down also ends open connections
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("GET", "/api/json", headers=h)
            conn.getresponse().read()

    def test_seeded_probability(self):
        def pattern():
            self.sim.clear_faults()
            self.sim.add_fault("status:503", path=r"/api/json", probability=0.5, seed=3)
            return [self.get("/api/json").status for _ in range(12)]
        first = pattern()
        self.assertEqual(first, pattern())
        self.assertEqual(set(first), {200, 503})


class RestartTest(SimCase):
    def test_restart_sequence(self):
        s1 = self.get("/api/json").header("X-Jenkins-Session")
        left = self.item_id(self.trigger("job/plain/", None))  # starts on w1
        self.sim.world.take_executor("u1")
        queued = self.item_id(self.trigger("job/p/", {"GEARMAN_UNIQUE": "q"}))
        self.assertTrue(self.item(queued).json["buildable"])
        self.sim.restart(refuse_ms=300, unavailable_ms=300)
        with self.assertRaises(ConnectionRefusedError):
            self.get("/api/json")
        deadline = time.monotonic() + 5
        seen503 = False
        while True:
            try:
                r = self.get("/api/json")
            except ConnectionRefusedError:
                time.sleep(0.02)
                continue
            finally:
                self.assertLess(time.monotonic(), deadline)
            if r.status == 503:
                seen503 = True
                self.assertIsNone(r.header("X-Jenkins-Session"))
                time.sleep(0.02)
                continue
            break
        self.assertTrue(seen503)
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.header("X-Jenkins-Session"), s1)
        self.assertEqual(self.get("/job/plain/1/api/json", tree="result").json["result"], "ABORTED")
        self.assertEqual(self.item(left).status, 404)
        it = self.item(queued).json  # kept, same id; the foreign executor is gone, so it started
        self.assertEqual((it["id"], it["executable"]["number"]), (queued, 1))

    def test_restart_fault(self):
        s1 = self.get("/api/json").header("X-Jenkins-Session")
        self.sim.add_fault("restart", path=r"/api/json", count=1, refuse_ms=0, unavailable_ms=0)
        with self.assertRaises((ConnectionError, http.client.HTTPException)):
            self.get("/api/json")
        deadline = time.monotonic() + 5
        while self.sim.world.session_id == s1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.02)
        self.assertNotEqual(self.get("/api/json").header("X-Jenkins-Session"), s1)


class ControlApiTest(SimCase):
    def ctl(self, name, body=None):
        return self.http("POST", "/_fake/" + name, body=json.dumps(body or {}), auth=None,
                         headers={"Content-Type": "application/json"})

    def test_http_control_and_request_log(self):
        self.assertEqual(self.trigger("job/plain/", None, delay=None).status, 201)
        self.assertEqual(self.ctl("advance", {"seconds": 5}).status, 200)
        self.assertEqual(self.ctl("advance", {"ms": 1000}).status, 200)
        st = self.get("/_fake/state", auth=None).json
        self.assertEqual([(b["job"], b["result"]) for b in st["builds"]], [("plain", "SUCCESS")])
        self.assertEqual(self.ctl("node/add", {"name": "n9", "labels": ["windows"], "numExecutors": 2}).status, 200)
        self.assertEqual(self.ctl("node/set", {"name": "n9", "mode": "EXCLUSIVE", "labels": ["z"]}).status, 200)
        self.assertEqual(self.get("/label/n9/api/json", tree="nodes[mode]").json["nodes"][0]["mode"], "EXCLUSIVE")
        self.assertEqual(self.ctl("node/offline", {"name": "n9", "message": "m"}).status, 200)
        self.assertEqual(self.ctl("node/online", {"name": "n9"}).status, 200)
        self.assertEqual(self.ctl("node/remove", {"name": "n9"}).status, 200)
        self.assertEqual(self.ctl("node/remove", {"name": "n9"}).status, 400)
        self.assertEqual(self.ctl("job/set", {"job": "plain", "disabled": True}).status, 200)
        self.assertEqual(self.trigger("job/plain/", None).status, 409)
        self.assertEqual(self.ctl("faults", {"fault": "status:418", "path": "/api/json", "count": 1}).status, 200)
        self.assertEqual(self.get("/api/json").status, 418)
        self.post("/job/p/buildWithParameters?delay=0sec", {"S": "v"})
        log = self.get("/_fake/requests", auth=None).json
        last = [e for e in log if e["path"] == "/job/p/buildWithParameters"][-1]
        self.assertEqual((last["method"], last["query"], last["body"]), ("POST", "delay=0sec", "S=v"))
        self.assertEqual(last["headers"]["Authorization"], basic("gearman", TOKEN))
        self.assertFalse(any(e["path"].startswith("/_fake") for e in log))
        self.assertEqual(self.ctl("bogus").status, 404)
        self.assertEqual(self.ctl("finish", {"job": "p", "number": 1, "result": "UNSTABLE"}).status, 200)
        self.assertEqual(self.get("/job/p/1/api/json", tree="result").json["result"], "UNSTABLE")

    def test_cli_subprocess(self):
        world = os.path.join(TOOLS, "jenkins_sim", "example_world.json")
        proc = subprocess.Popen([sys.executable, os.path.join(TOOLS, "jenkins_sim", "jenkins_sim.py"),
                                 "--port", "0", "--world", world, "--virtual-clock"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            self.assertRegex(url, r"^http://127\.0\.0\.1:\d+/$")
            u = urlsplit(url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            conn.request("GET", "/api/json?tree=jobs[name]",
                         headers={"Authorization": basic("gearman", "11aa22bb33cc44dd55ee66ff77889900")})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("gate-foo-pep8", [j["name"] for j in json.loads(r.read())["jobs"]])
            conn.close()
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


class RealTimeTest(unittest.TestCase):
    """realtime=True: the clock is the wall clock and a ticker ends builds without any request."""

    def test_ticker_ends_builds_and_builds_record_executor_intervals(self):
        world = copy.deepcopy(WORLD)
        world["jobs"].append({"name": "quick", "label": "windows", "concurrentBuild": True,
                              "parameters": [{"type": "string", "name": "GEARMAN_UNIQUE"}],
                              "build": {"duration": 100}})
        sim = Simulator(world, realtime=True, tick_s=0.01).start(0)
        self.addCleanup(sim.stop)
        t0 = time.time() * 1000
        conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
        conn.request("POST", "/job/quick/buildWithParameters?delay=0sec", body="GEARMAN_UNIQUE=u1",
                     headers={"Authorization": basic("gearman", TOKEN),
                              "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual(r.status, 201)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # no request from here on: only the ticker runs
            with sim.world.lock:
                if not sim.world.job("quick").builds[0].building:
                    break
            time.sleep(0.01)
        (b,) = sim.builds()
        self.assertEqual((b["job"], b["number"], b["node"], b["executor"], b["result"]),
                         ("quick", 1, "w1", 0, "SUCCESS"))
        self.assertEqual(b["params"], {"GEARMAN_UNIQUE": "u1"})
        self.assertEqual(b["end"] - b["start"], 100)
        self.assertGreaterEqual(b["start"], t0 - 1)  # wall-clock milliseconds
        (entry,) = sim.requests()
        self.assertGreaterEqual(entry["time"], t0 - 1)
        self.assertIn("service_ms", entry)
        self.assertLessEqual(abs(entry["wall"] * 1000 - entry["time"]), 1.0)
        self.assertEqual(sim.errors, [])


class SelectServerTest(unittest.TestCase):
    """tools/jenkins_sim/select_server.py: the benchmark's one-thread transport answers what the
    threaded server answers, keeps connections alive, and refuses what it does not serve."""

    def setUp(self):
        import threading
        from jenkins_sim.select_server import SelectServer
        self.threaded = Simulator(copy.deepcopy(WORLD)).start(0)
        self.addCleanup(self.threaded.stop)
        # Two worlds served by one thread, as in tools/bench_jenkins.py.
        self.sims = [Simulator(copy.deepcopy(WORLD)), Simulator(copy.deepcopy(WORLD))]
        self.server = SelectServer(self.sims, tick_s=0.01).open()
        self.stop_r, self.stop_w = os.pipe()
        self.loop = threading.Thread(target=self.server.run, args=(self.stop_r,), daemon=True)
        self.loop.start()
        self.addCleanup(self._stop_loop)
        for sim in self.sims:
            self.addCleanup(lambda sim=sim: self.assertEqual(sim.errors, []))

    def _stop_loop(self):
        if self.stop_w is not None:
            os.close(self.stop_w)  # EOF: run() returns
            self.stop_w = None
        self.loop.join(5)
        if self.stop_r is not None:
            os.close(self.stop_r)
            self.stop_r = None
        self.assertFalse(self.loop.is_alive(), "the select loop did not stop at EOF")

    def exchange(self, port, method, path, body=None, headers=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        h = {"Authorization": basic("gearman", TOKEN)}
        h.update(headers or {})
        if isinstance(body, dict):
            body = urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        c.request(method, path, body=body, headers=h)
        r = Resp(c.getresponse())
        if conn is None:
            c.close()
        return r

    def test_same_answers_as_the_threaded_server(self):
        steps = [("GET", "/api/json?tree=" + quote(R1, safe=""), None),
                 ("GET", "/computer/api/json?tree=" + quote(R4, safe=""), None),
                 ("POST", "/job/p/buildWithParameters?delay=0sec", {"GEARMAN_UNIQUE": "u1"}),
                 ("GET", "/queue/item/1/api/json?tree=" + quote(R7, safe=""), None),
                 ("GET", "/job/p/1/api/json?tree=" + quote(R9, safe=""), None),
                 ("GET", "/computer/u1/api/json?tree=" + quote(R11, safe=""), None),
                 ("GET", "/job/p/api/json?tree=" + quote(R10, safe=""), None),
                 ("GET", "/job/nope/api/json", None),
                 ("HEAD", "/api/json", None)]
        for method, path, body in steps:
            want = self.exchange(self.threaded.port, method, path, body)
            got = self.exchange(self.sims[0].port, method, path, body)
            norm = lambda raw, port: raw.replace(b":%d/" % port, b":PORT/")
            self.assertEqual((got.status, norm(got.raw, self.sims[0].port)),
                             (want.status, norm(want.raw, self.threaded.port)), path)
            for name in ("Content-Type", "X-Jenkins", "Server"):
                self.assertEqual(got.header(name), want.header(name), (path, name))
            if want.header("Location"):
                self.assertEqual(norm(got.header("Location").encode(), self.sims[0].port),
                                 norm(want.header("Location").encode(), self.threaded.port))
        # The second world served by the same thread saw none of it.
        self.assertEqual(self.sims[1].requests(), [])
        log = self.sims[0].requests()
        self.assertEqual([(e["method"], e["path"]) for e in log],
                         [(m, p.partition("?")[0]) for m, p, _ in steps])
        self.assertTrue(all("service_ms" in e for e in log))

    def test_keep_alive_pipelining_and_expect_continue(self):
        port = self.sims[1].port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.addCleanup(conn.close)
        for _ in range(3):  # one connection, several requests
            self.assertEqual(self.exchange(port, "GET", "/api/json", conn=conn).status, 200)
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            auth = basic("gearman", TOKEN)
            one = "GET /api/json?tree=mode HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % auth
            s.sendall((one + one).encode())  # two requests in one segment: two answers, in order
            data = b""
            while data.count(b"HTTP/1.1 200") < 2:
                chunk = s.recv(65536)
                self.assertTrue(chunk, data)
                data += chunk
            # A body announced with Expect: 100-continue is asked for, then answered.
            form = b"GEARMAN_UNIQUE=e1"
            s.sendall(("POST /job/p/buildWithParameters?delay=0sec HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                       % (auth, len(form))).encode())
            self.assertEqual(s.recv(65536), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(form)
            reply = s.recv(65536)
            self.assertRegex(reply, rb"^HTTP/1.1 201 ")
        (b,) = self.sims[1].builds()
        self.assertEqual(b["params"]["GEARMAN_UNIQUE"], "e1")

    def test_refusals(self):
        port = self.sims[0].port
        self.sims[0].add_fault("status:503", path="^/api/json$")
        self.assertEqual(self.exchange(port, "GET", "/api/json").status, 503)
        self.sims[0].clear_faults()
        self.sims[0].add_fault("reset", path="^/api/json$")
        r = self.exchange(port, "GET", "/api/json")
        self.assertEqual(r.status, 500)
        self.assertIn(b"needs the threaded simulator server", r.raw)
        self.sims[0].clear_faults()
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nX: " + b"y" * (70 * 1024))
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break  # closed after the answer
                data += chunk
            self.assertRegex(data, rb"^HTTP/1.1 431 ")
            self.assertIn(b"Connection: close", data)
        # The loop still serves after each refusal.
        self.assertEqual(self.exchange(port, "GET", "/api/json").status, 200)

    def test_load_report(self):
        for _ in range(5):
            self.assertEqual(self.exchange(self.sims[0].port, "GET", "/api/json").status, 200)
        self._stop_loop()
        load = self.server.load()
        self.assertEqual(set(load), {"busy_ms_p50", "busy_ms_p99", "busy_ms_max", "cpu_fraction"})
        self.assertGreaterEqual(len(self.server.busy_ms), 5)  # at least one stretch per request
        self.assertTrue(0 < load["busy_ms_p50"] <= load["busy_ms_p99"] <= load["busy_ms_max"])
        self.assertTrue(0 < load["cpu_fraction"] <= 1.5, load)


if __name__ == "__main__":
    # Exit non-zero when nothing ran (a -k pattern that matches nothing), as Python 3.12 does.
    program = unittest.main(verbosity=2, exit=False)
    sys.exit(0 if program.result.testsRun and program.result.wasSuccessful() else 1)
