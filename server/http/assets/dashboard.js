// roundhouse dashboard: polls the status API every 2 s and redraws the tables. Plain JS, no
// dependencies; every value from the server is inserted as text, never as HTML.
"use strict";

const REFRESH_MS = 2000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function num(v) { return el("td", {class: "n"}, v); }
function badge(text, cls) { return el("span", {class: "badge " + (cls || text)}, text); }

function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

function age(ms) {
  if (ms < 1000) return ms + " ms";
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h";
}

function fill(tbody, rows, cols, emptyText) {
  tbody.replaceChildren(...(rows.length ? rows :
      [el("tr", {}, el("td", {colspan: String(cols), class: "empty"}, emptyText))]));
}

function renderStatus(st) {
  const t = st.totals;
  document.getElementById("summary").textContent =
      `v${st.server.version} · up ${age(st.server.uptime_ms)} · ${st.server.connections} connections · ` +
      `${t.queued} queued · ${t.running} running · ${t.workers} workers · store ${st.store.type}` +
      (st.store.type === "sqlite" ? ` (${st.store.commits} commits)` : "");
  const rows = st.functions.map(f => el("tr",
      {class: f.queued_total + f.running > 0 ? "nonzero" : "", "data-function": f.name},
      el("td", {}, f.name), num(f.queued.high), num(f.queued.normal), num(f.queued.low),
      num(f.running), num(f.workers), num(f.submitted), num(f.completed), num(f.failed)));
  fill(document.querySelector("#functions tbody"), rows, 9, "no functions");
}

function renderWorkers(doc) {
  const rows = doc.workers.map(w => el("tr", {},
      el("td", {}, w.client_id !== "-" ? w.client_id : (w.fd >= 0 ? "fd " + w.fd : "in-process")),
      el("td", {}, w.address), el("td", {class: "wrap"}, w.functions.join(", ")),
      el("td", {class: "wrap"}, w.running.join(", ")),
      el("td", {}, w.running.length ? badge("busy") : w.sleeping ? "sleeping" : "awake")));
  fill(document.querySelector("#workers tbody"), rows, 5, "no workers");
}

function renderJobs(doc) {
  const rows = doc.jobs.map(j => el("tr", {"data-handle": j.handle},
      el("td", {}, j.handle), el("td", {}, j.function), el("td", {}, j.unique),
      el("td", {}, j.priority), el("td", {}, j.ignored ? j.state + " (ignored)" : j.state),
      num(age(j.age_ms)), el("td", {}, j.worker)));
  fill(document.querySelector("#jobs tbody"), rows, 7, "no jobs");
}

// A build URL's path without the trailing slash: executors report the URL Jenkins builds from
// its configured root, the adapter the one it was given, so only the path is compared.
function urlKey(url) {
  try { return new URL(url).pathname.replace(/\/+$/, ""); } catch (e) { return url; }
}

// The part of a foreign build's URL that names it: ".../job/a/job/b/12/" -> "a/b #12".
function foreignName(url) {
  const parts = urlKey(url).split("/").filter(Boolean);
  const number = /^\d+$/.test(parts[parts.length - 1] || "") ? parts.pop() : "";
  const names = [];
  for (let i = 0; i + 1 < parts.length; i++) {
    if (parts[i] === "job") names.push(decodeURIComponent(parts[++i]));
  }
  return names.length ? names.join("/") + (number ? " #" + number : "") : "build";
}

function buildLink(url, text, title) {
  const attrs = {href: url, target: "_blank", rel: "noopener"};
  if (title) attrs.title = title;
  return el("a", attrs, text);
}

function renderMaster(m) {
  const ours = new Map(m.builds.filter(b => b.url).map(b => [urlKey(b.url), b]));
  const shown = new Set();
  const rows = [];
  for (const n of m.nodes) {
    if (!n.executors.length) continue;  // e.g. a built-in node with 0 executors
    const offline = n.offline || n.temporarily_offline;
    const nodeTitle = (n.labels.length ? "labels: " + n.labels.join(" ") : "no labels") +
                      (n.mode ? " · " + n.mode : "");
    n.executors.forEach((e, i) => {
      const b = e.build_url ? ours.get(urlKey(e.build_url)) : undefined;
      let build = "";
      if (b) {
        shown.add(b);
        build = el("span", {},
            buildLink(e.build_url, b.number ? `${b.job} #${b.number}` : b.job,
                      `${b.function} · ${b.handle} · unique ${b.unique}`),
            el("span", {class: "sub"}, ` ${b.function} · ${age(b.age_ms)}`));
      } else if (e.build_url) {
        build = el("span", {}, buildLink(e.build_url, foreignName(e.build_url)),
                   el("span", {class: "sub"}, " not ours"));
      }
      // As the counts: a build running on an offline node's executor is busy.
      const state = !e.idle ? badge("busy")
                  : offline ? badge(n.offline ? "offline" : "temporarily offline", "offline")
                  : badge("idle");
      rows.push(el("tr", {class: i === 0 ? "node-first" : "node-more", "data-node": n.name,
                          "data-worker": e.worker,
                          "data-state": !e.idle ? "busy" : offline ? "offline" : "idle"},
          el("td", {title: nodeTitle}, n.name), el("td", {}, e.worker),
          el("td", {}, state), el("td", {}, build)));
    });
  }
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", {colspan: "4", class: "empty"},
                              m.nodes.length ? "no executors" : "no nodes seen yet")));
  }
  const table = el("table", {class: "executors"},
      el("thead", {}, el("tr", {}, el("th", {}, "node"), el("th", {}, "executor"),
                         el("th", {}, "state"), el("th", {}, "build"))),
      el("tbody", {}, ...rows));

  // Our builds not (yet) on an executor: claimed, triggering, queued in Jenkins, finishing.
  const waiting = m.builds.filter(b => !shown.has(b));
  const pending = waiting.length ? el("ul", {class: "pending"}, ...waiting.map(b =>
      el("li", {"data-handle": b.handle}, badge(b.state, "state"), " ",
         b.url ? buildLink(b.url, b.number ? `${b.job} #${b.number}` : b.job) : b.job,
         el("span", {class: "sub"}, ` ${b.function}` + (b.node ? ` · ${b.node}` : "") +
                                    ` · ${age(b.age_ms)}`)))) : null;

  // The adapter's counts (as in `jenkins list` and /metrics), not recounted here.
  const x = m.executors;
  const meta = [m.base_url];
  if (m.version) meta.push("Jenkins " + m.version);
  meta.push(m.last_poll_age_ms >= 0 ? "polled " + age(m.last_poll_age_ms) + " ago" : "never polled");
  const stats = `${x.busy}/${x.total} executors busy` +
                (x.offline ? ` · ${x.offline} offline` : "") +
                ` · ${plural(m.builds.length, "build")} in ` +
                `flight · ${m.dispatches} dispatched · ` +
                `${m.request_errors}/${m.requests} request errors`;
  return el("div", {class: "master", "data-master": m.name, "data-health": m.health},
      el("h3", {}, el("span", {class: "name"}, m.name), " ", badge(m.health),
         m.quieting_down ? " " : null, m.quieting_down ? badge("quieting down", "warn") : null,
         m.enabled ? null : " ", m.enabled ? null : badge("disabled", "offline")),
      el("div", {class: "meta"}, meta.join(" · ")),
      el("div", {class: "meta"}, stats),
      el("div", {class: "scroll"}, table), pending);
}

function renderJenkins(doc) {
  const box = document.getElementById("masters");
  if (!doc.masters.length) {
    box.replaceChildren(el("p", {class: "empty"}, doc.enabled ? "no Jenkins masters registered"
                                                              : "Jenkins not configured"));
    return;
  }
  box.replaceChildren(...doc.masters.map(renderMaster));
}

// With a status API token (--status-token-file/-env) the dashboard is opened as /#token=TOKEN:
// the fragment never leaves the browser, and the API requests carry it as a bearer token.
const apiToken = new URLSearchParams(location.hash.slice(1)).get("token");

async function getJson(path) {
  const headers = apiToken ? {Authorization: "Bearer " + apiToken} : {};
  const r = await fetch(path, {cache: "no-store", headers});
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

async function refresh() {
  const note = document.getElementById("refresh");
  try {
    const [st, wk, jb, jk] = await Promise.all(
        ["/api/status", "/api/workers", "/api/jobs", "/api/jenkins"].map(getJson));
    renderStatus(st);
    renderWorkers(wk);
    renderJobs(jb);
    renderJenkins(jk);
    note.textContent = "updated " + new Date().toLocaleTimeString();
    note.classList.remove("stale");
    document.body.dataset.loaded = "1";
  } catch (err) {
    note.textContent = "cannot reach the server (" + err.message + ")";
    note.classList.add("stale");
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
