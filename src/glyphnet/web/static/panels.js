// The panels beyond the pad: every layer's activations (with ablation), a 2-D map of the test
// set, robustness curves and the live training lab. Uses app.js's helpers ($, api, strokes,
// pad, percent, drawGrid, heat, loadModels). Plain JavaScript, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];

function classColour(i) {
  return i < PALETTE.length ? PALETTE[i] : `hsl(${(i * 137.5) % 360}, 60%, 45%)`;
}

function currentModel() { return $("model").value || undefined; }
function drawing() { return strokes.length ? pad.toDataURL("image/png") : null; }
function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

// ------------------------------------------------------------------ tabs
let tab = "draw";
function showTab(name) {
  tab = name;
  $("main").dataset.tab = name;
  document.querySelectorAll("nav.tabs button").forEach((b) => {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  });
  document.querySelectorAll("[data-panel]").forEach((p) => {
    p.hidden = !p.dataset.panel.split(" ").includes(name);
  });
  if (name === "inspect") inspectNow();
  if (name === "map" && mapData) placeDrawing();
  if (name === "train") loadLab();
}
document.querySelectorAll("nav.tabs button").forEach((b) => {
  b.addEventListener("click", () => showTab(b.dataset.tab));
});

// ------------------------------------------------------------------ pictures
// Diverging colours for values in [-1, 1]: blue negative, white 0, red positive.
function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  return t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
}

// Activations: black 0, heat for positive values, blue for negative ones (v in [-1, 1]).
function activationColour(v) {
  return v >= 0 ? heat(v) : [0, 0, 255 * Math.min(1, -v)];
}

function maxAbs(values) {
  let m = 0;
  const walk = (v) => { if (Array.isArray(v)) v.forEach(walk); else m = Math.max(m, Math.abs(v)); };
  walk(values);
  return m || 1;
}

function gridCanvas(rows, colour, scale, css) {
  const canvas = el("canvas", {width: rows[0].length, height: rows.length, className: css || ""});
  const c = canvas.getContext("2d");
  const image = c.createImageData(canvas.width, canvas.height);
  rows.forEach((row, y) => row.forEach((v, x) => {
    const [r, g, b] = colour(v / scale);
    image.data.set([r, g, b, 255], 4 * (y * canvas.width + x));
  }));
  c.putImageData(image, 0, 0);
  return canvas;
}

// A line chart as SVG: series [{name, colour, points: [[x, y], ...]}]; points become circles
// carrying data-x and data-y so tests (and people with the inspector) can read them.
function lineChart(box, series, {xLabel = "", yMin, yMax, percentX = false, percentY = false,
                                  dots = true} = {}) {
  const W = 320, H = 190, L = 46, R = 16, T = 10, B = 34;
  const all = series.flatMap((s) => s.points).filter(([, y]) => y !== null);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart-svg");
  if (!all.length) { box.replaceChildren(svg); return; }
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = yMin ?? Math.min(...all.map((p) => p[1]));
  let y1 = yMax ?? Math.max(...all.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  // Percent ticks get a decimal when the range is narrow; integer x data get integer ticks.
  const pct = (v, span) => `${(100 * v).toFixed(span < 0.1 ? 1 : 0)}%`;
  const fmtY = (v) => percentY ? pct(v, y1 - y0) : (+v.toPrecision(3)).toString();
  const fmtX = (v) => percentX ? pct(v, x1 - x0) : (+v.toPrecision(3)).toString();
  const xs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  const integerX = all.every((p) => Number.isInteger(p[0]));
  const xTicks = integerX && xs.length <= 13 ? xs : [0, 1, 2, 3, 4].map((i) => {
    const x = x0 + (x1 - x0) * i / 4;
    return integerX ? Math.round(x) : x;
  });
  add("rect", {x: L, y: T, width: W - L - R, height: H - T - B, class: "frame"});
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    add("line", {x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid"});
    add("text", {x: L - 4, y: sy(y) + 3, class: "tick", "text-anchor": "end"}, fmtY(y));
  }
  for (const x of xTicks) {
    add("text", {x: sx(x), y: H - B + 13, class: "tick", "text-anchor": "middle"}, fmtX(x));
  }
  add("text", {x: (L + W - R) / 2, y: H - 4, class: "axis", "text-anchor": "middle"}, xLabel);
  for (const s of series) {
    const pts = s.points.filter(([, y]) => y !== null);
    if (!pts.length) continue;
    add("polyline", {points: pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "),
                     stroke: s.colour, class: "line"});
    if (!dots) continue;
    for (const [x, y] of pts) {
      const c = add("circle", {cx: sx(x), cy: sy(y), r: 3, fill: s.colour,
                               "data-x": x, "data-y": y});
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${s.name} ${fmtX(x)}: ${percentY ? percent(y) : fmtY(y)}`;
      c.append(title);
    }
  }
  box.replaceChildren(svg);
}

// ------------------------------------------------------------------ inspect
const ablated = new Map();   // "layer:unit" -> [layer, unit]
let selected = null;         // {layer, unit, kind}
let inspectTimer = null;

document.addEventListener("drawing", () => {
  if (tab === "inspect") { clearTimeout(inspectTimer); inspectTimer = setTimeout(inspectNow, 50); }
  if (tab === "map" && mapData) placeDrawing();
});
document.addEventListener("models", () => {
  ablated.clear();
  selected = null;
  $("unit-box").hidden = true;
  mapData = null;
  clearMap();
  fillMapLayers();
  $("rob-charts").replaceChildren();
  if (tab === "inspect") inspectNow();
});

async function inspectNow() {
  const image = drawing();
  if (!image) {
    $("layers").replaceChildren();
    $("inspect-bars").replaceChildren();
    $("inspect-note").textContent = "Draw something on the pad to see the layers.";
    return;
  }
  try {
    const answer = await api("/api/inspect", {model: currentModel(), image,
                                              ablate: [...ablated.values()]});
    showInspection(answer);
  } catch (error) {
    $("inspect-note").textContent = error.message;
  }
}

function showInspection(answer) {
  $("inspect-note").textContent = "";
  $("inspect-bars").dataset.prediction = answer.prediction;
  $("inspect-bars").replaceChildren(...answer.classes.slice(0, 5).map((c, i) => {
    const fill = el("span", {className: "fill"});
    fill.style.width = `${(100 * c.probability).toFixed(1)}%`;
    const before = el("span", {className: "before", title: `intact: ${percent(c.before)}`});
    before.style.left = `${(100 * c.before).toFixed(1)}%`;
    const row = el("li", {className: i === 0 ? "top" : ""}, [
      el("span", {className: "label", textContent: c.label}),
      el("span", {className: "track"}, [fill, before]),
      el("span", {className: "value", textContent: percent(c.probability)})]);
    row.dataset.label = c.label;
    row.dataset.probability = c.probability;
    return row;
  }));
  const n = ablated.size;
  $("ablated").textContent = n ? `${n} unit${n === 1 ? "" : "s"} switched off; the thin marks ` +
                                 "show the intact network's scores." : "All units on.";
  $("layers").replaceChildren(...answer.layers.map(layerView));
}

function layerView(layer) {
  const shape = layer.shape.join("\u00d7");
  const head = el("h3", {textContent: `${layer.index} \u00b7 ${layer.kind} `},
                  [el("span", {className: "muted", textContent: shape})]);
  const scale = maxAbs(layer.values);
  let body;
  if (layer.maps) {
    body = el("div", {className: "maps"}, layer.values.map((rows, unit) => {
      const c = gridCanvas(rows, activationColour, scale, "map-cell");
      c.title = `map ${unit}`;
      decorate(c, layer, unit);
      return c;
    }));
    if (layer.shape[2] > layer.values.length) {
      body.append(el("span", {className: "muted small",
                              textContent: `first ${layer.values.length} of ${layer.shape[2]}`}));
    }
  } else {
    body = el("div", {className: "units"}, layer.values.map((v, unit) => {
      const bar = el("span", {className: "unit", title: `unit ${unit}: ${v.toFixed(3)}`});
      const fill = el("span", {className: v < 0 ? "neg" : ""});
      fill.style.height = `${(100 * Math.abs(v) / scale).toFixed(1)}%`;
      bar.append(fill);
      decorate(bar, layer, unit);
      return bar;
    }));
  }
  return el("section", {className: "layer"}, [head, body]);
}

function decorate(node, layer, unit) {
  const key = `${layer.index}:${unit}`;
  node.dataset.layer = layer.index;
  node.dataset.unit = unit;
  node.tabIndex = 0;   // reachable with Tab; Enter or Space selects it
  node.setAttribute("role", "button");
  node.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      selectUnit(layer, unit);
    }
  });
  if (ablated.has(key)) node.classList.add("off");
  if (selected && selected.layer === layer.index && selected.unit === unit) {
    node.classList.add("selected");
  }
  node.addEventListener("click", () => selectUnit(layer, unit));
}

async function selectUnit(layer, unit) {
  selected = {layer: layer.index, unit, ablatable: layer.ablatable};
  document.querySelectorAll("#layers .selected").forEach((e) => e.classList.remove("selected"));
  const node = document.querySelector(`#layers [data-layer="${layer.index}"][data-unit="${unit}"]`);
  if (node) node.classList.add("selected");
  const what = layer.maps ? "feature map" : "unit";
  $("unit-title").textContent = `Layer ${layer.index} (${layer.kind}), ${what} ${unit}`;
  $("unit-box").hidden = false;
  showToggle();
  try {
    const w = await api("/api/weights", {model: currentModel(), layer: layer.index, unit});
    showWeights(w, layer);
  } catch (error) {
    $("unit-note").textContent = error.message;
  }
}

function showToggle() {
  const key = `${selected.layer}:${selected.unit}`;
  $("unit-toggle").hidden = !selected.ablatable;
  $("unit-toggle").textContent = ablated.has(key) ? "Switch on" : "Switch off";
}

function showWeights(w, layer) {
  const box = $("unit-weights");
  if (w.layer === null) {
    box.replaceChildren();
    $("unit-note").textContent = "No weights lead into it: the layer below feeds it through " +
                                 "a fixed function.";
    return;
  }
  const from = w.layer === layer.index ? "" : ` (it passes on unit ${w.unit} of layer ` +
                                              `${w.layer}, ${w.kind})`;
  const bias = w.bias === null ? "" : `, bias ${w.bias.toFixed(3)}`;
  if (w.maps) {
    const scale = maxAbs(w.maps);
    const css = w.maps.length === 1 ? "weight-cell big" : "weight-cell";
    box.replaceChildren(...w.maps.map((rows) => gridCanvas(rows, diverging, scale, css)));
    $("unit-note").textContent = `Incoming weights, one square per input channel ` +
      `(red positive, blue negative, largest |w| = ${scale.toFixed(3)}${bias})${from}.`;
  } else {
    const scale = maxAbs(w.vector);
    box.replaceChildren(el("div", {className: "units"}, w.vector.map((v) => {
      const bar = el("span", {className: "unit", title: v.toFixed(4)});
      const fill = el("span", {className: v < 0 ? "neg" : ""});
      fill.style.height = `${(100 * Math.abs(v) / scale).toFixed(1)}%`;
      bar.append(fill);
      return bar;
    })));
    $("unit-note").textContent = `${w.vector.length} incoming weights (bars; blue negative` +
                                 `${bias})${from}.`;
  }
}

$("unit-toggle").addEventListener("click", () => {
  const key = `${selected.layer}:${selected.unit}`;
  if (ablated.has(key)) ablated.delete(key); else ablated.set(key, [selected.layer, selected.unit]);
  showToggle();
  inspectNow();
});
$("ablate-reset").addEventListener("click", () => {
  ablated.clear();
  if (selected) showToggle();
  inspectNow();
});

// ------------------------------------------------------------------ the map
let mapData = null;
let mapBox = null;          // {x0, x1, y0, y1}: data range shown on the canvas
let mapDrawing = null;      // [x, y] of the current drawing, or null

function fillMapLayers() {
  const m = info && info.models.find((x) => x.name === $("model").value);
  const layers = m ? m.layers : [];
  $("map-layer").replaceChildren(...layers.map((l) => el("option", {
    value: l.index, textContent: `${l.index} \u00b7 ${l.kind} (${l.shape.join("\u00d7")})`})));
  // The last layer before the output's own (dense + softmax) is the usual choice.
  const hidden = layers.filter((l) => l.ablatable);
  if (hidden.length) $("map-layer").value = hidden[Math.max(0, hidden.length - 2)].index;
}

function clearMap() {
  const c = $("map").getContext("2d");
  c.fillStyle = "#fff";
  c.fillRect(0, 0, $("map").width, $("map").height);
  $("map-legend").replaceChildren();
  $("map").dataset.points = 0;
}

function toCanvas(x, y) {
  const size = $("map").width, m = 16;
  return [m + (x - mapBox.x0) / (mapBox.x1 - mapBox.x0) * (size - 2 * m),
          m + (1 - (y - mapBox.y0) / (mapBox.y1 - mapBox.y0)) * (size - 2 * m)];
}

function paintMap() {
  clearMap();
  const c = $("map").getContext("2d");
  const d = mapData;
  for (let i = 0; i < d.count; i++) {
    const [px, py] = toCanvas(d.x[i], d.y[i]);
    c.strokeStyle = c.fillStyle = classColour(d.label[i]);
    if (d.label[i] === d.prediction[i]) {
      c.globalAlpha = 0.65;
      c.beginPath();
      c.arc(px, py, 2.5, 0, 2 * Math.PI);
      c.fill();
    } else {
      c.globalAlpha = 1;
      c.lineWidth = 1.5;
      c.beginPath();
      c.moveTo(px - 3.5, py - 3.5); c.lineTo(px + 3.5, py + 3.5);
      c.moveTo(px + 3.5, py - 3.5); c.lineTo(px - 3.5, py + 3.5);
      c.stroke();
    }
  }
  c.globalAlpha = 1;
  if (mapDrawing) {
    const [px, py] = toCanvas(...mapDrawing);
    c.lineWidth = 3;
    c.strokeStyle = "#000";
    c.beginPath();
    c.arc(px, py, 9, 0, 2 * Math.PI);
    c.stroke();
    c.lineWidth = 1.5;
    c.strokeStyle = "#fff";
    c.beginPath();
    c.arc(px, py, 11, 0, 2 * Math.PI);
    c.stroke();
  }
  $("map").dataset.points = d.count;
  $("map").dataset.drawing = mapDrawing ? mapDrawing.join(",") : "";
  $("map-legend").replaceChildren(...d.classes.map((name, i) => {
    const swatch = el("span", {className: "swatch"});
    swatch.style.background = classColour(i);
    return el("span", {}, [swatch, name]);
  }), el("span", {className: "muted", textContent: "\u00d7 mistake \u00b7 \u25ef your drawing"}));
}

async function drawMap() {
  const method = $("map-method").value;
  $("map-status").textContent = method === "tsne" ?
    "Computing t-SNE of the test images (this takes a while)..." : "Computing the map...";
  $("map-draw").disabled = true;
  try {
    const body = {model: currentModel(), layer: Number($("map-layer").value), method};
    const image = drawing();
    if (image) body.image = image;
    mapData = await api("/api/map", body);
    const pad4 = (lo, hi) => [lo - 0.04 * (hi - lo || 1), hi + 0.04 * (hi - lo || 1)];
    const [x0, x1] = pad4(Math.min(...mapData.x), Math.max(...mapData.x));
    const [y0, y1] = pad4(Math.min(...mapData.y), Math.max(...mapData.y));
    mapBox = {x0, x1, y0, y1};
    mapDrawing = mapData.drawing;
    paintMap();
    const mistakes = mapData.label.filter((l, i) => l !== mapData.prediction[i]).length;
    $("map-status").textContent = `${mapData.count} test images, layer ${mapData.layer}, ` +
      `${method === "pca" ? "PCA" : "t-SNE"}; ${mistakes} mistakes (accuracy ` +
      `${percent(mapData.accuracy)}). Hover a dot to see the image.` +
      (method === "tsne" && mapDrawing ? " t-SNE cannot place new points: the ring sits on " +
                                         "the nearest test image." : "");
  } catch (error) {
    $("map-status").textContent = error.message;
  } finally {
    $("map-draw").disabled = false;
  }
}

async function placeDrawing() {
  const image = drawing();
  if (!image) { mapDrawing = null; paintMap(); return; }
  try {
    const answer = await api("/api/map", {model: currentModel(), layer: mapData.layer,
                                          method: mapData.method, image});
    mapDrawing = answer.drawing;
    paintMap();
  } catch (error) { /* the map stays as it is */ }
}

$("map-draw").addEventListener("click", drawMap);

let hoverId = 0;
$("map").addEventListener("mousemove", async (event) => {
  if (!mapData) return;
  const box = $("map").getBoundingClientRect();
  const mx = (event.clientX - box.left) * $("map").width / box.width;
  const my = (event.clientY - box.top) * $("map").height / box.height;
  let best = -1, bestD = 64;   // within 8 canvas pixels
  for (let i = 0; i < mapData.count; i++) {
    const [px, py] = toCanvas(mapData.x[i], mapData.y[i]);
    const d = (px - mx) ** 2 + (py - my) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  }
  const tip = $("map-tip");
  if (best < 0) { tip.hidden = true; return; }
  const id = ++hoverId;
  const s = await api("/api/sample", {model: currentModel(), index: best});
  if (id !== hoverId) return;
  const names = mapData.classes;
  drawGridOnto($("map-tip-image"), s.pixels);
  const mark = s.label === s.prediction ? "" : " \u2717";
  $("map-tip-text").textContent = `label ${names[s.label]} \u00b7 predicted ` +
                                  `${names[s.prediction]}${mark}`;
  tip.dataset.index = best;
  tip.hidden = false;
  const wrap = $("map").parentElement.getBoundingClientRect();
  tip.style.left = `${Math.min(event.clientX - wrap.left + 12, wrap.width - 130)}px`;
  tip.style.top = `${event.clientY - wrap.top + 12}px`;
});
$("map").addEventListener("mouseleave", () => { hoverId++; $("map-tip").hidden = true; });

function drawGridOnto(canvas, rows) {
  const small = gridCanvas(rows, (v) => [255 * (1 - v), 255 * (1 - v), 255 * (1 - v)], 1);
  const c = canvas.getContext("2d");
  c.imageSmoothingEnabled = false;
  c.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// ------------------------------------------------------------------ robustness
const ROB_TITLES = {noise: "Noise", rotation: "Rotation", shift: "Shift",
                    thickness: "Stroke thickness"};

$("rob-run").addEventListener("click", async () => {
  $("rob-status").textContent = "Measuring...";
  $("rob-run").disabled = true;
  try {
    const r = await api("/api/robustness", {model: currentModel(),
                                            limit: Number($("rob-limit").value)});
    const charts = Object.entries(r.curves).filter(([k]) => k !== "coverage").map(([kind, c]) => {
      const box = el("div", {className: "chart"});
      box.dataset.curve = kind;
      lineChart(box, [{name: kind, colour: "#2f6fdf",
                       points: c.level.map((x, i) => [x, c.accuracy[i]])}],
                {xLabel: r.units[kind], yMin: 0, yMax: 1, percentY: true});
      return el("figure", {}, [box, el("figcaption", {textContent:
        `${ROB_TITLES[kind] || kind}: accuracy against ${r.units[kind]}`})]);
    });
    const cov = r.curves.coverage;
    const box = el("div", {className: "chart"});
    box.dataset.curve = "coverage";
    lineChart(box, [{name: "answered", colour: "#b4541a",
                     points: cov.coverage.map((x, i) => [x, cov.accuracy[i]])}],
              {xLabel: "coverage: share of the images answered", percentX: true,
               percentY: true});
    const at = (t) => cov.threshold.findIndex((v) => Math.abs(v - t) < 1e-9);
    const i5 = at(0.5), i9 = at(0.9);
    charts.push(el("figure", {}, [box, el("figcaption", {textContent:
      `"Not sure" threshold: at 50% it answers ${percent(cov.coverage[i5])} of the images, ` +
      `${percent(cov.accuracy[i5])} of them right; at 90%, ${percent(cov.coverage[i9])} and ` +
      `${percent(cov.accuracy[i9])}.`})]));
    $("rob-charts").replaceChildren(...charts);
    $("rob-status").textContent = `Model ${r.model}, first ${r.count} test images. Hover a ` +
                                  "point for its value.";
  } catch (error) {
    $("rob-status").textContent = error.message;
  } finally {
    $("rob-run").disabled = false;
  }
});

// ------------------------------------------------------------------ training lab
let lab = null;
let source = null;          // EventSource of the session shown
let live = null;            // {id, total, steps: [[step, loss]], epochs: [...]}

async function loadLab() {
  if (lab) return;
  if (info && !info.lab) {
    $("train-problems").replaceChildren(el("li", {textContent:
      "The training lab is off: start the server with --runs-dir DIR."}));
    $("train-form").querySelectorAll("input, button, select, textarea")
      .forEach((e) => { e.disabled = true; });
    return;
  }
  lab = await api("/api/lab");
  const names = Object.keys(lab.configs);
  $("train-config").replaceChildren(...names.map((n) => el("option", {value: n, textContent: n})),
                                    el("option", {value: "", textContent: "(my own)"}));
  $("train-config").value = names.includes("mlp") ? "mlp" : (names[0] || "");
  pickConfig();
  // After a reload, follow a training that is still running (its events are replayed).
  const running = lab.sessions.find((s) => ["starting", "running"].includes(s.state));
  if (running) watch(running);
}

function pickConfig() {
  const name = $("train-config").value;
  if (name) $("train-text").value = lab.configs[name];
  $("train-name").value = `${name || "custom"}-${new Date().toISOString().slice(0, 19)
    .replace(/[-:]/g, "").replace("T", "-")}`;
}
$("train-config").addEventListener("change", pickConfig);

function trainBody() {
  const body = {config: $("train-text").value, name: $("train-name").value};
  if ($("train-epochs").value !== "") body.epochs = Number($("train-epochs").value);
  if ($("train-lr").value !== "") body.lr = Number($("train-lr").value);
  return body;
}

function showProblems(error) {
  const problems = error.problems || [error.message];
  $("train-problems").replaceChildren(...problems.map((p) => el("li", {textContent: p})));
}

// api() with the problems list of a refused config kept on the error.
async function labApi(path, body) {
  const response = await fetch(path, {method: "POST", body: JSON.stringify(body),
                                      headers: {"Content-Type": "application/json"}});
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.error), {problems: data.problems});
  return data;
}

$("train-check").addEventListener("click", async () => {
  try {
    const ok = await labApi("/api/lab/check", trainBody());
    $("train-problems").replaceChildren(el("li", {className: "ok", textContent:
      `The config is valid: ${ok.layers.length} layers on ${ok.dataset}, ${ok.epochs} ` +
      `epoch${ok.epochs === 1 ? "" : "s"}.`}));
  } catch (error) { showProblems(error); }
});

$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const s = await labApi("/api/lab/start", trainBody());
    $("train-problems").replaceChildren();
    watch(s);
    pickConfig();   // a fresh name for the next run
  } catch (error) { showProblems(error); }
});

function watch(s) {
  if (source) source.close();
  live = {id: s.id, name: s.name, total: null, steps: [], epochs: [], started: null};
  setState("starting", `Starting ${s.name} (loading the data)...`);
  $("train-progress").textContent = "";
  $("train-weights").replaceChildren();
  lineChart($("chart-loss"), []);
  lineChart($("chart-acc"), []);
  $("train-stop").disabled = false;
  source = new EventSource(`/api/lab/${s.id}/events`);
  source.onmessage = (message) => onEvent(JSON.parse(message.data));
  source.addEventListener("end", () => source.close());
}

function setState(state, text) {
  $("train-state").dataset.state = state;
  $("train-state").textContent = text;
}

let chartTimer = null;
function onEvent(e) {
  if (e.type === "started") {
    live.total = e.total;
    setState("running", `Training ${live.name} on ${e.train} ${e.dataset} images ` +
                        `(${e.test} test)...`);
  } else if (e.type === "step") {
    live.steps.push([e.step, e.loss]);
    const left = e.elapsed / e.step * (e.total - e.step);
    $("train-progress").textContent = `step ${e.step}/${e.total} \u00b7 loss ` +
      `${e.loss.toFixed(4)} \u00b7 ${e.elapsed.toFixed(1)} s \u00b7 ` +
      `about ${formatSeconds(left)} left`;
    $("train-progress").dataset.step = e.step;
  } else if (e.type === "epoch") {
    live.epochs.push(e.metrics);
  } else if (e.type === "weights") {
    if (e.maps) {
      const scale = maxAbs(e.maps);
      $("train-weights").replaceChildren(...e.maps.map((rows) =>
        gridCanvas(rows, diverging, scale, "weight-cell")));
      $("train-weights").dataset.step = e.step;
    }
  } else {
    finish(e);
  }
  if (!chartTimer) {   // redraw the charts at most about 10 times a second
    chartTimer = setTimeout(() => { chartTimer = null; drawCharts(); }, 100);
  }
}

function drawCharts() {
  lineChart($("chart-loss"), [{name: "loss", colour: "#2f6fdf", points: live.steps}],
            {xLabel: "step", yMin: 0, dots: false});
  $("chart-loss").dataset.points = live.steps.length;
  const col = (k) => live.epochs.map((m) => [m.epoch, m[k] ?? null]);
  lineChart($("chart-acc"), [
    {name: "train", colour: "#2f6fdf", points: col("train_accuracy")},
    {name: "test", colour: "#ff7f0e", points: col("test_accuracy")}],
  {xLabel: "epoch", yMin: 0, yMax: 1, percentY: true});
  $("chart-acc").dataset.points = live.epochs.length;
}

function formatSeconds(s) {
  if (!isFinite(s)) return "?";
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

async function finish(e) {
  $("train-stop").disabled = true;
  const acc = e.metrics && e.metrics.test_accuracy !== undefined ?
    `, test accuracy ${percent(e.metrics.test_accuracy)}` : "";
  const where = e.model ? ` It is now in the model picker as ${e.model}.` : "";
  const text = {finished: `Finished ${live.name}${acc}.${where}`,
                stopped: `Stopped ${live.name}; the run folder keeps what it wrote.${where}`,
                failed: `${live.name} failed: ${e.message}`}[e.type];
  setState(e.type, text);
  if (e.model) await loadModels($("model").value || e.model);
}

$("train-stop").addEventListener("click", async () => {
  if (!live) return;
  $("train-stop").disabled = true;
  setState("stopping", `Stopping ${live.name}...`);
  try {
    await api(`/api/lab/${live.id}/stop`, {});
  } catch (error) {
    setState("failed", error.message);
  }
});
