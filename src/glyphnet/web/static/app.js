// The drawing pad: strokes on a canvas, debounced calls to /api/predict, and the answer drawn
// as bars, the network's input image and a saliency map. Plain JavaScript, no build step.
"use strict";

const STROKE_WIDTH = 20;     // canvas pixels (the canvas is 280x280, MNIST-like thickness)
const DEBOUNCE_MS = 150;     // wait this long after the last pen movement before predicting

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const strokes = [];          // each stroke: a list of [x, y] points in canvas pixels
let current = null;          // the stroke being drawn
let timer = null;
let requestId = 0;           // answers to older requests are ignored
let info = null;             // GET /api/models

// ------------------------------------------------------------------ drawing
function paintBackground() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function paintStroke(points) {
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineWidth = STROKE_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (points.length === 1) {   // a tap is a dot
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], STROKE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function repaint() {
  paintBackground();
  strokes.forEach(paintStroke);
}

function canvasPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  current = [canvasPoint(event)];
  strokes.push(current);
  paintStroke(current);
});

pad.addEventListener("pointermove", (event) => {
  if (!current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) current.push(canvasPoint(e));
  repaint();
  schedulePredict();
});

function endStroke() {
  if (!current) return;
  current = null;
  predictNow();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function undo() {
  strokes.pop();
  repaint();
  predictNow();
}

function clearPad() {
  strokes.length = 0;
  repaint();
  predictNow();
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearPad);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z" && event.target.tagName !== "INPUT") {
    event.preventDefault();
    undo();
  }
});

// ------------------------------------------------------------------ talking to the server
async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON: reported below */ }
  if (!response.ok) {
    throw new Error((data && data.error) || `${path}: HTTP ${response.status}`);
  }
  return data;
}

function schedulePredict() {
  clearTimeout(timer);
  timer = setTimeout(predictNow, DEBOUNCE_MS);
}

async function predictNow() {
  clearTimeout(timer);
  const id = ++requestId;
  if (!strokes.length) {
    showEmpty();
    document.dispatchEvent(new Event("drawing"));
    return;
  }
  try {
    const answer = await api("/api/predict", {
      model: $("model").value || undefined,
      image: pad.toDataURL("image/png"),
      threshold: Number($("threshold").value),
    });
    if (id === requestId) {
      showAnswer(answer);
      document.dispatchEvent(new Event("drawing"));
    }
  } catch (error) {
    if (id === requestId) showError(error.message);
  }
}

// ------------------------------------------------------------------ showing the answer
function setAnswer(text, state, note) {
  const answer = $("answer");
  answer.textContent = text;
  answer.dataset.state = state;
  $("answer-note").textContent = note;
}

function showEmpty() {
  setAnswer("?", "empty", "Draw something to start.");
  $("answer").dataset.label = "";
  $("bars").replaceChildren();
  clearView($("seen"));
  clearView($("saliency"));
  $("error").textContent = "";
}

function showError(message) {
  $("error").textContent = message;
}

function showAnswer(answer) {
  $("error").textContent = "";
  $("answer").dataset.label = answer.prediction || "";
  if (answer.prediction === null) {
    setAnswer("?", "empty", answer.reason);
  } else if (answer.uncertain) {
    const rejected = info && info.models.some(
      (m) => m.name === answer.model && m.rejection_classes.includes(answer.prediction));
    setAnswer(rejected ? "not a character" : "not sure", "uncertain",
              rejected ? `The model chose its rejection class "${answer.prediction}".`
                       : `Best guess ${answer.prediction} at ${percent(answer.probability)}, ` +
                         `below the ${percent(answer.threshold)} threshold.`);
  } else {
    setAnswer(answer.prediction, "sure", `${percent(answer.probability)} sure`);
  }
  const bars = answer.classes.map(({label, probability}, i) => {
    const row = document.createElement("li");
    if (i === 0) row.className = "top";
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(probability);
    row.append(name, track, value);
    return row;
  });
  $("bars").replaceChildren(...bars);
  drawGrid($("seen"), answer.input, (v) => [255 * v, 255 * v, 255 * v]);
  drawGrid($("saliency"), answer.saliency, heat);
}

// At most one decimal ("97.7%", "100%"); below 1 never rounded up to 100%, above 0 never down
// to 0% (the server words its reasons with the same rule).
function percent(p) {
  let v = Math.round(1000 * p) / 10;
  if (p < 1) v = Math.min(v, 99.9);
  if (p > 0) v = Math.max(v, 0.1);
  return `${v}%`;
}

function clearView(canvas) {
  const c = canvas.getContext("2d");
  c.fillStyle = "#000";
  c.fillRect(0, 0, canvas.width, canvas.height);
}

// A small image (rows of values in [0, 1]) scaled up with visible pixels.
function drawGrid(canvas, rows, colour) {
  const h = rows.length, w = rows[0].length;
  const small = new ImageData(w, h);
  rows.forEach((row, y) => row.forEach((v, x) => {
    const [r, g, b] = colour(v);
    small.data.set([r, g, b, 255], 4 * (y * w + x));
  }));
  const buffer = document.createElement("canvas");
  buffer.width = w;
  buffer.height = h;
  buffer.getContext("2d").putImageData(small, 0, 0);
  const c = canvas.getContext("2d");
  c.imageSmoothingEnabled = false;
  c.drawImage(buffer, 0, 0, canvas.width, canvas.height);
  $("seen-size").textContent = `${w}\u00d7${h}`;
}

// Black -> red -> yellow -> white.
function heat(v) {
  const t = Math.max(0, Math.min(1, v));
  return [255 * Math.min(1, 3 * t), 255 * Math.min(1, Math.max(0, 3 * t - 1)),
          255 * Math.max(0, 3 * t - 2)];
}

// ------------------------------------------------------------------ models, threshold, saving
// Fills the model picker; called again when a training finishes (``choose``: select it).
async function loadModels(choose) {
  const previous = $("model").value;
  info = await api("/api/models");
  const select = $("model");
  select.replaceChildren(...info.models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.classes.length} classes)`;
    return option;
  }));
  select.value = choose || previous || info.default;
  if (!select.value && info.default) select.value = info.default;
  $("model-field").hidden = info.models.length < 2;
  $("model-name").textContent = info.models.length === 1 ?
    `Model: ${select.options[0].textContent}` :
    (info.models.length ? "" : "No model yet: train one in the Train tab.");
  document.dispatchEvent(new Event("models"));
}

async function start() {
  await loadModels();
  $("threshold").value = info.threshold;
  showThreshold();
  if (!info.saving) {
    $("save-form").querySelectorAll("input, button").forEach((e) => { e.disabled = true; });
    $("save-status").textContent = "Saving is off (start the server with --save-dir DIR).";
  } else {
    $("label").title = `Label: ${info.label_rule}`;
  }
}

function showThreshold() {
  $("threshold-value").textContent = percent(Number($("threshold").value));
}

$("model").addEventListener("change", () => {
  predictNow();
  document.dispatchEvent(new Event("models"));
});
$("threshold").addEventListener("input", () => { showThreshold(); schedulePredict(); });

$("save-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = $("save-status");
  if (!strokes.length) {
    status.textContent = "Draw something first.";
    return;
  }
  const label = $("label").value;
  try {
    const saved = await api("/api/save", {label, image: pad.toDataURL("image/png")});
    status.textContent = `Saved ${saved.path} (${saved.count} drawing` +
                         `${saved.count === 1 ? "" : "s"} of "${saved.label}").`;
    status.dataset.saved = saved.path;
    clearPad();
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
  }
});

paintBackground();
showEmpty();
start().catch((error) => showError(`Could not list the models: ${error.message}`));
