"""Full JSON representations of model objects (filtered afterwards by treefilter)."""

from urllib.parse import quote

from .labelexpr import compile_label
from .model import FOLDER_CLASS, JOB_CLASSES, PARAM_CLASSES, QUEUE


def params_action(world, params, job):
    types = {p.name: p.type for p in job.params}
    return {"_class": "hudson.model.ParametersAction",
            "parameters": [{"_class": PARAM_CLASSES[types.get(n, "string")][1], "name": n, "value": v}
                           for n, v in params]}


def build_json(world, b):
    job = b.job
    actions = []
    if b.params:
        actions.append(params_action(world, b.params, job))
    actions.append({"_class": "hudson.model.CauseAction", "causes": [
        {"_class": "hudson.model.Cause$RemoteCause", "shortDescription": "Started remotely"}]})
    out = {
        "_class": JOB_CLASSES[job.kind][1],
        "actions": actions,
        "building": b.building,
        "description": b.description,
        "displayName": "#%d" % b.number,
        "duration": b.duration,
        "estimatedDuration": job.estimated_duration(),
        "fullDisplayName": "%s #%d" % (job.full_name.replace("/", " \u00bb "), b.number),
        "id": str(b.number),
        "number": b.number,
        "queueId": b.queue_id,
        "result": b.result,
        "timestamp": b.timestamp,
        "url": world.build_url(b),
    }
    if job.kind != "pipeline":
        out["builtOn"] = "" if (b.node is None or b.node.builtin) else b.node.name
    return out


def build_ref(world, b):
    if b is None:
        return None
    return {"_class": JOB_CLASSES[b.job.kind][1], "number": b.number, "url": world.build_url(b)}


def job_json(world, job):
    builds = [build_json(world, b) for b in reversed(job.builds)]
    done = [b for b in builds if not b["building"]]
    last = builds[0] if builds else None
    in_queue = [i for i in world.pending.values() if i.job is job]
    out = {
        "_class": job.cls,
        "actions": [],
        "allBuilds": builds,
        "buildable": not job.disabled,
        "builds": builds[:100],
        "color": "disabled" if job.disabled else ("notbuilt" if not done else {
            "SUCCESS": "blue", "UNSTABLE": "yellow", "FAILURE": "red"}.get(done[0]["result"], "aborted")),
        "concurrentBuild": job.concurrent,
        "description": "",
        "disabled": job.disabled,
        "displayName": job.name,
        "firstBuild": builds[-1] if builds else None,
        "fullDisplayName": job.full_name.replace("/", " \u00bb "),
        "fullName": job.full_name,
        "inQueue": bool(in_queue),
        "lastBuild": last,
        "lastCompletedBuild": done[0] if done else None,
        "lastSuccessfulBuild": next((b for b in done if b["result"] == "SUCCESS"), None),
        "name": job.name,
        "nextBuildNumber": job.next_number,
        "property": [],
        "queueItem": queue_item_json(world, in_queue[0]) if in_queue else None,
        "url": world.base_url + job.path(),
    }
    if job.kind != "pipeline":
        out["labelExpression"] = job.label
    if job.params:
        out["property"].append({"_class": "hudson.model.ParametersDefinitionProperty",
                                "parameterDefinitions": [p.to_json() for p in job.params]})
    return out


def folder_json(world, full_name):
    return {
        "_class": FOLDER_CLASS,
        "description": None,
        "displayName": full_name.rsplit("/", 1)[-1],
        "fullName": full_name,
        "jobs": [item_json(world, c) for c in world.children(full_name)],
        "name": full_name.rsplit("/", 1)[-1],
        "url": world.base_url + "".join("job/%s/" % quote(s, safe="") for s in full_name.split("/")),
    }


def item_json(world, full_name):
    if full_name in world.jobs:
        return job_json(world, world.jobs[full_name])
    return folder_json(world, full_name)


def root_json(world, visible):
    return {
        "_class": "hudson.model.Hudson",
        "assignedLabels": [{"_class": "hudson.model.labels.LabelAtom", "name": world.builtin_label}],
        "description": None,
        "jobs": [item_json(world, c) for c in world.children("") if visible(c)],
        "mode": world.nodes[0].mode,
        "nodeDescription": "the Jenkins controller's built-in node",
        "nodeName": "",
        "numExecutors": world.nodes[0].num_executors,
        "quietingDown": world.quieting_down,
        "url": world.base_url,
        "useCrumbs": world.use_crumbs,
        "useSecurity": world.use_security,
    }


def executor_json(world, ex):
    cur = build_ref(world, ex.build) if ex.build is not None else ex.foreign
    return {"_class": "hudson.model.Executor", "currentExecutable": cur, "idle": ex.idle(),
            "likelyStuck": False, "number": ex.number,
            "progress": -1 if ex.idle() else 0}


def computer_json(world, node):
    execs = node.executors
    one_off = []
    if node.builtin:
        for job in world.jobs.values():
            for b in job.running():
                if b.node is None:
                    one_off.append({"_class": "hudson.model.OneOffExecutor",
                                    "currentExecutable": build_ref(world, b), "idle": False,
                                    "number": -1})
    offline = not node.online
    cause = None
    if offline:
        cause = {"_class": "hudson.slaves.OfflineCause$UserCause" if node.temp_offline
                 else "hudson.slaves.OfflineCause$ChannelTermination",
                 "description": node.offline_message}
    return {
        "_class": "hudson.model.Hudson$MasterComputer" if node.builtin else "hudson.slaves.SlaveComputer",
        "assignedLabels": [{"name": l} for l in sorted(world.node_labels(node))],
        "description": "",
        "displayName": ("Built-In Node" if world.new_builtin_naming else "master") if node.builtin else node.name,
        "executors": [executor_json(world, e) for e in execs],
        "idle": all(e.idle() for e in node.executors) and not one_off,
        "jnlpAgent": False,
        "launchSupported": not node.builtin,
        "manualLaunchAllowed": True,
        "numExecutors": node.num_executors,
        "offline": offline,
        "offlineCause": cause,
        "offlineCauseReason": node.offline_message if offline else "",
        "oneOffExecutors": one_off,
        "temporarilyOffline": node.temp_offline,
    }


def computer_set_json(world):
    online = [n for n in world.nodes if n.online]
    return {
        "_class": "hudson.model.ComputerSet",
        "busyExecutors": sum(1 for n in online for e in n.executors if not e.idle()),
        "computer": [computer_json(world, n) for n in world.nodes],
        "displayName": "Nodes",
        "totalExecutors": sum(len(n.executors) for n in online),
    }


def label_json(world, text):
    label = compile_label(text)
    nodes = [n for n in world.nodes if label is not None and label.matches(world.node_labels(n))]
    online = [n for n in nodes if n.online]
    return {
        "_class": "hudson.model.labels.LabelAtom" if label is None or label.is_atom()
        else "hudson.model.labels.LabelExpression",
        "busyExecutors": sum(1 for n in online for e in n.executors if not e.idle()),
        "description": None,
        "idleExecutors": sum(1 for n in online for e in n.executors if e.idle()),
        "name": text,
        "nodes": [{"_class": "hudson.model.Hudson" if n.builtin else "hudson.slaves.DumbSlave",
                   "mode": n.mode, "nodeName": n.name} for n in nodes],
        "offline": not online,
        "totalExecutors": sum(len(n.executors) for n in online),
    }


def queue_item_json(world, item):
    kind = {"waiting": "WaitingItem", "blocked": "BlockedItem",
            "buildable": "BuildableItem", "left": "LeftItem"}[item.state]
    job = item.job
    out = {
        "_class": QUEUE + kind,
        "actions": [params_action(world, item.params, job)] if item.params else [],
        "blocked": item.state == "blocked",
        "buildable": item.state == "buildable",
        "id": item.id,
        "inQueueSince": item.in_queue_since,
        "params": "".join("\n%s=%s" % (n, v) for n, v in item.params),
        "stuck": False,
        "task": {"_class": job.cls, "name": job.name, "url": world.base_url + job.path()},
        "url": "queue/item/%d/" % item.id,
        "why": None if item.state == "left" else item.why,
    }
    if item.state == "waiting":
        out["timestamp"] = item.due
    if item.state == "buildable":
        out["pending"] = False
    if item.state == "left":
        out["cancelled"] = item.cancelled
        out["executable"] = build_ref(world, item.build)
    return out


def queue_json(world):
    items = list(world.pending.values())
    items.sort(key=lambda i: (i.in_queue_since, i.id))
    return {"_class": "hudson.model.Queue", "discoverableItems": [],
            "items": [queue_item_json(world, i) for i in items]}
