"""Control API: /_fake/<name> JSON endpoints mapping onto Simulator / World methods.

Every endpoint answers JSON; errors answer 400 {"error": ...}. No auth, no faults, not logged.
"""

import json
from urllib.parse import parse_qs

from . import views
from .handlers import Response, json_response
from .model import SimError


def state(sim):
    w = sim.world
    with w.lock:
        w.tick()
        return {
            "now": w.clock.now(),
            "session": w.session_id,
            "version": w.version,
            "url": w.base_url,
            "quietingDown": w.quieting_down,
            "queue": [views.queue_item_json(w, i) for i in sorted(w.queue.values(), key=lambda i: i.id)],
            "builds": [dict(views.build_json(w, b), job=j.full_name)
                       for j in w.jobs.values() for b in j.builds],
            "computers": views.computer_set_json(w)["computer"],
            "faults": sim.faults.describe(),
        }


def _job_set(sim, b):
    w = sim.world
    with w.lock:
        job = w.job(b["job"])
        if "disabled" in b:
            job.disabled = bool(b["disabled"])
        if "concurrentBuild" in b:
            job.concurrent = bool(b["concurrentBuild"])
        if "label" in b:
            job.label = b["label"]
        if "blockedWhy" in b:
            job.blocked_why = b["blockedWhy"]
        if "veto" in b:
            job.veto = bool(b["veto"])
        w.tick()
    return {}


def _job_add(sim, b):
    with sim.world.lock:
        sim.world._add_job(b)
    return {}


def _job_remove(sim, b):
    w = sim.world
    with w.lock:
        job = w.job(b["job"])
        for item in list(w.queue.values()):
            if item.job is job:
                del w.queue[item.id]
                w.pending.pop(item.id, None)
        del w.jobs[job.full_name]
    return {}


def _stop(sim, b, result):
    w = sim.world
    build = w.finish_build(b["job"], b["number"], b.get("result", result))
    return {"result": build.result}


def _fault(sim, b):
    rule = sim.add_fault(**b)
    return rule.describe()


POST = {
    "world": lambda sim, b: (sim.load_world(b), {})[1],
    "advance": lambda sim, b: {"now": sim.advance(b.get("ms", 0), b.get("seconds", 0))},
    "finish": lambda sim, b: _stop(sim, b, "SUCCESS"),
    "abort": lambda sim, b: _stop(sim, b, "ABORTED"),
    "take_executor": lambda sim, b: {"executor": sim.world.take_executor(
        b["node"], b.get("executor"), b.get("url"))},
    "release_executor": lambda sim, b: (sim.world.release_executor(b["node"], b["executor"]), {})[1],
    "node/add": lambda sim, b: (sim.world.add_node(b), {})[1],
    "node/remove": lambda sim, b: (sim.world.remove_node(b["name"]), {})[1],
    "node/offline": lambda sim, b: (sim.world.set_offline(b["name"], b.get("message", "")), {})[1],
    "node/online": lambda sim, b: (sim.world.set_offline(b["name"], "", offline=False), {})[1],
    "node/disconnect": lambda sim, b: (sim.world.disconnect(
        b["name"], b.get("result", "ABORTED"), b.get("latency_ms", 0)), {})[1],
    "node/connect": lambda sim, b: (sim.world.connect(b["name"]), {})[1],
    "node/set": lambda sim, b: (sim.world.set_node(
        b["name"], b.get("labels"), b.get("numExecutors"), b.get("mode")), {})[1],
    "job/set": _job_set,
    "job/add": _job_add,
    "job/remove": _job_remove,
    "quiet_down": lambda sim, b: (sim.world.set_quiet_down(b.get("on", True)), {})[1],
    "restart": lambda sim, b: (sim.restart(b.get("refuse_ms", 1000), b.get("unavailable_ms", 1000)), {})[1],
    "faults": _fault,
    "faults/clear": lambda sim, b: (sim.clear_faults(), {})[1],
    "requests/clear": lambda sim, b: (sim.clear_requests(), {})[1],
}

GET = {
    "state": lambda sim, q: state(sim),
    "requests": lambda sim, q: sim.requests(),
    "builds": lambda sim, q: sim.builds(),
    "faults": lambda sim, q: sim.faults.describe(),
    "world": lambda sim, q: sim.world.spec,
}


def handle(sim, method, name, query, body):
    try:
        if method == "GET" and name in GET:
            return json_response(GET[name](sim, parse_qs(query)))
        if method == "POST" and name in POST:
            b = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(b, dict):
                raise SimError("body must be a JSON object")
            return json_response(POST[name](sim, b))
        if name in GET or name in POST:
            return Response(405, "Method Not Allowed")
        return json_response({"error": "unknown control endpoint %r" % name}, 404)
    except (SimError, KeyError, ValueError, TypeError) as e:
        return json_response({"error": "%s: %s" % (type(e).__name__, e)}, 400)
