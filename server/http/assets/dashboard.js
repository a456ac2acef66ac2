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

function renderJenkins(doc) {
  const box = document.getElementById("masters");
  if (!doc.masters.length) {
    box.replaceChildren(el("p", {class: "empty"}, doc.enabled ? "no Jenkins masters registered"
                                                              : "Jenkins not configured"));
    return;
  }
  box.replaceChildren(...doc.masters.map(m => {
    const builds = new Map(m.builds.filter(b => b.url).map(b => [b.url, b]));
    const rows = [];
    for (const n of m.nodes) {
      for (const e of n.executors) {
        const b = e.build_url ? builds.get(e.build_url) : undefined;
        const link = e.build_url ? el("a", {href: e.build_url, target: "_blank", rel: "noopener"},
                                      b ? `${b.job} #${b.number}` : "build") : "";
        const state = n.offline ? badge("offline") : e.idle ? badge("idle") : badge("busy");
        rows.push(el("tr", {"data-worker": e.worker}, el("td", {}, n.name),
                        el("td", {}, e.worker), el("td", {}, state), el("td", {}, link)));
      }
    }
    const table = el("table", {class: "executors"},
        el("thead", {}, el("tr", {}, el("th", {}, "node"), el("th", {}, "executor"),
                           el("th", {}, "state"), el("th", {}, "build"))),
        el("tbody", {}, ...rows));
    return el("div", {class: "master", "data-master": m.name},
        el("h3", {}, m.name + " ", badge(m.health)),
        el("div", {class: "meta"}, `${m.base_url} · ${m.nodes.length} nodes · ` +
            `${m.builds.length} builds in flight · ${m.request_errors}/${m.requests} request errors`),
        el("div", {class: "scroll"}, table));
  }));
}

async function getJson(path) {
  const r = await fetch(path, {cache: "no-store"});
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
