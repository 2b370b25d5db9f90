// The page side of lib/viz/sweep_explorer.ts (private to it): styles, and a script that reads the
// embedded JSON, builds the controls and draws with the page's plotly.js (`window.plotlyReady`, a
// promise of it, as lib/util/plotly_embed.ts sets, or a global `Plotly`). Plain ES2017, no
// imports: it runs inside reports and notebook frontends as is. Statistics are never computed
// here; the compare view looks up the pairs sweep_explorer.ts embedded.

/** Styles, scoped to `.sweep-explorer`. */
export const EXPLORER_CSS = `
.sweep-explorer { font-size: 14px; }
.sweep-explorer .sx-controls { display: flex; flex-wrap: wrap; gap: 8px; }
.sweep-explorer fieldset { border: 1px solid #ccd; border-radius: 4px; padding: 4px 10px; }
.sweep-explorer legend { font-weight: 600; padding: 0 4px; }
.sweep-explorer fieldset label { margin-right: 10px; white-space: nowrap; }
.sweep-explorer .sx-links { font-size: 12px; margin-left: 4px; }
.sweep-explorer .sx-links button { font-size: 12px; padding: 0 6px; margin-left: 2px; }
.sweep-explorer .sx-row { display: flex; gap: 12px; flex-wrap: wrap; }
.sweep-explorer .sx-row > div { flex: 1 1 360px; min-width: 0; }
.sweep-explorer table.sx-table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
.sweep-explorer .sx-table th, .sweep-explorer .sx-table td {
  border-bottom: 1px solid #e3e3e3; padding: 2px 10px; text-align: left;
}
.sweep-explorer td.sx-num { text-align: right; font-variant-numeric: tabular-nums; }
.sweep-explorer .sx-compare { border-top: 2px solid #e8eef7; margin-top: 12px; padding-top: 6px; }
.sweep-explorer .sx-difference { font-size: 15px; margin: 6px 0; }
.sweep-explorer select { max-width: 100%; }
`;

/**
 * `(function (id) {…})`: call it with the id of the explorer's container. It pushes a promise
 * onto `window.reportFigures` when the page has one (the report's PDF printer waits for it).
 */
export const EXPLORER_SCRIPT = `(function (id) {
  var root = document.getElementById(id);
  var data = JSON.parse(root.querySelector(".sx-data").textContent);
  var status = root.querySelector(".sx-status");
  var C = data.controls, S = data.settings, R = data.runs, SEED = C.length - 1;
  var chosen = C.map(function (c) { return c.values.map(function () { return true; }); });
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  var METRICS = [["testAccuracy", "test accuracy", "accuracy"],
    ["trainLoss", "training loss (epoch mean)", "cross-entropy"],
    ["testLoss", "test loss", "cross-entropy"],
    ["steps", "training loss (every step)", "cross-entropy"]];
  var CONFIG = { responsive: true, displaylogo: false };
  var Plotly; // the page's, once loaded
  var finished;
  var drawn = new Promise(function (resolve) { finished = resolve; });
  if (Array.isArray(window.reportFigures)) window.reportFigures.push(drawn);

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function color(setting) { return PALETTE[setting % PALETTE.length]; }
  function finalOf(r) { var a = r.epochs.testAccuracy; return a[a.length - 1]; }
  function last(a) { return a.length ? a[a.length - 1] : NaN; }
  function pct(v) { return isFinite(v) ? (100 * v).toFixed(1) + "%" : "—"; }
  function num(v) { return isFinite(v) ? v.toFixed(4) : "—"; }
  function seedIndex(seed) { return C[SEED].values.indexOf(String(seed)); }
  function selected(r) {
    var v = S[r.setting].values;
    for (var i = 0; i < v.length; i++) if (!chosen[i][v[i]]) return false;
    return chosen[SEED][seedIndex(r.seed)];
  }
  function runName(r) { return S[r.setting].label + " · seed " + r.seed; }
  function curve(r, metric) {
    if (metric === "steps") return { x: r.steps.x, y: r.steps.loss };
    var y = r.epochs[metric];
    return { x: y.map(function (_, i) { return i + 1; }), y: y };
  }
  function runTrace(r, metric, dash) {
    var c = curve(r, metric);
    return { type: "scatter", mode: metric === "steps" ? "lines" : "lines+markers",
      name: runName(r), legendgroup: S[r.setting].label, x: c.x, y: c.y,
      line: { color: color(r.setting), width: 1.5, dash: dash || "solid" } };
  }
  function layout(title, xTitle, yTitle, height, extra) {
    var l = { title: { text: title }, height: height, margin: { l: 60, r: 20, t: 60, b: 50 },
      xaxis: { title: { text: xTitle } }, yaxis: { title: { text: yTitle } } };
    for (var k in extra || {}) l[k] = extra[k];
    return l;
  }

  // The controls: one group of checkboxes per control, and the metric the curves show.
  var controls = el("div", { "class": "sx-controls" });
  var boxes = [];
  C.forEach(function (c, ci) {
    var fs = el("fieldset", { "data-control": c.name });
    var legend = el("legend", {}, c.name);
    var links = el("span", { "class": "sx-links" });
    [["all", true], ["none", false]].forEach(function (p) {
      var b = el("button", { type: "button", "data-set": p[0] }, p[0]);
      b.addEventListener("click", function () {
        boxes[ci].forEach(function (box, vi) { box.checked = p[1]; chosen[ci][vi] = p[1]; });
        update();
      });
      links.appendChild(b);
    });
    legend.appendChild(links);
    fs.appendChild(legend);
    boxes.push(c.values.map(function (v, vi) {
      var label = el("label");
      var box = el("input", { type: "checkbox", value: v, "data-control": c.name });
      box.checked = true;
      box.addEventListener("change", function () { chosen[ci][vi] = box.checked; update(); });
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + (ci === SEED ? "seed " : "") + v));
      fs.appendChild(label);
      return box;
    }));
    controls.appendChild(fs);
  });
  var metricBox = el("fieldset", { "data-control": "curve" });
  metricBox.appendChild(el("legend", {}, "curve"));
  var metric = el("select", { "class": "sx-metric" });
  METRICS.forEach(function (m) { metric.appendChild(el("option", { value: m[0] }, m[1])); });
  metric.addEventListener("change", function () { update(); });
  metricBox.appendChild(metric);
  controls.appendChild(metricBox);

  var shownLine = el("p", { "class": "sx-shown" });
  var curves = el("div", { "class": "sx-curves" }), finals = el("div", { "class": "sx-finals" });
  var table = el("table", { "class": "sx-table" });

  // The compare view: two settings, their difference across seeds, side by side.
  var compare = el("div", { "class": "sx-compare" });
  compare.appendChild(el("h4", {}, "Compare two settings"));
  var pickers = el("p");
  function picker(name, initial) {
    var s = el("select", { "class": "sx-" + name });
    S.forEach(function (st, i) { s.appendChild(el("option", { value: String(i) }, st.label)); });
    s.value = String(initial);
    s.addEventListener("change", function () { drawCompare(); });
    pickers.appendChild(document.createTextNode(" " + name.toUpperCase() + " "));
    pickers.appendChild(s);
    return s;
  }
  var pickA = picker("a", 0), pickB = picker("b", S.length > 1 ? 1 : 0);
  compare.appendChild(pickers);
  var difference = el("p", { "class": "sx-difference" });
  compare.appendChild(difference);
  var pairRow = el("div", { "class": "sx-row" });
  var pairCurves = el("div", { "class": "sx-pair-curves" });
  var pairFinals = el("div", { "class": "sx-pair-finals" });
  pairRow.appendChild(pairCurves);
  pairRow.appendChild(pairFinals);
  compare.appendChild(pairRow);

  status.textContent = data.title + ": pick the runs to overlay; every run's curves are in " +
    "this page.";
  [controls, shownLine, curves, finals, table, compare].forEach(function (e) {
    root.appendChild(e);
  });

  function drawTable(runs) {
    table.textContent = "";
    var head = el("tr");
    ["setting", "seed", "run", "final test accuracy", "test loss", "training loss", "epochs"]
      .forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(head);
    runs.forEach(function (r) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, S[r.setting].label));
      tr.appendChild(el("td", { "class": "sx-num" }, String(r.seed)));
      var link = el("td");
      link.appendChild(el("a", { href: r.report }, r.run));
      tr.appendChild(link);
      tr.appendChild(el("td", { "class": "sx-num" }, pct(finalOf(r))));
      tr.appendChild(el("td", { "class": "sx-num" }, num(last(r.epochs.testLoss))));
      tr.appendChild(el("td", { "class": "sx-num" }, num(last(r.epochs.trainLoss))));
      tr.appendChild(el("td", { "class": "sx-num" }, String(r.epochs.testAccuracy.length)));
      table.appendChild(tr);
    });
  }

  function update() {
    if (!Plotly) return Promise.resolve();
    var runs = R.filter(selected);
    var m = METRICS.filter(function (x) { return x[0] === metric.value; })[0];
    shownLine.textContent = runs.length + " of " + R.length +
      " runs shown (arm × grid values × seed).";
    var traces = runs.map(function (r) { return runTrace(r, m[0]); });
    var bySetting = [];
    runs.forEach(function (r) { (bySetting[r.setting] = bySetting[r.setting] || []).push(r); });
    var points = [];
    bySetting.forEach(function (rs, s) {
      if (!rs) return;
      points.push({ type: "scatter", mode: "markers", name: S[s].label,
        x: rs.map(function () { return S[s].label; }), y: rs.map(finalOf),
        text: rs.map(function (r) { return "seed " + r.seed + " (" + r.run + ")"; }),
        marker: { size: 9, opacity: 0.75, color: color(s) } });
    });
    drawTable(runs);
    return Promise.all([
      Plotly.react(curves, traces, layout(m[1], "epoch", m[2], 440, {
        xaxis: { title: { text: "epoch" }, dtick: m[0] === "steps" ? undefined : 1 } }), CONFIG),
      Plotly.react(finals, points, layout("Final test accuracy of the runs shown", "",
        "accuracy", 340, { showlegend: false, xaxis: { automargin: true } }), CONFIG),
    ]);
  }

  function drawCompare() {
    if (!Plotly) return Promise.resolve();
    var a = Number(pickA.value), b = Number(pickB.value);
    var pair = data.pairs.filter(function (p) { return p.a === a && p.b === b; })[0];
    if (a === b) difference.textContent = "Pick two different settings.";
    else if (!pair) {
      difference.textContent = "B − A: no paired difference, these settings share fewer than " +
        "two seeds.";
    } else {
      difference.textContent = "";
      difference.appendChild(el("b", {}, "B − A = " + pair.text));
      difference.appendChild(document.createTextNode(", paired t over " + pair.seeds.length +
        " seeds (" + pair.seeds.join(", ") + "): " + pair.verdict + "."));
    }
    var runsA = R.filter(function (r) { return r.setting === a; });
    var runsB = R.filter(function (r) { return r.setting === b; });
    function side(name, colour, dash) {
      return function (r) {
        var t = runTrace(r, "testAccuracy", dash);
        t.name = name + " · " + t.name;
        t.line.color = colour;
        return t;
      };
    }
    var traces = runsA.map(side("A", "#1f77b4", "solid"))
      .concat(runsB.map(side("B", "#d62728", "dash")));
    var seeds = pair ? pair.seeds : [];
    var slopes = seeds.map(function (s) {
      var ra = runsA.filter(function (r) { return r.seed === s; })[0];
      var rb = runsB.filter(function (r) { return r.seed === s; })[0];
      return { type: "scatter", mode: "lines+markers", name: "seed " + s,
        x: ["A: " + S[a].label, "B: " + S[b].label], y: [finalOf(ra), finalOf(rb)],
        line: { color: "#888" }, marker: { size: 8 } };
    });
    return Promise.all([
      Plotly.react(pairCurves, traces, layout("Test accuracy, A solid, B dashed", "epoch",
        "accuracy", 420, { xaxis: { title: { text: "epoch" }, dtick: 1 },
          legend: { orientation: "h", y: -0.25 } }), CONFIG),
      Plotly.react(pairFinals, slopes, layout("Final test accuracy, seed by seed", "",
        "accuracy", 420, { showlegend: false, xaxis: { automargin: true } }), CONFIG),
    ]);
  }

  function fail(why) {
    status.textContent = why + ", so the explorer cannot draw: open the sweep's HTML report " +
      "(03_sweep.html).";
    finished(0);
  }
  // The page's plotly.js: the report's, a figure's or the output before this one's; it may come
  // after this script has run.
  var tries = 0;
  (function start() {
    var ready = window.plotlyReady || (window.Plotly && Promise.resolve(window.Plotly));
    if (!ready) {
      if (++tries <= 400) return void setTimeout(start, 50);
      return fail("plotly.js is not on this page");
    }
    ready.then(function (loaded) {
      Plotly = loaded;
      return Promise.all([update(), drawCompare()]).then(function () { finished(4); },
        function (e) {
          finished(0);
          throw e;
        });
    }, function (e) { fail("plotly.js did not load (" + e + ")"); });
  })();
})`;
