// strato ui: the pages' script. Everything from the run store (task names, errors, outputs) is user
// data: it reaches the page only as text nodes and attribute values, never as HTML.
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;
  const GANTT_ROWS = 300;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const svg = tag.startsWith("svg:");
    const node = svg ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(message, data) { super(message); this.data = data; }
  }

  async function api(path, options) {
    const response = await fetch(path, {headers: {Accept: "application/json"}, ...(options || {})});
    let data;
    try { data = await response.json(); } catch (_) { data = {error: `HTTP ${response.status} from ${path}`}; }
    if (!response.ok) throw new ApiError(data.error || `HTTP ${response.status}`, data);
    return data;
  }

  function problem(message) {
    const box = $("problem");
    if (!box) return;
    box.hidden = !message;
    box.textContent = message || "";
  }

  const pad = (n) => String(n).padStart(2, "0");
  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:` +
      `${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
    if (seconds < 60) return `${seconds.toFixed(2)} s`;
    const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
    if (m < 60) return `${m}m ${pad(s)}s`;
    return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
  }
  const badge = (status) => el("span", {class: `badge s-${status}`, "data-status": status}, status);
  const json = (value) => JSON.stringify(value, null, 2) ?? "null";
  function clip(text, n) { text = String(text ?? ""); return text.length > n ? text.slice(0, n) + "…" : text; }
  const errorLine = (error) => error ? `${error.error}: ${error.cause}` : "";
  const runLink = (id) => `/runs/${encodeURIComponent(id)}`;
  const pipelineLink = (name, hash) =>
    `/pipelines/${encodeURIComponent(name)}` + (hash ? `?hash=${encodeURIComponent(hash)}` : "");
  const nodeOf = (key) => key.split(/[[/#]/)[0];

  function checksTable(checks) {
    // the attempt's data-quality checks (strato.checks): name, severity, outcome, what failed
    if (!checks || !checks.length) return null;
    return el("table", {class: "checks"}, el("thead", {}, el("tr", {}, el("th", {}, "check"), el("th", {}, "severity"),
        el("th", {}, "outcome"), el("th", {}, "message"))),
      el("tbody", {}, ...checks.map((c) => el("tr", {class: c.passed ? "passed" : `failed ${c.severity}`},
        el("td", {class: "mono"}, c.name), el("td", {}, c.severity),
        el("td", {}, c.passed ? "passed" : (c.severity === "error" ? "failed" : "warning")),
        el("td", {}, clip(c.message || "", 300))))));
  }

  function errorBox(error) {
    if (!error) return null;
    const extra = Object.entries(error).filter(([k]) => !["error", "cause", "traceback"].includes(k));
    return el("div", {class: "error-box"},
      el("div", {}, el("span", {class: "name"}, error.error ?? "error"), ": ", el("span", {class: "cause"}, error.cause ?? "")),
      error.traceback ? el("pre", {class: "traceback"}, Array.isArray(error.traceback) ? error.traceback.join("") : error.traceback) : null,
      extra.length ? el("pre", {class: "json"}, json(Object.fromEntries(extra))) : null);
  }

  function facts(dl, pairs) {
    dl.replaceChildren();
    for (const [label, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", {}, label), el("dd", {}, value));
    }
  }

  function table(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  async function header() {
    const page = document.body.dataset.page;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === page || (a.dataset.nav === "runs" && page === "run") ||
          (a.dataset.nav === "pipelines" && page === "pipeline")) a.classList.add("current");
    }
    try {
      const config = await api("/api/config");
      $("store").textContent = config.store;
      return config;
    } catch (e) {
      problem(`cannot reach the strato ui server: ${e.message}`);
      return {allow_actions: false, actions: [], targets: []};
    }
  }

  // graph ---------------------------------------------------------------------------------------
  function nodeLines(node) {
    const sub = [];
    if (node.kind === "task" && node.task && node.task !== node.id) sub.push(node.task);
    if (node.kind === "map") {
      const items = node.items;
      sub.push(items ? `map · ${(items.by_status || {}).SUCCEEDED || 0}/${items.total ?? items.started} items`
        : `map ${node.task || ""}`.trim());
    }
    if (node.kind === "wait") sub.push(`wait ${node.seconds}s`);
    if (node.kind === "pipeline") sub.push(`pipeline ${node.pipeline}`);
    if (node.guard) sub.push(node.guard.arm ? "when" : "otherwise");
    if (node.attempts > 1) sub.push(`${node.attempts} attempts`);
    return [node.id, sub.join(" · ")].filter(Boolean);
  }

  function drawGraph(container, graph, onSelect) {
    const g = new dagre.graphlib.Graph();
    g.setGraph({rankdir: "LR", nodesep: 22, ranksep: 54, marginx: 10, marginy: 10});
    g.setDefaultEdgeLabel(() => ({}));
    for (const node of graph.nodes) {
      const lines = nodeLines(node);
      const width = Math.max(96, 7.4 * Math.max(...lines.map((l) => l.length)) + 28);
      g.setNode(node.id, {width, height: lines.length > 1 ? 46 : 32});
    }
    for (const edge of graph.edges) {
      if (g.hasNode(edge.from) && g.hasNode(edge.to)) g.setEdge(edge.from, edge.to, {kind: edge.kind});
    }
    dagre.layout(g);
    const {width, height} = g.graph();
    const svg = el("svg:svg", {width: Math.ceil(width), height: Math.ceil(height), role: "img",
      "aria-label": "pipeline graph", viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`});
    svg.append(el("svg:defs", {}, el("svg:marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"}, el("svg:path", {d: "M0,0 L10,5 L0,10 z", class: "arrow"}))));
    for (const e of g.edges()) {
      const points = g.edge(e).points || [];
      const d = points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
      svg.append(el("svg:path", {d, class: `edge kind-${g.edge(e).kind}`, "marker-end": "url(#arrow)"}));
    }
    const elements = new Map();
    for (const node of graph.nodes) {
      const box = g.node(node.id);
      const group = el("svg:g", {class: "node", "data-node": node.id, tabindex: 0,
        transform: `translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})`});
      if (node.kind === "map") group.append(el("svg:rect", {class: "stack", x: 4, y: -4, width: box.width, height: box.height, rx: 6}));
      group.append(el("svg:rect", {width: box.width, height: box.height, rx: 6}));
      group.append(el("svg:title", {}, ""));
      group.append(el("svg:text", {class: "main", x: box.width / 2, y: 16}, ""));
      group.append(el("svg:text", {class: "sub", x: box.width / 2, y: 34}, ""));
      group.addEventListener("click", () => onSelect(node.id));
      group.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onSelect(node.id); });
      elements.set(node.id, {group, height: box.height});
      svg.append(group);
    }
    container.replaceChildren(svg);
    const update = (nodes) => {
      for (const node of nodes) {
        const found = elements.get(node.id);
        if (!found) continue;
        const lines = nodeLines(node);
        const state = node.state ? ` state-${node.state}` : "";
        found.group.setAttribute("class", `node kind-${node.kind}${state}`);
        if (node.state) found.group.setAttribute("data-state", node.state);
        found.group.querySelector("text.main").textContent = lines[0];
        found.group.querySelector("text.main").setAttribute("y", lines.length > 1 ? 16 : found.height / 2);
        found.group.querySelector("text.sub").textContent = lines[1] || "";
        const guard = node.guard ? `\n${node.guard.arm ? "when" : "otherwise, not"} ${node.guard.condition}` : "";
        found.group.querySelector("title").textContent =
          `${node.id} (${node.kind}${node.task ? ` ${node.task}` : ""})${node.state ? `: ${node.state}` : ""}${guard}`;
      }
    };
    update(graph.nodes);
    return {update, select(id) {
      for (const [key, value] of elements) value.group.classList.toggle("selected", key === id);
    }};
  }

  // runs page ---------------------------------------------------------------------------------
  async function runsPage() {
    await header();
    const form = $("filters");
    const query = new URLSearchParams(location.search);
    const statusSelect = $("f-status"), pipelineSelect = $("f-pipeline");
    $("f-since").value = query.get("since") || "";
    if (query.get("until")) {
      const d = new Date(query.get("until"));
      if (!isNaN(d)) $("f-until").value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    }
    let wanted = {pipeline: query.get("pipeline") || "", status: query.get("status") || ""};
    let timer = null, shown = null, generation = 0;

    function params() {
      const p = new URLSearchParams();
      if (pipelineSelect.value || wanted.pipeline) p.set("pipeline", pipelineSelect.value || wanted.pipeline);
      if (statusSelect.value || wanted.status) p.set("status", statusSelect.value || wanted.status);
      if ($("f-since").value) p.set("since", $("f-since").value);
      if ($("f-until").value) p.set("until", new Date($("f-until").value).toISOString());
      return p;
    }

    function options(select, values, current) {
      const have = [...select.options].slice(1).map((o) => o.value);
      const all = values.includes(current) || !current ? values : [...values, current];
      if (have.join("\n") !== all.join("\n")) {
        select.replaceChildren(el("option", {value: ""}, "all"), ...all.map((v) => el("option", {value: v}, v)));
      }
      select.value = current;
    }

    function runRow(run) {
      const row = el("tr", {class: "clickable", "data-run": run.run_id, "data-status": run.status},
        el("td", {}, el("a", {href: runLink(run.run_id), class: "mono"}, run.run_id)),
        el("td", {}, el("a", {href: pipelineLink(run.pipeline)}, run.pipeline)),
        el("td", {}, badge(run.status)),
        el("td", {}, fmtTime(run.started_at)),
        el("td", {}, fmtDuration(run.duration)),
        el("td", {class: "error", title: errorLine(run.error)}, clip(errorLine(run.error), 160)));
      row.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.href = runLink(run.run_id); });
      return row;
    }

    async function refresh() {
      clearTimeout(timer);
      const mine = ++generation;  // a filter change while a poll is in flight: only the newest renders
      const p = params();
      try {
        const data = await api(`/api/runs?${p}`);
        if (mine !== generation) return;
        options(pipelineSelect, data.pipelines, wanted.pipeline);
        options(statusSelect, data.statuses, wanted.status);
        const seen = JSON.stringify(data.runs);
        if (seen !== shown) {  // rebuilt only when something changed: rows stay put while being clicked
          shown = seen;
          table($("runs").tBodies[0], data.runs.map(runRow));
        }
        $("no-runs").hidden = data.runs.length > 0;
        $("live").classList.remove("stale");
        $("live").textContent = `live · updated ${fmtTime(new Date().toISOString()).slice(11)}`;
        problem("");
      } catch (e) {
        if (mine !== generation) return;
        $("live").classList.add("stale");
        $("live").textContent = "not updating";
        problem(e.message);
      }
      timer = setTimeout(refresh, POLL_MS);
    }

    form.addEventListener("change", () => {
      wanted = {pipeline: pipelineSelect.value, status: statusSelect.value};
      history.replaceState(null, "", `${location.pathname}?${params()}`);
      refresh();
    });
    form.addEventListener("submit", (ev) => ev.preventDefault());
    refresh();
  }

  // one run ---------------------------------------------------------------------------------------
  async function runPage() {
    await header();
    const runId = decodeURIComponent(location.pathname.split("/")[2] || "");
    let run = null, drawn = null, selected = decodeURIComponent(location.hash.slice(1)) || null, timer = null;

    function select(id) {
      selected = id;
      history.replaceState(null, "", `#${encodeURIComponent(id)}`);
      if (drawn) drawn.select(id);
      renderDetail();
    }

    function unitsOf(id) {
      return run.units.filter((u) => nodeOf(u.key) === id);
    }

    function renderDetail() {
      const body = $("detail-body");
      const node = run && run.graph.nodes.find((n) => n.id === selected);
      $("detail-hint").hidden = !!node;
      $("detail-title").textContent = node ? node.id : "";
      if (!node) { body.replaceChildren(); return; }
      const unit = run.units.find((u) => u.key === node.id);
      const dl = el("dl", {class: "facts"});
      facts(dl, [["state", badge(node.state)], ["kind", node.kind], ["task", node.task], ["pipeline", node.pipeline],
        ["condition", node.guard ? `${node.guard.arm ? "when" : "otherwise, not"} ${node.guard.condition}` : null],
        ["started", fmtTime(node.started_at)], ["ended", fmtTime(node.ended_at)], ["duration", fmtDuration(node.duration)],
        ["attempts", node.attempts || null]]);
      const parts = [dl, errorBox(node.error)];
      const keys = new Set(unitsOf(node.id).map((u) => u.key));
      const attempts = run.attempts.filter((a) => keys.has(a.key));
      if (node.kind === "map" || node.kind === "pipeline") {
        const inner = unitsOf(node.id).filter((u) => u.key !== node.id);
        parts.push(el("h2", {}, node.kind === "map" ? `Items (${inner.length})` : `Units of ${node.pipeline} (${inner.length})`));
        parts.push(el("table", {class: "grid"}, el("thead", {}, el("tr", {}, el("th", {}, "unit"), el("th", {}, "status"),
          el("th", {}, "attempts"), el("th", {}, "duration"), el("th", {}, "error"))),
          el("tbody", {}, inner.map((u) => el("tr", {}, el("td", {class: "mono"}, u.key), el("td", {}, badge(u.status)),
            el("td", {}, u.attempts || ""), el("td", {}, fmtDuration(u.duration)),
            el("td", {class: "error", title: errorLine(u.error)}, clip(errorLine(u.error), 120)))))));
      }
      if (attempts.length) {
        parts.push(el("h2", {}, `Attempts (${attempts.length})`));
        for (const a of attempts) {
          parts.push(el("div", {class: "attempt", "data-attempt": `${a.key}#${a.attempt}`},
            el("div", {class: "head"}, el("span", {class: "mono"}, `${a.key} #${a.attempt}`), badge(a.status),
              el("span", {}, fmtDuration(a.duration)),
              el("button", {type: "button", class: "logs-button", "data-key": a.key, "data-attempt": a.attempt,
                onclick: () => showLogs(a)}, a.error ? "Error and logs" : "Logs")),
            errorBox(a.error), checksTable(a.checks)));
        }
      }
      if (unit && unit.result_omitted) {
        parts.push(el("h2", {}, "Result"), el("p", {class: "hint"},
          `${unit.result_bytes} bytes of JSON, too large to show here: strato runs show ${runId} --json`));
      } else if (unit && unit.result !== null && unit.result !== undefined) {
        parts.push(el("h2", {}, "Result"), el("pre", {class: "json"}, clip(json(unit.result), 20000)));
      }
      body.replaceChildren(...parts.filter(Boolean));
    }

    async function showLogs(attempt) {
      const panel = $("logs-panel");
      panel.hidden = false;
      $("logs-title").textContent = `${attempt.key} #${attempt.attempt}`;
      const body = $("logs-body");
      body.replaceChildren(el("p", {class: "hint"}, "loading…"));
      const parts = [errorBox(attempt.error)];
      try {
        const q = new URLSearchParams({key: attempt.key, attempt: attempt.attempt});
        const logs = await api(`/api/runs/${encodeURIComponent(runId)}/logs?${q}`);
        if (!logs.available) {
          parts.push(el("p", {class: "hint", id: "no-logs"}, "This run store keeps no task logs (it has no logs table)."));
        } else if (!logs.lines.length) {
          parts.push(el("p", {class: "hint", id: "no-logs"}, "This attempt wrote no log lines."));
        } else {
          parts.push(el("pre", {class: "logs"}, logs.lines.map((l) => el("span", {class: l.stream === "stderr" ? "stderr" : ""},
            el("span", {class: "meta"}, `${l.ts ? fmtTime(l.ts).slice(11) : ""} ${l.stream || ""} `), `${l.line}\n`))));
          if (logs.truncated) parts.push(el("p", {class: "hint"}, "Only the first lines are shown."));
        }
      } catch (e) {
        parts.push(el("p", {class: "problem"}, e.message));
      }
      body.replaceChildren(...parts.filter(Boolean));
      panel.scrollIntoView({block: "nearest"});
    }

    function renderGantt() {
      const bars = run.attempts.map((a) => ({key: a.key, label: `${a.key} #${a.attempt}`, status: a.status,
        start: a.started_at, end: a.ended_at, duration: a.duration}));
      for (const u of run.units) {
        if ((u.kind === "wait" || u.kind === "pipeline") && u.started_at) {
          bars.push({key: u.key, label: `${u.key} (${u.kind})`, status: u.status, start: u.started_at, end: u.ended_at,
            duration: u.duration});
        }
      }
      const gantt = $("gantt");
      if (!bars.length) { gantt.replaceChildren(el("p", {class: "hint"}, "No attempts yet.")); return; }
      bars.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      const hidden = Math.max(bars.length - GANTT_ROWS, 0);
      bars.splice(GANTT_ROWS);
      const now = Date.now();
      const t0 = Math.min(Date.parse(run.started_at), ...bars.map((b) => Date.parse(b.start)));
      const t1 = Math.max(run.ended_at ? Date.parse(run.ended_at) : now, ...bars.map((b) => (b.end ? Date.parse(b.end) : now)));
      const span = Math.max(t1 - t0, 1);
      const rows = bars.map((b) => {
        const start = Date.parse(b.start), end = b.end ? Date.parse(b.end) : now;
        const bar = el("div", {class: `bar s-${b.status}`, title: `${b.label}: ${b.status} ${fmtDuration(b.duration)}`});
        bar.style.left = `${((start - t0) / span) * 100}%`;
        bar.style.width = `${Math.max(((end - start) / span) * 100, 0.3)}%`;
        bar.addEventListener("click", () => select(nodeOf(b.key)));
        return el("div", {class: "row"}, el("div", {class: "label mono", title: b.label}, b.label), el("div", {class: "lane"}, bar));
      });
      gantt.replaceChildren(...rows, el("div", {class: "axis"}, el("span", {}, fmtTime(new Date(t0).toISOString())),
        el("span", {}, fmtDuration(span / 1000))));
      if (hidden) gantt.append(el("p", {class: "hint"}, `and ${hidden} later attempts (the units table lists every unit)`));
    }

    function renderActions() {
      const box = $("actions");
      box.replaceChildren(...(run.actions || []).map((action) => el("button", {type: "button", class: "primary",
        "data-action": action, onclick: () => act(action)}, action === "resume" ? "Resume" : "Rerun")));
    }

    async function act(action) {
      if (!confirm(`${action} run ${runId}?`)) return;
      const out = $("action-result");
      out.hidden = false;
      out.textContent = `${action}: starting…`;
      try {
        const result = await api(`/api/runs/${encodeURIComponent(runId)}/${action}`,
          {method: "POST", headers: {Accept: "application/json", "X-Strato-Action": "1"}});
        out.textContent = result.finished
          ? `${action} exited with ${result.exit_code}\n${result.stderr || ""}${result.stdout || ""}`
          : `${action} started (pid ${result.pid}); this page follows the run`;
      } catch (e) {
        out.textContent = `${action} refused: ${e.message}`;
      }
      load();
    }

    async function load() {
      clearTimeout(timer);
      try {
        run = await api(`/api/runs/${encodeURIComponent(runId)}`);
      } catch (e) {
        problem(e.message);
        if (!(e.data && e.data.error && e.message.startsWith("no run"))) timer = setTimeout(load, POLL_MS * 2);
        return;
      }
      problem("");
      document.title = `${run.pipeline} ${run.run_id} · strato`;
      const link = $("run-pipeline");
      link.textContent = run.pipeline;
      link.setAttribute("href", pipelineLink(run.pipeline, run.ir_hash));
      $("run-id").textContent = run.run_id;
      $("run-status").replaceWith(Object.assign(badge(run.status), {id: "run-status"}));
      facts($("run-facts"), [["started", fmtTime(run.started_at)], ["ended", fmtTime(run.ended_at) || "-"],
        ["duration", fmtDuration(run.duration)], ["resumes", run.resumes || null], ["reference", run.ref],
        ["owner", run.status === "RUNNING" ? `pid ${run.pid} on ${run.host}` : null]]);
      $("run-error-panel").hidden = !run.error;
      $("run-error").replaceChildren(...[errorBox(run.error)].filter(Boolean));
      if (!drawn) drawn = drawGraph($("graph"), run.graph, select);
      else drawn.update(run.graph.nodes);
      $("legend").replaceChildren(...run.graph.states.map(badge));
      if (selected) drawn.select(selected);
      renderDetail();
      renderGantt();
      renderActions();
      table($("units").tBodies[0], run.units.map((u) => {
        const row = el("tr", {class: "clickable", "data-unit": u.key},
          el("td", {class: "mono"}, u.key), el("td", {}, u.kind), el("td", {}, u.task || ""), el("td", {}, badge(u.status)),
          el("td", {}, u.attempts || ""), el("td", {}, fmtTime(u.started_at)), el("td", {}, fmtDuration(u.duration)),
          el("td", {class: "error", title: errorLine(u.error)}, clip(errorLine(u.error), 120)));
        row.addEventListener("click", () => select(nodeOf(u.key)));
        return row;
      }));
      $("run-input").textContent = json(run.input);
      $("run-output").textContent = run.status === "SUCCEEDED" ? json(run.output) : (run.output === null ? "—" : json(run.output));
      if (run.status === "RUNNING") timer = setTimeout(load, POLL_MS);
      document.body.dataset.loaded = run.status;
    }
    load();
  }

  // pipelines -------------------------------------------------------------------------------------
  async function pipelinesPage() {
    await header();
    try {
      const list = await api("/api/pipelines");
      table($("pipelines").tBodies[0], list.map((p) => el("tr", {"data-pipeline": p.name},
        el("td", {}, el("a", {href: pipelineLink(p.name)}, p.name)), el("td", {}, p.runs),
        el("td", {}, fmtTime(p.last_run)), el("td", {}, p.versions.length))));
      $("no-pipelines").hidden = list.length > 0;
    } catch (e) {
      problem(e.message);
    }
  }

  function describeTrigger(t) {
    if (t.type === "object_created") {
      return `object created in bucket ${t.bucket}` + (t.prefix ? `, prefix ${t.prefix}` : "") + (t.suffix ? `, suffix ${t.suffix}` : "");
    }
    if (t.type === "http") return `HTTP ${t.path || "/"} (auth ${t.auth}${t.public ? ", public" : ""})`;
    return json(t);
  }

  function describeSchedule(s) {
    if (!s) return null;
    const when = s.cron ? `cron ${s.cron} (${s.timezone || "UTC"})` : `every ${s.every}`;
    return s.input ? `${when} with input ${JSON.stringify(s.input)}` : when;
  }

  async function pipelinePage() {
    const config = await header();
    const name = decodeURIComponent(location.pathname.split("/")[2] || "");
    const hash = new URLSearchParams(location.search).get("hash");
    const base = `/api/pipelines/${encodeURIComponent(name)}`;
    let p;
    try {
      p = await api(hash ? `${base}?hash=${encodeURIComponent(hash)}` : base);
    } catch (e) {
      problem(e.message);
      return;
    }
    document.title = `${p.name} · strato`;
    $("p-name").replaceChildren(p.name, " ", el("span", {class: "run-id"}, p.hash.slice(0, 12)));
    $("p-doc").textContent = p.doc || "";
    const tags = Object.entries(p.tags).map(([k, v]) => el("span", {class: k === "data-classification" ? "badge cls" : "badge tag"}, `${k}=${v}`));
    facts($("p-facts"), [["module", p.module ? `${p.module}:${p.qualname}` : null], ["schedule", describeSchedule(p.schedule)],
      ["classification", p.classification ? el("span", {class: "badge cls"}, p.classification) : null],
      ["tags", tags.length ? el("span", {}, tags.flatMap((t) => [t, " "])) : null],
      ["sub-pipelines", p.subpipelines.length ? p.subpipelines.join(", ") : null]]);
    drawGraph($("graph"), p.graph, () => {});
    table($("p-params").tBodies[0], p.params.map((x) => el("tr", {}, el("td", {class: "mono"}, x.name),
      el("td", {class: "mono"}, x.annotation || ""), el("td", {class: "mono"}, x.required ? "required" : JSON.stringify(x.default)))));
    $("p-triggers").replaceChildren(...(p.triggers.length ? p.triggers.map((t) => el("li", {}, describeTrigger(t)))
      : [el("li", {class: "hint"}, p.schedule ? "the schedule only" : "none: runs start by hand")]));
    const datasets = [...Object.entries(p.datasets.reads).map(([uri, tasks]) => [uri, "reads", tasks]),
      ...Object.entries(p.datasets.writes).map(([uri, tasks]) => [uri, "writes", tasks])];
    table($("p-datasets").tBodies[0], datasets.length ? datasets.map(([uri, access, tasks]) => el("tr", {},
      el("td", {class: "mono"}, uri), el("td", {}, access), el("td", {}, tasks.join(", "))))
      : [el("tr", {}, el("td", {colspan: 3, class: "hint"}, "no reads= or writes= declared"))]);
    table($("p-tasks").tBodies[0], p.tasks.map((t) => el("tr", {"data-task": t.name},
      el("td", {class: "mono", title: t.doc || ""}, t.name),
      el("td", {}, t.retry ? `${t.retry.max_retries} retries, ${t.retry.delay}s ×${t.retry.backoff}` + (t.retry.on ? ` on ${t.retry.on.join(", ")}` : "") : ""),
      el("td", {}, t.timeout ? `${t.timeout}s` : ""), el("td", {}, t.memory ? `${t.memory} MB` : ""),
      el("td", {}, t.catch ? `${t.catch.handler} on ${(t.catch.on || ["any"]).join(", ")}` : ""),
      el("td", {}, Object.entries(t.tags || {}).map(([k, v]) => el("span", {class: "badge tag"}, `${k}=${v}`))),
      el("td", {class: "mono"}, (t.reads || []).join("\n")), el("td", {class: "mono"}, (t.writes || []).join("\n")))));
    table($("p-versions").tBodies[0], p.versions.map((v) => el("tr", {},
      el("td", {class: "mono"}, el("a", {href: pipelineLink(p.name, v.hash)}, v.hash.slice(0, 12)), v.hash === p.hash ? " (shown)" : ""),
      el("td", {}, v.runs), el("td", {}, fmtTime(v.first_run)), el("td", {}, fmtTime(v.last_run)))));
    $("p-ir").textContent = json(p.ir);

    const buttons = (config.targets || []).map((target) => el("button", {type: "button", "data-target": target,
      onclick: () => compile(target)}, target));
    $("targets").replaceChildren(...buttons);

    async function compile(target) {
      for (const b of buttons) b.classList.toggle("selected", b.dataset.target === target);
      const out = $("compiled");
      out.replaceChildren(el("p", {class: "hint"}, `compiling for ${target}…`));
      try {
        const result = await api(`${base}/compile/${encodeURIComponent(target)}?hash=${encodeURIComponent(p.hash)}`);
        const code = el("pre", {class: "code", "data-target": target}, "");
        const files = result.files.map((f, i) => el("button", {type: "button", onclick: (ev) => show(f, ev.target)}, f.path));
        const show = (f, button) => {
          for (const b of files) b.classList.toggle("selected", b === button);
          code.textContent = f.text + (f.truncated ? `\n… (${f.bytes} bytes; cut here)` : "");
        };
        out.replaceChildren(el("div", {class: "files"}, files),
          ...result.warnings.map((w) => el("p", {class: "hint"}, `warning: ${w}`)), code);
        if (result.files.length) show(result.files[0], files[0]);
      } catch (e) {
        out.replaceChildren(el("p", {class: "problem"}, e.message),
          ...((e.data && e.data.diagnostics) || []).map((d) => el("pre", {class: "traceback"}, d)));
      }
    }
  }

  const pages = {runs: runsPage, run: runPage, pipelines: pipelinesPage, pipeline: pipelinePage};
  const start = () => (pages[document.body.dataset.page] || header)();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
