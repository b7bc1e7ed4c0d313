// Charts beside the experiment's front: its hypervolume over episodes, and the compare page (two or
// more experiments' points on one chart). The server computes both (the Pareto fold, the hypervolume
// fold); this file only draws. Run before dashboard.js (both deferred), which starts the page.
"use strict";

const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

// plotly.js (4.6 MB to parse) loads beside the page's own scripts (async), so the tables and the data
// stream start at once; a chart asked for before it is there is drawn when it arrives (the latest ask).
const waitingForPlotly = new Map();  // chart element -> its latest draw
function plot(box, traces, layout, after) {
  const draw = () => {
    timed("plotly " + box.id, () => Plotly.react(box, traces, layout, { displaylogo: false, responsive: true }));
    if (after) after();
  };
  if (window.Plotly) { draw(); return; }
  if (!waitingForPlotly.size) {
    document.getElementById("plotly-js").addEventListener("load", () => {
      for (const d of waitingForPlotly.values()) d();
      waitingForPlotly.clear();
    }, { once: true });
  }
  waitingForPlotly.set(box, draw);
}

function drawHypervolume(curve) {
  const box = document.getElementById("hv-chart");
  const trace = {
    type: "scatter", mode: "lines+markers", line: { shape: "hv", color: "#1b9e77" }, name: "hypervolume",
    x: curve.map((c) => c.episode), y: curve.map((c) => c.hypervolume),
    hovertemplate: "after episode %{x}: %{y:.4f}<extra></extra>",
  };
  const layout = { xaxis: { title: { text: "episode (0: the baseline)" }, rangemode: "tozero" },
                   yaxis: { title: { text: "hypervolume" }, rangemode: "tozero" }, height: 300, margin: { t: 20 } };
  plot(box, [trace], layout, () => { box.dataset.points = String(curve.length); });
}

function comparePage() {
  const ids = (document.body.dataset.exps || "").split(",").filter(Boolean);
  let experiments = [];
  const { ax, ay } = axisSelects(draw);

  function traces() {
    const out = [];
    experiments.filter((e) => e.exists).forEach((e, i) => {
      const color = PALETTE[i % PALETTE.length];
      const groups = [
        ["front", e.points.filter((p) => p.front && !p.baseline), { color, size: 11, symbol: "circle" }],
        ["dominated", e.points.filter((p) => !p.front && !p.baseline), { color, size: 8, symbol: "circle-open" }],
        ["baseline", e.points.filter((p) => p.baseline), { color, size: 14, symbol: "star" }],
      ];
      let named = false;  // one legend entry per experiment; its traces toggle together
      for (const [kind, pts, marker] of groups) {
        if (!pts.length) continue;
        out.push({
          type: "scatter", mode: "markers", name: `${e.id} (${e.model}, ${e.policy})`, legendgroup: e.id,
          showlegend: !named, marker,
          x: pts.map((p) => p[ax.value]), y: pts.map((p) => p[ay.value]),
          error_x: errorBars(pts, ax.value), error_y: errorBars(pts, ay.value),
          text: pts.map((p) => `${e.id} ep ${p.episode} (${kind}): ${p.method}<br>accuracy ${fmt(p.accuracy)} ` +
                               `[${fmt(p.ci_low)}, ${fmt(p.ci_high)}] n=${p.n}`),
          hovertemplate: "%{text}<extra></extra>",
        });
        named = true;
      }
    });
    return out;
  }

  function draw() {
    const chart = document.getElementById("chart");
    const shown = String(experiments.filter((e) => e.exists).length);
    const layout = { xaxis: { title: { text: AXES[ax.value] } }, yaxis: { title: { text: AXES[ay.value] } },
                     height: 520, margin: { t: 20 }, legend: { orientation: "h" } };
    plot(chart, traces(), layout, () => { chart.dataset.experiments = shown; });
    const table = document.getElementById("compared");
    const head = ["experiment", "status", "model", "target", "policy", "episodes", "best accuracy", "front points"];
    table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))));
    for (const e of experiments) {
      const link = el("a", { href: "/experiments/" + encodeURIComponent(e.id) }, e.id);
      table.append(e.exists
        ? el("tr", { class: "exp", "data-id": e.id }, el("td", {}, link), el("td", { class: "status" }, e.status),
            el("td", {}, e.model), el("td", {}, e.dataset), el("td", {}, e.policy), el("td", {}, String(e.episodes_done)),
            el("td", {}, fmt(e.best_accuracy)), el("td", {}, String(e.points.filter((p) => p.front).length)))
        : el("tr", { class: "exp missing", "data-id": e.id }, el("td", {}, link),
            el("td", { colspan: head.length - 1 }, "not in the log (yet): shown as soon as it is requested")));
    }
  }

  connect("/api/stream/compare?" + ids.map((e) => "e=" + encodeURIComponent(e)).join("&"), {
    snapshot: (d) => { experiments = d.experiments; draw(); },
  });
}
