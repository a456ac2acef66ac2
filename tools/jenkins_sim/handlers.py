"""Jenkins REST endpoints (R1-R11, W0-W6, quietDown) and authentication, on top of the model."""

import base64
import hashlib
import json
import re
import uuid
from urllib.parse import parse_qs

from . import views
from .treefilter import TreeSyntaxError, apply_tree, depth0, parse_tree

WRITE_ACTIONS = ("build", "buildWithParameters", "stop", "term", "kill", "submitDescription",
                 "changeOfflineCause", "toggleOffline", "cancelItem", "quietDown", "cancelQuietDown")


class Response:
    def __init__(self, status, body=b"", headers=None, content_type="text/plain;charset=utf-8"):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = list(headers or [])
        if self.body or status not in (204, 302, 303):
            self.headers.append(("Content-Type", content_type))


def json_response(value, status=200):
    return Response(status, json.dumps(value, ensure_ascii=False), content_type="application/json;charset=utf-8")


def redirect(status, location):
    return Response(status, b"", [("Location", location)])


class Request:
    """A parsed HTTP request: method, decoded path segments, merged query+form parameters."""

    def __init__(self, method, raw_path, query, headers, body):
        from urllib.parse import unquote
        self.method = method
        self.raw_path = raw_path
        self.segs = [unquote(s, encoding="utf-8", errors="replace") for s in raw_path.split("/") if s]
        self.query = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body
        self.form = dict(self.query)
        ctype = headers.get("Content-Type", "") or ""
        if body and ("x-www-form-urlencoded" in ctype or not ctype):
            text = body.decode("utf-8", errors="replace")
            self.form.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
        self.user = None
        self.perms = frozenset()
        self.auth_mode = None  # None (anonymous) | "token" | "password"
        self.set_cookies = []


# ---------------------------------------------------------------------------------- auth

def session_cookie_name(world):
    return "JSESSIONID." + world.session_id


def authenticate(world, req):
    """Sets req.user/perms/auth_mode; returns a Response on failure (401), else None."""
    auth = req.headers.get("Authorization")
    if not auth:
        req.perms = world.anonymous_permissions
        return None
    try:
        scheme, _, blob = auth.partition(" ")
        if scheme.lower() != "basic":
            raise ValueError
        user, _, secret = base64.b64decode(blob.strip()).decode("utf-8").partition(":")
    except Exception:
        return Response(401, "Invalid authorization header")
    u = world.users.get(user)
    if u is not None and u["token"] is not None and secret == u["token"]:
        req.auth_mode = "token"
    elif u is not None and u["password"] is not None and secret == u["password"]:
        req.auth_mode = "password"
    else:
        return Response(401, "Invalid password/token for user: %s" % user,
                        [("WWW-Authenticate", 'Basic realm="Jenkins"')])
    req.user = user
    req.perms = u["permissions"]
    return None


def _cookie_session(world, req):
    name = session_cookie_name(world)
    for part in (req.headers.get("Cookie") or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name and v in world.sessions:
            return v
    return None


def crumb_ok(world, req):
    if req.method != "POST" or not world.use_crumbs or req.auth_mode == "token":
        return True
    sid = _cookie_session(world, req)
    if sid is None:
        return False
    user, crumb = world.sessions[sid]
    sent = req.headers.get("Jenkins-Crumb") or req.form.get("Jenkins-Crumb")
    return user == req.user and sent == crumb


def forbidden(req, perm):
    who = req.user or "anonymous"
    return Response(403, "%s is missing the %s permission" % (who, perm))


# ---------------------------------------------------------------------------------- dispatch

def handle(world, req):
    with world.lock:
        world.tick()
        err = authenticate(world, req)
        if err is not None:
            return err
        if "Overall/Read" not in req.perms:
            return forbidden(req, "Overall/Read")
        if not crumb_ok(world, req):
            return Response(403, "No valid crumb was included in the request")
        resp = route(world, req)
        for c in req.set_cookies:
            resp.headers.append(("Set-Cookie", c))
        if req.user:
            resp.headers.append(("X-You-Are-Authenticated-As", req.user))
        return resp


def read(req, value):
    tree = req.query.get("tree")
    if tree is None:
        return json_response(depth0(value))
    try:
        return json_response(apply_tree(value, parse_tree(tree)))
    except TreeSyntaxError as e:
        return Response(400, "bad tree: %s" % e)


def can_read_job(world, req, job):
    if "Job/Read" not in req.perms:
        return False
    return job.readers is None or req.user in job.readers


def split_tail(segs):
    """Returns (object segments, tail) where tail is ['api','json'], [action], or []."""
    if len(segs) >= 2 and segs[-2] == "api":
        return segs[:-2], segs[-2:]
    if segs and segs[-1] in WRITE_ACTIONS:
        return segs[:-1], segs[-1:]
    return segs, []


def route(world, req):
    obj, tail = split_tail(req.segs)
    is_api = tail[:1] == ["api"]
    if is_api and tail[1] != "json":
        return Response(404, "only api/json is simulated")
    action = tail[0] if tail and not is_api else None
    if action is not None and req.method != "POST":
        return Response(405, "Method Not Allowed", [("Allow", "POST")])

    if not obj:
        if action in ("quietDown", "cancelQuietDown"):
            if "Overall/Administer" not in req.perms:
                return forbidden(req, "Overall/Administer")
            world.set_quiet_down(action == "quietDown")
            return redirect(302, world.base_url)
        if action is None:
            return read(req, views.root_json(world, lambda full: _visible(world, req, full)))
        return Response(404, "Not Found")
    head = obj[0]
    if head == "job":
        return route_job(world, req, obj, action)
    if head == "computer":
        return route_computer(world, req, obj, action)
    if head == "queue":
        return route_queue(world, req, obj, action)
    if head == "label" and len(obj) == 2 and action is None:
        return read(req, views.label_json(world, obj[1]))
    if head == "crumbIssuer" and len(obj) == 1 and action is None:
        return crumb_issuer(world, req)
    return Response(404, "Not Found")


def _visible(world, req, full_name):
    job = world.jobs.get(full_name)
    return job is None or can_read_job(world, req, job)


def route_job(world, req, obj, action):
    names = []
    rest = list(obj)
    while len(rest) >= 2 and rest[0] == "job":
        names.append(rest[1])
        rest = rest[2:]
    full = "/".join(names)
    if full in world.folders and not rest and action is None:
        value = views.folder_json(world, full)
        value["jobs"] = [j for j in value["jobs"] if _visible(world, req, j["fullName"])]
        return read(req, value)
    job = world.jobs.get(full)
    if job is None or not can_read_job(world, req, job):
        return Response(404, "Not Found")
    if not rest:
        if action is None:
            return read(req, views.job_json(world, job))
        if action in ("build", "buildWithParameters"):
            return trigger(world, req, job, action)
        return Response(404, "Not Found")
    if len(rest) != 1:
        return Response(404, "Not Found")
    build = resolve_build(job, rest[0])
    if build is None:
        return Response(404, "Not Found")
    if action is None:
        return read(req, views.build_json(world, build))
    build_url = world.build_url(build)
    if action in ("stop", "term", "kill"):
        if action != "stop" and job.kind != "pipeline":
            return Response(404, "Not Found")
        if "Job/Cancel" not in req.perms:
            return forbidden(req, "Job/Cancel")
        world.stop_build(build, latency_ms=0 if action == "kill" else None)
        return redirect(302, build_url)
    if action == "submitDescription":
        if "Run/Update" not in req.perms:
            return forbidden(req, "Run/Update")
        build.description = req.form.get("description", "")
        return redirect(302, build_url)
    return Response(404, "Not Found")


def resolve_build(job, ref):
    if ref.isdigit():
        return job.build(int(ref))
    builds = list(reversed(job.builds))
    if ref == "lastBuild":
        return builds[0] if builds else None
    if ref == "lastCompletedBuild":
        return next((b for b in builds if not b.building), None)
    if ref == "lastSuccessfulBuild":
        return next((b for b in builds if b.result == "SUCCESS"), None)
    return None


_DELAY = re.compile(r"^\s*(\d+)\s*(sec|secs|s)?\s*$")


def trigger(world, req, job, action):
    if "Job/Build" not in req.perms:
        return forbidden(req, "Job/Build")
    if job.disabled:
        return Response(409, "%s is not buildable" % job.full_name)
    with_params = bool(job.params)
    if action == "buildWithParameters" and not job.params:
        return Response(400, "%s is not parameterized" % job.full_name)
    delay = None
    if "delay" in req.query:
        m = _DELAY.match(req.query["delay"])
        if not m:
            return Response(400, "Invalid delay parameter value: %s" % req.query["delay"])
        delay = int(m.group(1))
    if job.veto:
        return redirect(302, ".")
    try:
        outcome, item = world.trigger(job, req.form if action == "buildWithParameters" else {},
                                      with_params, delay)
    except ValueError as e:
        return Response(500, str(e))
    location = world.item_url(item)
    if outcome == "merged" and action == "buildWithParameters":
        return redirect(303, location)
    return Response(201, b"", [("Location", location)])


def route_computer(world, req, obj, action):
    if len(obj) == 1 and action is None:
        return read(req, views.computer_set_json(world))
    if len(obj) != 2:
        return Response(404, "Not Found")
    node = world.node(obj[1])
    if node is None:
        return Response(404, "Not Found")
    if action is None:
        return read(req, views.computer_json(world, node))
    if action in ("changeOfflineCause", "toggleOffline"):
        if "Computer/Disconnect" not in req.perms:
            return forbidden(req, "Computer/Disconnect")
        msg = req.form.get("offlineMessage", "")
        if action == "toggleOffline":
            world.set_offline(obj[1], msg, offline=not node.temp_offline)
        else:
            world.set_offline(obj[1], msg, offline=True)
        return redirect(302, world.base_url + world.computer_path(node))
    return Response(404, "Not Found")


def route_queue(world, req, obj, action):
    if len(obj) == 1 and action is None:
        return read(req, views.queue_json(world))
    if len(obj) == 1 and action == "cancelItem":
        try:
            item_id = int(req.form.get("id", ""))
        except ValueError:
            return Response(404, "Not Found")
        item = world.queue.get(item_id)
        if item is None or item.state == "left":
            return Response(404, "Not Found")
        if "Job/Cancel" not in req.perms:
            return Response(422, "Item cannot be cancelled")
        world.cancel_item(item_id)
        return Response(204)
    if len(obj) == 3 and obj[1] == "item" and obj[2].isdigit() and action is None:
        item = world.queue.get(int(obj[2]))
        if item is None or not can_read_job(world, req, item.job):
            return Response(404, "Not Found")
        return read(req, views.queue_item_json(world, item))
    return Response(404, "Not Found")


def crumb_issuer(world, req):
    if not world.use_crumbs:
        return Response(404, "Not Found")
    sid = _cookie_session(world, req)
    if sid is None:
        sid = "node0" + uuid.uuid4().hex
        crumb = hashlib.sha256((sid + (req.user or "")).encode()).hexdigest()
        world.sessions[sid] = (req.user, crumb)
        req.set_cookies.append("%s=%s; Path=/; HttpOnly" % (session_cookie_name(world), sid))
    return read(req, {"_class": "hudson.security.csrf.DefaultCrumbIssuer",
                      "crumb": world.sessions[sid][1], "crumbRequestField": "Jenkins-Crumb"})
