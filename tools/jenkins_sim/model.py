"""World model of the simulated Jenkins: clock, nodes, jobs, queue, builds.

Everything is deterministic under the virtual clock: time only moves through Clock.advance(),
and World.tick() replays the events (quiet periods ending, builds ending, LeftItem expiry) in
time order up to the clock's current time. All public methods take the world lock.
"""

import heapq
import random
import threading
import time
import uuid
from urllib.parse import quote

from .labelexpr import compile_label

RESULTS = ("SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT")

JOB_CLASSES = {
    "freestyle": ("hudson.model.FreeStyleProject", "hudson.model.FreeStyleBuild"),
    "pipeline": ("org.jenkinsci.plugins.workflow.job.WorkflowJob",
                 "org.jenkinsci.plugins.workflow.job.WorkflowRun"),
    "matrix": ("hudson.matrix.MatrixProject", "hudson.matrix.MatrixBuild"),
}
FOLDER_CLASS = "com.cloudbees.hudson.plugins.folder.Folder"
NLP = "org.jvnet.jenkins.plugins.nodelabelparameter."
PARAM_CLASSES = {  # type -> (definition class, value class)
    "string": ("hudson.model.StringParameterDefinition", "hudson.model.StringParameterValue"),
    "text": ("hudson.model.TextParameterDefinition", "hudson.model.TextParameterValue"),
    "boolean": ("hudson.model.BooleanParameterDefinition", "hudson.model.BooleanParameterValue"),
    "choice": ("hudson.model.ChoiceParameterDefinition", "hudson.model.StringParameterValue"),
    "node": (NLP + "NodeParameterDefinition", NLP + "NodeParameterValue"),
    "label": (NLP + "LabelParameterDefinition", NLP + "LabelParameterValue"),
}
ALL_PERMISSIONS = frozenset(["Overall/Read", "Job/Read", "Job/Build", "Job/Cancel", "Run/Update",
                             "Computer/Disconnect", "Overall/Administer"])
QUEUE = "hudson.model.Queue$"


class SimError(Exception):
    """A control-API misuse (unknown job, node...)."""


def parse_version(text):
    parts = []
    for p in str(text).split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


class Clock:
    """Milliseconds. Virtual: moves only by advance(). Real-time: wall clock plus advance() offset."""

    def __init__(self, start_ms=1_700_000_000_000, realtime=False):
        self.realtime = realtime
        self._t = start_ms
        self._offset = 0

    def now(self):
        if self.realtime:
            return int(time.time() * 1000) + self._offset
        return self._t

    def advance(self, ms):
        if ms < 0:
            raise SimError("cannot move the clock backwards")
        if self.realtime:
            self._offset += int(ms)
        else:
            self._t += int(ms)


class ParamDef:
    def __init__(self, spec):
        self.type = spec.get("type", "string")
        if self.type not in PARAM_CLASSES:
            raise SimError("unknown parameter type %r" % self.type)
        self.name = spec["name"]
        self.choices = list(spec.get("choices", []))
        self.allowed_nodes = list(spec.get("allowedNodes", []))
        if "default" in spec:
            self.default = spec["default"]
        elif self.type == "boolean":
            self.default = False
        elif self.type == "choice":
            self.default = self.choices[0] if self.choices else ""
        else:
            self.default = ""
        if self.type == "boolean":
            self.default = bool(self.default)

    def convert(self, text):
        """Form text -> value; raises ValueError like Jenkins' createValue (-> HTTP 500)."""
        if self.type == "boolean":
            return text.strip().lower() == "true"
        if self.type == "choice" and text not in self.choices:
            raise ValueError("Illegal choice for parameter %s: %s" % (self.name, text))
        return text

    def to_json(self):
        dcls, vcls = PARAM_CLASSES[self.type]
        out = {"_class": dcls, "name": self.name, "type": dcls.rsplit(".", 1)[1], "description": "",
               "defaultParameterValue": {"_class": vcls, "name": self.name, "value": self.default}}
        if self.type == "choice":
            out["choices"] = list(self.choices)
        return out


class BuildScript:
    """Per-job scripted duration (ms) and result: sequences (last entry repeats) or seeded random."""

    def __init__(self, spec):
        spec = spec or {}
        self.durations = spec.get("duration", 1000)
        self.results = spec.get("result", "SUCCESS")
        rnd = spec.get("random")
        self.random = None
        if rnd:
            self.random = random.Random(rnd.get("seed", 0))
            self.rand_results = rnd.get("results", {"SUCCESS": 1})
            self.rand_duration = rnd.get("duration", [1000, 1000])
        self.count = 0

    @staticmethod
    def _pick(seq, i):
        if isinstance(seq, list):
            return seq[min(i, len(seq) - 1)] if seq else None
        return seq

    def next(self):
        i = self.count
        self.count += 1
        if self.random is not None:
            names = sorted(self.rand_results)
            result = self.random.choices(names, [self.rand_results[n] for n in names])[0]
            lo, hi = self.rand_duration
            return self.random.randint(int(lo), int(hi)), result
        return self._pick(self.durations, i), self._pick(self.results, i)


class Node:
    def __init__(self, name, labels=(), mode="NORMAL", num_executors=1, builtin=False):
        self.name = name  # "" for the built-in node
        self.builtin = builtin
        self.labels = set(labels)
        self.mode = mode
        self.connected = True
        self.temp_offline = False
        self.offline_message = ""
        self.executors = []
        self.set_executors(num_executors)

    def set_executors(self, n):
        while len(self.executors) < n:
            self.executors.append(Executor(len(self.executors)))
        # Jenkins removes idle executors when shrinking; busy ones finish first (kept here).
        while len(self.executors) > n and self.executors[-1].idle():
            self.executors.pop()
        self.num_executors = n

    @property
    def online(self):
        return self.connected and not self.temp_offline


class Executor:
    def __init__(self, number):
        self.number = number
        self.build = None
        self.foreign = None  # {"number", "url"} of a build we do not model

    def idle(self):
        return self.build is None and self.foreign is None


class Job:
    def __init__(self, spec):
        self.full_name = spec["name"]
        self.name = self.full_name.rsplit("/", 1)[-1]
        self.kind = spec.get("type", "freestyle")
        if self.kind not in JOB_CLASSES:
            raise SimError("unknown job type %r" % self.kind)
        self.label = spec.get("label")
        self.disabled = bool(spec.get("disabled", False))
        self.concurrent = bool(spec.get("concurrentBuild", False))
        self.params = [ParamDef(p) for p in spec.get("parameters", [])]
        self.script = BuildScript(spec.get("build"))
        self.readers = spec.get("readers")  # None = everyone with Job/Read
        self.quiet_period = spec.get("quietPeriod")
        self.blocked_why = spec.get("blockedWhy")  # scripted blocker
        self.veto = bool(spec.get("veto", False))  # triggers answer 302 with no item
        self.builds = []  # oldest first
        # Indexes over `builds`, so that a request costs the same after 10 builds as after 10,000
        # (the benchmark's masters run thousands): by number, and the ones still building, oldest
        # first. World._start and World._finish keep them.
        self.by_number = {}
        self.active = []
        self.next_number = int(spec.get("nextBuildNumber", 1))

    @property
    def cls(self):
        return JOB_CLASSES[self.kind][0]

    @property
    def flyweight(self):
        return self.kind != "freestyle"

    def path(self):
        return "".join("job/%s/" % quote(seg, safe="") for seg in self.full_name.split("/"))

    def running(self):
        return list(self.active)

    def estimated_duration(self):
        """Jenkins' estimate: the mean of the last 3 successful builds, -1 without one."""
        ok = []
        for b in reversed(self.builds):
            if not b.building and b.result == "SUCCESS":
                ok.append(b.duration)
                if len(ok) == 3:
                    break
        return int(sum(ok) / len(ok)) if ok else -1

    def build(self, number):
        return self.by_number.get(number)


class Build:
    def __init__(self, job, number, item, node, executor, now, duration, result):
        self.job = job
        self.number = number
        self.queue_id = item.id
        self.params = list(item.params)
        self.node = node  # None for flyweight builds
        self.executor = executor
        self.timestamp = now
        self.building = True
        self.result = None
        self.duration = 0
        self.description = None
        self.end_at = None if duration is None else now + int(duration)
        self.end_result = result or "SUCCESS"


class QueueItem:
    def __init__(self, item_id, job, params, now, due, pin_node=None, pin_label=None):
        self.id = item_id
        self.job = job
        self.params = params  # [(name, value)] in definition order
        self.in_queue_since = now
        self.due = due
        self.state = "waiting"  # waiting | blocked | buildable | left
        self.why = "In the quiet period. Expires in %d sec" % max(0, (due - now) // 1000)
        self.pin_node = pin_node
        self.pin_label = pin_label
        self.cancelled = False
        self.build = None
        self.left_at = None


class World:
    def __init__(self, spec=None, clock=None):
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.base_url = "http://127.0.0.1:8080/"
        self.load(spec or {})

    # ------------------------------------------------------------------ world definition

    def load(self, spec):
        with self.lock:
            self.spec = spec
            self.version = str(spec.get("version", "2.440.3"))
            self.quiet_period = int(spec.get("quietPeriod", 5))
            self.left_item_ttl_ms = int(spec.get("leftItemTtl", 300)) * 1000
            self.stop_latency_ms = int(spec.get("stopLatencyMs", 0))
            if spec.get("url"):
                self.base_url = spec["url"].rstrip("/") + "/"
            sec = spec.get("security", {})
            self.users = {}
            for name, u in spec.get("users", {}).items():
                perms = u.get("permissions", "all")
                self.users[name] = {
                    "token": u.get("token"), "password": u.get("password"),
                    "permissions": ALL_PERMISSIONS if perms == "all" else frozenset(perms)}
            self.use_security = bool(self.users) or bool(sec.get("enabled", False))
            self.use_crumbs = bool(sec.get("crumbs", True)) and self.use_security
            anon = sec.get("anonymous", [] if self.use_security else "all")
            self.anonymous_permissions = ALL_PERMISSIONS if anon == "all" else frozenset(anon)
            self.session_id = uuid.uuid4().hex[:8]
            self.quieting_down = False
            self.sessions = {}  # JSESSIONID -> (user, crumb)
            b = spec.get("builtin", {})
            builtin = Node("", b.get("labels", []), b.get("mode", "NORMAL"),
                           int(b.get("numExecutors", 0)), builtin=True)
            self.nodes = [builtin]
            for n in spec.get("nodes", []):
                self._add_node(n)
            self.jobs = {}
            self.folders = set()
            for f in spec.get("folders", []):
                self._add_folder(f)
            for j in spec.get("jobs", []):
                self._add_job(j)
            self.queue = {}  # id -> QueueItem (including LeftItems until expiry)
            # The items not yet left, and the left ones by expiry: a tick then costs what the live
            # queue holds, not every item of the last leftItemTtl seconds (thousands in a benchmark).
            self.pending = {}  # id -> QueueItem, state != "left"
            self.left_heap = []  # (left_at, id)
            self.next_queue_id = int(spec.get("firstQueueId", 1))

    def _add_folder(self, full_name):
        parts = full_name.split("/")
        for i in range(1, len(parts) + 1):
            self.folders.add("/".join(parts[:i]))

    def _add_job(self, spec):
        job = Job(spec)
        if job.full_name in self.jobs or job.full_name in self.folders:
            raise SimError("duplicate item %r" % job.full_name)
        if "/" in job.full_name:
            self._add_folder(job.full_name.rsplit("/", 1)[0])
        self.jobs[job.full_name] = job
        return job

    def _add_node(self, n):
        if self.node(n["name"]) is not None:
            raise SimError("duplicate node %r" % n["name"])
        node = Node(n["name"], n.get("labels", []), n.get("mode", "NORMAL"),
                    int(n.get("numExecutors", 1)))
        node.temp_offline = bool(n.get("temporarilyOffline", False))
        node.connected = not bool(n.get("offline", False)) or node.temp_offline
        node.offline_message = n.get("offlineMessage", "")
        self.nodes.append(node)
        return node

    # ------------------------------------------------------------------ naming

    @property
    def new_builtin_naming(self):
        return parse_version(self.version) >= (2, 307)

    @property
    def builtin_label(self):
        return "built-in" if self.new_builtin_naming else "master"

    def self_label(self, node):
        return self.builtin_label if node.builtin else node.name

    def node_labels(self, node):
        return node.labels | {self.self_label(node)}

    def node(self, name):
        """Look a node up by name ('' / built-in / master / (built-in) / (master) = built-in)."""
        if name in ("", "(built-in)", "(master)", self.builtin_label):
            return self.nodes[0]
        for n in self.nodes[1:]:
            if n.name == name:
                return n
        return None

    def computer_path(self, node):
        if node.builtin:
            return "computer/(%s)/" % self.builtin_label
        return "computer/%s/" % quote(node.name, safe="")

    def build_url(self, build):
        return "%s%s%d/" % (self.base_url, build.job.path(), build.number)

    def item_url(self, item):
        return "%squeue/item/%d/" % (self.base_url, item.id)

    # ------------------------------------------------------------------ lookups

    def job(self, full_name):
        job = self.jobs.get(full_name)
        if job is None:
            raise SimError("unknown job %r" % full_name)
        return job

    def children(self, folder):
        """Direct children (folder names and jobs) of a folder ('' = root), sorted by name."""
        prefix = folder + "/" if folder else ""
        out = []
        for f in self.folders:
            if f.startswith(prefix) and "/" not in f[len(prefix):]:
                out.append((f[len(prefix):], f))
        for j in self.jobs:
            if j.startswith(prefix) and "/" not in j[len(prefix):]:
                out.append((j[len(prefix):], j))
        return [full for _, full in sorted(out)]

    # ------------------------------------------------------------------ triggering

    def trigger(self, job, form, with_params, delay=None):
        """W1/W2 side effect. Returns (status, item or None). Raises ValueError on a bad value."""
        with self.lock:
            self.tick()
            now = self.clock.now()
            params = []
            pin_node = pin_label = None
            if with_params:
                for p in job.params:
                    if p.name in form:
                        value = p.convert(form[p.name])
                    else:
                        value = p.default
                    params.append((p.name, value))
                    if p.type == "node" and value not in ("", None):
                        pin_node = str(value)
                    elif p.type == "label" and value not in ("", None):
                        pin_label = str(value)
            for item in self.pending.values():
                if item.job is job and item.params == params:
                    return ("merged", item)
            qp = job.quiet_period if job.quiet_period is not None else self.quiet_period
            if delay is not None:
                qp = delay
            item = QueueItem(self.next_queue_id, job, params, now, now + qp * 1000,
                             pin_node, pin_label)
            self.next_queue_id += 1
            self.queue[item.id] = item
            self.pending[item.id] = item
            self.tick()
            return ("created", item)

    def cancel_item(self, item_id):
        with self.lock:
            self.tick()
            item = self.queue.get(item_id)
            if item is None or item.state == "left":
                return False
            self._leave(item, cancelled=True)
            self.tick()
            return True

    def _leave(self, item, cancelled=False, build=None):
        item.state = "left"
        item.cancelled = cancelled
        item.build = build
        item.left_at = self.clock.now() if build is None else build.timestamp
        self.pending.pop(item.id, None)
        heapq.heappush(self.left_heap, (item.left_at, item.id))

    # ------------------------------------------------------------------ builds

    def stop_build(self, build, latency_ms=None):
        """W4: the build ends ABORTED after the stop latency; no effect when not building."""
        with self.lock:
            if not build.building:
                return
            latency = self.stop_latency_ms if latency_ms is None else latency_ms
            end = self.clock.now() + latency
            if build.end_at is None or end < build.end_at:  # else it ends on its own first
                build.end_at = end
                build.end_result = "ABORTED"
            self.tick()

    def finish_build(self, full_name, number, result="SUCCESS"):
        with self.lock:
            build = self.job(full_name).build(int(number))
            if build is None:
                raise SimError("no build %s #%s" % (full_name, number))
            if build.building:
                self._finish(build, result, self.clock.now())
            self.tick()
            return build

    def _finish(self, build, result, t):
        build.building = False
        build.job.active.remove(build)
        build.result = result
        build.duration = max(0, t - build.timestamp)
        build.end_at = None
        if build.executor is not None:
            build.executor.build = None

    def _start(self, item, node, executor, t):
        job = item.job
        duration, result = job.script.next()
        build = Build(job, job.next_number, item, node, executor, t, duration, result)
        job.next_number += 1
        job.builds.append(build)
        job.by_number[build.number] = build
        job.active.append(build)
        if executor is not None:
            executor.build = build
        self._leave(item, build=build)

    # ------------------------------------------------------------------ scheduling

    def tick(self):
        """Replay all events up to now, in time order; then schedule at now."""
        with self.lock:
            now = self.clock.now()
            while True:
                times = [b.end_at for j in self.jobs.values() for b in j.active
                         if b.end_at is not None and b.end_at <= now]
                times += [i.due for i in self.pending.values() if i.state == "waiting" and i.due <= now]
                if not times:
                    break
                t = min(times)
                for job in self.jobs.values():
                    for b in list(job.active):
                        if b.end_at is not None and b.end_at <= t:
                            self._finish(b, b.end_result, b.end_at)
                self._schedule(t, only_due=True)
            self._schedule(now)
            heap = self.left_heap
            while heap and heap[0][0] + self.left_item_ttl_ms <= now:
                _, item_id = heapq.heappop(heap)
                item = self.queue.get(item_id)  # gone already when its job was removed
                if item is not None and item.state == "left":
                    del self.queue[item_id]

    def _eligible_nodes(self, item):
        """Nodes where the item may run (ignoring busy state), and a text for `why`."""
        job = item.job
        if item.pin_node is not None:
            node = self.node(item.pin_node)
            return ([node] if node else []), item.pin_node
        expr = item.pin_label if item.pin_label is not None else job.label
        label = compile_label(expr)
        if label is None:
            return [n for n in self.nodes if n.mode == "NORMAL"], None
        return [n for n in self.nodes if label.matches(self.node_labels(n))], label.text

    def _schedule(self, t, only_due=False):
        now = t
        for item in sorted(self.pending.values(), key=lambda i: (i.in_queue_since, i.id)):
            if item.state == "left":
                continue
            if item.state == "waiting":
                if item.due > now:
                    item.why = "In the quiet period. Expires in %d sec" % ((item.due - now + 999) // 1000)
                    continue
            job = item.job
            if job.blocked_why:
                item.state, item.why = "blocked", job.blocked_why
                continue
            running = job.running()
            if not job.concurrent and running:
                eta = job.estimated_duration()
                item.state = "blocked"
                item.why = "Build #%d is already in progress (ETA: %s)" % (
                    running[-1].number, "N/A" if eta < 0 else "%d sec" % (eta // 1000))
                continue
            item.state = "buildable"
            if self.quieting_down:
                item.why = "Jenkins is about to shut down"
                continue
            if job.flyweight and item.pin_node is None and item.pin_label is None:
                self._start(item, None, None, now)
                continue
            nodes, what = self._eligible_nodes(item)
            if not nodes:
                item.why = "There are no nodes with the label \u2018%s\u2019" % what
                continue
            placed = False
            for node in nodes:
                if not node.online:
                    continue
                for ex in node.executors[:node.num_executors]:
                    if ex.idle():
                        self._start(item, node, ex, now)
                        placed = True
                        break
                if placed:
                    break
            if not placed:
                if what is None:
                    item.why = "Waiting for next available executor"
                elif all(not n.online for n in nodes):
                    item.why = "All nodes of label \u2018%s\u2019 are offline" % what
                else:
                    item.why = "Waiting for next available executor on \u2018%s\u2019" % what

    # ------------------------------------------------------------------ nodes (control)

    def add_node(self, spec):
        with self.lock:
            node = self._add_node(spec)
            self.tick()
            return node

    def get_node(self, name):
        node = self.node(name)
        if node is None:
            raise SimError("unknown node %r" % name)
        return node

    def remove_node(self, name):
        with self.lock:
            node = self.get_node(name)
            if node.builtin:
                raise SimError("cannot remove the built-in node")
            now = self.clock.now()
            for ex in node.executors:
                if ex.build is not None:
                    self._finish(ex.build, "ABORTED", now)
            self.nodes.remove(node)
            self.tick()

    def set_offline(self, name, message="", offline=True):
        with self.lock:
            node = self.get_node(name)
            node.temp_offline = offline
            node.offline_message = message if offline else ""
            self.tick()

    def disconnect(self, name, result="ABORTED", latency_ms=0, message="Connection was broken"):
        """Agent connection lost: running builds end with `result` after `latency_ms`."""
        with self.lock:
            node = self.get_node(name)
            node.connected = False
            node.offline_message = node.offline_message or message
            now = self.clock.now()
            for ex in node.executors:
                if ex.build is not None:
                    ex.build.end_at = now + int(latency_ms)
                    ex.build.end_result = result
            self.tick()

    def connect(self, name):
        with self.lock:
            node = self.get_node(name)
            node.connected = True
            if not node.temp_offline:
                node.offline_message = ""
            self.tick()

    def set_node(self, name, labels=None, num_executors=None, mode=None):
        with self.lock:
            node = self.get_node(name)
            if labels is not None:
                node.labels = set(labels)
            if num_executors is not None:
                node.set_executors(int(num_executors))
            if mode is not None:
                if mode not in ("NORMAL", "EXCLUSIVE"):
                    raise SimError("mode must be NORMAL or EXCLUSIVE")
                node.mode = mode
            self.tick()

    def take_executor(self, name, executor=None, url=None):
        """A build we do not model occupies an executor (a 'foreign' build)."""
        with self.lock:
            node = self.get_node(name)
            cands = [e for e in node.executors if e.idle()]
            if executor is not None:
                cands = [e for e in node.executors if e.number == int(executor) and e.idle()]
            if not cands:
                raise SimError("no idle executor on %r" % name)
            ex = cands[0]
            ex.foreign = {"_class": "hudson.model.FreeStyleBuild", "number": 1,
                          "url": url or self.base_url + "job/foreign/1/"}
            return ex.number

    def release_executor(self, name, executor):
        with self.lock:
            node = self.get_node(name)
            for ex in node.executors:
                if ex.number == int(executor):
                    ex.foreign = None
            self.tick()

    # ------------------------------------------------------------------ controller

    def restart(self):
        """Controller restart: new session; running builds ABORTED; queue kept; LeftItems dropped."""
        with self.lock:
            self.tick()
            now = self.clock.now()
            for job in self.jobs.values():
                for b in list(job.active):
                    self._finish(b, "ABORTED", now)
            for item in list(self.queue.values()):
                if item.state == "left":
                    del self.queue[item.id]
            self.left_heap = []
            for node in self.nodes:
                for ex in node.executors:
                    ex.foreign = None
            self.session_id = uuid.uuid4().hex[:8]
            self.sessions.clear()
            self.quieting_down = False
            self.tick()

    def set_quiet_down(self, on):
        with self.lock:
            self.quieting_down = bool(on)
            self.tick()

    def advance(self, ms):
        with self.lock:
            self.clock.advance(ms)
            self.tick()
