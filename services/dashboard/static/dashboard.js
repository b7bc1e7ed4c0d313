// GreenAI dashboard: draws what the server folds. Every fold (state, front, staleness) is done on the
// server with the projections' own code; this file only keeps the latest rows and draws them.
// Text from events (rationales, reasons, methods) is only ever set as textContent, never as HTML.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "title") node.title = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits ?? 3);
  return String(v);
}

function params(p) {
  const entries = Object.entries(p || {}).filter(([k]) => k !== "steps");
  return entries.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
}

// One formatter for every date: toLocaleString() builds a new one per call (most of a 2,000-row table's cost).
const DATES = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric",
                                                   hour: "numeric", minute: "numeric", second: "numeric" });
function when(iso) {
  return iso ? DATES.format(new Date(iso)) : "–";
}

// Where a page's time goes, for a profiler or a benchmark: performance.getEntriesByType("measure").
function timed(name, fn) {
  const start = performance.now();
  try { return fn(); } finally { performance.measure(name, { start, end: performance.now() }); }
}

// Draw at most once a frame, however many deltas arrived (a hidden page has no frames: a timer then).
function coalesced(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    const run = () => { pending = false; draw(); };
    if (document.visibilityState === "visible") requestAnimationFrame(run);
    else setTimeout(run, 100);
  };
}

function connect(url, handlers) {
  const conn = document.getElementById("conn");
  const source = new EventSource(url);
  source.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; };
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => {
      const data = timed("parse " + name, () => JSON.parse(e.data));
      if (data.error) { conn.textContent = "log unavailable: " + data.error; conn.className = "conn down"; }
      fn(data);
    });
  }
  window.addEventListener("pagehide", () => source.close());
  return source;
}

async function post(url, body) {
  const answer = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                    body: JSON.stringify(body) });
  let data = {};
  try { data = await answer.json(); } catch (e) { data = { error: `HTTP ${answer.status}` }; }
  return { ok: answer.ok, data };
}

function runForm() {
  const form = document.getElementById("run-form");
  if (!form) return;
  const error = document.getElementById("run-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const number = (name) => (f.get(name) ? Number(f.get(name)) : null);
    const body = {
      model: f.get("model"), dataset: f.get("dataset"), episodes: number("episodes"), limit: number("limit"),
      policy: f.get("policy") || null, objective: f.get("objective"), interactive: f.get("interactive") === "on",
      name: f.get("name") || null,
    };
    error.textContent = "requesting…";
    const { ok, data } = await post("/api/runs", body);
    if (ok) window.location.href = data.url;
    else error.textContent = data.error || "refused";
  });
}

// ---- experiments -------------------------------------------------------------------------------

function experimentsPage() {
  const rows = new Map();
  const chosen = new Set();  // ticked for the compare page; kept across redraws
  const table = document.getElementById("experiments");
  const compare = el("a", { id: "compare-link", href: "/compare" });
  table.before(el("p", {}, compare));
  const head = ["compare", "experiment", "status", "model", "target", "policy", "episodes", "best accuracy",
                "baseline", "started", "reason"];
  function linkCompare() {
    compare.href = "/compare?" + [...chosen].map((id) => "e=" + encodeURIComponent(id)).join("&");
    compare.textContent = chosen.size >= 2 ? `Compare the ${chosen.size} ticked experiments`
                                           : "Tick two or more experiments to compare their fronts";
  }
  function tick(id) {
    const box = el("input", { type: "checkbox", class: "pick", "aria-label": "compare " + id });
    box.checked = chosen.has(id);
    box.onchange = () => { if (box.checked) chosen.add(id); else chosen.delete(id); linkCompare(); };
    return box;
  }
  const newest = (a, b) => (b.started || "").localeCompare(a.started || "");
  const shown = new Map();  // id -> its <tr>: a delta replaces only the rows it carries
  let changed = null;  // ids changed since the last draw; null: draw the whole table
  function row(r) {
    const tr = el("tr", { class: "exp status-" + r.status.replace(/ /g, "-"), "data-id": r.id, "data-started": r.started || "" },
      el("td", {}, tick(r.id)), el("td", {}, el("a", { href: "/experiments/" + encodeURIComponent(r.id) }, r.id)),
      el("td", { class: "status" }, r.status), el("td", {}, r.model), el("td", {}, r.dataset),
      el("td", {}, r.policy), el("td", {}, `${r.episodes_done}/${r.episodes_planned}`),
      el("td", {}, fmt(r.best_accuracy)), el("td", {}, fmt(r.baseline_accuracy)), el("td", {}, when(r.started)),
      el("td", { class: "reason" }, r.reason));
    shown.set(r.id, tr);
    return tr;
  }
  function drawAll() {  // one fragment, one insertion: the browser lays the table out once
    const sorted = [...rows.values()].sort(newest);
    shown.clear();
    const body = document.createDocumentFragment();
    body.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
    for (const r of sorted) body.append(row(r));
    if (!sorted.length) body.append(el("tr", {}, el("td", { colspan: head.length }, "No experiments in the log yet.")));
    table.replaceChildren(body);
  }
  function drawChanged(ids) {
    for (const id of ids) {
      const r = rows.get(id);
      const old = shown.get(id);
      if (old && old.dataset.started === (r.started || "")) { old.replaceWith(row(r)); continue; }
      const top = table.rows[1];  // the newest shown
      const topRow = top && top.dataset.id !== undefined ? rows.get(top.dataset.id) : undefined;
      if (!old && topRow && newest(r, topRow) <= 0) { top.before(row(r)); continue; }  // a new run: on top
      drawAll();  // a row whose place in the order moved: rare
      return;
    }
  }
  const draw = coalesced(() => {
    linkCompare();
    if (changed === null) timed("table", drawAll);
    else { const ids = changed; timed("rows", () => drawChanged(ids)); }
    changed = new Set();
  });
  runForm();
  connect("/api/stream/experiments", {
    snapshot: (d) => { rows.clear(); d.rows.forEach((r) => rows.set(r.id, r)); changed = null; draw(); },
    delta: (d) => { d.rows.forEach((r) => { rows.set(r.id, r); if (changed) changed.add(r.id); }); draw(); },
  });
}

// ---- one experiment ----------------------------------------------------------------------------

const AXES = {
  accuracy: "accuracy",
  latency_ms_per_token: "decode ms/token",
  peak_rss_mb: "peak memory (MiB)",
  size_mib: "size on disk (MiB)",
  energy_j: "energy (J)",
};

function errorBars(points, axis) {
  if (axis === "accuracy") {
    return { type: "data", symmetric: false, array: points.map((p) => p.ci_high - p.accuracy),
             arrayminus: points.map((p) => p.accuracy - p.ci_low), visible: true };
  }
  if (axis === "latency_ms_per_token" && points.some((p) => p.latency_iqr !== null)) {
    return { type: "data", array: points.map((p) => (p.latency_iqr ?? 0) / 2), visible: true };
  }
  return { visible: false };
}

function axisSelects(draw) {
  const ax = document.getElementById("axis-x");
  const ay = document.getElementById("axis-y");
  for (const [k, label] of Object.entries(AXES)) {
    ax.append(el("option", { value: k }, label));
    ay.append(el("option", { value: k }, label));
  }
  ax.value = "latency_ms_per_token";
  ay.value = "accuracy";
  ax.onchange = ay.onchange = () => draw();
  return { ax, ay };
}

function experimentPage() {
  const exp = document.body.dataset.exp;
  const state = { summary: null, points: [], episodes: new Map(), tail: [], reviewed: "", cancelled: "" };
  const { ax, ay } = axisSelects(drawChart);
  const filter = document.getElementById("tail-filter");
  filter.onchange = () => drawTail();

  function drawSummary() {
    const s = state.summary;
    if (!s) return;
    document.getElementById("missing")?.remove();
    document.title = `${s.id} · GreenAI`;
    const box = document.getElementById("summary");
    box.replaceChildren(el("dl", {},
      el("dt", {}, "status"), el("dd", { id: "status", class: "status-" + s.status.replace(/ /g, "-") }, s.status),
      el("dt", {}, "model"), el("dd", {}, s.model), el("dt", {}, "target"), el("dd", {}, s.dataset),
      el("dt", {}, "policy"), el("dd", {}, `${s.policy} (${s.objective})`),
      el("dt", {}, "episodes"), el("dd", { id: "episodes-done" }, `${s.episodes_done}/${s.episodes_planned}`),
      el("dt", {}, "best accuracy"), el("dd", {}, fmt(s.best_accuracy)),
      el("dt", {}, "baseline accuracy"), el("dd", {}, fmt(s.baseline_accuracy)),
      el("dt", {}, "started"), el("dd", {}, when(s.started)),
      s.reason ? el("dt", {}, "reason") : null, s.reason ? el("dd", { class: "reason" }, s.reason) : null));
  }

  function drawReview() {
    const box = document.getElementById("review");
    const p = state.summary && state.summary.proposal;
    if (!p) {  // nothing waits; what this page sent last stays in view
      delete box.dataset.key;
      box.replaceChildren(...(state.reviewed ? [el("p", { id: "review-result" }, state.reviewed)] : []));
      return;
    }
    const key = `${p.episode}/${p.proposal}`;
    if (box.dataset.key === key) return;  // keep a comment or steps being typed
    box.dataset.key = key;
    // the page may hear of the review before the answer comes: redraw once it has
    const sent = (what) => { state.reviewed = what; drawReview(); };
    const controls = document.body.dataset.actions === "1" ? reviewControls(exp, p, sent)
      : [el("span", { class: "readonly" }, "read-only: this dashboard cannot review")];
    box.replaceChildren(el("h2", {}, `Episode ${p.episode}: proposal ${p.proposal} waits for review`),
      el("p", {}, `${p.policy} proposes ${p.action === "end" ? "to end" : p.steps.join(" → ")}`),
      el("p", { class: "rationale" }, p.rationale), ...controls);
  }

  function drawCancel() {
    const box = document.getElementById("cancel");
    if (!state.summary || !state.summary.cancellable || document.body.dataset.actions !== "1") {
      delete box.dataset.shown;  // what this page sent last stays in view
      box.replaceChildren(...(state.cancelled ? [el("p", { id: "cancel-result" }, state.cancelled)] : []));
      return;
    }
    if (box.dataset.shown) return;  // keep a reason being typed
    box.dataset.shown = "1";
    box.replaceChildren(...cancelControls(exp, (what) => { state.cancelled = what; drawCancel(); }));
  }

  function drawChart() {
    const x = ax.value, y = ay.value;
    const groups = [
      ["baseline (uncompressed)", state.points.filter((p) => p.baseline), { color: "#d95f02", size: 15, symbol: "star" }],
      ["Pareto front", state.points.filter((p) => p.front && !p.baseline), { color: "#1b9e77", size: 12, symbol: "circle" }],
      ["dominated", state.points.filter((p) => !p.front && !p.baseline), { color: "#999999", size: 9, symbol: "circle-open" }],
    ];
    const traces = groups.filter(([, pts]) => pts.length).map(([name, pts, marker]) => ({
      type: "scatter", mode: "markers", name, marker,
      x: pts.map((p) => p[x]), y: pts.map((p) => p[y]),
      error_x: errorBars(pts, x), error_y: errorBars(pts, y),
      customdata: pts.map((p) => p.episode),
      text: pts.map((p) => `ep ${p.episode}: ${p.method}${params(p.params) ? " (" + params(p.params) + ")" : ""}` +
                          `<br>accuracy ${fmt(p.accuracy)} [${fmt(p.ci_low)}, ${fmt(p.ci_high)}] n=${p.n}`),
      hovertemplate: "%{text}<extra></extra>",
    }));
    // energy says how it was obtained: an estimate (no RAPL/NVML counter) is labelled so on its axis
    const estimated = state.points.some((p) => p.energy_mode !== "measured");
    const title = (a) => AXES[a] + (a === "energy_j" && estimated ? ", estimated (no hardware counter)" : "");
    const layout = { xaxis: { title: { text: title(x) } }, yaxis: { title: { text: title(y) } }, height: 460,
                     margin: { t: 20 }, legend: { orientation: "h" } };
    const chart = document.getElementById("chart");
    const count = String(state.points.length);
    plot(chart, traces, layout, () => {
      chart.dataset.points = count;  // what a reader (or a test) waits for: drawn, not just received
      if (!chart.dataset.bound) {
        chart.dataset.bound = "1";
        chart.on("plotly_click", (ev) => showCard(ev.points[0].customdata));
      }
    });
  }

  function showCard(episode) {
    const p = state.points.find((q) => q.episode === episode);
    const card = document.getElementById("card");
    if (!p) { card.replaceChildren(); return; }
    card.replaceChildren(el("h3", {}, `Episode ${p.episode}: ${p.method}`), el("dl", {},
      el("dt", {}, "steps"), el("dd", {}, p.steps.join(" → ") || "uncompressed"),
      el("dt", {}, "params"), el("dd", {}, params(p.params) || "–"),
      el("dt", {}, "accuracy"), el("dd", {}, `${fmt(p.accuracy)}, 95 % interval [${fmt(p.ci_low)}, ${fmt(p.ci_high)}], n=${p.n}` +
                                              (p.promoted ? " (promoted)" : "")),
      el("dt", {}, "decode"), el("dd", {}, `${fmt(p.latency_ms_per_token, 1)} ms/token` +
                                            (p.latency_iqr !== null ? `, IQR ${fmt(p.latency_iqr, 2)}` : "")),
      el("dt", {}, "size"), el("dd", {}, `${fmt(p.size_mib, 1)} MiB` +
                                          (p.compression_ratio ? ` (${fmt(p.compression_ratio, 2)}×)` : "")),
      el("dt", {}, "artifact"), el("dd", {}, p.artifact ? `${p.artifact} — greenai pull ${p.artifact}` : "–")));
  }

  const episodeRows = new Map();  // episode -> its <tr>: a delta redraws only the episodes it carries

  function episodeRow(n) {
    const e = state.episodes.get(n);
    const steps = el("ol", { class: "steps" }, ...e.steps.map((s) => el("li", { class: "step-" + s.state },
      `${s.name} ${params(s.params)} — ${s.state}` + (s.instance ? ` on ${s.instance}` : "") +
      (s.wall_s !== null ? `, ${fmt(s.wall_s, 1)} s` : "") + (s.peak_rss_mb !== null ? `, peak ${fmt(s.peak_rss_mb, 0)} MiB` : ""))));
    const llm = e.llm_calls ? ` (LLM: ${e.llm_calls} call(s), ${e.llm_tokens} tokens` +
                              (e.llm_cost_usd !== null ? `, $${fmt(e.llm_cost_usd, 4)}` : "") + ")" : "";
    return el("tr", { class: "episode", "data-episode": String(n) },
      el("td", {}, String(n)), el("td", { class: "status" }, e.status),
      el("td", {}, e.policy + llm), el("td", {}, steps, e.failure ? el("div", { class: "reason" }, e.failure) : null),
      el("td", {}, fmt(e.wall_s, 1)), el("td", { class: "rationale" }, e.rationale));
  }

  function drawTimeline(changed) {
    const table = document.getElementById("timeline");
    if (changed === null) {  // the whole timeline: built apart, inserted once
      episodeRows.clear();
      const body = document.createDocumentFragment();
      body.append(el("tr", {}, ...["episode", "status", "decided by", "steps", "wall s", "rationale"]
        .map((h) => el("th", {}, h))));
      for (const n of [...state.episodes.keys()].sort((a, b) => a - b)) {
        const row = episodeRow(n);
        episodeRows.set(n, row);
        body.append(row);
      }
      table.replaceChildren(body);
      return;
    }
    let last = episodeRows.size ? Math.max(...episodeRows.keys()) : -Infinity;
    for (const n of [...changed].sort((a, b) => a - b)) {
      const row = episodeRow(n);
      const old = episodeRows.get(n);
      if (old) old.replaceWith(row);
      else if (n > last) { table.append(row); last = n; }  // the usual case: a new episode at the end
      else {
        const later = [...episodeRows.keys()].filter((k) => k > n);
        episodeRows.get(Math.min(...later)).before(row);
      }
      episodeRows.set(n, row);
    }
  }

  function tailRow(t) {
    return el("tr", { class: "event", "data-type": t.type },
      el("td", {}, String(t.seq)), el("td", {}, new Date(t.time).toLocaleTimeString()), el("td", {}, t.type),
      el("td", {}, t.text));
  }

  function drawTail(added) {  // added: new events (newest last), or undefined to redraw under the filter
    const types = new Set(state.tail.map((t) => t.type));
    const known = new Set([...filter.options].map((o) => o.value));
    for (const t of [...types].sort()) if (!known.has(t)) filter.append(el("option", { value: t }, t));
    const table = document.getElementById("tail");
    const shown = (list) => list.filter((t) => !filter.value || t.type === filter.value);
    if (!Array.isArray(added)) {
      table.replaceChildren(...shown(state.tail).slice(-200).reverse().map(tailRow));
      return;
    }
    table.prepend(...shown(added).reverse().map(tailRow));
    while (table.rows.length > 200) table.deleteRow(-1);
  }

  // What arrived since the last frame; drawn together once (a burst of deltas costs one Plotly.react).
  const todo = { whole: false, chart: false, curve: null, episodes: new Set(), tail: [] };
  const points = new Map();  // episode -> point: a delta carries only the points that changed

  function apply(d, whole) {
    if (!d.exists) return;
    state.summary = d.summary;
    if (whole) {
      state.episodes.clear(); state.tail = []; points.clear();
      Object.assign(todo, { whole: true, chart: true, episodes: new Set(), tail: [] });
    }
    for (const p of d.points || d.points_changed || []) points.set(p.episode, p);
    for (const e of d.points_removed || []) points.delete(e);
    if (d.points || d.points_changed || d.points_removed) {
      state.points = [...points.values()].sort((a, b) => a.episode - b.episode);
      todo.chart = true;
    }
    if (d.hypervolume) todo.curve = d.hypervolume;
    if (d.hypervolume_tail) todo.curve = (todo.curve || curve || []).slice(0, d.hypervolume_from).concat(d.hypervolume_tail);
    for (const e of d.episodes || []) { state.episodes.set(e.episode, e); todo.episodes.add(e.episode); }
    state.tail = state.tail.concat(d.tail || []).slice(-300);
    if (!whole) todo.tail = todo.tail.concat(d.tail || []);
    render();
  }

  const render = coalesced(() => {
    drawSummary();
    drawCancel();
    drawReview();
    if (todo.chart) timed("chart", drawChart);
    if (todo.curve) { curve = todo.curve; renderCurve(); }
    const episodes = todo.whole ? null : todo.episodes;
    timed("timeline", () => drawTimeline(episodes));
    const tail = todo.whole ? undefined : todo.tail;
    timed("tail", () => drawTail(tail));
    Object.assign(todo, { whole: false, chart: false, curve: null, episodes: new Set(), tail: [] });
  });
  // The hypervolume curve is a second chart: drawn in the frame after the front and the timeline.
  let curve = null;
  const renderCurve = coalesced(() => timed("hypervolume", () => drawHypervolume(curve)));

  connect("/api/stream/experiments/" + encodeURIComponent(exp), {
    snapshot: (d) => apply(d, true),
    delta: (d) => apply(d, false),
  });
}

// ---- agents ------------------------------------------------------------------------------------

function agentsPage() {
  const table = document.getElementById("agents");
  const head = ["instance", "role", "kind", "methods", "hardware", "doing now", "last heartbeat"];
  function draw(agents) {
    table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))));
    for (const a of agents) {
      table.append(el("tr", { class: a.live ? "agent live" : "agent stale", "data-instance": a.instance },
        el("td", {}, a.instance), el("td", {}, a.agent), el("td", {}, a.kind),
        el("td", {}, a.methods.join(", ")), el("td", {}, `${a.host}: ${a.device}, ${a.cpus} CPUs, ${a.memory_gib} GiB`),
        el("td", {}, a.doing || "idle"), el("td", {}, when(a.last_heartbeat) + (a.live ? "" : " (stopped)"))));
    }
    if (!agents.length) table.append(el("tr", {}, el("td", { colspan: head.length }, "No agent has announced itself.")));
  }
  connect("/api/stream/agents", { snapshot: (d) => draw(d.agents) });
}

const PAGES = { experiments: experimentsPage, experiment: experimentPage, agents: agentsPage,
                compare: () => comparePage() };
(PAGES[document.body.dataset.page] || (() => {}))();
